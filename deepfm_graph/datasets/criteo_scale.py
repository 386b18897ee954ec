"""Criteo-shaped click logs at scale: millions of rows written as TSV in chunks, for the streaming benchmark.

The layout, the count columns and the missing-value groups are those of :mod:`.criteo` (Kaggle's
``train.txt``: ``label, I1..I13, C1..C26``, tab-separated, no header, an empty field where
missing). What differs is the size:

- the ``C`` vocabularies (:data:`VOCABULARIES`) follow Kaggle's cardinalities, capped at 10^6:
  five columns of 500,000 to 1,000,000 values, a few of 10^5, the rest from 3 to 15,000, each
  drawn from a Zipf law, so a column's distinct count keeps growing with the rows (most values of
  the big columns are seen a handful of times);
- rows are made and written in chunks of :data:`CHUNK_ROWS`, chunk ``k`` from its own seeded
  generator, so memory holds one chunk whatever the file's size, and the first rows of a file are
  those of any shorter file of the same seed;
- the planted signal (:data:`SIGNAL`) is :mod:`.criteo`'s, plus main effects of the 10^6-value
  ``C3`` and the 90,000-value ``C10``, which a model learns only for values frequent enough to be
  in its vocabulary. The intercept is fixed per seed (from a calibration sample), not per file.

:func:`write_criteo_tsv` writes a file; :data:`SCHEMA` reads it (``log1p`` counts, every ``C``
column categorical with ``min_count`` 10). The same arguments write byte-identical files.
"""
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from ..atomic import atomic_write
from . import criteo
from .criteo import C_COLUMNS, COLUMNS, I_COLUMNS, LABEL_COL, TARGET_RATE

VERSION = 2  # of the generated rows: part of the benchmark's file names, so a change never reuses old files
DEFAULT_SEED = 2024
CHUNK_ROWS = 50_000  # rows made at once, from one seeded generator (~20 MB of working memory; a few ms of overhead)
MIN_COUNT = 10

# column: (vocabulary size, Zipf exponent); Kaggle's cardinalities capped at 10^6. Missing groups
# and rates are criteo.CATEGORICAL_COLUMNS'.
VOCABULARIES = {
    "C1": (1_500, 1.1), "C2": (600, 1.1), "C3": (1_000_000, 1.05), "C4": (500_000, 1.05),
    "C5": (300, 1.5), "C6": (24, 1.0), "C7": (12_500, 0.95), "C8": (630, 1.3), "C9": (3, 4.0),
    "C10": (90_000, 1.0), "C11": (5_700, 0.95), "C12": (1_000_000, 1.05), "C13": (3_200, 0.95),
    "C14": (27, 1.0), "C15": (15_000, 0.95), "C16": (800_000, 1.05), "C17": (10, 0.8),
    "C18": (5_700, 1.0), "C19": (2_200, 1.2), "C20": (4, 0.5), "C21": (700_000, 1.05),
    "C22": (18, 1.5), "C23": (15, 1.2), "C24": (280_000, 1.0), "C25": (105, 1.2), "C26": (140_000, 1.0),
}

# Planted signal, as criteo.SIGNAL: column names -> weight (about the logit's standard deviation it adds).
SIGNAL = {**criteo.SIGNAL, ("C3",): 0.4, ("C10",): 0.3}
INTERACTION_DIM = criteo.INTERACTION_DIM
CALIBRATION_ROWS = 200_000  # rows whose planted scores fix the intercept

SCHEMA = {
    "label": LABEL_COL, "task": "binary", "id": None, "sep": "\t", "header": False, "names": list(COLUMNS),
    "default_kind": "categorical",
    "columns": {**{c: {"kind": "numeric", "transform": "log1p"} for c in I_COLUMNS},
                **{c: {"kind": "categorical", "min_count": MIN_COUNT} for c in C_COLUMNS}},
}

_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_TAB, _NEWLINE, _DIGIT_0, _MINUS = ord("\t"), ord("\n"), ord("0"), ord("-")
_STREAMS = {"world": 0, "train": 1, "test": 2, "calibration": 3}  # independent random streams of a seed


class World:
    """What every row of a seed shares: per ``C`` column the tokens (distinct 8-hex-digit strings, each
    as the uint64 of its 8 bytes, V) and the Zipf law's cumulative probabilities (V); the planted scores
    (main effects and FM vectors of the columns in :data:`SIGNAL`); the intercept giving
    :data:`~.criteo.TARGET_RATE`."""

    def __init__(self, seed):
        rng = np.random.default_rng([seed, _STREAMS["world"]])
        self.tokens, self.cumulative, probabilities = {}, {}, {}
        for column, (size, exponent) in VOCABULARIES.items():
            words = rng.choice(2 ** 32, size, replace=False).astype(np.uint32)
            hex_digits = _HEX[(words[:, None] >> np.arange(28, -1, -4, dtype=np.uint32)) & 0xF]  # V * 8
            self.tokens[column] = np.ascontiguousarray(hex_digits).view(np.uint64)[:, 0]
            p = np.arange(1, size + 1, dtype=float) ** -exponent
            probabilities[column] = p / p.sum()
            self.cumulative[column] = np.cumsum(probabilities[column])
        self.main, self.vectors = {}, {}
        for column in dict.fromkeys(c for term in SIGNAL for c in term if c in VOCABULARIES):
            p = probabilities[column]
            main = rng.standard_normal(len(p))
            main -= p @ main
            self.main[column] = main / np.sqrt(p @ main ** 2)  # mean 0, variance 1 over rows
            vectors = rng.standard_normal((len(p), INTERACTION_DIM))
            self.vectors[column] = vectors - p @ vectors
        for term in (t for t in SIGNAL if len(t) == 2):
            # Var <v_a, v_b> = trace(M_a M_b), M = E[v v^T], for independent a, b: scaled to 1.
            moments = [(self.vectors[c] * probabilities[c][:, None]).T @ self.vectors[c] for c in term]
            scale = np.trace(moments[0] @ moments[1]) ** -0.25
            for c in term:
                self.vectors[c] = self.vectors[c] * scale
        calibration = self.sample(np.random.default_rng([seed, _STREAMS["calibration"]]), CALIBRATION_ROWS)
        score = self.score(*calibration)
        self.intercept = brentq(lambda b: expit(score + b).mean() - TARGET_RATE, -30.0, 30.0, xtol=1e-12)

    def sample(self, rng, n_rows):
        """``(counts, indices)``: per ``I`` column float counts (NaN missing), per ``C`` column
        vocabulary indices (-1 missing)."""
        missing = criteo._missing_masks(rng, n_rows)
        counts = {c: criteo._sample_integers(rng, c, n_rows, missing[c]) for c in I_COLUMNS}
        indices = {}
        for column in C_COLUMNS:
            cumulative = self.cumulative[column]
            index = np.minimum(np.searchsorted(cumulative, rng.random(n_rows) * cumulative[-1], side="right"),
                               len(cumulative) - 1)
            indices[column] = np.where(missing[column], -1, index)
        return counts, indices

    def score(self, counts, indices):
        """The planted log-odds less the intercept of each row (float N)."""
        score = np.zeros(len(next(iter(indices.values()))))
        for term, weight in SIGNAL.items():
            if term[0] in I_COLUMNS:
                score += weight * criteo._integer_score(term[0], pd.Series(counts[term[0]]))
            elif len(term) == 1:
                index = indices[term[0]]
                score += weight * np.where(index >= 0, self.main[term[0]][index], 0.0)
            else:
                (a, b), known = term, (indices[term[0]] >= 0) & (indices[term[1]] >= 0)
                product = np.einsum("nk,nk->n", self.vectors[a][indices[a]], self.vectors[b][indices[b]])
                score += weight * np.where(known, product, 0.0)
        return score

    def labels(self, rng, counts, indices):
        """Bernoulli clicks (int64 N) with log-odds ``score + intercept``."""
        p = expit(self.score(counts, indices) + self.intercept)
        return (rng.random(len(p)) < p).astype(np.int64)


@lru_cache(maxsize=2)
def world(seed=DEFAULT_SEED):
    """The seed's :class:`World` (built once per process: ~2 s and ~150 MB for 4.3M vocabulary values)."""
    return World(seed)


def _digits(values, missing):
    """``values`` (int64 N, >= -1) as right-aligned ASCII digits (N * W uint8), 0 bytes in the unused
    leading places and in every place of a missing value."""
    width = max(2, len(str(int(values.max(initial=0)))))
    magnitude = np.abs(values)
    places = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = (magnitude[:, None] // places) % 10 + _DIGIT_0
    digits[(magnitude[:, None] < places) & (places > 1)] = 0  # leading zeros
    negative = values < 0
    digits[negative, -2] = _MINUS  # only -1 occurs
    digits[missing] = 0
    return digits.astype(np.uint8)


def tsv_lines(labels, counts, indices, tokens):
    """The rows as Kaggle's TSV lines, one uint8 array of bytes. ``tokens``: per ``C`` column the
    vocabulary's 8 token bytes as one uint64 (V).

    Each field is written into a fixed-width slot of a rows * width byte matrix, followed by its tab
    (the last by the newline), unused bytes 0; the lines are the matrix's non-zero bytes in row order.
    """
    blocks = [(labels.astype(np.uint8) + _DIGIT_0)[:, None]]
    for column in I_COLUMNS:
        missing = np.isnan(counts[column])
        blocks.append(_digits(np.where(missing, 0, counts[column]).astype(np.int64), missing))
    for column in C_COLUMNS:
        index = indices[column]
        words = tokens[column][np.maximum(index, 0)]
        words[index < 0] = 0
        blocks.append(words.view(np.uint8).reshape(len(index), 8))
    matrix = np.empty((len(labels), sum(block.shape[1] + 1 for block in blocks)), np.uint8)
    end = 0
    for block in blocks:
        start, end = end, end + block.shape[1]
        matrix[:, start:end] = block
        matrix[:, end] = _TAB
        end += 1
    matrix[:, -1] = _NEWLINE
    return matrix[matrix != 0]


def chunk_lines(seed, part, k, n_rows=CHUNK_ROWS):
    """Chunk ``k`` of the ``part`` (``"train"`` or ``"test"``) rows of ``seed``: its first ``n_rows``
    lines as bytes. A chunk's rows do not depend on the file's length."""
    w = world(seed)
    rng = np.random.default_rng([seed, _STREAMS[part], k])
    counts, indices = w.sample(rng, CHUNK_ROWS)
    labels = w.labels(rng, counts, indices)
    rows = slice(0, n_rows)
    return tsv_lines(labels[rows], {c: v[rows] for c, v in counts.items()},
                     {c: v[rows] for c, v in indices.items()}, w.tokens)


def write_criteo_tsv(path, n_rows, seed=DEFAULT_SEED, part="train"):
    """Write ``n_rows`` rows of ``part`` (``"train"`` or ``"test"``, independent rows of one world) to
    ``path`` as headerless TSV, chunk by chunk, atomically; returns ``path``."""
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    if n_rows < 1:
        raise ValueError(f"n_rows must be at least 1, got {n_rows}")

    def write(f):
        for k, start in enumerate(range(0, n_rows, CHUNK_ROWS)):
            f.write(chunk_lines(seed, part, k, min(CHUNK_ROWS, n_rows - start)).tobytes())

    atomic_write(path, write, binary=True)
    return path
