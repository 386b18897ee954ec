"""Tests for deepfm_graph.synthetic: layout, determinism, real marginals, planted signal, files."""
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from deepfm_graph import _porto_stats as stats
from deepfm_graph import synthetic
from deepfm_graph.porto import CATEGORICAL_COLS, FEATURE_COLUMNS, MISSING_COLUMNS, NUMERIC_COLS, validate_porto_frame

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def large():
    """20,000 train rows (and a few test rows) from one seed."""
    return synthetic.make_porto_data(n_train=20_000, n_test=500, seed=7)


def holdout_gini(df, categorical, numeric=()):
    """Normalized Gini of a one-hot logistic regression fitted on 80%, scored on the last 20%."""
    fit_rows = int(0.8 * len(df))
    fit, held_out = df.iloc[:fit_rows], df.iloc[fit_rows:]
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), list(categorical)),
                                (StandardScaler(), list(numeric))),
        LogisticRegression(C=0.1, max_iter=1000),
    ).fit(fit, fit["target"])
    return 2 * roc_auc_score(held_out["target"], model.predict_proba(held_out)[:, 1]) - 1


# --- layout and determinism ---------------------------------------------------------------

def test_frames_have_the_kaggle_columns_in_order(large):
    train, test = large
    assert list(train.columns) == ["id", "target", *FEATURE_COLUMNS]
    assert list(test.columns) == ["id", *FEATURE_COLUMNS]


def test_frames_have_the_real_files_headers(shared_data, large):
    for df, name in zip(large, ("train_head10000.csv", "test_head2000.csv")):
        header = pd.read_csv(shared_data / "porto_seguro" / name, nrows=0).columns
        assert list(df.columns) == list(header)


def test_frames_have_the_requested_sizes():
    train, test = synthetic.make_porto_data(n_train=37, n_test=11, seed=0)
    assert (len(train), len(test)) == (37, 11)


def test_ids_are_unique_increasing_and_shared_between_train_and_test(large):
    train, test = large
    for ids in (train["id"], test["id"]):
        assert ids.is_monotonic_increasing and ids.is_unique
    assert sorted([*train["id"], *test["id"]]) == list(range(len(train) + len(test)))


def test_generated_frames_pass_schema_validation(large):
    train, test = large
    validate_porto_frame(train)
    validate_porto_frame(test, has_target=False, name="test")


def test_same_seed_gives_identical_frames():
    first = synthetic.make_porto_data(n_train=300, n_test=100, seed=3)
    second = synthetic.make_porto_data(n_train=300, n_test=100, seed=3)
    for a, b in zip(first, second):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_different_seeds_give_different_data():
    train_a, _ = synthetic.make_porto_data(n_train=300, n_test=0, seed=3)
    train_b, _ = synthetic.make_porto_data(n_train=300, n_test=0, seed=4)
    assert not train_a.equals(train_b)
    assert (train_a["ps_car_13"] != train_b["ps_car_13"]).mean() > 0.9


def test_negative_sizes_are_rejected():
    with pytest.raises(ValueError, match="n_train"):
        synthetic.make_porto_data(n_train=-1)


# --- marginals ----------------------------------------------------------------------------

def test_target_rate_is_the_real_rate(large):
    assert large[0]["target"].mean() == pytest.approx(0.0364, abs=0.005)


def test_minus_one_appears_at_the_real_missing_rates(large):
    train = large[0]
    for column in FEATURE_COLUMNS:
        rate = (train[column] == -1).mean()
        if column in MISSING_COLUMNS:
            assert rate == pytest.approx(stats.MISSING_RATES[column], abs=0.01), column
        else:
            assert rate == 0, column


@pytest.mark.parametrize("column", ["ps_car_01_cat", "ps_ind_15", "ps_car_11_cat", "ps_calc_10"])
def test_value_frequencies_match_the_stored_counts(large, column):
    observed = large[0][column].value_counts(normalize=True)
    for value, count, _ in stats.VALUE_COUNTS[column]:
        if value != -1:
            expected = count / stats.SAMPLE_ROWS
            assert observed.get(value, 0.0) == pytest.approx(expected, abs=0.01), value


def test_value_frequencies_match_the_real_value_counts(shared_data, large):
    real = pd.read_csv(shared_data / "porto_seguro" / "value_counts.csv")
    train = large[0]
    for column, group in real.groupby("column"):
        observed = train[column].value_counts(normalize=True)
        expected = group.set_index("value")["frac"]
        assert set(observed.index) <= set(expected.index) | {-1}, column
        assert np.abs(observed.reindex(expected.index, fill_value=0) - expected).max() < 0.015


def test_column_means_and_spreads_match_the_real_sample(shared_data, large):
    real = pd.read_csv(shared_data / "porto_seguro" / "train_head10000.csv")
    train = large[0]
    for column in FEATURE_COLUMNS:
        spread = real[column].std()
        assert abs(train[column].mean() - real[column].mean()) < 0.05 * spread, column
        assert train[column].std() == pytest.approx(spread, rel=0.1), column


def test_continuous_quantiles_match_the_real_sample(shared_data, large):
    real = pd.read_csv(shared_data / "porto_seguro" / "train_head10000.csv")
    levels = [0.05, 0.25, 0.5, 0.75, 0.95]
    for column in ("ps_reg_03", "ps_car_13", "ps_car_14"):
        present = [df.loc[df[column] != -1, column] for df in (large[0], real)]
        generated, expected = (np.quantile(values, levels) for values in present)
        np.testing.assert_allclose(generated, expected, rtol=0.03, err_msg=column)


def test_values_stay_in_the_real_ranges(large):
    train = large[0]
    for column, rows in stats.VALUE_COUNTS.items():
        assert set(train[column]) <= {row[0] for row in rows} | {-1}, column
    for column, quantiles in stats.QUANTILES.items():
        present = train.loc[train[column] != -1, column]
        assert quantiles[0] - 1e-6 <= present.min() and present.max() <= quantiles[-1] + 1e-6


def test_stored_counts_are_the_real_value_counts(shared_data):
    real = pd.read_csv(shared_data / "porto_seguro" / "value_counts.csv")
    for column, group in real.groupby("column"):
        stored = {value: count for value, count, _ in stats.VALUE_COUNTS[column]}
        assert stored == dict(zip(group["value"], group["count"])), column


# --- planted signal -----------------------------------------------------------------------

def test_logistic_regression_learns_the_planted_signal():
    train, _ = synthetic.make_porto_data(n_train=10_000, n_test=0, seed=11)
    numeric = [c for c in NUMERIC_COLS if c in FEATURE_COLUMNS]
    assert holdout_gini(train, CATEGORICAL_COLS, numeric) > 0.15


def test_calc_columns_carry_no_signal(large):
    calc = [c for c in FEATURE_COLUMNS if c.startswith("ps_calc_")]
    assert abs(holdout_gini(large[0], calc)) < 0.08


def test_planted_score_ignores_calc_columns(large):
    train = large[0].head(1000)
    shuffled = train.copy()
    calc = [c for c in FEATURE_COLUMNS if c.startswith("ps_calc_")]
    shuffled[calc] = shuffled[calc].to_numpy()[::-1]
    np.testing.assert_array_equal(synthetic.planted_score(train), synthetic.planted_score(shuffled))


def test_planted_score_ranks_the_labels(large):
    train = large[0]
    assert 2 * roc_auc_score(train["target"], synthetic.planted_score(train)) - 1 > 0.35


# --- files ----------------------------------------------------------------------------------

def test_write_porto_data_round_trips_through_csv(tmp_path):
    paths = synthetic.write_porto_data(tmp_path, n_train=200, n_test=50, seed=5)
    assert [p.name for p in paths] == ["train.csv", "test.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.csv", "train.csv"]
    for path, df in zip(paths, synthetic.make_porto_data(200, 50, seed=5)):
        pd.testing.assert_frame_equal(pd.read_csv(path), df)


def test_same_seed_gives_byte_identical_files(tmp_path):
    first = synthetic.write_porto_data(tmp_path / "a", n_train=200, n_test=50, seed=5)
    second = synthetic.write_porto_data(tmp_path / "b", n_train=200, n_test=50, seed=5)
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()


def test_ensure_sample_data_writes_only_when_absent(tmp_path):
    train_path, test_path = synthetic.ensure_sample_data(tmp_path)
    assert len(pd.read_csv(train_path)) == 10_000 and len(pd.read_csv(test_path)) == 2_000
    train_path.write_text("kept")
    assert synthetic.ensure_sample_data(tmp_path) == (train_path, test_path)
    assert train_path.read_text() == "kept"


def test_bundled_sample_is_what_the_generator_makes():
    train, test = synthetic.make_porto_data(10_000, 2_000, seed=synthetic.DEFAULT_SEED)
    assert (ROOT / "data" / "train.csv").read_text() == train.to_csv(index=False)
    assert (ROOT / "data" / "test.csv").read_text() == test.to_csv(index=False)


def test_script_writes_the_requested_files(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("make_porto_data",
                                                  ROOT / "scripts" / "make_porto_data.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main(["--out", str(tmp_path), "--train-rows", "30", "--test-rows", "10", "--seed", "1"])
    assert len(pd.read_csv(tmp_path / "train.csv")) == 30
    assert "test.csv" in capsys.readouterr().out
