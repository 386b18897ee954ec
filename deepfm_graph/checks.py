"""Small checks and conversions that several modules share."""
import numbers

import numpy as np


def is_int(x):
    """An integer (Python or numpy), not a bool."""
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def is_real(x):
    """A real number (Python or numpy), not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def native(value):
    """A numpy scalar as the Python value it holds (for messages and JSON); anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


def repeated(names):
    """The names that occur more than once, sorted."""
    names = list(names)
    return sorted({name for name in names if names.count(name) > 1}, key=str)
