"""Write a synthetic MovieLens- or Criteo-shaped train/test pair and its schema.json into a directory.

    python scripts/make_data.py movielens --out data/movielens    # train.csv, test.csv, schema.json
    python scripts/make_data.py criteo --out data/criteo          # train.tsv, test.tsv, schema.json

Sizes and seed default to the generator's (see deepfm_graph/datasets/); the same arguments
always write byte-identical files.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepfm_graph.atomic import atomic_write  # noqa: E402
from deepfm_graph.datasets import criteo, movielens  # noqa: E402

# name -> (generator module, its make function, data file extension)
DATASETS = {
    "movielens": (movielens, movielens.make_movielens, "csv"),
    "criteo": (criteo, criteo.make_criteo, "tsv"),
}


def write_dataset(name, directory, train_rows=None, test_rows=None, seed=None):
    """Write ``train.<ext>``, ``test.<ext>`` and ``schema.json`` of dataset ``name`` into
    ``directory``; return their paths. ``None`` arguments take the generator's defaults."""
    module, make, extension = DATASETS[name]
    train_rows = module.DEFAULT_TRAIN_ROWS if train_rows is None else train_rows
    test_rows = module.DEFAULT_TEST_ROWS if test_rows is None else test_rows
    seed = module.DEFAULT_SEED if seed is None else seed
    schema = module.SCHEMA
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / f"train.{extension}", directory / f"test.{extension}", directory / "schema.json"
    for df, path in zip(make(train_rows, test_rows, seed), paths):
        atomic_write(path, lambda f, df=df: df.to_csv(f, sep=schema["sep"], header=schema["header"],
                                                      index=False, lineterminator="\n"))
    atomic_write(paths[2], lambda f: f.write(json.dumps(schema, indent=2) + "\n"))
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--train-rows", type=int, help="rows of the train file (default: the generator's)")
    parser.add_argument("--test-rows", type=int, help="rows of the test file (default: the generator's)")
    parser.add_argument("--seed", type=int, help="random seed (default: the generator's)")
    args = parser.parse_args(argv)
    for value, flag in ((args.train_rows, "--train-rows"), (args.test_rows, "--test-rows")):
        if value is not None and value < 0:
            parser.error(f"{flag} must be >= 0, got {value}")
    paths = write_dataset(args.dataset, args.out, args.train_rows, args.test_rows, args.seed)
    for path in paths:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
