"""The dataset schema: one JSON file (or the same dict) that says how to read a table and what
each column is.

    {"label": "rating", "task": "regression", "id": null,
     "sep": ",", "header": true, "names": null, "default_kind": "categorical",
     "columns": {"genres": {"kind": "sequence", "sep": "|", "max_len": 6, "pooling": "mean"},
                 "zip": {"kind": "hashed", "buckets": 10000},
                 "timestamp": {"kind": "ignore"}, "title": {"kind": "ignore"}}}

Keys
    ``label``         the label column (required); ``task`` ``"binary"`` (0/1 labels, logloss)
                      or ``"regression"`` (real labels, squared error).
    ``id``            a column copied to predictions and never a feature; null: none.
    ``sep``           the field separator (``","``, ``"\\t"``, ...); ``header``: whether the first
                      line names the columns; ``names``: the column names of a headerless file
                      (or new names for a file with a header); ``encoding`` (default
                      ``"utf-8"``; a UTF-8 byte-order mark is always skipped).
    ``default_kind``  the kind of every column not listed in ``columns`` (``"ignore"`` to use
                      only the listed ones).
    ``columns``       column -> ``{"kind": ..., options}``; kinds and their options are those
                      of ``features.KINDS`` (numeric, categorical, hashed, sequence) and
                      ``"ignore"``.
Checks against a file or frame name the column: a schema column absent from the data (with a
hint when ``sep`` looks wrong), a label or id that is also a feature, bad options.
"""
import bz2
import csv
import gzip
import lzma
from pathlib import Path

import numpy as np
import pandas as pd

from ..checks import native, repeated
from ..jsonfiles import read_json_object
from .base import KINDS, unknown_key_error
from .spec import FeatureSpec

TASKS = ("binary", "regression")
IGNORE = "ignore"
KEYS = {"label": None, "task": "binary", "id": None, "sep": ",", "header": True, "names": None,
        "default_kind": "categorical", "columns": {}, "encoding": "utf-8"}
TEXT_KINDS = ("categorical", "hashed", "sequence")  # read as text: a value is its CSV text
COMMON_SEPARATORS = (",", "\t", ";", "|", " ")


class SchemaError(ValueError):
    """A schema is invalid, or does not fit the data it is used with."""


class DatasetSchema:
    """A validated dataset schema (see the module docstring); ``from_dict``/``load`` build it."""

    def __init__(self, label, task="binary", id=None, sep=",", header=True, names=None,
                 default_kind="categorical", columns=None, encoding="utf-8"):
        self.label, self.task, self.id, self.sep, self.header = label, task, id, sep, header
        self.names, self.default_kind, self.columns, self.encoding = names, default_kind, columns or {}, encoding
        self._check()
        self.names, self.columns = None if names is None else list(names), dict(self.columns)

    # -- construction and checks
    @classmethod
    def from_dict(cls, d, source="schema"):
        if not isinstance(d, dict):
            raise SchemaError(f"{source} must be a JSON object, got {type(d).__name__}")
        for key in d:
            if key not in KEYS:
                raise SchemaError(str(unknown_key_error(source, key, KEYS)))
        if "label" not in d:
            raise SchemaError(f"{source}: 'label' is required (the label column's name)")
        return cls(**d)

    @classmethod
    def load(cls, path):
        try:
            d = read_json_object(path, "schema file")
        except ValueError as err:
            raise SchemaError(str(err)) from None
        return cls.from_dict(d, f"schema file {str(path)!r}")

    def to_dict(self):
        return {"label": self.label, "task": self.task, "id": self.id, "sep": self.sep, "header": self.header,
                "names": self.names, "default_kind": self.default_kind, "columns": self.columns,
                "encoding": self.encoding}

    def _check(self):
        def fail(problem):
            raise SchemaError(f"schema: {problem}")

        if not isinstance(self.label, str) or not self.label:
            fail(f"'label' must name the label column, got {self.label!r}")
        if self.task not in TASKS:
            fail(f"'task' must be one of {TASKS}, got {self.task!r}")
        if self.id is not None and (not isinstance(self.id, str) or self.id == self.label):
            fail(f"'id' must be null or a column other than the label, got {self.id!r}")
        if not isinstance(self.sep, str) or len(self.sep) != 1:
            fail(f"'sep' must be one character (such as \",\" or \"\\t\"), got {self.sep!r}")
        if not isinstance(self.header, bool):
            fail(f"'header' must be true or false, got {self.header!r}")
        if self.names is not None:
            if not isinstance(self.names, (list, tuple)) or not all(isinstance(n, str) and n for n in self.names):
                fail("'names' must be a list of column names")
            duplicated = repeated(self.names)
            if duplicated:
                fail(f"'names' lists {duplicated} more than once")
        elif not self.header:
            fail("a file without a header ('header': false) needs 'names'")
        if self.default_kind not in (*KINDS, IGNORE):
            fail(f"'default_kind' must be one of {sorted((*KINDS, IGNORE))}, got {self.default_kind!r}")
        if not isinstance(self.columns, dict):
            fail(f"'columns' must map column names to {{\"kind\": ...}} objects, got {type(self.columns).__name__}")
        for name, entry in self.columns.items():
            if not isinstance(entry, dict):
                fail(f"column {name!r}: expected an object such as {{\"kind\": \"numeric\"}}, got {entry!r}")
            kind = entry.get("kind", self.default_kind)
            if kind not in (*KINDS, IGNORE):
                fail(f"column {name!r}: unknown kind {kind!r}; kinds: {sorted((*KINDS, IGNORE))}")
            if name in (self.label, self.id) and kind != IGNORE:
                fail(f"column {name!r} is the {'label' if name == self.label else 'id'} and cannot be a feature")
            if kind != IGNORE:
                self._column(name)  # options checked now, not at the first fit
            elif len(entry) > 1:
                fail(f"column {name!r}: an ignored column takes no options, got {sorted(set(entry) - {'kind'})}")
        if not isinstance(self.encoding, str):
            fail(f"'encoding' must be a string, got {self.encoding!r}")

    def kind_of(self, name):
        if name in (self.label, self.id):
            return IGNORE
        return self.columns.get(name, {}).get("kind", self.default_kind)

    def _column(self, name):
        entry = {k: v for k, v in self.columns.get(name, {}).items() if k != "kind"}
        try:
            return KINDS[self.kind_of(name)](name, **entry)
        except (TypeError, ValueError) as err:
            raise SchemaError(f"schema: {err}") from None

    # -- against data
    def check_columns(self, available, source, need_label=True):
        """Raise ``SchemaError`` unless the schema's columns are among ``available`` (a file's or
        frame's column names); hint at ``sep`` when the data reads as one column."""
        available = list(available)
        wanted = list(self.columns) + ([self.label] if need_label else []) + ([self.id] if self.id else [])
        absent = [name for name in wanted if name not in available]
        if not absent:
            return
        hint = ""
        if len(available) == 1:
            found = [s for s in COMMON_SEPARATORS if s != self.sep and s in available[0]]
            if found:
                hint = f"; it reads as the single column {available[0][:60]!r}: is 'sep' ({self.sep!r}) right " \
                       f"(the line holds {found[0]!r})?"
        raise SchemaError(f"{source} lacks {'the column' if len(absent) == 1 else 'columns'} "
                          f"{absent if len(absent) > 1 else repr(absent[0])} named by the schema{hint}")

    def feature_spec(self, available):
        """An unfitted ``FeatureSpec``: every column of ``available`` but the label, the id and the
        ignored ones, in their order."""
        columns = [self._column(name) for name in available if self.kind_of(name) != IGNORE]
        if not columns:
            raise SchemaError("schema: no feature columns are left (every column is ignored, the label or the id)")
        try:
            return FeatureSpec(columns, schema=self.to_dict())
        except ValueError as err:
            raise SchemaError(f"schema: {err}") from None

    def fit_spec(self, path, chunksize=100_000):
        """A ``FeatureSpec`` fitted in one pass over the file ``path`` read in chunks of ``chunksize``
        rows: memory bounded by the vocabularies, not by the file (``FeatureSpec.fit_chunks``)."""
        return self.feature_spec(self.file_columns(path)).fit_chunks(self.read(path, chunksize=chunksize))

    def file_columns(self, path):
        """The column names of the file ``path`` under this schema (header or ``names``)."""
        try:
            with _open_text(path, _encoding(self.encoding)) as f:
                first = next(csv.reader(f, delimiter=self.sep), None)
        except OSError as err:
            raise SchemaError(f"{path} cannot be read: {err.strerror}") from None
        except UnicodeDecodeError as err:
            raise SchemaError(f"{path} is not {self.encoding} text: {err.reason}") from None
        if first is None:
            raise SchemaError(f"{path} is empty")
        if self.names is not None:
            if len(first) != len(self.names):
                raise SchemaError(f"{path} has {len(first)} fields a line (separator {self.sep!r}), the schema's "
                                  f"'names' {len(self.names)}")
            return list(self.names)
        duplicated = repeated(first)
        if duplicated:
            raise SchemaError(f"{path} has duplicated column names: {duplicated}")
        return first

    def read(self, path, chunksize=None, nrows=None, need_label=True):
        """Read the file ``path``: a DataFrame, or an iterator of them with ``chunksize``.

        Categorical, hashed and sequence columns are read as text (a value is its CSV text,
        the same in every chunk); the rest as pandas infers.
        """
        columns = self.file_columns(path)
        self.check_columns(columns, str(path), need_label)
        text = {name: str for name in columns if self.kind_of(name) in TEXT_KINDS}
        if self.id:
            text[self.id] = str
        options = dict(sep=self.sep, header=0 if self.header else None, names=self.names,
                       encoding=_encoding(self.encoding), dtype=text, keep_default_na=False, na_values=[""])
        if chunksize is not None:
            return _chunks(pd.read_csv(path, chunksize=chunksize, nrows=nrows, **options), path)
        try:
            df = pd.read_csv(path, nrows=nrows, **options)
        except pd.errors.ParserError as err:
            raise SchemaError(f"{path} could not be parsed: {' '.join(str(err).split())}") from None
        if len(df) == 0:
            raise SchemaError(f"{path} has no data rows")
        return df

    def labels(self, df, source="data"):
        """The label column as float32 (N), checked for the task; ``SchemaError`` naming the row."""
        if self.label not in df.columns:
            raise SchemaError(f"the {source} has no label column {self.label!r}")
        raw = df[self.label]

        y = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(y)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise SchemaError(f"label column {self.label!r} holds {native(raw.iloc[row])!r} at row {df.index[row]}: "
                              "not a number")
        if self.task == "binary" and not np.isin(y, (0.0, 1.0)).all():
            row = int(np.flatnonzero(~np.isin(y, (0.0, 1.0)))[0])
            raise SchemaError(f"label column {self.label!r} holds {native(raw.iloc[row])!r} at row {df.index[row]}; "
                              "task 'binary' needs 0/1 labels (use task 'regression' for real values)")
        return y.astype(np.float32)


_COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}  # what read_csv infers from these names too


def _open_text(path, encoding):
    """The file ``path`` as text, decompressed by its name's suffix like ``read_csv`` does."""
    opener = _COMPRESSED.get(Path(path).suffix.lower(), open)
    return opener(path, "rt", newline="", encoding=encoding)


def _encoding(encoding):
    """``utf-8-sig`` for UTF-8, so that a byte-order mark never becomes part of the first name."""
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def _chunks(reader, path):
    """The non-empty chunks of a ``read_csv`` iterator; parse errors as ``SchemaError``."""
    try:
        for chunk in reader:
            if len(chunk):
                yield chunk
    except pd.errors.ParserError as err:
        raise SchemaError(f"{path} could not be parsed: {' '.join(str(err).split())}") from None
