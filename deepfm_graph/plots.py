"""Learning curves as PNG files (matplotlib, the optional ``plot`` extra)."""
import importlib.util

import numpy as np

from .atomic import atomic_write


def available():
    """Whether matplotlib is installed (``pip install "deepfm_graph[plot]"``)."""
    return importlib.util.find_spec("matplotlib") is not None


def plot_learning_curves(path, folds, ylabel, title):
    """Write the train (solid) and validation (dashed) curves per epoch, one colour per fold, as a PNG.

    ``folds``: one ``(train_curve, valid_curve)`` pair of per-epoch lists per fold (either may be
    empty). Atomic. Returns False, writing nothing, when matplotlib is not installed.
    """
    if not available():
        return False
    # Imported here: matplotlib's figure machinery costs ~20 MB that training and prediction do not need.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for i, curves in enumerate(folds):
        for curve, style, part in zip(curves, ("solid", "dashed"), ("train", "valid")):
            if curve:
                axes.plot(np.arange(1, len(curve) + 1), curve, color=f"C{i % 10}", linestyle=style, marker="o",
                          markersize=3, label=f"{part}-{i + 1}")
    axes.set_xlabel("Epoch")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend()
    atomic_write(path, lambda f: figure.savefig(f, format="png", dpi=100), binary=True)
    return True
