"""Deterministic synthetic data shaped like Porto Seguro's ``train.csv`` / ``test.csv``.

Features
    The 37 non-calc columns are drawn together through a Gaussian copula: correlated standard
    normals (correlations from :data:`_porto_stats.CORRELATIONS`) are mapped through each
    column's real marginal distribution, so the -1 (missing) rates, value frequencies and
    quantiles match the real data and its strongest dependences are kept (weakened between
    discrete columns, as a Gaussian copula does). The 20 ``ps_calc_*`` columns are drawn
    independently: in the real data they are noise.

Label
    ``logit = intercept + sum(weight * product of field scores)`` over the terms of
    :data:`SIGNAL`. The score of a categorical or integer field is the real log-odds of its
    value (from the per-value target rates, shrunk toward the base rate), standardised to mean 0
    and variance 1; a continuous field's score is its normal score ``Phi^-1(F(x))`` (0 where
    missing). One-field terms are main effects; two-field terms are interactions of the
    factorization-machine form ``v_a[x_a] * v_b[x_b]`` that no main-effect model can represent.
    The intercept makes the expected target rate the real 3.64%. ``ps_calc_*`` carry nothing.
"""
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr, ndtri

from . import _porto_stats as stats
from .atomic import atomic_write
from .porto import FEATURE_COLUMNS, ID_COL, LABEL_COL, MISSING_VALUE

DEFAULT_TRAIN_ROWS = 10_000
DEFAULT_TEST_ROWS = 2_000
DEFAULT_SEED = 2017

# Planted signal: field names -> weight of the product of their scores. Scores have mean 0 and
# variance 1, so a weight is about the standard deviation its term adds to the logit.
SIGNAL = {
    ("ps_car_13",): 0.25,
    ("ps_ind_05_cat",): 0.2,
    ("ps_ind_17_bin",): 0.2,
    ("ps_ind_06_bin",): 0.15,
    ("ps_ind_15",): 0.15,
    ("ps_car_01_cat",): 0.15,
    ("ps_car_04_cat",): 0.15,
    ("ps_car_07_cat",): 0.15,
    ("ps_car_09_cat",): 0.1,
    ("ps_ind_05_cat", "ps_car_01_cat"): 0.4,
    ("ps_ind_15", "ps_car_06_cat"): 0.3,
    ("ps_ind_16_bin", "ps_car_09_cat"): 0.3,
    ("ps_car_13", "ps_reg_03"): 0.3,
}
# Rows of prior weight that pull a value's target rate toward the base rate.
SHRINKAGE_ROWS = 100

_CALC_COLUMNS = tuple(c for c in FEATURE_COLUMNS if c.startswith("ps_calc_"))
_COPULA_COLUMNS = tuple(c for c in FEATURE_COLUMNS if c not in _CALC_COLUMNS)


@cache
def _discrete_marginal(column):
    """Sorted values (-1 first) and their probabilities for a discrete column."""
    rows = [row for row in stats.VALUE_COUNTS[column] if row[0] != MISSING_VALUE]
    values = np.array([MISSING_VALUE] + [row[0] for row in rows])
    counts = np.array([row[1] for row in rows], dtype=float)
    missing = stats.MISSING_RATES.get(column, 0.0)
    return values, np.r_[missing, (1.0 - missing) * counts / counts.sum()]


def _quantile_function(column, u):
    """Map uniforms ``u`` to column values; the lowest ``missing rate`` of them become -1."""
    missing = stats.MISSING_RATES.get(column, 0.0)
    if column not in stats.QUANTILES:
        values, probabilities = _discrete_marginal(column)
        cumulative = np.cumsum(probabilities)
        return values[np.minimum(np.searchsorted(cumulative, u, side="right"), len(values) - 1)]
    x = np.interp((u - missing) / (1.0 - missing), stats.QUANTILE_LEVELS, stats.QUANTILES[column])
    scale = stats.SQRT_LATTICES.get(column)
    if scale:
        x = np.sqrt(np.round((x * scale) ** 2)) / scale
    return np.where(u < missing, float(MISSING_VALUE), np.round(x, 10))


@cache
def _copula_cholesky():
    """Cholesky factor of the copula correlation matrix over the non-calc columns."""
    index = {column: i for i, column in enumerate(_COPULA_COLUMNS)}
    corr = np.eye(len(index))
    for (a, b), r in stats.CORRELATIONS.items():
        corr[index[a], index[b]] = corr[index[b], index[a]] = r
    # The stored correlations are rounded and thresholded, so repair positive definiteness.
    eigenvalues, eigenvectors = np.linalg.eigh(corr)
    corr = (eigenvectors * np.maximum(eigenvalues, 0.01)) @ eigenvectors.T
    scale = np.sqrt(np.diag(corr))
    return np.linalg.cholesky(corr / np.outer(scale, scale))


def _sample_features(rng, n_rows):
    """A frame of the 57 feature columns with the real marginals."""
    normals = _copula_cholesky() @ rng.standard_normal((len(_COPULA_COLUMNS), n_rows))
    uniforms = dict(zip(_COPULA_COLUMNS, ndtr(normals)))
    uniforms.update((column, rng.random(n_rows)) for column in _CALC_COLUMNS)
    return pd.DataFrame({c: _quantile_function(c, uniforms[c]) for c in FEATURE_COLUMNS})


@cache
def _value_scores(column):
    """Sorted values of a discrete column and their standardised, shrunk real log-odds."""
    values, probabilities = _discrete_marginal(column)
    observed = {row[0]: row[1:] for row in stats.VALUE_COUNTS[column]}
    base = stats.TARGET_RATE
    rates = np.array([(n * rate + SHRINKAGE_ROWS * base) / (n + SHRINKAGE_ROWS)
                      for n, rate in (observed.get(v, (0, base)) for v in values)])
    log_odds = np.log(rates / (1.0 - rates))
    mean = probabilities @ log_odds
    std = np.sqrt(probabilities @ (log_odds - mean) ** 2)
    return values, (log_odds - mean) / std


def _field_score(column, x):
    """Score of each value of ``x`` (see the module docstring); unknown values score 0."""
    x = np.asarray(x, dtype=float)
    missing = x == MISSING_VALUE
    if column in stats.QUANTILES:
        rate = stats.MISSING_RATES.get(column, 0.0)
        u = rate + (1.0 - rate) * np.interp(x, stats.QUANTILES[column], stats.QUANTILE_LEVELS)
        return np.where(missing, 0.0, ndtri(np.clip(u, 1e-6, 1.0 - 1e-6)))
    values, scores = _value_scores(column)
    position = np.minimum(np.searchsorted(values, x), len(values) - 1)
    return np.where(values[position] == x, scores[position], 0.0)


def planted_score(df):
    """The planted log-odds of each row of ``df`` up to an additive constant, as a float array.

    ``df`` needs the fields named in :data:`SIGNAL`; it may be real Porto data.
    """
    scores = {c: _field_score(c, df[c]) for term in SIGNAL for c in term}
    return sum(weight * np.prod([scores[c] for c in term], axis=0)
               for term, weight in SIGNAL.items())


def _draw_labels(rng, score):
    """Bernoulli labels with log-odds ``score + intercept``; the intercept gives the real rate."""
    rate = stats.TARGET_RATE
    intercept = np.log(rate / (1.0 - rate))
    for _ in range(20 if len(score) else 0):  # Newton steps on mean(sigmoid(score + intercept)) = rate
        p = expit(score + intercept)
        intercept -= (p.mean() - rate) / (p * (1.0 - p)).mean()
    return (rng.random(len(score)) < expit(score + intercept)).astype(np.int64)


def make_porto_data(n_train=DEFAULT_TRAIN_ROWS, n_test=DEFAULT_TEST_ROWS, seed=0):
    """Return ``(train_df, test_df)`` with the real files' columns: id, [target], 57 ``ps_*``.

    Ids are unique, increasing and interleaved between train and test as in Kaggle's files.
    The same arguments always give identical frames.
    """
    if min(n_train, n_test) < 0:
        raise ValueError(f"row counts must be >= 0, got n_train={n_train}, n_test={n_test}")
    rng = np.random.default_rng(seed)
    is_train = np.zeros(n_train + n_test, dtype=bool)
    is_train[rng.choice(n_train + n_test, size=n_train, replace=False)] = True
    features = _sample_features(rng, n_train + n_test)
    train = features.iloc[:n_train].reset_index(drop=True)
    test = features.iloc[n_train:].reset_index(drop=True)
    train.insert(0, LABEL_COL, _draw_labels(rng, planted_score(train)))
    train.insert(0, ID_COL, np.flatnonzero(is_train))
    test.insert(0, ID_COL, np.flatnonzero(~is_train))
    return train, test


def write_porto_data(directory, n_train=DEFAULT_TRAIN_ROWS, n_test=DEFAULT_TEST_ROWS,
                     seed=DEFAULT_SEED):
    """Write ``train.csv`` and ``test.csv`` into ``directory``; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "train.csv", directory / "test.csv"
    for df, path in zip(make_porto_data(n_train, n_test, seed), paths):
        atomic_write(path, lambda f, df=df: df.to_csv(f, index=False, lineterminator="\n"))
    return paths


def ensure_sample_data(directory="data"):
    """Return the paths of the bundled sample in ``directory``, writing it first if absent."""
    paths = Path(directory) / "train.csv", Path(directory) / "test.csv"
    if all(path.exists() for path in paths):
        return paths
    return write_porto_data(directory)
