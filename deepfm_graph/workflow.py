"""The Porto Seguro cross-validation workflow of the classic DeepFM example (its ``main.py``).

    read_inputs: read_porto_csv (validated) -> add_engineered_features, for train and test
    run_cv:      stratified K folds; per model and fold a FeatureDictionary fitted on the
                 fold's training part only, DeepFM fitted with the fold's validation part,
                 out-of-fold and test predictions, per-epoch curves
    write_outputs: submission_<Model>.csv, oof_<Model>.csv, <Model>.png, metrics.json, and
                 model/: the first model's estimator of the last fold with its dictionary
                 (``DeepFM.load``; it predicts frames after ``add_engineered_features``),
                 each written atomically

Models: ``DeepFM`` (FM and deep part), ``FM`` (``use_deep=False``), ``DNN`` (``use_fm=False``).
A fold's score is the normalized Gini of its out-of-fold predictions; a model's CV score is
the mean and standard deviation (ddof=0, as the reference) of its fold scores.
"""
import difflib
import importlib.metadata
import json
import numbers
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import tensorflow as tf
from sklearn.model_selection import StratifiedKFold

from . import __version__, plots
from .atomic import atomic_write
from .checks import native
from .estimator import DeepFM
from .features import DataParser, FeatureDictionary, feature_fields
from .jsonfiles import read_json_object
from .metrics import GREATER_IS_BETTER, collapse_warning, gini_norm, resolve_metric
from .params import CLASSIC_PARAMS, PORTO_FOLDS, PORTO_MODELS, merge
from .plots import plot_interactions, plot_learning_curves
from .porto import ID_COL, LABEL_COL, MISSING_VALUE, add_engineered_features, column_roles, read_porto_csv

MODELS = PORTO_MODELS
DEFAULT_PARAMS = {**CLASSIC_PARAMS, "layout": "paper"}
DEFAULT_FOLDS = PORTO_FOLDS
MODEL_DIR = "model"
# Set from the fitted FeatureDictionary of each fold, never by the user.
DERIVED_PARAMS = ("feature_size", "field_size")
# Column roles may sit in a params file beside the DeepFM parameters.
ROLE_KEYS = ("numeric_cols", "ignore_cols")
_CURVE_LABELS = {"gini_norm": "Normalized Gini", "gini": "Gini", "auc": "AUC", "logloss": "Logloss"}


class WorkflowError(ValueError):
    """A run cannot start: bad parameters, column roles, folds or input files."""


# ---------------------------------------------------------------------- parameters
def load_params_file(path):
    """Read a JSON object of DeepFM parameters (and optionally ``numeric_cols``/``ignore_cols``).

    Unknown keys, and ``feature_size``/``field_size`` (set from the feature dictionary),
    raise :class:`WorkflowError`; values are checked by :func:`resolve_params`.
    """
    try:
        params = read_json_object(path, "params file")
    except ValueError as error:
        raise WorkflowError(str(error)) from None
    known = set(DeepFM().get_params()) - set(DERIVED_PARAMS) | set(ROLE_KEYS)
    for key in params:
        if key in DERIVED_PARAMS:
            raise WorkflowError(f"params file {str(path)!r}: {key!r} is set from the feature dictionary; remove it")
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise WorkflowError(f"params file {str(path)!r}: unknown key {key!r}{hint}")
    return params


def resolve_params(file_params=None, overrides=None):
    """Return ``(params, numeric_cols, ignore_cols)``: defaults < ``file_params`` < ``overrides``.

    Both dicts may hold DeepFM parameters and the role keys (None keeps the Porto roles).
    When the deep stack is resized and no ``dropout_deep`` was given, the default
    keep-probability is repeated to fit. The parameters are validated as ``DeepFM.fit``
    would, so a bad value fails here, before any data is read.
    """
    given = {**(file_params or {}), **{k: v for k, v in (overrides or {}).items() if v is not None}}
    roles = {key: given.pop(key, None) for key in ROLE_KEYS}
    params = merge(DEFAULT_PARAMS, given)
    try:
        DeepFM(**params)._check_params()
    except (TypeError, ValueError) as error:
        raise WorkflowError(f"invalid parameters: {error}") from None
    return (params,) + _roles(roles["numeric_cols"], roles["ignore_cols"])


def _roles(numeric_cols, ignore_cols):
    """``porto.column_roles`` with its errors as :class:`WorkflowError`."""
    try:
        return column_roles(numeric_cols, ignore_cols)
    except (TypeError, ValueError) as error:
        raise WorkflowError(str(error)) from None


# ---------------------------------------------------------------------- inputs
def read_inputs(train_path, test_path):
    """Read and validate both Porto files, then add the engineered columns; ``(train, test)``.

    Raises :class:`porto.PortoSchemaError` for a file off the schema (naming file, column
    and row) and :class:`WorkflowError` for one that cannot be opened.
    """
    frames = []
    for path, has_target, name in ((train_path, True, "train"), (test_path, False, "test")):
        try:
            frames.append(add_engineered_features(read_porto_csv(path, has_target=has_target, name=name)))
        except OSError as error:
            raise WorkflowError(f"{name} file {str(path)!r} cannot be read: {error.strerror}") from None
    return tuple(frames)


def check_inputs(train_df, test_df, numeric_cols, ignore_cols, folds):
    """Check roles against the frames and that every fold can hold both classes; the fields."""
    for frame, name, needed in ((train_df, "training data", (ID_COL, LABEL_COL)), (test_df, "test data", (ID_COL,))):
        for col in needed:
            if col not in frame.columns:
                raise WorkflowError(f"the {name} has no {col!r} column")
    try:
        fields = feature_fields(list(train_df.columns), numeric_cols, ignore_cols, LABEL_COL, ID_COL)
    except ValueError as error:
        raise WorkflowError(f"training data: {error}") from None
    for col in fields:
        if col not in test_df.columns:
            raise WorkflowError(f"feature column {col!r} is not in the test data")
    if not isinstance(folds, numbers.Integral) or folds < 2:
        raise WorkflowError(f"folds must be an integer >= 2, got {folds!r}")
    counts = train_df[LABEL_COL].value_counts()
    if len(counts) < 2 or counts.min() < folds:
        raise WorkflowError(f"{folds} stratified folds need at least {folds} rows of each class; "
                            f"the training data has {counts.to_dict()}")
    return fields


# ---------------------------------------------------------------------- cross-validation
@dataclass
class FoldResult:
    """One model on one fold. Curves hold the estimator's ``eval_metric`` per epoch."""

    valid_index: np.ndarray  # row positions of the validation part
    features: FeatureDictionary  # fitted on the training part only
    gini: float  # normalized Gini of the out-of-fold predictions
    train_curve: list
    valid_curve: list
    seconds: float  # fit and predict, plus encoding the fold (done once, shared by the models)
    oov_valid: int  # categorical values of the validation part outside the vocabulary
    oov_test: int


@dataclass
class ModelResult:
    name: str
    params: dict  # as given to DeepFM, less feature_size/field_size
    curve_metric: str
    oof: np.ndarray  # out-of-fold prediction per training row
    test: np.ndarray  # test predictions averaged over folds
    folds: list = field(default_factory=list)
    last_model: object = None  # the estimator of the last fold, its dictionary bundled
    interactions: np.ndarray = None  # FM models: the last fold's field interactions on its validation rows
    importance: np.ndarray = None  # ... and field importance
    warnings: list = field(default_factory=list)  # collapsed predictions, per fold

    @property
    def fold_gini(self):
        return np.array([fold.gini for fold in self.folds])

    @property
    def cv_mean(self):
        return float(self.fold_gini.mean())

    @property
    def cv_std(self):
        return float(self.fold_gini.std())

    @property
    def seconds(self):
        return float(sum(fold.seconds for fold in self.folds))


@dataclass
class CVResults:
    train_ids: np.ndarray
    train_target: np.ndarray
    test_ids: np.ndarray
    folds: int
    seed: int
    numeric_cols: tuple
    ignore_cols: tuple
    fields: list
    models: list = field(default_factory=list)


def run_cv(train_df, test_df, models=tuple(MODELS), params=None, folds=DEFAULT_FOLDS,
           seed=DEFAULT_PARAMS["random_seed"], numeric_cols=None, ignore_cols=None, progress=print,
           tensorboard_dir=None, bars=None):
    """Cross-validate each of ``models`` (keys of :data:`MODELS`); return :class:`CVResults`.

    ``train_df``/``test_df`` are prepared frames (see :func:`read_inputs`); ``params`` the
    DeepFM parameters over :data:`DEFAULT_PARAMS` (``use_fm``/``use_deep`` are set per
    model); ``seed`` seeds the fold split; ``numeric_cols``/``ignore_cols`` default to the
    Porto roles. ``progress`` gets one line per fold and model; the estimator prints its
    per-epoch line when ``params["verbose"]`` is set and ``progress`` is not None (and no ``bars``, a
    ``progress.FitBars``, draw the epochs). ``tensorboard_dir``: TensorBoard runs in
    ``<dir>/<Model>/fold_<k>``.
    Everything is checked before the first model trains (:class:`WorkflowError`).
    """
    params = {**DEFAULT_PARAMS, **(params or {})}
    unknown = [key for key in models if key not in MODELS]
    if unknown or not models:
        raise WorkflowError(f"models must be some of {list(MODELS)}, got {list(models)}")
    numeric_cols, ignore_cols = _roles(numeric_cols, ignore_cols)
    fields = check_inputs(train_df, test_df, numeric_cols, ignore_cols, folds)
    y = train_df[LABEL_COL].to_numpy()
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    results = CVResults(train_ids=train_df[ID_COL].to_numpy(), train_target=y, test_ids=test_df[ID_COL].to_numpy(),
                        folds=folds, seed=seed, numeric_cols=numeric_cols, ignore_cols=ignore_cols, fields=fields)
    say = progress or (lambda line: None)
    for key in models:
        name, use_fm, use_deep = MODELS[key]
        model_params = {**params, "use_fm": use_fm, "use_deep": use_deep,
                        "verbose": params.get("verbose", True) if progress and bars is None else False}
        results.models.append(ModelResult(name=name, params=model_params,
                                          curve_metric=resolve_metric(params["eval_metric"])[0],
                                          oof=np.zeros(len(train_df)), test=np.zeros(len(test_df))))
    for i, (train_index, valid_index) in enumerate(splits):
        fold_data = _encode_fold(train_df, test_df, train_index, valid_index, numeric_cols, ignore_cols)
        for result in results.models:
            say(f"{result.name} fold {i + 1}/{folds}: {len(train_index):,} training rows, "
                f"{len(valid_index):,} validation rows")
            board = None if tensorboard_dir is None else str(Path(tensorboard_dir, result.name, f"fold_{i + 1}"))
            on_epoch = None if bars is None else bars.epochs(f"{result.name} fold {i + 1}/{folds}",
                                                             result.params["epoch"])
            fold, valid_pred, test_pred, result.last_model = _fit_fold(fold_data, {**result.params,
                                                                                   "tensorboard_dir": board}, on_epoch)
            if bars is not None:
                bars.fit_done()
            if result.last_model.use_fm and i == folds - 1:
                result.interactions = result.last_model.field_interactions(*fold_data.valid[:2])
                result.importance = result.last_model.field_importance(*fold_data.valid[:2])
            message = collapse_warning(valid_pred, f"{result.name} fold {i + 1}/{folds}",
                                       result.params["learning_rate"])
            if message:
                result.warnings.append(message)
                warnings.warn(message, stacklevel=2)
            result.oof[valid_index] = valid_pred
            result.test += test_pred / folds
            result.folds.append(fold)
            say(f"{result.name} fold {i + 1}/{folds}: gini {fold.gini:.5f} [{fold.seconds:.1f} s]")
    for result in results.models:
        say(f"{result.name}: CV gini {result.cv_mean:.5f} ± {result.cv_std:.5f} [{result.seconds:.1f} s]")
    return results


@dataclass
class _FoldData:
    """One fold encoded by a dictionary fitted on its training part; shared by every model."""

    valid_index: np.ndarray
    features: FeatureDictionary
    train: tuple  # (Xi, Xv, y)
    valid: tuple  # (Xi, Xv, y)
    test: tuple  # (Xi, Xv)
    oov_valid: int
    oov_test: int
    seconds: float


def _encode_fold(train_df, test_df, train_index, valid_index, numeric_cols, ignore_cols):
    start = time.perf_counter()
    train_part, valid_part = train_df.iloc[train_index], train_df.iloc[valid_index]
    # Vocabulary and scaling from the training part alone: nothing of the validation part
    # or the test file leaks into what is fitted.
    features = FeatureDictionary(dfTrain=train_part, numeric_cols=numeric_cols, ignore_cols=ignore_cols,
                                 missing_value=MISSING_VALUE,
                                 label_col=LABEL_COL, id_col=ID_COL)
    parser = DataParser(features, label_col=LABEL_COL, id_col=ID_COL)
    train = parser.parse(df=train_part, has_label=True)
    valid = parser.parse(df=valid_part, has_label=True)
    oov_valid = sum(parser.oov_counts_.values())
    test = parser.parse(df=test_df)[:2]
    oov_test = sum(parser.oov_counts_.values())
    return _FoldData(valid_index, features, train, valid, test, oov_valid, oov_test, time.perf_counter() - start)


def _fit_fold(data, params, on_epoch=None):
    """Fit one model on one encoded fold; return its :class:`FoldResult`, validation and test predictions,
    and the fitted estimator (its dictionary bundled)."""
    start = time.perf_counter()
    model = DeepFM(**params, feature_size=data.features.feat_dim, field_size=data.features.field_size)
    model.fit(*data.train, *data.valid, on_epoch=on_epoch)
    model.feature_dictionary_ = data.features
    valid_pred, test_pred = model.predict(*data.valid[:2]), model.predict(*data.test)
    fold = FoldResult(valid_index=data.valid_index, features=data.features,
                      gini=float(gini_norm(data.valid[2], valid_pred)), train_curve=list(model.train_result_),
                      valid_curve=list(model.valid_result_), seconds=data.seconds + time.perf_counter() - start,
                      oov_valid=data.oov_valid, oov_test=data.oov_test)
    return fold, valid_pred, test_pred, model


# ---------------------------------------------------------------------- outputs
def _write_csv(df, path):
    atomic_write(path, lambda f: df.to_csv(f, index=False, lineterminator="\n"))


def plot_curves(result, path):
    """Train (solid) and valid (dashed) curve per epoch, one colour per fold, as a PNG; False without matplotlib."""
    greater = GREATER_IS_BETTER.get(result.curve_metric, True)
    best = [int(np.argmax(fold.valid_curve) if greater else np.argmin(fold.valid_curve)) if fold.valid_curve else None
            for fold in result.folds]
    return plot_learning_curves(path, [(fold.train_curve, fold.valid_curve) for fold in result.folds],
                                _CURVE_LABELS.get(result.curve_metric, result.curve_metric),
                                f"{result.name} (CV gini {result.cv_mean:.4f} ± {result.cv_std:.4f})", best)


def package_versions():
    return {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
            "sklearn": sklearn.__version__, "tensorflow": tf.__version__,
            "matplotlib": importlib.metadata.version("matplotlib") if plots.available() else None,
            "deepfm_graph": __version__}


def _jsonable(value):
    if isinstance(value, np.generic):
        return native(value)
    if isinstance(value, (tuple, np.ndarray)):
        return list(value)
    if callable(value):
        return getattr(value, "__name__", repr(value))
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def metrics_summary(results, inputs=None):
    """The content of ``metrics.json`` as a dict; ``inputs`` maps "train"/"test" to paths."""
    paths = inputs or {}
    models = {}
    for result in results.models:
        models[result.name] = {
            "cv_gini_mean": result.cv_mean,
            "warnings": list(result.warnings),
            "cv_gini_std": result.cv_std,
            "fold_gini": result.fold_gini.tolist(),
            "oof_gini": float(gini_norm(results.train_target, result.oof)),
            "curve_metric": result.curve_metric,
            "train_curve": [fold.train_curve for fold in result.folds],
            "valid_curve": [fold.valid_curve for fold in result.folds],
            "fold_seconds": [fold.seconds for fold in result.folds],
            "seconds": result.seconds,
            "params": result.params,
            "feature_size": [fold.features.feat_dim for fold in result.folds],
            "field_size": [fold.features.field_size for fold in result.folds],
            "oov_valid": [fold.oov_valid for fold in result.folds],
            "oov_test": [fold.oov_test for fold in result.folds],
        }
    return {
        "seed": results.seed,
        "folds": results.folds,
        "std_ddof": 0,
        "inputs": {"train": {"path": paths.get("train"), "rows": len(results.train_ids)},
                   "test": {"path": paths.get("test"), "rows": len(results.test_ids)}},
        "columns": {"numeric": list(results.numeric_cols), "ignore": list(results.ignore_cols),
                    "fields": list(results.fields)},
        "versions": package_versions(),
        "models": models,
    }


def write_outputs(results, out_dir, inputs=None):
    """Write every output file under ``out_dir`` (created if absent); return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for result in results.models:
        paths = [out_dir / f"submission_{result.name}.csv", out_dir / f"oof_{result.name}.csv",
                 out_dir / f"{result.name}.png"]
        _write_csv(pd.DataFrame({ID_COL: results.test_ids, LABEL_COL: result.test}), paths[0])
        _write_csv(pd.DataFrame({ID_COL: results.train_ids, LABEL_COL: results.train_target,
                                 "prediction": result.oof}), paths[1])
        written += paths if plot_curves(result, paths[2]) else paths[:2]
        if result.interactions is not None and plot_interactions(
                out_dir / f"interactions_{result.name}.png", result.interactions, results.fields,
                f"{result.name}: field interactions (last fold's validation rows)", result.importance):
            written.append(out_dir / f"interactions_{result.name}.png")
    first = results.models[0]
    first.last_model.save(out_dir / MODEL_DIR, feature_dictionary=first.last_model.feature_dictionary_)
    written.append(out_dir / MODEL_DIR)
    metrics_path = out_dir / "metrics.json"
    text = json.dumps(metrics_summary(results, inputs), indent=1, default=_jsonable)
    atomic_write(metrics_path, lambda f: f.write(text + "\n"))
    return written + [metrics_path]


def format_table(results):
    """The final table: model, CV gini mean ± std, seconds."""
    lines = [f"{'model':<8} {'CV gini (mean ± std)':>22} {'seconds':>8}"]
    for result in results.models:
        lines.append(f"{result.name:<8} {f'{result.cv_mean:.5f} ± {result.cv_std:.5f}':>22} {result.seconds:>8.1f}")
    return "\n".join(lines)
