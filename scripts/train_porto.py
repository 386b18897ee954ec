"""``deepfm-porto`` without installing the console script: ``python scripts/train_porto.py --help``.

Cross-validates DeepFM, FM and DNN on Porto Seguro data (the bundled sample by default).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from deepfm_graph.cli import porto_main as main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
