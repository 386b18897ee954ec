"""``deepfm-train`` without installing the console script: ``python scripts/train.py --help``."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from deepfm_graph.cli import train_main as main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
