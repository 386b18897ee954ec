"""deepfm_graph: DeepFM (Guo et al., IJCAI 2017) as TensorFlow-1 graph code with a scikit-learn feel."""
from .metrics import auc, gini, gini_norm, logloss, mae, rmse

__all__ = ["DeepFM", "gini", "gini_norm", "auc", "logloss", "rmse", "mae"]
__version__ = "0.1.0"


def __getattr__(name):
    # TensorFlow takes seconds and ~700 MB to import: load it only when the estimator is used,
    # so the feature, Porto and generator modules stay light.
    if name == "DeepFM":
        from .estimator import DeepFM

        return DeepFM
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
