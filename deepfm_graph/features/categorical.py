"""``categorical`` and ``hashed``: one category per row, one feature index per category (value 1.0).

Values are compared by their canonical key (``keys.canonical_key``: ``3``, ``3.0`` and the
text ``"3"`` are one category; missing is the key ``""``).

``categorical``: the vocabulary is the training keys seen at least ``min_count`` times, sorted;
its indices are followed by the column's out-of-vocabulary (OOV) index, which every other key
(unseen, or rarer than ``min_count``) takes. Missing is a category of its own when frequent
enough in training, else OOV.

``hashed``: no vocabulary; the index is ``hash_keys(key) % buckets``, a stable hash, the same
in every process and in the SavedModel's raw signature. For high-cardinality columns (device
ids, zip codes): unseen values get a trained index too, at the price of collisions.
"""
import numpy as np
import pandas as pd

from .base import Column, is_int, register
from .keys import canonical_keys, hash_keys, key_codes, tf_hash_keys


class _Keyed(Column):
    """A column whose raw input is the canonical key string of each value."""

    def raw_values(self, values):
        return canonical_keys(values)

    def raw_dtype(self):
        return "string"


class KeyCounter:
    """Counts of keys over chunks, in memory bounded by the distinct keys, not the rows: each key is
    counted under a 64-bit hash of it (``pandas.util.hash_array``; 16 bytes a distinct key), and its
    text is kept only once it has been counted ``min_count`` times, so a long tail of rare values
    costs no strings. Two keys sharing a hash (about one pair in 10^12 for a million keys) would be
    counted together."""

    def __init__(self, min_count):
        self.min_count = min_count
        self.hashes, self.counts = np.zeros(0, np.uint64), np.zeros(0, np.int64)  # sorted by hash
        self.frequent = {}  # hash -> key, for the keys counted at least min_count times

    def add(self, keys, codes=None):
        """Count ``keys`` (object array of str), or with ``codes`` the keys ``keys[codes]``."""
        keys = np.asarray(keys, dtype=object)
        if codes is None:
            codes, keys = pd.factorize(keys)
        n = np.bincount(codes, minlength=len(keys))
        keys, n = keys[n > 0], n[n > 0]
        if len(keys) == 0:
            return self
        h = pd.util.hash_array(keys, categorize=False)
        order = np.argsort(h, kind="stable")
        h, n, keys = h[order], n[order], keys[order]
        h, first = np.unique(h, return_index=True)  # one key under two codes (3 and 3.0): counted once
        n, keys = np.add.reduceat(n, first), keys[first]
        at = np.searchsorted(self.hashes, h)
        found = at < len(self.hashes)
        found[found] = self.hashes[at[found]] == h[found]
        before = np.zeros(len(h), np.int64)
        before[found] = self.counts[at[found]]
        self.counts[at[found]] += n[found]
        self.hashes = np.insert(self.hashes, at[~found], h[~found])
        self.counts = np.insert(self.counts, at[~found], n[~found])
        crossed = (before < self.min_count) & (before + n >= self.min_count)
        self.frequent.update(zip(h[crossed].tolist(), keys[crossed].tolist()))
        return self

    def frequent_keys(self):
        """The keys counted at least ``min_count`` times, sorted."""
        return sorted(self.frequent.values())


def check_min_count(column):
    if not (is_int(column.min_count) and column.min_count >= 1):
        raise column._fail(f"min_count must be a positive integer, got {column.min_count!r}")


def vocabulary_table(vocabulary, default):
    """A TF hash table from each vocabulary key to its position; ``default`` elsewhere."""
    import tensorflow.compat.v1 as tf

    initializer = tf.lookup.KeyValueTensorInitializer(
        tf.constant(list(vocabulary), tf.string), tf.range(len(vocabulary), dtype=tf.int64), tf.string, tf.int64)
    return tf.lookup.StaticHashTable(initializer, default_value=default)


@register
class Categorical(_Keyed):
    kind = "categorical"
    OPTIONS = {"min_count": 1}

    def _check_options(self):
        check_min_count(self)

    def _accumulate(self, counter, values):
        codes, keys = key_codes(values)
        return (counter or KeyCounter(self.min_count)).add(keys, codes)

    def _finish(self, counter):
        self.set_fitted_state({"vocabulary": [] if counter is None else counter.frequent_keys()})

    @property
    def oov_index_(self):
        return len(self.vocabulary_)

    def lookup(self, keys):
        """Positions of ``keys`` in the vocabulary, ``oov_index_`` elsewhere (int64 N)."""
        positions = self._index.get_indexer(keys)
        return np.where(positions < 0, self.oov_index_, positions)

    def transform(self, values):
        codes, keys = key_codes(values)  # each distinct value looked up once
        return self.lookup(keys)[codes], np.ones(len(values), np.float32)

    def fitted_state(self):
        return {"vocabulary": list(self.vocabulary_)}

    def set_fitted_state(self, state):
        self.vocabulary_ = [str(v) for v in state["vocabulary"]]
        self._index = pd.Index(self.vocabulary_, dtype=object)
        self.size_ = len(self.vocabulary_) + 1

    def raw_lookup(self, keys):
        import tensorflow.compat.v1 as tf

        return vocabulary_table(self.vocabulary_, self.oov_index_).lookup(keys), tf.ones(tf.shape(keys), tf.float32)


def check_buckets(column, required):
    if column.buckets is None and not required:
        return
    if not (is_int(column.buckets) and 1 <= column.buckets <= 2 ** 31):
        raise column._fail(f"buckets must be an integer from 1 to 2**31, got {column.buckets!r}")


def tf_buckets(keys, buckets):
    """``hash_keys(keys) % buckets`` as TF ops (int64 N)."""
    import tensorflow.compat.v1 as tf

    return tf.math.floormod(tf.cast(tf_hash_keys(keys), tf.int64), buckets)


@register
class Hashed(_Keyed):
    kind = "hashed"
    OPTIONS = {"buckets": None}

    def _check_options(self):
        check_buckets(self, required=True)

    def _finish(self, state):
        self.size_ = self.buckets

    def transform(self, values):
        codes, keys = key_codes(values)  # each distinct value hashed once
        index = (hash_keys(keys).astype(np.int64) % self.buckets)[codes]
        return index, np.ones(len(values), np.float32)

    def set_fitted_state(self, state):
        self.size_ = self.buckets

    def raw_lookup(self, keys):
        import tensorflow.compat.v1 as tf

        return tf_buckets(keys, self.buckets), tf.ones(tf.shape(keys), tf.float32)
