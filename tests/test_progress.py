"""Progress bars of the command-line tools: drawn on terminals only, one bar per fit over its epochs."""
import io

import numpy as np
from conftest import make_planted

from deepfm_graph import DeepFM
from deepfm_graph.progress import FitBars, bars_wanted


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bars_are_wanted_on_a_terminal_without_quiet_only():
    assert bars_wanted(False, _Terminal()) and not bars_wanted(True, _Terminal())
    assert not bars_wanted(False, io.StringIO())


def test_a_fits_bar_follows_the_epochs_and_scores_of_each_fit():
    Xi, Xv, y, feature_size = make_planted(n_rows=300, n_fields=3, values_per_field=4)
    out = _Terminal()
    with FitBars(2, file=out) as bars:
        for k in range(2):
            model = DeepFM(feature_size=feature_size, embedding_size=2, deep_layers=(4,), dropout_deep=(1.0, 1.0),
                           epoch=3, batch_size=64, verbose=False, eval_metric="auc")
            model.fit(Xi[:200], Xv[:200], y[:200], Xi[200:], Xv[200:], y[200:],
                      on_epoch=bars.epochs(f"fold {k + 1}/2", 3))
            assert bars.inner.n == 3 and bars.inner.postfix.endswith(f"valid auc={model.valid_result_[-1]:.4f}")
            bars.fit_done()
        assert bars.outer.n == 2
    text = out.getvalue()
    assert "fold 2/2" in text and "fits: 100%" in text and np.isfinite(model.valid_result_).all()
