"""``numeric``: a number per row, transformed, scaled, or bucketized into a categorical field.

Options
    ``transform``  ``"none"``; ``"log1p"``: sign(x) log(1 + |x|), for heavy-tailed counts;
                   ``"bucketize"``: quantile bins fitted on the training rows, each bin one
                   feature index (value 1.0), so the column becomes a categorical field.
    ``scaling``    ``"standard"`` ((t - mean) / std), ``"minmax"`` ((t - min) / (max - min)) or
                   ``"none"``, of the transformed value t; not used by ``bucketize``.
    ``bins``       number of quantile bins for ``bucketize`` (duplicate edges merge).
    ``missing``    marker values that mean "missing" (Porto Seguro's -1); default none. NaN
                   and empty cells are always missing.
Missing values are left out of the statistics and encoded as 0.0 after scaling (absent for
the FM); under ``bucketize`` they have an index of their own, after the bins.
"""
import numpy as np

from .base import Column, float_values, is_int, is_real, register

TRANSFORMS = ("none", "log1p", "bucketize")
QUANTILE_SAMPLE = 1_000_000  # bucketize: quantiles are exact up to this many training values, sampled beyond
SCALINGS = ("standard", "minmax", "none")


def signed_log1p(x):
    return np.sign(x) * np.log1p(np.abs(x))


class QuantileSample:
    """A uniform random sample of at most ``capacity`` values of a stream, for quantiles: every
    value while they fit (then quantiles are exact), after that each value seen is in the sample
    with the same probability. Seeded by the column name: the same data give the same sample."""

    def __init__(self, name, capacity=QUANTILE_SAMPLE):
        self.capacity, self.seen, self.values = capacity, 0, np.zeros(0)
        self.rng = np.random.default_rng(list(name.encode("utf-8")) or [0])

    def add(self, values):
        kept = np.concatenate([self.values, values])
        if kept.size > self.capacity:  # old sample stands for self.seen values, the new ones for themselves
            from_old = self.rng.hypergeometric(self.seen, values.size, self.capacity)
            kept = np.concatenate([self.rng.choice(self.values, from_old, replace=False),
                                   self.rng.choice(values, self.capacity - from_old, replace=False)])
        self.seen += values.size
        self.values = kept
        return self


@register
class Numeric(Column):
    kind = "numeric"
    OPTIONS = {"transform": "none", "scaling": "standard", "bins": 10, "missing": ()}
    ATTRIBUTES = {"transform": "transformation"}

    def _check_options(self):
        if self.transformation not in TRANSFORMS:
            raise self._fail(f"transform must be one of {TRANSFORMS}, got {self.transformation!r}")
        if self.scaling not in SCALINGS:
            raise self._fail(f"scaling must be one of {SCALINGS}, got {self.scaling!r}")
        if not (is_int(self.bins) and self.bins >= 2):
            raise self._fail(f"bins must be an integer >= 2, got {self.bins!r}")
        if isinstance(self.missing, (str, bytes)) or not hasattr(self.missing, "__iter__"):
            raise self._fail(f"missing must be a list of numbers, got {self.missing!r}")
        if not all(is_real(m) and np.isfinite(m) for m in self.missing):
            raise self._fail(f"missing must be a list of finite numbers, got {list(self.missing)!r}")
        self.missing = tuple(float(m) if isinstance(m, float) else int(m) for m in self.missing)

    def _values(self, values):
        """(transformed float64 N, missing mask N)."""
        x, missing = float_values(values, self.name, self.missing)
        if self.transformation == "log1p":
            x = signed_log1p(x)
        return x, missing

    def _accumulate(self, state, values):
        """Running state: the observed values' moments ``(n, mean, M2, min, max)``, merged chunk by
        chunk (Chan et al.), or for ``bucketize`` a uniform sample of them (``QuantileSample``)."""
        x, missing = self._values(values)
        observed = x[~missing]
        if self.transformation == "bucketize":
            return (state or QuantileSample(self.name)).add(observed)
        if observed.size == 0:
            return state
        mean = observed.mean()
        chunk = (observed.size, mean, float(((observed - mean) ** 2).sum()), observed.min(), observed.max())
        if state is None:
            return chunk
        n_a, mean_a, m2_a, min_a, max_a = state
        n = n_a + chunk[0]
        delta = chunk[1] - mean_a
        return (n, mean_a + delta * chunk[0] / n, m2_a + chunk[2] + delta ** 2 * n_a * chunk[0] / n,
                min(min_a, chunk[3]), max(max_a, chunk[4]))

    def _finish(self, state):
        if self.transformation == "bucketize":
            observed = state.values if state is not None else np.zeros(0)
            quantiles = np.quantile(observed, np.linspace(0, 1, self.bins + 1)[1:-1]) if observed.size else []
            self.set_fitted_state({"edges": list(np.unique(quantiles))})
            return
        center, scale = 0.0, 1.0
        if self.scaling != "none" and state is not None:
            n, mean, m2, low, high = state
            center, scale = (mean, np.sqrt(m2 / n)) if self.scaling == "standard" else (low, high - low)
        self.set_fitted_state({"center": float(center), "scale": float(scale) if scale != 0 else 1.0})

    def transform(self, values):
        x, missing = self._values(values)
        if self.transformation == "bucketize":
            index = np.where(missing, len(self.edges_) + 1, np.searchsorted(self.edges_, np.where(missing, 0, x),
                                                                            side="right"))
            return index, np.ones(len(x), np.float32)
        value = np.where(missing, 0.0, (x - self.center_) / self.scale_)
        return np.zeros(len(x), np.int64), value.astype(np.float32)

    def fitted_state(self):
        if self.transformation == "bucketize":
            return {"edges": list(self.edges_)}
        return {"center": self.center_, "scale": self.scale_}

    def set_fitted_state(self, state):
        if self.transformation == "bucketize":
            self.edges_ = [float(e) for e in state["edges"]]
            self.size_ = len(self.edges_) + 2
        else:
            self.center_, self.scale_ = float(state["center"]), float(state["scale"])
            self.size_ = 1

    # -- SavedModel raw input: the number as float64 (NaN for missing)
    def raw_values(self, values):
        return float_values(values, self.name)[0]

    def raw_dtype(self):
        return "float64"

    def raw_lookup(self, x):
        import tensorflow.compat.v1 as tf

        finite = tf.debugging.assert_equal(tf.reduce_any(tf.math.is_inf(x)), False,
                                           message=f"numeric column {self.name!r} holds an infinite value")
        missing = tf.math.is_nan(x)
        for marker in self.missing:
            missing = missing | tf.equal(x, float(marker))
        with tf.control_dependencies([finite]):
            x = tf.where(missing, tf.zeros_like(x), x)
        if self.transformation == "log1p":
            x = tf.sign(x) * tf.math.log1p(tf.abs(x))
        if self.transformation == "bucketize":
            edges = tf.constant([self.edges_], tf.float64)  # 1 * E
            bins = tf.cast(tf.searchsorted(edges, tf.expand_dims(x, 0), side="right")[0], tf.int64)
            index = tf.where(missing, tf.fill(tf.shape(bins), tf.constant(len(self.edges_) + 1, tf.int64)), bins)
            return index, tf.ones(tf.shape(x), tf.float32)
        value = tf.where(missing, tf.zeros_like(x), (x - self.center_) / self.scale_)
        return tf.zeros(tf.shape(x), tf.int64), tf.cast(value, tf.float32)  # float64 math, then rounding
