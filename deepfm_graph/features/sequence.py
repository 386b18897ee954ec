"""``sequence``: a list of categories per row (MovieLens genres ``"Comedy|Drama"``), one field.

A cell is text split on ``sep`` (tokens stripped, empty tokens dropped) or a list/tuple/array
of values; missing and empty cells are the empty list. Each token is a category by its
canonical key, indexed by a vocabulary fitted on the training tokens (``min_count`` as for
``categorical``, then an OOV index) or, with ``buckets``, by the stable hash as for ``hashed``.
The column owns one more index after those: padding.

``transform`` gives a padded block per row, ``max_len`` slots wide: the tokens' indices then
the padding index, and weights that pool them: ``pooling="mean"`` gives each token
1 / (tokens in the row), ``"sum"`` 1, padding 0. The graph's field embedding is
sum_l weight_l v_{index_l} (and the first-order term sum_l weight_l w_{index_l}), so padding
contributes nothing and an empty list is the zero vector. A list longer than a ``max_len``
given in the schema is an error unless ``truncate`` is true (then its first ``max_len`` tokens
are kept). Without ``max_len``, the longest training list sets it, and longer lists met later
keep their first ``max_len`` tokens (as the values of an unseen category, the rest were never
learned from).
"""
import numpy as np
import pandas as pd

from .base import Column, is_int, register
from .categorical import KeyCounter, check_buckets, check_min_count, tf_buckets, vocabulary_table
from .keys import canonical_keys, hash_keys

POOLINGS = ("mean", "sum")
OTHER_SEPARATORS = ("|", ",", ";", "\t", "/")  # not " ": values such as "Science Fiction" hold spaces


@register
class Sequence(Column):
    kind = "sequence"
    OPTIONS = {"sep": "|", "max_len": None, "pooling": "mean", "min_count": 1, "buckets": None, "truncate": False}
    multi_valued = True

    def _check_options(self):
        if not (isinstance(self.sep, str) and self.sep):
            raise self._fail(f"sep must be a non-empty string, got {self.sep!r}")
        if self.max_len is not None and not (is_int(self.max_len) and self.max_len >= 1):
            raise self._fail(f"max_len must be a positive integer or null, got {self.max_len!r}")
        if self.pooling not in POOLINGS:
            raise self._fail(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        check_min_count(self)
        check_buckets(self, required=False)
        if self.buckets is not None and self.min_count != 1:
            raise self._fail("min_count applies to a vocabulary; with buckets (hashing) there is none")
        if not isinstance(self.truncate, bool):
            raise self._fail(f"truncate must be true or false, got {self.truncate!r}")

    # -- tokens
    def tokens(self, values):
        """``(row, key)``: the row number (int64) and canonical key of every token, in order."""
        series = values.reset_index(drop=True).astype(object)
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred == "string":
            series = series.str.split(self.sep, regex=False)
        elif inferred not in ("empty", "integer", "floating", "boolean", "mixed-integer-float"):
            text = series.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)  # text beside lists: rare
            series = series.where(~text, series[text].str.split(self.sep, regex=False))
        flat = series.explode()
        flat = flat[flat.notna()]
        keys = canonical_keys(flat.to_numpy(dtype=object))
        keys = pd.Series(keys, dtype=object).str.strip().to_numpy(dtype=object)
        keep = keys != ""
        return flat.index.to_numpy(np.int64)[keep], keys[keep]

    def _separators(self, values):
        """Per separator (``sep`` first, then ``OTHER_SEPARATORS``): the text cells holding it and one
        example, plus the number of text cells."""
        text = values.dropna().astype(object)
        if pd.api.types.infer_dtype(text) != "string":
            return {}, 0
        found = {}
        for separator in (self.sep, *OTHER_SEPARATORS):
            holds = text.str.contains(separator, regex=False)
            found[separator] = (int(holds.sum()), text[holds].iloc[0] if holds.any() else None)
        return found, len(text)

    def _accumulate(self, state, values):
        """Running state: token counts (vocabulary) or None (hashed), the longest list, and the
        separators seen in text cells."""
        counts, longest, separators, cells = state or (None, 0, {}, 0)
        rows, keys = self.tokens(values)
        if self.buckets is None:
            counts = (counts or KeyCounter(self.min_count)).add(keys)
        longest = max(longest, int(np.bincount(rows, minlength=1).max()))
        found, text_cells = self._separators(values)
        for separator, (n, example) in found.items():
            total, first = separators.get(separator, (0, None))
            separators[separator] = (total + n, first if first is not None else example)
        return counts, longest, separators, cells + text_cells

    def _finish(self, state):
        counts, longest, separators, cells = state or (None, 0, {}, 0)
        # A wrong separator: no training cell holds sep, but many hold another one.
        if cells and not separators.get(self.sep, (0, None))[0]:
            for other, (n, example) in separators.items():
                if other != self.sep and n >= 0.1 * cells:
                    raise self._fail(f"no value holds the separator sep={self.sep!r}, but {n / cells:.0%} hold "
                                     f"{other!r} (such as {example!r}); is sep right?")
        state = {"max_len": self.max_len or max(longest, 1)}
        if self.buckets is None:
            state["vocabulary"] = [] if counts is None else counts.frequent_keys()
        self.set_fitted_state(state)

    def fitted_state(self):
        state = {"max_len": self.max_len_}
        if self.buckets is None:
            state["vocabulary"] = list(self.vocabulary_)
        return state

    def set_fitted_state(self, state):
        self.max_len_ = int(state["max_len"])
        if self.buckets is None:
            self.vocabulary_ = [str(v) for v in state["vocabulary"]]
            self._index = pd.Index(self.vocabulary_, dtype=object)
            self.pad_index_ = len(self.vocabulary_) + 1  # after the OOV index
        else:
            self.pad_index_ = self.buckets
        self.size_ = self.pad_index_ + 1

    @property
    def truncates(self):
        """Whether lists longer than ``max_len_`` keep their first values (else: an error)."""
        return self.truncate or self.max_len is None

    def _token_indices(self, keys):
        if self.buckets is not None:
            return hash_keys(keys).astype(np.int64) % self.buckets
        positions = self._index.get_indexer(keys)
        return np.where(positions < 0, len(self.vocabulary_), positions)  # OOV

    def transform(self, values):
        """``(index int32 N * max_len_, weight float32 N * max_len_)``, indices local to the column."""
        n, width = len(values), self.max_len_
        rows, keys = self.tokens(values)
        lengths = np.bincount(rows, minlength=n)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        slots = np.arange(len(rows)) - starts[rows]  # position of each token in its row
        too_long = lengths > width
        if too_long.any() and not self.truncates:
            row = int(np.flatnonzero(too_long)[0])
            raise self._fail(f"row {values.index[row]} holds {lengths[row]} values, more than max_len={width} "
                             "(raise max_len, or set truncate to keep the first max_len)")
        kept = slots < width
        index = np.full((n, width), self.pad_index_, np.int32)
        index[rows[kept], slots[kept]] = self._token_indices(keys[kept])
        counts = np.minimum(lengths, width)
        per_token = (1.0 / np.maximum(counts, 1)) if self.pooling == "mean" else np.ones(n)
        weight = np.where(np.arange(width) < counts[:, None], per_token[:, None], 0.0).astype(np.float32)
        return index, weight

    # -- SavedModel raw input: the row's tokens joined by sep, as one string
    def raw_values(self, values):
        rows, keys = self.tokens(values)
        joined = pd.Series(keys, dtype=object).groupby(rows).agg(self.sep.join)
        out = np.full(len(values), "", dtype=object)
        out[joined.index.to_numpy()] = joined.to_numpy()
        return out

    def raw_dtype(self):
        return "string"

    def raw_lookup(self, text):
        import tensorflow.compat.v1 as tf

        tokens = tf.strings.strip(tf.strings.split(text, sep=self.sep, result_type="RaggedTensor"))  # N * (tokens)
        tokens = tf.ragged.boolean_mask(tokens, tf.not_equal(tokens, ""))
        if self.buckets is not None:
            index = tf.ragged.map_flat_values(tf_buckets, tokens, self.buckets)
        else:
            index = tf.ragged.map_flat_values(vocabulary_table(self.vocabulary_, len(self.vocabulary_)).lookup, tokens)
        lengths = index.row_lengths()
        checks = []
        if not self.truncates:
            checks.append(tf.debugging.assert_less_equal(
                lengths, tf.constant(self.max_len_, tf.int64),
                message=f"sequence column {self.name!r} holds a list longer than max_len={self.max_len_}"))
        with tf.control_dependencies(checks):
            dense = index.to_tensor(default_value=self.pad_index_, shape=[None, self.max_len_])
        counts = tf.minimum(lengths, self.max_len_)
        slots = tf.range(self.max_len_, dtype=tf.int64)[None, :] < counts[:, None]
        per_token = 1.0 / tf.cast(tf.maximum(counts, 1), tf.float32) if self.pooling == "mean" else \
            tf.ones(tf.shape(counts), tf.float32)
        weight = tf.where(slots, tf.broadcast_to(per_token[:, None], tf.shape(slots)), tf.zeros(tf.shape(slots)))
        return tf.cast(dense, tf.int32), weight
