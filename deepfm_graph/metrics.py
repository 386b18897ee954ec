"""Evaluation metrics: normalized Gini (Kaggle Porto Seguro), AUC, logloss, RMSE, MAE.

Every metric takes ``(actual, pred)`` as 1-D array-likes and returns a float.
"""
import numpy as np
from sklearn.metrics import roc_auc_score

_EPS = 1e-15


def _as_pair(actual, pred):
    actual = np.asarray(actual, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    if actual.shape != pred.shape:
        raise ValueError(f"actual and pred differ in length: {actual.size} != {pred.size}")
    if actual.size == 0:
        raise ValueError("actual and pred are empty")
    return actual, pred


def gini(actual, pred):
    """Gini coefficient as defined by the Kaggle Porto Seguro competition.

    Rows are ordered by descending prediction; ties keep their original order,
    exactly as the classic reference formula (``np.lexsort`` on index, -pred).
    """
    actual, pred = _as_pair(actual, pred)
    order = np.argsort(-pred, kind="stable")
    total = actual.sum()
    if total == 0:
        raise ValueError("gini is undefined when actual sums to 0 (a single class)")
    gini_sum = actual[order].cumsum().sum() / total - (actual.size + 1) / 2.0
    return gini_sum / actual.size


def gini_norm(actual, pred):
    """Normalized Gini: ``gini(actual, pred) / gini(actual, actual)`` (= 2*AUC-1 without ties)."""
    return gini(actual, pred) / gini(actual, actual)


def auc(actual, pred):
    """Area under the ROC curve."""
    actual, pred = _as_pair(actual, pred)
    return float(roc_auc_score(actual, pred))


def logloss(actual, pred):
    """Mean binary cross-entropy; predictions are clipped to [1e-15, 1 - 1e-15]."""
    actual, pred = _as_pair(actual, pred)
    p = np.clip(pred, _EPS, 1 - _EPS)
    return float(-np.mean(actual * np.log(p) + (1 - actual) * np.log1p(-p)))


def rmse(actual, pred):
    """Root mean squared error."""
    actual, pred = _as_pair(actual, pred)
    return float(np.sqrt(np.mean((actual - pred) ** 2)))


def mae(actual, pred):
    """Mean absolute error."""
    actual, pred = _as_pair(actual, pred)
    return float(np.mean(np.abs(actual - pred)))


METRICS = {"gini_norm": gini_norm, "gini": gini, "auc": auc, "logloss": logloss, "rmse": rmse, "mae": mae}
GREATER_IS_BETTER = {"gini_norm": True, "gini": True, "auc": True, "logloss": False, "rmse": False, "mae": False}


def resolve_metric(eval_metric):
    """Return ``(name, function, greater_is_better or None)`` for a metric name or a callable."""
    if callable(eval_metric):
        return getattr(eval_metric, "__name__", "metric"), eval_metric, None
    if isinstance(eval_metric, str) and eval_metric in METRICS:
        return eval_metric, METRICS[eval_metric], GREATER_IS_BETTER[eval_metric]
    raise ValueError(f"eval_metric must be a callable or one of {sorted(METRICS)}, got {eval_metric!r}")
