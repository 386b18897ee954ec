import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

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


@pytest.fixture(scope="session")
def planted():
    return make_planted()
