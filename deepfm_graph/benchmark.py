"""Measure deepfm_graph's speed on Porto-shaped data with the classic DeepFM configuration.

Prints, and writes as JSON with --json: parse time (read CSV + feature dictionary + parse),
training samples/s per epoch (first epoch apart, then min / median), prediction samples/s,
peak RSS through parse, fit and predict, and then the gini reached on held-out labelled rows.

    deepfm-benchmark                       # 200k train + 100k test rows, 5 epochs
    deepfm-benchmark --training-loop feed  # the reference-style one-run-per-batch loop

(``python scripts/benchmark.py`` is the same.) Arguments are parsed before TensorFlow loads.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import configure_tensorflow
from .atomic import atomic_write
from .features import DataParser, FeatureDictionary
from .params import CLASSIC_PARAMS
from .porto import IGNORE_COLS, MISSING_VALUE, NUMERIC_COLS, add_engineered_features, read_porto_csv

# The classic configuration; epochs and batch size come from the arguments.
BENCHMARK_PARAMS = {**CLASSIC_PARAMS, "verbose": False, "eval_train": False}


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def parse_files(train_csv, test_csv):
    """The timed data path of train_porto.py: read and validate both CSVs, fit the dictionary, parse."""
    from .workflow import read_inputs

    train, test = read_inputs(train_csv, test_csv)
    fd = FeatureDictionary(dfTrain=train, numeric_cols=NUMERIC_COLS, ignore_cols=IGNORE_COLS,
                           missing_value=MISSING_VALUE)
    parser = DataParser(fd)
    return fd, parser.parse(df=train, has_label=True), parser.parse(df=test)


def write_data(directory, args):
    """Generate train / test / holdout CSVs in a child process, so its memory is not counted here.

    The holdout rows come from another seed of the same generator: the same planted signal.
    """
    code = ("import sys; from deepfm_graph.synthetic import make_porto_data as make; d, n, t, h, s = sys.argv[1:]; "
            "train, test = make(int(n), int(t), seed=int(s)); train.to_csv(d + '/train.csv', index=False); "
            "test.to_csv(d + '/test.csv', index=False); "
            "make(int(h), 1, seed=int(s) + 1)[0].to_csv(d + '/holdout.csv', index=False)")
    subprocess.run([sys.executable, "-c", code, str(directory), str(args.rows), str(args.test_rows),
                    str(args.holdout_rows), str(args.seed)], check=True)
    return (Path(directory, name) for name in ("train.csv", "test.csv", "holdout.csv"))


def run(args):
    from . import DeepFM, gini_norm
    from .workflow import read_inputs  # noqa: F401  (imported before the timed parse, which uses it)

    figures = {"rows": args.rows, "test_rows": args.test_rows, "holdout_rows": args.holdout_rows,
               "epochs": args.epochs, "batch_size": args.batch_size, "training_loop": args.training_loop,
               "cpu_count": os.cpu_count(), "rss_after_import_mb": round(peak_rss_mb())}
    with tempfile.TemporaryDirectory() as tmp:
        train_csv, test_csv, holdout_csv = write_data(tmp, args)
        start = time.perf_counter()
        fd, (Xi, Xv, y), (Xi_test, Xv_test, _) = parse_files(train_csv, test_csv)
        figures["parse_seconds"] = round(time.perf_counter() - start, 3)
        figures["rss_after_parse_mb"] = round(peak_rss_mb())
        figures.update(feature_size=fd.feat_dim, field_size=fd.field_size)

        model = DeepFM(**{**BENCHMARK_PARAMS, "epoch": args.epochs, "batch_size": args.batch_size},
                       feature_size=fd.feat_dim, field_size=fd.field_size, training_loop=args.training_loop)
        start = time.perf_counter()
        model.fit(Xi, Xv, y)
        figures["fit_seconds"] = round(time.perf_counter() - start, 2)
        rates = [Xi.shape[0] / s for s in model.epoch_seconds_]
        figures["train_samples_per_s_first_epoch"] = round(rates[0])
        steady = rates[1:] or rates
        figures["train_samples_per_s_min"] = round(min(steady))
        figures["train_samples_per_s_median"] = round(statistics.median(steady))

        timings = []
        for _ in range(3):
            start = time.perf_counter()
            model.predict(Xi_test, Xv_test)
            timings.append(time.perf_counter() - start)
        figures["predict_samples_per_s_median"] = round(Xi_test.shape[0] / statistics.median(timings))
        figures["peak_rss_mb"] = round(peak_rss_mb())  # the workload's: parse, fit and predict

        del Xi, Xv, y, Xi_test, Xv_test  # scoring the holdout rows is not part of the measured workload
        Xi_hold, Xv_hold, y_hold = DataParser(fd).parse(df=add_engineered_features(read_porto_csv(holdout_csv)),
                                                        has_label=True)
    figures["holdout_gini"] = round(gini_norm(y_hold, model.predict(Xi_hold, Xv_hold)), 4)
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(prog="deepfm-benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="training rows (default 200000)")
    parser.add_argument("--test-rows", type=int, default=100_000, help="unlabelled test rows (default 100000)")
    parser.add_argument("--holdout-rows", type=int, default=50_000, help="labelled rows for the gini (default 50000)")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default 5)")
    parser.add_argument("--batch-size", type=int, default=1024, help="training batch size (default 1024)")
    parser.add_argument("--training-loop", choices=("graph", "feed"), default="graph")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    for name in ("rows", "test_rows", "holdout_rows", "epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    configure_tensorflow()
    figures = run(args)
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        atomic_write(args.json, lambda f: json.dump(figures, f, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
