"""Tests for deepfm_graph.cli: ``deepfm-train`` and ``deepfm-predict`` end to end.

The commands run in-process (``train_main`` / ``predict_main`` return the exit status), on the
real samples of ``../shared/data`` (skipped when absent; their schemas are written here), on the
generated samples of ``data/`` and on tiny tables made here. Metrics in ``metrics.json`` are
checked against scikit-learn on ``predictions.csv``, predictions against the input rows and
ids, errors against the one-line ``<prog>: error: ...`` contract (exit status 2, no traceback).
Subprocesses only where the process is the point: ``--help`` must not import TensorFlow, and
``scripts/train.py`` must run as a script.
"""
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error, roc_auc_score

from deepfm_graph import DeepFM, cli
from deepfm_graph.features import DatasetSchema, FeatureSpec

pytestmark = pytest.mark.slow  # deepfm-train runs end to end

ROOT = Path(__file__).resolve().parents[1]
MOVIELENS, CRITEO = ROOT / "data" / "movielens", ROOT / "data" / "criteo"
SMALL_PARAMS = {"embedding_size": 4, "deep_layers": [16], "batch_size": 256}
TASK_METRICS = {"binary": ("auc", "logloss"), "regression": ("rmse", "mae")}
RANKING_KEYS = {"precision@10", "recall@10", "ndcg@10", "map@10", "hit_rate@10", "users"}
CRITEO_NAMES = ["label"] + [f"I{i}" for i in range(1, 14)] + [f"C{i}" for i in range(1, 27)]
PORTO_NUMERIC = ["ps_reg_01", "ps_reg_02", "ps_reg_03", "ps_car_12", "ps_car_13", "ps_car_14", "ps_car_15"]
TRAIN_FLAGS = ("--train", "--test", "--schema", "--out", "--folds", "--valid-frac", "--epochs", "--params",
               "--quiet", "--group-col")
PREDICT_FLAGS = ("--model", "--input", "--output")


# ------------------------------------------------------------------ helpers
def write_json(path, obj):
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    return path


def small_params(directory):
    return write_json(Path(directory) / "params.json", SMALL_PARAMS)


def train(*args):
    return cli.train_main([str(a) for a in args])


def read_metrics(out):
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def error_line(err, prog):
    """The single stderr line ``<prog>: error: ...``, checked: one line, no traceback."""
    assert "Traceback" not in err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    return lines[0]


def check_metrics(summary, task, n_folds):
    """Per fold the task's metrics (finite), and their mean as ``valid_mean``."""
    names = TASK_METRICS[task]
    assert summary["task"] == task
    assert len(summary["folds"]) == n_folds
    for fold in summary["folds"]:
        assert set(names) <= set(fold["metrics"])
        assert all(np.isfinite(fold["metrics"][name]) for name in names)
        assert 0 <= fold["best_epoch"] < fold["epochs"] == len(fold["valid_curve"])
    assert set(summary["valid_mean"]) == set(names)
    for name in names:
        assert summary["valid_mean"][name] == pytest.approx(np.mean([f["metrics"][name] for f in summary["folds"]]),
                                                            rel=1e-12)


def check_outputs(out, task, n_folds):
    """``metrics.json`` (returned), ``learning_curve.png`` and a loadable ``model/`` with a FeatureSpec."""
    summary = read_metrics(out)
    check_metrics(summary, task, n_folds)
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = DeepFM.load(out / "model")
    assert isinstance(model.feature_dictionary_, FeatureSpec)
    return summary, model


def check_predict_reproduces(out, test_path, tmp_path):
    """``deepfm-predict`` on ``model/`` writes ``predictions.csv`` again, byte for byte."""
    again = tmp_path / "again.csv"
    assert cli.predict_main(["--model", str(out / "model"), "--input", str(test_path), "--output", str(again)]) == 0
    assert again.read_bytes() == (out / "predictions.csv").read_bytes()


def check_predictions_follow_rows(out, model, test_path):
    """One prediction per row of ``test_path``, in order: those of the model on the whole frame."""
    spec = model.feature_dictionary_
    frame = DatasetSchema.from_dict(spec.schema).read(test_path, need_label=False)
    X = spec.transform(frame)
    written = pd.read_csv(out / "predictions.csv")
    assert len(written) == len(frame)
    np.testing.assert_allclose(written["prediction"], model.predict(X.Xi, X.Xv, X.Xs), rtol=1e-6, atol=1e-7)
    return written


# ------------------------------------------------------------------ 1. the real samples end to end
def test_criteo_kaggle_tsv_headerless_with_two_folds(shared_data, tmp_path, capsys):
    data = shared_data / "criteo" / "criteo_kaggle_train_head1000.tsv"
    schema = write_json(tmp_path / "schema.json", {
        "label": "label", "task": "binary", "sep": "\t", "header": False, "names": CRITEO_NAMES,
        "columns": {**{f"I{i}": {"kind": "numeric", "transform": "log1p"} for i in range(1, 14)},
                    "C3": {"kind": "hashed", "buckets": 500}}})
    out = tmp_path / "out"
    assert train("--train", data, "--test", data, "--schema", schema, "--out", out, "--folds", 2, "--epochs", 2,
                 "--params", small_params(tmp_path), "--quiet") == 0
    assert "validation auc" in capsys.readouterr().out
    summary, model = check_outputs(out, "binary", 2)
    assert summary["validation"] == {"folds": 2}
    assert model.n_epochs_ == max(1, round(np.mean([f["best_epoch"] + 1 for f in summary["folds"]])))
    kinds = {c.name: c.kind for c in model.feature_dictionary_.columns}
    assert kinds == {**{f"I{i}": "numeric" for i in range(1, 14)}, **{f"C{i}": "categorical" for i in range(1, 27)},
                     "C3": "hashed"}
    assert {c.transformation for c in model.feature_dictionary_.columns if c.kind == "numeric"} == {"log1p"}
    written = check_predictions_follow_rows(out, model, data)
    assert list(written.columns) == ["prediction"] and len(written) == 1000
    labels = pd.read_csv(data, sep="\t", header=None)[0].to_numpy()
    assert summary["test_metrics"]["auc"] == pytest.approx(roc_auc_score(labels, written["prediction"]), abs=1e-9)
    check_predict_reproduces(out, data, tmp_path)


def test_deepctr_criteo_csv_with_header(shared_data, tmp_path):
    data = shared_data / "criteo" / "deepctr_criteo_sample.csv"
    schema = write_json(tmp_path / "schema.json", {
        "label": "label", "task": "binary", "sep": ",", "header": True,
        "columns": {f"I{i}": {"kind": "numeric", "transform": "log1p"} for i in range(1, 14)}})
    out = tmp_path / "out"
    assert train("--train", data, "--test", data, "--schema", schema, "--out", out, "--epochs", 3,
                 "--params", small_params(tmp_path), "--quiet") == 0
    summary, model = check_outputs(out, "binary", 1)
    assert summary["validation"] == {"valid_frac": 0.2}
    assert summary["folds"][0]["valid_rows"] == 40 and summary["folds"][0]["train_rows"] == 160
    spec = model.feature_dictionary_
    assert spec.names == [c for c in CRITEO_NAMES if c != "label"]
    assert [c.kind for c in spec.columns[:13]] == ["numeric"] * 13
    assert len(check_predictions_follow_rows(out, model, data)) == 200
    check_predict_reproduces(out, data, tmp_path)


def test_deepctr_movielens_regression_with_genres_sequence_and_ranking(shared_data, tmp_path):
    data = shared_data / "movielens" / "deepctr_movielens_sample.csv"
    schema = write_json(tmp_path / "schema.json", {
        "label": "rating", "task": "regression",
        "columns": {"genres": {"kind": "sequence", "sep": "|", "max_len": 6},
                    "zip": {"kind": "hashed", "buckets": 1000},
                    "timestamp": {"kind": "ignore"}, "title": {"kind": "ignore"}}})
    out = tmp_path / "out"
    assert train("--train", data, "--test", data, "--schema", schema, "--out", out, "--epochs", 3,
                 "--params", small_params(tmp_path), "--group-col", "user_id", "--quiet") == 0
    summary, model = check_outputs(out, "regression", 1)
    spec = model.feature_dictionary_
    assert spec.names == ["user_id", "movie_id", "genres", "gender", "age", "occupation", "zip"]
    assert spec.sequence_fields == ["genres"]
    assert {c.name: c.kind for c in spec.columns}["zip"] == "hashed"
    genres = {g for cell in pd.read_csv(data)["genres"] for g in cell.split("|")}
    assert set(spec.columns[2].vocabulary_) <= genres  # tokens, not "Comedy|Drama" combinations
    assert set(summary["folds"][0]["metrics"]["ranking"]) == RANKING_KEYS
    assert set(summary["test_metrics"]["ranking"]) == RANKING_KEYS
    assert len(check_predictions_follow_rows(out, model, data)) == 200
    check_predict_reproduces(out, data, tmp_path)


def test_porto_with_id_missing_markers_and_unlabelled_test(shared_data, tmp_path):
    train_path = shared_data / "porto_seguro" / "train_head10000.csv"
    test_path = shared_data / "porto_seguro" / "test_head2000.csv"
    header = pd.read_csv(train_path, nrows=0).columns
    columns = {name: {"kind": "numeric", "missing": [-1]} for name in PORTO_NUMERIC}
    columns.update({name: {"kind": "ignore"} for name in header if name.startswith("ps_calc_")})
    schema = write_json(tmp_path / "schema.json", {"label": "target", "task": "binary", "id": "id",
                                                    "columns": columns})
    out = tmp_path / "out"
    assert train("--train", train_path, "--test", test_path, "--schema", schema, "--out", out, "--epochs", 2,
                 "--params", small_params(tmp_path), "--quiet") == 0
    summary, model = check_outputs(out, "binary", 1)
    assert summary["test_metrics"] is None and summary["test_rows"] == 2000  # the test file has no target
    spec = model.feature_dictionary_
    assert "id" not in spec.names and "target" not in spec.names
    assert not any(name.startswith("ps_calc_") for name in spec.names)
    numeric = {c.name: c for c in spec.columns if c.kind == "numeric"}
    assert sorted(numeric) == sorted(PORTO_NUMERIC)
    # -1 is left out of the statistics: the (training part's) mean is near the observed values' mean,
    # far from the mean counting the 1,790 markers
    raw = pd.read_csv(train_path, usecols=["ps_reg_03"])["ps_reg_03"]
    assert numeric["ps_reg_03"].center_ == pytest.approx(raw[raw != -1].mean(), rel=0.02)
    assert abs(numeric["ps_reg_03"].center_ - raw.mean()) > 0.2
    written = pd.read_csv(out / "predictions.csv", dtype={"id": str})
    assert list(written.columns) == ["id", "prediction"]
    assert written["id"].tolist() == pd.read_csv(test_path, usecols=["id"], dtype=str)["id"].tolist()
    assert written["prediction"].between(0, 1).all()
    check_predict_reproduces(out, test_path, tmp_path)


# ------------------------------------------------------------------ 2. metrics against scikit-learn
@pytest.fixture(scope="module")
def movielens_run(tmp_path_factory):
    """The generated MovieLens with its schema (genres a sequence), default parameters, ranking @10."""
    out = tmp_path_factory.mktemp("movielens") / "sequence"
    assert train("--train", MOVIELENS / "train.csv", "--test", MOVIELENS / "test.csv", "--schema",
                 MOVIELENS / "schema.json", "--out", out, "--epochs", 10, "--group-col", "user_id", "--quiet") == 0
    return out


def test_regression_test_metrics_are_sklearn_rmse_and_mae_of_the_predictions(movielens_run):
    summary = read_metrics(movielens_run)
    check_metrics(summary, "regression", 1)
    y = pd.read_csv(MOVIELENS / "test.csv")["rating"].to_numpy(np.float64)
    pred = pd.read_csv(movielens_run / "predictions.csv")["prediction"].to_numpy(np.float64)
    assert len(pred) == len(y) == summary["test_rows"] == 5000
    assert summary["test_metrics"]["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, pred)), abs=1e-9)
    assert summary["test_metrics"]["mae"] == pytest.approx(mean_absolute_error(y, pred), abs=1e-9)


def test_ranking_metrics_at_10_per_user_for_validation_and_test(movielens_run):
    summary = read_metrics(movielens_run)
    assert set(summary["folds"][0]["metrics"]["ranking"]) == RANKING_KEYS
    ranking = summary["test_metrics"]["ranking"]
    assert set(ranking) == RANKING_KEYS
    # Independently: relevant = rating >= 4; each user's top 10 by score (ties by row order),
    # precision divides by 10; users without a relevant rating are left out.
    test = pd.read_csv(MOVIELENS / "test.csv", usecols=["user_id", "rating"])
    test["score"] = pd.read_csv(movielens_run / "predictions.csv")["prediction"]
    test["relevant"], test["row"] = test["rating"] >= 4, np.arange(len(test))
    top = test.sort_values(["user_id", "score", "row"], ascending=[True, False, True]).groupby("user_id").head(10)
    hits = top.groupby("user_id")["relevant"].sum()
    users = test.groupby("user_id")["relevant"].any()
    hits = hits[users[users].index]
    assert ranking["users"] == int(users.sum())
    assert ranking["precision@10"] == pytest.approx((hits / 10).mean(), abs=1e-12)
    assert ranking["hit_rate@10"] == pytest.approx((hits > 0).mean(), abs=1e-12)
    assert all(0.0 <= ranking[k] <= 1.0 for k in RANKING_KEYS - {"users"})


def test_binary_test_metrics_are_sklearn_auc_and_logloss_of_the_predictions(tmp_path):
    out = tmp_path / "out"
    assert train("--train", CRITEO / "train.tsv", "--test", CRITEO / "test.tsv", "--schema", CRITEO / "schema.json",
                 "--out", out, "--epochs", 2, "--params", small_params(tmp_path), "--quiet") == 0
    summary = read_metrics(out)
    check_metrics(summary, "binary", 1)
    y = pd.read_csv(CRITEO / "test.tsv", sep="\t", header=None)[0].to_numpy()
    pred = pd.read_csv(out / "predictions.csv")["prediction"].to_numpy(np.float64)
    assert len(pred) == len(y) == 2000
    assert summary["test_metrics"]["auc"] == pytest.approx(roc_auc_score(y, pred), abs=1e-9)
    assert summary["test_metrics"]["logloss"] == pytest.approx(log_loss(y, pred), abs=1e-9)


# ------------------------------------------------------------------ 3. the acceptance check
def test_movielens_genres_as_sequence_beat_one_categorical_which_beats_ignored(movielens_run, tmp_path):
    """Same data, parameters and split; only the kind of ``genres`` differs."""
    base = json.loads((MOVIELENS / "schema.json").read_text(encoding="utf-8"))
    rmse = {"sequence": read_metrics(movielens_run)["test_metrics"]["rmse"]}
    for kind in ("categorical", "ignore"):
        columns = {**base["columns"], "genres": {"kind": kind}}
        schema = write_json(tmp_path / f"{kind}.json", {**base, "columns": columns})
        out = tmp_path / kind
        assert train("--train", MOVIELENS / "train.csv", "--test", MOVIELENS / "test.csv", "--schema", schema,
                     "--out", out, "--epochs", 10, "--quiet") == 0
        rmse[kind] = read_metrics(out)["test_metrics"]["rmse"]
    assert rmse["sequence"] < rmse["categorical"] < rmse["ignore"], rmse


def test_movielens_run_reports_field_importance_led_by_genres_and_draws_the_interactions(movielens_run):
    importance = read_metrics(movielens_run)["field_importance"]
    assert set(importance) == {"user_id", "movie_id", "gender", "age", "occupation", "zip", "genres"}
    assert sum(importance.values()) == pytest.approx(1.0)
    assert max(importance, key=importance.get) == "genres"  # the planted signal is mostly in the genres
    assert (movielens_run / "interactions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ 4. which model is saved
N_RARE = 6


@pytest.fixture(scope="module")
def planted_table(tmp_path_factory):
    """A binary table (900 rows): user, item, a number, tags, and ``rare`` whose values
    ``once_0`` ... are each in one row only (so in one fold's validation part and no training part);
    its schema, and parameters under which the folds stop at different epochs."""
    rng = np.random.default_rng(7)
    n = 900
    user, item = rng.integers(0, 30, n), rng.integers(0, 40, n)
    num = rng.normal(size=n).round(4)
    tags = ["|".join(rng.choice(list("pqrs"), rng.integers(0, 3), replace=False)) for _ in range(n)]
    logit = 0.8 * np.sin(user) + 0.8 * np.cos(item) + 0.7 * num - 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    rare = np.array(["common"] * n, dtype=object)
    rare[np.arange(N_RARE) * 150 + 3] = [f"once_{k}" for k in range(N_RARE)]
    directory = tmp_path_factory.mktemp("planted")
    path = directory / "train.csv"
    pd.DataFrame({"user": user, "item": item, "num": num, "tags": tags, "rare": rare, "y": y}).to_csv(path, index=False)
    schema = write_json(directory / "schema.json", {
        "label": "y", "task": "binary",
        "columns": {"num": {"kind": "numeric"}, "tags": {"kind": "sequence", "max_len": 3}}})
    params = write_json(directory / "params.json", {**SMALL_PARAMS, "learning_rate": 0.02})  # best epochs vary
    return path, schema, params


def train_planted(planted_table, out, *split):
    """deepfm-train on the planted table with ``split`` (``--folds K`` or ``--valid-frac P``), 6 epochs at most."""
    path, schema, params = planted_table
    assert train("--train", path, "--schema", schema, "--out", out, *split, "--epochs", 6, "--params", params,
                 "--quiet") == 0
    return check_outputs(out, "binary", split[1] if split[0] == "--folds" else 1)


def test_folds_final_model_is_fitted_on_all_rows_for_the_mean_best_epoch_count(planted_table, tmp_path):
    out = tmp_path / "out"
    summary, model = train_planted(planted_table, out, "--folds", 3)
    assert [f["valid_rows"] for f in summary["folds"]] == [300, 300, 300]
    assert len({f["best_epoch"] for f in summary["folds"]}) > 1, "the folds should stop at different epochs"
    assert model.n_epochs_ == round(np.mean([f["best_epoch"] + 1 for f in summary["folds"]]))
    assert json.loads((out / "model" / "model.json").read_text())["fitted"]["n_epochs_"] == model.n_epochs_
    columns = {c.name: c for c in model.feature_dictionary_.columns}
    assert {f"once_{k}" for k in range(N_RARE)} <= set(columns["rare"].vocabulary_)
    table = pd.read_csv(planted_table[0])
    assert columns["item"].vocabulary_ == sorted(table["item"].astype(str).unique())


def test_valid_frac_model_is_the_early_stopped_fold_model(planted_table, tmp_path):
    summary, model = train_planted(planted_table, tmp_path / "out", "--valid-frac", 0.25)
    fold = summary["folds"][0]
    assert summary["validation"] == {"valid_frac": 0.25} and fold["valid_rows"] == 225
    assert model.best_epoch_ == fold["best_epoch"]
    assert model.n_epochs_ == fold["epochs"]
    np.testing.assert_allclose(model.valid_result_, fold["valid_curve"], rtol=1e-12)
    assert model.valid_result_[model.best_epoch_] == pytest.approx(fold["metrics"]["auc"], abs=1e-6)
    rare = {c.name: c for c in model.feature_dictionary_.columns}["rare"]
    assert len([v for v in rare.vocabulary_ if v.startswith("once_")]) < N_RARE  # validation rows left out


# ------------------------------------------------------------------ 5. errors
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 300-row binary CSV (``uid``, ``a``, ``num``, ``tags`` with at most 2 values, ``y``), its
    schema and a model trained from them (1 epoch)."""
    from types import SimpleNamespace

    directory = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"uid": rng.integers(0, 20, n), "a": rng.choice(list("xyz"), n),
                          "num": rng.normal(size=n).round(3),
                          "tags": ["|".join(rng.choice(list("pqrs"), rng.integers(1, 3), replace=False))
                                   for _ in range(n)],
                          "y": rng.integers(0, 2, n)})
    path = directory / "train.csv"
    frame.to_csv(path, index=False)
    schema_dict = {"label": "y", "task": "binary", "id": "uid",
                   "columns": {"num": {"kind": "numeric"}, "tags": {"kind": "sequence", "max_len": 2}}}
    schema = write_json(directory / "schema.json", schema_dict)
    params = write_json(directory / "params.json", SMALL_PARAMS)
    out = directory / "out"
    assert train("--train", path, "--schema", schema, "--out", out, "--epochs", 1, "--params", params,
                 "--quiet") == 0
    return SimpleNamespace(dir=directory, frame=frame, path=path, schema=schema, schema_dict=schema_dict,
                           params=params, model=out / "model")


def train_error(capsys, tiny, tmp_path, *args, schema=None):
    """Run deepfm-train on the tiny table (or as ``args`` say); the exit status and its one error line."""
    capsys.readouterr()
    status = train("--train", tiny.path, "--schema", schema or tiny.schema, "--out", tmp_path / "out",
                   "--epochs", 1, "--params", tiny.params, "--quiet", *args)
    return status, error_line(capsys.readouterr().err, "deepfm-train")


def with_schema(tiny, tmp_path, **keys):
    return write_json(tmp_path / "schema.json", {**tiny.schema_dict, **keys})


def test_train_error_schema_column_absent_from_the_file(capsys, tiny, tmp_path):
    schema = with_schema(tiny, tmp_path, columns={**tiny.schema_dict["columns"], "price": {"kind": "numeric"}})
    status, line = train_error(capsys, tiny, tmp_path, schema=schema)
    assert status == 2 and "'price'" in line and "train.csv" in line


def test_train_error_tsv_with_a_header_read_with_comma_separator_hints_at_sep(capsys, tiny, tmp_path):
    tsv = tmp_path / "train.tsv"
    tiny.frame.to_csv(tsv, sep="\t", index=False)
    status, line = train_error(capsys, tiny, tmp_path, "--train", tsv)  # the later --train wins
    assert status == 2 and "train.tsv" in line and "'sep'" in line


def test_train_error_headerless_tsv_read_with_comma_separator_names_the_separator(capsys, tiny, tmp_path):
    schema = write_json(tmp_path / "criteo.json", {**json.loads((CRITEO / "schema.json").read_text()), "sep": ","})
    status, line = train_error(capsys, tiny, tmp_path, "--train", CRITEO / "train.tsv", schema=schema)
    assert status == 2 and "train.tsv" in line and "separator ','" in line


def test_train_error_unknown_kind(capsys, tiny, tmp_path):
    status, line = train_error(capsys, tiny, tmp_path, schema=with_schema(tiny, tmp_path, columns={
        "num": {"kind": "numerical"}}))
    assert status == 2 and "'num'" in line and "unknown kind 'numerical'" in line


def test_train_error_zero_buckets(capsys, tiny, tmp_path):
    status, line = train_error(capsys, tiny, tmp_path, schema=with_schema(tiny, tmp_path, columns={
        "a": {"kind": "hashed", "buckets": 0}}))
    assert status == 2 and "'a'" in line and "buckets" in line and "got 0" in line


def test_train_error_unknown_default_kind(capsys, tiny, tmp_path):
    status, line = train_error(capsys, tiny, tmp_path, schema=with_schema(tiny, tmp_path, default_kind="cat"))
    assert status == 2 and "'default_kind'" in line and "'cat'" in line


def test_train_error_label_2_in_a_binary_task_names_the_row(capsys, tiny, tmp_path):
    bad = tiny.frame.copy()
    bad.loc[3, "y"] = 2
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    status, line = train_error(capsys, tiny, tmp_path, "--train", path)
    assert status == 2 and "'y'" in line and "row 3" in line and "binary" in line


def test_train_error_missing_schema_file(capsys, tiny, tmp_path):
    status, line = train_error(capsys, tiny, tmp_path, schema=tmp_path / "nowhere.json")
    assert status == 2 and "nowhere.json" in line and "cannot be read" in line


def test_train_error_invalid_json_schema(capsys, tiny, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"label": "y",}', encoding="utf-8")
    status, line = train_error(capsys, tiny, tmp_path, schema=broken)
    assert status == 2 and "broken.json" in line and "not valid JSON" in line


@pytest.mark.parametrize("key, fragment", [("embeding_size", "unknown DeepFM parameter 'embeding_size'"),
                                           ("feature_size", "'feature_size' is set from the schema")])
def test_train_error_params_file_with_an_unknown_or_derived_key(capsys, tiny, tmp_path, key, fragment):
    params = write_json(tmp_path / "bad_params.json", {key: 4})
    status, line = train_error(capsys, tiny, tmp_path, "--params", params)
    assert status == 2 and fragment in line


def test_train_error_one_fold_is_an_argument_error(capsys, tiny, tmp_path):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train("--train", tiny.path, "--schema", tiny.schema, "--out", tmp_path / "out", "--folds", 1)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().split("\n")[-1] == "deepfm-train: error: --folds needs at least 2"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("column", ["num", "a"])  # named by the schema / a default-kind feature
def test_train_error_test_file_lacking_a_feature_column(capsys, tiny, tmp_path, column):
    test = tmp_path / "test.csv"
    tiny.frame.drop(columns=column).to_csv(test, index=False)
    status, line = train_error(capsys, tiny, tmp_path, "--test", test)
    assert status == 2 and "test.csv" in line and f"'{column}'" in line


def test_train_error_validation_row_longer_than_max_len_names_the_file_row(capsys, tiny, tmp_path):
    """With the default ``max_len`` (the longest training list) and ``--folds 2``, the one row
    holding three tags is in a validation part: its fold's spec allows two."""
    table = tiny.frame.copy()
    table.loc[7, "tags"] = "p|q|r"
    path = tmp_path / "one_long.csv"
    table.to_csv(path, index=False)
    schema = with_schema(tiny, tmp_path, columns={"num": {"kind": "numeric"}, "tags": {"kind": "sequence"}})
    capsys.readouterr()
    status = train("--train", path, "--schema", schema, "--out", tmp_path / "out", "--folds", 2, "--epochs", 1,
                   "--params", tiny.params, "--quiet")
    err = capsys.readouterr().err
    if status != 0:  # an error is fine if it says where: the file and its row
        line = error_line(err, "deepfm-train")
        assert "max_len" in line
        assert "one_long.csv" in line and "row 7" in line, line


def predict(capsys, *args):
    capsys.readouterr()
    status = cli.predict_main([str(a) for a in args])
    return status, error_line(capsys.readouterr().err, "deepfm-predict")


def test_predict_error_sequence_longer_than_max_len(capsys, tiny, tmp_path):
    table = tiny.frame.copy()
    table.loc[5, "tags"] = "p|q|r"
    path = tmp_path / "long.csv"
    table.to_csv(path, index=False)
    status, line = predict(capsys, "--model", tiny.model, "--input", path, "--output", tmp_path / "p.csv")
    assert status == 2 and "long.csv" in line and "'tags'" in line and "max_len=2" in line and "row 5" in line
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("column", ["num", "a"])
def test_predict_error_input_missing_a_feature_column(capsys, tiny, tmp_path, column):
    path = tmp_path / "input.csv"
    tiny.frame.drop(columns=column).to_csv(path, index=False)
    status, line = predict(capsys, "--model", tiny.model, "--input", path, "--output", tmp_path / "p.csv")
    assert status == 2 and f"'{column}'" in line


def test_predict_error_id_col_for_a_schema_model(capsys, tiny, tmp_path):
    status, line = predict(capsys, "--model", tiny.model, "--input", tiny.path, "--output", tmp_path / "p.csv",
                           "--id-col", "uid")
    assert status == 2 and "--id-col" in line


def test_predict_error_missing_model_directory(capsys, tiny, tmp_path):
    status, line = predict(capsys, "--model", tmp_path / "no_model", "--input", tiny.path,
                           "--output", tmp_path / "p.csv")
    assert status == 2 and "no_model" in line


def test_predict_writes_id_and_prediction_for_a_file_without_label(capsys, tiny, tmp_path):
    path = tmp_path / "unlabelled.csv"
    tiny.frame.drop(columns="y").to_csv(path, index=False)
    output = tmp_path / "p.csv"
    capsys.readouterr()
    assert cli.predict_main(["--model", str(tiny.model), "--input", str(path), "--output", str(output),
                             "--chunksize", "64"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 300 predictions to {output}"
    written = pd.read_csv(output)
    assert list(written.columns) == ["uid", "prediction"]
    assert written["uid"].tolist() == tiny.frame["uid"].tolist()


# ------------------------------------------------------------------ 6, 7. help, console scripts
def run_python(*args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


PORTO_FLAGS = ("--train", "--test", "--out", "--models", "--folds", "--params", "--epochs", "--layout")
BENCHMARK_FLAGS = ("--rows", "--test-rows", "--epochs", "--training-loop", "--json")


@pytest.mark.parametrize("main, flags", [("cli.train_main", TRAIN_FLAGS), ("cli.predict_main", PREDICT_FLAGS),
                                         ("cli.porto_main", PORTO_FLAGS), ("benchmark.main", BENCHMARK_FLAGS)])
def test_help_lists_every_flag_without_importing_tensorflow(main, flags):
    code = ("import sys\nfrom deepfm_graph import cli, benchmark\n"
            f"try:\n    {main}(['--help'])\nexcept SystemExit as exit:\n    print('exit', exit.code)\n"
            "print('tensorflow' in sys.modules)")
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.rstrip("\n").split("\n")
    assert lines[-2:] == ["exit 0", "False"]
    help_text = "\n".join(lines[:-2])
    assert [flag for flag in flags if flag not in help_text] == []


def test_pyproject_declares_the_console_scripts_and_each_resolves_to_a_function():
    tomllib = pytest.importorskip("tomllib")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts == {"deepfm-train": "deepfm_graph.cli:train_main", "deepfm-predict": "deepfm_graph.cli:predict_main",
                       "deepfm-porto": "deepfm_graph.cli:porto_main", "deepfm-benchmark": "deepfm_graph.benchmark:main"}
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_scripts_train_help_exits_0():
    result = run_python(str(ROOT / "scripts" / "train.py"), "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: deepfm-train") and "--schema" in result.stdout


@pytest.mark.slow
def test_deepfm_train_validates_on_a_separate_file(tmp_path):
    criteo = ROOT / "data" / "criteo"
    out = tmp_path / "out"
    assert cli.train_main(["--train", str(criteo / "train.tsv"), "--valid", str(criteo / "test.tsv"), "--schema",
                           str(criteo / "schema.json"), "--out", str(out), "--epochs", "2", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["validation"] == {"valid_files": [str(criteo / "test.tsv")]}
    assert (metrics["folds"][0]["train_rows"], metrics["folds"][0]["valid_rows"]) == (10_000, 2_000)
    model = DeepFM.load(out / "model")
    schema = DatasetSchema.load(criteo / "schema.json")
    test = schema.read(criteo / "test.tsv")
    T = model.feature_dictionary_.transform(test)
    assert metrics["folds"][0]["metrics"]["auc"] == pytest.approx(
        roc_auc_score(schema.labels(test), model.predict(T.Xi, T.Xv, T.Xs)), abs=1e-9)


@pytest.mark.slow
def test_deepfm_train_writes_a_tensorboard_run_per_fold_and_the_final_fit(tmp_path):
    criteo = ROOT / "data" / "criteo"
    board = tmp_path / "board"
    assert cli.train_main(["--train", str(criteo / "train.tsv"), "--schema", str(criteo / "schema.json"), "--out",
                           str(tmp_path / "out"), "--folds", "2", "--epochs", "2", "--tensorboard", str(board),
                           "--quiet"]) == 0
    assert sorted(p.name for p in board.iterdir()) == ["final", "fold_1", "fold_2"]
    assert all(len(list((board / run).glob("events.out.tfevents.*"))) == 1 for run in ("final", "fold_1", "fold_2"))


@pytest.mark.slow
def test_deepfm_train_says_when_the_predictions_collapse(tmp_path):
    criteo = ROOT / "data" / "criteo"
    (tmp_path / "p.json").write_text('{"learning_rate": 10.0}')
    with pytest.warns(UserWarning, match="collapsed to 0, 1"):
        assert cli.train_main(["--train", str(criteo / "train.tsv"), "--schema", str(criteo / "schema.json"), "--out",
                               str(tmp_path / "out"), "--epochs", "2", "--params", str(tmp_path / "p.json"),
                               "--quiet"]) == 0
    warnings = json.loads((tmp_path / "out" / "metrics.json").read_text())["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith("fold 1/1: the predictions have collapsed")
