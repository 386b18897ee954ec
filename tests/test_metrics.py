import numpy as np
import pytest
from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error, roc_auc_score

from deepfm_graph import metrics


def reference_gini(actual, pred):
    """The classic reference's formula, verbatim in spirit (lexsort on index, then -pred)."""
    rows = np.asarray(np.c_[actual, pred, np.arange(len(actual))], dtype=float)
    rows = rows[np.lexsort((rows[:, 2], -1 * rows[:, 1]))]
    gini_sum = rows[:, 0].cumsum().sum() / rows[:, 0].sum()
    gini_sum -= (len(actual) + 1) / 2.0
    return gini_sum / len(actual)


@pytest.fixture
def scores():
    rng = np.random.default_rng(1)
    y = (rng.random(2000) < 0.2).astype(float)
    return y, rng.random(2000) + 0.3 * y


def test_gini_norm_equals_2auc_minus_1_without_ties(scores):
    y, p = scores
    assert metrics.gini_norm(y, p) == pytest.approx(2 * roc_auc_score(y, p) - 1, abs=1e-9)


def test_gini_matches_reference_formula_with_ties():
    rng = np.random.default_rng(2)
    y = (rng.random(500) < 0.3).astype(float)
    p = np.round(rng.random(500) + 0.2 * y, 1)  # heavy ties
    assert metrics.gini(y, p) == pytest.approx(reference_gini(y, p), abs=1e-12)
    assert metrics.gini_norm(y, p) == pytest.approx(reference_gini(y, p) / reference_gini(y, y), abs=1e-12)


def test_gini_norm_of_perfect_and_reversed_order():
    y = np.array([0, 0, 1, 1, 0, 1.0])
    assert metrics.gini_norm(y, y) == pytest.approx(1.0)
    assert metrics.gini_norm(y, -y) == pytest.approx(-1.0)


def test_logloss_auc_rmse_mae_match_sklearn(scores):
    y, p = scores
    p = np.clip(p, 0.01, 0.99)
    assert metrics.logloss(y, p) == pytest.approx(log_loss(y, p), rel=1e-9)
    assert metrics.auc(y, p) == pytest.approx(roc_auc_score(y, p), rel=1e-12)
    assert metrics.rmse(y, p) == pytest.approx(np.sqrt(mean_squared_error(y, p)), rel=1e-12)
    assert metrics.mae(y, p) == pytest.approx(mean_absolute_error(y, p), rel=1e-12)


def test_gini_rejects_single_class_and_length_mismatch():
    with pytest.raises(ValueError, match="single class"):
        metrics.gini_norm(np.zeros(5), np.arange(5))
    with pytest.raises(ValueError, match="length"):
        metrics.gini_norm(np.ones(5), np.arange(4))


def test_resolve_metric_by_name_or_callable():
    assert metrics.resolve_metric("logloss")[1:] == (metrics.logloss, False)
    name, fn, greater = metrics.resolve_metric(roc_auc_score)
    assert (name, fn, greater) == ("roc_auc_score", roc_auc_score, None)
    with pytest.raises(ValueError, match="eval_metric"):
        metrics.resolve_metric("accuracy")
