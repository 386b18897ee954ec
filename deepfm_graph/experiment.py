"""Training on any table described by a dataset schema: what ``deepfm-train`` runs.

    read:      the training file through the schema (``DatasetSchema.read``), labels per task
    validate:  ``folds`` K (stratified for binary), a held-out ``valid_frac`` or separate
               ``valid_paths``; per fold a ``FeatureSpec`` fitted on the fold's training rows only
               and a DeepFM with early stopping on the fold's validation rows; the task's metrics
               on those rows (and the per-user ranking metrics @10 with ``group_col``)
    final:     with ``valid_frac`` or ``valid_paths``, the fold's model; with ``folds``, a spec and
               a model fitted on all training rows for the mean of the folds' best epoch counts
    stream:    with ``stream``, the files are read in chunks (``batches.FileSource``): the spec
               fitted in one pass, ``DeepFM.fit_stream`` validating on held-out rows (a hash of the
               row number) or the validation files, with checkpoints and resume
    test:      predictions of the final model for the test file (``serving.predict_table``, the
               code ``deepfm-predict`` runs), and its metrics when the file holds the label
    outputs:   ``metrics.json``, ``learning_curve.png``, ``model/``, ``predictions.csv``, atomically
"""
import contextlib
import json
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from . import __version__, metrics, serving
from .atomic import atomic_write
from .batches import DEFAULT_CHUNK_ROWS, FileSource, expand_paths
from .estimator import DeepFM
from .params import DEFAULT_SHUFFLE_WINDOW, TRAIN_PARAMS, VALID_FRAC, merge
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
    train_path: object  # a file; with stream also a glob pattern or a list of files/patterns
    params: dict
    test_path: Path = None
    folds: int = None
    valid_frac: float = None
    group_col: str = None
    progress: object = print
    stream: bool = False  # train from the file in chunks (batches.FileSource) instead of loading it
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    cache_dir: str = None  # with stream: where encoded chunks are kept between epochs (None: a temporary one)
    valid_paths: object = None  # validation file(s) instead of held-out rows
    shuffle_window: int = DEFAULT_SHUFFLE_WINDOW  # with stream: see DeepFM.fit_stream
    checkpoint_dir: str = None  # with stream: DeepFM.fit_stream's checkpoints
    resume: bool = False
    tensorboard_dir: str = None  # TensorBoard runs: here (one fit) or fold_<k>/ and final/ under it
    bars: object = None  # progress.FitBars, or None
    fold_results: list = field(default_factory=list)
    alerts: list = field(default_factory=list)  # warnings for metrics.json (collapsed predictions)

    def say(self, line):
        if self.progress:
            self.progress(line)

    def check(self, columns):
        if sum(x is not None for x in (self.folds, self.valid_frac, self.valid_paths)) > 1:
            raise ExperimentError("give one of --folds, --valid-frac and --valid")
        if self.folds is not None and not (isinstance(self.folds, int) and self.folds >= 2):
            raise ExperimentError(f"folds must be an integer >= 2, got {self.folds!r}")
        if self.valid_frac is not None and not (0.0 < self.valid_frac < 1.0):
            raise ExperimentError(f"valid_frac must be in (0, 1), got {self.valid_frac!r}")
        if self.group_col is not None and self.group_col not in columns:
            raise ExperimentError(f"the group column {self.group_col!r} is not in {self.train_files[0]}")

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

    def fit(self, df, y, params, run=None):
        """A FeatureSpec fitted on ``df`` and an unfitted model for its arrays (``params`` as given;
        ``run``: its TensorBoard subdirectory)."""
        spec = self.schema.feature_spec(list(df.columns))
        X = spec.fit_transform(df)
        model = DeepFM(**params, feature_size=spec.feat_dim, field_size=spec.field_size,
                       tensorboard_dir=self._board(run))
        return spec, X, model

    def _board(self, run):
        if self.tensorboard_dir is None:
            return None
        return str(Path(self.tensorboard_dir) / run) if run else str(self.tensorboard_dir)

    def _on_epoch(self, description, epochs):
        return None if self.bars is None else self.bars.epochs(description, epochs)

    def _fit_done(self):
        if self.bars is not None:
            self.bars.fit_done()

    def run(self):
        """Read, validate, fit the final model; returns it."""
        start = time.perf_counter()
        self._fold_params = {**self.params, "verbose": self.params.get("verbose") if self.progress else False}
        self.train_files = expand_paths(self.train_path)
        self.valid_files = None if self.valid_paths is None else expand_paths(self.valid_paths)
        if self.stream:
            model = self._run_stream()
            self.seconds = time.perf_counter() - start
            return model
        if len(self.train_files) > 1 or (self.valid_files and len(self.valid_files) > 1):
            raise ExperimentError("several training or validation files need --stream")
        path = self.train_files[0]
        df = self.schema.read(path)
        self.check(df.columns)
        y = self.schema.labels(df, str(path))
        self.say(f"train {path}: {len(df):,} rows, task {self.schema.task}")
        if self.valid_files:
            valid_df = self.schema.read(self.valid_files[0])
            y_valid = self.schema.labels(valid_df, str(self.valid_files[0]))
            self.say(f"validation {self.valid_files[0]}: {len(valid_df):,} rows")
            self.fold_results.append(self._fit_fold(df, y, valid_df, y_valid, 0, 1, self.valid_files[0]))
        for k, (train_rows, valid_rows) in enumerate([] if self.valid_files else self.splits(y)):
            self.fold_results.append(self._fit_fold(df.iloc[train_rows], y[train_rows], df.iloc[valid_rows],
                                                    y[valid_rows], k, self.folds or 1, path))
        if self.folds is None:
            model = self._fold_model
        else:
            epochs = max(1, int(round(np.mean([f.best_epoch + 1 for f in self.fold_results]))))
            self.say(f"final fit on all {len(df):,} rows for {epochs} epochs (the folds' mean best epoch count)")
            spec, X, model = self.fit(df, y, {**self._fold_params, "epoch": epochs, "patience": None}, "final")
            model.fit(X.Xi, X.Xv, y, Xs=X.Xs, on_epoch=self._on_epoch("final fit", epochs))
            self._fit_done()
            model.feature_dictionary_ = spec
            self._insight_rows = X
        self.seconds = time.perf_counter() - start
        return model

    def _run_stream(self):
        """Train from the files in chunks: the spec fitted in one pass over the training rows, then
        ``DeepFM.fit_stream`` with early stopping on the held-out rows (a hash of the row number) or
        on the validation files."""
        if self.folds is not None:
            raise ExperimentError("--stream validates on held-out rows or --valid files, not on --folds")
        if self.group_col is not None:
            raise ExperimentError("--group-col (ranking metrics) is not available with --stream yet")
        if self.valid_files is not None and self.valid_frac is not None:
            raise ExperimentError("give one of --valid-frac and --valid")
        with (tempfile.TemporaryDirectory(prefix="deepfm-cache-") if self.cache_dir is None
              else contextlib.nullcontext(self.cache_dir)) as cache_dir:
            return self._fit_stream(Path(cache_dir))

    def _fit_stream(self, cache_dir):
        start = time.perf_counter()
        valid_frac = 0.0 if self.valid_files else self.valid_frac or DEFAULT_VALID_FRAC
        source = FileSource(self.schema, self.train_files, self.chunk_rows, valid_frac, cache_dir / "train")
        valid = None if not self.valid_files else FileSource(self.schema, self.valid_files, self.chunk_rows,
                                                             cache_dir=cache_dir / "valid")
        spec, label_mean = source.fit_spec()
        names = ", ".join(str(p) for p in self.train_files)
        self.say(f"train {names}: streamed in chunks of {self.chunk_rows:,} rows, {source.training_rows:,} training "
                 f"rows, task {self.schema.task}, label mean {label_mean:.4f}")
        model = DeepFM(**self._fold_params, feature_size=spec.feat_dim, tensorboard_dir=self._board(None)).fit_stream(
            source, valid, early_stopping=True, shuffle_window=self.shuffle_window,
            checkpoint_dir=self.checkpoint_dir, resume=self.resume,
            on_epoch=self._on_epoch("streamed fit", self._fold_params["epoch"]))
        self._fit_done()
        y, predictions, first = [], [], None
        for part in source.held_out() if valid is None else valid.training():  # by the kept (best epoch's) weights
            y.append(part.y)
            predictions.append(model.predict(part.X.Xi, part.X.Xv, part.X.Xs))
            first = part.X if first is None else first
        if not y:
            raise ExperimentError(f"no rows of {names} were held out for validation")
        y, predictions = np.concatenate(y), np.concatenate(predictions)
        self._check_collapse(predictions, "streamed fit")
        self._insight_rows = first  # the field interactions, measured on the first validation chunk
        result = task_metrics(self.schema.task, y, predictions)
        self.fold_results.append(FoldResult(source.training_rows, len(y), int(model.best_epoch_), int(model.n_epochs_),
                                            list(model.valid_result_), [], result, time.perf_counter() - start))
        self.say("streamed: best epoch {}, {}".format(model.best_epoch_ + 1, ", ".join(
            f"{name} {value:.5f}" for name, value in result.items())))
        return model

    def _check_collapse(self, predictions, where):
        """Warn (and note for metrics.json) when the validation predictions are (nearly) constant."""
        message = metrics.collapse_warning(predictions, where, self.params.get("learning_rate"))
        if message:
            self.alerts.append(message)
            warnings.warn(message, stacklevel=3)

    def _fit_fold(self, train_df, y_train, valid_df, y_valid, k, n_folds, valid_path):
        """A spec and a model fitted on ``train_df`` (labels ``y_train``), early-stopped on ``valid_df``
        (rows of the file ``valid_path``); its ``FoldResult``."""
        start = time.perf_counter()
        self.say(f"fold {k + 1}/{n_folds}: {len(train_df):,} training rows, {len(valid_df):,} validation rows")
        run = f"fold_{k + 1}" if self.folds else None
        spec, X, model = self.fit(train_df, y_train, self._fold_params, run)  # fitted on the training rows only
        try:
            V = spec.transform(valid_df)
        except ValueError as err:  # the rows' index labels are the file's data rows
            raise ExperimentError(f"{valid_path}: {err}") from None
        model.fit(X.Xi, X.Xv, y_train, V.Xi, V.Xv, y_valid, early_stopping=True, Xs=X.Xs, Xs_valid=V.Xs,
                  on_epoch=self._on_epoch(f"fold {k + 1}/{n_folds}", self._fold_params["epoch"]))
        self._fit_done()
        model.feature_dictionary_ = spec
        self._insight_rows = V  # what the field interactions are measured on
        pred = model.predict(V.Xi, V.Xv, V.Xs)
        self._check_collapse(pred, f"fold {k + 1}/{n_folds}")
        result = task_metrics(self.schema.task, y_valid, pred)
        if self.group_col:
            if self.group_col not in valid_df.columns:
                raise ExperimentError(f"the group column {self.group_col!r} is not in {valid_path}")
            result["ranking"] = ranking(self.schema.task, y_valid, pred, valid_df[self.group_col].to_numpy())
        self._fold_model = model
        fold = FoldResult(len(train_df), len(valid_df), int(model.best_epoch_), int(model.n_epochs_),
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
        if self.group_col and self.group_col not in columns:
            raise ExperimentError(f"the group column {self.group_col!r} is not in {self.test_path}")
        y, groups = [], []
        for chunk in self.schema.read(self.test_path, chunksize=self.chunk_rows):  # the label, chunk by chunk
            y.append(self.schema.labels(chunk, str(self.test_path)))
            if self.group_col:
                groups.append(chunk[self.group_col].to_numpy())
        y = np.concatenate(y)
        pred = pd.read_csv(predictions_path, usecols=[serving.PREDICTION_COL])[serving.PREDICTION_COL].to_numpy(
            np.float64)
        result = task_metrics(self.schema.task, y, pred)
        if self.group_col:
            result["ranking"] = ranking(self.schema.task, y, pred, np.concatenate(groups))
        return result

    def summary(self):
        names = TASKS[self.schema.task][2]
        folds = [vars(f) for f in self.fold_results]
        mean = {name: float(np.mean([f.metrics[name] for f in self.fold_results])) for name in names}
        if self.folds:
            validation = {"folds": self.folds}
        elif self.valid_files:
            validation = {"valid_files": [str(p) for p in self.valid_files]}
        else:
            validation = {"valid_frac": self.valid_frac or DEFAULT_VALID_FRAC}
        if self.stream:
            validation.update(stream=True, chunk_rows=self.chunk_rows, shuffle_window=self.shuffle_window)
            if not self.valid_files:
                validation["held_out"] = "rows whose hash of file and row number < valid_frac"
        train = [str(p) for p in self.train_files]
        return {"task": self.schema.task, "train": train[0] if len(train) == 1 else train,
                "test": None if self.test_path is None else str(self.test_path), "validation": validation,
                "eval_metric": TASKS[self.schema.task][1], "valid_mean": mean, "folds": folds,
                "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()},
                "schema": self.schema.to_dict(), "seconds": self.seconds, "warnings": list(self.alerts),
                "deepfm_graph": __version__}


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
                          f"Field interactions of DeepFM on {experiment.train_files[0].name}", importance)
    plot_learning_curves(out_dir / CURVE_FILE, [(f.train_curve, f.valid_curve) for f in experiment.fold_results],
                         TASKS[experiment.schema.task][1], f"DeepFM on {experiment.train_files[0].name}",
                         [f.best_epoch for f in experiment.fold_results])
    text = json.dumps(summary, indent=1)
    atomic_write(out_dir / METRICS_FILE, lambda f: f.write(text + "\n"))
    return summary
