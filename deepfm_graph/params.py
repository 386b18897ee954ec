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

LAYOUTS = ("paper", "concat")  # graph output layouts: the paper's sum, or the reference's concat projection

# Porto workflow models: key -> (name in files and tables, use_fm, use_deep).
PORTO_MODELS = {"deepfm": ("DeepFM", True, True), "fm": ("FM", True, False), "dnn": ("DNN", False, True)}
PORTO_FOLDS = 3
