"""``deepfm-benchmark --stream`` end to end at tiny scale, and the Criteo-shaped data it generates
(``datasets.criteo_scale``): determinism, layout, cardinalities, missing and click rates."""
import json

import numpy as np
import pandas as pd
import pytest

from deepfm_graph import benchmark
from deepfm_graph.datasets import criteo, criteo_scale

ROWS = 60_000


def read_tsv(path):
    return pd.read_csv(path, sep="\t", header=None, names=list(criteo.COLUMNS), dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def clicks(tmp_path_factory):
    return read_tsv(criteo_scale.write_criteo_tsv(tmp_path_factory.mktemp("scale") / "train.tsv", ROWS, seed=5))


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(criteo_scale, "CHUNK_ROWS", 4_000)


def test_same_arguments_write_identical_files_and_a_shorter_file_is_a_prefix(tmp_path, small_chunks):
    paths = [criteo_scale.write_criteo_tsv(tmp_path / f"{n}_{k}.tsv", n, seed=3) for n, k in
             ((10_000, 0), (10_000, 1), (6_000, 0))]
    full, again, short = (p.read_bytes() for p in paths)
    assert full == again
    assert full.startswith(short) and short.count(b"\n") == 6_000 and full.count(b"\n") == 10_000
    test_rows = criteo_scale.write_criteo_tsv(tmp_path / "test.tsv", 6_000, seed=3, part="test").read_bytes()
    assert test_rows != short  # independent rows of the same world


def test_rows_have_the_kaggle_layout(clicks):
    assert set(clicks["label"]) == {"0", "1"}
    for column in criteo.I_COLUMNS:
        assert clicks[column].str.fullmatch(r"(-1|0|[1-9]\d*)?").all(), column
    for column in criteo.C_COLUMNS:
        assert clicks[column].str.fullmatch(r"([0-9a-f]{8})?").all(), column


def expected_distinct(column, n_rows):
    """Expected distinct values of ``column`` in ``n_rows`` rows under its Zipf law and missing rate."""
    size, exponent = criteo_scale.VOCABULARIES[column]
    p = np.arange(1, size + 1, dtype=float) ** -exponent
    present = 1.0 - criteo.CATEGORICAL_COLUMNS[column][1]
    return float(np.sum(-np.expm1(n_rows * np.log1p(-present * p / p.sum()))))


@pytest.mark.parametrize("column", ["C3", "C4", "C10", "C24", "C7", "C2"])
def test_distinct_counts_follow_the_zipf_law_and_grow_with_the_rows(clicks, column):
    first = [clicks[column].iloc[:n] for n in (ROWS // 4, ROWS)]
    distinct = [values[values != ""].nunique() for values in first]
    for n, observed in zip((ROWS // 4, ROWS), distinct):
        assert observed == pytest.approx(expected_distinct(column, n), rel=0.05), (column, n)
    if criteo_scale.VOCABULARIES[column][0] >= 100_000:
        assert distinct[1] > 2.5 * distinct[0]  # far from saturated: most values are new


def test_small_columns_stay_small(clicks):
    for column in ("C9", "C20", "C17", "C6"):
        values = clicks.loc[clicks[column] != "", column]
        assert values.nunique() <= criteo_scale.VOCABULARIES[column][0], column


@pytest.mark.parametrize("column, rate", [("I1", 0.45), ("I12", 0.77), ("I8", 0.0), ("C1", 0.0), ("C3", 0.035),
                                          ("C6", 0.12), ("C19", 0.5), ("C22", 0.8)])
def test_missing_rates_are_criteos(clicks, column, rate):
    assert (clicks[column] == "").mean() == pytest.approx(rate, abs=0.01)


def test_click_rate_is_the_target(clicks):
    assert (clicks["label"] == "1").mean() == pytest.approx(criteo.TARGET_RATE, abs=0.01)


def test_stream_options_need_stream_and_holdout_rows_do_not_apply():
    for argv in (["--deep-layers", "16"], ["--compare-memory"], ["--stream", "--holdout-rows", "10"],
                 ["--stream", "--chunk-rows", "0"], ["--stream", "--deep-layers", "16,x"]):
        with pytest.raises(SystemExit) as exit_info:
            benchmark.main(argv)
        assert exit_info.value.code == 2, argv


@pytest.mark.slow  # generates data and trains in child processes (~15 s)
def test_stream_benchmark_runs_tiny_and_reports_its_figures(tmp_path, capsys):
    out = tmp_path / "figures.json"
    argv = ["--stream", "--rows", "20000", "--test-rows", "5000", "--deep-layers", "16", "--epochs", "1",
            "--chunk-rows", "8000", "--data-dir", str(tmp_path / "data"), "--json", str(out)]
    assert benchmark.main(argv) == 0
    figures = json.loads(out.read_text())
    assert figures["rows"] == 20_000 and figures["chunk_rows"] == 8_000 and figures["generate_seconds"] > 0
    assert figures["training_rows"] == pytest.approx(20_000 * (1 - benchmark.STREAM_VALID_FRAC), rel=0.03)
    for key in ("spec_fit_rows_per_s", "train_rows_per_s_epoch_1", "predict_file_rows_per_s", "predict_rows_per_s",
                "peak_rss_mb", "wall_seconds", "feat_dim", "vocabulary_size"):
        assert figures[key] > 0, key
    assert figures["vocabulary_size"] < figures["feat_dim"]  # plus OOV and numeric indices
    assert len(figures["epoch_seconds"]) == len(figures["reader_wait_seconds"]) == 1
    assert figures["test_auc"] > 0.55  # the planted signal is learnt (0.70 when written)
    assert {"fit_spec", "epoch 1 training", "epoch 1 validation", "predict test file"} <= set(figures["rss_by_phase"])
    assert "test_auc" in capsys.readouterr().out

    train, test, seconds = benchmark.scale_files(tmp_path / "data", 20_000, 5_000, 0)
    assert seconds is None and train.name in figures["train_file"]  # the files are reused
