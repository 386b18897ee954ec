"""Batch sources: held-out rows by hash, read-ahead on a thread, training from files in chunks."""
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from deepfm_graph import DeepFM, cli
from deepfm_graph.batches import FileSource, held_out, prefetch
from deepfm_graph.features import DatasetSchema

ROOT = Path(__file__).resolve().parents[1]
CRITEO = ROOT / "data" / "criteo"
SMALL = {"embedding_size": 4, "deep_layers": (16,), "dropout_deep": (1.0, 1.0), "epoch": 2, "batch_size": 256,
         "eval_train": False, "random_seed": 3}


@pytest.fixture(scope="module")
def schema():
    return DatasetSchema.load(CRITEO / "schema.json")


def test_held_out_rows_are_a_fixed_hash_of_the_row_number():
    rows = np.arange(100_000)
    chosen = held_out(rows, 0.2)
    assert abs(chosen.mean() - 0.2) < 0.01
    np.testing.assert_array_equal(held_out(rows[::-1], 0.2), chosen[::-1])  # per row, not per position
    assert not held_out(rows, 0.0).any()
    assert (held_out(rows, 0.1) <= chosen).all()  # a smaller fraction holds out a subset


def test_prefetch_yields_in_order_and_raises_the_workers_error_here():
    assert list(prefetch(iter(range(10)))) == list(range(10))

    def failing():
        yield 1
        raise ValueError("row 7 is bad")

    items = prefetch(failing())
    assert next(items) == 1
    with pytest.raises(ValueError, match="row 7 is bad"):
        next(items)


def test_prefetch_stops_its_thread_when_the_consumer_stops_early():
    items = prefetch(iter(range(1_000_000)), depth=2)
    assert next(items) == 0
    items.close()
    assert not any(t.name == "deepfm-prefetch" and t.is_alive() for t in threading.enumerate())


def test_file_source_fits_the_spec_on_the_training_rows_only(schema):
    source = FileSource(schema, CRITEO / "train.tsv", chunk_rows=1_500, valid_frac=0.25)
    spec, label_mean = source.fit_spec()
    df = schema.read(CRITEO / "train.tsv")
    train = df[~held_out(df.index.to_numpy(), 0.25)]
    whole = schema.feature_spec(list(df.columns)).fit(train)
    for a, b in zip(spec.to_dict()["columns"], whole.to_dict()["columns"]):
        fitted_a, fitted_b = a.pop("fitted", {}), b.pop("fitted", {})
        assert a == b and fitted_a.keys() == fitted_b.keys()
        for key in fitted_a:
            assert fitted_a[key] == (pytest.approx(fitted_b[key], rel=1e-12) if key in ("center", "scale")
                                     else fitted_b[key]), (a["name"], key)
    assert label_mean == pytest.approx(train["label"].mean(), rel=1e-12) and source.training_rows == len(train)
    training, held = list(source.training()), list(source.held_out())
    assert sum(map(len, training)) == len(train) and sum(map(len, held)) == len(df) - len(train)
    assert max(map(len, training)) <= 1_500
    np.testing.assert_array_equal(np.concatenate([p.y for p in held]),
                                  df.loc[held_out(df.index.to_numpy(), 0.25), "label"].to_numpy(np.float32))


@pytest.mark.slow
def test_a_stream_of_one_chunk_trains_exactly_as_fit_in_memory(schema):
    source = FileSource(schema, CRITEO / "train.tsv", chunk_rows=10 ** 6)
    spec, _ = source.fit_spec()
    streamed = DeepFM(**SMALL).fit_stream(source)
    df = schema.read(CRITEO / "train.tsv")
    X = spec.transform(df)
    in_memory = DeepFM(**SMALL, feature_size=spec.feat_dim).fit(X.Xi, X.Xv, schema.labels(df), Xs=X.Xs)
    T = spec.transform(schema.read(CRITEO / "test.tsv"))
    np.testing.assert_array_equal(streamed.predict(T.Xi, T.Xv, T.Xs), in_memory.predict(T.Xi, T.Xv, T.Xs))


@pytest.mark.slow
def test_a_stream_of_chunks_learns_is_deterministic_and_validates_on_the_held_out_rows(schema):
    def fit():
        source = FileSource(schema, CRITEO / "train.tsv", chunk_rows=1_500, valid_frac=0.2)
        source.fit_spec()
        model = DeepFM(**{**SMALL, "epoch": 4, "eval_metric": "auc", "patience": 2}).fit_stream(
            source, early_stopping=True)
        return source, model

    (source, model), (_, twin) = fit(), fit()
    test = schema.read(CRITEO / "test.tsv")
    T = source.spec.transform(test)
    p = model.predict(T.Xi, T.Xv, T.Xs)
    np.testing.assert_array_equal(p, twin.predict(T.Xi, T.Xv, T.Xs))
    assert roc_auc_score(schema.labels(test), p) > 0.65
    y, held_predictions = model.predict_parts(source.held_out())  # the kept weights are the best epoch's
    assert roc_auc_score(y, held_predictions) == pytest.approx(model.valid_result_[model.best_epoch_], abs=1e-12)


@pytest.mark.slow
def test_a_bad_value_in_a_later_chunk_names_the_file_and_its_row(schema, tmp_path):
    lines = (CRITEO / "train.tsv").read_text().splitlines()
    fields = lines[1_700].split("\t")
    fields[1] = "many"  # I1, a numeric column
    lines[1_700] = "\t".join(fields)
    path = tmp_path / "bad.tsv"
    path.write_text("\n".join(lines) + "\n")
    source = FileSource(schema, path, chunk_rows=1_000)
    with pytest.raises(ValueError, match=r"bad\.tsv.*'I1' holds non-numeric 'many' at row 1700"):
        source.fit_spec()
    with pytest.raises(ValueError, match="not fitted"):
        DeepFM(**SMALL).fit_stream(source)


@pytest.mark.slow
def test_deepfm_train_stream_writes_what_deepfm_predict_reproduces(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--train", str(CRITEO / "train.tsv"), "--test", str(CRITEO / "test.tsv"), "--schema",
            str(CRITEO / "schema.json"), "--out", str(out), "--stream", "--chunk-rows", "2500", "--epochs", "2",
            "--quiet"]
    assert cli.train_main(args) == 0
    assert cli.predict_main(["--model", str(out / "model"), "--input", str(CRITEO / "test.tsv"),
                             "--output", str(tmp_path / "p.csv")]) == 0
    assert (tmp_path / "p.csv").read_bytes() == (out / "predictions.csv").read_bytes()
    metrics = pd.read_json(out / "metrics.json", typ="series")
    assert metrics["validation"]["stream"] is True and metrics["folds"][0]["valid_rows"] > 0
    capsys.readouterr()
    assert cli.train_main(args + ["--folds", "2"]) == 2
    assert "not on --folds" in capsys.readouterr().err


def test_the_cache_gives_the_parts_of_a_pass_over_the_text(schema, tmp_path):
    source = FileSource(schema, CRITEO / "train.tsv", chunk_rows=3_000, valid_frac=0.2, cache_dir=tmp_path)
    source.fit_spec()
    plain = FileSource(schema, CRITEO / "train.tsv", chunk_rows=3_000, valid_frac=0.2)
    plain.spec = source.spec
    for _ in range(2):  # the first pass writes the cache, the second reads it
        for parts_a, parts_b in ((source.training(), plain.training()), (source.held_out(), plain.held_out())):
            parts_a, parts_b = list(parts_a), list(parts_b)
            assert len(parts_a) == len(parts_b)
            for a, b in zip(parts_a, parts_b):
                np.testing.assert_array_equal(a.X.Xi, b.X.Xi)
                np.testing.assert_array_equal(a.X.Xv, b.X.Xv)
                np.testing.assert_array_equal(a.y, b.y)
    assert (tmp_path / "training" / "complete").exists() and (tmp_path / "held_out" / "complete").exists()
    assert isinstance(next(iter(source.training())).X.Xi, np.memmap)  # read from the cache


def test_an_interrupted_or_outdated_cache_is_not_used(schema, tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes((CRITEO / "train.tsv").read_bytes())
    cache = tmp_path / "cache"
    source = FileSource(schema, path, chunk_rows=3_000, cache_dir=cache)
    source.fit_spec()
    parts = source.training()
    next(parts)
    parts.close()  # stopped after the first chunk
    assert not (cache / "training" / "complete").exists()
    assert sum(len(p) for p in source.training()) == 10_000  # rebuilt whole
    assert (cache / "training" / "complete").exists()
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:5_000]) + "\n")  # another file at the same path
    assert sum(len(p) for p in source.training()) == 5_000


@pytest.mark.slow
def test_a_stream_with_a_cache_trains_exactly_as_without(schema, tmp_path):
    def fit(cache_dir):
        source = FileSource(schema, CRITEO / "train.tsv", chunk_rows=2_500, valid_frac=0.2, cache_dir=cache_dir)
        source.fit_spec()
        return source, DeepFM(**{**SMALL, "epoch": 3}).fit_stream(source)

    (source, cached), (_, plain) = fit(tmp_path), fit(None)
    T = source.spec.transform(schema.read(CRITEO / "test.tsv"))
    np.testing.assert_array_equal(cached.predict(T.Xi, T.Xv, T.Xs), plain.predict(T.Xi, T.Xv, T.Xs))
    assert cached.valid_result_ == plain.valid_result_
