"""Parameter sets and choices named once, light to import (no TensorFlow): the command-line
tools read their defaults here before anything heavy loads."""

# The classic Basic-DeepFM-model reference's parameter dict for Porto Seguro (relu and gini_norm
# by name, so that it is JSON); the Porto workflow's and the benchmark's defaults.
CLASSIC_PARAMS = {
    "embedding_size": 8,
    "dropout_fm": (1.0, 1.0),
    "deep_layers": (32, 32),
    "dropout_deep": (0.5, 0.5, 0.5),
    "deep_layers_activation": "relu",
    "epoch": 30,
    "batch_size": 1024,
    "learning_rate": 0.001,
    "optimizer_type": "adam",
    "batch_norm": 1,
    "batch_norm_decay": 0.995,
    "l2_reg": 0.01,
    "verbose": True,
    "eval_metric": "gini_norm",
    "random_seed": 2017,
}

# deepfm-train's defaults, beside the classic reference's: early stopping on a validation part, no batch norm.
TRAIN_PARAMS = {
    "embedding_size": 8, "deep_layers": (64, 32), "dropout_deep": (0.9, 0.9, 0.9), "dropout_fm": (1.0, 1.0),
    "epoch": 20, "batch_size": 256, "learning_rate": 0.001, "optimizer_type": "adam", "batch_norm": 0,
    "l2_reg": 0.0, "l2_reg_embedding": 0.0, "patience": 3, "random_seed": 2024, "verbose": True,
}
VALID_FRAC = 0.2  # deepfm-train's held-out fraction when no --folds are given
DEFAULT_CHUNK_ROWS = 1_000_000  # rows per chunk when training from files (--stream): the epoch kernel's full speed
DEFAULT_SHUFFLE_WINDOW = 100_000  # rows kept back from each chunk to be shuffled with the next (--stream)

SEQUENCE_PARAMS = ("dropout_fm", "deep_layers", "dropout_deep")


def merge(defaults, given):
    """``defaults`` updated by ``given``, with JSON lists as tuples (the estimator's convention) and,
    when ``given`` resizes the deep stack without ``dropout_deep``, the default keep-probability
    repeated to fit. Not validated (``DeepFM._check_params`` does that)."""
    params = {**defaults, **given}
    for key in SEQUENCE_PARAMS:
        if isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    if "deep_layers" in given and "dropout_deep" not in given:
        try:
            params["dropout_deep"] = tuple(defaults["dropout_deep"][:1]) * (len(params["deep_layers"]) + 1)
        except TypeError:
            pass  # not a sequence: the validation names deep_layers
    return params


LAYOUTS = ("paper", "concat")  # graph output layouts: the paper's sum, or the reference's concat projection

# Porto workflow models: key -> (name in files and tables, use_fm, use_deep).
PORTO_MODELS = {"deepfm": ("DeepFM", True, True), "fm": ("FM", True, False), "dnn": ("DNN", False, True)}
PORTO_FOLDS = 3
