"""The console scripts ``deepfm-train``, ``deepfm-predict`` and ``deepfm-porto`` (thin: arguments in, library
calls out).

Arguments are parsed, and ``--help`` answers, before TensorFlow is imported. Exit status 2:
bad arguments, schema, parameters or input files, with one ``<prog>: error: ...`` line.
"""
import argparse
import sys
import time
from pathlib import Path

from .params import (
    CLASSIC_PARAMS,
    DEFAULT_CHUNK_ROWS,
    DEFAULT_SHUFFLE_WINDOW,
    LAYOUTS,
    PORTO_FOLDS,
    PORTO_MODELS,
    TRAIN_PARAMS,
    VALID_FRAC,
)


def _positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"need a positive integer, got {text!r}")
    return int(text)


def _count(text):
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"need an integer >= 0, got {text!r}")
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
    parser.add_argument("--train", required=True, nargs="+", metavar="FILE",
                        help="training file (CSV/TSV as the schema says; .gz etc. read as such); with --stream also "
                             "several files or a quoted glob pattern such as 'logs/day_*.tsv.gz'")
    parser.add_argument("--test", type=Path, help="file to predict (its label, if present, is scored)")
    parser.add_argument("--schema", required=True, type=Path, help="dataset schema JSON (label, task, columns, ...)")
    parser.add_argument("--out", type=Path, default=Path("output"), help="output directory (default: output/)")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--folds", type=_positive_int, help="K-fold cross-validation (stratified for binary)")
    split.add_argument("--valid-frac", type=_fraction,
                       help=f"held-out validation fraction (default {VALID_FRAC} when --folds is not given)")
    split.add_argument("--valid", nargs="+", metavar="FILE", help="validation file(s) instead of held-out rows")
    parser.add_argument("--epochs", type=_positive_int, help=f"maximum epochs (default {TRAIN_PARAMS['epoch']}; "
                        f"early stopping, patience {TRAIN_PARAMS['patience']})")
    parser.add_argument("--params", type=Path, metavar="P.json", help="JSON object of DeepFM parameters")
    parser.add_argument("--group-col", help="user column: report precision/recall/NDCG/MAP/hit rate @10 per user")
    parser.add_argument("--stream", action="store_true",
                        help="train from the files in chunks, never loading them whole")
    stream = parser.add_argument_group("with --stream")
    stream.add_argument("--chunk-rows", type=_positive_int, default=DEFAULT_CHUNK_ROWS,
                        help=f"rows per chunk (default {DEFAULT_CHUNK_ROWS})")
    stream.add_argument("--shuffle-window", type=_count, default=DEFAULT_SHUFFLE_WINDOW,
                        help=f"rows kept back from each chunk to be shuffled with the next (default "
                             f"{DEFAULT_SHUFFLE_WINDOW}; 0: shuffle within chunks only)")
    stream.add_argument("--cache-dir", type=Path, help="keep the encoded chunks here between epochs and runs "
                        "(default: a temporary directory, removed at the end)")
    stream.add_argument("--checkpoint-dir", type=Path, help="save the training state here every chunk and epoch")
    stream.add_argument("--resume", action="store_true", help="go on from --checkpoint-dir's last checkpoint")
    parser.add_argument("--tensorboard", type=Path, metavar="DIR",
                        help="write TensorBoard summaries (with --folds: DIR/fold_<k>, DIR/final)")
    parser.add_argument("--quiet", action="store_true", help="print only the final metrics (no progress bars)")
    return parser


def _bars(quiet, fits):
    """``progress.FitBars`` over ``fits`` fits on a terminal without ``--quiet``; else None."""
    from .progress import FitBars, bars_wanted

    return FitBars(fits) if bars_wanted(quiet) else None


def _fail(parser, err):
    print(f"{parser.prog}: error: {' '.join(str(err).split())}", file=sys.stderr)
    return 2


def train_main(argv=None):
    parser = train_parser()
    args = parser.parse_args(argv)
    if args.folds is not None and args.folds < 2:
        parser.error("--folds needs at least 2")
    if not args.stream:
        given = [flag for flag, value in (("--checkpoint-dir", args.checkpoint_dir), ("--resume", args.resume),
                                          ("--cache-dir", args.cache_dir)) if value]
        if given or len(args.train) > 1:
            parser.error(f"{given[0] if given else 'several --train files'} needs --stream")
    if args.resume and args.checkpoint_dir is None:
        parser.error("--resume needs --checkpoint-dir")
    from . import configure_tensorflow

    configure_tensorflow()
    from .batches import expand_paths
    from .experiment import Experiment, resolve_params, write_outputs
    from .features import DatasetSchema
    from .jsonfiles import read_json_object

    start = time.perf_counter()
    bars = _bars(args.quiet, (args.folds + 1) if args.folds else 1)
    progress = None if args.quiet else bars.write if bars else print
    try:
        schema = DatasetSchema.load(args.schema)
        params = resolve_params(schema.task, read_json_object(args.params, "params file") if args.params else None,
                                args.epochs)
        if args.test is not None:  # before training: every feature column must be in the test file
            features = schema.feature_spec(schema.file_columns(expand_paths(args.train)[0])).names
            test_columns = schema.file_columns(args.test)
            schema.check_columns(test_columns, str(args.test), need_label=False)
            absent = [name for name in features if name not in test_columns]
            if absent:
                raise ValueError(f"{args.test} lacks feature columns {absent}")
        experiment = Experiment(schema, args.train, params, args.test, args.folds, args.valid_frac, args.group_col,
                                progress, args.stream, args.chunk_rows, args.cache_dir, valid_paths=args.valid,
                                shuffle_window=args.shuffle_window, checkpoint_dir=args.checkpoint_dir,
                                resume=args.resume, tensorboard_dir=args.tensorboard, bars=bars)
        if bars:
            params["verbose"] = False  # the bars show the epochs
        model = experiment.run()
        summary = write_outputs(experiment, model, args.out)
    except (ValueError, TypeError, OSError) as err:
        return _fail(parser, err)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; each file under {args.out} is whole (written atomically)", file=sys.stderr)
        return 130
    finally:
        if bars:
            bars.close()
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


# ---------------------------------------------------------------- deepfm-porto (scripts/train_porto.py)
PORTO_DESCRIPTION = """Cross-validate DeepFM, FM and DNN on Porto Seguro data, as the classic DeepFM example's main.py.

With no arguments it runs on the bundled synthetic sample under data/ (written on first use).
Writes submission_<Model>.csv, oof_<Model>.csv, <Model>.png, metrics.json and model/ under --out.
Exit status 2: bad arguments, parameters or input files (one error line, nothing trained).
"""
# Command-line flag -> DeepFM parameter it overrides.
FLAG_PARAMS = {"epochs": "epoch", "batch_size": "batch_size", "embedding_size": "embedding_size",
               "deep_layers": "deep_layers", "learning_rate": "learning_rate", "layout": "layout",
               "seed": "random_seed"}


def _porto_names(text):
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _models(text):
    keys = tuple(key.lower() for key in _porto_names(text))
    unknown = [key for key in keys if key not in PORTO_MODELS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(f"choose from {','.join(PORTO_MODELS)}, got {text!r}")
    return keys


def _layers(text):
    try:
        return tuple(int(units) for units in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 32,32, got {text!r}") from None


def _folds(text):
    if not text.isdigit() or int(text) < 2:
        raise argparse.ArgumentTypeError(f"need an integer of at least 2, got {text!r}")
    return int(text)


def porto_parser():
    defaults = CLASSIC_PARAMS
    parser = argparse.ArgumentParser(
        prog="deepfm-porto", description=PORTO_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Parameters: built-in defaults (the classic reference's Porto dict), then --params, "
               "then the flags given explicitly.")
    files = parser.add_argument_group("data and outputs")
    files.add_argument("--train", type=Path, help="Porto train.csv (default: the bundled sample data/train.csv)")
    files.add_argument("--test", type=Path, help="Porto test.csv (default: the bundled sample data/test.csv)")
    files.add_argument("--out", type=Path, default=Path("output"), help="output directory (default: output/)")
    run = parser.add_argument_group("cross-validation")
    run.add_argument("--models", type=_models, default=tuple(PORTO_MODELS),
                     help=f"comma-separated, any of {','.join(PORTO_MODELS)} (default: all three)")
    run.add_argument("--folds", type=_folds, default=PORTO_FOLDS,
                     help=f"stratified folds (default: {PORTO_FOLDS})")
    run.add_argument("--seed", type=int,
                     help=f"seeds the folds and DeepFM's random_seed (default: {defaults['random_seed']})")
    run.add_argument("--numeric-cols", type=_porto_names, help="comma-separated numeric columns (default: Porto roles)")
    run.add_argument("--ignore-cols", type=_porto_names, help="comma-separated ignored columns (default: Porto roles)")
    run.add_argument("--tensorboard", type=Path, metavar="DIR",
                     help="write TensorBoard summaries to DIR/<Model>/fold_<k>")
    run.add_argument("--quiet", action="store_true", help="print only the results table (no progress bars)")
    model = parser.add_argument_group("DeepFM parameters")
    model.add_argument("--params", type=Path, metavar="FILE.json",
                       help="JSON object of DeepFM parameters (numeric_cols/ignore_cols allowed too)")
    model.add_argument("--epochs", type=int, help=f"default: {defaults['epoch']}")
    model.add_argument("--batch-size", type=int, help=f"default: {defaults['batch_size']}")
    model.add_argument("--embedding-size", type=int, help=f"default: {defaults['embedding_size']}")
    model.add_argument("--deep-layers", type=_layers, metavar="UNITS,UNITS",
                       help=f"default: {','.join(map(str, defaults['deep_layers']))}")
    model.add_argument("--learning-rate", type=float, help=f"default: {defaults['learning_rate']}")
    model.add_argument("--layout", choices=LAYOUTS, help=f"default: {LAYOUTS[0]}")
    return parser


def _input_paths(parser, args, progress):
    from . import workflow
    from .synthetic import ensure_sample_data

    if (args.train is None) != (args.test is None):
        parser.error("give --train and --test together, or neither for the bundled sample")
    if args.train is not None:
        return args.train, args.test
    sample = Path(__file__).resolve().parents[1] / "data"
    if progress and not all((sample / name).exists() for name in ("train.csv", "test.csv")):
        progress(f"writing the bundled sample to {sample} (first use)")
    try:
        return ensure_sample_data(sample)
    except OSError as error:
        raise workflow.WorkflowError(f"cannot write the bundled sample to {str(sample)!r}: {error}") from None


def _make_out_dir(out):
    from . import workflow

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise workflow.WorkflowError(f"cannot create the output directory {str(out)!r}: {error.strerror}") from None


def porto_main(argv=None):
    parser = porto_parser()
    args = parser.parse_args(argv)
    from . import configure_tensorflow

    configure_tensorflow()
    from . import workflow
    from .estimator import DivergenceError
    from .porto import PortoSchemaError

    bars = _bars(args.quiet, len(args.models) * args.folds)
    progress = None if args.quiet else bars.write if bars else print
    start = time.perf_counter()
    try:
        train_path, test_path = _input_paths(parser, args, progress)
        overrides = {param: getattr(args, flag) for flag, param in FLAG_PARAMS.items()}
        overrides.update(numeric_cols=args.numeric_cols, ignore_cols=args.ignore_cols)
        params, numeric_cols, ignore_cols = workflow.resolve_params(
            workflow.load_params_file(args.params) if args.params else {}, overrides)
        train_df, test_df = workflow.read_inputs(train_path, test_path)
        if progress:
            progress(f"train {train_path} ({len(train_df):,} rows), test {test_path} ({len(test_df):,} rows)")
        workflow.check_inputs(train_df, test_df, numeric_cols, ignore_cols, args.folds)
        _make_out_dir(args.out)
    except (workflow.WorkflowError, PortoSchemaError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    try:
        results = workflow.run_cv(train_df, test_df, args.models, params, args.folds, params["random_seed"],
                                  numeric_cols, ignore_cols, progress=progress, tensorboard_dir=args.tensorboard,
                                  bars=bars)
        written = workflow.write_outputs(results, args.out, {"train": str(train_path), "test": str(test_path)})
    except DivergenceError as error:
        return _fail(parser, error)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; each file under {args.out} is whole (written atomically)",
              file=sys.stderr)
        return 130
    finally:
        if bars:
            bars.close()
    if progress:
        progress(f"wrote {len(written)} files to {args.out}: {', '.join(path.name for path in written)}")
    print(workflow.format_table(results))
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0
