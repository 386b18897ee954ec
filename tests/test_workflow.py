"""Tests for deepfm_graph.workflow and scripts/train_porto.py: the Porto cross-validation run."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from deepfm_graph import workflow
from deepfm_graph.porto import add_engineered_features
from deepfm_graph.synthetic import make_porto_data

pytestmark = pytest.mark.slow  # each test runs the Porto workflow or its script

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_porto.py"
SEED = 3
MODEL_NAMES = ("DeepFM", "FM", "DNN")


@pytest.fixture(scope="module")
def frames():
    return make_porto_data(600, 200, seed=SEED)


@pytest.fixture(scope="module")
def csv_files(frames, tmp_path_factory):
    directory = tmp_path_factory.mktemp("porto")
    paths = directory / "train.csv", directory / "test.csv"
    for df, path in zip(frames, paths):
        df.to_csv(path, index=False)
    return paths


def run_script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def script_run(csv_files, tmp_path_factory):
    """One end-to-end run: 2 folds, 2 epochs, all three models, a params file under the flags."""
    directory = tmp_path_factory.mktemp("run")
    params = directory / "params.json"
    params.write_text(json.dumps({"embedding_size": 4, "epoch": 7, "deep_layers": [16, 16], "use_fm": True}))
    out = directory / "out"
    proc = run_script("--train", csv_files[0], "--test", csv_files[1], "--out", out, "--folds", 2,
                      "--epochs", 2, "--batch-size", 128, "--params", params)
    assert proc.returncode == 0, proc.stderr
    return proc, out, json.loads((out / "metrics.json").read_text())


def load_script():
    spec = importlib.util.spec_from_file_location("train_porto", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fold_splits(y, folds):
    return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=2017).split(np.zeros(len(y)), y))


# --- the script end to end -----------------------------------------------------------------

def test_script_prints_a_results_table_matching_metrics(script_run):
    proc, _, metrics = script_run
    assert "Traceback" not in proc.stderr
    table = proc.stdout[proc.stdout.index("model "):].splitlines()
    for name, line in zip(MODEL_NAMES, table[1:]):
        summary = metrics["models"][name]
        assert line.split() == [name, f"{summary['cv_gini_mean']:.5f}", "±", f"{summary['cv_gini_std']:.5f}",
                                f"{summary['seconds']:.1f}"]
    assert "DeepFM fold 2/2" in proc.stdout and "[2] train-gini_norm=" in proc.stdout


def test_script_writes_exactly_the_documented_files(script_run):
    _, out, _ = script_run
    expected = {"metrics.json", "model", "interactions_DeepFM.png", "interactions_FM.png"} | {
        f"{kind}{name}{ext}" for name in MODEL_NAMES
                                   for kind, ext in (("submission_", ".csv"), ("oof_", ".csv"), ("", ".png"))}
    assert {path.name for path in out.iterdir()} == expected  # no temporary file left behind


def test_submissions_hold_a_probability_per_test_row_in_order(script_run, frames):
    _, out, _ = script_run
    for name in MODEL_NAMES:
        submission = pd.read_csv(out / f"submission_{name}.csv")
        assert list(submission.columns) == ["id", "target"]
        assert submission["id"].tolist() == frames[1]["id"].tolist()
        p = submission["target"].to_numpy()
        assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()


def test_oof_predictions_score_each_fold_as_reported(script_run, frames):
    _, out, metrics = script_run
    train = frames[0]
    splits = fold_splits(train["target"].to_numpy(), 2)
    for name in MODEL_NAMES:
        oof = pd.read_csv(out / f"oof_{name}.csv")
        assert list(oof.columns) == ["id", "target", "prediction"]
        assert oof["id"].tolist() == train["id"].tolist() and oof["target"].tolist() == train["target"].tolist()
        p = oof["prediction"].to_numpy()
        assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
        expected = [2 * roc_auc_score(train["target"].iloc[valid], p[valid]) - 1 for _, valid in splits]
        assert metrics["models"][name]["fold_gini"] == pytest.approx(expected, abs=1e-6)


def test_metrics_json_records_scores_curves_params_and_run(script_run, csv_files):
    _, _, metrics = script_run
    assert (metrics["seed"], metrics["folds"]) == (2017, 2)
    assert metrics["inputs"] == {"train": {"path": str(csv_files[0]), "rows": 600},
                                 "test": {"path": str(csv_files[1]), "rows": 200}}
    assert set(metrics["versions"]) >= {"python", "numpy", "pandas", "sklearn", "tensorflow", "deepfm_graph"}
    for name, (use_fm, use_deep) in zip(MODEL_NAMES, ((True, True), (True, False), (False, True))):
        summary = metrics["models"][name]
        assert summary["cv_gini_mean"] == pytest.approx(np.mean(summary["fold_gini"]))
        assert summary["cv_gini_std"] == pytest.approx(np.std(summary["fold_gini"]))
        assert [len(c) for c in summary["train_curve"] + summary["valid_curve"]] == [2, 2, 2, 2]
        assert summary["valid_curve"][0][-1] == pytest.approx(summary["fold_gini"][0])
        assert len(summary["fold_seconds"]) == 2 and summary["seconds"] > 0
        params = summary["params"]
        # Flags beat the params file, the file beats the defaults.
        assert (params["epoch"], params["batch_size"], params["embedding_size"]) == (2, 128, 4)
        assert params["deep_layers"] == [16, 16] and params["dropout_deep"] == [0.5, 0.5, 0.5]
        assert (params["l2_reg"], params["random_seed"], params["layout"]) == (0.01, 2017, "paper")
        assert (params["use_fm"], params["use_deep"]) == (use_fm, use_deep)


def test_curve_figures_are_readable_pngs(script_run):
    _, out, _ = script_run
    for name in MODEL_NAMES:
        image = matplotlib.image.imread(out / f"{name}.png")
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_script_rejects_a_train_file_missing_a_column(frames, tmp_path):
    train = tmp_path / "train.csv"
    frames[0].drop(columns="ps_car_13").to_csv(train, index=False)
    frames[1].to_csv(tmp_path / "test.csv", index=False)
    proc = run_script("--train", train, "--test", tmp_path / "test.csv", "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "ps_car_13" in proc.stderr and str(train) in proc.stderr
    assert not (tmp_path / "out").exists()


def test_script_rejects_an_unknown_params_key(csv_files, tmp_path, capsys):
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"embeding_size": 4}))
    argv = ["--train", csv_files[0], "--test", csv_files[1], "--params", params, "--out", tmp_path / "out"]
    status = load_script().main([str(arg) for arg in argv])
    error = capsys.readouterr().err
    assert status == 2
    assert "'embeding_size'" in error and "did you mean 'embedding_size'" in error
    assert not (tmp_path / "out").exists()


# --- parameters ----------------------------------------------------------------------------

def test_resolve_params_layers_defaults_file_and_flags():
    params, numeric, ignore = workflow.resolve_params({"learning_rate": 0.01, "epoch": 5, "ignore_cols": ["id"]},
                                                      {"epoch": 3, "layout": None})
    assert (params["learning_rate"], params["epoch"], params["layout"]) == (0.01, 3, "paper")
    assert ignore == ("id",) and "ps_car_13" in numeric


def test_resolve_params_resizes_default_dropout_to_the_deep_stack():
    params, _, _ = workflow.resolve_params({}, {"deep_layers": (64, 32, 16)})
    assert params["dropout_deep"] == (0.5, 0.5, 0.5, 0.5)


@pytest.mark.parametrize("bad, word", [({"learning_rate": -1}, "learning_rate"),
                                       ({"deep_layers": (8,), "dropout_deep": (0.5,)}, "dropout_deep")])
def test_resolve_params_rejects_bad_values_before_training(bad, word):
    with pytest.raises(workflow.WorkflowError, match=word):
        workflow.resolve_params(bad, {})


def test_params_file_may_not_set_the_feature_dictionary_sizes(tmp_path):
    path = tmp_path / "params.json"
    path.write_text(json.dumps({"feature_size": 100}))
    with pytest.raises(workflow.WorkflowError, match="feature_size"):
        workflow.load_params_file(path)


# --- cross-validation at the function level ------------------------------------------------

def test_fold_features_see_nothing_of_the_validation_part_or_test(frames):
    train, test = (add_engineered_features(df) for df in frames)
    fold0_train, fold0_valid = fold_splits(train["target"].to_numpy(), 2)[0]
    train.loc[fold0_valid[:5], "ps_car_01_cat"] = 77  # a category only fold 0's validation part holds
    train.loc[fold0_valid, "ps_car_13"] = 50.0  # would move fold 0's scaling if it leaked in
    test.loc[:4, "ps_car_01_cat"] = 99  # a category only the test file holds
    params = {**workflow.DEFAULT_PARAMS, "epoch": 1, "batch_size": 256}
    results = workflow.run_cv(train, test, ("fm",), params, folds=2, seed=2017, progress=None)
    fold0, fold1 = results.models[0].folds
    assert np.array_equal(fold0.valid_index, fold0_valid)
    assert 77 not in fold0.features.feat_dict["ps_car_01_cat"]
    assert 77 in fold1.features.feat_dict["ps_car_01_cat"]  # fold 1 trains on those rows
    assert all(99 not in fold.features.feat_dict["ps_car_01_cat"] for fold in (fold0, fold1))
    car_13 = train["ps_car_13"].iloc[fold0_train]
    car_13 = car_13[car_13 != -1]
    scaling = fold0.features.scaling_params["ps_car_13"]
    assert (scaling["center"], scaling["scale"]) == pytest.approx((car_13.mean(), car_13.std(ddof=0)))
    assert fold0.oov_valid >= 5 and fold0.oov_test >= 5


def test_run_cv_checks_roles_and_folds_before_training(frames):
    train, test = (add_engineered_features(df) for df in frames)
    with pytest.raises(workflow.WorkflowError, match="'ps_car_99'"):
        workflow.run_cv(train, test, numeric_cols=("ps_car_99",), progress=None)
    with pytest.raises(workflow.WorkflowError, match="'ps_car_13'"):
        workflow.run_cv(train, test.drop(columns="ps_car_13"), progress=None)
    positives = int(train["target"].sum())
    with pytest.raises(workflow.WorkflowError, match="stratified folds"):
        workflow.run_cv(train, test, folds=positives + 1, progress=None)


def test_read_inputs_accepts_the_real_sample(shared_data):
    sample = shared_data / "porto_seguro"
    train, test = workflow.read_inputs(sample / "train_head10000.csv", sample / "test_head2000.csv")
    assert (len(train), len(test)) == (10000, 2000)
    numeric, ignore = workflow.resolve_params()[1:]
    assert "missing_feat" in workflow.check_inputs(train, test, numeric, ignore, 3)
