"""deepfm_graph: DeepFM (Guo et al., IJCAI 2017) as TensorFlow-1 graph code with a scikit-learn feel."""
from .estimator import DeepFM
from .metrics import auc, gini, gini_norm, logloss, mae, rmse

__all__ = ["DeepFM", "gini", "gini_norm", "auc", "logloss", "rmse", "mae"]
__version__ = "0.1.0"
