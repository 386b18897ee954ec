"""``DeepFM``: a scikit-learn-style estimator over the TF1 graph in ``graph.py``.

Accepts the classic reference's parameter dict unchanged, validates everything at
``fit``, trains in an explicit ``Session`` loop and records per-epoch metrics.
"""
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow.compat.v1 as tf
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from . import graph as G
from . import persistence, serving, summaries
from .batches import Part, window_steps
from .checks import is_int, is_real
from .features.spec import FeatureArrays
from .metrics import logloss, resolve_metric, rmse
from .params import DEFAULT_SHUFFLE_WINDOW

# Predicting: PREDICT_THREADS concurrent session.run calls of up to PREDICT_BATCH_SIZE rows each and
# PREDICT_RUN_VALUES embedding values (rows * F * K; ~10 MB a tensor), so wide models predict in smaller
# runs (measured for the classic 39 x 8 on 2 cores: 2 x 8,192 rows +13% over 2 x 4,096 and +5% over
# 1 x 8,192; 16,384 is slower).
PREDICT_THREADS = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 4)
PREDICT_BATCH_SIZE = 8192
PREDICT_RUN_VALUES = 8192 * 39 * 8
INTERACTION_VALUES = 1 << 22  # field_interactions: pairwise products held at once (float64, 32 MB)
REFIT_MAX_EPOCHS = 100  # the reference's cap when refitting on train + valid
BATCH_NORM_STATISTICS = ("population", "moving")
ROW_BUCKET = 1 << 16  # stream training pads each step's arrays to a multiple of this many rows
BN_CALIBRATION_ROWS = 65_536  # training rows the batch-norm population statistics are measured on (8 runs)
LOSSES = {"logloss": logloss, "mse": lambda y, p: rmse(y, p) ** 2}


class DivergenceError(ValueError):
    """Training diverged: a weight became NaN or infinite. The model is left unfitted."""


def _check(condition, message):
    if not condition:
        raise ValueError(message)


def _as_2d(X, name):
    """``X`` as a non-empty 2-D numeric numpy array (no copy when it already is one)."""
    try:
        arr = np.asarray(X)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular 2-D array (rows x fields): {err}") from None
    if arr.dtype == object:
        raise ValueError(f"{name} must be a rectangular 2-D numeric array; got ragged rows or non-numeric values")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows x fields), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr


def predict_run_rows(field_size, embedding_size):
    """Rows per prediction run: ``PREDICT_BATCH_SIZE``, fewer where a run would hold more than
    ``PREDICT_RUN_VALUES`` embedding values."""
    return max(1, min(PREDICT_BATCH_SIZE, PREDICT_RUN_VALUES // (field_size * embedding_size)))


def _pairwise_abs_sum(embeddings):
    """sum over rows of |<e_i, e_j>| for every pair of fields of ``embeddings`` (N * F * K): F * F."""
    return np.abs(np.einsum("nik,njk->nij", embeddings, embeddings, dtype=np.float64)).sum(0)


def _flat(X):
    """``FeatureArrays`` as one flat tuple: Xi, Xv, then index and weight of each sequence field."""
    return (X.Xi, X.Xv) + tuple(a for pair in X.Xs for a in pair)


def _padded(array, rows):
    """``array`` with zero rows appended up to ``rows`` rows."""
    return np.pad(array, [(0, rows - len(array))] + [(0, 0)] * (array.ndim - 1))


def _first_bad(mask):
    row, col = np.argwhere(mask)[0]
    return f"row {row}, field {col}"


class DeepFM(BaseEstimator):
    """DeepFM for binary classification (``loss_type="logloss"``) or regression (``"mse"``).

    Parameters follow the classic TF1 reference (``dropout_*`` are keep-probabilities),
    plus ``layout`` (``"paper"``: sigmoid(y_FM + y_DNN); ``"concat"``: the reference's
    concat-projection), ``l2_reg_embedding``, ``patience`` (early stopping after that
    many epochs without improvement; ``None``: the reference's rule of five consecutive
    worsening epochs), ``eval_train`` (score the training set every epoch) and
    ``training_loop``: ``"graph"`` runs each epoch as one ``session.run`` over data held
    in the graph, ``"feed"`` one ``session.run`` per fed batch as the reference does;
    both take the same batches in the same order and give the same model.
    ``tensorboard_dir``: write TensorBoard summaries there (``summaries.EpochSummaries``: the graph,
    per epoch the loss and metric on the training and validation rows scored, the learning rate and
    weight histograms); ``None``: nothing is written or computed.
    ``batch_norm_statistics`` (with ``batch_norm``): ``"population"`` measures the statistics that
    prediction uses after every epoch, on training rows in the network as it predicts (calibrated
    predictions); ``"moving"`` keeps the reference's moving averages (``batch_norm_decay``).
    ``greater_is_better=None`` follows the metric. ``feature_size`` should come from the
    feature dictionary (``feat_dim``); when omitted it is inferred from the data.
    """

    def __init__(self, feature_size=None, field_size=None, embedding_size=8, dropout_fm=(1.0, 1.0),
                 deep_layers=(32, 32), dropout_deep=(0.5, 0.5, 0.5), deep_layers_activation="relu",
                 epoch=10, batch_size=256, learning_rate=0.001, optimizer_type="adam", batch_norm=0,
                 batch_norm_decay=0.995, verbose=False, random_seed=2016, use_fm=True, use_deep=True,
                 loss_type="logloss", eval_metric="gini_norm", l2_reg=0.0, greater_is_better=None,
                 layout="paper", l2_reg_embedding=0.0, patience=None, eval_train=True, training_loop="graph",
                 tensorboard_dir=None, batch_norm_statistics="population"):
        self.feature_size = feature_size
        self.field_size = field_size
        self.embedding_size = embedding_size
        self.dropout_fm = dropout_fm
        self.deep_layers = deep_layers
        self.dropout_deep = dropout_deep
        self.deep_layers_activation = deep_layers_activation
        self.epoch = epoch
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer_type = optimizer_type
        self.batch_norm = batch_norm
        self.batch_norm_decay = batch_norm_decay
        self.verbose = verbose
        self.random_seed = random_seed
        self.use_fm = use_fm
        self.use_deep = use_deep
        self.loss_type = loss_type
        self.eval_metric = eval_metric
        self.l2_reg = l2_reg
        self.greater_is_better = greater_is_better
        self.layout = layout
        self.l2_reg_embedding = l2_reg_embedding
        self.patience = patience
        self.eval_train = eval_train
        self.training_loop = training_loop
        self.tensorboard_dir = tensorboard_dir
        self.batch_norm_statistics = batch_norm_statistics

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        """Validate the parameters; return ``(activation, metric name, metric fn, greater_is_better)``."""
        for name in ("embedding_size", "epoch", "batch_size"):
            value = getattr(self, name)
            _check(is_int(value) and value >= 1, f"{name} must be a positive integer, got {value!r}")
        for name in ("feature_size", "field_size"):
            value = getattr(self, name)
            _check(value is None or (is_int(value) and value >= 1),
                   f"{name} must be a positive integer or None, got {value!r}")
        try:
            layers = tuple(self.deep_layers)
        except TypeError:
            raise ValueError(f"deep_layers must be a sequence of positive integers, got {self.deep_layers!r}") from None
        _check(all(is_int(u) and u >= 1 for u in layers),
               f"deep_layers must be a sequence of positive integers, got {self.deep_layers!r}")
        for name, expected in (("dropout_fm", 2), ("dropout_deep", len(layers) + 1)):
            value = getattr(self, name)
            keeps = tuple(value) if isinstance(value, (list, tuple, np.ndarray)) else ()
            _check(len(keeps) == expected and all(is_real(k) and 0.0 < k <= 1.0 for k in keeps),
                   f"{name} must be {expected} keep-probabilities in (0, 1], got {value!r}")
        _check(is_real(self.learning_rate) and self.learning_rate > 0 and np.isfinite(self.learning_rate),
               f"learning_rate must be a positive number, got {self.learning_rate!r}")
        _check(self.optimizer_type in G.OPTIMIZERS,
               f"optimizer_type must be one of {sorted(G.OPTIMIZERS)}, got {self.optimizer_type!r}")
        _check(self.batch_norm in (0, 1, True, False), f"batch_norm must be 0/1 or a bool, got {self.batch_norm!r}")
        _check(is_real(self.batch_norm_decay) and 0.0 < self.batch_norm_decay < 1.0,
               f"batch_norm_decay must be in (0, 1), got {self.batch_norm_decay!r}")
        _check(is_int(self.random_seed), f"random_seed must be an integer, got {self.random_seed!r}")
        _check(self.use_fm in (0, 1, True, False) and self.use_deep in (0, 1, True, False),
               "use_fm and use_deep must be booleans")
        _check(self.use_fm or self.use_deep, "at least one of use_fm and use_deep must be true")
        _check(self.loss_type in G.LOSSES, f"loss_type must be one of {G.LOSSES}, got {self.loss_type!r}")
        _check(self.layout in G.LAYOUTS, f"layout must be one of {G.LAYOUTS}, got {self.layout!r}")
        for name in ("l2_reg", "l2_reg_embedding"):
            value = getattr(self, name)
            _check(is_real(value) and value >= 0, f"{name} must be a non-negative number, got {value!r}")
        _check(self.greater_is_better in (None, True, False),
               f"greater_is_better must be None or a bool, got {self.greater_is_better!r}")
        _check(self.batch_norm_statistics in BATCH_NORM_STATISTICS, f"batch_norm_statistics must be one of "
               f"{BATCH_NORM_STATISTICS}, got {self.batch_norm_statistics!r}")
        if not (self.tensorboard_dir is None or isinstance(self.tensorboard_dir, (str, os.PathLike))):
            raise TypeError(f"tensorboard_dir must be a directory path or None, got {self.tensorboard_dir!r}")
        _check(self.training_loop in G.TRAINING_LOOPS,
               f"training_loop must be one of {G.TRAINING_LOOPS}, got {self.training_loop!r}")
        _check(self.patience is None or (is_int(self.patience) and self.patience >= 1),
               f"patience must be None or a positive integer, got {self.patience!r}")
        activation = self.deep_layers_activation
        if isinstance(activation, str):
            _check(activation in G.ACTIVATIONS,
                   f"deep_layers_activation must be a callable or one of {sorted(G.ACTIVATIONS)}, got {activation!r}")
            activation = G.ACTIVATIONS[activation]
        elif not callable(activation):
            raise ValueError(f"deep_layers_activation must be a callable or a name, got {activation!r}")
        metric_name, metric, metric_greater = resolve_metric(self.eval_metric)
        greater = self.greater_is_better
        if greater is None:
            greater = True if metric_greater is None else metric_greater
        return layers, activation, metric_name, metric, greater

    def _check_X(self, Xi, Xv, suffix="", Xs=None):
        """Validate a table's arrays; return them as ``FeatureArrays`` of contiguous int32 / float32."""
        name_i, name_v = f"Xi{suffix}", f"Xv{suffix}"
        Xi, Xv = _as_2d(Xi, name_i), _as_2d(Xv, name_v)
        if Xi.shape != Xv.shape:
            raise ValueError(f"{name_i} and {name_v} must have the same shape, got {Xi.shape} and {Xv.shape}")
        if not np.issubdtype(Xi.dtype, np.integer):
            raise TypeError(f"{name_i} must hold integer feature indices, got dtype {Xi.dtype}")
        field_size = getattr(self, "field_size_", None)
        if field_size is not None and Xi.shape[1] != field_size:
            raise ValueError(f"{name_i} has {Xi.shape[1]} fields, the model expects field_size={field_size}")
        feature_size = getattr(self, "feature_size_", None)
        if Xi.min() < 0:
            raise ValueError(f"{name_i} holds a negative feature index at {_first_bad(Xi < 0)}")
        if feature_size is not None and Xi.max() >= feature_size:
            raise ValueError(f"{name_i} holds feature index {Xi.max()} >= feature_size={feature_size} "
                             f"at {_first_bad(Xi >= feature_size)}")
        Xv = np.ascontiguousarray(Xv, dtype=np.float32)
        finite = np.isfinite(Xv)
        if not finite.all():
            raise ValueError(f"{name_v} holds a non-finite value (NaN or inf) at {_first_bad(~finite)}")
        return FeatureArrays(np.ascontiguousarray(Xi, dtype=np.int32), Xv, self._check_Xs(Xs, Xi.shape[0], suffix))

    def _check_Xs(self, Xs, n_rows, suffix):
        """Validate the sequence fields' ``(index, weight)`` blocks (n_rows * L each); a tuple of them."""
        name = "Xs_valid" if suffix == "_valid" else "Xs"
        if Xs is None:
            Xs = ()
        if isinstance(Xs, (str, bytes, np.ndarray)) or not hasattr(Xs, "__len__"):
            raise TypeError(f"{name} must be a sequence of (index, weight) pairs, one per sequence field")
        expected = getattr(self, "sequence_lengths_", None)
        if expected is not None and len(Xs) != len(expected):
            raise ValueError(f"{name} has {len(Xs)} sequence fields, the model expects {len(expected)}")
        feature_size = getattr(self, "feature_size_", None) or (self.feature_size if is_int(self.feature_size)
                                                                else None)  # at fit: the parameter
        blocks = []
        for s, pair in enumerate(Xs):
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise TypeError(f"{name}[{s}] must be an (index, weight) pair of 2-D arrays")
            index, weight = _as_2d(pair[0], f"{name}[{s}] index"), _as_2d(pair[1], f"{name}[{s}] weight")
            if index.shape != weight.shape or index.shape[0] != n_rows:
                raise ValueError(f"{name}[{s}] index and weight must both be {n_rows} rows x slots, got "
                                 f"{index.shape} and {weight.shape}")
            if expected is not None and index.shape[1] != expected[s]:
                raise ValueError(f"{name}[{s}] has {index.shape[1]} slots, the model expects {expected[s]}")
            if not np.issubdtype(index.dtype, np.integer):
                raise TypeError(f"{name}[{s}] index must hold integer feature indices, got dtype {index.dtype}")
            if index.min() < 0 or (feature_size is not None and index.max() >= feature_size):
                bad = (index < 0) | (index >= (feature_size or np.iinfo(np.int64).max))
                raise ValueError(f"{name}[{s}] index holds feature index {index[tuple(np.argwhere(bad)[0])]} outside "
                                 f"[0, feature_size) at {_first_bad(bad)}")
            weight = np.ascontiguousarray(weight, dtype=np.float32)
            if not np.isfinite(weight).all():
                raise ValueError(f"{name}[{s}] weight holds a non-finite value at {_first_bad(~np.isfinite(weight))}")
            blocks.append((np.ascontiguousarray(index, dtype=np.int32), weight))
        return tuple(blocks)

    def _check_y(self, y, n_rows, name):
        try:
            y = np.asarray(y, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be a 1-D numeric array: {err}") from None
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or y.shape[0] != n_rows:
            raise ValueError(f"{name} must be 1-D with one label per row ({n_rows}), got shape {y.shape}")
        if not np.isfinite(y).all():
            raise ValueError(f"{name} holds a non-finite label at row {np.flatnonzero(~np.isfinite(y))[0]}")
        if self.loss_type == "logloss" and not np.isin(y, (0.0, 1.0)).all():
            bad = np.flatnonzero(~np.isin(y, (0.0, 1.0)))[0]
            raise ValueError(f"{name} must hold 0/1 labels for loss_type='logloss'; row {bad} is {y[bad]}")
        return np.ascontiguousarray(y)

    def _check_fitted(self):
        if getattr(self, "session_", None) is None:
            raise NotFittedError("This DeepFM instance is not fitted yet: call fit() first")

    # ------------------------------------------------------------------ fitting
    def fit(self, Xi_train, Xv_train, y_train, Xi_valid=None, Xv_valid=None, y_valid=None,
            early_stopping=False, refit=False, checkpoint_dir=None, resume=False, Xs=None, Xs_valid=None,
            on_epoch=None):
        """Train on ``(Xi_train, Xv_train, y_train)``; score ``*_valid`` every epoch when given.

        ``Xs`` / ``Xs_valid``: the sequence fields' ``(index, weight)`` blocks (rows * L each), as
        ``FeatureSpec.transform`` gives them in ``FeatureArrays.Xs``; none by default.

        ``early_stopping`` stops by ``patience`` (or the reference's rule) and keeps the
        best validation epoch's weights; ``refit`` then goes on training on train + valid
        until the training score reaches that of the best epoch, as the reference does.
        ``checkpoint_dir`` saves ``last/`` after every epoch and ``best/`` at the best
        validation epoch (``persistence.TrainingCheckpoints``); without ``resume`` it starts
        afresh, removing earlier ones. ``resume=True`` continues from ``last/`` (if there is
        one) exactly as the uninterrupted run would have; the parameters but ``epoch``, ``verbose``
        and ``tensorboard_dir``, and the data, must be those of the checkpointed run.
        ``on_epoch(model, epoch)`` is called after every epoch (progress bars).
        """
        if resume and checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir")
        layers, activation = self._begin_fit()
        self.field_size_ = self.field_size  # _check_X holds the data to it; None: taken from the data
        train = self._check_X(Xi_train, Xv_train, "_train", Xs)
        self.field_size_ = train.Xi.shape[1]
        self.sequence_lengths_ = tuple(index.shape[1] for index, _ in train.Xs)
        y = self._check_y(y_train, len(train), "y_train")
        has_valid = Xi_valid is not None or Xv_valid is not None or y_valid is not None
        if has_valid:
            if Xi_valid is None or Xv_valid is None or y_valid is None:
                raise ValueError("Xi_valid, Xv_valid and y_valid must be given together")
            valid = self._check_X(Xi_valid, Xv_valid, "_valid", Xs_valid)
            y_va = self._check_y(y_valid, len(valid), "y_valid")
        elif early_stopping or refit:
            raise ValueError("early_stopping and refit need validation data (Xi_valid, Xv_valid, y_valid)")
        elif Xs_valid is not None:
            raise ValueError("Xs_valid was given without validation data")
        self.feature_size_ = self._resolve_feature_size(train, valid if has_valid else None)

        self._start_session(self._graph_config(layers, activation, self._base_rate_bias(y)), self.training_loop)

        self.train_result_, self.valid_result_, self.epoch_seconds_ = [], [], []
        self.best_epoch_, best_weights, stopped = None, None, False
        if checkpoint_dir is not None:
            data = _flat(train) + (y,) + (_flat(valid) + (y_va,) if has_valid else ())
            checkpoints = persistence.TrainingCheckpoints(self, checkpoint_dir, persistence.data_identity(data),
                                                          early_stopping)
            stopped, best_weights = checkpoints.start(resume)
        calibration = self._calibration_rows(train)
        with summaries.open_summaries(self.tensorboard_dir, self) as board:
            for epoch in range(len(self.epoch_seconds_), 0 if stopped else self.epoch):
                start, losses = time.perf_counter(), {}
                self._train_epoch(train, y, epoch)
                self._check_finite(epoch)
                self._calibrate_batch_norm(calibration)
                self.epoch_seconds_.append(time.perf_counter() - start)
                self.n_epochs_ = epoch + 1
                if self.eval_train:
                    self.train_result_.append(self._score(train, y, losses, "train/loss"))
                if has_valid:
                    score = self._score(valid, y_va, losses, "valid/loss")
                    best_weights = self._track_valid(epoch, score, early_stopping, best_weights)
                self._end_epoch(epoch, start, board, losses, on_epoch)
                stopped = early_stopping and self._should_stop()
                if checkpoint_dir is not None:
                    checkpoints.save(stopped)
                if stopped:
                    break
        if early_stopping:
            self._set_weights(best_weights)
        if refit and has_valid:
            self._refit(FeatureArrays.concatenate(train, valid), np.concatenate([y, y_va]))
        return self

    def fit_stream(self, source, valid=None, early_stopping=False, shuffle_window=DEFAULT_SHUFFLE_WINDOW,
                   checkpoint_dir=None, resume=False, checkpoint_chunks=1, on_epoch=None):
        """Train on the chunks of ``source`` (``batches.FileSource`` with a fitted spec), holding a few
        chunks in memory, not the files.

        Each epoch is one pass over the source's training rows: chunk after chunk, each trained by the
        epoch kernel while the next is read, with the rows shuffled within a window
        (``batches.window_steps``: each chunk with ``shuffle_window`` rows kept back from the ones
        before) and, from the second epoch on when the source caches its chunks, the chunks in a
        seeded order; the same seed gives the same model. Then the validation rows are scored for
        ``valid_result_`` (``early_stopping`` as in ``fit``): those of ``valid`` (a ``FileSource`` of
        separate files; the source's spec encodes them) or else the source's held-out rows.
        ``eval_train`` is not used (scoring the training rows would take another pass). A source of
        one chunk trains exactly as ``fit`` on its arrays.

        ``checkpoint_dir`` saves ``last/`` every ``checkpoint_chunks`` chunks and after every epoch,
        ``best/`` at the best validation epoch; ``resume=True`` goes on from ``last/`` at its chunk
        (skipping the chunks before it, with the rows it kept back), giving the model the
        uninterrupted run would have. The source is checked by its identity (files, sizes,
        modification times, chunking, spec), not by hashing the data. ``on_epoch`` as in ``fit``.
        """
        spec = source.spec
        if spec is None:
            raise ValueError("the source's feature spec is not fitted: call source.fit_spec() first")
        if not (is_int(shuffle_window) and shuffle_window >= 0):
            raise ValueError(f"shuffle_window must be an integer >= 0, got {shuffle_window!r}")
        if not (is_int(checkpoint_chunks) and checkpoint_chunks >= 1):
            raise ValueError(f"checkpoint_chunks must be a positive integer, got {checkpoint_chunks!r}")
        if resume and checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir")
        if valid is not None:
            if valid.valid_frac:
                raise ValueError("the validation source must not hold rows out itself (valid_frac=0)")
            valid.spec = spec
        elif early_stopping and not source.valid_frac:
            raise ValueError("early_stopping needs validation rows: a valid source or the source's valid_frac")
        layers, activation = self._begin_fit()
        self.field_size_, self.sequence_lengths_ = spec.field_size, tuple(spec.sequence_lengths)
        self.feature_size_ = spec.feat_dim
        if self.feature_size is not None and self.feature_size != spec.feat_dim:
            raise ValueError(f"feature_size={self.feature_size} differs from the spec's feat_dim={spec.feat_dim}")
        bias = self._base_rate_bias(np.array([source.label_mean], np.float32))
        self._start_session(self._graph_config(layers, activation, bias), self.training_loop)
        self.train_result_, self.valid_result_, self.epoch_seconds_ = [], [], []
        self.n_epochs_, self.best_epoch_, best_weights, stopped = 0, None, None, False
        checkpoints = position = None
        if checkpoint_dir is not None:
            identity = {"source": source.identity(), "valid": None if valid is None else valid.identity(),
                        "shuffle_window": int(shuffle_window)}
            checkpoints = persistence.TrainingCheckpoints(self, checkpoint_dir, identity, early_stopping)
            stopped, best_weights = checkpoints.start(resume)
            position = checkpoints.position
        rows = source.chunk_rows + shuffle_window + self.batch_size  # the most a step holds
        capacity = -(-rows // ROW_BUCKET) * ROW_BUCKET
        with summaries.open_summaries(self.tensorboard_dir, self) as board:
            for epoch in range(len(self.epoch_seconds_), 0 if stopped else self.epoch):
                chunks, seconds, carry = position or (0, 0.0, None)
                position, start = None, time.perf_counter() - seconds
                shuffle = [self.random_seed, epoch] if epoch > 0 and source.shuffles_chunks() else None
                steps = window_steps(source.training(shuffle, chunks), shuffle_window, self.batch_size,
                                     lambda n, k, epoch=epoch: self._chunk_order(n, epoch, k), chunks,
                                     None if carry is None else Part.from_dict(carry))
                last = None
                for step in steps:
                    if len(step.order):
                        last = step.part  # the batch-norm statistics are measured on the last chunk's rows
                        self._train_rows(self._check_part(step.part), self._check_y(step.part.y, len(step.part), "y"),
                                         step.order, capacity)
                        self._check_finite(epoch)
                    if checkpoints is not None and step.carry is not None and step.chunks % checkpoint_chunks == 0:
                        checkpoints.save(False, (step.chunks, time.perf_counter() - start, step.carry.to_dict()))
                if last is not None:
                    self._calibrate_batch_norm(last.X)
                self.epoch_seconds_.append(time.perf_counter() - start)
                self.n_epochs_ = epoch + 1
                labels, predictions = self.predict_parts(source.held_out() if valid is None else valid.training())
                losses = {}
                if len(labels):
                    score = self._metrics_of(labels, predictions, losses, "valid/loss")
                    best_weights = self._track_valid(epoch, score, early_stopping, best_weights)
                self._end_epoch(epoch, start, board, losses, on_epoch)
                stopped = early_stopping and bool(self.valid_result_) and self._should_stop()
                if checkpoints is not None:
                    checkpoints.save(stopped)
                if stopped:
                    break
        if early_stopping and best_weights is not None:
            self._set_weights(best_weights)
        self.feature_dictionary_ = spec
        return self

    def predict_parts(self, parts):
        """``(labels, predictions)`` of the ``batches.Part`` s of ``parts`` (such as a source's held-out
        rows), concatenated; empty arrays for none."""
        labels, predictions = [np.zeros(0, np.float32)], [np.zeros(0, np.float32)]
        for part in parts:
            labels.append(part.y)
            predictions.append(self._predict_checked(self._check_part(part)))
        return np.concatenate(labels), np.concatenate(predictions)

    def _check_part(self, part):
        """A source's ``Part`` checked as ``fit`` checks arrays."""
        return self._check_X(part.X.Xi, part.X.Xv, Xs=part.X.Xs)

    def _begin_fit(self):
        """Validate the parameters and forget an earlier fit; returns ``(layers, activation)``."""
        layers, activation, self.metric_name_, self._metric, self.greater_is_better_ = self._check_params()
        self.fitted_params_ = self.get_params(deep=False)  # set_params after fit leaves the model as fitted
        self._close_session()
        for name in ("feature_size_", "refit_epochs_", "feature_dictionary_", "sequence_lengths_"):
            self.__dict__.pop(name, None)
        return layers, activation

    def _track_valid(self, epoch, score, early_stopping, best_weights):
        """Record an epoch's validation ``score``; returns the best epoch's weights (with early stopping)."""
        self.valid_result_.append(score)
        best = self.best_epoch_
        if best is None or self._better(score, self.valid_result_[best]):
            self.best_epoch_ = epoch
            if early_stopping:
                best_weights = self.get_weights()
        return best_weights

    def _graph_config(self, layers, activation, output_bias):
        return G.GraphConfig(
            feature_size=self.feature_size_, field_size=self.field_size_, embedding_size=self.embedding_size,
            deep_layers=layers, activation=activation, dropout_fm=tuple(map(float, self.dropout_fm)),
            dropout_deep=tuple(map(float, self.dropout_deep)), use_fm=bool(self.use_fm),
            use_deep=bool(self.use_deep), layout=self.layout, batch_norm=bool(self.batch_norm),
            batch_norm_decay=float(self.batch_norm_decay), loss_type=self.loss_type,
            l2_reg=float(self.l2_reg), l2_reg_embedding=float(self.l2_reg_embedding),
            optimizer_type=self.optimizer_type, learning_rate=float(self.learning_rate),
            random_seed=int(self.random_seed), output_bias=output_bias,
            sequence_lengths=tuple(getattr(self, "sequence_lengths_", None) or ()))

    def _start_session(self, cfg, training_loop):
        """Build the graph for ``cfg`` and a session with freshly initialised variables."""
        self._graph = G.build_graph(cfg, training_loop)
        self.graph_ = self._graph.graph
        self.session_ = tf.Session(graph=self.graph_)
        self.session_.run(self._graph.init_op)

    def _resolve_feature_size(self, train, valid):
        seen = 1 + max(int(index.max()) for arrays in (train, valid) if arrays is not None
                       for index in (arrays.Xi, *(i for i, _ in arrays.Xs)))
        if self.feature_size is None:
            warnings.warn(f"feature_size inferred from the data as {seen}: indices never seen here (such as "
                          "out-of-vocabulary ones) will be rejected; pass feature_size=FeatureDictionary.feat_dim",
                          stacklevel=3)
            return seen
        if seen > self.feature_size:
            raise ValueError(f"Xi holds feature index {seen - 1} >= feature_size={self.feature_size}")
        return int(self.feature_size)

    def _base_rate_bias(self, y):
        if self.loss_type == "mse":
            return float(y.mean())
        rate = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
        return float(np.log(rate / (1.0 - rate)))

    def _epoch_order(self, n_rows, epoch):
        """The seeded shuffle of one epoch (a pure function of seed and epoch)."""
        return np.random.default_rng([self.random_seed, epoch]).permutation(n_rows).astype(np.int32)

    def _chunk_order(self, n_rows, epoch, chunk):
        """The seeded shuffle of one chunk in one epoch; chunk 0's is the whole data's ``_epoch_order``."""
        if chunk == 0:
            return self._epoch_order(n_rows, epoch)
        return np.random.default_rng([self.random_seed, epoch, chunk]).permutation(n_rows).astype(np.int32)

    def _train_epoch(self, X, y, epoch):
        """One pass over ``X`` (``FeatureArrays``) in shuffled batches of ``batch_size``, the last
        partial one included."""
        self._train_rows(X, y, self._epoch_order(len(X), epoch))

    def _train_rows(self, X, y, order, capacity=None):
        """Train on the rows of ``X`` (``FeatureArrays``) in the ``order`` given, in batches of ``batch_size``.

        ``capacity`` (stream training): the epoch kernel gets the arrays and the order zero-padded to that
        many rows, so that chunks of any size run one compiled kernel (XLA compiles, and keeps, a kernel
        per input shape: a shape per chunk made memory and time grow with the chunks)."""
        if self._graph.epoch_loop is not None:  # training_loop="graph"
            loop = self._graph.epoch_loop
            arrays = (X.Xi, X.Xv, y) + _flat(X)[2:]
            feed = {loop.batch_size: self.batch_size}
            if capacity is not None and max(len(y), len(order)) <= capacity:
                arrays = tuple(_padded(a, capacity) for a in arrays)
                feed[loop.n_rows], order = len(order), _padded(order, capacity)
            self.session_.run(loop.run_epoch, {**feed, **dict(zip(loop.data, arrays)), loop.order: order})
            return
        g = self._graph
        keep_fm, keep_deep = np.asarray(self.dropout_fm, np.float32), np.asarray(self.dropout_deep, np.float32)
        for start in range(0, order.size, self.batch_size):
            rows = order[start:start + self.batch_size]
            self.session_.run(g.train_op, {**g.feed(X, rows), g.label: y[rows], g.dropout_keep_fm: keep_fm,
                                           g.dropout_keep_deep: keep_deep, g.train_phase: True})

    def _calibration_rows(self, X):
        """``X``, or a seeded sample of ``BN_CALIBRATION_ROWS`` of its rows when it has more."""
        if len(X) <= BN_CALIBRATION_ROWS or not self._graph.bn_moments:
            return X
        rows = np.random.default_rng([self.random_seed, len(X)]).choice(len(X), BN_CALIBRATION_ROWS, replace=False)
        return X.take(np.sort(rows))

    def _calibrate_batch_norm(self, X):
        """Set the batch-norm statistics to the population's as the network predicts (no dropout):
        the mean and variance before each BN layer over up to ``BN_CALIBRATION_ROWS`` rows of ``X``
        (``FeatureArrays``; a seeded sample of them when there are more), each run of rows normalised
        by its own moments. Done after every epoch, before the validation rows are scored. The
        training's moving averages start at 0 / 1, lag behind the weights and carry the dropout's
        extra variance: predictions made with them come out biased (docs/performance.md)."""
        moments = self._graph.bn_moments
        if not moments or len(X) == 0 or self.batch_norm_statistics != "population":
            return
        X = self._calibration_rows(X)
        first, second = [0.0] * len(moments), [0.0] * len(moments)
        for start in range(0, len(X), self._run_rows()):
            rows = slice(start, min(start + self._run_rows(), len(X)))
            size = rows.stop - rows.start
            for i, (mean, variance) in enumerate(self.session_.run(moments, self._graph.feed(X, rows))):
                mean = mean.astype(np.float64)
                first[i] = first[i] + size * mean
                second[i] = second[i] + size * (variance.astype(np.float64) + mean ** 2)
        values = {}
        for i in range(len(moments)):
            mean = first[i] / len(X)
            values[f"bn_mean_{i}"] = mean.astype(np.float32)
            values[f"bn_variance_{i}"] = np.maximum(second[i] / len(X) - mean ** 2, 0.0).astype(np.float32)
        self._set_weights(values)

    def _check_finite(self, epoch):
        """Raise ``DivergenceError`` (and leave the model unfitted) when a weight is no longer finite."""
        if self.session_.run(self._graph.weights_finite):
            return
        self._close_session()
        raise DivergenceError(f"training diverged in epoch {epoch + 1}: a weight became NaN or infinite; lower "
                              f"learning_rate (now {self.learning_rate!r})")

    def _better(self, a, b):
        return a > b if self.greater_is_better_ else a < b

    def _should_stop(self):
        scores = self.valid_result_
        if self.patience is not None:
            return len(scores) - 1 - self.best_epoch_ >= self.patience
        # The reference's rule: five consecutive epochs, each worse than the one before.
        return len(scores) > 5 and all(self._better(scores[-k - 1], scores[-k]) for k in range(1, 5))

    def _refit(self, X, y):
        """Train on train + valid until the training score reaches the best epoch's (reference rule)."""
        target = self.train_result_[self.best_epoch_] if self.eval_train else None
        if target is None:
            raise ValueError("refit needs eval_train=True: it stops on the best epoch's training score")
        calibration = self._calibration_rows(X)
        for extra in range(REFIT_MAX_EPOCHS):
            self._train_epoch(X, y, self.n_epochs_ + extra)
            self._check_finite(self.n_epochs_ + extra)
            self._calibrate_batch_norm(calibration)
            score = self._score(X, y)
            if abs(score - target) < 0.001 or self._better(score, target):
                break
        self.refit_epochs_ = extra + 1

    def _end_epoch(self, epoch, start, board, losses, on_epoch):
        """After an epoch: print (``verbose``), write TensorBoard summaries, call ``on_epoch``."""
        self._report(epoch, time.perf_counter() - start)
        board.write(epoch, {**summaries.epoch_scalars(self, epoch), **losses})
        if on_epoch is not None:
            on_epoch(self, epoch)

    def _report(self, epoch, seconds):
        if not self.verbose or (epoch + 1) % int(self.verbose):
            return
        parts = [f"[{epoch + 1}]"]
        if self.train_result_:  # fit_stream scores no training rows
            parts.append(f"train-{self.metric_name_}={self.train_result_[-1]:.4f}")
        if self.valid_result_:
            parts.append(f"valid-{self.metric_name_}={self.valid_result_[-1]:.4f}")
        print(" ".join(parts) + f" [{seconds:.1f} s]", flush=True)

    # ------------------------------------------------------------------ inference
    def predict(self, Xi, Xv, Xs=None):
        """Probabilities of the positive class (``logloss``) or predicted values (``mse``), shape (n,)."""
        self._check_fitted()
        return self._predict_checked(self._check_X(Xi, Xv, Xs=Xs))

    def _run_rows(self):
        """Rows per prediction run for the fitted graph (its embedding lookups: F + sum L_s per row)."""
        cfg = self._graph.cfg
        return predict_run_rows(cfg.field_size + sum(cfg.sequence_lengths), cfg.embedding_size)

    def _predict_checked(self, X):
        """``predict`` on ``FeatureArrays`` that ``_check_X`` has already validated."""
        g, rows = self._graph, self._run_rows()

        def run_chunk(start):
            return self.session_.run(g.predict_out, g.feed(X, slice(start, start + rows)))

        starts = range(0, len(X), rows)
        if len(starts) == 1 or PREDICT_THREADS == 1:
            return np.concatenate([run_chunk(start) for start in starts])
        # Concurrent runs keep the cores busy between one run's ops (see PREDICT_THREADS).
        with ThreadPoolExecutor(PREDICT_THREADS) as pool:
            return np.concatenate(list(pool.map(run_chunk, starts)))

    def predict_proba(self, Xi, Xv, Xs=None):
        """Two columns, ``[P(y=0), P(y=1)]`` (logloss models only)."""
        if self.loss_type != "logloss":
            raise ValueError("predict_proba needs loss_type='logloss'")
        p = self.predict(Xi, Xv, Xs)
        return np.column_stack([1.0 - p, p])

    def evaluate(self, Xi, Xv, y, Xs=None):
        """The ``eval_metric`` of the predictions on ``(Xi, Xv, Xs)`` against ``y``."""
        self._check_fitted()
        X = self._check_X(Xi, Xv, Xs=Xs)
        return self._score(X, self._check_y(y, len(X), "y"))

    def _score(self, X, y, losses=None, tag=None):
        """The metric on validated ``FeatureArrays`` (the training loop's per-epoch scores); with
        TensorBoard summaries, the loss of the same predictions goes to ``losses[tag]``."""
        return self._metrics_of(y, self._predict_checked(X), losses, tag)

    def _metrics_of(self, y, predictions, losses=None, tag=None):
        if losses is not None and self.tensorboard_dir is not None:
            losses[tag] = float(LOSSES[self.loss_type](y, predictions))
        return float(self._metric(y, predictions))

    # ------------------------------------------------------------------ what the model learned
    def field_interactions(self, Xi, Xv, Xs=None):
        """(F+S) * (F+S): the mean over the rows of |<v_i x_i, v_j x_j>|, the FM interaction of each pair
        of fields (sequence fields pooled); zero on the diagonal. FM models only (``use_fm``)."""
        return self._fm_terms(Xi, Xv, Xs)[1]

    def field_importance(self, Xi, Xv, Xs=None):
        """(F+S): each field's share of the FM's mean absolute terms: its first-order term plus half
        of its interactions with the other fields; the shares sum to 1."""
        first, interactions = self._fm_terms(Xi, Xv, Xs)
        importance = first + interactions.sum(1) / 2
        return importance / importance.sum() if importance.sum() > 0 else importance

    def _fm_terms(self, Xi, Xv, Xs):
        """Mean |w_f x_f| per field (F+S) and the interaction matrix of ``field_interactions``."""
        self._check_fitted()
        X, g = self._check_X(Xi, Xv, Xs=Xs), self._graph
        if not g.cfg.use_fm:  # the fitted graph's, whatever set_params did since
            raise ValueError("field interactions are the FM's: this model has use_fm=False")
        rows = max(1, min(self._run_rows(), INTERACTION_VALUES // g.cfg.n_fields ** 2))  # rows * F * F products a run
        first, pairs = np.zeros(g.cfg.n_fields), np.zeros((g.cfg.n_fields,) * 2)
        for start in range(0, len(X), rows):
            terms, embeddings = self.session_.run((g.terms.y_first_order, g.terms.embeddings),
                                                  g.feed(X, slice(start, start + rows)))
            first += np.abs(terms).sum(0, dtype=np.float64)
            pairs += _pairwise_abs_sum(embeddings)
        pairs /= len(X)
        np.fill_diagonal(pairs, 0.0)
        return first / len(X), pairs

    # ------------------------------------------------------------------ weights
    def get_weights(self):
        """The model's variables as numpy arrays, keyed as in ``graph.init_weights``."""
        self._check_fitted()
        return self.session_.run(self._graph.weights)

    def _set_weights(self, values):
        setters = self._graph.weight_setters
        self.session_.run([setters[k][1] for k in values], {setters[k][0]: v for k, v in values.items()})

    # ------------------------------------------------------------------ persistence
    def save(self, path, feature_dictionary=None):
        """Save the fitted model, and ``feature_dictionary`` with it, to the directory ``path``.

        Atomic: a failed save leaves an earlier one at ``path`` intact. Format: ``persistence``.
        """
        persistence.save_model(self, path, feature_dictionary)

    @classmethod
    def load(cls, path):
        """The model saved at ``path``; its bundled dictionary is ``feature_dictionary_`` (or None)."""
        return persistence.load_model(path, cls)

    def export_saved_model(self, directory, feature_dictionary=None):
        """Write a TF SavedModel to ``directory`` (signature ``serving_default`` on Xi/Xv and, given or
        bundled a feature dictionary, ``predict_raw`` on raw columns; see ``serving``); returns it."""
        return serving.export_saved_model(self, directory, feature_dictionary)

    def __getstate__(self):
        return persistence.get_state(self)

    def __setstate__(self, state):
        persistence.set_state(self, state)

    # Drop-in names of the classic reference.
    @property
    def train_result(self):
        return self.train_result_

    @property
    def valid_result(self):
        return self.valid_result_

    def _close_session(self):
        session = self.__dict__.pop("session_", None)
        if session is not None:
            session.close()

    def __del__(self):
        try:
            self._close_session()
        except Exception:  # interpreter shutdown
            pass
