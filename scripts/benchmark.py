"""``deepfm-benchmark`` without installing the console script: ``python scripts/benchmark.py --help``."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from deepfm_graph.benchmark import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
