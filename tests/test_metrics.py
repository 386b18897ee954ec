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


# --------------------------------------------------------------------------- ranking metrics

RANKING_NAMES = ("precision", "recall", "ndcg", "map", "hit_rate")
RANKING_FUNCS = {
    "precision": metrics.precision_at_k,
    "recall": metrics.recall_at_k,
    "ndcg": metrics.ndcg_at_k,
    "map": metrics.map_at_k,
    "hit_rate": metrics.hit_rate_at_k,
}


def reference_ranking(relevant, score, group, k):
    """Brute force with plain Python loops: per-user lists sorted by (-score, row index)."""
    users = {}
    for i, g in enumerate(group):
        users.setdefault(g, []).append(i)
    per_user = {name: [] for name in RANKING_NAMES}
    for rows in users.values():
        gains = [float(relevant[i]) for i in rows]
        n_rel = sum(1 for x in gains if x > 0)
        if n_rel == 0:
            continue
        ranked = sorted(rows, key=lambda i: (-score[i], i))
        top = ranked[:k]
        hits = sum(1 for i in top if relevant[i] > 0)
        per_user["precision"].append(hits / k)
        per_user["recall"].append(hits / n_rel)
        per_user["hit_rate"].append(1.0 if hits > 0 else 0.0)
        ap, seen = 0.0, 0
        for pos, i in enumerate(top, start=1):
            if relevant[i] > 0:
                seen += 1
                ap += seen / pos
        per_user["map"].append(ap / min(k, n_rel))
        dcg = sum(float(relevant[i]) / np.log2(pos + 1) for pos, i in enumerate(top, start=1))
        ideal = sorted(gains, reverse=True)[:k]
        idcg = sum(x / np.log2(pos + 1) for pos, x in enumerate(ideal, start=1))
        per_user["ndcg"].append(dcg / idcg)
    out = {f"{name}@{k}": sum(v) / len(v) for name, v in per_user.items()}
    out["users"] = len(per_user["precision"])
    return out


# Three users, k=3, rows already in descending-score order within each user:
#   a: relevant 1 0 1 0 0      b: relevant 0 1 1 1 1      c: relevant 0 0 0 1
THREE_USERS = dict(
    relevant=[1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1],
    score=[0.9, 0.8, 0.7, 0.6, 0.5, 0.9, 0.8, 0.7, 0.6, 0.5, 0.9, 0.8, 0.7, 0.6],
    group=[1] * 5 + [2] * 5 + [3] * 4,
)
_L2, _L3, _L4 = np.log2(2), np.log2(3), np.log2(4)
THREE_USERS_EXPECTED = {
    # a: 2/3, b: 2/3, c: 0                      -> 4/9
    "precision@3": (2 / 3 + 2 / 3 + 0) / 3,
    # a: 2/2, b: 2/4, c: 0/1                    -> 1/2
    "recall@3": (1 + 1 / 2 + 0) / 3,
    # a: hit, b: hit, c: miss                   -> 2/3
    "hit_rate@3": 2 / 3,
    # a: (1/1 + 2/3) / min(3, 2) = 5/6
    # b: (1/2 + 2/3) / min(3, 4) = 7/18  (dividing by #relevant=4 would give 7/24)
    # c: 0                                      -> 22/54 = 11/27
    "map@3": (5 / 6 + 7 / 18 + 0) / 3,
    # a: (1/log2 2 + 1/log2 4) / (1/log2 2 + 1/log2 3)
    # b: (1/log2 3 + 1/log2 4) / (1/log2 2 + 1/log2 3 + 1/log2 4)
    # c: 0
    "ndcg@3": ((1 / _L2 + 1 / _L4) / (1 / _L2 + 1 / _L3)
               + (1 / _L3 + 1 / _L4) / (1 / _L2 + 1 / _L3 + 1 / _L4) + 0) / 3,
    "users": 3,
}


def test_ranking_metrics_hand_computed_three_users():
    got = metrics.ranking_metrics(**THREE_USERS, k=3)
    assert set(got) == set(THREE_USERS_EXPECTED)
    for key, value in THREE_USERS_EXPECTED.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
    assert got["map@3"] == pytest.approx(11 / 27, abs=1e-12)
    assert got["precision@3"] == pytest.approx(4 / 9, abs=1e-12)


def test_each_ranking_function_equals_its_ranking_metrics_entry():
    got = metrics.ranking_metrics(**THREE_USERS, k=3)
    for name, fn in RANKING_FUNCS.items():
        assert fn(**THREE_USERS, k=3) == pytest.approx(got[f"{name}@3"], abs=1e-15), name


def test_map_divides_by_min_of_k_and_number_relevant():
    # one user, 4 relevant of 5, relevant at ranks 2..5; k=2:
    # AP@2 = (1/2) / min(2, 4) = 1/4  (dividing by #relevant=4 gives 1/8; by k always: also 1/4)
    assert metrics.map_at_k([0, 1, 1, 1, 1], [5, 4, 3, 2, 1], [0] * 5, k=2) == pytest.approx(1 / 4)
    # one user, 1 relevant at rank 1, k=5: AP@5 = 1 / min(5, 1) = 1  (dividing by k would give 1/5)
    assert metrics.map_at_k([1, 0, 0], [3, 2, 1], [0] * 3, k=5) == pytest.approx(1.0)


def test_ranking_ties_are_broken_by_row_order():
    # equal scores: the earlier row ranks first
    assert metrics.precision_at_k([1, 0, 0], [0.5, 0.5, 0.5], ["u"] * 3, k=1) == 1.0
    assert metrics.precision_at_k([0, 0, 1], [0.5, 0.5, 0.5], ["u"] * 3, k=1) == 0.0
    # relevant second of two tied rows, k=2: NDCG = (1/log2 3) / (1/log2 2)
    assert metrics.ndcg_at_k([0, 1], [0.5, 0.5], [7, 7], k=2) == pytest.approx(1 / np.log2(3))
    # MAP, same: (1/2) / min(2, 1)
    assert metrics.map_at_k([0, 1], [0.5, 0.5], [7, 7], k=2) == pytest.approx(0.5)
    # ties are by row order within the user even when another user's rows are interleaved
    # user 1 rows: 0, 2 (relevant), 4; all scored 1.0 -> order 0, 2, 4 -> relevant at rank 2
    rel = [0, 1, 1, 0, 0, 0]
    score = [1.0, 0.3, 1.0, 0.9, 1.0, 0.1]
    grp = [1, 2, 1, 2, 1, 2]
    assert metrics.hit_rate_at_k(rel, score, grp, k=1) == pytest.approx((0 + 0) / 2)
    # user 2: scores 0.3 (relevant), 0.9, 0.1 -> relevant at rank 2
    assert metrics.map_at_k(rel, score, grp, k=2) == pytest.approx((1 / 2 + 1 / 2) / 2)


def test_ranking_k_larger_than_group_size():
    # user a: 2 rows, relevant at rank 1; user b: 1 row, relevant; k=5
    rel, score, grp = [1, 0, 1], [0.9, 0.1, 0.5], ["a", "a", "b"]
    got = metrics.ranking_metrics(rel, score, grp, k=5)
    # precision divides by k, not by the group size: (1/5 + 1/5) / 2
    assert got["precision@5"] == pytest.approx(1 / 5)
    assert got["recall@5"] == pytest.approx(1.0)
    assert got["map@5"] == pytest.approx(1.0)  # 1 / min(5, 1) for both
    assert got["ndcg@5"] == pytest.approx(1.0)
    assert got["hit_rate@5"] == pytest.approx(1.0)
    assert got["users"] == 2


def test_ranking_string_groups_equal_int_groups():
    names = {1: "alice", 2: "bob", 3: "carol"}
    as_str = dict(THREE_USERS, group=[names[g] for g in THREE_USERS["group"]])
    assert metrics.ranking_metrics(**as_str, k=3) == pytest.approx(THREE_USERS_EXPECTED, abs=1e-12)
    as_obj = dict(THREE_USERS, group=np.array([names[g] for g in THREE_USERS["group"]], dtype=object))
    assert metrics.ranking_metrics(**as_obj, k=3) == pytest.approx(THREE_USERS_EXPECTED, abs=1e-12)


def test_ranking_metrics_invariant_under_row_permutation():
    rel, score, grp = (np.asarray(THREE_USERS[key]) for key in ("relevant", "score", "group"))
    rng = np.random.default_rng(3)
    for _ in range(5):
        perm = rng.permutation(rel.size)
        got = metrics.ranking_metrics(rel[perm], score[perm], grp[perm], k=3)
        assert got == pytest.approx(THREE_USERS_EXPECTED, abs=1e-12)


def test_ranking_users_without_relevant_items_are_excluded_from_all_metrics():
    # add user 4 with no relevant item, ranked anywhere: nothing changes, precision included
    extra = dict(
        relevant=THREE_USERS["relevant"] + [0, 0, 0],
        score=THREE_USERS["score"] + [0.9, 0.8, 0.7],
        group=THREE_USERS["group"] + [4, 4, 4],
    )
    got = metrics.ranking_metrics(**extra, k=3)
    assert got == pytest.approx(THREE_USERS_EXPECTED, abs=1e-12)
    assert got["users"] == 3
    assert metrics.precision_at_k(**extra, k=3) == pytest.approx(4 / 9)  # not 4/9 * 3/4


def test_ndcg_uses_graded_gains_others_use_positive_as_relevant():
    # one user; rows in score order have gains 0, 3, 2, 1; k=3
    rel, score, grp = [0, 3, 2, 1], [4, 3, 2, 1], [0] * 4
    dcg = 0 / np.log2(2) + 3 / np.log2(3) + 2 / np.log2(4)
    idcg = 3 / np.log2(2) + 2 / np.log2(3) + 1 / np.log2(4)
    assert metrics.ndcg_at_k(rel, score, grp, k=3) == pytest.approx(dcg / idcg, abs=1e-12)
    # gains > 0 count as relevant: 2 hits in the top 3 of 3 relevant
    assert metrics.precision_at_k(rel, score, grp, k=3) == pytest.approx(2 / 3)
    assert metrics.recall_at_k(rel, score, grp, k=3) == pytest.approx(2 / 3)
    assert metrics.map_at_k(rel, score, grp, k=3) == pytest.approx((1 / 2 + 2 / 3) / 3)
    # bool relevance is accepted
    assert metrics.hit_rate_at_k(np.array([False, True]), [1, 2], [0, 0], k=1) == 1.0


@pytest.mark.parametrize("k", [1, 3, 5, 10, 40])
@pytest.mark.parametrize("graded", [False, True])
def test_ranking_metrics_match_brute_force_on_random_data(k, graded):
    rng = np.random.default_rng(10 + k + 100 * graded)
    n = 400
    grp = rng.integers(0, 20, n)
    score = np.round(rng.random(n), 1)  # many ties
    rel = (rng.random(n) < 0.2).astype(float)
    if graded:
        rel *= rng.integers(1, 4, n) + rng.random(n)
    rel[grp == 5] = 0  # a user without relevant items
    expected = reference_ranking(rel, score, grp, k)
    assert expected["users"] == len(set(grp[rel > 0])) < 20
    got = metrics.ranking_metrics(rel, score, grp, k=k)
    assert got["users"] == expected["users"]
    for name, fn in RANKING_FUNCS.items():
        key = f"{name}@{k}"
        assert got[key] == pytest.approx(expected[key], abs=1e-12), key
        assert fn(rel, score, grp, k=k) == pytest.approx(expected[key], abs=1e-12), key


@pytest.mark.parametrize("fn", [metrics.ranking_metrics, *RANKING_FUNCS.values()])
def test_ranking_metrics_reject_bad_input(fn):
    ok = dict(relevant=[1, 0, 1], score=[0.3, 0.2, 0.1], group=[0, 0, 1])
    with pytest.raises(ValueError, match="length"):
        fn(**dict(ok, score=[0.3, 0.2]))
    with pytest.raises(ValueError, match="length"):
        fn(**dict(ok, group=[0, 0]))
    with pytest.raises(ValueError, match="empty"):
        fn([], [], [])
    for bad_k in (0, -1, 2.5, True, "3", None):
        with pytest.raises(ValueError, match="k must be a positive int"):
            fn(**ok, k=bad_k)
    with pytest.raises(ValueError, match="score contains NaN"):
        fn(**dict(ok, score=[0.3, np.nan, 0.1]))
    for bad_rel in ([1, -1, 0], [1, np.inf, 0], [1, np.nan, 0]):
        with pytest.raises(ValueError, match="relevant must be finite and >= 0"):
            fn(**dict(ok, relevant=bad_rel))
    with pytest.raises(ValueError, match="group contains missing"):
        fn(**dict(ok, group=np.array(["a", None, "b"], dtype=object)))
    with pytest.raises(ValueError, match="no group has a relevant item"):
        fn(**dict(ok, relevant=[0, 0, 0]))
    assert fn(**ok, k=np.int64(2)) is not None  # numpy ints are fine


def test_collapsed_predictions_are_told_apart_from_a_working_model():
    from deepfm_graph.metrics import collapse_warning, collapsed

    rng = np.random.default_rng(0)
    assert collapsed(np.full(50, 0.2)) and collapsed(rng.integers(0, 2, 50).astype(float))  # constant; only 0 and 1
    assert not collapsed(rng.random(50)) and not collapsed(np.full(5, 0.2))  # a real model; too few rows to say
    message = collapse_warning(np.r_[np.zeros(20), np.ones(20)], "fold 1/3", 1000.0)
    assert "collapsed to 0, 1" in message and "learning_rate, now 1000.0" in message
    assert collapse_warning(rng.random(50), "fold 1/3", 0.001) is None
