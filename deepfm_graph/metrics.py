"""Evaluation metrics: normalized Gini (Kaggle Porto Seguro), AUC, logloss, RMSE, MAE.

Every metric takes ``(actual, pred)`` as 1-D array-likes and returns a float.

Per-user ranking metrics (precision, recall, NDCG, MAP and hit rate at k) take
``(relevant, score, group, k)`` instead; they are not in ``METRICS``.
"""
import numbers
from collections import namedtuple

import numpy as np
import pandas as pd
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


def collapsed(pred, distinct=3):
    """Whether the predictions ``pred`` (N >= 10) take fewer than ``distinct`` different values (to 1e-6):
    a model saying the same (or only 0 and 1) for every row has collapsed, as a too high learning rate
    makes it."""
    pred = np.asarray(pred, dtype=np.float64)
    return len(pred) >= 10 and np.unique(np.round(pred, 6)).size < distinct


def collapse_warning(pred, where, learning_rate):
    """The warning text for collapsed predictions ``pred`` (see ``collapsed``), or None."""
    if not collapsed(pred):
        return None
    values = ", ".join(f"{v:g}" for v in np.unique(np.round(np.asarray(pred, np.float64), 6)))
    return (f"{where}: the predictions have collapsed to {values} for every row; the model learned nothing "
            f"usable (lower learning_rate, now {learning_rate!r})")


METRICS = {"gini_norm": gini_norm, "gini": gini, "auc": auc, "logloss": logloss, "rmse": rmse, "mae": mae}
GREATER_IS_BETTER = {"gini_norm": True, "gini": True, "auc": True, "logloss": False, "rmse": False, "mae": False}


def resolve_metric(eval_metric):
    """Return ``(name, function, greater_is_better or None)`` for a metric name or a callable."""
    if callable(eval_metric):
        return getattr(eval_metric, "__name__", "metric"), eval_metric, None
    if isinstance(eval_metric, str) and eval_metric in METRICS:
        return eval_metric, METRICS[eval_metric], GREATER_IS_BETTER[eval_metric]
    raise ValueError(f"eval_metric must be a callable or one of {sorted(METRICS)}, got {eval_metric!r}")


# --------------------------------------------------------------------------- ranking metrics
#
# Conventions shared by the ranking metrics below:
#   * within a group (user) rows are ranked by descending ``score``; ties keep the
#     original row order (stable sort), so the earlier row gets the better rank;
#   * an item is relevant when ``relevant > 0``; NDCG uses ``relevant`` itself as the gain;
#   * groups without a relevant item are left out of every average, so all five
#     metrics are means over the same users (``ranking_metrics(...)["users"]``).

_Ranked = namedtuple("_Ranked", "gain hit rank gid n_groups")


def _rank_groups(relevant, score, group, k):
    """Validate and sort rows by (group, -score, row order).

    Returns a ``_Ranked`` whose per-row arrays (length n) are in sorted order:
    ``gain`` (float), ``hit`` (float 0/1, ``gain > 0``), ``rank`` (1-based rank
    within the group) and ``gid`` (group index in [0, n_groups)).
    """
    relevant = np.asarray(relevant, dtype=np.float64).ravel()
    score = np.asarray(score, dtype=np.float64).ravel()
    group = np.asarray(group).ravel()
    if not relevant.size == score.size == group.size:
        raise ValueError(
            f"relevant, score and group differ in length: {relevant.size}, {score.size}, {group.size}")
    if relevant.size == 0:
        raise ValueError("relevant, score and group are empty")
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if np.isnan(score).any():
        raise ValueError("score contains NaN")
    if not np.isfinite(relevant).all() or (relevant < 0).any():
        raise ValueError("relevant must be finite and >= 0")
    codes, uniques = pd.factorize(group)
    if (codes < 0).any():
        raise ValueError("group contains missing ids (None/NaN)")

    order = np.lexsort((-score, codes))  # stable: ties in score keep row order
    gid = codes[order]
    n = gid.size
    starts = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]])
    sizes = np.diff(np.r_[starts, n])
    rank = np.arange(1, n + 1) - np.repeat(starts, sizes)
    gain = relevant[order]
    return _Ranked(gain, (gain > 0).astype(np.float64), rank, gid, len(uniques))


def _group_sum(r, weights):
    """Sum ``weights`` (sorted-row order) per group -> shape (n_groups,)."""
    return np.bincount(r.gid, weights=weights, minlength=r.n_groups)


def _n_relevant(r):
    return _group_sum(r, r.hit)


def _hits_at_k(r, k):
    return _group_sum(r, r.hit * (r.rank <= k))


def _precision(r, k):
    return _hits_at_k(r, k) / k


def _recall(r, k):
    return _hits_at_k(r, k) / np.maximum(_n_relevant(r), 1)


def _hit_rate(r, k):
    return (_hits_at_k(r, k) > 0).astype(np.float64)


def _average_precision(r, k):
    cum = np.cumsum(r.hit)
    start = r.rank == 1
    offset = (cum - r.hit)[start]  # relevant count before each group's first row
    hits_so_far = cum - offset[r.gid]  # relevant rows at rank <= this row's rank, in its group
    ap_sum = _group_sum(r, r.hit * (r.rank <= k) * hits_so_far / r.rank)
    return ap_sum / np.maximum(np.minimum(k, _n_relevant(r)), 1)


def _ndcg(r, k):
    discount = np.where(r.rank <= k, 1.0 / np.log2(r.rank + 1.0), 0.0)
    dcg = _group_sum(r, r.gain * discount)
    ideal = r.gain[np.lexsort((-r.gain, r.gid))]  # gains sorted descending within each group
    idcg = _group_sum(r, ideal * discount)
    return dcg / np.where(idcg > 0, idcg, 1.0)


def _mean_over_users(r, per_group):
    valid = _n_relevant(r) > 0
    if not valid.any():
        raise ValueError("ranking metrics are undefined: no group has a relevant item")
    return float(per_group[valid].mean())


def precision_at_k(relevant, score, group, k=10):
    """Mean over groups of (#relevant in the top k) / k.

    ``relevant``, ``score``, ``group``: 1-D, same length n; ``group`` holds ids (ints or
    strings). Divides by k even when a group has fewer than k rows (RecBole convention).
    Ties in ``score`` are broken by row order; groups without a relevant item are skipped.
    """
    r = _rank_groups(relevant, score, group, k)
    return _mean_over_users(r, _precision(r, k))


def recall_at_k(relevant, score, group, k=10):
    """Mean over groups of (#relevant in the top k) / (#relevant in the group).

    Inputs as in ``precision_at_k``; groups without a relevant item are skipped.
    """
    r = _rank_groups(relevant, score, group, k)
    return _mean_over_users(r, _recall(r, k))


def hit_rate_at_k(relevant, score, group, k=10):
    """Fraction of groups with at least one relevant item in the top k.

    Inputs as in ``precision_at_k``; groups without a relevant item are skipped.
    """
    r = _rank_groups(relevant, score, group, k)
    return _mean_over_users(r, _hit_rate(r, k))


def map_at_k(relevant, score, group, k=10):
    """Mean over groups of AP@k = sum_{relevant i <= k} precision@i / min(k, #relevant in group).

    Inputs as in ``precision_at_k``; groups without a relevant item are skipped.
    """
    r = _rank_groups(relevant, score, group, k)
    return _mean_over_users(r, _average_precision(r, k))


def ndcg_at_k(relevant, score, group, k=10):
    """Mean over groups of DCG@k / IDCG@k, DCG@k = sum_{i <= k} gain_i / log2(i + 1).

    ``relevant`` holds the gains (non-negative reals; 0/1 for binary relevance), i is the
    1-based rank and IDCG uses the group's gains sorted descending. Other inputs as in
    ``precision_at_k``; groups whose gains are all 0 are skipped.
    """
    r = _rank_groups(relevant, score, group, k)
    return _mean_over_users(r, _ndcg(r, k))


def ranking_metrics(relevant, score, group, k=10):
    """All five ranking metrics from one sort.

    Returns ``{"precision@k", "recall@k", "ndcg@k", "map@k", "hit_rate@k": float,
    "users": int}`` (k written out, e.g. ``"ndcg@10"``); ``users`` counts the groups
    with a relevant item, over which every metric is averaged.
    """
    r = _rank_groups(relevant, score, group, k)
    out = {
        f"precision@{k}": _mean_over_users(r, _precision(r, k)),
        f"recall@{k}": _mean_over_users(r, _recall(r, k)),
        f"ndcg@{k}": _mean_over_users(r, _ndcg(r, k)),
        f"map@{k}": _mean_over_users(r, _average_precision(r, k)),
        f"hit_rate@{k}": _mean_over_users(r, _hit_rate(r, k)),
    }
    out["users"] = int((_n_relevant(r) > 0).sum())
    return out
