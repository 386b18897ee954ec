"""The DeepFM computation graph (Guo et al., IJCAI 2017) in TensorFlow-1 graph style.

Notation: N = batch rows, F = single-valued fields (``field_size``), S = multi-valued
(sequence) fields of L_s slots each, K = ``embedding_size``, M = ``feature_size``,
D_i = width of deep layer i. A sequence field's embedding is the weighted sum of its slots'
embeddings, e_s = sum_l u_l v_{i_l} (weights u pool and mask the padding), after which it is
one more field: the FM and the deep part see F + S fields.

    y_FM  = <w, x> + sum_{i<j} <v_i, v_j> x_i x_j          (first + second order)
    y_DNN = MLP(concat_f(v_f x_f))                          (shares the embeddings v)
    paper layout:  logit = y_first + y_second + w_out . a_H + b
    concat layout: logit = [y_first, y_second, a_H] . w_concat + b   (classic reference)

Dropout masks are pure functions of ``(random_seed, step)`` (``keep_mask``), so a training
step draws the same mask whichever training loop runs it, in any process. The graph
training loop runs a whole epoch as one XLA kernel (``EpochLoop``); everything else runs
as plain TF ops.
Nothing here knows about files, folds or plotting.
"""
from dataclasses import dataclass
from typing import Tuple

import tensorflow.compat.v1 as tf

from .params import LAYOUTS  # noqa: F401  (the estimator validates layouts against graph.LAYOUTS)

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
TRAINING_LOOPS = ("graph", "feed")  # an epoch per session.run (EpochLoop), or a fed batch per run (train_op)
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
    sequence_lengths: Tuple[int, ...] = ()  # L_s of each sequence field

    @property
    def n_fields(self):
        """F + S: the fields the FM and the deep part see."""
        return self.field_size + len(self.sequence_lengths)

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
    seed, K, F = cfg.random_seed, cfg.embedding_size, cfg.n_fields
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


def fm_second_order_inference(embeddings):
    """``fm_second_order``'s value, with sum_f e_f^2 as a squared Euclidean norm: one pass over
    the N * F * K embeddings where a square and a sum take two (prediction +11%, measured)."""
    return 0.5 * (tf.square(tf.reduce_sum(embeddings, 1)) - tf.square(tf.math.reduce_euclidean_norm(embeddings, 1)))


def _mix32(x):
    """Chris Wellons' ``lowbias32`` integer hash: a bijection on uint32 with full avalanche."""
    def shift_xor(x, bits):
        return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(bits, tf.uint32)))

    x = shift_xor(x, 16) * tf.constant(0x7FEB352D, tf.uint32)
    x = shift_xor(x, 15) * tf.constant(0x846CA68B, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, tf.uint32)))


def dropout_keys(random_seed, streams):
    """The uint32 keys of dropout masks: hashes of the seed and each (int64) stream number."""
    seed = _mix32(tf.constant(random_seed % 2 ** 32, tf.uint32))
    return _mix32(tf.bitwise.bitwise_xor(seed, _mix32(tf.cast(streams % 2 ** 32, tf.uint32))))


def keep_mask(shape, keep, key):
    """A boolean mask of ``shape``, True with probability ``keep`` (to 2**-32), a pure function of ``key``.

    Element i's 32 random bits are ``_mix32(i * golden ^ key)``: a few integer ops that XLA
    fuses into the loop using the mask; ~4x faster than TF's Philox kernel plus unpacking
    (measured). Two keys' streams share a value no more often than independent random draws do.
    """
    index = tf.cast(tf.reshape(tf.range(tf.reduce_prod(shape)), shape), tf.uint32)
    bits = _mix32(tf.bitwise.bitwise_xor(index * tf.constant(0x9E3779B9, tf.uint32), key))
    threshold = tf.clip_by_value(tf.cast(tf.round(tf.cast(keep, tf.float64) * 2.0 ** 32), tf.int64), 1, 2 ** 32) - 1
    return bits <= tf.cast(threshold, tf.uint32)  # keep 1: all kept; a tiny keep never wraps to all


def _dropout(x, keep, key):
    """Inverted dropout of ``x``: kept with probability ``keep``, the mask ``keep_mask``'s for ``key``."""
    return x * tf.where_v2(keep_mask(tf.shape(x), keep, key), 1.0 / keep, 0.0)


def _row_mask(x, valid_rows):
    """N * 1: 1.0 for the first ``valid_rows`` rows of ``x`` (the batch), 0.0 for the padding after them."""
    return tf.expand_dims(tf.cast(tf.range(tf.shape(x)[0]) < valid_rows, x.dtype), 1)


@tf.custom_gradient
def _batch_normalize(x, scale, offset, valid_rows):
    """Normalize ``x`` (N * D) with the moments of its first ``valid_rows`` rows, then scale and
    offset; also returns the moments. Rows after ``valid_rows`` (padding) get a zero gradient.

    The gradient is written out (the standard batch-norm backward, three reductions and a
    few N * D ops) rather than differentiated through the moments, which broadcasts every
    intermediate back to N * D.
    """
    rows, n = _row_mask(x, valid_rows), tf.cast(valid_rows, x.dtype)
    mean, variance = tf.nn.weighted_moments(x, axes=[0], frequency_weights=rows)
    inv_std = tf.math.rsqrt(variance + BATCH_NORM_EPSILON)
    x_hat = (x - mean) * inv_std
    y = x_hat * scale + offset

    def grad(dy, _d_mean, _d_variance):  # the moments feed only the moving averages
        dy = dy * rows
        d_offset = tf.reduce_sum(dy, 0)
        d_scale = tf.reduce_sum(dy * x_hat, 0)
        dx = (scale * inv_std / n) * (n * dy - d_offset - x_hat * d_scale) * rows
        return dx, d_scale, d_offset, None

    return (y, mean, variance), grad


def _gather_rows(table, index):
    """``tf.gather(table, index)`` as ``GatherNd``: 25-40% faster on CPU for short rows (measured)."""
    return tf.gather_nd(table, tf.expand_dims(index, -1))


@dataclass
class Forward:
    """Tensors of one forward pass."""

    logits: tf.Tensor  # N
    y_first_order: tf.Tensor  # N * F (None without use_fm)
    y_second_order: tf.Tensor  # N * K (None without use_fm)
    y_deep: tf.Tensor  # N * D_last (None without use_deep)
    embedding_penalty: tf.Tensor  # sum of (v_f x_f)^2 / 2 over the batch (None without l2_reg_embedding)
    bn_updates: list  # moving-average update ops, to run with the training op only
    bn_moments: list  # per deep layer, (mean, variance) of its batch before batch norm (training with BN only)
    valid_rows: tf.Tensor  # the batch is the first valid_rows rows; padding follows (training only)
    embeddings: tf.Tensor  # N * (F+S) * K: v_f x_f, and the pooled embedding of each sequence field


def _lookup(table, feat_index, dense_gradient, scalar=False):
    """Rows of ``table`` (M * K) for ``feat_index`` (N * F): N * F * K, or N * F for a ``scalar`` table (M * 1).

    ``dense_gradient``: a ``GatherNd`` on the table's value, whose gradient is a dense table
    (one optimizer update per table); else ``embedding_lookup``, whose gradient is the rows'
    ``IndexedSlices`` for the optimizers' sparse updates.
    """
    if not dense_gradient:
        rows = tf.nn.embedding_lookup(table, feat_index)
        return tf.squeeze(rows, 2) if scalar else rows
    value = table.read_value()
    return _gather_rows(tf.reshape(value, [-1]) if scalar else value, feat_index)


def _pool(table, index, weight, dense_gradient, scalar=False):
    """sum_l weight_l table[index_l] over a sequence field's slots: N * K (N for a ``scalar`` table)."""
    rows = _lookup(table, index, dense_gradient, scalar)  # N * L * K, or N * L
    return tf.reduce_sum(rows * (weight if scalar else tf.expand_dims(weight, 2)), 1)


def forward(w, cfg, feat_index, feat_value, train, keep_fm=None, keep_deep=None, step=None, valid_rows=None,
            sequences=()):
    """Build DeepFM's forward pass on ``feat_index``/``feat_value`` (N * F) and ``sequences``
    (one ``(index, weight)`` pair of N * L_s tensors per sequence field).

    ``train`` (a Python bool) switches on dropout and batch statistics. For training,
    ``keep_fm`` (2) and ``keep_deep`` (len(deep_layers) + 1) are floats or a float vector
    tensor, ``step`` (int64 scalar) seeds the dropout masks, and ``valid_rows`` (int32
    scalar; None: N) says that only the first rows are the batch: the rows after them are
    padding, left out of the batch-norm moments and the loss, which gives a short last batch
    the full batches' shape (one XLA compilation of the epoch).
    """
    F, K = cfg.n_fields, cfg.embedding_size
    n_dropouts = len(cfg.deep_layers) + 3  # two FM terms, the deep input and each deep layer: one seed each per step
    keeps = (keep_fm[0], keep_fm[1]) + tuple(keep_deep[j] for j in range(len(cfg.deep_layers) + 1)) if train else ()
    keys = dropout_keys(cfg.random_seed, step * n_dropouts + tf.range(n_dropouts, dtype=tf.int64)) if train else None
    if valid_rows is None:
        valid_rows = tf.shape(feat_index)[0]

    def dropout(x, j):
        """Dropout ``j`` of the step on ``x`` (none at inference or with a constant keep of 1)."""
        if not train or (isinstance(keeps[j], float) and keeps[j] >= 1.0):
            return x
        return _dropout(x, tf.convert_to_tensor(keeps[j], tf.float32), keys[j])

    dense_gradient = not train or cfg.dense_embedding_gradient
    embeddings = _lookup(w["feature_embeddings"], feat_index, dense_gradient) * tf.expand_dims(feat_value, 2)  # N*F*K
    if sequences:
        # Sequence fields, pooled: e_s = sum_l u_l v_{i_l}, then fields like the others   N * (F+S) * K
        pooled = [_pool(w["feature_embeddings"], index, weight, dense_gradient) for index, weight in sequences]
        embeddings = tf.concat([embeddings, tf.stack(pooled, 1)], 1)
    y_first_order = y_second_order = y_deep = embedding_penalty = None
    if cfg.use_fm:
        # First order: w_f x_f, and sum_l u_l w_{i_l} for a sequence field            N * (F+S)
        y_first_order = _lookup(w["feature_bias"], feat_index, dense_gradient, scalar=True) * feat_value
        if sequences:
            pooled = [_pool(w["feature_bias"], index, weight, dense_gradient, scalar=True)
                      for index, weight in sequences]
            y_first_order = tf.concat([y_first_order, tf.stack(pooled, 1)], 1)
        y_first_order = dropout(y_first_order, 0)
        # Second order, sum-square trick: 1/2 [(sum_f v_f x_f)^2 - sum_f (v_f x_f)^2]  N * K
        y_second_order = dropout(fm_second_order(embeddings), 1) if train else fm_second_order_inference(embeddings)
    if train and cfg.l2_reg_embedding > 0:
        embedding_penalty = tf.nn.l2_loss(embeddings[:valid_rows])  # the batch's rows, without padding

    bn_updates, bn_moments = [], []
    if cfg.use_deep:
        # Deep component: a_0 = concat_f(v_f x_f), a_{l+1} = act(BN(W_l a_l + b_l)), dropout on every input
        y_deep = dropout(tf.reshape(embeddings, [-1, F * K]), 2)  # N * (F*K)
        for i in range(len(cfg.deep_layers)):
            weight, bias = w[f"layer_{i}"], w[f"bias_{i}"]
            if cfg.batch_norm and not train:
                # BN with the moving statistics is affine: folded into the layer, (W s) a + (b - mean) s + offset
                # with s = scale / sqrt(variance + eps); one matmul pass where BN takes two more (measured).
                factor = w[f"bn_scale_{i}"] * tf.math.rsqrt(w[f"bn_variance_{i}"] + BATCH_NORM_EPSILON)
                weight, bias = weight * factor, (bias - w[f"bn_mean_{i}"]) * factor + w[f"bn_offset_{i}"]
            y_deep = tf.matmul(y_deep, weight) + bias  # N * D_i
            if cfg.batch_norm and train:
                y_deep, mean, variance = _batch_normalize(y_deep, w[f"bn_scale_{i}"], w[f"bn_offset_{i}"], valid_rows)
                bn_moments.append((mean, variance))
                decay = cfg.batch_norm_decay
                for var, batch_value in zip((w[f"bn_mean_{i}"], w[f"bn_variance_{i}"]), (mean, variance)):
                    bn_updates.append(var.assign(var * decay + batch_value * (1.0 - decay)))
            y_deep = dropout(cfg.activation(y_deep), 3 + i)

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
    return Forward(logits, y_first_order, y_second_order, y_deep, embedding_penalty, bn_updates, bn_moments,
                   valid_rows, embeddings)


def predictions(cfg, logits):
    """Probabilities for logloss, raw values for mse."""
    return tf.nn.sigmoid(logits) if cfg.loss_type == "logloss" else tf.identity(logits)


def inference(w, cfg, feat_index, feat_value, sequences=()):
    """Predictions of a forward pass built for inference only (no dropout, moving BN statistics)."""
    return predictions(cfg, forward(w, cfg, feat_index, feat_value, False, sequences=sequences).logits)


def loss(w, cfg, fwd, label):
    """Mean loss over the batch's rows (from logits for logloss) plus L2 on deep weights and,
    optionally, embeddings."""
    logits, label = fwd.logits[:fwd.valid_rows], label[:fwd.valid_rows]  # the batch, without padding
    if cfg.loss_type == "logloss":
        data_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=label, logits=logits))
    else:
        data_loss = tf.reduce_mean(tf.square(label - logits))
    penalties = []
    if cfg.l2_reg > 0:
        penalties += [cfg.l2_reg * tf.nn.l2_loss(v) for k, v in w.items()
                      if k.startswith("layer_") or k.endswith("projection")]
    if cfg.l2_reg_embedding > 0:
        penalties.append(cfg.l2_reg_embedding * fwd.embedding_penalty / tf.cast(fwd.valid_rows, tf.float32))
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
    included, exactly as the feed loop does. With dense embedding gradients the whole loop,
    optimizer updates included, is one XLA-compiled kernel (``jit_compile``), and the last
    batch is padded to the others' shape (``forward``'s ``valid_rows``), as XLA needs static
    shapes: x2.1-2.6 the speed of TF's executor running the loop's ops (measured).
    """

    data: tuple  # placeholders: feat_index (n * F), feat_value (n * F), label (n), then index and weight
    #              (n * L_s) of each sequence field
    order: tf.Tensor
    batch_size: tf.Tensor
    run_epoch: tf.Tensor
    n_rows: tf.Tensor  # int32 scalar, default -1: all of ``order``; else its first n_rows entries train (the
    #                    rest is padding that gives the data and the order a fixed shape: one compilation)


def sequence_placeholders(cfg, prefix=""):
    """``(index, weight)`` placeholders (n * L_s) of each sequence field."""
    return tuple((tf.placeholder(tf.int32, [None, length], name=f"{prefix}seq_index_{s}"),
                  tf.placeholder(tf.float32, [None, length], name=f"{prefix}seq_weight_{s}"))
                 for s, length in enumerate(cfg.sequence_lengths))


def _epoch_loop(w, cfg, optimizer, global_step):
    data = (tf.placeholder(tf.int32, [None, cfg.field_size], name="epoch_feat_index"),
            tf.placeholder(tf.float32, [None, cfg.field_size], name="epoch_feat_value"),
            tf.placeholder(tf.float32, [None], name="epoch_label"),
            *(t for pair in sequence_placeholders(cfg, "epoch_") for t in pair))
    order = tf.placeholder(tf.int32, [None], name="epoch_order")
    batch_size = tf.placeholder(tf.int32, [], name="epoch_batch_size")
    n_rows = tf.placeholder_with_default(-1, [], name="epoch_rows")

    def run_epoch(order, batch_size, n_given, *arrays):
        n_rows = tf.where(n_given < 0, tf.size(order), n_given)
        first_step = global_step.read_value()
        batch_rows = tf.minimum(batch_size, n_rows)  # every full batch's rows
        if cfg.dense_embedding_gradient:  # a short last batch is padded with data row 0, left out of the loss
            order = tf.pad(order, [[0, batch_rows]])

        def step(i):
            start = i * batch_size
            valid_rows = tf.minimum(batch_rows, n_rows - start)
            # A sparse update would move the padding rows' embeddings: there the last batch stays short.
            rows = tf.slice(order, [start], [batch_rows if cfg.dense_embedding_gradient else valid_rows])
            feat_index, feat_value, label, *flat = (tf.gather(array, rows) for array in arrays)
            fwd = forward(w, cfg, feat_index, feat_value, True, cfg.dropout_fm, cfg.dropout_deep,
                          first_step + tf.cast(i, tf.int64), valid_rows, tuple(zip(flat[::2], flat[1::2])))
            with tf.control_dependencies([train_op(w, cfg, optimizer, fwd, label, global_step)]):
                return i + 1

        n_steps = (n_rows + batch_size - 1) // batch_size
        return tf.while_loop(lambda i: i < n_steps, step, [tf.constant(0)], parallel_iterations=1)

    if cfg.dense_embedding_gradient:  # XLA has no kernels for the sparse optimizer updates
        run_epoch = tf.function(run_epoch, autograph=False, jit_compile=True)
    return EpochLoop(data, order, batch_size, run_epoch(order, batch_size, n_rows, *data), n_rows)


@dataclass
class DeepFMGraph:
    """The classic placeholders and the ops the estimator runs."""

    graph: tf.Graph
    cfg: GraphConfig  # what it was built for
    weights: dict
    feat_index: tf.Tensor
    feat_value: tf.Tensor
    sequences: tuple  # (index, weight) placeholders of each sequence field
    label: tf.Tensor
    dropout_keep_fm: tf.Tensor
    dropout_keep_deep: tf.Tensor
    train_phase: tf.Tensor
    global_step: tf.Variable
    terms: Forward  # the inference pass on the placeholders
    out: tf.Tensor  # predictions, phase and dropout as fed (the classic graph)
    predict_out: tf.Tensor  # the same predictions from a pass built for inference only
    train_op: tf.Operation  # one step on a fed batch (training_loop "feed"; else None)
    epoch_loop: EpochLoop  # one epoch on the data held in the graph (training_loop "graph"; else None)
    init_op: tf.Operation
    weights_finite: tf.Tensor  # bool scalar: every weight (moving statistics included) is finite
    weight_setters: dict  # name -> (placeholder, assign op), to load numpy weights
    bn_moments: list  # per deep layer, (mean, variance) before BN of the fed batch, BN by batch, no dropout

    def feed(self, arrays, rows=slice(None)):
        """The placeholders' feed for ``rows`` of ``arrays`` (``Xi``, ``Xv`` and ``Xs`` as in
        ``features.FeatureArrays``)."""
        feed = {self.feat_index: arrays.Xi[rows], self.feat_value: arrays.Xv[rows]}
        for (index, weight), (xs_index, xs_weight) in zip(self.sequences, arrays.Xs):
            feed[index], feed[weight] = xs_index[rows], xs_weight[rows]
        return feed


def build_graph(cfg, training_loop="graph"):
    """Build DeepFM: the classic placeholder graph, an inference pass and the training ops of
    ``training_loop`` (one of ``TRAINING_LOOPS``; building only those halves the build time).

    The dropout and phase placeholders default to inference, so running ``out`` with
    only ``feat_index``/``feat_value`` fed never touches a variable.
    """
    if training_loop not in TRAINING_LOOPS:
        raise ValueError(f"training_loop must be one of {TRAINING_LOOPS}, got {training_loop!r}")
    graph = tf.Graph()
    with graph.as_default():
        feat_index = tf.placeholder(tf.int32, [None, cfg.field_size], name="feat_index")  # N * F
        feat_value = tf.placeholder(tf.float32, [None, cfg.field_size], name="feat_value")  # N * F
        sequences = sequence_placeholders(cfg)  # N * L_s each
        label = tf.placeholder(tf.float32, [None], name="label")  # N
        keep_fm = tf.placeholder_with_default(tf.ones([2]), [2], name="dropout_keep_fm")
        n_deep = len(cfg.deep_layers) + 1
        keep_deep = tf.placeholder_with_default(tf.ones([n_deep]), [n_deep], name="dropout_keep_deep")
        train_phase = tf.placeholder_with_default(False, [], name="train_phase")

        weights = init_weights(cfg)
        global_step = _variable(tf.constant(0, tf.int64), "global_step", trainable=False)
        optimizer = OPTIMIZERS[cfg.optimizer_type](cfg.learning_rate)

        def classic_forward(train):
            return forward(weights, cfg, feat_index, feat_value, train, keep_fm, keep_deep, global_step.read_value(),
                           sequences=sequences)

        infer_fwd = classic_forward(False)
        predict_out = tf.identity(predictions(cfg, infer_fwd.logits), name="predict_out")
        out = tf.identity(tf.cond(train_phase, lambda: predictions(cfg, classic_forward(True).logits),
                                  lambda: inference(weights, cfg, feat_index, feat_value, sequences)), name="out")
        step_op, epoch_loop = None, None
        if training_loop == "feed":
            step_op = train_op(weights, cfg, optimizer, classic_forward(True), label, global_step)
        else:
            epoch_loop = _epoch_loop(weights, cfg, optimizer, global_step)
        bn_moments = []
        if cfg.batch_norm and cfg.use_deep:  # for the population statistics: the inference network, BN by batch
            no_dropout = (1.0,) * (len(cfg.deep_layers) + 1)
            bn_moments = forward(weights, cfg, feat_index, feat_value, True, (1.0, 1.0), no_dropout,
                                 tf.constant(0, tf.int64), sequences=sequences).bn_moments
        init_op = tf.global_variables_initializer()
        weights_finite = tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in weights.values()]),
                                       name="weights_finite")
        weight_setters = {}
        for name, var in weights.items():
            value = tf.placeholder(var.dtype.base_dtype, var.shape, name=f"{name}_value")
            weight_setters[name] = (value, var.assign(value, read_value=False))
    return DeepFMGraph(graph, cfg, weights, feat_index, feat_value, sequences, label, keep_fm, keep_deep, train_phase,
                       global_step, infer_fwd, out, predict_out, step_op, epoch_loop, init_op, weights_finite,
                       weight_setters, bn_moments)
