"""Progress bars for the command-line tools: one bar per fit over its epochs (the validation metric
as it goes), inside one bar over the fits (folds, models). Shown only on a terminal and without
``--quiet``; elsewhere (logs, pipes) the tools print their per-epoch lines instead.
"""
import sys

from tqdm.auto import tqdm


def bars_wanted(quiet, stream=None):
    """Whether to draw bars: not ``quiet`` and ``stream`` (default stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    return not quiet and hasattr(stream, "isatty") and stream.isatty()


class FitBars:
    """``fits`` bar over ``total`` fits; ``epochs(description, epochs)`` gives the ``on_epoch`` callback
    (``DeepFM.fit(on_epoch=...)``) of the next fit, which draws that fit's bar over its epochs.
    ``file``: where to draw (default stderr). A context manager; closing closes every bar."""

    def __init__(self, total, description="fits", file=None):
        self.file = file
        self.outer = tqdm(total=total, desc=description, unit="fit", file=file, position=0, leave=True)
        self.inner = None

    def epochs(self, description, epochs):
        self._close_inner()
        self.inner = tqdm(total=epochs, desc=description, unit="epoch", file=self.file, position=1, leave=False)

        def on_epoch(model, epoch):
            postfix = {}
            if model.train_result_:
                postfix[f"train {model.metric_name_}"] = f"{model.train_result_[-1]:.4f}"
            if model.valid_result_:
                postfix[f"valid {model.metric_name_}"] = f"{model.valid_result_[-1]:.4f}"
            self.inner.set_postfix(postfix, refresh=False)
            self.inner.update(epoch + 1 - self.inner.n)

        return on_epoch

    def write(self, line):
        """Print ``line`` above the bars."""
        tqdm.write(line, file=self.file)

    def fit_done(self):
        self._close_inner()
        self.outer.update(1)

    def _close_inner(self):
        if self.inner is not None:
            self.inner.close()
            self.inner = None

    def close(self):
        self._close_inner()
        self.outer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
