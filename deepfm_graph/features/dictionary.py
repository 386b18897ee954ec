"""Feature dictionary and parser: DataFrame / CSV -> (Xi, Xv) for DeepFM.

Drop-in for the classic ``FeatureDictionary`` / ``DataParser`` of the
Basic-DeepFM-model reference (same keyword arguments, ``feat_dict``,
``feat_dim``), fitted on training data only and vectorised over rows.

Every feature column is one *field*; row ``r`` of ``Xi`` (int32, rows x fields)
holds one feature index per field and the same cell of ``Xv`` (float32) its value.

Column roles
    Features are all columns of the training frame except ``ignore_cols``, the
    label column and the id column (those two are always excluded, so the
    target cannot leak in), in the frame's column order. ``numeric_cols`` are
    numeric; every other feature column is categorical.

Index layout
    Fields take consecutive index ranges in column order. A numeric field owns
    one index. A categorical field owns one index per distinct training value,
    sorted numbers first then strings (NaN, if seen, last), followed by its own
    out-of-vocabulary (OOV) index. ``feat_dim`` counts all of them.

Categorical policy
    Value 1.0. Lookup is by value, so ``1.0`` matches a vocabulary ``1``. A value
    found no other way is then tried as a number against the vocabulary's values of
    the other type: the strings ``"1"`` and ``"1.0"`` find a vocabulary ``1`` (a
    column that pandas read as text, say because one chunk of a CSV holds a stray
    token), and ``1`` finds a vocabulary ``"1"`` unless another vocabulary string
    reads as the same number (``"1.0"``); strings match strings only exactly. Only
    numbers below 2**53 in magnitude, which float64 holds exactly, are matched so.
    Missing values (NaN/None) form a category of their own when seen in
    training; otherwise, like every unseen value, they go to the field's OOV
    index (also with value 1.0). Only str, int, float and bool values are
    accepted, because those round-trip exactly through JSON.

Numeric policy
    NaN and values equal to ``missing_value`` (default None: no marker; Porto
    Seguro's -1 is ``porto.MISSING_VALUE``, which its workflow passes) are missing: they are left out of the scaling
    statistics and encoded as 0.0 after scaling, i.e. absent for the FM (mean
    imputation under standard scaling). ``scaling`` is ``"standard"``
    ((x - mean) / std, std 0 -> 1), ``"minmax"`` ((x - min) / (max - min),
    range 0 -> 1) or ``None``/``"none"`` (raw values). Statistics come from
    the training frame only; an entirely missing column gets center 0, scale 1.
    Infinite values and non-numeric strings raise ``ValueError``.

Vocabulary
    Fitted on the training frame only. A test frame given to the constructor
    is checked for the feature columns but adds values to the vocabulary only
    with ``include_test=True`` (the classic train+test vocabulary).
"""
import csv
import math
import os

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from ..checks import native, repeated
from ..jsonfiles import JsonRoundTrip

FORMAT_VERSION = 1
SCALINGS = ("standard", "minmax", "none")


def read_header(path):
    """Column names of a CSV file; raises ``ValueError`` when empty or with duplicated names
    (which ``pandas.read_csv`` would silently rename to ``name.1``)."""
    with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a byte-order mark is not part of a name
        header = next(csv.reader(f), None)
    if not header:
        raise ValueError(f"{path} is empty")
    duplicated = repeated(header)
    if duplicated:
        raise ValueError(f"{path} has duplicated column names: {duplicated}")
    return header


def feature_fields(columns, numeric_cols, ignore_cols, label_col="target", id_col="id"):
    """The feature columns among ``columns`` (in their order) under these roles.

    Every column but the ignored ones, the label and the id; ``ValueError`` when a role
    names an absent column, a numeric column is also ignored, the label or the id, or
    nothing is left.
    """
    for argument, names in (("numeric_cols", numeric_cols), ("ignore_cols", ignore_cols)):
        absent = [col for col in names if col not in columns]
        if absent:
            raise ValueError(f"{argument} names columns not in the training frame: {absent}")
    for col in numeric_cols:
        if col in ignore_cols or col in (label_col, id_col):
            raise ValueError(f"numeric column {col!r} is also ignored, the label or the id")
    excluded = set(ignore_cols) | {label_col, id_col}
    fields = [col for col in columns if col not in excluded]
    if not fields:
        raise ValueError("the training frame has no feature columns")
    return fields


def _aligned_empty(shape, dtype, alignment=64):
    """An uninitialised C-contiguous array whose data starts on an ``alignment``-byte boundary.

    TensorFlow feeds such an array to a session without copying it (it copies any array
    that is not 64-byte aligned, which numpy's large allocations usually are not).
    """
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    buffer = np.empty(size + alignment, np.uint8)
    start = -buffer.ctypes.data % alignment
    return buffer[start:start + size].view(dtype).reshape(shape)


def _read_csv(path):
    """Read a CSV with at least one data row, or raise ``ValueError``."""
    if isinstance(path, (str, os.PathLike)):
        read_header(path)
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty") from None
    if len(df) == 0:
        raise ValueError(f"{path} has a header but no data rows")
    return df


def _check_frame(df, what):
    """Raise unless ``df`` is a non-empty DataFrame with unique column names."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"the {what} must be a pandas DataFrame, got {type(df).__name__}")
    duplicated = repeated(df.columns)
    if duplicated:
        raise ValueError(f"the {what} has duplicated column names: {duplicated}")
    if len(df) == 0:
        raise ValueError(f"the {what} has no rows")


def _require_columns(df, columns, what):
    missing = [col for col in columns if col not in df.columns]
    if missing:
        raise ValueError(f"the {what} lacks feature columns {missing}")


def _names(columns, argument):
    if isinstance(columns, str):
        raise TypeError(f"{argument} must be a sequence of column names, not a string")
    return list(columns)


def _is_nan(value):
    return isinstance(value, float) and math.isnan(value)


def _sort_key(value):
    # Numbers (bool, int, float) before strings, so mixed columns never compare str with int.
    return (1, value) if isinstance(value, str) else (0, value)


EXACT_FLOAT_INTEGERS = 2.0 ** 53


def _as_numbers(values):
    """float64 of each value that is a number or a numeric string; NaN for the rest and from
    2**53 in magnitude on, where distinct integers share floats. All NaN where pandas reads
    complex numbers among ``values`` (it then leaves the unreadable entries undefined)."""
    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy()
    if numbers.dtype.kind not in "iuf":
        return np.full(len(numbers), np.nan)
    numbers = numbers.astype(np.float64)
    return np.where(np.abs(numbers) < EXACT_FLOAT_INTEGERS, numbers, np.nan)


def _cross_type_lookups(known):
    """The vocabulary ``known`` read as numbers, for values of another type: ``(numbers,
    numeric_strings)``, each ``(index, positions)``, the int/float values and the numeric
    strings as floats with their positions in ``known``; a float two of them share is left out."""
    numbers = _as_numbers(known)
    is_string = np.array([isinstance(v, str) for v in known], dtype=bool)
    is_bool = np.array([isinstance(v, bool) for v in known], dtype=bool)

    def lookup(kind):
        index = pd.Index(np.where(kind, numbers, np.nan))
        usable = kind & ~np.isnan(numbers) & ~index.duplicated(keep=False)
        return index[usable], np.flatnonzero(usable)

    return lookup(~is_string & ~is_bool), lookup(is_string)


def _match_across_types(values, lookups):
    """Vocabulary positions of ``values`` found only as numbers: numeric strings among the
    vocabulary's numbers, numbers among its numeric strings; -1 for the rest."""
    numbers = None  # parsed only where a lookup needs them: most unmatched values are truly unseen
    if values.dtype.kind in "iuf":
        is_number = np.ones(len(values), dtype=bool)
    elif pd.api.types.infer_dtype(values, skipna=False) == "string":
        is_number = np.zeros(len(values), dtype=bool)
    else:
        numbers = _as_numbers(values)
        is_number = values == numbers  # elementwise: False for strings
    positions = np.full(len(values), -1, dtype=np.intp)
    for (index, at), wanted in zip(lookups, (~is_number, is_number)):
        if len(index) and wanted.any():
            found = index.get_indexer(_as_numbers(values[wanted]) if numbers is None else numbers[wanted])
            positions[wanted] = np.where(found >= 0, at[found], -1)
    return positions


def _fit_vocabulary(col, columns):
    """Sorted distinct values of the Series ``columns``, NaN (if present) last."""
    values = np.concatenate([s.to_numpy(dtype=object) for s in columns])
    missing = pd.isna(values)
    distinct = [native(v) for v in pd.unique(values[~missing])]
    for value in distinct:
        if not isinstance(value, (str, int, float)):
            raise ValueError(
                f"categorical column {col!r} holds {value!r} of type {type(value).__name__}; "
                "only str, int, float and bool values are supported"
            )
    vocabulary = sorted(distinct, key=_sort_key)
    return vocabulary + [float("nan")] if missing.any() else vocabulary


class FeatureDictionary(JsonRoundTrip):
    """Maps DataFrame columns to DeepFM feature indices and values.

    Fits immediately when ``dfTrain`` or ``trainfile`` is given (classic
    behaviour); otherwise call :meth:`fit`. See the module docstring for the
    policies. Fitted attributes: ``feat_dict``, ``feat_dim``, ``field_size``,
    ``fields``, ``oov_index``, ``scaling_params`` (column -> ``{"center",
    "scale"}``, value = (x - center) / scale).
    """

    def __init__(self, trainfile=None, testfile=None, dfTrain=None, dfTest=None,
                 numeric_cols=(), ignore_cols=(), scaling="standard", missing_value=None,
                 label_col="target", id_col="id", include_test=False):
        self.numeric_cols = numeric_cols
        self.ignore_cols = ignore_cols
        self.scaling = scaling
        self.missing_value = missing_value
        self.label_col = label_col
        self.id_col = id_col
        self.include_test = include_test
        train = self._resolve_frame(trainfile, dfTrain, "trainfile", "dfTrain")
        test = self._resolve_frame(testfile, dfTest, "testfile", "dfTest")
        if train is not None:
            self.fit(train, test)
        elif test is not None:
            raise ValueError("a test frame was given without training data")

    @staticmethod
    def _resolve_frame(path, df, path_argument, df_argument):
        if path is not None and df is not None:
            raise ValueError(f"give {path_argument} or {df_argument}, not both")
        return _read_csv(path) if path is not None else df

    # ------------------------------------------------------------------ fitting
    def fit(self, df, df_test=None):
        """Fit the vocabulary and scaling statistics on ``df``; returns self.

        ``df_test`` is checked for the feature columns and joins the
        vocabulary only when ``include_test`` is true.
        """
        scaling = "none" if self.scaling is None else self.scaling
        if scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS} or None, got {self.scaling!r}")
        _check_frame(df, "training frame")
        numeric = _names(self.numeric_cols, "numeric_cols")
        ignore = _names(self.ignore_cols, "ignore_cols")
        fields = feature_fields(list(df.columns), numeric, ignore, self.label_col, self.id_col)
        frames = [df]
        if df_test is not None:
            _check_frame(df_test, "test frame")
            _require_columns(df_test, fields, "test frame")
            if self.include_test:
                frames.append(df_test)
        scaling_params = {col: self._fit_scaling(df, col, scaling) for col in numeric}
        vocabularies = {
            col: _fit_vocabulary(col, [frame[col] for frame in frames])
            for col in fields if col not in scaling_params
        }
        self._set_state(fields, vocabularies, scaling_params)
        return self

    def _fit_scaling(self, df, col, scaling):
        x, missing = self._numeric_values(df, col)
        observed = x[~missing]
        if scaling == "none" or observed.size == 0:
            return {"center": 0.0, "scale": 1.0}
        if scaling == "standard":
            center, scale = observed.mean(), observed.std()
        else:
            center, scale = observed.min(), observed.max() - observed.min()
        return {"center": float(center), "scale": float(scale) if scale != 0 else 1.0}

    def _set_state(self, fields, vocabularies, scaling_params):
        """Lay out the indices: fields in order, vocabulary then OOV per categorical."""
        self.fields = list(fields)
        self.field_size = len(self.fields)
        self.scaling_params = scaling_params
        self._vocabularies = vocabularies
        self.feat_dict, self.oov_index, self._lookups = {}, {}, {}
        self._cross_type_cache = {}  # column -> _cross_type_lookups, made at its first unmatched value
        start = 0
        for col in self.fields:
            if col in scaling_params:
                self.feat_dict[col] = start
                start += 1
                continue
            vocabulary = vocabularies[col]
            known = [v for v in vocabulary if not _is_nan(v)]
            nan_position = len(known) if len(known) < len(vocabulary) else -1
            self.feat_dict[col] = {value: start + i for i, value in enumerate(vocabulary)}
            self._lookups[col] = (pd.Index(known), nan_position, start)
            start += len(vocabulary)
            self.oov_index[col] = start
            start += 1
        self.feat_dim = start

    # ---------------------------------------------------------------- transform
    @property
    def is_fitted(self):
        return hasattr(self, "feat_dict")

    def _check_input(self, df):
        if not self.is_fitted:
            raise NotFittedError("this FeatureDictionary is not fitted yet; call fit(df) first")
        _check_frame(df, "frame")
        _require_columns(df, self.fields, "frame")

    def _numeric_values(self, df, col):
        """Column as float64 plus its missing mask; raises on strings and inf."""
        raw = df[col]
        numbers = pd.to_numeric(raw, errors="coerce")
        invalid = numbers.isna().to_numpy() & raw.notna().to_numpy()
        if invalid.any():
            row = int(np.flatnonzero(invalid)[0])
            where = f"row {row}" + (f" (id {native(df[self.id_col].iloc[row])!r})" if self.id_col in df.columns else "")
            raise ValueError(f"numeric column {col!r} holds non-numeric {raw.iloc[row]!r} at {where}")
        x = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(x).any():
            raise ValueError(f"numeric column {col!r} holds an infinite value")
        missing = np.isnan(x)
        if self.missing_value is not None:
            missing |= x == self.missing_value
        return x, missing

    def _category_indices(self, col, values):
        """Feature indices of one categorical column and its number of OOV values."""
        known, nan_position, start = self._lookups[col]
        values = values.to_numpy()
        missing = pd.isna(values)
        positions = np.where(missing, nan_position, known.get_indexer(values))
        unmatched = (positions < 0) & ~missing
        if unmatched.any():
            if col not in self._cross_type_cache:
                self._cross_type_cache[col] = _cross_type_lookups(known)
            lookups = self._cross_type_cache[col]
            if any(len(index) for index, _ in lookups):
                positions[unmatched] = _match_across_types(values[unmatched], lookups)
        oov = positions < 0
        return np.where(oov, self.oov_index[col], start + positions), int(oov.sum())

    def transform(self, df):
        """Encode ``df`` as ``(Xi, Xv)``: int32 and float32, C-contiguous, rows x fields."""
        self._check_input(df)
        Xi = _aligned_empty((len(df), self.field_size), np.int32)
        Xv = _aligned_empty((len(df), self.field_size), np.float32)
        oov_counts = {}
        for j, col in enumerate(self.fields):
            if col in self.scaling_params:
                x, missing = self._numeric_values(df, col)
                params = self.scaling_params[col]
                Xi[:, j] = self.feat_dict[col]
                Xv[:, j] = np.where(missing, 0.0, (x - params["center"]) / params["scale"])
            else:
                Xi[:, j], oov_counts[col] = self._category_indices(col, df[col])
                Xv[:, j] = 1.0
        self.oov_counts_ = oov_counts
        return Xi, Xv

    def count_oov(self, df):
        """Number of values per categorical column of ``df`` that map to the OOV index."""
        self._check_input(df)
        return {col: self._category_indices(col, df[col])[1] for col in self._lookups}

    # ------------------------------------------------------------ serialisation
    def to_dict(self):
        """JSON-ready, exact description of the fitted dictionary (NaN as null)."""
        if not self.is_fitted:
            raise NotFittedError("only a fitted FeatureDictionary can be serialised")
        fields = []
        for col in self.fields:
            if col in self.scaling_params:
                fields.append({"name": col, "kind": "numeric", "scaling": dict(self.scaling_params[col])})
            else:
                vocabulary = [None if _is_nan(v) else v for v in self._vocabularies[col]]
                fields.append({"name": col, "kind": "categorical", "vocabulary": vocabulary})
        params = {
            "numeric_cols": list(self.numeric_cols), "ignore_cols": list(self.ignore_cols),
            "scaling": self.scaling, "missing_value": self.missing_value,
            "label_col": self.label_col, "id_col": self.id_col, "include_test": self.include_test,
        }
        return {"format_version": FORMAT_VERSION, "params": params, "fields": fields}

    @classmethod
    def from_dict(cls, d):
        """Inverse of :meth:`to_dict`."""
        if d.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported format_version {d.get('format_version')!r}, expected {FORMAT_VERSION}")
        params = dict(d["params"])
        params["numeric_cols"] = tuple(params["numeric_cols"])
        params["ignore_cols"] = tuple(params["ignore_cols"])
        fd = cls(**params)
        fields = d["fields"]
        scaling_params = {f["name"]: dict(f["scaling"]) for f in fields if f["kind"] == "numeric"}
        vocabularies = {
            f["name"]: [float("nan") if v is None else v for v in f["vocabulary"]]
            for f in fields if f["kind"] == "categorical"
        }
        fd._set_state([f["name"] for f in fields], vocabularies, scaling_params)
        return fd

    def __repr__(self):
        if not self.is_fitted:
            return f"FeatureDictionary(unfitted, scaling={self.scaling!r})"
        return (f"FeatureDictionary(field_size={self.field_size}, feat_dim={self.feat_dim}, "
                f"scaling={self.scaling!r})")


class DataParser:
    """Turns a CSV or DataFrame into DeepFM inputs with a fitted FeatureDictionary."""

    def __init__(self, feat_dict, label_col="target", id_col="id"):
        self.feat_dict = feat_dict
        self.label_col = label_col
        self.id_col = id_col

    def parse(self, infile=None, df=None, has_label=False):
        """Return ``(Xi, Xv, y)`` if ``has_label`` else ``(Xi, Xv, ids)``.

        ``y`` is float32 of shape (rows,); ``ids`` come from ``id_col`` when
        present, else ``np.arange(rows)``. Sets ``oov_counts_``.
        """
        if (infile is None) == (df is None):
            raise ValueError("give exactly one of infile or df")
        if not isinstance(self.feat_dict, FeatureDictionary):
            raise TypeError("feat_dict must be a fitted FeatureDictionary")
        frame = _read_csv(infile) if infile is not None else df
        Xi, Xv = self.feat_dict.transform(frame)
        self.oov_counts_ = self.feat_dict.oov_counts_
        if has_label:
            return Xi, Xv, self._labels(frame)
        ids = frame[self.id_col].to_numpy() if self.id_col in frame.columns else np.arange(len(frame))
        return Xi, Xv, ids

    def _labels(self, frame):
        if self.label_col not in frame.columns:
            raise ValueError(f"label column {self.label_col!r} is not in the frame")
        y = pd.to_numeric(frame[self.label_col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isnan(y).any():
            raise ValueError(f"label column {self.label_col!r} holds missing or non-numeric values")
        return y.astype(np.float32)
