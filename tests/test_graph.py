"""The graph's maths against an independent numpy forward pass on the fitted weights."""
import itertools

import numpy as np
import pytest
from conftest import numpy_deep_layers, perturb_batch_norm

from deepfm_graph import DeepFM
from deepfm_graph.graph import BATCH_NORM_EPSILON


def numpy_forward(w, Xi, Xv, layout, use_fm=True, use_deep=True, batch_norm=False):
    """DeepFM by the paper's definitions, second order as an explicit pairwise sum."""
    n_rows, n_fields = Xi.shape
    first = w["feature_bias"][Xi, 0] * Xv  # N * F
    emb = w["feature_embeddings"][Xi] * Xv[:, :, None]  # N * F * K
    second = sum(emb[:, i] * emb[:, j] for i, j in itertools.combinations(range(n_fields), 2))  # N * K
    deep = numpy_deep_layers(w, emb.reshape(n_rows, -1), batch_norm)
    if layout == "paper":
        logit = w["output_bias"][0] + np.zeros(n_rows)
        if use_fm:
            logit = logit + first.sum(1) + second.sum(1)
        if use_deep:
            logit = logit + (deep @ w["deep_projection"])[:, 0]
    else:
        parts = ([first, second] if use_fm else []) + ([deep] if use_deep else [])
        logit = (np.concatenate(parts, 1) @ w["concat_projection"])[:, 0] + w["concat_bias"][0]
    return first, second, 1 / (1 + np.exp(-logit))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n_rows, n_fields, feature_size = 300, 5, 23
    Xi = rng.integers(0, feature_size, (n_rows, n_fields)).astype(np.int32)
    Xv = rng.uniform(0.2, 1.5, (n_rows, n_fields)).astype(np.float32)  # non-unit values matter
    y = (rng.random(n_rows) < 0.4).astype(np.float32)
    return Xi, Xv, y, feature_size


def fit_model(data, **params):
    Xi, Xv, y, feature_size = data
    params = dict(feature_size=feature_size, embedding_size=4, deep_layers=(6, 5), epoch=2, batch_size=64,
                  learning_rate=0.05, random_seed=7, eval_train=False) | params
    return DeepFM(**params).fit(Xi, Xv, y)


def test_fm_terms_match_bruteforce_pairwise_sum(data):
    model = fit_model(data, use_deep=False)
    Xi, Xv = data[0], data[1]
    first, second, _ = numpy_forward(model.get_weights(), Xi, Xv, "paper", use_deep=False)
    terms = model._graph.terms
    got_first, got_second = model.session_.run(
        [terms.y_first_order, terms.y_second_order], {model._graph.feat_index: Xi, model._graph.feat_value: Xv})
    np.testing.assert_allclose(got_first, first, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_second, second, rtol=1e-4, atol=1e-6)
    assert np.abs(second).max() > 1e-4  # the embeddings were trained away from ~0


@pytest.mark.parametrize("layout", ["paper", "concat"])
@pytest.mark.parametrize("use_fm,use_deep", [(True, True), (True, False), (False, True)])
def test_predictions_match_numpy_forward(data, layout, use_fm, use_deep):
    model = fit_model(data, layout=layout, use_fm=use_fm, use_deep=use_deep)
    _, _, expected = numpy_forward(model.get_weights(), data[0], data[1], layout, use_fm, use_deep)
    np.testing.assert_allclose(model.predict(data[0], data[1]), expected, rtol=1e-4, atol=1e-6)


def test_batch_norm_inference_uses_moving_statistics(data):
    model = fit_model(data, batch_norm=1, batch_norm_decay=0.9, dropout_deep=(0.8, 0.8, 0.8))
    w = model.get_weights()
    assert not np.allclose(w["bn_mean_0"], 0)  # training moved the statistics
    _, _, expected = numpy_forward(w, data[0], data[1], "paper", batch_norm=True)
    np.testing.assert_allclose(model.predict(data[0], data[1]), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("layout", ["paper", "concat"])
def test_batch_norm_folded_into_the_layers_at_inference_matches_numpy(data, layout):
    model = fit_model(data, batch_norm=1, layout=layout)
    w = perturb_batch_norm(model)
    _, _, expected = numpy_forward(w, data[0], data[1], layout, batch_norm=True)
    np.testing.assert_allclose(model.predict(data[0], data[1]), expected, rtol=1e-4, atol=1e-6)


def test_weight_names_and_shapes_follow_the_paper(data):
    model = fit_model(data, batch_norm=1)
    shapes = {k: v.shape for k, v in model.get_weights().items()}
    assert shapes["feature_embeddings"] == (23, 4) and shapes["feature_bias"] == (23, 1)
    assert shapes["layer_0"] == (5 * 4, 6) and shapes["bias_0"] == (6,)
    assert shapes["layer_1"] == (6, 5) and shapes["deep_projection"] == (5, 1)
    assert shapes["bn_mean_1"] == (5,) and shapes["output_bias"] == (1,)
    concat = fit_model(data, layout="concat", epoch=1)
    assert concat.get_weights()["concat_projection"].shape == (5 + 4 + 5, 1)


def test_output_bias_starts_at_base_rate_logit(data):
    model = fit_model(data, epoch=1, learning_rate=1e-9)
    rate = data[2].mean()
    assert model.get_weights()["output_bias"][0] == pytest.approx(np.log(rate / (1 - rate)), abs=1e-4)


def test_predict_never_changes_variables_with_batch_norm_and_dropout(data):
    model = fit_model(data, batch_norm=1, dropout_deep=(0.5, 0.5, 0.5), dropout_fm=(0.9, 0.9))
    before = model.get_weights()
    first = model.predict(data[0], data[1])
    second = model.predict(data[0], data[1])
    np.testing.assert_array_equal(first, second)
    after = model.get_weights()
    for name in before:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)


def test_l2_reg_shrinks_deep_weights(data):
    plain = fit_model(data, epoch=3).get_weights()
    shrunk = fit_model(data, epoch=3, l2_reg=0.5).get_weights()
    assert np.linalg.norm(shrunk["layer_0"]) < 0.8 * np.linalg.norm(plain["layer_0"])


def test_fm_second_order_gradient_matches_autodiff_of_the_formula():
    import tensorflow.compat.v1 as tf

    from deepfm_graph.graph import fm_second_order

    rng = np.random.default_rng(0)
    e, dy = rng.normal(size=(7, 5, 3)), rng.normal(size=(7, 3))
    with tf.Graph().as_default(), tf.Session() as session:
        embeddings, weights = tf.constant(e), tf.constant(dy)
        reference = 0.5 * (tf.square(tf.reduce_sum(embeddings, 1)) - tf.reduce_sum(tf.square(embeddings), 1))
        ours = fm_second_order(embeddings)
        got = session.run([ours, tf.gradients(tf.reduce_sum(ours * weights), embeddings)[0]])
        want = session.run([reference, tf.gradients(tf.reduce_sum(reference * weights), embeddings)[0]])
    pairwise = sum(e[:, i] * e[:, j] for i, j in itertools.combinations(range(5), 2))
    np.testing.assert_allclose(got[0], pairwise, rtol=1e-10)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-10)
    np.testing.assert_allclose(got[1], dy[:, None, :] * (e.sum(1, keepdims=True) - e), rtol=1e-10)


def test_fm_second_order_inference_equals_the_pairwise_sum():
    import tensorflow.compat.v1 as tf

    from deepfm_graph.graph import fm_second_order_inference

    e = np.random.default_rng(1).normal(size=(7, 5, 3))
    with tf.Graph().as_default(), tf.Session() as session:
        got = session.run(fm_second_order_inference(tf.constant(e)))
    pairwise = sum(e[:, i] * e[:, j] for i, j in itertools.combinations(range(5), 2))
    np.testing.assert_allclose(got, pairwise, rtol=1e-10, atol=1e-12)


def test_classic_out_tensor_with_default_feeds_equals_predict(data):
    model = fit_model(data, batch_norm=1, dropout_deep=(0.5, 0.5, 0.5))
    g = model._graph
    classic = model.session_.run(g.out, {g.feat_index: data[0], g.feat_value: data[1]})
    np.testing.assert_allclose(classic, model.predict(data[0], data[1]), rtol=1e-6, atol=1e-7)


def test_batch_norm_gradient_matches_autodiff_of_the_formula():
    import tensorflow.compat.v1 as tf

    from deepfm_graph.graph import _batch_normalize

    rng = np.random.default_rng(1)
    x0, s0, o0, dy = rng.normal(size=(9, 4)), rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=(9, 4))
    with tf.Graph().as_default(), tf.Session() as session:
        x, scale, offset, weights = (tf.constant(a) for a in (x0, s0, o0, dy))
        mean, var = tf.nn.moments(x, axes=[0])
        reference = tf.nn.batch_normalization(x, mean, var, offset, scale, BATCH_NORM_EPSILON)
        ours, our_mean, our_var = _batch_normalize(x, scale, offset, 9)
        inputs = [x, scale, offset]
        got = session.run([ours, our_mean, our_var] + tf.gradients(tf.reduce_sum(ours * weights), inputs))
        want = session.run([reference, mean, var] + tf.gradients(tf.reduce_sum(reference * weights), inputs))
    x_hat = (x0 - x0.mean(0)) / np.sqrt(x0.var(0) + BATCH_NORM_EPSILON)
    np.testing.assert_allclose(got[0], x_hat * s0 + o0, rtol=1e-10)
    for ours_part, reference_part in zip(got, want):
        np.testing.assert_allclose(ours_part, reference_part, rtol=1e-9, atol=1e-12)


def test_batch_norm_of_a_padded_batch_ignores_the_padding_rows():
    import tensorflow.compat.v1 as tf

    from deepfm_graph.graph import _batch_normalize

    rng = np.random.default_rng(3)
    x0, s0, o0, dy = rng.normal(size=(7, 4)), rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=(7, 4))
    padding = 1e3 * rng.normal(size=(5, 4))
    with tf.Graph().as_default(), tf.Session() as session:
        scale, offset = tf.constant(s0), tf.constant(o0)
        x, x_padded = tf.constant(x0), tf.constant(np.vstack([x0, padding]))
        results = []
        for inputs, weights in ((x, dy), (x_padded, np.vstack([dy, rng.normal(size=(5, 4))]))):
            y, mean, var = _batch_normalize(inputs, scale, offset, 7)
            objective = tf.reduce_sum(y[:7] * weights[:7])  # the loss sees the batch's rows only
            results.append(session.run([y[:7], mean, var] + tf.gradients(objective, [inputs, scale, offset])))
    (y, mean, var, dx, d_scale, d_offset), (y_p, mean_p, var_p, dx_p, d_scale_p, d_offset_p) = results
    np.testing.assert_allclose(mean_p, x0.mean(0), rtol=1e-12)
    np.testing.assert_allclose(var_p, x0.var(0), rtol=1e-12)
    for unpadded, padded in ((y, y_p), (dx, dx_p[:7]), (d_scale, d_scale_p), (d_offset, d_offset_p)):
        np.testing.assert_allclose(padded, unpadded, rtol=1e-10, atol=1e-12)
    assert not dx_p[7:].any()  # padding rows never reach the layer's weights


@pytest.mark.parametrize("jit_compile", [False, True])
def test_dense_lookup_gradient_scatter_adds_repeated_rows(jit_compile):
    import tensorflow.compat.v1 as tf

    from deepfm_graph.graph import _lookup

    rng = np.random.default_rng(2)
    table0, index0 = rng.normal(size=(11, 3)).astype(np.float32), rng.integers(0, 11, (6, 4)).astype(np.int32)
    index0[0, :] = 5  # repeated rows must accumulate in the table's gradient
    weights0 = rng.normal(size=(6, 4, 3)).astype(np.float32)

    def table_gradient(index, weights):  # as in the epoch kernel: inside XLA with jit_compile
        rows = _lookup(table, index, dense_gradient=True)
        return tf.convert_to_tensor(tf.gradients(tf.reduce_sum(tf.square(rows) * weights), table)[0])

    with tf.Graph().as_default(), tf.Session() as session:
        table = tf.Variable(table0, use_resource=True)
        fn = tf.function(table_gradient, autograph=False, jit_compile=True) if jit_compile else table_gradient
        gradient = fn(tf.constant(index0), tf.constant(weights0))
        session.run(table.initializer)
        d_table = session.run(gradient)
    expected = np.zeros_like(table0)
    np.add.at(expected, index0.ravel(), (2 * table0[index0] * weights0).reshape(-1, 3))
    np.testing.assert_allclose(d_table, expected, rtol=1e-5, atol=1e-6)


def _lowbias32(x):
    """Chris Wellons' lowbias32 in numpy (uint32 arithmetic wraps)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> 16)
        x = x * np.uint32(0x7FEB352D)
        x = x ^ (x >> 15)
        x = x * np.uint32(0x846CA68B)
        return x ^ (x >> 16)


@pytest.mark.parametrize("keep", [0.5, 0.8, 0.9921875])
def test_dropout_masks_keep_the_requested_fraction_and_are_stateless(keep):
    import tensorflow.compat.v1 as tf

    from deepfm_graph.graph import dropout_keys, keep_mask

    with tf.Graph().as_default(), tf.Session() as session:
        keys = dropout_keys(7, tf.constant([3, 4], tf.int64))
        shape = tf.constant([1001, 37])
        masks = [keep_mask(shape, keep, keys[0]), keep_mask(shape, keep, keys[0]), keep_mask(shape, keep, keys[1]),
                 keep_mask(tf.constant([4, 5]), tf.constant(1.0), keys[0]),
                 keep_mask(tf.constant([40000, 50]), tf.constant(1e-5), keys[0]),
                 keep_mask(tf.constant([40000, 50]), tf.constant(1e-12), keys[0])]
        (first, again, other_key, keep_all, keep_small, keep_tiny), key_values = session.run([masks, keys])
    assert first.shape == (1001, 37) and first.dtype == bool
    np.testing.assert_array_equal(first, again)
    assert (first != other_key).mean() > 0.5 * 2 * keep * (1 - keep)
    assert abs(first.mean() - keep) < 4 * np.sqrt(keep * (1 - keep) / first.size)
    assert keep_all.all()
    assert 5 < keep_small.sum() < 45  # 1e-5 of 2e6: 20 expected
    assert keep_tiny.sum() <= 2  # a tiny keep never wraps around to "keep all"
    assert abs(first.mean(0) - keep).max() < 8 * np.sqrt(keep * (1 - keep) / 1001)  # no column is stuck
    assert abs(first.mean(1) - keep).max() < 8 * np.sqrt(keep * (1 - keep) / 37)  # nor any row
    # The documented function: element i keeps when lowbias32(i * golden ^ key) <= keep * 2**32 - 1.
    seed_key = _lowbias32(np.uint32(7))
    np.testing.assert_array_equal(key_values, _lowbias32(seed_key ^ _lowbias32(np.array([3, 4], np.uint32))))
    index = np.arange(1001 * 37, dtype=np.uint32).reshape(1001, 37)
    bits = _lowbias32((index * np.uint32(0x9E3779B9)) ^ key_values[0])
    np.testing.assert_array_equal(first, bits <= np.uint32(round(keep * 2.0 ** 32) - 1))
