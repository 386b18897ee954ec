"""The DeepFM computation graph (Guo et al., IJCAI 2017) in TensorFlow-1 graph style.

Notation: N = batch rows, F = fields (``field_size``), K = ``embedding_size``,
M = ``feature_size``, D_i = width of deep layer i.

    y_FM  = <w, x> + sum_{i<j} <v_i, v_j> x_i x_j          (first + second order)
    y_DNN = MLP(concat_f(v_f x_f))                          (shares the embeddings v)
    paper layout:  logit = y_first + y_second + w_out . a_H + b
    concat layout: logit = [y_first, y_second, a_H] . w_concat + b   (classic reference)

Dropout masks come from stateless random ops seeded with ``(random_seed, step)``, so a
training step draws the same mask whichever training loop runs it, in any process.
Nothing here knows about files, folds or plotting.
"""
from dataclasses import dataclass
from typing import Tuple

import tensorflow.compat.v1 as tf

ACTIVATIONS = {
    "relu": tf.nn.relu,
    "tanh": tf.nn.tanh,
    "sigmoid": tf.nn.sigmoid,
    "elu": tf.nn.elu,
    "selu": tf.nn.selu,
    "leaky_relu": tf.nn.leaky_relu,
    "softplus": tf.nn.softplus,
    "linear": tf.identity,
}

OPTIMIZERS = {
    "adam": lambda lr: tf.train.AdamOptimizer(lr, beta1=0.9, beta2=0.999, epsilon=1e-8),
    "adagrad": lambda lr: tf.train.AdagradOptimizer(lr, initial_accumulator_value=1e-8),
    "gd": lambda lr: tf.train.GradientDescentOptimizer(lr),
    "momentum": lambda lr: tf.train.MomentumOptimizer(lr, momentum=0.95),
    "ftrl": lambda lr: tf.train.FtrlOptimizer(lr),
    "rmsprop": lambda lr: tf.train.RMSPropOptimizer(lr),
}

# Optimizers whose update with a dense, mostly-zero gradient equals their TF1 sparse update
# (momentum, rmsprop and ftrl would move rows absent from the batch).
DENSE_GRADIENT_OPTIMIZERS = ("adam", "adagrad", "gd")
MAX_DENSE_GRADIENT_ELEMENTS = 1 << 22  # above this, a dense table update costs more than it saves
LAYOUTS = ("paper", "concat")
LOSSES = ("logloss", "mse")
BATCH_NORM_EPSILON = 1e-3


@dataclass(frozen=True)
class GraphConfig:
    """Everything the graph depends on, validated by the estimator."""

    feature_size: int
    field_size: int
    embedding_size: int
    deep_layers: Tuple[int, ...]
    activation: object
    dropout_fm: Tuple[float, ...]
    dropout_deep: Tuple[float, ...]
    use_fm: bool
    use_deep: bool
    layout: str
    batch_norm: bool
    batch_norm_decay: float
    loss_type: str
    l2_reg: float
    l2_reg_embedding: float
    optimizer_type: str
    learning_rate: float
    random_seed: int
    output_bias: float  # initial global bias: the base-rate logit (or mean target for mse)

    @property
    def dense_embedding_gradient(self):
        """Whether embedding lookups send dense gradients (one fused optimizer op per table)."""
        return (self.optimizer_type in DENSE_GRADIENT_OPTIMIZERS
                and self.feature_size * (self.embedding_size + 1) <= MAX_DENSE_GRADIENT_ELEMENTS)


def _normal(shape, std, seed, key):
    return tf.random.stateless_normal(shape, seed=[seed, key], stddev=std)


def _glorot(n_in, n_out, seed, key):
    return _normal([n_in, n_out], (2.0 / (n_in + n_out)) ** 0.5, seed, key)


def _variable(initial_value, name, trainable=True):
    return tf.Variable(initial_value, name=name, trainable=trainable, use_resource=True)


def init_weights(cfg):
    """Create the model's variables, keyed with the paper's names.

    ``feature_embeddings`` M*K, ``feature_bias`` M*1, ``layer_i``/``bias_i`` of the deep
    stack (+ ``bn_scale_i``/``bn_offset_i``/``bn_mean_i``/``bn_variance_i`` with batch
    norm), and the output weights: ``deep_projection``/``output_bias`` (paper layout) or
    ``concat_projection``/``concat_bias`` (concat layout). Initial values are stateless
    functions of ``random_seed``, hence identical in every process.
    """
    seed, K, F = cfg.random_seed, cfg.embedding_size, cfg.field_size
    w = {
        "feature_embeddings": _variable(_normal([cfg.feature_size, K], 0.01, seed, 0), "feature_embeddings"),
        "feature_bias": _variable(tf.zeros([cfg.feature_size, 1]), "feature_bias"),
    }
    width = F * K
    if cfg.use_deep:
        for i, units in enumerate(cfg.deep_layers):
            w[f"layer_{i}"] = _variable(_glorot(width, units, seed, 1 + i), f"layer_{i}")
            w[f"bias_{i}"] = _variable(tf.zeros([units]), f"bias_{i}")
            if cfg.batch_norm:
                w[f"bn_scale_{i}"] = _variable(tf.ones([units]), f"bn_scale_{i}")
                w[f"bn_offset_{i}"] = _variable(tf.zeros([units]), f"bn_offset_{i}")
                w[f"bn_mean_{i}"] = _variable(tf.zeros([units]), f"bn_mean_{i}", trainable=False)
                w[f"bn_variance_{i}"] = _variable(tf.ones([units]), f"bn_variance_{i}", trainable=False)
            width = units
    bias = tf.constant([cfg.output_bias], tf.float32)
    if cfg.layout == "paper":
        if cfg.use_deep:
            w["deep_projection"] = _variable(_glorot(width, 1, seed, 100), "deep_projection")
        w["output_bias"] = _variable(bias, "output_bias")
    else:
        concat_size = (F + K if cfg.use_fm else 0) + (width if cfg.use_deep else 0)
        w["concat_projection"] = _variable(_glorot(concat_size, 1, seed, 100), "concat_projection")
        w["concat_bias"] = _variable(bias, "concat_bias")
    return w


def _gather_rows(table, index):
    """``tf.gather(table, index)`` as ``GatherNd``: 25-40% faster on CPU for short rows (measured)."""
    return tf.gather_nd(table, tf.expand_dims(index, -1))


@tf.custom_gradient
def _gather_dense_gradient(table, index):
    """``tf.gather(table, index)`` whose gradient is the dense M * D table gradient.

    The scatter-add of the row gradients runs as a sparse one-hot matmul (int32 indices),
    several times faster on CPU than ``unsorted_segment_sum`` and the optimizers' sparse paths.
    """
    def grad(d_rows):
        flat_index = tf.reshape(index, [-1])
        n_rows = tf.size(flat_index)
        d_table = tf.raw_ops.SparseTensorDenseMatMul(
            a_indices=tf.stack([tf.range(n_rows), flat_index], 1), a_values=tf.ones([n_rows]),
            a_shape=tf.cast(tf.stack([n_rows, tf.shape(table)[0]]), tf.int64),
            b=tf.reshape(d_rows, tf.stack([n_rows, -1])), adjoint_a=True)  # one_hot^T @ d_rows
        return tf.reshape(d_table, tf.shape(table)), None

    return _gather_rows(table, index), grad


def lookup(cfg, table, index, train_phase):
    """``table[index]`` for a variable ``table``: N * F * D, or N * F when it has one column.

    One-column tables are gathered flat (a gather of 1-float rows is slow); inference gathers
    from the table's value; training sends dense or sparse (IndexedSlices) gradients as the
    config says.
    """
    single_column = table.shape[1] == 1
    if train_phase is not False and not cfg.dense_embedding_gradient:
        rows = tf.nn.embedding_lookup(table, index)  # sparse (IndexedSlices) gradient
        return tf.squeeze(rows, 2) if single_column else rows
    values = table.read_value()
    values = tf.reshape(values, [-1]) if single_column else values
    return _gather_rows(values, index) if train_phase is False else _gather_dense_gradient(values, index)


@tf.custom_gradient
def fm_second_order(embeddings):
    """1/2 [(sum_f e_f)^2 - sum_f e_f^2] per embedding dimension (N * F * K -> N * K).

    Its gradient is written out, d/de_fk = dy_k (s_k - e_fk) with s = sum_f e_f: two
    broadcast ops instead of the five that autodiff builds through the squares and sums.
    """
    summed = tf.reduce_sum(embeddings, 1)  # N * K
    y = 0.5 * (tf.square(summed) - tf.reduce_sum(tf.square(embeddings), 1))

    def grad(dy):
        return tf.expand_dims(dy, 1) * (tf.expand_dims(summed, 1) - embeddings)

    return y, grad


def _switch(train_phase, train_fn, infer_fn):
    """Branch on the phase: statically for a Python bool, with ``tf.cond`` for a tensor."""
    if isinstance(train_phase, bool):
        return train_fn() if train_phase else infer_fn()
    return tf.cond(train_phase, train_fn, infer_fn)


def mask_bits(keep):
    """Random bits per dropout decision: 8 when ``keep`` is a multiple of 1/256 (exact), else 16.

    (Fewer bits, packed several per byte, measured slower: unpacking costs more than Philox.)
    """
    return 8 if float(keep) * 256 == round(float(keep) * 256) else 16


def _keep_mask(shape, keep, bits, seed):
    """A stateless boolean mask, True with probability ``keep`` rounded to a multiple of 2**-bits.

    Each decision reads ``bits`` bits of 64-bit Philox words (random bits are the cost: a
    float per decision spends 32) and keeps when their value is at most ``keep * 2**bits - 1``.
    """
    n = tf.reduce_prod(shape)
    per_word = 64 // bits
    words = tf.random.stateless_uniform([(n + per_word - 1) // per_word], seed=seed, minval=None, maxval=None,
                                        dtype=tf.uint64)
    dtype = tf.uint8 if bits == 8 else tf.uint16
    uniform = tf.reshape(tf.reshape(tf.bitcast(words, dtype), [-1])[:n], shape)
    threshold = tf.maximum(tf.cast(tf.round(tf.cast(keep, tf.float32) * 2.0 ** bits), tf.int32), 1) - 1
    return uniform <= tf.cast(threshold, dtype)


def _dropout(x, keep, train_phase, seed, bits):
    """Inverted dropout with a stateless mask; ``keep`` is a keep-probability (float or tensor).

    ``bits`` is ``mask_bits`` of the configured keep: a different keep fed to the classic
    graph's placeholder is rounded to that resolution (at least 2**-bits).
    """
    if train_phase is False or (isinstance(keep, float) and keep >= 1.0):
        return x

    def drop():
        keep_mask = _keep_mask(tf.shape(x), keep, bits, seed)
        return x * tf.where_v2(keep_mask, 1.0 / keep, 0.0)  # backward: one multiply

    return _switch(train_phase, drop, lambda: x)


@tf.custom_gradient
def _batch_normalize(x, scale, offset):
    """Normalize ``x`` (N * D) with its batch moments, then scale and offset; also returns the moments.

    The gradient is written out (the standard batch-norm backward, three reductions and a
    few N * D ops) rather than differentiated through ``tf.nn.moments``, which broadcasts
    every intermediate back to N * D.
    """
    mean, variance = tf.nn.moments(x, axes=[0])
    inv_std = tf.math.rsqrt(variance + BATCH_NORM_EPSILON)
    x_hat = (x - mean) * inv_std
    y = x_hat * scale + offset

    def grad(dy, _d_mean, _d_variance):  # the moments feed only the moving averages
        n = tf.cast(tf.shape(x)[0], x.dtype)
        d_offset = tf.reduce_sum(dy, 0)
        d_scale = tf.reduce_sum(dy * x_hat, 0)
        dx = (scale * inv_std / n) * (n * dy - d_offset - x_hat * d_scale)
        return dx, d_scale, d_offset

    return (y, mean, variance), grad


def _batch_norm(x, w, i, train_phase, decay, updates):
    """Batch norm; the moving statistics are updated only through ``updates`` (run with training)."""
    moving_mean, moving_var = w[f"bn_mean_{i}"], w[f"bn_variance_{i}"]
    scale, offset = w[f"bn_scale_{i}"].read_value(), w[f"bn_offset_{i}"].read_value()

    def with_batch_stats():
        y, mean, var = _batch_normalize(x, scale, offset)
        updates.append(moving_mean.assign(moving_mean * decay + mean * (1.0 - decay)))
        updates.append(moving_var.assign(moving_var * decay + var * (1.0 - decay)))
        return y

    def with_moving_stats():
        return tf.nn.batch_normalization(x, moving_mean, moving_var, offset, scale, BATCH_NORM_EPSILON)

    if isinstance(train_phase, bool):
        return with_batch_stats() if train_phase else with_moving_stats()
    y_train = with_batch_stats()  # outside the cond (not _switch): the update ops must live in this graph
    return tf.cond(train_phase, lambda: y_train, with_moving_stats)


@dataclass
class Forward:
    """Tensors of one forward pass."""

    logits: tf.Tensor  # N
    y_first_order: tf.Tensor  # N * F (None without use_fm)
    y_second_order: tf.Tensor  # N * K (None without use_fm)
    y_deep: tf.Tensor  # N * D_last (None without use_deep)
    embeddings: tf.Tensor  # N * F * K (scaled by feature values)
    bn_updates: list  # moving-average update ops, to run with the training op only


def forward(w, cfg, feat_index, feat_value, train_phase, keep_fm, keep_deep, step):
    """Build DeepFM's forward pass on ``feat_index``/``feat_value`` (N * F).

    ``train_phase`` is a Python bool or a boolean tensor; ``keep_fm`` (2) and
    ``keep_deep`` (len(deep_layers) + 1) are floats or a float vector tensor; ``step``
    (int64 scalar) seeds the dropout masks. With ``train_phase=False`` the keeps and
    ``step`` are unused: the pass is built for inference only.
    """
    n_deep = len(cfg.deep_layers) + 1
    n_dropouts = n_deep + 2  # two FM terms, the deep input and each deep layer: one seed each per step
    if train_phase is False:  # inference only: no dropout, hence no keeps or seeds
        keep_fm, keep_deep, seeds = (None,) * 2, (None,) * n_deep, (None,) * n_dropouts
    else:
        seeds = [tf.stack([tf.constant(cfg.random_seed, tf.int64), step * n_dropouts + j]) for j in range(n_dropouts)]
    bits_fm, bits_deep = [mask_bits(k) for k in cfg.dropout_fm], [mask_bits(k) for k in cfg.dropout_deep]
    embeddings = lookup(cfg, w["feature_embeddings"], feat_index, train_phase) * tf.expand_dims(feat_value, 2)  # N*F*K
    y_first_order = y_second_order = y_deep = None
    if cfg.use_fm:
        # First order: sum_f w_f x_f
        y_first_order = lookup(cfg, w["feature_bias"], feat_index, train_phase) * feat_value  # N * F
        y_first_order = _dropout(y_first_order, keep_fm[0], train_phase, seeds[0], bits_fm[0])
        # Second order, sum-square trick: 1/2 [(sum_f v_f x_f)^2 - sum_f (v_f x_f)^2]
        y_second_order = _dropout(fm_second_order(embeddings), keep_fm[1], train_phase, seeds[1], bits_fm[1])  # N * K

    bn_updates = []
    if cfg.use_deep:
        # Deep component: a_{l+1} = act(BN(W_l a_l + b_l)), with dropout on every input
        y_deep = tf.reshape(embeddings, [-1, cfg.field_size * cfg.embedding_size])  # N * (F*K)
        y_deep = _dropout(y_deep, keep_deep[0], train_phase, seeds[2], bits_deep[0])
        for i in range(len(cfg.deep_layers)):
            y_deep = tf.matmul(y_deep, w[f"layer_{i}"]) + w[f"bias_{i}"]  # N * D_i
            if cfg.batch_norm:
                y_deep = _batch_norm(y_deep, w, i, train_phase, cfg.batch_norm_decay, bn_updates)
            y_deep = _dropout(cfg.activation(y_deep), keep_deep[i + 1], train_phase, seeds[3 + i],
                              bits_deep[i + 1])

    # Output
    if cfg.layout == "paper":
        logits = w["output_bias"]  # 1
        if cfg.use_fm:
            logits = logits + tf.reduce_sum(y_first_order, 1) + tf.reduce_sum(y_second_order, 1)
        if cfg.use_deep:
            logits = logits + tf.squeeze(tf.matmul(y_deep, w["deep_projection"]), 1)
    else:
        parts = ([y_first_order, y_second_order] if cfg.use_fm else []) + ([y_deep] if cfg.use_deep else [])
        concat_input = tf.concat(parts, axis=1)  # N * (F + K + D_last)
        logits = tf.squeeze(tf.matmul(concat_input, w["concat_projection"]), 1) + w["concat_bias"]
    return Forward(logits, y_first_order, y_second_order, y_deep, embeddings, bn_updates)


def predictions(cfg, logits):
    """Probabilities for logloss, raw values for mse."""
    return tf.nn.sigmoid(logits) if cfg.loss_type == "logloss" else tf.identity(logits)


def inference(w, cfg, feat_index, feat_value):
    """Predictions of a forward pass built for inference only (no dropout, moving BN statistics)."""
    return predictions(cfg, forward(w, cfg, feat_index, feat_value, False, None, None, None).logits)


def loss(w, cfg, fwd, label):
    """Mean loss (from logits for logloss) plus L2 on deep weights and, optionally, embeddings."""
    if cfg.loss_type == "logloss":
        data_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=label, logits=fwd.logits))
    else:
        data_loss = tf.reduce_mean(tf.square(label - fwd.logits))
    penalties = []
    if cfg.l2_reg > 0:
        penalties += [cfg.l2_reg * tf.nn.l2_loss(v) for k, v in w.items()
                      if k.startswith("layer_") or k.endswith("projection")]
    if cfg.l2_reg_embedding > 0:
        batch_rows = tf.cast(tf.shape(fwd.embeddings)[0], tf.float32)
        penalties.append(cfg.l2_reg_embedding * tf.nn.l2_loss(fwd.embeddings) / batch_rows)
    return tf.add_n([data_loss] + penalties) if penalties else data_loss


def train_op(w, cfg, optimizer, fwd, label, global_step):
    """One optimizer step on the batch loss; batch-norm statistics update with it."""
    with tf.control_dependencies(fwd.bn_updates):
        return optimizer.minimize(loss(w, cfg, fwd, label), global_step=global_step)


@dataclass
class EpochLoop:
    """A whole training epoch in one ``session.run``.

    Feed the training arrays to ``data`` and the epoch's row permutation to ``order``: a
    ``tf.while_loop`` takes consecutive ``batch_size`` slices of it, the last partial one
    included, exactly as the feed loop does.
    """

    data: tuple  # placeholders: feat_index (n * F), feat_value (n * F), label (n)
    order: tf.Tensor
    batch_size: tf.Tensor
    run_epoch: tf.Tensor


def _epoch_loop(w, cfg, optimizer, global_step):
    data = (tf.placeholder(tf.int32, [None, cfg.field_size], name="epoch_feat_index"),
            tf.placeholder(tf.float32, [None, cfg.field_size], name="epoch_feat_value"),
            tf.placeholder(tf.float32, [None], name="epoch_label"))
    order = tf.placeholder(tf.int32, [None], name="epoch_order")
    batch_size = tf.placeholder(tf.int32, [], name="epoch_batch_size")
    n_rows, first_step = tf.size(order), global_step.read_value()

    def step(i):
        start = i * batch_size
        rows = order[start:tf.minimum(start + batch_size, n_rows)]
        feat_index, feat_value, label = (tf.gather(array, rows) for array in data)
        fwd = forward(w, cfg, feat_index, feat_value, True, cfg.dropout_fm, cfg.dropout_deep,
                      first_step + tf.cast(i, tf.int64))
        with tf.control_dependencies([train_op(w, cfg, optimizer, fwd, label, global_step)]):
            return i + 1

    n_steps = (n_rows + batch_size - 1) // batch_size
    run_epoch = tf.while_loop(lambda i: i < n_steps, step, [tf.constant(0)], parallel_iterations=1)
    return EpochLoop(data, order, batch_size, run_epoch)


@dataclass
class DeepFMGraph:
    """The classic placeholders and the ops the estimator runs."""

    graph: tf.Graph
    cfg: GraphConfig  # what it was built for
    weights: dict
    feat_index: tf.Tensor
    feat_value: tf.Tensor
    label: tf.Tensor
    dropout_keep_fm: tf.Tensor
    dropout_keep_deep: tf.Tensor
    train_phase: tf.Tensor
    global_step: tf.Variable
    terms: Forward  # the forward pass on the placeholders
    out: tf.Tensor  # predictions, phase and dropout as fed (the classic graph)
    predict_out: tf.Tensor  # the same predictions from a pass built for inference only
    train_op: tf.Operation  # one step on a fed batch
    epoch_loop: EpochLoop  # one epoch on the data held in the graph
    init_op: tf.Operation
    weight_setters: dict  # name -> (placeholder, assign op), to load numpy weights


def build_graph(cfg):
    """Build DeepFM: the classic placeholder graph, an inference pass and the epoch loop.

    The dropout and phase placeholders default to inference, so running ``out`` with
    only ``feat_index``/``feat_value`` fed never touches a variable.
    """
    graph = tf.Graph()
    with graph.as_default():
        feat_index = tf.placeholder(tf.int32, [None, cfg.field_size], name="feat_index")  # N * F
        feat_value = tf.placeholder(tf.float32, [None, cfg.field_size], name="feat_value")  # N * F
        label = tf.placeholder(tf.float32, [None], name="label")  # N
        keep_fm = tf.placeholder_with_default(tf.ones([2]), [2], name="dropout_keep_fm")
        n_deep = len(cfg.deep_layers) + 1
        keep_deep = tf.placeholder_with_default(tf.ones([n_deep]), [n_deep], name="dropout_keep_deep")
        train_phase = tf.placeholder_with_default(False, [], name="train_phase")

        weights = init_weights(cfg)
        global_step = _variable(tf.constant(0, tf.int64), "global_step", trainable=False)
        optimizer = OPTIMIZERS[cfg.optimizer_type](cfg.learning_rate)
        fwd = forward(weights, cfg, feat_index, feat_value, train_phase, keep_fm, keep_deep, global_step.read_value())
        out = tf.identity(predictions(cfg, fwd.logits), name="out")
        predict_out = tf.identity(inference(weights, cfg, feat_index, feat_value), name="predict_out")
        step_op = train_op(weights, cfg, optimizer, fwd, label, global_step)
        epoch_loop = _epoch_loop(weights, cfg, optimizer, global_step)
        init_op = tf.global_variables_initializer()
        weight_setters = {}
        for name, var in weights.items():
            value = tf.placeholder(var.dtype.base_dtype, var.shape, name=f"{name}_value")
            weight_setters[name] = (value, var.assign(value, read_value=False))
    return DeepFMGraph(graph, cfg, weights, feat_index, feat_value, label, keep_fm, keep_deep, train_phase,
                       global_step, fwd, out, predict_out, step_op, epoch_loop, init_op, weight_setters)
