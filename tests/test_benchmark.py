"""The benchmark script keeps working (its figures are printed, never asserted as timings)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark.py"


def test_benchmark_runs_tiny_and_writes_its_figures(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--rows", "4000", "--test-rows", "200", "--holdout-rows", "2000",
                          "--epochs", "3", "--batch-size", "128", "--json", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["rows"] == 4000 and figures["epochs"] == 3 and figures["field_size"] == 39
    for key in ("parse_seconds", "train_samples_per_s_first_epoch", "train_samples_per_s_median",
                "predict_samples_per_s_median", "peak_rss_mb"):
        assert figures[key] > 0, key
    assert figures["holdout_gini"] > 0.15  # the planted signal is learnt (0.36 in this run when written)
    assert "train_samples_per_s_median" in run.stdout


def test_benchmark_rejects_nonpositive_sizes():
    run = subprocess.run([sys.executable, str(SCRIPT), "--rows", "0"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--rows must be at least 1" in run.stderr
