"""The bad-input catalogue: what the public API and the scripts do with bad input.

Each row of ``CASES`` is ``(id, call, expected exception, message regex)``. An exception
row expects that type with a message naming the column, argument or path, and never a
TensorFlow error; a ``HANDLED`` row documents an accepted input whose call must return
finite probabilities, one per row. ``SCRIPT_CASES`` run ``scripts/*.py`` and expect a
non-zero exit with a single ``<script>: error: ...`` line on stderr and no traceback.
"""
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd
import pytest
import tensorflow.compat.v1 as tf
from sklearn.exceptions import NotFittedError

from deepfm_graph import DeepFM, serving
from deepfm_graph.batches import FileSource
from deepfm_graph.estimator import DivergenceError
from deepfm_graph.features import (
    Categorical,
    DataParser,
    DatasetSchema,
    FeatureDictionary,
    FeatureSpec,
    Numeric,
    SchemaError,
    Sequence,
)

ROOT = Path(__file__).resolve().parents[1]
HANDLED = None


class World:
    """The inputs of the catalogue: a saved and reloaded model with its dictionary, frames, files."""

    def __init__(self, raw_model, directory):
        self.fd, self.test, self.train, self.dir = raw_model.fd, raw_model.test, raw_model.train, directory
        self.fitted = raw_model.model  # in memory, without a bundled dictionary
        self.Xi, self.Xv = self.fd.transform(self.test)
        self.saved = directory / "model"
        raw_model.model.save(self.saved, feature_dictionary=self.fd)
        self.model = DeepFM.load(self.saved)

    def frame(self, column=None, value=None, row=3):
        """A copy of the test frame with one cell replaced."""
        df = self.test.copy()
        if column is not None:
            df[column] = df[column].astype(object)
            df.loc[row, column] = value
        return df

    def predict_frame(self, df, feature_dictionary=None):
        return serving.predict_frame(self.model, df, feature_dictionary)

    def csv(self, text, name="input.csv"):
        path = self.dir / name
        path.write_text(text)
        return path

    def predict_csv(self, path, **kwargs):
        return serving.predict_csv(self.model, path, self.dir / "out.csv", **kwargs)

    def criteo_schema(self):
        return DatasetSchema.load(ROOT / "data" / "criteo" / "schema.json")

    def stream_source(self):
        """A fitted file source over the bundled Criteo-shaped sample."""
        source = FileSource(self.criteo_schema(), ROOT / "data" / "criteo" / "test.tsv", chunk_rows=1_000)
        source.fit_spec()
        return source

    def fit(self, Xi=None, Xv=None, y=None, checkpoint_dir=None, resume=False, **params):
        """A tiny fit on 60 test rows (or the given arrays)."""
        Xi = self.Xi[:60] if Xi is None else Xi
        Xv = self.Xv[:60] if Xv is None else Xv
        y = np.arange(60) % 2 if y is None else y
        model = DeepFM(**({"feature_size": self.fd.feat_dim, "epoch": 1, "embedding_size": 2, "deep_layers": (4,),
                           "dropout_deep": (1.0, 1.0)} | params))
        return model.fit(Xi, Xv, y, checkpoint_dir=checkpoint_dir, resume=resume)

    def broken_save(self, name, breaks):
        """A copy of the save whose ``name`` file ``breaks(path)`` spoils."""
        target = self.dir / f"broken-{name}-{len(list(self.dir.iterdir()))}"
        shutil.copytree(self.saved, target)
        breaks(target / name)
        return target

    @cached_property
    def checkpoints(self):
        """A one-epoch checkpointed run of ``fit()`` on 60 rows."""
        directory = self.dir / "checkpoints"
        self.fit(checkpoint_dir=directory)
        return directory

    @cached_property
    def narrow_fd(self):
        """A dictionary without the ``region`` field (one field fewer)."""
        return FeatureDictionary(dfTrain=self.train.drop(columns="region"), numeric_cols=self.fd.numeric_cols)

    @cached_property
    def wide_fd(self):
        """The same fields, with a vocabulary of one value per row for ``region``."""
        return FeatureDictionary(dfTrain=self.train.assign(region=self.train["id"].astype(str)),
                                 numeric_cols=self.fd.numeric_cols)

    @cached_property
    def retouched_fd(self):
        """Same fields and sizes, one scaling statistic changed: only the fingerprint differs."""
        d = self.fd.to_dict()
        d["fields"][[f["name"] for f in d["fields"]].index("ps_car_13")]["scaling"]["center"] += 0.5
        return FeatureDictionary.from_dict(d)


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def set_json(**changes):
    def breaks(path):
        path.write_text(json.dumps(json.loads(path.read_text()) | changes))
    return breaks


def diverged(w):
    """A model whose fit diverged (caught), as a user's script might keep it."""
    model = DeepFM(feature_size=w.fd.feat_dim, optimizer_type="gd", learning_rate=1e30, epoch=3,
                   embedding_size=2, deep_layers=(4,), dropout_deep=(1.0, 1.0))
    with pytest.raises(DivergenceError):
        model.fit(w.Xi[:60], w.Xv[:60], np.arange(60) % 2)
    return model


def schema(**entries):
    """A dataset schema for the Porto-shaped frames: label target, id id, plus ``entries``."""
    return DatasetSchema.from_dict({"label": "target", "id": "id", **entries})


def tsv_read_as_csv(w):
    path = w.csv(w.train.to_csv(sep="\t", index=False), "tabs.tsv")
    return schema().read(path)


@dataclass(frozen=True)
class Case:
    id: str
    call: Callable[[World], object]
    error: Optional[type]  # HANDLED: accepted, finite predictions
    match: str  # the message regex, or what the handling is


CASES = [
    # ---- raw frames through the bundled FeatureDictionary (serving.predict_frame)
    Case("unseen_int_category", lambda w: w.predict_frame(w.frame("ps_car_01_cat", 99)), HANDLED,
         "the field's OOV index"),
    Case("unseen_string_category", lambda w: w.predict_frame(w.frame("ps_car_01_cat", "abc")), HANDLED,
         "the field's OOV index"),
    Case("nan_numeric", lambda w: w.predict_frame(w.frame("ps_reg_03", np.nan)), HANDLED, "missing: 0.0"),
    Case("missing_value_numeric", lambda w: w.predict_frame(w.frame("ps_reg_03", -1)), HANDLED, "missing: 0.0"),
    Case("nan_category", lambda w: w.predict_frame(w.frame("ps_car_01_cat", np.nan)), HANDLED,
         "OOV index (or the NaN category when training had one)"),
    Case("pos_inf_numeric", lambda w: w.predict_frame(w.frame("ps_reg_03", np.inf)), ValueError,
         r"numeric column 'ps_reg_03' holds an infinite value"),
    Case("neg_inf_numeric", lambda w: w.predict_frame(w.frame("ps_car_13", -np.inf)), ValueError,
         r"numeric column 'ps_car_13' holds an infinite value"),
    Case("string_in_numeric", lambda w: w.predict_frame(w.frame("ps_car_13", "abc")), ValueError,
         r"numeric column 'ps_car_13' holds non-numeric 'abc' at row 3 \(id \d+\)"),
    Case("missing_column", lambda w: w.predict_frame(w.test.drop(columns="ps_car_13")), ValueError,
         r"lacks feature columns \['ps_car_13'\]"),
    Case("extra_column", lambda w: w.predict_frame(w.test.assign(extra="x")), HANDLED, "ignored"),
    Case("duplicated_column_names", lambda w: w.predict_frame(pd.concat([w.test, w.test[["ps_car_13"]]], axis=1)),
         ValueError, r"duplicated column names: \['ps_car_13'\]"),
    Case("not_a_dataframe", lambda w: w.predict_frame(w.test.to_numpy()), TypeError, "must be a pandas DataFrame"),
    Case("empty_frame", lambda w: w.predict_frame(w.test.iloc[:0]), ValueError, "has no rows"),
    Case("single_row", lambda w: w.predict_frame(w.test.iloc[:1]), HANDLED, "one prediction"),
    # ---- CSV files (serving.predict_csv, as scripts/predict.py)
    Case("empty_file", lambda w: w.predict_csv(w.csv("")), ValueError, r"input\.csv is empty"),
    Case("header_only", lambda w: w.predict_csv(w.csv(",".join(w.test.columns) + "\n")), ValueError,
         r"input\.csv has a header but no data rows"),
    Case("duplicated_csv_header", lambda w: w.predict_csv(w.csv("id,ps_car_13,ps_car_13\n1,2,3\n")), ValueError,
         r"input\.csv has duplicated column names: \['ps_car_13'\]"),
    Case("ragged_csv_row", lambda w: w.predict_csv(w.csv(w.test.to_csv(index=False) + "1,2,3,4,5,6,7,8,9,10,11\n")),
         ValueError, r"input\.csv could not be parsed: .*Expected \d+ fields"),
    Case("no_such_id_column", lambda w: w.predict_csv(w.csv(w.test.drop(columns="id").to_csv(index=False)),
                                                    id_col="id"), ValueError, r"has no id column 'id'"),
    Case("missing_input_file", lambda w: w.predict_csv(w.dir / "absent.csv"), FileNotFoundError, r"absent\.csv"),
    Case("output_directory_missing", lambda w: serving.predict_csv(w.model, w.csv("id\n1\n"), w.dir / "no" / "o.csv"),
         FileNotFoundError, r"the output directory .*no does not exist"),
    Case("chunksize_zero", lambda w: w.predict_csv(w.csv("id\n1\n"), chunksize=0), ValueError,
         "chunksize must be a positive integer"),
    # ---- labels
    Case("labels_outside_0_1", lambda w: w.fit(y=np.arange(60) % 3), ValueError,
         r"y_train must hold 0/1 labels for loss_type='logloss'; row 2 is 2"),
    Case("labels_nan", lambda w: w.fit(y=np.where(np.arange(60) == 7, np.nan, 0)), ValueError,
         "y_train holds a non-finite label at row 7"),
    Case("labels_none", lambda w: DeepFM().fit(w.Xi, w.Xv, None), ValueError, "y_train must be 1-D"),
    Case("labels_column_missing", lambda w: DataParser(w.fd).parse(df=w.test, has_label=True), ValueError,
         "label column 'target' is not in the frame"),
    Case("labels_nan_in_frame", lambda w: DataParser(w.fd).parse(df=w.train.assign(target=np.nan), has_label=True),
         ValueError, "label column 'target' holds missing or non-numeric values"),
    # ---- (Xi, Xv) arrays
    Case("xi_xv_shape_mismatch", lambda w: w.model.predict(w.Xi, w.Xv[:, :3]), ValueError,
         "Xi and Xv must have the same shape"),
    Case("ragged_lists", lambda w: w.fit(Xi=[[1, 2], [3]]), ValueError, "Xi_train must be a rectangular 2-D array"),
    Case("one_dimensional", lambda w: w.model.predict(w.Xi[0], w.Xv[0]), ValueError, r"Xi must be 2-D"),
    Case("index_ge_feature_size", lambda w: w.model.predict(w.Xi + w.fd.feat_dim, w.Xv), ValueError,
         r"Xi holds feature index \d+ >= feature_size=\d+ at row 0, field 0"),
    Case("negative_index", lambda w: w.model.predict(w.Xi - 1, w.Xv), ValueError,
         r"Xi holds a negative feature index at row \d+, field \d+"),
    Case("float_indices", lambda w: w.model.predict(w.Xi + 0.5, w.Xv), TypeError,
         "Xi must hold integer feature indices, got dtype float64"),
    Case("string_values", lambda w: w.model.predict(w.Xi, w.Xv.astype(str)), TypeError, "Xv must be numeric"),
    Case("nan_values", lambda w: w.model.predict(w.Xi, np.where(np.arange(8) == 2, np.nan, w.Xv)), ValueError,
         r"Xv holds a non-finite value \(NaN or inf\) at row 0, field 2"),
    # ---- parameters (checked by fit before any graph is built)
    Case("batch_size_zero", lambda w: w.fit(batch_size=0), ValueError, "batch_size must be a positive integer"),
    Case("batch_size_negative", lambda w: w.fit(batch_size=-8), ValueError, "batch_size must be a positive"),
    Case("epoch_zero", lambda w: w.fit(epoch=0), ValueError, "epoch must be a positive integer"),
    Case("epoch_negative", lambda w: w.fit(epoch=-3), ValueError, "epoch must be a positive integer, got -3"),
    Case("epoch_float", lambda w: w.fit(epoch=2.5), ValueError, "epoch must be a positive integer"),
    Case("embedding_size_zero", lambda w: w.fit(embedding_size=0), ValueError, "embedding_size must be"),
    Case("embedding_size_negative", lambda w: w.fit(embedding_size=-1), ValueError, "embedding_size must be"),
    Case("dropout_keep_zero", lambda w: w.fit(dropout_fm=(0.0, 1.0)), ValueError,
         r"dropout_fm must be 2 keep-probabilities in \(0, 1\]"),
    Case("dropout_keep_above_one", lambda w: w.fit(dropout_deep=(1.0, 1.5)), ValueError,
         r"dropout_deep must be 2 keep-probabilities in \(0, 1\]"),
    Case("unknown_optimizer", lambda w: w.fit(optimizer_type="sgd"), ValueError, "optimizer_type must be one of"),
    Case("unknown_activation", lambda w: w.fit(deep_layers_activation="swish"), ValueError,
         "deep_layers_activation must be a callable or one of"),
    Case("unknown_metric", lambda w: w.fit(eval_metric="accuracy"), ValueError, "eval_metric must be a callable or"),
    # ---- model lifecycle and dictionaries
    Case("predict_before_fit", lambda w: DeepFM().predict(w.Xi, w.Xv), NotFittedError, "not fitted yet"),
    Case("save_before_fit", lambda w: DeepFM().save(w.dir / "unfitted"), NotFittedError, "not fitted yet"),
    Case("save_custom_callable", lambda w: w.fit(eval_metric=lambda y, p: 0.0).save(w.dir / "custom"), ValueError,
         "cannot save eval_metric=.*pass a name instead"),
    Case("save_over_unrelated_directory", lambda w: w.model.save(w.dir), FileExistsError,
         "refusing to replace .*not a directory written by deepfm_graph"),
    Case("save_with_mismatched_dictionary", lambda w: w.model.save(w.dir / "m2", feature_dictionary=w.narrow_fd),
         ValueError, r"feature dictionary \(feat_dim=\d+, field_size=7\) does not match the model"),
    Case("xi_from_dictionary_with_fewer_fields", lambda w: w.model.predict(*w.narrow_fd.transform(w.test)),
         ValueError, "Xi has 7 fields, the model expects field_size=8"),
    Case("xi_from_dictionary_with_more_features", lambda w: w.model.predict(*w.wide_fd.transform(w.train)),
         ValueError, r"Xi holds feature index \d+ >= feature_size="),
    Case("frame_with_other_dictionary", lambda w: w.predict_frame(w.test, w.wide_fd), ValueError,
         r"feature dictionary \(feat_dim=\d+, field_size=8\) does not match the model"),
    Case("dictionary_with_other_fingerprint", lambda w: w.predict_frame(w.test, w.retouched_fd), ValueError,
         "differs from the one saved with the model"),
    Case("export_with_other_dictionary", lambda w: w.model.export_saved_model(w.dir / "x", w.retouched_fd),
         ValueError, "differs from the one saved with the model"),
    # ---- save directories
    Case("load_missing_directory", lambda w: DeepFM.load(w.dir / "nowhere"), FileNotFoundError,
         r"no saved model at .*nowhere: no such directory"),
    Case("load_a_file", lambda w: DeepFM.load(w.csv("x")), FileNotFoundError, r"input\.csv: not a directory"),
    Case("load_missing_metadata", lambda w: DeepFM.load(w.broken_save("model.json", Path.unlink)), ValueError,
         r"broken-model\.json-\d+ is not a complete deepfm_graph save: model\.json is missing"),
    Case("load_truncated_metadata", lambda w: DeepFM.load(w.broken_save("model.json", truncate)), ValueError,
         r"model\.json is corrupted"),
    Case("load_future_format", lambda w: DeepFM.load(w.broken_save("model.json", set_json(format_version=99))),
         ValueError, r"has format_version 99"),
    Case("load_truncated_weights", lambda w: DeepFM.load(w.broken_save("weights.data-00000-of-00001", truncate)),
         ValueError, r"cannot read the weights of the save at .*broken-weights\.data"),
    Case("load_truncated_weights_index", lambda w: DeepFM.load(w.broken_save("weights.index", truncate)),
         ValueError, r"cannot read the weights of the save at .*broken-weights\.index"),
    Case("load_tampered_dictionary", lambda w: DeepFM.load(w.broken_save("features.json", set_json(
        params=w.fd.to_dict()["params"] | {"missing_value": -2}))), ValueError,
         r"features\.json does not match the fingerprint recorded"),
    # ---- dataset schemas and typed feature columns (features/)
    Case("schema_absent_column", lambda w: schema(columns={"nope": {"kind": "numeric"}}).check_columns(
        w.train.columns, "train.csv"), SchemaError, r"train\.csv lacks the column 'nope' named by the schema"),
    Case("schema_unknown_kind", lambda w: schema(columns={"region": {"kind": "text"}}), SchemaError,
         r"column 'region': unknown kind 'text'"),
    Case("schema_unknown_key", lambda w: schema(lable="x"), SchemaError, r"unknown key 'lable' \(did you mean 'label'"),
    Case("schema_without_label", lambda w: DatasetSchema.from_dict({"task": "binary"}), SchemaError,
         r"'label' is required"),
    Case("schema_label_as_feature", lambda w: schema(columns={"target": {"kind": "numeric"}}), SchemaError,
         r"column 'target' is the label"),
    Case("schema_headerless_without_names", lambda w: schema(header=False), SchemaError, r"needs 'names'"),
    Case("schema_bad_task", lambda w: schema(task="ranking"), SchemaError, r"'task' must be one of"),
    Case("schema_wrong_separator", tsv_read_as_csv, SchemaError, r"is 'sep' \(','\) right"),
    Case("schema_binary_label_out_of_range", lambda w: schema().labels(w.train.assign(target=2)), SchemaError,
         r"label column 'target' holds 2 at row 0; task 'binary' needs 0/1"),
    Case("hashed_zero_buckets", lambda w: schema(columns={"region": {"kind": "hashed", "buckets": 0}}), SchemaError,
         r"column 'region' \(hashed\): buckets must be"),
    Case("numeric_unknown_transform", lambda w: Numeric("ps_car_13", transform="log"), ValueError,
         r"column 'ps_car_13' \(numeric\): transform must be one of"),
    Case("numeric_text_value", lambda w: Numeric("ps_car_13").fit(w.frame("ps_car_13", "abc")["ps_car_13"]),
         ValueError, r"numeric column 'ps_car_13' holds non-numeric 'abc' at row 3"),
    Case("categorical_min_count_zero", lambda w: Categorical("region", min_count=0), ValueError,
         r"column 'region' \(categorical\): min_count must be a positive integer"),
    Case("sequence_longer_than_max_len", lambda w: Sequence("g", max_len=2).fit(pd.Series(["a|b"])).transform(
        pd.Series(["a", "a|b|c"])), ValueError, r"column 'g' \(sequence\): row 1 holds 3 values, more than max_len=2"),
    Case("sequence_wrong_separator", lambda w: Sequence("g").fit(pd.Series(["a,b", "c,d", "e"])), ValueError,
         r"no value holds the separator sep='\|', but 67% hold ','"),
    Case("sequence_only_spec", lambda w: FeatureSpec([Sequence("g")]), ValueError, r"single-valued feature column"),
    Case("spec_frame_lacks_column", lambda w: FeatureSpec([Numeric("ps_car_13"), Categorical("gone")]).fit(w.train),
         ValueError, r"the training frame lacks feature columns \['gone'\]"),
    # ---- training that diverges (the model is left unfitted)
    Case("diverging_gradient_descent", lambda w: w.fit(optimizer_type="gd", learning_rate=1e30, epoch=2),
         DivergenceError, r"training diverged in epoch \d: a weight became NaN or infinite; lower learning_rate "
                          r"\(now 1e\+30\)"),
    Case("diverged_model_is_not_fitted", lambda w: diverged(w).predict(w.Xi, w.Xv), NotFittedError,
         "not fitted yet"),
    # ---- resumable training
    Case("resume_without_checkpoint_dir", lambda w: DeepFM().fit(w.Xi, w.Xv, np.zeros(len(w.Xi)), resume=True),
         ValueError, "resume=True needs checkpoint_dir"),
    Case("resume_with_other_params", lambda w: w.fit(learning_rate=0.5, checkpoint_dir=w.checkpoints, resume=True),
         ValueError, r"cannot resume .*parameters differ from the checkpoint's: learning_rate \(checkpoint 0.001"),
    Case("resume_with_other_data", lambda w: w.fit(Xi=w.Xi[:50], Xv=w.Xv[:50], y=np.arange(50) % 2,
                                                   checkpoint_dir=w.checkpoints, resume=True),
         ValueError, r"cannot resume .*data differ from the checkpoint's \(data_shapes"),
    Case("batch_norm_statistics_unknown", lambda w: w.fit(batch_norm=1, batch_norm_statistics="ema"), ValueError,
         r"batch_norm_statistics must be one of \('population', 'moving'\), got 'ema'"),
    Case("tensorboard_dir_not_a_path", lambda w: w.fit(tensorboard_dir=5), TypeError,
         "tensorboard_dir must be a directory path or None, got 5"),
    Case("stream_shuffle_window_negative", lambda w: DeepFM().fit_stream(w.stream_source(), shuffle_window=-1),
         ValueError, "shuffle_window must be an integer >= 0, got -1"),
    Case("stream_resume_without_checkpoint_dir", lambda w: DeepFM().fit_stream(w.stream_source(), resume=True),
         ValueError, "resume=True needs checkpoint_dir"),
    Case("stream_glob_matching_nothing", lambda w: FileSource(w.criteo_schema(), str(w.dir / "none_*.tsv")),
         ValueError, "no file matches"),
]


@pytest.fixture(scope="module")
def world(raw_model, tmp_path_factory):
    return World(raw_model, tmp_path_factory.mktemp("catalogue"))


def test_catalogue_has_unique_ids_and_covers_enough_cases():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 25


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case, world):
    if case.error is HANDLED:
        predictions = case.call(world)
        assert predictions.ndim == 1 and np.isfinite(predictions).all()
        assert ((predictions > 0) & (predictions < 1)).all()
        return
    with pytest.raises(case.error, match=case.match) as caught:
        case.call(world)
    assert not isinstance(caught.value, tf.errors.OpError)


# ---------------------------------------------------------------- scripts
def run_main(script, argv):
    """Run ``scripts/<script>``'s ``main(argv)`` in this process; return its exit status."""
    spec = importlib.util.spec_from_file_location(script.replace(".py", "_script"), ROOT / "scripts" / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return module.main(argv)
    except SystemExit as exit_:
        return exit_.code


def predict_argv(w, model=None, text=None, extra=()):
    path = w.csv(w.test.to_csv(index=False) if text is None else text, "script-input.csv")
    return ["--model", str(model or w.saved), "--input", str(path), "--output", str(w.dir / "sub.csv"), *extra]


def model_without_dictionary(w):
    w.fitted.save(w.dir / "bare")
    return w.dir / "bare"


@dataclass(frozen=True)
class ScriptCase:
    id: str
    script: str
    argv: Callable[[World], list]
    match: str  # regex for the one error line


def train_argv(w, schema_dict, extra=()):
    """deepfm-train on the catalogue's training frame with the schema ``schema_dict``."""
    path = w.csv(w.train.to_csv(index=False), "train-input.csv")
    schema_path = w.dir / "schema.json"
    schema_path.write_text(json.dumps(schema_dict))
    return ["--train", str(path), "--schema", str(schema_path), "--out", str(w.dir / "train-out"), "--quiet", *extra]


def porto_argv(train, *extra):
    return ["--train", str(train), "--test", str(train), "--quiet", *extra]


SCRIPT_CASES = [
    ScriptCase("predict_missing_model", "predict.py", lambda w: predict_argv(w, model=w.dir / "nowhere"),
               "no saved model at .*nowhere"),
    ScriptCase("predict_model_without_dictionary", "predict.py",
               lambda w: predict_argv(w, model=model_without_dictionary(w)), "the model has no feature dictionary"),
    ScriptCase("predict_empty_input", "predict.py", lambda w: predict_argv(w, text=""), "script-input.csv is empty"),
    ScriptCase("predict_header_only", "predict.py", lambda w: predict_argv(w, text="id,ps_car_13\n"),
               "header but no data rows"),
    ScriptCase("predict_missing_column", "predict.py",
               lambda w: predict_argv(w, text=w.test.drop(columns="region").to_csv(index=False)),
               r"lacks feature columns \['region'\]"),
    ScriptCase("predict_duplicated_columns", "predict.py", lambda w: predict_argv(w, text="id,region,region\n1,a,b\n"),
               r"duplicated column names: \['region'\]"),
    ScriptCase("predict_chunksize_zero", "predict.py", lambda w: predict_argv(w, extra=("--chunksize", "0")),
               "chunksize must be a positive integer"),
    ScriptCase("train_schema_absent_column", "train.py",
               lambda w: train_argv(w, {"label": "target", "columns": {"nope": {"kind": "numeric"}}}),
               r"train-input\.csv lacks the column 'nope' named by the schema"),
    ScriptCase("train_schema_unknown_kind", "train.py",
               lambda w: train_argv(w, {"label": "target", "columns": {"region": {"kind": "txt"}}}),
               r"column 'region': unknown kind 'txt'"),
    ScriptCase("train_schema_zero_buckets", "train.py",
               lambda w: train_argv(w, {"label": "target", "columns": {"region": {"kind": "hashed", "buckets": 0}}}),
               r"column 'region' \(hashed\): buckets must be"),
    ScriptCase("train_missing_schema_file", "train.py",
               lambda w: ["--train", str(w.csv("a,target\n1,0\n")), "--schema", str(w.dir / "absent.json")],
               r"schema file .*absent\.json.* cannot be read"),
    ScriptCase("train_unknown_param", "train.py", lambda w: train_argv(w, {"label": "target"}) + ["--params", str(
        w.csv('{"embeding_size": 4}', "params.json"))], r"unknown DeepFM parameter 'embeding_size'"),
    ScriptCase("train_diverging", "train.py", lambda w: train_argv(w, {"label": "target", "id": "id"}) + [
        "--params", str(w.csv('{"optimizer_type": "gd", "learning_rate": 1e30}', "diverge.json"))],
               r"training diverged in epoch \d+: a weight became NaN or infinite; lower learning_rate"),
    ScriptCase("train_porto_diverging", "train_porto.py", lambda w: [
        "--models", "deepfm", "--folds", "2", "--epochs", "3", "--learning-rate", "1e30", "--quiet", "--out",
        str(w.dir / "porto-out"), "--params", str(w.csv('{"optimizer_type": "gd"}', "gd.json"))],
               r"training diverged in epoch \d+"),
    ScriptCase("train_porto_missing_train_file", "train_porto.py", lambda w: porto_argv(w.dir / "absent.csv"),
               r"absent\.csv"),
    ScriptCase("train_porto_empty_train_file", "train_porto.py", lambda w: porto_argv(w.csv("", "empty.csv")),
               r"empty\.csv.* empty"),
    ScriptCase("train_porto_missing_columns", "train_porto.py", lambda w: porto_argv(w.csv("id,target\n1,0\n")),
               "missing feature column 'ps_ind_01'"),
    ScriptCase("train_porto_zero_epochs", "train_porto.py", lambda w: ["--epochs", "0", "--quiet"],
               "epoch must be a positive integer, got 0"),
    ScriptCase("train_porto_negative_batch_size", "train_porto.py", lambda w: ["--batch-size", "-1", "--quiet"],
               "batch_size must be a positive integer, got -1"),
]


PROGS = {"predict.py": "deepfm-predict", "train.py": "deepfm-train", "train_porto.py": "deepfm-porto"}


@pytest.mark.parametrize("case", SCRIPT_CASES, ids=[case.id for case in SCRIPT_CASES])
def test_script_bad_input_exits_with_one_error_line(case, world, capsys):
    status = run_main(case.script, case.argv(world))
    err = capsys.readouterr().err
    assert status not in (0, None)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{PROGS[case.script]}: error: "), err
    assert "Traceback" not in err and re.search(case.match, lines[0]), lines[0]


def test_predict_script_in_a_subprocess_fails_with_one_error_line(world):
    bad = world.frame("ps_reg_03", np.inf).to_csv(index=False)
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "predict.py"), *predict_argv(world, text=bad)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    ours = [line for line in done.stderr.splitlines() if line.startswith("deepfm-predict")]  # TF logs its own lines
    assert ours == [done.stderr.strip().splitlines()[-1]], done.stderr
    assert ours[0].startswith("deepfm-predict: error: numeric column 'ps_reg_03' holds an infinite value")
    assert not (world.dir / "sub.csv").exists()
