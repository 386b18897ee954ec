"""TensorBoard summaries of a fit: the graph once, then per epoch scalars and weight histograms.

One ``EpochSummaries`` writes one run directory with ``tf.compat.v1.summary.FileWriter``: the
model's graph when it opens, then at step ``epoch + 1`` (the epoch as ``verbose`` prints it) the
scalars it is given (``epoch_scalars``: training loss, train / valid metric, learning rate,
epoch seconds) and a histogram of every weight (``weights/feature_embeddings``, ``weights/layer_0``,
...). A resumed fit writing to the same directory adds an event file whose steps go on from there.

Histograms are computed in numpy from the weights' values (``histogram_proto``), not by summary
ops: nothing is added to the model's graph (which ``persistence`` and ``serving`` save), so
writing summaries can change neither the model nor its saves, and works on a finalized graph.
"""
import numpy as np
import tensorflow.compat.v1 as tf

from .checks import is_int, is_real

HISTOGRAM_BINS = 30  # equal-width buckets per histogram, as TensorFlow-2's tf.summary.histogram
WEIGHTS_PREFIX = "weights/"  # histogram tags: weights/<name in graph.init_weights>


def histogram_proto(values, bins=HISTOGRAM_BINS):
    """A ``tf.compat.v1.HistogramProto`` of ``values`` (any shape, flattened to n values).

    ``num`` = n, ``min``, ``max``, ``sum``, ``sum_squares`` (in float64), and ``bins`` equal-width
    buckets over [min, max]: ``bucket[i]`` counts the values up to ``bucket_limit[i]`` and above the
    limit before (the last bucket includes max). Equal values make one bucket, empty ``values`` none.
    """
    values = np.asarray(values, np.float64).ravel()
    if values.size == 0:
        return tf.HistogramProto()
    low, high = float(values.min()), float(values.max())
    if low == high:
        counts, limits = [values.size], [high]
    else:
        counts, edges = np.histogram(values, bins, (low, high))
        counts, limits = counts.tolist(), edges[1:].tolist()
    return tf.HistogramProto(min=low, max=high, num=values.size, sum=float(values.sum()),
                             sum_squares=float(values @ values), bucket_limit=limits, bucket=counts)


def epoch_scalars(model, epoch, loss=None):
    """The scalars of ``model``'s (0-based) ``epoch``, from the attributes its fit loop has set.

    ``train/<metric>`` and ``valid/<metric>`` when ``train_result_`` / ``valid_result_`` hold that
    epoch's score, ``learning_rate``, ``epoch_seconds`` when ``epoch_seconds_`` holds it, and
    ``train/loss`` when ``loss`` is given: a number, or the epoch's batch losses (their mean).
    """
    metric = model.metric_name_
    scalars = {"learning_rate": float(model.learning_rate)}
    for tag, results in ((f"train/{metric}", model.train_result_), (f"valid/{metric}", model.valid_result_),
                         ("epoch_seconds", model.epoch_seconds_)):
        if len(results) > epoch:
            scalars[tag] = float(results[epoch])
    if loss is not None:
        scalars["train/loss"] = float(np.mean(loss))
    return scalars


class EpochSummaries:
    """Writes one TensorBoard run directory for a fit: the graph once, then per epoch scalars and
    weight histograms. A context manager; ``close`` flushes and closes the event file.

    ``graph``: the model's ``tf.Graph``; ``weights``: name -> ``tf.Variable`` of that graph (as
    ``DeepFMGraph.weights``); ``session``: the session holding their values. The directory is
    created if missing; each ``EpochSummaries`` adds its own event file there.
    """

    def __init__(self, directory, graph, weights, session, histogram_bins=HISTOGRAM_BINS):
        if not (is_int(histogram_bins) and histogram_bins >= 1):
            raise ValueError(f"histogram_bins must be a positive integer, got {histogram_bins!r}")
        self.directory = str(directory)
        self.weights, self.session, self.histogram_bins = dict(weights), session, histogram_bins
        with graph.as_default():  # FileWriter refuses to open under eager execution, TensorFlow 2's default
            self._writer = tf.summary.FileWriter(self.directory)
        self._writer.add_graph(graph)  # the graph_def only: no meta graph, which would repeat it
        self._writer.flush()

    @classmethod
    def for_model(cls, directory, model, **kwargs):
        """An ``EpochSummaries`` of a fitting (or fitted) ``DeepFM``'s graph, weights and session."""
        return cls(directory, model.graph_, model._graph.weights, model.session_, **kwargs)

    def write(self, epoch, scalars):
        """Write ``scalars`` (tag -> number; None values are left out) and a histogram of every weight's
        current value, at step ``epoch + 1``, then flush (a running TensorBoard sees the epoch at once)."""
        if not (is_int(epoch) and epoch >= 0):
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        values = []
        for tag, value in scalars.items():
            if value is None:
                continue
            if not is_real(value):
                raise TypeError(f"scalar {tag!r} must be a real number, got {value!r}")
            values.append(tf.Summary.Value(tag=tag, simple_value=float(value)))
        for name, value in self.session.run(self.weights).items():
            values.append(tf.Summary.Value(tag=WEIGHTS_PREFIX + name,
                                           histo=histogram_proto(value, self.histogram_bins)))
        self._writer.add_summary(tf.Summary(value=values), global_step=epoch + 1)
        self._writer.flush()

    def write_epoch(self, model, epoch, loss=None):
        """``write(epoch, epoch_scalars(model, epoch, loss))``: the fit loop's one call per epoch."""
        self.write(epoch, epoch_scalars(model, epoch, loss))

    def close(self):
        """Flush and close the event file; closing again does nothing."""
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class NoSummaries:
    """``EpochSummaries``' interface writing nothing: what ``open_summaries`` gives without a directory."""

    def write(self, epoch, scalars):
        """Nothing."""

    def write_epoch(self, model, epoch, loss=None):
        """Nothing."""

    def close(self):
        """Nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass


def open_summaries(directory, model):
    """``EpochSummaries.for_model(directory, model)``, or ``NoSummaries()`` when ``directory`` is None:
    without a directory nothing is created, read or written."""
    return NoSummaries() if directory is None else EpochSummaries.for_model(directory, model)
