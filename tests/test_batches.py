"""Batch sources: held-out rows by hash, read-ahead on a thread, training from files in chunks."""
import gzip
import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from deepfm_graph import DeepFM, cli
from deepfm_graph.batches import FileSource, Part, held_out, prefetch, window_steps
from deepfm_graph.features import DatasetSchema, FeatureArrays

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


def _assert_same_spec(spec, other):
    """The same columns and fitted state, the moments to rounding (merged over other chunks)."""
    for a, b in zip(spec.to_dict()["columns"], other.to_dict()["columns"], strict=True):
        fitted_a, fitted_b = a.pop("fitted", {}), b.pop("fitted", {})
        assert a == b and fitted_a.keys() == fitted_b.keys()
        for key in fitted_a:
            assert fitted_a[key] == (pytest.approx(fitted_b[key], rel=1e-12) if key in ("center", "scale")
                                     else fitted_b[key]), (a["name"], key)


def test_file_source_fits_the_spec_on_the_training_rows_only(schema):
    source = FileSource(schema, CRITEO / "train.tsv", chunk_rows=1_500, valid_frac=0.25)
    spec, label_mean = source.fit_spec()
    df = schema.read(CRITEO / "train.tsv")
    train = df[~held_out(df.index.to_numpy(), 0.25)]
    _assert_same_spec(spec, schema.feature_spec(list(df.columns)).fit(train))
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
def test_a_stream_trains_the_same_from_its_cache_as_from_text_and_shuffles_cached_chunks(schema, tmp_path):
    def fit(cache_dir):
        source = FileSource(schema, CRITEO / "train.tsv", chunk_rows=2_500, valid_frac=0.2, cache_dir=cache_dir)
        source.fit_spec()
        return source, DeepFM(**{**SMALL, "epoch": 3}).fit_stream(source)

    (source, parsed), (_, cached) = fit(tmp_path), fit(tmp_path)  # epoch 1 parses text, then reads the cache
    assert (tmp_path / "training" / "complete").exists()
    T = source.spec.transform(schema.read(CRITEO / "test.tsv"))
    np.testing.assert_array_equal(parsed.predict(T.Xi, T.Xv, T.Xs), cached.predict(T.Xi, T.Xv, T.Xs))
    assert parsed.valid_result_ == cached.valid_result_
    _, plain = fit(None)  # without a cache the chunks come in file order every epoch: another model
    assert plain.valid_result_[0] == parsed.valid_result_[0] and plain.valid_result_[1:] != parsed.valid_result_[1:]


def _parts(sizes, seed=0):
    """Parts whose rows are numbered 0..N-1 in Xi[:, 0] (and y), in chunks of ``sizes`` rows."""
    parts, start = [], 0
    for n in sizes:
        rows = np.arange(start, start + n)
        parts.append(Part(FeatureArrays(np.stack([rows, rows], 1).astype(np.int32), np.ones((n, 2), np.float32),
                                        ((rows[:, None].astype(np.int32), np.ones((n, 1), np.float32)),)),
                          rows.astype(np.float32)))
        start += n
    return parts


def _permutation(seed):
    return lambda n, k: np.random.default_rng([seed, k]).permutation(n).astype(np.int32)


def _trained(steps):
    """The row numbers trained by ``steps``, in order, and each step's row count."""
    trained = [step.part.X.Xi[step.order, 0] for step in steps]
    return np.concatenate(trained), [len(t) for t in trained]


def test_window_steps_train_one_chunk_in_exactly_the_permutations_order():
    for window in (0, 100, 10_000):
        rows, sizes = _trained(window_steps(_parts([1_000]), window, 64, _permutation(7)))
        np.testing.assert_array_equal(rows, _permutation(7)(1_000, 0))
        assert all(n % 64 == 0 for n in sizes[:-1])  # whole batches until the last step


def test_window_steps_train_every_row_once_and_mix_rows_across_chunks():
    sizes = [500, 300, 700, 20, 400]
    for window in (0, 64, 250):
        steps = list(window_steps(_parts(sizes), window, 32, _permutation(3)))
        rows, counts = _trained(steps)
        np.testing.assert_array_equal(np.sort(rows), np.arange(sum(sizes)))
        assert all(n % 32 == 0 for n in counts[:-1])
        assert all(len(s.carry) <= window + 32 for s in steps[:-1])  # memory: a window more than the chunk
        position = np.empty(sum(sizes), int)
        position[rows] = np.arange(len(rows))
        late_first_chunk_rows = (position[:500] > position[500:800].min()).sum()
        # rows of chunk 1 train among chunk 2's: without a window only the last partial batch's
        assert (late_first_chunk_rows >= window) if window else (late_first_chunk_rows < 32)
        # a pass resumed after any step, from its chunk count and carried rows, trains the rest the same
        k = 2
        resumed = window_steps(_parts(sizes)[steps[k].chunks:], window, 32, _permutation(3), steps[k].chunks,
                               steps[k].carry)
        np.testing.assert_array_equal(_trained(resumed)[0], _trained(steps[k + 1:])[0])


def test_a_cached_source_gives_its_chunks_in_a_seeded_order(schema, tmp_path):
    source = FileSource(schema, CRITEO / "train.tsv", chunk_rows=1_000, cache_dir=tmp_path)
    source.fit_spec()
    plain = [p.y.copy() for p in source.training()]  # file order, writes the cache
    assert source.shuffles_chunks() and len(plain) == 10

    def order(seed):
        labels = [p.y for p in source.training(shuffle_seed=seed)]
        return [next(k for k, y in enumerate(plain) if np.array_equal(y, chunk)) for chunk in labels]

    assert order([1, 1]) == order([1, 1]) != order([1, 2])
    assert sorted(order([1, 1])) == list(range(10)) and order([1, 1]) != list(range(10))
    assert [len(p) for p in source.training(shuffle_seed=[1, 1], start=7)] == [1_000] * 3
    text = FileSource(schema, CRITEO / "train.tsv", chunk_rows=1_000, spec=source.spec)
    assert not text.shuffles_chunks()
    np.testing.assert_array_equal(np.concatenate([p.y for p in text.training(shuffle_seed=[1, 1])]),
                                  np.concatenate(plain))  # without a cache: file order


def test_a_source_reads_several_files_a_glob_and_gzip(schema, tmp_path):
    lines = (CRITEO / "train.tsv").read_bytes().splitlines(keepends=True)
    (tmp_path / "day_1.tsv").write_bytes(b"".join(lines[:4_000]))
    with gzip.open(tmp_path / "day_2.tsv.gz", "wb") as f:
        f.write(b"".join(lines[4_000:]))
    whole = FileSource(schema, CRITEO / "train.tsv", chunk_rows=3_000)
    spec, mean = whole.fit_spec()
    split = FileSource(schema, str(tmp_path / "day_*"), chunk_rows=3_000)
    assert [p.name for p in split.paths] == ["day_1.tsv", "day_2.tsv.gz"]
    split_spec, split_mean = split.fit_spec()
    _assert_same_spec(split_spec, spec)
    assert split_mean == pytest.approx(mean, rel=1e-12)
    assert [len(p) for p in split.training()] == [3_000, 1_000, 3_000, 3_000]  # a chunk never spans two files
    np.testing.assert_array_equal(np.concatenate([p.X.Xi for p in split.training()]),
                                  np.concatenate([p.X.Xi for p in whole.training()]))
    held = FileSource(schema, [tmp_path / "day_1.tsv", tmp_path / "day_2.tsv.gz"], chunk_rows=3_000, valid_frac=0.3)
    held.fit_spec()
    n_held = sum(map(len, held.held_out()))
    assert n_held + held.training_rows == 10_000 and abs(n_held / 10_000 - 0.3) < 0.03
    np.testing.assert_array_equal(held_out(np.arange(6_000), 0.3, 1)[:50], held_out(np.arange(6_000), 0.3, 1)[:50])
    assert (held_out(np.arange(6_000), 0.3, 1) != held_out(np.arange(6_000), 0.3, 0)).any()  # per file
    with pytest.raises(ValueError, match="no file matches"):
        FileSource(schema, str(tmp_path / "nothing_*.tsv"))


class _Interrupted(Exception):
    pass


class _FailingSource(FileSource):
    """A source whose training pass of epoch ``epoch`` (the ``calls``-th call) stops after ``chunks`` chunks."""

    def __init__(self, *args, fail_call, fail_after, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.fail_call, self.fail_after = 0, fail_call, fail_after

    def training(self, shuffle_seed=None, start=0):
        self.calls += 1
        parts = super().training(shuffle_seed, start)
        if self.calls != self.fail_call:
            return parts
        return self._failing(parts)

    def _failing(self, parts):
        for k, part in enumerate(parts):
            if k == self.fail_after:
                parts.close()
                raise _Interrupted
            yield part


@pytest.mark.slow
def test_a_stream_resumed_mid_epoch_gives_the_uninterrupted_model(schema, tmp_path):
    params = {**SMALL, "epoch": 3, "eval_metric": "auc", "patience": 2}

    def source(cls=FileSource, **kwargs):
        s = cls(schema, CRITEO / "train.tsv", chunk_rows=1_500, valid_frac=0.2, cache_dir=tmp_path / "cache",
                **kwargs)
        s.fit_spec()
        return s

    whole = DeepFM(**params).fit_stream(source(), early_stopping=True, shuffle_window=500)
    checkpoints = tmp_path / "checkpoints"
    failing = source(_FailingSource, fail_call=2, fail_after=3)  # epoch 2, after 3 of its chunks
    with pytest.raises(_Interrupted):
        DeepFM(**params).fit_stream(failing, early_stopping=True, shuffle_window=500, checkpoint_dir=checkpoints,
                                    checkpoint_chunks=2)
    state = pd.read_json(checkpoints / "last" / "training.json", typ="series")
    assert state["completed_epochs"] == 1 and state["position"]["chunks"] == 2
    resumed = DeepFM(**params).fit_stream(source(), early_stopping=True, shuffle_window=500,
                                          checkpoint_dir=checkpoints, resume=True)
    T = whole.feature_dictionary_.transform(schema.read(CRITEO / "test.tsv"))
    np.testing.assert_array_equal(resumed.predict(T.Xi, T.Xv, T.Xs), whole.predict(T.Xi, T.Xv, T.Xs))
    assert resumed.valid_result_ == whole.valid_result_ and resumed.best_epoch_ == whole.best_epoch_
    with pytest.raises(ValueError, match="cannot resume.*shuffle_window"):
        DeepFM(**params).fit_stream(source(), early_stopping=True, shuffle_window=100, checkpoint_dir=checkpoints,
                                    resume=True)


@pytest.mark.slow
def test_a_stream_validates_on_a_separate_file(schema):
    source = FileSource(schema, CRITEO / "train.tsv", chunk_rows=4_000)
    spec, _ = source.fit_spec()
    valid = FileSource(schema, CRITEO / "test.tsv", chunk_rows=4_000)
    model = DeepFM(**{**SMALL, "eval_metric": "auc"}).fit_stream(source, valid, early_stopping=True)
    test = schema.read(CRITEO / "test.tsv")
    T = spec.transform(test)
    assert model.valid_result_[model.best_epoch_] == pytest.approx(
        roc_auc_score(schema.labels(test), model.predict(T.Xi, T.Xv, T.Xs)), abs=1e-12)
    with pytest.raises(ValueError, match="early_stopping needs validation rows"):
        DeepFM(**SMALL).fit_stream(source, early_stopping=True)


@pytest.mark.slow
def test_deepfm_train_streams_several_files_validates_on_a_file_and_resumes(tmp_path, capsys):
    lines = (CRITEO / "train.tsv").read_bytes().splitlines(keepends=True)
    for k in range(2):
        with gzip.open(tmp_path / f"part_{k}.tsv.gz", "wb") as f:
            f.write(b"".join(lines[k * 5_000:(k + 1) * 5_000]))
    out, checkpoints = tmp_path / "out", tmp_path / "checkpoints"
    args = ["--train", str(tmp_path / "part_*.tsv.gz"), "--valid", str(CRITEO / "test.tsv"), "--schema",
            str(CRITEO / "schema.json"), "--out", str(out), "--stream", "--chunk-rows", "2000", "--epochs", "2",
            "--shuffle-window", "300", "--checkpoint-dir", str(checkpoints), "--quiet"]
    assert cli.train_main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"] == [str(tmp_path / "part_0.tsv.gz"), str(tmp_path / "part_1.tsv.gz")]
    assert metrics["validation"]["valid_files"] == [str(CRITEO / "test.tsv")]
    assert metrics["validation"]["shuffle_window"] == 300
    assert metrics["folds"][0]["train_rows"] == 10_000 and metrics["folds"][0]["valid_rows"] == 2_000
    assert (checkpoints / "last" / "training.json").exists() and (out / "interactions.png").exists()
    assert cli.train_main(args + ["--resume", "--out", str(tmp_path / "again")]) == 0  # nothing left to train
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["folds"][0]["metrics"] == metrics["folds"][0]["metrics"]
    capsys.readouterr()
    for extra, message in ((["--resume"], "--resume needs --checkpoint-dir"),):
        with pytest.raises(SystemExit):
            cli.train_main(args[:-5] + extra)
        assert message in capsys.readouterr().err
    in_memory = [a for a in args if a not in ("--stream",)]
    with pytest.raises(SystemExit):
        cli.train_main(in_memory)
    assert "needs --stream" in capsys.readouterr().err
