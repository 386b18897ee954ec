from pathlib import Path

import numpy as np
import pytest

import deepfm_graph

deepfm_graph.configure_tensorflow()

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data():
    """The licensed real samples beside the checkout; tests using them skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


def make_planted(n_rows=6000, n_fields=8, values_per_field=6, seed=0):
    """Categorical data whose label depends on first-order effects and a pairwise interaction."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, values_per_field, (n_rows, n_fields))
    Xi = (codes + np.arange(n_fields) * values_per_field).astype(np.int32)
    Xv = np.ones(Xi.shape, np.float32)
    effect = rng.normal(0, 1.0, n_fields * values_per_field)
    logit = -1.0 + effect[Xi].sum(1) * 0.5 + 1.5 * ((codes[:, 0] < 3) == (codes[:, 1] < 3))
    y = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return Xi, Xv, y, n_fields * values_per_field


def numpy_deep_layers(w, a, batch_norm):
    """The deep stack in numpy from ``get_weights()``: ReLU layers, batch norm with the moving statistics."""
    from deepfm_graph.graph import BATCH_NORM_EPSILON

    i = 0
    while f"layer_{i}" in w:
        a = a @ w[f"layer_{i}"] + w[f"bias_{i}"]
        if batch_norm:
            a = (a - w[f"bn_mean_{i}"]) / np.sqrt(w[f"bn_variance_{i}"] + BATCH_NORM_EPSILON)
            a = a * w[f"bn_scale_{i}"] + w[f"bn_offset_{i}"]
        a = np.maximum(a, 0)
        i += 1
    return a


def perturb_batch_norm(model, seed=5):
    """Set the fitted model's batch-norm statistics and affine parameters far from their initial 0 / 1
    (so an unfolded or ignored batch norm would show); returns the model's weights after that."""
    w, rng = model.get_weights(), np.random.default_rng(seed)
    i = 0
    while f"bn_mean_{i}" in w:
        units = w[f"bias_{i}"].shape
        w[f"bn_mean_{i}"] = rng.normal(0, 0.5, units).astype(np.float32)
        w[f"bn_variance_{i}"] = rng.uniform(0.05, 3.0, units).astype(np.float32)
        w[f"bn_scale_{i}"] = rng.uniform(0.3, 2.0, units).astype(np.float32)
        w[f"bn_offset_{i}"] = rng.normal(0, 0.5, units).astype(np.float32)
        i += 1
    model._set_weights(w)
    return w


@pytest.fixture(scope="session")
def planted():
    return make_planted()


RAW_NUMERIC = ("ps_reg_03", "ps_car_13", "ps_car_14")
RAW_MODEL_PARAMS = {"embedding_size": 4, "deep_layers": (8, 8), "epoch": 2, "batch_size": 64, "batch_norm": 1,
                    "eval_train": False, "random_seed": 3}


def make_raw_frames(n_train=600, n_test=200, seed=3):
    """Small Porto-shaped ``(train, test)`` frames: int categoricals, numerics with -1 for missing,
    a string categorical (``region``) and a float one holding NaN (``car_float``)."""
    from deepfm_graph.synthetic import make_porto_data

    frames = []
    for df in make_porto_data(n_train, n_test, seed):
        df = df[[c for c in ("id", "target") if c in df.columns]
                + ["ps_ind_05_cat", "ps_car_01_cat", "ps_car_03_cat", *RAW_NUMERIC]].copy()
        df["region"] = np.array(["north", "south", "east"])[df["id"] % 3]
        df["car_float"] = np.where(df["id"] % 7 == 0, np.nan, df["ps_ind_05_cat"] % 3 + 0.0)
        frames.append(df)
    return tuple(frames)


@pytest.fixture(scope="session")
def raw_model():
    """A small fitted DeepFM (batch norm on) with its FeatureDictionary and raw frames; don't mutate."""
    from types import SimpleNamespace

    from deepfm_graph import DeepFM
    from deepfm_graph.features import FeatureDictionary

    train, test = make_raw_frames()
    fd = FeatureDictionary(dfTrain=train, numeric_cols=RAW_NUMERIC, missing_value=-1)
    Xi, Xv = fd.transform(train)
    y = train["target"].to_numpy(np.float32)
    model = DeepFM(feature_size=fd.feat_dim, **RAW_MODEL_PARAMS).fit(Xi, Xv, y)
    return SimpleNamespace(model=model, fd=fd, train=train, test=test, Xi=Xi, Xv=Xv, y=y)
