"""Deterministic synthetic click logs shaped like Criteo's Kaggle ``train.txt``.

Layout
    ``label, I1..I13, C1..C26`` (:data:`COLUMNS`), written tab-separated with no header and an
    empty field for a missing value, exactly as Kaggle's file. Every row is generated; none
    comes from Criteo.

Features
    ``I*`` are non-negative, heavy-tailed integer counts: a share of zeros, otherwise a rounded
    log-normal (:data:`INTEGER_COLUMNS`); ``I2`` also takes the real value -1 in 10% of rows.
    ``C*`` are 8-hex-digit tokens drawn from a Zipf law over a per-seed vocabulary
    (:data:`CATEGORICAL_COLUMNS`), from 3 values (``C9``-like) to tens of thousands
    (``C3``-like: most values seen once). Missing values come in groups, as in the real data:
    columns sharing a group are missing together (the rarer ones within the commoner ones).

Label
    ``logit = intercept + sum of terms`` (:data:`SIGNAL`):

    - main effects ``w * z(log1p(count))`` of a few ``I`` columns, with ``z`` standardising by
      the column's own log-normal (0 where missing);
    - main effects ``w * s[value]`` of a few ``C`` columns, ``s`` drawn normal per value and
      standardised to mean 0 and variance 1 under the column's value distribution;
    - two interactions of factorization-machine form ``w * <v_a[x_a], v_b[x_b]>`` between
      ``C`` columns, the vectors centred and scaled so that the product has mean 0 and
      variance 1 (0 where either is missing).

    The other columns carry nothing. The intercept gives a click rate of :data:`TARGET_RATE`.
    :func:`planted_score` returns the logit up to the intercept.
"""
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

DEFAULT_TRAIN_ROWS = 10_000
DEFAULT_TEST_ROWS = 2_000
DEFAULT_SEED = 2024

LABEL_COL = "label"
I_COLUMNS = tuple(f"I{i}" for i in range(1, 14))
C_COLUMNS = tuple(f"C{i}" for i in range(1, 27))
COLUMNS = (LABEL_COL,) + I_COLUMNS + C_COLUMNS
TARGET_RATE = 0.23

# Missing values come in groups: a column is missing where its group's uniform draw falls below
# the column's missing rate, so the columns of a group are missing together (nested by rate).
# column: (missing group, missing rate, share of zeros, log-normal median, log-normal sigma)
INTEGER_COLUMNS = {
    "I1": ("I1", 0.45, 0.45, 3.0, 1.2),
    "I2": (None, 0.0, 0.18, 20.0, 2.0),
    "I3": ("I3", 0.22, 0.01, 8.0, 1.4),
    "I4": ("I3", 0.21, 0.09, 6.0, 0.9),
    "I5": ("I5", 0.04, 0.02, 3000.0, 2.0),
    "I6": ("I3", 0.24, 0.06, 50.0, 1.5),
    "I7": ("I5", 0.04, 0.25, 6.0, 1.3),
    "I8": (None, 0.0, 0.12, 12.0, 0.9),
    "I9": ("I5", 0.04, 0.03, 50.0, 1.3),
    "I10": ("I1", 0.45, 0.52, 1.0, 0.3),
    "I11": ("I5", 0.04, 0.27, 2.0, 0.9),
    "I12": ("I1", 0.77, 0.70, 2.0, 1.2),
    "I13": ("I3", 0.21, 0.06, 7.0, 1.0),
}
I2_MINUS_ONE_RATE = 0.10

# column: (missing group, missing rate, vocabulary size, Zipf exponent)
CATEGORICAL_COLUMNS = {
    "C1": (None, 0.0, 400, 1.6),
    "C2": (None, 0.0, 1_500, 1.1),
    "C3": ("C3", 0.035, 50_000, 0.9),
    "C4": ("C3", 0.035, 30_000, 0.85),
    "C5": (None, 0.0, 150, 1.8),
    "C6": ("C6", 0.12, 6, 1.0),
    "C7": (None, 0.0, 10_000, 0.8),
    "C8": (None, 0.0, 200, 1.8),
    "C9": (None, 0.0, 3, 4.0),
    "C10": (None, 0.0, 20_000, 1.1),
    "C11": (None, 0.0, 4_000, 0.9),
    "C12": ("C3", 0.035, 50_000, 0.9),
    "C13": (None, 0.0, 3_000, 0.9),
    "C14": (None, 0.0, 15, 1.0),
    "C15": (None, 0.0, 5_000, 0.9),
    "C16": ("C3", 0.035, 40_000, 0.9),
    "C17": (None, 0.0, 9, 0.8),
    "C18": (None, 0.0, 2_000, 1.0),
    "C19": ("C19", 0.50, 800, 1.2),
    "C20": ("C19", 0.50, 3, 0.5),
    "C21": ("C3", 0.035, 45_000, 0.9),
    "C22": ("C22", 0.80, 8, 1.5),
    "C23": (None, 0.0, 12, 1.2),
    "C24": ("C3", 0.035, 15_000, 0.9),
    "C25": ("C19", 0.50, 60, 1.2),
    "C26": ("C19", 0.50, 5_000, 0.8),
}

# Planted signal: column names -> weight (about the standard deviation the term adds to the logit).
SIGNAL = {
    ("I6",): -0.4,
    ("I7",): 0.4,
    ("I11",): 0.45,
    ("C2",): 0.3,
    ("C6",): 0.5,
    ("C9",): 0.3,
    ("C14",): 0.5,
    ("C17",): 0.5,
    ("C6", "C14"): 0.6,
    ("C17", "C23"): 0.6,
}
INTERACTION_DIM = 2

# Schema roles of the C columns by vocabulary size: hashed from HASHED_VOCABULARY values on
# (thousands of values in a sample, most seen once), values seen once dropped from
# RARE_VOCABULARY on, plain categorical below.
HASHED_VOCABULARY = 10_000
HASH_BUCKETS = 2_000
RARE_VOCABULARY = 1_000


def _c_column_spec(size):
    if size >= HASHED_VOCABULARY:
        return {"kind": "hashed", "buckets": HASH_BUCKETS}
    return {"kind": "categorical", "min_count": 2}


SCHEMA = {
    "label": LABEL_COL, "task": "binary", "id": None, "sep": "\t", "header": False,
    "names": list(COLUMNS),
    "default_kind": "categorical",
    "columns": {
        **{c: {"kind": "numeric", "transform": "log1p"} for c in I_COLUMNS},
        **{c: _c_column_spec(size) for c, (_, _, size, _) in CATEGORICAL_COLUMNS.items() if size >= RARE_VOCABULARY},
    },
}


@lru_cache(maxsize=8)
def _vocabularies(seed):
    """Per seed: ``{column: (tokens, probabilities)}`` for the C columns (tokens are distinct
    8-hex-digit strings) and ``{column: (main effects, FM vectors)}`` for those in SIGNAL."""
    rng = np.random.default_rng(seed).spawn(2)[0]
    vocabularies = {}
    for column, (_, _, size, exponent) in CATEGORICAL_COLUMNS.items():
        tokens = np.char.mod("%08x", rng.choice(2 ** 32, size, replace=False)).astype(object)
        probabilities = np.arange(1, size + 1, dtype=float) ** -exponent
        vocabularies[column] = tokens, probabilities / probabilities.sum()
    signal_columns = dict.fromkeys(c for term in SIGNAL for c in term if c in CATEGORICAL_COLUMNS)
    scores = {}
    for column in signal_columns:
        p = vocabularies[column][1]
        main = rng.standard_normal(len(p))
        vectors = rng.standard_normal((len(p), INTERACTION_DIM))
        # Centred (and the main effect scaled) under the value distribution: mean 0 and
        # variance 1 over rows.
        main = (main - p @ main) / np.sqrt(p @ (main - p @ main) ** 2)
        scores[column] = main, vectors - p @ vectors
    for term in SIGNAL:
        if len(term) == 2:
            # Var <v_a, v_b> = trace(M_a M_b) for independent a, b, M = E[v v^T]: scale it to 1
            # (each column is in one pair only).
            (_, v_a), (_, v_b) = scores[term[0]], scores[term[1]]
            moments = [(v * vocabularies[c][1][:, None]).T @ v for c, v in zip(term, (v_a, v_b))]
            scale = np.trace(moments[0] @ moments[1]) ** -0.25
            v_a *= scale
            v_b *= scale
    return vocabularies, scores


def _sample_integers(rng, column, n_rows, missing):
    """Counts of ``column`` as float (NaN where ``missing``)."""
    _, _, zeros, median, sigma = INTEGER_COLUMNS[column]
    counts = np.maximum(1.0, np.rint(median * np.exp(sigma * rng.standard_normal(n_rows))))
    counts[rng.random(n_rows) < zeros] = 0.0
    if column == "I2":
        counts[rng.random(n_rows) < I2_MINUS_ONE_RATE] = -1.0
    counts[missing] = np.nan
    return counts


def _missing_masks(rng, n_rows):
    """Boolean missing mask of every column, nested within each missing group."""
    group_draws, masks = {}, {}
    for column, (group, rate, *_) in {**INTEGER_COLUMNS, **CATEGORICAL_COLUMNS}.items():
        if group is None:
            masks[column] = np.zeros(n_rows, dtype=bool)
            continue
        if group not in group_draws:
            group_draws[group] = rng.random(n_rows)
        masks[column] = group_draws[group] < rate
    return masks


def _sample_features(rng, n_rows, seed):
    """The I and C columns: I as nullable Int64, C as tokens with NaN where missing."""
    vocabularies, _ = _vocabularies(seed)
    missing = _missing_masks(rng, n_rows)
    data = {c: pd.array(_sample_integers(rng, c, n_rows, missing[c]), dtype="Int64") for c in I_COLUMNS}
    for column in C_COLUMNS:
        tokens, probabilities = vocabularies[column]
        values = tokens[rng.choice(len(tokens), size=n_rows, p=probabilities)]
        values[missing[column]] = np.nan
        data[column] = values
    return pd.DataFrame(data)


def _integer_score(column, values):
    """``log1p(count)`` standardised by the column's log-normal; 0 where missing."""
    _, _, _, median, sigma = INTEGER_COLUMNS[column]
    counts = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    z = (np.log1p(np.maximum(counts, 0.0)) - np.log1p(median)) / sigma
    return np.where(np.isnan(z), 0.0, np.clip(z, -3.0, 3.0))


def _token_index(column, values, seed):
    """Vocabulary index of each token of ``values``, -1 where missing or unknown."""
    tokens, _ = _vocabularies(seed)[0][column]
    return pd.Index(tokens).get_indexer(np.asarray(values, dtype=object))


def planted_score(df, seed=DEFAULT_SEED):
    """The planted log-odds of each row of ``df`` less the intercept, as a float array.

    ``df`` needs the columns named in :data:`SIGNAL`, with the tokens of ``seed``'s vocabularies.
    """
    _, scores = _vocabularies(seed)
    index = {c: _token_index(c, df[c], seed) for term in SIGNAL for c in term if c in scores}
    score = np.zeros(len(df))
    for term, weight in SIGNAL.items():
        if term[0] in INTEGER_COLUMNS:
            score += weight * _integer_score(term[0], df[term[0]])
        elif len(term) == 1:
            main, _ = scores[term[0]]
            score += weight * np.where(index[term[0]] >= 0, main[index[term[0]]], 0.0)
        else:
            a, b = term
            known = (index[a] >= 0) & (index[b] >= 0)
            product = np.einsum("nk,nk->n", scores[a][1][index[a]], scores[b][1][index[b]])
            score += weight * np.where(known, product, 0.0)
    return score


def _draw_labels(rng, score):
    """Bernoulli labels with log-odds ``score + intercept``; the intercept gives TARGET_RATE."""
    if len(score) == 0:
        return np.zeros(0, dtype=np.int64)
    intercept = brentq(lambda b: expit(score + b).mean() - TARGET_RATE, -30.0, 30.0, xtol=1e-12)
    return (rng.random(len(score)) < expit(score + intercept)).astype(np.int64)


def make_criteo(train_rows=DEFAULT_TRAIN_ROWS, test_rows=DEFAULT_TEST_ROWS, seed=DEFAULT_SEED):
    """Return ``(train_df, test_df)`` with :data:`COLUMNS`, both labelled. ``I*`` are nullable
    ``Int64``, ``C*`` strings with NaN where missing. The same arguments give identical frames."""
    if min(train_rows, test_rows) < 0:
        raise ValueError(f"row counts must be >= 0, got train_rows={train_rows}, test_rows={test_rows}")
    rng = np.random.default_rng(seed).spawn(2)[1]
    n_rows = train_rows + test_rows
    df = _sample_features(rng, n_rows, seed)
    df.insert(0, LABEL_COL, _draw_labels(rng, planted_score(df, seed)))
    return df.iloc[:train_rows].reset_index(drop=True), df.iloc[train_rows:].reset_index(drop=True)
