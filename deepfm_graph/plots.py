"""Learning curves as PNG files (matplotlib, the optional ``plot`` extra)."""
import importlib.util

import numpy as np

from .atomic import atomic_write


def available():
    """Whether matplotlib is installed (``pip install "deepfm_graph[plot]"``)."""
    return importlib.util.find_spec("matplotlib") is not None


def plot_learning_curves(path, folds, ylabel, title, best_epochs=None):
    """Write the train (solid) and validation (dashed) curves per epoch, one colour per fold, as a PNG.

    ``folds``: one ``(train_curve, valid_curve)`` pair of per-epoch lists per fold (either may be
    empty); ``best_epochs``: the 0-based best epoch of each fold, marked on its validation curve.
    All folds share one y-scale. Atomic. Returns False, writing nothing, when matplotlib is not installed.
    """
    if not available():
        return False
    # Imported here: matplotlib's figure machinery costs ~20 MB that training and prediction do not need.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(8, 5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for i, curves in enumerate(folds):
        for curve, style, part in zip(curves, ("solid", "dashed"), ("train", "valid")):
            if curve:
                axes.plot(np.arange(1, len(curve) + 1), curve, color=f"C{i % 10}", linestyle=style, marker="o",
                          markersize=3, label=f"fold {i + 1} {part}")
        best = None if best_epochs is None else best_epochs[i]
        if best is not None and best < len(curves[1]):
            axes.plot([best + 1], [curves[1][best]], color=f"C{i % 10}", marker="*", markersize=14,
                      linestyle="none", label=f"fold {i + 1} best epoch ({best + 1})")
    axes.set_xlabel("Epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(fontsize="small", ncol=len(folds) if len(folds) > 1 else 1)
    atomic_write(path, lambda f: figure.savefig(f, format="png", dpi=100), binary=True)
    return True


def plot_interactions(path, matrix, names, title, importance=None):
    """Write the field-interaction matrix (F * F, ``DeepFM.field_interactions``) as a heatmap PNG with
    the field names on both axes, fields sorted by ``importance`` (default: their interaction row
    sums), most important first, and a colour bar. Atomic; False without matplotlib."""
    if not available():
        return False
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix, dtype=np.float64)
    order = np.argsort(-(matrix.sum(1) if importance is None else np.asarray(importance)), kind="stable")
    size = min(4 + 0.28 * len(names), 22)
    figure = Figure(figsize=(size + 1.5, size))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(matrix[np.ix_(order, order)], cmap="viridis")
    labels = [names[i] for i in order]
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="mean |<v_i x_i, v_j x_j>|")
    figure.tight_layout()
    atomic_write(path, lambda f: figure.savefig(f, format="png", dpi=100), binary=True)
    return True
