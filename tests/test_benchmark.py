"""The benchmark script keeps working (its figures are printed, never asserted as timings)."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark.py"


def test_benchmark_runs_tiny_and_writes_its_figures(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--rows", "600", "--test-rows", "200", "--holdout-rows", "300",
                          "--epochs", "2", "--batch-size", "128", "--json", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["rows"] == 600 and figures["epochs"] == 2 and figures["field_size"] == 39
    for key in ("parse_seconds", "train_samples_per_s_first_epoch", "train_samples_per_s_median",
                "predict_samples_per_s_median", "peak_rss_mb"):
        assert figures[key] > 0, key
    assert -1.0 <= figures["holdout_gini"] <= 1.0
    assert "train_samples_per_s_median" in run.stdout


def test_benchmark_rejects_nonpositive_sizes():
    run = subprocess.run([sys.executable, str(SCRIPT), "--rows", "0"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--rows must be at least 1" in run.stderr
