"""``FeatureSpec``: typed feature columns fitted together, and the arrays they make.

Index layout: the columns own consecutive index ranges in their order (``Column.size_`` each);
``feat_dim`` counts them all and is the model's ``feature_size``. Single-valued columns
(numeric, categorical, hashed) are the ``field_size`` fields of ``Xi``/``Xv`` (N * F), in column
order; each multi-valued (sequence) column adds a block ``(index N * L, weight N * L)`` to
``Xs``, in column order (``sequence_lengths`` holds the L's).
"""
import json
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import NotFittedError

from ..checks import repeated
from ..jsonfiles import JsonRoundTrip
from .base import KINDS, Column
from .dictionary import _aligned_empty, _check_frame

FORMAT = "deepfm_graph.FeatureSpec"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class FeatureArrays:
    """A table encoded for DeepFM: ``Xi`` int32 N * F, ``Xv`` float32 N * F, ``Xs`` a tuple of
    ``(index int32 N * L, weight float32 N * L)``, one per sequence field."""

    Xi: np.ndarray
    Xv: np.ndarray
    Xs: tuple = ()

    def __len__(self):
        return self.Xi.shape[0]

    def take(self, rows):
        """The arrays of ``rows`` (an index array or a slice)."""
        return FeatureArrays(self.Xi[rows], self.Xv[rows], tuple((i[rows], w[rows]) for i, w in self.Xs))

    @staticmethod
    def concatenate(a, b):
        """The rows of ``a`` then those of ``b`` (new arrays)."""
        def cat(u, v):
            return np.concatenate([u, v])

        return FeatureArrays(cat(a.Xi, b.Xi), cat(a.Xv, b.Xv), tuple((cat(i, j), cat(w, v))
                                                                    for (i, w), (j, v) in zip(a.Xs, b.Xs)))

    def to_dict(self):
        """The arrays by name: ``Xi``, ``Xv``, and ``seq_index_<s>``, ``seq_weight_<s>`` per sequence field."""
        arrays = {"Xi": self.Xi, "Xv": self.Xv}
        for s, (index, weight) in enumerate(self.Xs):
            arrays[f"seq_index_{s}"], arrays[f"seq_weight_{s}"] = index, weight
        return arrays

    @classmethod
    def from_dict(cls, arrays):
        """The inverse of ``to_dict`` (other keys of ``arrays`` are ignored)."""
        n_sequences = sum(1 for name in arrays if name.startswith("seq_index_"))
        return cls(arrays["Xi"], arrays["Xv"],
                   tuple((arrays[f"seq_index_{s}"], arrays[f"seq_weight_{s}"]) for s in range(n_sequences)))


class FeatureSpec(JsonRoundTrip):
    """Typed feature columns (``base.Column`` subclasses), fitted on training rows only.

    Fitted attributes: ``offsets_`` (column name -> first index), ``feat_dim``, ``field_size``,
    ``fields`` (single-valued column names), ``sequence_fields``, ``sequence_lengths``;
    ``oov_counts_`` after ``transform`` (values sent to a categorical OOV index, per column).
    """

    def __init__(self, columns, schema=None):
        columns = list(columns)
        for column in columns:
            if not isinstance(column, Column):
                raise TypeError(f"FeatureSpec takes feature columns (numeric, categorical, ...), got {column!r}")
        names = [c.name for c in columns]
        duplicated = repeated(names)
        if duplicated:
            raise ValueError(f"columns named more than once: {duplicated}")
        if not any(not c.multi_valued for c in columns):
            raise ValueError("at least one single-valued feature column (numeric, categorical or hashed) is needed")
        self.columns = columns
        self.schema = schema  # the dataset schema's dict (how to read files), when built from one

    @property
    def names(self):
        return [c.name for c in self.columns]

    @property
    def is_fitted(self):
        return all(c.is_fitted for c in self.columns)

    def _check_fitted(self):
        if not self.is_fitted:
            raise NotFittedError("this FeatureSpec is not fitted yet; call fit(df) first")

    def _check_frame(self, df, what):
        _check_frame(df, what)
        absent = [name for name in self.names if name not in df.columns]
        if absent:
            raise ValueError(f"the {what} lacks feature columns {absent}")

    def fit(self, df):
        """Fit every column on the training frame ``df``; returns self."""
        return self.fit_chunks([df])

    def fit_chunks(self, chunks):
        """Fit every column in one pass over the training rows given as frames (a file read in chunks,
        ``DatasetSchema.read(path, chunksize=...)``); memory is bounded by what the columns keep
        (vocabulary counts, moments, a bounded sample for quantiles), not by the rows. Returns self."""
        for column in self.columns:
            column.start_fit()
        rows = 0
        for df in chunks:
            self._check_frame(df, "training frame")
            for column in self.columns:
                column.partial_fit(df[column.name])
            rows += len(df)
        if rows == 0:
            raise ValueError("the training data has no rows")
        for column in self.columns:
            column.finish_fit()
        return self

    def fit_transform(self, df):
        return self.fit(df).transform(df)

    # -- layout
    @property
    def offsets_(self):
        self._check_fitted()
        sizes = np.cumsum([0] + [c.size_ for c in self.columns])
        return {c.name: int(start) for c, start in zip(self.columns, sizes)}

    @property
    def feat_dim(self):
        self._check_fitted()
        return int(sum(c.size_ for c in self.columns))

    @property
    def fields(self):
        return [c.name for c in self.columns if not c.multi_valued]

    @property
    def field_size(self):
        return len(self.fields)

    @property
    def sequence_fields(self):
        return [c.name for c in self.columns if c.multi_valued]

    @property
    def sequence_lengths(self):
        self._check_fitted()
        return tuple(c.max_len_ for c in self.columns if c.multi_valued)

    # -- transform
    def transform(self, df):
        """Encode ``df`` as ``FeatureArrays``; the frame is not modified."""
        self._check_fitted()
        self._check_frame(df, "frame")
        n, offsets = len(df), self.offsets_
        Xi = _aligned_empty((n, self.field_size), np.int32)
        Xv = _aligned_empty((n, self.field_size), np.float32)
        Xs, oov, j = [], {}, 0
        for column in self.columns:
            index, value = column.transform(df[column.name])
            if hasattr(column, "vocabulary_"):
                oov[column.name] = int((index == len(column.vocabulary_)).sum())
            if column.multi_valued:
                Xs.append((np.ascontiguousarray(index + offsets[column.name], np.int32), value))
            else:
                Xi[:, j], Xv[:, j] = index + offsets[column.name], value
                j += 1
        self.oov_counts_ = oov
        return FeatureArrays(Xi, Xv, tuple(Xs))

    # -- SavedModel raw inputs
    def raw_inputs(self, df):
        """The ``predict_raw`` inputs for ``df``: column -> float64 (numeric) or string array (N)."""
        self._check_fitted()
        self._check_frame(df, "frame")
        return {c.name: c.raw_values(df[c.name]) for c in self.columns}

    def raw_features(self):
        """TF placeholders for the raw columns and the arrays computed from them in the graph:
        ``(inputs, feat_index N * F, feat_value N * F, sequences)``."""
        import tensorflow.compat.v1 as tf

        inputs, indices, values, sequences = {}, [], [], []
        offsets = self.offsets_
        for j, column in enumerate(self.columns):
            raw = inputs[column.name] = tf.placeholder(getattr(tf, column.raw_dtype()), [None], name=f"raw_{j}")
            index, value = column.raw_lookup(raw)
            index = tf.cast(index, tf.int32) + offsets[column.name]
            if column.multi_valued:
                sequences.append((index, value))
            else:
                indices.append(index)
                values.append(value)
        return inputs, tf.stack(indices, 1), tf.stack(values, 1), tuple(sequences)

    # -- serialisation
    def to_dict(self):
        self._check_fitted()
        return {"format": FORMAT, "format_version": FORMAT_VERSION,
                "columns": [json.loads(json.dumps(c.to_dict())) for c in self.columns],
                "schema": json.loads(json.dumps(self.schema))}

    @classmethod
    def from_dict(cls, d):
        if d.get("format") != FORMAT or d.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} version {FORMAT_VERSION} description "
                             f"(format {d.get('format')!r}, version {d.get('format_version')!r})")
        for c in d["columns"]:
            if c.get("kind") not in KINDS:
                raise ValueError(f"column {c.get('name')!r} has an unknown kind {c.get('kind')!r}")
        return cls((Column.from_dict(c) for c in d["columns"]), d.get("schema"))

    def __repr__(self):
        state = f"feat_dim={self.feat_dim}" if self.is_fitted else "unfitted"
        return f"FeatureSpec({len(self.columns)} columns, {state})"
