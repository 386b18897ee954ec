"""The console scripts ``deepfm-train`` and ``deepfm-predict`` (thin: arguments in, library calls out).

Arguments are parsed, and ``--help`` answers, before TensorFlow is imported. Exit status 2:
bad arguments, schema, parameters or input files, with one ``<prog>: error: ...`` line.
"""
import argparse
import sys
import time
from pathlib import Path


def _positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"need a positive integer, got {text!r}")
    return int(text)


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"need a fraction in (0, 1), got {text!r}")
    return value


def train_parser():
    parser = argparse.ArgumentParser(
        prog="deepfm-train",
        description="Train DeepFM on any CSV/TSV described by a dataset schema (binary or regression).",
        epilog="Writes to --out: metrics.json, learning_curve.png, model/ (for deepfm-predict) and, with "
               "--test, predictions.csv (what model/ predicts for that file). With --folds K the model is a "
               "final fit on all training rows for the folds' mean best epoch count; with --valid-frac it "
               "is the model early-stopped on the held-out rows.")
    parser.add_argument("--train", required=True, type=Path, help="training file (CSV/TSV, as the schema says)")
    parser.add_argument("--test", type=Path, help="file to predict (its label, if present, is scored)")
    parser.add_argument("--schema", required=True, type=Path, help="dataset schema JSON (label, task, columns, ...)")
    parser.add_argument("--out", type=Path, default=Path("output"), help="output directory (default: output/)")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--folds", type=_positive_int, help="K-fold cross-validation (stratified for binary)")
    split.add_argument("--valid-frac", type=_fraction,
                       help="held-out validation fraction (default 0.2 when --folds is not given)")
    parser.add_argument("--epochs", type=_positive_int, help="maximum epochs (default 20; early stopping, patience 3)")
    parser.add_argument("--params", type=Path, metavar="P.json", help="JSON object of DeepFM parameters")
    parser.add_argument("--group-col", help="user column: report precision/recall/NDCG/MAP/hit rate @10 per user")
    parser.add_argument("--quiet", action="store_true", help="print only the final metrics")
    return parser


def _fail(parser, err):
    print(f"{parser.prog}: error: {' '.join(str(err).split())}", file=sys.stderr)
    return 2


def train_main(argv=None):
    parser = train_parser()
    args = parser.parse_args(argv)
    if args.folds is not None and args.folds < 2:
        parser.error("--folds needs at least 2")
    from . import configure_tensorflow

    configure_tensorflow()
    from .experiment import Experiment, resolve_params, write_outputs
    from .features import DatasetSchema
    from .jsonfiles import read_json_object

    start = time.perf_counter()
    progress = None if args.quiet else print
    try:
        schema = DatasetSchema.load(args.schema)
        params = resolve_params(schema.task, read_json_object(args.params, "params file") if args.params else None,
                                args.epochs)
        if args.test is not None:  # before training: every feature column must be in the test file
            features = schema.feature_spec(schema.file_columns(args.train)).names
            test_columns = schema.file_columns(args.test)
            schema.check_columns(test_columns, str(args.test), need_label=False)
            absent = [name for name in features if name not in test_columns]
            if absent:
                raise ValueError(f"{args.test} lacks feature columns {absent}")
        experiment = Experiment(schema, args.train, params, args.test, args.folds, args.valid_frac, args.group_col,
                                progress)
        model = experiment.run()
        summary = write_outputs(experiment, model, args.out)
    except (ValueError, TypeError, OSError) as err:
        return _fail(parser, err)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; each file under {args.out} is whole (written atomically)", file=sys.stderr)
        return 130
    print(_report(summary, args.out, time.perf_counter() - start))
    return 0


def _report(summary, out, seconds):
    lines = ["validation " + ", ".join(f"{k} {v:.5f}" for k, v in summary["valid_mean"].items())]
    ranking = summary["folds"][0]["metrics"].get("ranking")
    if ranking:
        lines.append("validation ranking " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                                      for k, v in ranking.items()))
    test = summary.get("test_metrics")
    if test:
        lines.append("test " + ", ".join(f"{k} {v:.5f}" for k, v in test.items() if k != "ranking"))
        if test.get("ranking"):
            lines.append("test ranking " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                                    for k, v in test["ranking"].items()))
    lines.append(f"wrote {out}/ [{seconds:.1f} s]")
    return "\n".join(lines)


def predict_parser():
    parser = argparse.ArgumentParser(
        prog="deepfm-predict", description="Predict a CSV/TSV with a model saved by deepfm-train (or DeepFM.save).",
        epilog="A deepfm-train model reads the file as its schema says (separator, header, names; the label "
               "may be absent) and writes a 'prediction' column, after the id column when the schema has one. "
               "A model saved with a classic FeatureDictionary writes id,target rows.")
    parser.add_argument("--model", required=True, type=Path, help="model directory (deepfm-train's out/model)")
    parser.add_argument("--input", required=True, type=Path, help="file to predict")
    parser.add_argument("--output", required=True, type=Path, help="CSV to write")
    parser.add_argument("--chunksize", type=int, default=100_000, help="rows read at a time (default 100000)")
    parser.add_argument("--id-col", help="classic models only: the id column (default: the dictionary's id_col)")
    return parser


def predict_main(argv=None):
    parser = predict_parser()
    args = parser.parse_args(argv)
    from . import configure_tensorflow

    configure_tensorflow()
    from . import serving
    from .estimator import DeepFM
    from .features import FeatureSpec

    try:
        model = DeepFM.load(args.model)
        if isinstance(model.feature_dictionary_, FeatureSpec):
            if args.id_col is not None:
                raise ValueError("--id-col is for classic models; a schema model takes its id column from the schema")
            rows = serving.predict_table(model, args.input, args.output, args.chunksize)
        else:
            rows = serving.predict_csv(model, args.input, args.output, args.chunksize, args.id_col)
    except (ValueError, TypeError, OSError) as err:
        return _fail(parser, err)
    print(f"wrote {rows:,} predictions to {args.output}")
    return 0
