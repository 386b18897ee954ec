"""deepfm_graph: DeepFM (Guo et al., IJCAI 2017) as TensorFlow-1 graph code with a scikit-learn feel."""
import ctypes
import importlib.util
import os

__all__ = ["DeepFM", "gini", "gini_norm", "auc", "logloss", "rmse", "mae", "configure_tensorflow"]
__version__ = "0.2.0"

# Loaded on first use: TensorFlow (the estimator) takes seconds and ~700 MB to import and scikit-learn
# (the metrics) about a second, so ``deepfm-train --help`` and the feature modules stay light.
_LAZY = {"DeepFM": "estimator", **{name: "metrics" for name in ("gini", "gini_norm", "auc", "logloss", "rmse", "mae")}}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


MALLOC_ARENAS = 4  # glibc's default is 8 per core


def configure_tensorflow():
    """Set TensorFlow's start-up environment where unset; effective before TensorFlow's first import.

    ``TF_CPP_MIN_LOG_LEVEL=3`` silences its C++ start-up logs. ``TF_USE_LEGACY_KERAS=1``, set only
    when the ``tf_keras`` package is absent, stops ``import tensorflow`` from importing all of
    Keras 3, which deepfm_graph never uses (~150 MB and ~2 s less at import, measured); ``tf.keras``
    is then unavailable in the process. Unless ``MALLOC_ARENA_MAX`` is set, glibc's malloc gets at
    most ``MALLOC_ARENAS`` arenas (``_cap_malloc_arenas``). The scripts and tests call this; the
    package never does.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if importlib.util.find_spec("tf_keras") is None:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    if "MALLOC_ARENA_MAX" not in os.environ:
        _cap_malloc_arenas(MALLOC_ARENAS)


def _cap_malloc_arenas(n):
    """Limit glibc's malloc to ``n`` arenas for threads started from now on; False where not glibc.

    TensorFlow's thread pools would otherwise each take an arena and keep the memory freed in it
    (XLA's compilation heap, for one) from the others: peak RSS of the benchmark's parse + fit +
    predict 1,013-1,043 -> 959-1,008 MiB over 8 runs each, speed within noise (measured; 2 arenas
    or 1: prediction up to 25% slower).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, Windows)
        return False
    m_arena_max = -8  # from glibc's malloc.h
    return mallopt(ctypes.c_int(m_arena_max), ctypes.c_int(n)) == 1
