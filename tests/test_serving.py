"""Serving: canonical keys, SavedModel signatures in a fresh process, CSV prediction and its script."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepfm_graph import DeepFM, serving
from deepfm_graph.features import FeatureDictionary

pytestmark = pytest.mark.slow  # exports SavedModels and loads them in fresh processes

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value,key", [
    ("abc", "abc"), ("1", "1"), (3, "3"), (-1, "-1"), (np.int64(7), "7"), (3.0, "3"), (np.float64(-1.0), "-1"),
    (0.5, "0.5"), (1e-05, "1e-05"), (True, "True"), (np.nan, ""), (None, ""), (float("inf"), "inf"),
])
def test_canonical_key_writes_ints_and_integral_floats_alike(value, key):
    assert serving.canonical_key(value) == key


def unusual_rows(test):
    """Test rows with unseen categories (int, string, float) and missing numerics (NaN, -1)."""
    df = test.copy()
    df.loc[:4, "ps_car_01_cat"] = 99
    df.loc[5:8, "region"] = "west"
    df.loc[9:12, "car_float"] = 99.5
    df.loc[13:16, "ps_reg_03"] = np.nan
    df.loc[17:20, "ps_car_14"] = -1.0
    return df


def test_saved_model_signatures_and_loaded_model_match_predict_in_fresh_process(raw_model, tmp_path):
    m, fd = raw_model.model, raw_model.fd
    df = unusual_rows(raw_model.test)
    Xi, Xv = fd.transform(df)
    assert fd.oov_counts_["ps_car_01_cat"] >= 5 and fd.oov_counts_["region"] == 4
    m.save(tmp_path / "model", feature_dictionary=fd)
    m.export_saved_model(tmp_path / "export", feature_dictionary=fd)
    raw = serving.raw_inputs(df, fd)
    np.savez(tmp_path / "inputs.npz", Xi=Xi, Xv=Xv, **{f"raw_{k}": np.asarray(v, dtype=np.float64 if k in
                                                                          fd.scaling_params else str)
                                                       for k, v in raw.items()})
    script = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf
        from deepfm_graph import DeepFM
        d = np.load(r"{tmp_path / 'inputs.npz'}")
        loaded = tf.saved_model.load(r"{tmp_path / 'export'}")
        raw = {{k[4:]: tf.constant(d[k]) for k in d.files if k.startswith("raw_")}}
        np.savez(r"{tmp_path / 'out.npz'}",
                 model=DeepFM.load(r"{tmp_path / 'model'}").predict(d["Xi"], d["Xv"]),
                 indexed=loaded.signatures["serving_default"](feat_index=tf.constant(d["Xi"]),
                                                              feat_value=tf.constant(d["Xv"]))["predictions"],
                 raw=loaded.signatures["predict_raw"](**raw)["predictions"])
    """)
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, cwd=ROOT)
    out, expected = np.load(tmp_path / "out.npz"), m.predict(Xi, Xv)
    np.testing.assert_array_equal(out["model"], expected)
    np.testing.assert_allclose(out["indexed"], expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out["raw"], expected, rtol=1e-6, atol=1e-7)


def test_raw_inputs_keep_missing_numerics_and_canonical_categories(raw_model):
    df = unusual_rows(raw_model.test)
    raw = serving.raw_inputs(df, raw_model.fd)
    assert set(raw) == set(raw_model.fd.fields)
    assert raw["ps_reg_03"].dtype == np.float64 and np.isnan(raw["ps_reg_03"][13])
    assert raw["ps_car_14"][17] == -1.0
    assert list(raw["ps_car_01_cat"][:1]) == ["99"] and raw["region"][5] == "west"
    assert set(raw["car_float"]) >= {"", "0", "99.5"}


def test_export_refuses_values_that_share_a_canonical_key(tmp_path):
    df = pd.DataFrame({"c": pd.Series([3, "3", 4, 3], dtype=object), "target": [0, 1, 0, 1]})
    fd = FeatureDictionary(dfTrain=df)
    Xi, Xv = fd.transform(df)
    model = DeepFM(feature_size=fd.feat_dim, embedding_size=2, deep_layers=(2,), dropout_deep=(1, 1), epoch=1,
                   eval_train=False).fit(Xi, Xv, df["target"])
    with pytest.raises(ValueError, match="'c' holds values .* share the canonical key '3'"):
        model.export_saved_model(tmp_path / "export", feature_dictionary=fd)
    assert not (tmp_path / "export").exists()


def test_predict_csv_streams_chunks_into_a_submission(raw_model, tmp_path):
    loaded_dir = tmp_path / "model"
    raw_model.model.save(loaded_dir, feature_dictionary=raw_model.fd)
    model = DeepFM.load(loaded_dir)
    df = unusual_rows(raw_model.test)
    df.to_csv(tmp_path / "in.csv", index=False)
    rows = serving.predict_csv(model, tmp_path / "in.csv", tmp_path / "out.csv", chunksize=37)
    out = pd.read_csv(tmp_path / "out.csv")
    assert rows == len(df) and list(out.columns) == ["id", "target"]
    np.testing.assert_array_equal(out["id"], df["id"])
    np.testing.assert_allclose(out["target"], raw_model.model.predict(*raw_model.fd.transform(df)), rtol=1e-6)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_predict_csv_chunk_with_a_stray_token_keeps_the_other_rows_categories(raw_model, tmp_path):
    # With chunks of 37 rows, only the second chunk holds the "?": pandas reads that chunk's
    # ps_car_01_cat as text, and a "7" there must still find the vocabulary's 7.
    df = raw_model.test.astype({"ps_car_01_cat": object})
    df.loc[40, "ps_car_01_cat"] = "?"
    df.to_csv(tmp_path / "in.csv", index=False)
    serving.predict_csv(raw_model.model, tmp_path / "in.csv", tmp_path / "out.csv", chunksize=37,
                        feature_dictionary=raw_model.fd)
    expected = raw_model.model.predict(*raw_model.fd.transform(df))  # in memory the ints stay ints
    np.testing.assert_allclose(pd.read_csv(tmp_path / "out.csv")["target"], expected, rtol=1e-6)
    assert raw_model.fd.count_oov(df)["ps_car_01_cat"] == 1


def test_predict_script_writes_the_same_submission(raw_model, tmp_path):
    raw_model.model.save(tmp_path / "model", feature_dictionary=raw_model.fd)
    raw_model.test.to_csv(tmp_path / "test.csv", index=False)
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "predict.py"), "--model", str(tmp_path / "model"),
                           "--input", str(tmp_path / "test.csv"), "--output", str(tmp_path / "sub.csv"),
                           "--chunksize", "64"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"wrote {len(raw_model.test)} predictions" in done.stdout
    expected = serving.predict_frame(DeepFM.load(tmp_path / "model"), raw_model.test)
    np.testing.assert_allclose(pd.read_csv(tmp_path / "sub.csv")["target"], expected, rtol=1e-6)


def test_saved_model_of_a_schema_model_serves_every_kind_in_a_fresh_process(tmp_path):
    """A FeatureSpec model (log1p, bucketize, min_count, hashed, mean and hashed-sum sequences):
    ``predict_raw`` on raw columns and ``serving_default`` on the arrays equal ``predict``."""
    from deepfm_graph.features import Categorical, FeatureSpec, Hashed, Numeric, Sequence

    rng = np.random.default_rng(5)
    n = 600
    tokens = np.array(["Comedy", "Drama", "Action", "War", "Noir"])

    def frame(rows):
        lists = ["|".join(rng.choice(tokens, size=rng.integers(0, 4), replace=False)) for _ in range(rows)]
        return pd.DataFrame({
            "count": np.where(rng.random(rows) < 0.1, np.nan, rng.geometric(0.05, rows) - 1.0),
            "price": rng.normal(10, 3, rows),
            "city": rng.choice(["a", "b", "c", "d", "rare"], rows, p=[.3, .3, .2, .19, .01]),
            "device": [f"dev{i}" for i in rng.integers(0, 5000, rows)], "genres": lists,
            "tags": ["/".join(rng.choice(tokens, size=rng.integers(1, 3))) for _ in range(rows)]})

    train, test = frame(n), frame(200)
    test.loc[0, "city"], test.loc[1, "genres"], test.loc[2, "tags"] = "never seen", "", "Unseen/Drama"
    spec = FeatureSpec([Numeric("count", transform="log1p"), Numeric("price", transform="bucketize", bins=5),
                        Categorical("city", min_count=10), Hashed("device", buckets=64),
                        Sequence("genres", max_len=3), Sequence("tags", sep="/", buckets=16, pooling="sum")])
    X = spec.fit_transform(train)
    y = (rng.random(n) < 0.3).astype(np.float32)
    model = DeepFM(feature_size=spec.feat_dim, embedding_size=4, deep_layers=(8,), dropout_deep=(1.0, 1.0),
                   epoch=2, batch_size=64, batch_norm=1, random_seed=1).fit(X.Xi, X.Xv, y, Xs=X.Xs)
    T = spec.transform(test)
    expected = model.predict(T.Xi, T.Xv, T.Xs)
    model.export_saved_model(tmp_path / "export", feature_dictionary=spec)
    raw = spec.raw_inputs(test)
    np.savez(tmp_path / "inputs.npz", Xi=T.Xi, Xv=T.Xv, **{f"s{s}_{k}": a for s, pair in enumerate(T.Xs)
                                                           for k, a in zip(("index", "weight"), pair)},
             **{f"raw_{k}": np.asarray(v, dtype=np.float64 if k in ("count", "price") else str)
                for k, v in raw.items()})
    script = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf
        d = np.load(r"{tmp_path / 'inputs.npz'}")
        loaded = tf.saved_model.load(r"{tmp_path / 'export'}")
        raw = {{k[4:]: tf.constant(d[k]) for k in d.files if k.startswith("raw_")}}
        seqs = {{f"seq_{{k}}_{{s}}": tf.constant(d[f"s{{s}}_{{k}}"]) for s in (0, 1) for k in ("index", "weight")}}
        np.savez(r"{tmp_path / 'out.npz'}",
                 indexed=loaded.signatures["serving_default"](feat_index=tf.constant(d["Xi"]),
                                                              feat_value=tf.constant(d["Xv"]), **seqs)["predictions"],
                 raw=loaded.signatures["predict_raw"](**raw)["predictions"])
    """)
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, cwd=ROOT)
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(out["indexed"], expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out["raw"], expected, rtol=1e-6, atol=1e-7)
    assert spec.oov_counts_["city"] >= 1  # the rare and the unseen city went to OOV, in both paths


def test_predict_csv_needs_no_id_column_and_reads_a_byte_order_mark(raw_model, tmp_path):
    expected = raw_model.model.predict(*raw_model.fd.transform(raw_model.test))
    (tmp_path / "bom.csv").write_text("\ufeff" + raw_model.test.to_csv(index=False), encoding="utf-8")
    serving.predict_csv(raw_model.model, tmp_path / "bom.csv", tmp_path / "a.csv", feature_dictionary=raw_model.fd)
    with_id = pd.read_csv(tmp_path / "a.csv")
    assert list(with_id.columns) == ["id", "target"] and with_id["id"].tolist() == raw_model.test["id"].tolist()
    raw_model.test.drop(columns="id").to_csv(tmp_path / "no_id.csv", index=False)
    serving.predict_csv(raw_model.model, tmp_path / "no_id.csv", tmp_path / "b.csv", feature_dictionary=raw_model.fd)
    without_id = pd.read_csv(tmp_path / "b.csv")
    assert list(without_id.columns) == ["target"]
    np.testing.assert_allclose(with_id["target"], expected, rtol=1e-6)
    np.testing.assert_allclose(without_id["target"], expected, rtol=1e-6)
