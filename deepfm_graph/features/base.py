"""The feature-column contract and the registry of kinds.

A ``Column`` is one feature column of a table, of one *kind* (``numeric``, ``categorical``,
``hashed``, ``sequence``). It is declared with its options (the dataset schema's per-column
entry), fitted on the training rows only, and then owns ``size`` consecutive feature indices,
numbered from 0 here; ``FeatureSpec`` places the columns one after the other. Each kind owns:

    fit(values)          learn from a training Series; returns self. Or in one pass over chunks:
                         start_fit(), partial_fit(values) per chunk, finish_fit(). A kind defines
                         _accumulate(state, values) -> state (its running state: counts, moments,
                         a bounded sample) and _finish(state), which sets the fitted attributes.
    transform(values)    single-valued kinds: (index int64 N, value float32 N)
                         multi-valued kinds:  (index int32 N*L, weight float32 N*L)
    to_dict/from_dict    its options and fitted state as JSON-ready values, exactly
    raw_values(values)   the SavedModel ``predict_raw`` input for a Series (numpy, N)
    raw_lookup(tensor)   the same transform as TensorFlow ops on that input

A new kind subclasses ``Column``, sets ``kind`` and ``OPTIONS`` and is registered with
``@register``; nothing else needs to change.
"""
import difflib

import numpy as np
import pandas as pd

from ..checks import is_int, is_real  # noqa: F401  (the kinds' option checks import them from here)

KINDS = {}  # kind name -> Column subclass


def register(cls):
    KINDS[cls.kind] = cls
    return cls


def unknown_key_error(what, key, known):
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ValueError(f"{what}: unknown key {key!r}{hint}; known: {sorted(known)}")


class Column:
    """One feature column; see the module docstring. Fitted state ends in ``_``."""

    kind = None
    OPTIONS = {}  # option -> default
    ATTRIBUTES = {}  # option -> attribute, where the option's name is a method's (numeric "transform")
    multi_valued = False

    def __init__(self, name, **options):
        if not isinstance(name, str) or not name:
            raise TypeError(f"a column name must be a non-empty string, got {name!r}")
        self.name = name
        for key in options:
            if key not in self.OPTIONS:
                raise unknown_key_error(f"column {name!r} ({self.kind})", key, self.OPTIONS)
        for key, default in self.OPTIONS.items():
            setattr(self, self.ATTRIBUTES.get(key, key), options.get(key, default))
        self._check_options()

    def _check_options(self):
        """Raise ``ValueError`` naming the column for an invalid option."""

    # -- fitting: in one call, or in one pass over chunks (a file larger than memory)
    def fit(self, values):
        """Fit on the training Series ``values``; returns self."""
        return self.start_fit().partial_fit(values).finish_fit()

    def start_fit(self):
        self._running = None
        return self

    def partial_fit(self, values):
        """Take one chunk (a Series) of the training rows into the running state; returns self."""
        self._running = self._accumulate(self._running, values)
        return self

    def finish_fit(self):
        """Set the fitted attributes from the chunks taken so far; returns self."""
        state, self._running = self._running, None
        self._finish(state)
        return self

    def _accumulate(self, state, values):
        return state

    def _finish(self, state):
        raise NotImplementedError

    def _fail(self, problem):
        return ValueError(f"column {self.name!r} ({self.kind}): {problem}")

    @property
    def options(self):
        return {key: getattr(self, self.ATTRIBUTES.get(key, key)) for key in self.OPTIONS}

    @property
    def is_fitted(self):
        return hasattr(self, "size_")

    # -- serialisation: options plus the fitted state of each kind
    def fitted_state(self):
        return {}

    def set_fitted_state(self, state):
        raise NotImplementedError

    def to_dict(self):
        d = {"name": self.name, "kind": self.kind, **self.options}
        if self.is_fitted:
            d["fitted"] = self.fitted_state()
        return d

    @staticmethod
    def from_dict(d):
        d = dict(d)
        cls = KINDS[d.pop("kind")]
        fitted = d.pop("fitted", None)
        column = cls(d.pop("name"), **d)
        if fitted is not None:
            column.set_fitted_state(fitted)
        return column

    def __repr__(self):
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items() if v != self.OPTIONS[k])
        return f"{type(self).__name__}({self.name!r}{', ' + options if options else ''})"


def float_values(values, column, missing=()):
    """A Series as float64 plus its missing mask (NaN, empty or one of the ``missing`` markers).

    Raises ``ValueError`` naming the column and row (the Series' index label: a file's data row
    number for frames that ``DatasetSchema.read`` gives) for a non-numeric or infinite value.
    """
    if not pd.api.types.is_numeric_dtype(values):
        values = values.mask(values.astype(str).str.strip() == "")  # blank text is missing, as an empty CSV cell
    numbers = pd.to_numeric(values, errors="coerce")
    invalid = numbers.isna().to_numpy() & values.notna().to_numpy()
    if invalid.any():
        row = int(np.flatnonzero(invalid)[0])
        raise ValueError(f"numeric column {column!r} holds non-numeric {values.iloc[row]!r} at row {values.index[row]}")
    x = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(x).any():
        raise ValueError(f"numeric column {column!r} holds an infinite value at row "
                         f"{values.index[int(np.flatnonzero(np.isinf(x))[0])]}")
    missing_mask = np.isnan(x)
    if len(missing):
        missing_mask |= np.isin(x, np.asarray(missing, dtype=np.float64))
    return x, missing_mask
