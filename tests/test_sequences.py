"""Multi-valued (sequence) fields: the pooled terms against numpy, padding, the training loops,
learning from tokens, persistence, and input validation (``Xs`` / ``Xs_valid``)."""
import itertools
import pickle

import numpy as np
import pytest
from conftest import numpy_deep_layers, perturb_batch_norm
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from deepfm_graph import DeepFM
from deepfm_graph.features.spec import FeatureArrays

pytestmark = pytest.mark.slow  # fits models with sequence fields

# Index layout: 3 single-valued fields of 5 values (0-14); sequence A: tokens 15-24, padding 25,
# 3 slots, mean weights; sequence B: tokens 26-37, padding 38, 4 slots, sum weights.
FIELD_SIZE, VALUES_PER_FIELD = 3, 5
SEQUENCES = ((15, 10, 3, "mean"), (26, 12, 4, "sum"))  # (first token index, tokens, slots, pooling)
PAD = (25, 38)
FEATURE_SIZE = 39
LENGTHS = (3, 4)
# The feed loop by default: the inference pass under test is the same for both loops, the graph
# loop's XLA compilation costs seconds a fit, and test_graph_and_feed_loops_agree_with_sequences
# shows that both train the same model. The fixture model and the loop tests use the graph loop.
BASE_PARAMS = {"feature_size": FEATURE_SIZE, "embedding_size": 4, "deep_layers": (6, 5), "epoch": 2,
               "batch_size": 64, "learning_rate": 0.05, "random_seed": 7, "eval_train": False,
               "training_loop": "feed"}
FITTED_PARAMS = {"batch_norm": 1, "batch_norm_decay": 0.9, "dropout_deep": (0.8, 0.8, 0.8), "dropout_fm": (0.9, 0.9),
                 "training_loop": "graph"}


def sequence_block(rng, n_rows, first, n_tokens, slots, pooling, pad, min_len=0):
    """``(index, weight)`` of a padded sequence field as ``features.Sequence`` makes them: the tokens
    (repeats allowed), then the padding index with weight 0; mean (1/length) or sum (1) weights."""
    lengths = rng.integers(min_len, slots + 1, n_rows)
    index = np.full((n_rows, slots), pad, np.int32)
    tokens = first + rng.integers(0, n_tokens, (n_rows, slots))
    present = np.arange(slots) < lengths[:, None]
    index[present] = tokens[present]
    per_token = 1.0 / np.maximum(lengths, 1) if pooling == "mean" else np.ones(n_rows)
    weight = np.where(present, per_token[:, None], 0.0).astype(np.float32)
    return index, weight


def make_data(n_rows=300, seed=3):
    """``FeatureArrays`` with 3 single fields (non-unit values) and the two sequence fields, and labels
    that depend on both. Rows 0-2 have an empty list in one field or both."""
    rng = np.random.default_rng(seed)
    Xi = (rng.integers(0, VALUES_PER_FIELD, (n_rows, FIELD_SIZE))
          + np.arange(FIELD_SIZE) * VALUES_PER_FIELD).astype(np.int32)
    Xv = rng.uniform(0.3, 1.5, (n_rows, FIELD_SIZE)).astype(np.float32)
    Xs = [sequence_block(rng, n_rows, first, n, slots, pooling, pad)
          for (first, n, slots, pooling), pad in zip(SEQUENCES, PAD)]
    for row, fields in ((0, (0,)), (1, (0, 1)), (2, (1,))):
        for s in fields:
            Xs[s][0][row], Xs[s][1][row] = PAD[s], 0.0
    effect = rng.normal(0, 1.0, FEATURE_SIZE)
    logit = effect[Xi].sum(1) + sum((w * effect[i]).sum(1) for i, w in Xs)
    y = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return FeatureArrays(Xi, Xv, tuple(Xs)), y


def fit(X, y, valid=None, fit_options=None, **params):
    """A DeepFM of ``BASE_PARAMS | params`` fitted on ``X`` and scored on ``valid = (X_valid, y_valid)``;
    ``fit_options`` go to ``fit`` (early_stopping, refit, checkpoint_dir, resume)."""
    model = DeepFM(**(BASE_PARAMS | params))
    fit_options = fit_options or {}
    if valid is None:
        return model.fit(X.Xi, X.Xv, y, Xs=X.Xs, **fit_options)
    X_va, y_va = valid
    return model.fit(X.Xi, X.Xv, y, X_va.Xi, X_va.Xv, y_va, Xs=X.Xs, Xs_valid=X_va.Xs, **fit_options)


def predict(model, X):
    return model.predict(X.Xi, X.Xv, X.Xs)


def _replace(Xs, s, index=None, weight=None):
    """``Xs`` with block ``s``'s index or weight replaced."""
    blocks = list(Xs)
    i, w = blocks[s]
    blocks[s] = (i if index is None else index, w if weight is None else weight)
    return tuple(blocks)


def _with_value(array, value, dtype=None):
    array = array.astype(dtype or array.dtype)
    array[4, 1] = value
    return array


def numpy_forward(w, X, layout, batch_norm=False):
    """DeepFM by the paper's definitions in float64, with e_s = sum_l u_l v_{i_l} for a sequence field
    and the second order as an explicit pairwise sum over the F + S fields."""
    V, bias = w["feature_embeddings"].astype(np.float64), w["feature_bias"][:, 0].astype(np.float64)
    first = np.column_stack([bias[X.Xi] * X.Xv] + [(u * bias[i]).sum(1) for i, u in X.Xs])  # N * (F+S)
    pooled = [np.einsum("nl,nlk->nk", u, V[i]) for i, u in X.Xs]  # N * K each
    embeddings = np.concatenate([V[X.Xi] * X.Xv[:, :, None]] + [e[:, None] for e in pooled], 1)  # N * (F+S) * K
    second = pairwise_sum(embeddings)
    deep_input = embeddings.reshape(len(X), -1)  # the single fields, then the sequence fields
    deep = numpy_deep_layers(w, deep_input, batch_norm)
    if layout == "paper":
        logit = w["output_bias"][0] + first.sum(1) + second.sum(1) + (deep @ w["deep_projection"])[:, 0]
    else:
        logit = (np.concatenate([first, second, deep], 1) @ w["concat_projection"])[:, 0] + w["concat_bias"][0]
    return first, second, deep_input, deep, 1 / (1 + np.exp(-logit))


def pairwise_sum(embeddings):
    """sum_{i<j} e_i * e_j over axis 1 (N * fields * K -> N * K)."""
    return sum(embeddings[:, a] * embeddings[:, b] for a, b in itertools.combinations(range(embeddings.shape[1]), 2))


def run_terms(model, X):
    """The model's inference-pass terms (first order, second order, last deep layer) on ``X``."""
    g = model._graph
    return model.session_.run([g.terms.y_first_order, g.terms.y_second_order, g.terms.y_deep], g.feed(X))


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def fitted(data):
    """A paper-layout model trained by the graph loop with batch norm and dropout; don't mutate."""
    X, y = data
    return fit(X, y, **FITTED_PARAMS)


# ------------------------------------------------------------------ pooled terms against numpy
@pytest.mark.parametrize("layout,batch_norm", [("paper", 0), ("paper", 1), ("concat", 1)])
def test_pooled_terms_and_predictions_match_numpy(data, layout, batch_norm):
    X, y = data
    model = fit(X, y, layout=layout, batch_norm=batch_norm, batch_norm_decay=0.9)
    w = perturb_batch_norm(model) if batch_norm else model.get_weights()
    assert w["layer_0"].shape == ((FIELD_SIZE + 2) * 4, 6)  # the deep part sees F + S fields
    first, second, deep_input, deep, expected = numpy_forward(w, X, layout, batch_norm)
    got_first, got_second, got_deep = run_terms(model, X)

    assert got_first.shape == (len(X), FIELD_SIZE + 2) and got_second.shape == (len(X), 4)
    np.testing.assert_allclose(got_first, first, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_second, second, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_deep, deep, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(predict(model, X), expected, rtol=1e-5, atol=1e-6)
    assert np.abs(second).max() > 1e-3 and np.abs(deep).max() > 1e-2  # trained away from ~0: the checks bite
    assert np.abs(first[:, FIELD_SIZE:]).max() > 1e-3

    # The deep input is [e_1 .. e_F, e_A, e_B]: the sequence blocks first would give another deep output.
    swapped = np.roll(deep_input.reshape(len(X), -1, 4), 2, axis=1).reshape(len(X), -1)
    assert not np.allclose(numpy_deep_layers(w, swapped, batch_norm), got_deep, atol=1e-3)


def test_no_interactions_inside_a_sequence_field(data, fitted):
    X, _ = data
    w = fitted.get_weights()
    _, got_second, _ = run_terms(fitted, X)
    V = w["feature_embeddings"].astype(np.float64)
    # Every slot its own field: N * (F + L_A + L_B) * K
    slots = np.concatenate([V[X.Xi] * X.Xv[:, :, None]] + [u[:, :, None] * V[i] for i, u in X.Xs], 1)
    per_slot = pairwise_sum(slots)
    pooled = numpy_forward(w, X, "paper", batch_norm=True)[1]
    np.testing.assert_allclose(got_second, pooled, rtol=1e-5, atol=1e-6)
    # They differ by exactly the pairs inside each sequence field, sum_{l<m} u_l u_m v_l v_m.
    inside = sum(pairwise_sum(u[:, :, None] * V[i]) for i, u in X.Xs)
    np.testing.assert_allclose(per_slot - pooled, inside, rtol=1e-6, atol=1e-9)
    several = (X.Xs[1][1] > 0).sum(1) >= 2
    assert np.abs(got_second - per_slot)[several].max() > 100 * 1e-5


# ------------------------------------------------------------------ padding
def test_padding_slots_index_does_not_matter(data, fitted):
    X, _ = data
    rng = np.random.default_rng(11)
    moved = []
    for index, weight in X.Xs:
        index = np.where(weight == 0, rng.integers(0, FEATURE_SIZE, index.shape), index).astype(np.int32)
        moved.append((index, weight))
    assert any((i != j).any() for (i, _), (j, _) in zip(moved, X.Xs))
    np.testing.assert_array_equal(predict(fitted, FeatureArrays(X.Xi, X.Xv, tuple(moved))), predict(fitted, X))


def test_padding_is_never_trained(fitted):
    bias = fitted.get_weights()["feature_bias"][:, 0]
    assert (bias[list(PAD)] == 0).all()  # zero weight: zero gradient, so Adam never moves it
    tokens = np.r_[15:25, 26:38]
    assert (bias[tokens] != 0).all()


def test_empty_list_pools_to_zero(data, fitted):
    import tensorflow.compat.v1 as tf

    from deepfm_graph.graph import _pool

    X, _ = data
    table = fitted.get_weights()["feature_embeddings"]
    index, weight = X.Xs[0]
    with tf.Graph().as_default(), tf.Session() as session:
        variable = tf.Variable(table, use_resource=True)
        pooled = [_pool(variable, tf.constant(index), tf.constant(weight), dense) for dense in (True, False)]
        session.run(variable.initializer)
        dense, sparse = session.run(pooled)
    empty = weight.sum(1) == 0
    assert empty[:2].all() and not empty.all()
    for got in (dense, sparse):
        assert (got[empty] == 0).all()
        np.testing.assert_allclose(got, np.einsum("nl,nlk->nk", weight, table[index]), rtol=1e-6, atol=1e-8)
    # In the model, the empty field's first-order term is exactly zero and its embedding takes no part.
    first, second, _ = run_terms(fitted, X)
    assert (first[:2, FIELD_SIZE] == 0).all() and (first[1:3, FIELD_SIZE + 1] == 0).all()
    V = table.astype(np.float64)
    index_b, weight_b = X.Xs[1]
    without_a = np.concatenate([V[X.Xi] * X.Xv[:, :, None], np.einsum("nl,nlk->nk", weight_b, V[index_b])[:, None]], 1)
    np.testing.assert_allclose(second[:2], pairwise_sum(without_a[:2]), rtol=1e-5, atol=1e-6)  # rows 0, 1: A empty


def test_permuting_the_slots_of_a_row_changes_nothing(data, fitted):
    X, _ = data
    rng = np.random.default_rng(12)
    permuted = []
    for index, weight in X.Xs:
        order = np.argsort(rng.random(index.shape), axis=1)  # a permutation per row, weights go along
        permuted.append((np.take_along_axis(index, order, 1), np.take_along_axis(weight, order, 1)))
    assert any((i != j).any() for (i, _), (j, _) in zip(permuted, X.Xs))
    np.testing.assert_allclose(predict(fitted, FeatureArrays(X.Xi, X.Xv, tuple(permuted))), predict(fitted, X),
                               rtol=1e-6, atol=1e-6)


def test_xs_as_nested_lists_or_wider_dtypes_predicts_the_same(data, fitted):
    X, _ = data
    as_lists = [[index.tolist(), weight.tolist()] for index, weight in X.Xs]
    wide = tuple((index.astype(np.int64), weight.astype(np.float64)) for index, weight in X.Xs)
    expected = predict(fitted, X)
    np.testing.assert_array_equal(fitted.predict(X.Xi, X.Xv, as_lists), expected)
    np.testing.assert_array_equal(fitted.predict(X.Xi, X.Xv, wide), expected)


# ------------------------------------------------------------------ training loops
# Adam (dense embedding gradients: one XLA kernel per epoch, the last batch padded) without batch
# norm; momentum (sparse gradients through embedding_lookup, the last batch left short) with it.
@pytest.mark.parametrize("optimizer,batch_norm", [("adam", 0), ("momentum", 1)])
def test_graph_and_feed_loops_agree_with_sequences(data, optimizer, batch_norm):
    X, y = data
    assert len(X) % BASE_PARAMS["batch_size"] != 0  # a short last batch: 4 x 64 + 44
    params = dict(optimizer_type=optimizer, batch_norm=batch_norm, learning_rate=0.01, dropout_fm=(0.9, 0.8),
                  dropout_deep=(0.7, 0.6, 0.5), l2_reg_embedding=0.01)
    graph = fit(X, y, training_loop="graph", **params)
    feed = fit(X, y, training_loop="feed", **params)
    assert graph.session_.run(graph._graph.global_step) == feed.session_.run(feed._graph.global_step) == 2 * 5
    expected = predict(feed, X)
    np.testing.assert_allclose(predict(graph, X), expected, rtol=1e-5, atol=1e-5)
    assert expected.std() > 0.01


def test_same_seed_gives_bit_identical_predictions(data, fitted):
    X, y = data
    twin = fit(X, y, **FITTED_PARAMS)
    np.testing.assert_array_equal(predict(twin, X), predict(fitted, X))


# ------------------------------------------------------------------ learning signal
def make_token_data(n_rows, seed=0):
    """3 single fields without signal, and a sequence of 1-4 of 20 tokens whose effects sum to the logit."""
    rng = np.random.default_rng(seed)
    Xi = (rng.integers(0, VALUES_PER_FIELD, (n_rows, FIELD_SIZE))
          + np.arange(FIELD_SIZE) * VALUES_PER_FIELD).astype(np.int32)
    Xv = np.ones(Xi.shape, np.float32)
    first, n_tokens, pad = 15, 20, 35
    index, weight = sequence_block(rng, n_rows, first, n_tokens, 4, "sum", pad, min_len=1)
    effect = np.append(np.random.default_rng(100).normal(0, 1.5, n_tokens), 0.0)  # the same in every split; pad last
    logit = (weight * effect[index - first]).sum(1)
    y = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return FeatureArrays(Xi, Xv, ((index, weight),)), y


def test_sequence_field_carries_the_token_signal():
    (train, y), (test, y_test) = make_token_data(3000, seed=1), make_token_data(1000, seed=2)
    params = dict(feature_size=36, epoch=5, batch_size=128, learning_rate=0.01, deep_layers=(8, 8),
                  dropout_deep=(1.0, 1.0, 1.0))
    with_tokens = fit(train, y, **params)
    plain = DeepFM(**(BASE_PARAMS | params)).fit(train.Xi, train.Xv, y)
    auc_tokens = roc_auc_score(y_test, predict(with_tokens, test))
    auc_plain = roc_auc_score(y_test, plain.predict(test.Xi, test.Xv))
    assert auc_tokens > 0.7 and auc_tokens > auc_plain + 0.15, (auc_tokens, auc_plain)


# ------------------------------------------------------------------ persistence
def test_save_load_keeps_predictions_and_sequence_lengths(data, fitted, tmp_path):
    X, _ = data
    fitted.save(tmp_path / "model")
    loaded = DeepFM.load(tmp_path / "model")
    assert loaded.sequence_lengths_ == LENGTHS and isinstance(loaded.sequence_lengths_, tuple)
    np.testing.assert_array_equal(predict(loaded, X), predict(fitted, X))
    with pytest.raises(ValueError, match="Xs has 0 sequence fields"):
        loaded.predict(X.Xi, X.Xv)


def test_pickle_round_trip_keeps_predictions_and_sequence_lengths(data, fitted):
    X, _ = data
    twin = pickle.loads(pickle.dumps(fitted))
    assert twin.sequence_lengths_ == LENGTHS
    np.testing.assert_array_equal(predict(twin, X), predict(fitted, X))
    np.testing.assert_array_equal(twin.predict_proba(X.Xi, X.Xv, X.Xs)[:, 1], predict(fitted, X))


def test_clone_is_unfitted(fitted):
    twin = clone(fitted)
    assert not hasattr(twin, "session_") and not hasattr(twin, "sequence_lengths_")
    assert twin.get_params() == fitted.get_params()


def test_checkpoint_resume_equals_an_uninterrupted_run(data, tmp_path):
    X, y = data
    train, valid = X.take(slice(0, 220)), X.take(slice(220, None))
    params = dict(batch_norm=1, learning_rate=0.01, dropout_deep=(0.8, 0.8, 0.8), epoch=2)
    fit(train, y[:220], (valid, y[220:]), {"checkpoint_dir": tmp_path}, **(params | {"epoch": 1}))
    resumed = fit(train, y[:220], (valid, y[220:]), {"checkpoint_dir": tmp_path, "resume": True}, **params)
    full = fit(train, y[:220], (valid, y[220:]), **params)
    assert resumed.valid_result_ == full.valid_result_ and len(resumed.epoch_seconds_) == 2
    np.testing.assert_array_equal(predict(resumed, valid), predict(full, valid))
    assert DeepFM.load(tmp_path / "last").sequence_lengths_ == LENGTHS
    # The sequences are part of the checkpointed run's data.
    other = FeatureArrays(train.Xi, train.Xv, _replace(train.Xs, 0, weight=train.Xs[0][1] * 0.5))
    with pytest.raises(ValueError, match="data differ"):
        fit(other, y[:220], (valid, y[220:]), {"checkpoint_dir": tmp_path, "resume": True}, **params)


def test_early_stopping_keeps_the_best_epoch_scored_with_the_sequences(data):
    X, y = data
    train, valid = X.take(slice(0, 200)), X.take(slice(200, None))
    model = fit(train, y[:200], (valid, y[200:]), {"early_stopping": True}, epoch=5, patience=1, eval_metric="auc")
    best = model.best_epoch_
    assert model.valid_result_[best] == max(model.valid_result_)
    score = model.evaluate(valid.Xi, valid.Xv, y[200:], Xs=valid.Xs)
    assert score == pytest.approx(model.valid_result_[best], abs=1e-9)
    assert score == pytest.approx(roc_auc_score(y[200:], predict(model, valid)), abs=1e-9)


def test_refit_trains_on_train_plus_valid_sequences(data):
    X, y = data
    train, valid = X.take(slice(0, 200)), X.take(slice(200, None))  # 200 + 100 rows
    model = fit(train, y[:200], (valid, y[200:]), {"refit": True}, epoch=2, eval_train=True)
    steps = model.session_.run(model._graph.global_step)
    assert 1 <= model.refit_epochs_ and steps == 2 * 4 + model.refit_epochs_ * 5  # 200 / 64 -> 4, 300 / 64 -> 5
    assert np.isfinite(predict(model, X)).all()


# ------------------------------------------------------------------ validation
BAD_XS = [  # (id, Xs from the valid Xs, exception, message regex)
    ("bare pair", lambda Xs: Xs[0], TypeError, r"Xs\w*\[0\] must be an \(index, weight\) pair"),
    ("array", lambda Xs: np.stack([Xs[0][0], Xs[0][0]]), TypeError, r"Xs\w* must be a sequence of"),
    ("integer", lambda Xs: 3, TypeError, r"Xs\w* must be a sequence of"),
    ("generator", lambda Xs: (b for b in Xs), TypeError, r"Xs\w* must be a sequence of"),
    ("triple", lambda Xs: (Xs[0] + (Xs[0][1],), Xs[1]), TypeError, r"Xs\w*\[0\] must be an \(index, weight\) pair"),
    ("mismatched shapes", lambda Xs: _replace(Xs, 1, weight=Xs[1][1][:, :3]), ValueError,
     r"Xs\w*\[1\] index and weight"),
    ("too few rows", lambda Xs: _replace(Xs, 0, Xs[0][0][:-1], Xs[0][1][:-1]), ValueError, r"Xs\w*\[0\].*rows"),
    ("1-D block", lambda Xs: _replace(Xs, 0, Xs[0][0][:, 0], Xs[0][1][:, 0]), ValueError,
     r"Xs\w*\[0\] index must be 2-D"),
    ("negative index", lambda Xs: _replace(Xs, 1, _with_value(Xs[1][0], -1)), ValueError,
     r"Xs\w*\[1\] index holds feature index -1 outside"),
    ("float index", lambda Xs: _replace(Xs, 0, Xs[0][0].astype(np.float32)), TypeError,
     r"Xs\w*\[0\] index must hold integer"),
    ("bool index", lambda Xs: _replace(Xs, 0, Xs[0][0] > 20), TypeError, r"Xs\w*\[0\] index must hold integer"),
    ("NaN weight", lambda Xs: _replace(Xs, 1, weight=_with_value(Xs[1][1], np.nan)), ValueError,
     r"Xs\w*\[1\] weight holds a non-finite value at row 4, field 1"),
    ("inf weight", lambda Xs: _replace(Xs, 0, weight=_with_value(Xs[0][1], 1e39, np.float64)), ValueError,
     r"Xs\w*\[0\] weight holds a non-finite"),
    ("text weight", lambda Xs: _replace(Xs, 0, weight=Xs[0][1].astype(str)), TypeError,
     r"Xs\w*\[0\] weight must be numeric"),
]


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # 1e39 -> float32 inf
@pytest.mark.parametrize("make_Xs,error,match", [case[1:] for case in BAD_XS], ids=[case[0] for case in BAD_XS])
def test_bad_xs_at_fit_and_predict_raise_errors_naming_the_block(data, fitted, make_Xs, error, match):
    X, y = data
    with pytest.raises(error, match=match):
        fitted.predict(X.Xi, X.Xv, make_Xs(X.Xs))
    with pytest.raises(error, match=match):
        DeepFM(**BASE_PARAMS).fit(X.Xi, X.Xv, y, Xs=make_Xs(X.Xs))
    with pytest.raises(error, match=match.replace(r"Xs\w*", "Xs_valid")):
        DeepFM(**BASE_PARAMS).fit(X.Xi, X.Xv, y, X.Xi, X.Xv, y, Xs=X.Xs, Xs_valid=make_Xs(X.Xs))


@pytest.mark.parametrize("call", ["predict", "predict_proba", "evaluate"])
def test_index_at_or_above_feature_size_at_predict_names_the_block(data, fitted, call):
    X, y = data
    Xs = _replace(X.Xs, 1, _with_value(X.Xs[1][0], FEATURE_SIZE))
    args = (X.Xi, X.Xv, y) if call == "evaluate" else (X.Xi, X.Xv)
    with pytest.raises(ValueError, match=rf"Xs\[1\] index holds feature index {FEATURE_SIZE} outside "
                                         r"\[0, feature_size\) at row 4, field 1"):
        getattr(fitted, call)(*args, Xs=Xs)


@pytest.mark.parametrize("where", ["Xs", "Xs_valid"])
def test_index_at_or_above_feature_size_at_fit_names_the_block(data, where):
    X, y = data
    bad = _replace(X.Xs, 1, _with_value(X.Xs[1][0], FEATURE_SIZE))
    Xs, Xs_valid = (bad, X.Xs) if where == "Xs" else (X.Xs, bad)
    with pytest.raises(ValueError, match=rf"{where}\w*\[1\]"):
        DeepFM(**BASE_PARAMS).fit(X.Xi, X.Xv, y, X.Xi, X.Xv, y, Xs=Xs, Xs_valid=Xs_valid)


@pytest.mark.parametrize("make_Xs,match", [
    (lambda Xs: None, r"Xs has 0 sequence fields, the model expects 2"),
    (lambda Xs: (), r"Xs has 0 sequence fields, the model expects 2"),
    (lambda Xs: Xs[:1], r"Xs has 1 sequence fields, the model expects 2"),
    (lambda Xs: Xs + Xs[:1], r"Xs has 3 sequence fields, the model expects 2"),
    (lambda Xs: Xs[::-1], r"Xs\[0\] has 4 slots, the model expects 3"),
    (lambda Xs: _replace(Xs, 1, Xs[1][0][:, :3], Xs[1][1][:, :3]), r"Xs\[1\] has 3 slots, the model expects 4"),
], ids=["None", "empty", "fewer fields", "more fields", "swapped fields", "fewer slots"])
def test_predict_with_other_sequence_fields_than_fitted_raises(data, fitted, make_Xs, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        fitted.predict(X.Xi, X.Xv, make_Xs(X.Xs))
    with pytest.raises(ValueError, match=match):
        fitted.evaluate(X.Xi, X.Xv, y, Xs=make_Xs(X.Xs))


def test_xs_valid_needs_validation_data_and_the_fitted_layout(data):
    X, y = data
    with pytest.raises(ValueError, match="Xs_valid was given without validation data"):
        DeepFM(**BASE_PARAMS).fit(X.Xi, X.Xv, y, Xs=X.Xs, Xs_valid=X.Xs)
    with pytest.raises(ValueError, match="Xs_valid has 0 sequence fields, the model expects 2"):
        DeepFM(**BASE_PARAMS).fit(X.Xi, X.Xv, y, X.Xi, X.Xv, y, Xs=X.Xs)
    with pytest.raises(ValueError, match=r"Xs_valid\[1\] has 3 slots, the model expects 4"):
        DeepFM(**BASE_PARAMS).fit(X.Xi, X.Xv, y, X.Xi, X.Xv, y, Xs=X.Xs,
                                  Xs_valid=_replace(X.Xs, 1, X.Xs[1][0][:, :3], X.Xs[1][1][:, :3]))
    with pytest.raises(ValueError, match="Xs_valid has 2 sequence fields, the model expects 0"):
        DeepFM(**BASE_PARAMS).fit(X.Xi, X.Xv, y, X.Xi, X.Xv, y, Xs_valid=X.Xs)


def test_embedding_size_one_with_sequences_fits_and_predicts(data):
    X, y = data
    model = fit(X, y, embedding_size=1, epoch=1)
    expected = numpy_forward(model.get_weights(), X, "paper")[-1]
    np.testing.assert_allclose(predict(model, X), expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ the classic path
def test_model_without_sequences_is_the_classic_model(data):
    X, y = data
    model = DeepFM(**BASE_PARAMS).fit(X.Xi, X.Xv, y)
    assert model.sequence_lengths_ == () and model._graph.sequences == ()
    expected = model.predict(X.Xi, X.Xv)
    np.testing.assert_array_equal(model.predict(X.Xi, X.Xv, Xs=None), expected)
    np.testing.assert_array_equal(model.predict(X.Xi, X.Xv, Xs=()), expected)
    np.testing.assert_allclose(expected, numpy_forward(model.get_weights(), FeatureArrays(X.Xi, X.Xv), "paper")[4],
                               rtol=1e-5, atol=1e-6)
    K, (D0, D1) = BASE_PARAMS["embedding_size"], BASE_PARAMS["deep_layers"]
    shapes = {name: value.shape for name, value in model.get_weights().items()}
    assert shapes == {"feature_embeddings": (FEATURE_SIZE, K), "feature_bias": (FEATURE_SIZE, 1),
                      "layer_0": (FIELD_SIZE * K, D0), "bias_0": (D0,), "layer_1": (D0, D1), "bias_1": (D1,),
                      "deep_projection": (D1, 1), "output_bias": (1,)}
    with pytest.raises(ValueError, match="Xs has 2 sequence fields, the model expects 0"):
        model.predict(X.Xi, X.Xv, X.Xs)


def test_field_interactions_and_importance_match_numpy_with_a_pooled_sequence_field(fitted, data):
    model, X = fitted, data[0]
    w = model.get_weights()
    fields = w["feature_embeddings"][X.Xi] * X.Xv[:, :, None]  # N * F * K
    pooled = [(w["feature_embeddings"][index] * weight[:, :, None]).sum(1) for index, weight in X.Xs]
    e = np.concatenate([fields, np.stack(pooled, 1)], 1)  # N * (F+S) * K
    n_fields = e.shape[1]
    expected = np.zeros((n_fields, n_fields))
    for i, j in itertools.permutations(range(n_fields), 2):
        expected[i, j] = np.abs((e[:, i] * e[:, j]).sum(1)).mean()
    got = model.field_interactions(X.Xi, X.Xv, X.Xs)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-12)
    first = np.concatenate([w["feature_bias"][X.Xi, 0] * X.Xv,
                            np.stack([(w["feature_bias"][index, 0] * weight).sum(1) for index, weight in X.Xs], 1)], 1)
    share = np.abs(first).mean(0) + expected.sum(1) / 2
    np.testing.assert_allclose(model.field_importance(X.Xi, X.Xv, X.Xs), share / share.sum(), rtol=1e-5)
    deep_only = fit(X, data[1], use_fm=False, epoch=1)
    with pytest.raises(ValueError, match="use_fm=False"):
        deep_only.field_interactions(X.Xi, X.Xv, X.Xs)
