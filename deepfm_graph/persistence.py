"""Saving and loading ``DeepFM`` models, pickling, and resumable training checkpoints.

Save format (a directory, written atomically: into a temporary directory beside the
target, fsynced, then renamed over it, so a crash mid-save leaves the previous save intact)
    ``model.json``     format and package/TF versions, the parameters (``get_params``; a
                       built-in ``eval_metric`` or ``deep_layers_activation`` callable is
                       stored by name, any other callable is refused at save), the fitted
                       attributes (``feature_size_``, ``train_result_``, ...), the weight
                       shapes and, when bundled, the feature dictionary's fingerprint.
    ``weights.*``      a ``tf.train.Saver`` checkpoint of the model variables, keyed by the
                       names of ``graph.init_weights`` (training checkpoints: all variables).
    ``features.json``  the bundled ``FeatureDictionary`` (optional).
    ``training.json``  training checkpoints only: the loop state (see ``TrainingCheckpoints``).
"""
import hashlib
import json
import os
import platform
import shutil
from pathlib import Path

import numpy as np
import tensorflow.compat.v1 as tf

from . import graph as G
from .atomic import write_directory_atomically
from .features import FeatureDictionary, FeatureSpec
from .features.spec import FORMAT as SPEC_FORMAT
from .metrics import METRICS

FORMAT = "deepfm_graph.DeepFM"
FORMAT_VERSION = 1
MODEL_FILE = "model.json"
FEATURES_FILE = "features.json"
TRAINING_FILE = "training.json"
WEIGHTS_PREFIX = "weights"
FITTED_ATTRIBUTES = ("feature_size_", "field_size_", "sequence_lengths_", "metric_name_", "greater_is_better_",
                     "n_epochs_", "best_epoch_", "train_result_", "valid_result_", "epoch_seconds_", "refit_epochs_")
NAMED_CALLABLES = {"eval_metric": METRICS, "deep_layers_activation": G.ACTIVATIONS}
RESUMABLE_CHANGES = ("epoch", "verbose", "tensorboard_dir")  # parameters that may differ when resuming
_METADATA_KEYS = ("params", "tuple_params", "fitted", "weights", "feature_dictionary")
_SESSION_ATTRIBUTES = ("session_", "graph_", "_graph", "_metric")


# ---------------------------------------------------------------- atomic directories
def remove_saved(path):
    """Delete a save directory written by this module (and nothing else)."""
    path = Path(path)
    if (path / MODEL_FILE).exists():
        shutil.rmtree(path)


# ---------------------------------------------------------------- parameters
def encode_params(params):
    """``get_params()`` as JSON-ready values plus the names of tuple-valued ones."""
    encoded, tuples = {}, []
    for name, value in params.items():
        if callable(value):
            names = NAMED_CALLABLES.get(name, {})
            known = [key for key, fn in names.items() if fn is value]
            if not known:
                raise ValueError(f"cannot save {name}={value!r}: only the built-in callables can be saved, by "
                                 f"name ({sorted(names)}); pass a name instead of a custom callable")
            value = known[0]
        elif isinstance(value, tuple):
            tuples.append(name)
        value = value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value
        value = os.fspath(value) if isinstance(value, os.PathLike) else value
        try:
            encoded[name] = json.loads(json.dumps(value))
        except (TypeError, ValueError):
            raise ValueError(f"cannot save parameter {name}={value!r}: not JSON-serialisable") from None
    return encoded, tuples


def decode_params(encoded, tuples):
    return {name: tuple(value) if name in tuples else value for name, value in encoded.items()}


def fingerprint(feature_dictionary):
    """SHA-256 of the dictionary's canonical JSON: equal exactly when the dictionaries are."""
    text = json.dumps(feature_dictionary.to_dict(), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def feature_dictionary_for(model, feature_dictionary=None):
    """``feature_dictionary``, or else the model's bundled one (or None), checked to fit the model.

    It must match the model's ``feature_size_``/``field_size_`` and, when the model bundles
    a dictionary (``feature_dictionary_``), have the same fingerprint.
    """
    fd = getattr(model, "feature_dictionary_", None) if feature_dictionary is None else feature_dictionary
    if fd is None:
        return None
    if not isinstance(fd, (FeatureDictionary, FeatureSpec)) or not fd.is_fitted:
        raise TypeError(f"feature_dictionary must be a fitted FeatureDictionary or FeatureSpec, got {fd!r}")
    lengths = tuple(fd.sequence_lengths) if isinstance(fd, FeatureSpec) else ()
    model_lengths = tuple(getattr(model, "sequence_lengths_", None) or ())
    if (fd.feat_dim, fd.field_size, lengths) != (model.feature_size_, model.field_size_, model_lengths):
        seq, model_seq = (f", sequence lengths {x}" if lengths or model_lengths else ""
                          for x in (lengths, model_lengths))
        raise ValueError(f"the feature dictionary (feat_dim={fd.feat_dim}, field_size={fd.field_size}{seq}) does not "
                         f"match the model (feature_size={model.feature_size_}, field_size={model.field_size_}"
                         f"{model_seq})")
    bundled = getattr(model, "feature_dictionary_", None)
    if bundled is not None and bundled is not fd:
        given, saved = fingerprint(fd), fingerprint(bundled)
        if given != saved:
            raise ValueError("the feature dictionary differs from the one saved with the model "
                             f"(fingerprint {given[:12]} != {saved[:12]})")
    return fd


# ---------------------------------------------------------------- save / load
def _saver(graph, var_list, name):
    """One ``tf.train.Saver`` per graph and ``name``, kept in a graph collection."""
    existing = graph.get_collection(name)
    if existing:
        return existing[0]
    with graph.as_default():
        saver = tf.train.Saver(var_list, name=name, save_relative_paths=True)
    graph.add_to_collection(name, saver)
    return saver


def _weights_saver(model):
    return _saver(model.graph_, {v.op.name: v for v in model._graph.weights.values()}, "weights_saver")


def _training_saver(model):
    return _saver(model.graph_, None, "training_saver")  # all variables: slots, global_step, ...


def _write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)


def _metadata(model, feature_dictionary):
    params, tuples = encode_params(model.fitted_params_)
    fitted = {name: getattr(model, name) for name in FITTED_ATTRIBUTES if hasattr(model, name)}
    weights = {name: var.shape.as_list() for name, var in model._graph.weights.items()}
    fd = None if feature_dictionary is None else {
        "file": FEATURES_FILE, "fingerprint": fingerprint(feature_dictionary),
        "feat_dim": feature_dictionary.feat_dim, "field_size": feature_dictionary.field_size}
    from . import __version__  # here: the package imports this module before defining it

    versions = {"deepfm_graph": __version__, "tensorflow": tf.__version__, "numpy": np.__version__,
                "python": platform.python_version()}
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "versions": versions, "params": params,
            "tuple_params": tuples, "fitted": json.loads(json.dumps(fitted)), "weights": weights,
            "feature_dictionary": fd}


def _write_model(model, tmp, saver, files, arrays):
    with model.graph_.as_default():  # a Saver runs in graph mode only inside its graph
        saver.save(model.session_, str(tmp / WEIGHTS_PREFIX), write_meta_graph=False, write_state=False)
    for name, obj in files.items():
        _write_json(tmp / name, obj)
    for name, named_arrays in (arrays or {}).items():
        np.savez(tmp / name, **named_arrays)


def save_model(model, path, feature_dictionary=None, all_variables=False, extra=None, arrays=None):
    """Save a fitted ``model`` to the directory ``path`` (see the module docstring).

    ``feature_dictionary`` defaults to the model's bundled one (``feature_dictionary_``).
    ``all_variables`` also saves optimizer slots and ``global_step``; ``extra`` maps more
    file names to JSON objects, ``arrays`` more ``.npz`` file names to dicts of arrays.
    """
    model._check_fitted()
    fd = feature_dictionary_for(model, feature_dictionary)
    files = {MODEL_FILE: _metadata(model, fd), **(extra or {})}  # fails on unsaveable params before any write
    if fd is not None:
        files[FEATURES_FILE] = fd.to_dict()
    saver = _training_saver(model) if all_variables else _weights_saver(model)
    write_directory_atomically(path, lambda tmp: _write_model(model, tmp, saver, files, arrays), MODEL_FILE)


def _read_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path.parent} is not a complete deepfm_graph save: {path.name} is missing") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is corrupted ({what} is not valid JSON: {err})") from None


def read_metadata(path):
    """``model.json`` of the save directory ``path``, checked for format and version."""
    path = Path(path)
    if not path.is_dir():
        problem = "not a directory" if path.exists() else "no such directory"
        raise FileNotFoundError(f"no saved model at {path}: {problem}")
    meta = _read_json(path / MODEL_FILE, "the model metadata")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path / MODEL_FILE} is not a {FORMAT} save")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format_version {meta.get('format_version')!r}; this deepfm_graph reads "
                         f"{FORMAT_VERSION}")
    absent = [key for key in _METADATA_KEYS if key not in meta]
    if absent:
        raise ValueError(f"{path / MODEL_FILE} is corrupted: it lacks {absent}")
    return meta


def rebuild_session(model):
    """Build the graph and a session for the parameters the model was fitted with."""
    twin = type(model)(**model.fitted_params_)
    layers, activation, model.metric_name_, model._metric, model.greater_is_better_ = twin._check_params()
    model.sequence_lengths_ = tuple(getattr(model, "sequence_lengths_", None) or ())  # saves before sequences: none
    twin.feature_size_, twin.field_size_, twin.sequence_lengths_ = \
        model.feature_size_, model.field_size_, model.sequence_lengths_
    model._start_session(twin._graph_config(layers, activation, 0.0), twin.training_loop)  # bias: from weights


def _checkpoint_error(path, err):
    message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ValueError(f"cannot read the weights of the save at {path}: {message}")


def _check_checkpoint(path, shapes):
    """Raise unless the checkpoint in ``path`` holds the variables ``shapes`` (name -> shape)."""
    try:
        stored = tf.train.load_checkpoint(str(path / WEIGHTS_PREFIX)).get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as err:
        raise _checkpoint_error(path, err) from None
    wrong = [name for name, shape in shapes.items() if stored.get(name) != shape]
    if wrong:
        raise ValueError(f"cannot read the weights of the save at {path}: {wrong[0]!r} is missing or misshapen")


def _restore(model, saver, path):
    """Restore ``saver``'s variables from the save ``path``; errors name the path, not TF internals."""
    try:
        with model.graph_.as_default():
            saver.restore(model.session_, str(path / WEIGHTS_PREFIX))
    except (tf.errors.OpError, ValueError) as err:
        raise _checkpoint_error(path, err) from None


def _read_feature_dictionary(path, meta):
    """The bundled dictionary of the save ``path`` (None if none), checked against its fingerprint."""
    if meta["feature_dictionary"] is None:
        return None
    fd_path = path / meta["feature_dictionary"]["file"]
    try:
        d = _read_json(fd_path, "the feature dictionary")
        fd = (FeatureSpec if isinstance(d, dict) and d.get("format") == SPEC_FORMAT else FeatureDictionary).from_dict(d)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{fd_path} is corrupted: {err}") from None
    if fingerprint(fd) != meta["feature_dictionary"]["fingerprint"]:
        raise ValueError(f"{fd_path} does not match the fingerprint recorded in {path / MODEL_FILE}")
    return fd


def load_model(path, cls):
    """Rebuild the ``cls`` model saved at ``path``; sets ``feature_dictionary_`` (or None)."""
    path = Path(path)
    meta = read_metadata(path)
    fd = _read_feature_dictionary(path, meta)
    _check_checkpoint(path, meta["weights"])  # before the (slower) graph is built
    try:
        model = cls(**decode_params(meta["params"], meta["tuple_params"]))
        model.fitted_params_ = model.get_params(deep=False)
        model.__dict__.update({k: v for k, v in meta["fitted"].items() if k in FITTED_ATTRIBUTES})
        rebuild_session(model)
        shapes = {name: var.shape.as_list() for name, var in model._graph.weights.items()}
        if shapes != meta["weights"]:
            raise ValueError(f"its parameters build weights {shapes}, not the saved {meta['weights']}")
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path / MODEL_FILE} holds invalid parameters or attributes: {err}") from None
    model.feature_dictionary_ = fd
    _restore(model, _weights_saver(model), path)
    return model


def read_weights(path, model):
    """The model variables stored in the save ``path`` as numpy arrays, keyed like ``get_weights``."""
    try:
        reader = tf.train.load_checkpoint(str(Path(path) / WEIGHTS_PREFIX))
        return {name: reader.get_tensor(var.op.name) for name, var in model._graph.weights.items()}
    except (tf.errors.OpError, ValueError, IndexError) as err:  # IndexError: truncated data file
        raise _checkpoint_error(path, err) from None


# ---------------------------------------------------------------- pickling
def get_state(model):
    """Pickle state: the parameters, plus fitted attributes and numpy weights when fitted."""
    if getattr(model, "session_", None) is None:
        return model.get_params(deep=False)
    state = {k: v for k, v in model.__dict__.items() if k not in _SESSION_ATTRIBUTES}
    state["_weights"] = model.get_weights()
    return state


def set_state(model, state):
    state = dict(state)
    weights = state.pop("_weights", None)
    model.__dict__.update(state)
    if weights is not None:
        rebuild_session(model)
        model._set_weights(weights)


# ---------------------------------------------------------------- training checkpoints
def data_identity(arrays):
    """What a checkpointed ``fit`` on in-memory ``arrays`` depends on: their shapes and SHA-256."""
    h = hashlib.sha256()
    for array in arrays:
        h.update(str(array.shape).encode())
        h.update(np.ascontiguousarray(array).data)
    return {"data_shapes": [list(a.shape) for a in arrays], "data_sha256": h.hexdigest()}


CARRY_FILE = "carry.npz"  # a mid-pass checkpoint's rows kept back for the next chunks (stream training)


class TrainingCheckpoints:
    """Checkpoints of one ``fit`` (or ``fit_stream``) in ``directory``: ``last/`` after every epoch
    (and, in a stream, after chunks), ``best/`` too when the epoch has the best validation score.

    Each is a model save (``DeepFM.load`` reads it) whose checkpoint holds all variables,
    optimizer slots and ``global_step`` included, with the loop results in ``model.json``
    and ``training.json`` = completed epochs, the position inside the next epoch (chunks done,
    with the rows carried over in ``carry.npz``), whether early stopping fired, and what the run
    depends on (parameters but ``epoch``/``verbose``, ``early_stopping``, ``identity``: the data's
    shapes and SHA-256, or a file source's identity), so that resuming restores exactly the state an
    uninterrupted run would have.
    """

    def __init__(self, model, directory, identity, early_stopping):
        self.model, self.directory, self.early_stopping = model, Path(directory), bool(early_stopping)
        params = encode_params(model.get_params(deep=False))[0] | {"early_stopping": self.early_stopping}
        self.run = {"params": {k: v for k, v in params.items() if k not in RESUMABLE_CHANGES},
                    **identity, "feature_size": model.feature_size_}
        self.position = None  # after start(resume=True): (chunks done, seconds spent, carried part) in the epoch

    def save(self, stopped, position=None):
        """Save ``last/`` (and ``best/`` after the best epoch). ``position``: mid-epoch, ``(chunks done,
        seconds spent, carried rows as a dict of arrays)``."""
        model = self.model
        state = {"format_version": FORMAT_VERSION, "completed_epochs": len(model.epoch_seconds_),
                 "stopped": bool(stopped), "run": self.run,
                 "position": None if position is None else {"chunks": position[0], "seconds": position[1]}}
        carry = None if position is None else position[2]
        # best/ first: a crash between the two leaves last/ one epoch behind, which is redone.
        best = position is None and model.best_epoch_ == len(model.epoch_seconds_) - 1
        for name in (["best"] if best else []) + ["last"]:
            save_model(model, self.directory / name, all_variables=True, extra={TRAINING_FILE: state},
                       arrays=None if name == "best" or carry is None else {CARRY_FILE: carry})

    def _check_run(self, saved, last):
        params, now = saved["params"], self.run["params"]
        changed = sorted(k for k in set(params) | set(now) if params.get(k) != now.get(k))
        if changed:
            details = ", ".join(f"{k} (checkpoint {params.get(k)!r}, now {now.get(k)!r})" for k in changed)
            raise ValueError(f"cannot resume from {last}: parameters differ from the checkpoint's: {details}")
        for key in [k for k in self.run if k != "params"] + [k for k in saved if k not in self.run]:
            if saved.get(key) != self.run.get(key):
                raise ValueError(f"cannot resume from {last}: the training/validation data differ from the "
                                 f"checkpoint's ({key}: checkpoint {saved.get(key)}, now {self.run.get(key)})")

    def start(self, resume):
        """Return ``(stopped, best weights or None)`` restored from ``last/`` when resuming; a mid-epoch
        position is left in ``self.position``.

        Without ``resume``, earlier checkpoints are removed; with it but no checkpoint yet,
        training starts afresh: ``(False, None)``.
        """
        model, last = self.model, self.directory / "last"
        if not resume:
            for name in ("last", "best"):
                remove_saved(self.directory / name)
        if not (resume and (last / MODEL_FILE).exists()):
            return False, None
        meta = read_metadata(last)
        state = _read_json(last / TRAINING_FILE, "the training state")
        try:
            self._check_run(state["run"], last)
            _restore(model, _training_saver(model), last)
            for name in ("n_epochs_", "best_epoch_", "train_result_", "valid_result_", "epoch_seconds_"):
                setattr(model, name, meta["fitted"][name])
            stopped = state["stopped"]
            position = state.get("position")
            if position is not None:
                with np.load(last / CARRY_FILE) as carry:
                    self.position = (int(position["chunks"]), float(position["seconds"]), dict(carry))
        except (KeyError, TypeError, OSError, ValueError) as err:
            if isinstance(err, ValueError) and str(err).startswith("cannot resume"):
                raise
            raise ValueError(f"cannot resume from {last}: its training state is corrupted ({err!r})") from None
        best_weights = None
        if self.early_stopping and model.best_epoch_ is not None:
            best = self.directory / "best"
            if read_metadata(best)["fitted"]["n_epochs_"] != model.best_epoch_ + 1:
                raise ValueError(f"cannot resume from {last}: {best} is not the checkpoint of best epoch "
                                 f"{model.best_epoch_}")
            best_weights = read_weights(best, model)
        return stopped, best_weights
