"""TensorBoard summaries: event files read back hold the scalars, weight histograms and graph written."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from conftest import make_planted

from deepfm_graph import DeepFM
from deepfm_graph.summaries import (
    WEIGHTS_PREFIX,
    EpochSummaries,
    NoSummaries,
    epoch_scalars,
    histogram_proto,
    open_summaries,
)


def read_events(directory):
    """Every event of the event files in ``directory``, in file then write order."""
    events = []
    for path in sorted(directory.glob("events.out.tfevents.*")):
        events += [tf.Event.FromString(record.numpy()) for record in tf.data.TFRecordDataset(str(path))]
    return events


def summary_values(events):
    """(step, Summary.Value) of every summary value in ``events``."""
    return [(event.step, value) for event in events if event.HasField("summary") for value in event.summary.value]


@pytest.fixture(scope="module")
def fitted():
    """A tiny fitted DeepFM with validation scores, and its training rows."""
    Xi, Xv, y, feature_size = make_planted(n_rows=400, n_fields=4, values_per_field=5)
    model = DeepFM(feature_size=feature_size, embedding_size=4, deep_layers=(8,), dropout_deep=(0.5, 0.5), epoch=2,
                   batch_size=64, eval_train=True, verbose=False, random_seed=1)
    return model.fit(Xi[:300], Xv[:300], y[:300], Xi[300:], Xv[300:], y[300:]), Xi, Xv


def test_histogram_proto_matches_numpy():
    values = np.random.default_rng(0).normal(0, 1, (50, 4)).astype(np.float32)
    histo = histogram_proto(values, bins=7)
    flat = values.astype(np.float64).ravel()
    counts, edges = np.histogram(flat, 7)
    assert histo.num == 200 and histo.min == flat.min() and histo.max == flat.max()
    assert histo.sum == pytest.approx(flat.sum()) and histo.sum_squares == pytest.approx((flat ** 2).sum())
    assert list(histo.bucket) == counts.tolist() and list(histo.bucket_limit) == pytest.approx(edges[1:])


def test_histogram_proto_of_equal_values_is_one_bucket():
    histo = histogram_proto(np.zeros((6, 1), np.float32))
    assert (histo.num, histo.min, histo.max, list(histo.bucket), list(histo.bucket_limit)) == (6, 0, 0, [6], [0])


@pytest.mark.slow  # fits a model
def test_event_files_hold_scalars_histograms_and_graph(fitted, tmp_path):
    model, Xi, Xv = fitted
    before = model.predict(Xi, Xv)
    scalars = [{"train/auc": 0.61, "valid/auc": 0.58, "learning_rate": 0.001, "epoch_seconds": 1.25},
               {"train/auc": 0.72, "valid/auc": 0.66, "learning_rate": 0.001, "epoch_seconds": 0.75, "skipped": None}]
    with EpochSummaries(tmp_path, model.graph_, model._graph.weights, model.session_) as summaries:
        for epoch, values in enumerate(scalars):
            summaries.write(epoch, values)

    events = read_events(tmp_path)
    graph_def = tf.GraphDef.FromString(next(e.graph_def for e in events if e.graph_def))
    assert {node.name for node in graph_def.node} >= {"feat_index", "predict_out", "feature_embeddings"}
    values = summary_values(events)
    written = {(step, v.tag): v.simple_value for step, v in values if v.WhichOneof("value") == "simple_value"}
    expected = {(epoch + 1, tag): np.float32(value) for epoch, s in enumerate(scalars)  # simple_value is a float32
                for tag, value in s.items() if value is not None}
    assert written == expected
    weights = model.get_weights()
    histograms = {(step, v.tag): v.histo for step, v in values if v.WhichOneof("value") == "histo"}
    assert set(histograms) == {(step, WEIGHTS_PREFIX + name) for step in (1, 2) for name in weights}
    for (_, tag), histo in histograms.items():
        value = weights[tag[len(WEIGHTS_PREFIX):]]
        assert histo.num == value.size == sum(histo.bucket)
        assert (histo.min, histo.max) == (value.min(), value.max())
    np.testing.assert_array_equal(model.predict(Xi, Xv), before)


@pytest.mark.slow  # fits a model
def test_epoch_scalars_and_write_epoch_read_the_fit_loop_attributes(fitted, tmp_path):
    model, _, _ = fitted
    metric = model.metric_name_
    assert epoch_scalars(model, 1, loss=[0.5, 0.7]) == {
        "learning_rate": model.learning_rate, f"train/{metric}": model.train_result_[1],
        f"valid/{metric}": model.valid_result_[1], "epoch_seconds": model.epoch_seconds_[1],
        "train/loss": pytest.approx(0.6)}
    assert set(epoch_scalars(model, 2)) == {"learning_rate"}  # no scores past the fitted epochs
    with open_summaries(tmp_path / "run", model) as summaries:
        summaries.write_epoch(model, 0, loss=0.25)
    written = {(step, v.tag): v.simple_value for step, v in summary_values(read_events(tmp_path / "run"))
               if v.WhichOneof("value") == "simple_value"}
    assert written[(1, f"valid/{metric}")] == np.float32(model.valid_result_[0])
    assert written[(1, "train/loss")] == np.float32(0.25)


def test_no_directory_writes_nothing(tmp_path):
    with open_summaries(None, model=None) as summaries:  # never looks at the model
        assert isinstance(summaries, NoSummaries)
        summaries.write_epoch(None, 0, loss=1.0)
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_fit_with_tensorboard_dir_writes_each_epochs_scores_and_losses(tmp_path):
    from sklearn.metrics import log_loss

    Xi, Xv, y, feature_size = make_planted(n_rows=400, n_fields=4, values_per_field=5)
    params = dict(feature_size=feature_size, embedding_size=4, deep_layers=(8,), dropout_deep=(1.0, 1.0), epoch=3,
                  batch_size=64, verbose=False, random_seed=1, eval_metric="auc")
    plain = DeepFM(**params).fit(Xi[:300], Xv[:300], y[:300], Xi[300:], Xv[300:], y[300:])
    model = DeepFM(**params, tensorboard_dir=tmp_path / "run").fit(Xi[:300], Xv[:300], y[:300], Xi[300:], Xv[300:],
                                                                   y[300:])
    np.testing.assert_array_equal(model.predict(Xi, Xv), plain.predict(Xi, Xv))  # the summaries change nothing
    scalars = {}
    for step, value in summary_values(read_events(tmp_path / "run")):
        if not value.HasField("histo"):
            scalars[value.tag, step] = value.simple_value
    for epoch in range(3):
        assert scalars["train/auc", epoch + 1] == pytest.approx(model.train_result_[epoch], abs=1e-6)
        assert scalars["valid/auc", epoch + 1] == pytest.approx(model.valid_result_[epoch], abs=1e-6)
        assert scalars["learning_rate", epoch + 1] == pytest.approx(0.001)
    assert scalars["valid/loss", 3] == pytest.approx(log_loss(y[300:], model.predict(Xi[300:], Xv[300:])), abs=1e-5)
    assert DeepFM(**params).tensorboard_dir is None and not list(tmp_path.glob("*/events*"))[1:]  # one run only
