"""The Porto Seguro Safe Driver schema in one place: columns, kinds, roles, checks, features.

Kaggle's ``train.csv`` holds ``id``, ``target`` and 57 anonymised ``ps_*`` feature columns;
``test.csv`` the same without ``target``. Porto Seguro writes -1 for a missing value, never NaN.
Column kinds follow the name suffix (``_cat``, ``_bin``) and, for the rest, the data: whole
numbers are ``"int"``, the others ``"cont"``.
"""
from pathlib import Path

import numpy as np
import pandas as pd

from ._porto_stats import MISSING_RATES
from .checks import native, repeated

ID_COL = "id"
LABEL_COL = "target"
MISSING_VALUE = -1

# The 57 feature columns, in Kaggle order.
FEATURE_COLUMNS = (
    "ps_ind_01", "ps_ind_02_cat", "ps_ind_03", "ps_ind_04_cat", "ps_ind_05_cat", "ps_ind_06_bin",
    "ps_ind_07_bin", "ps_ind_08_bin", "ps_ind_09_bin", "ps_ind_10_bin", "ps_ind_11_bin",
    "ps_ind_12_bin", "ps_ind_13_bin", "ps_ind_14", "ps_ind_15", "ps_ind_16_bin", "ps_ind_17_bin",
    "ps_ind_18_bin",
    "ps_reg_01", "ps_reg_02", "ps_reg_03",
    "ps_car_01_cat", "ps_car_02_cat", "ps_car_03_cat", "ps_car_04_cat", "ps_car_05_cat",
    "ps_car_06_cat", "ps_car_07_cat", "ps_car_08_cat", "ps_car_09_cat", "ps_car_10_cat",
    "ps_car_11_cat", "ps_car_11", "ps_car_12", "ps_car_13", "ps_car_14", "ps_car_15",
    "ps_calc_01", "ps_calc_02", "ps_calc_03", "ps_calc_04", "ps_calc_05", "ps_calc_06",
    "ps_calc_07", "ps_calc_08", "ps_calc_09", "ps_calc_10", "ps_calc_11", "ps_calc_12",
    "ps_calc_13", "ps_calc_14", "ps_calc_15_bin", "ps_calc_16_bin", "ps_calc_17_bin",
    "ps_calc_18_bin", "ps_calc_19_bin", "ps_calc_20_bin",
)

_CONTINUOUS = ("ps_reg_01", "ps_reg_02", "ps_reg_03", "ps_car_12", "ps_car_13", "ps_car_14",
               "ps_car_15", "ps_calc_01", "ps_calc_02", "ps_calc_03")


def _kind(column):
    """The kind of a feature column: "cat", "bin", "int" or "cont"."""
    if column.endswith("_cat"):
        return "cat"
    if column.endswith("_bin"):
        return "bin"
    return "cont" if column in _CONTINUOUS else "int"


COLUMN_KINDS = {column: _kind(column) for column in FEATURE_COLUMNS}
# Compact dtypes for reading a well-formed file: discrete columns fit int16 (values -1..104), so a
# frame takes a third of the memory of pandas' default int64 / float64.
CSV_DTYPES = {column: "float64" if kind == "cont" else "int16" for column, kind in COLUMN_KINDS.items()}
# Columns where -1 (missing) occurs in the full training set.
MISSING_COLUMNS = tuple(column for column in FEATURE_COLUMNS if column in MISSING_RATES)

# Roles of the classic DeepFM Porto example: ps_calc_* are known noise, the rest categorical.
ENGINEERED_COLS = ("missing_feat", "ps_car_13_x_ps_reg_03")
NUMERIC_COLS = ("ps_reg_01", "ps_reg_02", "ps_reg_03", "ps_car_12", "ps_car_13", "ps_car_14",
                "ps_car_15") + ENGINEERED_COLS
IGNORE_COLS = (ID_COL, LABEL_COL) + tuple(c for c in FEATURE_COLUMNS if c.startswith("ps_calc_"))
CATEGORICAL_COLS = tuple(c for c in FEATURE_COLUMNS if c not in NUMERIC_COLS + IGNORE_COLS)


class PortoSchemaError(ValueError):
    """A frame or file does not follow the Porto Seguro schema."""


def column_roles(numeric_cols=None, ignore_cols=None):
    """Return ``(numeric_cols, ignore_cols)`` as tuples, the Porto defaults unless overridden."""
    roles = []
    for given, default in ((numeric_cols, NUMERIC_COLS), (ignore_cols, IGNORE_COLS)):
        if isinstance(given, str):
            raise TypeError(f"column roles must be a sequence of names, not the string {given!r}")
        roles.append(default if given is None else tuple(given))
    both = sorted(set(roles[0]) & set(roles[1]))
    if both:
        raise ValueError(f"column {both[0]!r} is both numeric and ignored")
    return tuple(roles)


def _require_features(df, name):
    absent = [column for column in FEATURE_COLUMNS if column not in df.columns]
    if absent:
        raise PortoSchemaError(f"{name}: missing feature column {absent[0]!r} "
                               f"({len(absent)} of {len(FEATURE_COLUMNS)} missing)")


def add_engineered_features(df):
    """Return a new frame with ``missing_feat`` and ``ps_car_13_x_ps_reg_03`` appended.

    ``missing_feat`` counts the -1 values of a row over the 57 feature columns; the product
    is taken as is, -1 included, like the classic DeepFM Porto example.
    """
    _require_features(df, "add_engineered_features")
    return df.assign(
        missing_feat=(df[list(FEATURE_COLUMNS)] == MISSING_VALUE).sum(axis=1),
        ps_car_13_x_ps_reg_03=df["ps_car_13"] * df["ps_reg_03"],
    )


def _cell(df, column, position):
    """The value at a row position, as a plain Python object for messages."""
    return native(df[column].iloc[position])


def _row(df, position):
    """Describe a row by position and, where there is one, id."""
    if ID_COL in df.columns:
        return f"row {position} (id {_cell(df, ID_COL, position)!r})"
    return f"row {position}"


def _raise_at(df, column, bad, name, problem):
    """Raise naming ``column`` and the first row where the boolean array ``bad`` holds, if any."""
    if bad.any():
        position = int(np.argmax(bad))
        raise PortoSchemaError(f"{name}: column {column!r} {problem} at {_row(df, position)}: "
                               f"{_cell(df, column, position)!r}")


def _check_columns(df, has_target, name):
    duplicated = repeated(df.columns)
    if duplicated:
        raise PortoSchemaError(f"{name}: duplicated column name {duplicated[0]!r}")
    _require_features(df, name)
    for column, required in ((ID_COL, True), (LABEL_COL, has_target)):
        if required and column not in df.columns:
            raise PortoSchemaError(f"{name}: missing {column!r} column")
    extra = [c for c in df.columns if c not in FEATURE_COLUMNS and c not in (ID_COL, LABEL_COL)]
    if extra:
        raise PortoSchemaError(f"{name}: unexpected column {extra[0]!r}")
    if len(df) == 0:
        raise PortoSchemaError(f"{name}: no rows")


def _column_values(df, column, name):
    """The column as a float array; a non-numeric value raises."""
    series = df[column]
    if not pd.api.types.is_numeric_dtype(series):
        coerced = pd.to_numeric(series, errors="coerce")
        _raise_at(df, column, (coerced.isna() & series.notna()).to_numpy(), name,
                  "has a non-numeric value")
        series = coerced
    return series.to_numpy(dtype=float, na_value=np.nan)


def validate_porto_frame(df, has_target=True, name="train"):
    """Check a Porto Seguro frame; raise :class:`PortoSchemaError` naming column and row.

    Checks: feature columns present, no unexpected or duplicated columns, at least one row,
    ids present and unique, ``target`` (when ``has_target``) in {0, 1}, feature values
    numeric and finite (missing is -1, not NaN), ``_bin`` columns in {0, 1}. Returns None.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name}: expected a pandas DataFrame, got {type(df).__name__}")
    _check_columns(df, has_target, name)
    ids = df[ID_COL]
    _raise_at(df, ID_COL, ids.isna().to_numpy(), name, "has a missing id")
    _raise_at(df, ID_COL, ids.duplicated().to_numpy(), name, "has a duplicated id")
    if has_target:
        target = _column_values(df, LABEL_COL, name)
        _raise_at(df, LABEL_COL, ~np.isin(target, (0, 1)), name, "is not 0 or 1")
    for column in FEATURE_COLUMNS:
        values = _column_values(df, column, name)
        _raise_at(df, column, ~np.isfinite(values), name,
                  "has NaN or infinity (Porto writes -1 for missing)")
        if COLUMN_KINDS[column] == "bin":
            allowed = (0, 1, MISSING_VALUE) if column in MISSING_COLUMNS else (0, 1)
            _raise_at(df, column, ~np.isin(values, allowed), name, f"is not in {allowed}")


def read_porto_csv(path, has_target=True, name="train"):
    """Read and validate a Porto Seguro CSV; unreadable files raise :class:`PortoSchemaError`."""
    label = f"{name} file {str(Path(path))!r}"
    try:
        try:
            df = pd.read_csv(path, dtype=CSV_DTYPES)
        except (ValueError, TypeError, OverflowError):
            # Not well-formed (NaN, text, out-of-range values): read it plainly, so the
            # validator below names the column and row.
            df = pd.read_csv(path)
    except pd.errors.EmptyDataError as error:
        raise PortoSchemaError(f"{label} is empty") from error
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise PortoSchemaError(f"{label} could not be parsed: {error}") from error
    validate_porto_frame(df, has_target=has_target, name=label)
    return df
