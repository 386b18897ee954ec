"""Training on any table described by a dataset schema: what ``deepfm-train`` runs.

    read:      the training file through the schema (``DatasetSchema.read``), labels per task
    validate:  ``folds`` K (stratified for binary) or a held-out ``valid_frac``; per fold a
               ``FeatureSpec`` fitted on the fold's training rows only and a DeepFM with early
               stopping on the fold's validation rows; the task's metrics on those rows (and the
               per-user ranking metrics @10 with ``group_col``)
    final:     with ``valid_frac``, the fold's model; with ``folds``, a spec and a model fitted
               on all training rows for the mean of the folds' best epoch counts
    test:      predictions of the final model for the test file (``serving.predict_table``, the
               code ``deepfm-predict`` runs), and its metrics when the file holds the label
    outputs:   ``metrics.json``, ``learning_curve.png``, ``model/``, ``predictions.csv``, atomically
"""
import contextlib
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from . import __version__, metrics, serving
from .atomic import atomic_write
from .batches import DEFAULT_CHUNK_ROWS, FileSource
from .estimator import DeepFM
from .params import TRAIN_PARAMS, VALID_FRAC, merge
from .plots import plot_interactions, plot_learning_curves

DEFAULT_PARAMS = TRAIN_PARAMS
TASKS = {  # task -> loss, the metric that selects the epoch, the metrics reported
    "binary": ("logloss", "auc", ("auc", "logloss")),
    "regression": ("mse", "rmse", ("rmse", "mae")),
}
DEFAULT_VALID_FRAC = VALID_FRAC
RANKING_K = 10
RELEVANT_RATING = 4.0  # regression: a label >= this is relevant for the ranking metrics
DERIVED_PARAMS = ("feature_size", "field_size", "loss_type", "eval_metric")
MODEL_DIR, METRICS_FILE, PREDICTIONS_FILE, CURVE_FILE = "model", "metrics.json", "predictions.csv", "learning_curve.png"
INTERACTIONS_FILE = "interactions.png"


class ExperimentError(ValueError):
    """A run cannot start: bad parameters, split or group column."""


def resolve_params(task, file_params=None, epochs=None):
    """DeepFM parameters: ``DEFAULT_PARAMS`` < ``file_params`` < ``epochs``; loss and metric from the task.

    Checked as ``DeepFM.fit`` would, before any data is read.
    """
    file_params = dict(file_params or {})
    for key in file_params:
        if key in DERIVED_PARAMS:
            raise ExperimentError(f"params: {key!r} is set from the schema and the data; remove it")
        if key not in DeepFM().get_params():
            raise ExperimentError(f"params: unknown DeepFM parameter {key!r}")
    params = merge(DEFAULT_PARAMS, {**file_params, **({} if epochs is None else {"epoch": epochs})})
    loss, metric, _ = TASKS[task]
    params.update(loss_type=loss, eval_metric=metric)
    try:
        DeepFM(**params)._check_params()
    except (TypeError, ValueError) as err:
        raise ExperimentError(f"invalid parameters: {err}") from None
    return params


def task_metrics(task, y, pred):
    """The task's metrics of ``pred`` against ``y`` (dict name -> float)."""
    return {name: float(metrics.METRICS[name](y, pred)) for name in TASKS[task][2]}


def ranking(task, y, pred, groups):
    """Per-user ranking metrics @``RANKING_K``: relevant = label 1 (binary) or label >= 4 (regression)."""
    relevant = y >= RELEVANT_RATING if task == "regression" else y == 1
    try:
        return metrics.ranking_metrics(relevant, pred, groups, RANKING_K)
    except ValueError as err:
        return {"error": str(err)}


@dataclass
class FoldResult:
    train_rows: int
    valid_rows: int
    best_epoch: int
    epochs: int
    valid_curve: list  # eval metric per epoch
    train_curve: list
    metrics: dict  # task metrics (and ranking) of the best epoch on the validation rows
    seconds: float


@dataclass
class Experiment:
    """A schema-driven training run; ``run`` fills the results."""

    schema: object  # features.DatasetSchema
    train_path: Path
    params: dict
    test_path: Path = None
    folds: int = None
    valid_frac: float = None
    group_col: str = None
    progress: object = print
    stream: bool = False  # train from the file in chunks (batches.FileSource) instead of loading it
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    cache_dir: str = None  # with stream: where encoded chunks are kept between epochs (None: a temporary one)
    fold_results: list = field(default_factory=list)

    def say(self, line):
        if self.progress:
            self.progress(line)

    def check(self, columns):
        if self.folds is not None and self.valid_frac is not None:
            raise ExperimentError("give --folds or --valid-frac, not both")
        if self.folds is not None and not (isinstance(self.folds, int) and self.folds >= 2):
            raise ExperimentError(f"folds must be an integer >= 2, got {self.folds!r}")
        if self.valid_frac is not None and not (0.0 < self.valid_frac < 1.0):
            raise ExperimentError(f"valid_frac must be in (0, 1), got {self.valid_frac!r}")
        if self.group_col is not None and self.group_col not in columns:
            raise ExperimentError(f"the group column {self.group_col!r} is not in {self.train_path}")

    def splits(self, y):
        """(train rows, valid rows) per fold: K folds, or one seeded held-out fraction."""
        seed = self.params["random_seed"]
        stratify = y if self.schema.task == "binary" else None
        if self.folds is not None:
            if stratify is not None and min(np.bincount(y.astype(int), minlength=2)) < self.folds:
                raise ExperimentError(f"{self.folds} stratified folds need {self.folds} rows of each class")
            splitter = (StratifiedKFold if stratify is not None else KFold)(self.folds, shuffle=True, random_state=seed)
            return list(splitter.split(np.zeros(len(y)), stratify if stratify is not None else None))
        frac = self.valid_frac or DEFAULT_VALID_FRAC
        rows = np.arange(len(y))
        try:
            train, valid = train_test_split(rows, test_size=frac, random_state=seed, stratify=stratify)
        except ValueError as err:
            raise ExperimentError(f"cannot hold out {frac:.0%} of {len(y)} rows: {err}") from None
        return [(np.sort(train), np.sort(valid))]

    def fit(self, df, y, params):
        """A FeatureSpec fitted on ``df`` and a model fitted on its arrays (``params`` as given)."""
        spec = self.schema.feature_spec(list(df.columns))
        X = spec.fit_transform(df)
        model = DeepFM(**params, feature_size=spec.feat_dim, field_size=spec.field_size)
        return spec, X, model

    def run(self):
        """Read, validate, fit the final model; returns it."""
        start = time.perf_counter()
        self._fold_params = {**self.params, "verbose": self.params.get("verbose") if self.progress else False}
        if self.stream:
            model = self._run_stream()
            self.seconds = time.perf_counter() - start
            return model
        df = self.schema.read(self.train_path)
        self.check(df.columns)
        y = self.schema.labels(df, str(self.train_path))
        self.say(f"train {self.train_path}: {len(df):,} rows, task {self.schema.task}")
        splits = self.splits(y)
        for k, (train_rows, valid_rows) in enumerate(splits):
            self.fold_results.append(self._fit_fold(df, y, train_rows, valid_rows, k, len(splits)))
        if self.folds is None:
            model = self._fold_model
        else:
            epochs = max(1, int(round(np.mean([f.best_epoch + 1 for f in self.fold_results]))))
            self.say(f"final fit on all {len(df):,} rows for {epochs} epochs (the folds' mean best epoch count)")
            spec, X, model = self.fit(df, y, {**self._fold_params, "epoch": epochs, "patience": None})
            model.fit(X.Xi, X.Xv, y, Xs=X.Xs)
            model.feature_dictionary_ = spec
            self._insight_rows = X
        self.seconds = time.perf_counter() - start
        return model

    def _run_stream(self):
        """Train from the file in chunks: the spec fitted in one pass over the training rows, then
        ``DeepFM.fit_stream`` with early stopping on the held-out rows (a hash of the row number)."""
        if self.folds is not None:
            raise ExperimentError("--stream trains on one held-out fraction, not on --folds")
        if self.group_col is not None:
            raise ExperimentError("--group-col (ranking metrics) is not available with --stream yet")
        with (tempfile.TemporaryDirectory(prefix="deepfm-cache-") if self.cache_dir is None
              else contextlib.nullcontext(self.cache_dir)) as cache_dir:
            return self._fit_stream(cache_dir)

    def _fit_stream(self, cache_dir):
        start = time.perf_counter()
        source = FileSource(self.schema, self.train_path, self.chunk_rows, self.valid_frac or DEFAULT_VALID_FRAC,
                            cache_dir)
        spec, label_mean = source.fit_spec()
        self.say(f"train {self.train_path}: streamed in chunks of {self.chunk_rows:,} rows, task "
                 f"{self.schema.task}, label mean {label_mean:.4f}")
        model = DeepFM(**self._fold_params, feature_size=spec.feat_dim).fit_stream(source, early_stopping=True)
        y, predictions = model.predict_parts(source.held_out())  # by the kept (best epoch's) weights
        if not len(y):
            raise ExperimentError(f"no rows of {self.train_path} were held out for validation")
        result = task_metrics(self.schema.task, y, predictions)
        self.fold_results.append(FoldResult(source.training_rows, len(y), int(model.best_epoch_), int(model.n_epochs_),
                                            list(model.valid_result_), [], result, time.perf_counter() - start))
        self.say("streamed: best epoch {}, {}".format(model.best_epoch_ + 1, ", ".join(
            f"{name} {value:.5f}" for name, value in result.items())))
        return model

    def _fit_fold(self, df, y, train_rows, valid_rows, k, n_folds):
        start = time.perf_counter()
        self.say(f"fold {k + 1}/{n_folds}: {len(train_rows):,} training rows, {len(valid_rows):,} validation rows")
        train_df, valid_df = df.iloc[train_rows], df.iloc[valid_rows]
        spec, X, model = self.fit(train_df, y[train_rows], self._fold_params)  # fitted on the training rows only
        try:
            V = spec.transform(valid_df)
        except ValueError as err:  # the rows' index labels are the file's data rows
            raise ExperimentError(f"{self.train_path}: {err}") from None
        model.fit(X.Xi, X.Xv, y[train_rows], V.Xi, V.Xv, y[valid_rows], early_stopping=True, Xs=X.Xs, Xs_valid=V.Xs)
        model.feature_dictionary_ = spec
        self._insight_rows = V  # what the field interactions are measured on
        pred = model.predict(V.Xi, V.Xv, V.Xs)
        result = task_metrics(self.schema.task, y[valid_rows], pred)
        if self.group_col:
            result["ranking"] = ranking(self.schema.task, y[valid_rows], pred, valid_df[self.group_col].to_numpy())
        self._fold_model = model
        fold = FoldResult(len(train_rows), len(valid_rows), int(model.best_epoch_), int(model.n_epochs_),
                          list(model.valid_result_), list(model.train_result_), result, time.perf_counter() - start)
        self.say(f"fold {k + 1}/{n_folds}: best epoch {fold.best_epoch + 1}, "
                 + ", ".join(f"{name} {value:.5f}" for name, value in result.items() if name != "ranking")
                 + f" [{fold.seconds:.1f} s]")
        return fold

    def test_metrics(self, predictions_path):
        """The task's (and ranking) metrics of the written predictions against the test file's label,
        or None when the test file has no label."""
        columns = self.schema.file_columns(self.test_path)
        if self.schema.label not in columns:
            return None
        test = self.schema.read(self.test_path)
        y = self.schema.labels(test, str(self.test_path))
        pred = pd.read_csv(predictions_path)[serving.PREDICTION_COL].to_numpy(np.float64)
        result = task_metrics(self.schema.task, y, pred)
        if self.group_col:
            if self.group_col not in test.columns:
                raise ExperimentError(f"the group column {self.group_col!r} is not in {self.test_path}")
            result["ranking"] = ranking(self.schema.task, y, pred, test[self.group_col].to_numpy())
        return result

    def summary(self):
        names = TASKS[self.schema.task][2]
        folds = [vars(f) for f in self.fold_results]
        mean = {name: float(np.mean([f.metrics[name] for f in self.fold_results])) for name in names}
        validation = {"folds": self.folds} if self.folds else {"valid_frac": self.valid_frac or DEFAULT_VALID_FRAC}
        if self.stream:
            validation.update(stream=True, chunk_rows=self.chunk_rows,
                              held_out="rows whose row-number hash < valid_frac")
        return {"task": self.schema.task, "train": str(self.train_path), "test": None if self.test_path is None
                else str(self.test_path), "validation": validation,
                "eval_metric": TASKS[self.schema.task][1], "valid_mean": mean, "folds": folds,
                "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()},
                "schema": self.schema.to_dict(), "seconds": self.seconds, "deepfm_graph": __version__}


def write_outputs(experiment, model, out_dir):
    """``model/``, ``predictions.csv`` (with a test file), ``learning_curve.png`` (with matplotlib) and
    ``metrics.json`` under ``out_dir``; returns the summary written to ``metrics.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / MODEL_DIR, feature_dictionary=model.feature_dictionary_)
    summary = experiment.summary()
    if experiment.test_path is not None:
        rows = serving.predict_table(model, experiment.test_path, out_dir / PREDICTIONS_FILE)
        summary["test_rows"] = rows
        summary["test_metrics"] = experiment.test_metrics(out_dir / PREDICTIONS_FILE)
    rows = getattr(experiment, "_insight_rows", None)
    if model.use_fm and rows is not None:  # what the FM learned, on the validation (or, with folds, training) rows
        spec = model.feature_dictionary_
        names, importance = spec.fields + spec.sequence_fields, model.field_importance(rows.Xi, rows.Xv, rows.Xs)
        summary["field_importance"] = dict(zip(names, importance.tolist()))
        plot_interactions(out_dir / INTERACTIONS_FILE, model.field_interactions(rows.Xi, rows.Xv, rows.Xs), names,
                          f"Field interactions of DeepFM on {Path(experiment.train_path).name}", importance)
    plot_learning_curves(out_dir / CURVE_FILE, [(f.train_curve, f.valid_curve) for f in experiment.fold_results],
                         TASKS[experiment.schema.task][1], f"DeepFM on {Path(experiment.train_path).name}",
                         [f.best_epoch for f in experiment.fold_results])
    text = json.dumps(summary, indent=1)
    atomic_write(out_dir / METRICS_FILE, lambda f: f.write(text + "\n"))
    return summary
