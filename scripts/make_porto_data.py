"""Write a synthetic Porto-Seguro-shaped train.csv / test.csv (see deepfm_graph.synthetic)."""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepfm_graph import synthetic  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="data", help="output directory (default: data/)")
    parser.add_argument("--train-rows", type=int, default=synthetic.DEFAULT_TRAIN_ROWS)
    parser.add_argument("--test-rows", type=int, default=synthetic.DEFAULT_TEST_ROWS)
    parser.add_argument("--seed", type=int, default=synthetic.DEFAULT_SEED)
    args = parser.parse_args(argv)
    paths = synthetic.write_porto_data(args.out, args.train_rows, args.test_rows, args.seed)
    for path, rows in zip(paths, (args.train_rows, args.test_rows)):
        print(f"wrote {path} ({rows:,} rows, {path.stat().st_size / 1e6:.2f} MB, seed {args.seed})")


if __name__ == "__main__":
    main()
