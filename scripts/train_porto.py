"""Cross-validate DeepFM, FM and DNN on Porto Seguro data, as the classic DeepFM example's main.py.

With no arguments it runs on the bundled synthetic sample under data/ (written on first use).
Writes submission_<Model>.csv, oof_<Model>.csv, <Model>.png and metrics.json under --out.
Exit status 2: bad arguments, parameters or input files (one error line, nothing trained).
"""
import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import deepfm_graph  # noqa: E402  (light: TensorFlow comes with the estimator)

deepfm_graph.configure_tensorflow()
from deepfm_graph import workflow  # noqa: E402
from deepfm_graph.graph import LAYOUTS  # noqa: E402
from deepfm_graph.porto import PortoSchemaError  # noqa: E402
from deepfm_graph.synthetic import ensure_sample_data  # noqa: E402

# Command-line flag -> DeepFM parameter it overrides.
FLAG_PARAMS = {"epochs": "epoch", "batch_size": "batch_size", "embedding_size": "embedding_size",
               "deep_layers": "deep_layers", "learning_rate": "learning_rate", "layout": "layout",
               "seed": "random_seed"}


def _names(text):
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _models(text):
    keys = tuple(key.lower() for key in _names(text))
    unknown = [key for key in keys if key not in workflow.MODELS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(f"choose from {','.join(workflow.MODELS)}, got {text!r}")
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


def build_parser():
    defaults = workflow.DEFAULT_PARAMS
    parser = argparse.ArgumentParser(
        prog="train_porto.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Parameters: built-in defaults (the classic reference's Porto dict), then --params, "
               "then the flags given explicitly.")
    files = parser.add_argument_group("data and outputs")
    files.add_argument("--train", type=Path, help="Porto train.csv (default: the bundled sample data/train.csv)")
    files.add_argument("--test", type=Path, help="Porto test.csv (default: the bundled sample data/test.csv)")
    files.add_argument("--out", type=Path, default=Path("output"), help="output directory (default: output/)")
    run = parser.add_argument_group("cross-validation")
    run.add_argument("--models", type=_models, default=tuple(workflow.MODELS),
                     help=f"comma-separated, any of {','.join(workflow.MODELS)} (default: all three)")
    run.add_argument("--folds", type=_folds, default=workflow.DEFAULT_FOLDS,
                     help=f"stratified folds (default: {workflow.DEFAULT_FOLDS})")
    run.add_argument("--seed", type=int,
                     help=f"seeds the folds and DeepFM's random_seed (default: {defaults['random_seed']})")
    run.add_argument("--numeric-cols", type=_names, help="comma-separated numeric columns (default: Porto roles)")
    run.add_argument("--ignore-cols", type=_names, help="comma-separated ignored columns (default: Porto roles)")
    run.add_argument("--quiet", action="store_true", help="print only the results table")
    model = parser.add_argument_group("DeepFM parameters")
    model.add_argument("--params", type=Path, metavar="FILE.json",
                       help="JSON object of DeepFM parameters (numeric_cols/ignore_cols allowed too)")
    model.add_argument("--epochs", type=int, help=f"default: {defaults['epoch']}")
    model.add_argument("--batch-size", type=int, help=f"default: {defaults['batch_size']}")
    model.add_argument("--embedding-size", type=int, help=f"default: {defaults['embedding_size']}")
    model.add_argument("--deep-layers", type=_layers, metavar="UNITS,UNITS",
                       help=f"default: {','.join(map(str, defaults['deep_layers']))}")
    model.add_argument("--learning-rate", type=float, help=f"default: {defaults['learning_rate']}")
    model.add_argument("--layout", choices=LAYOUTS, help=f"default: {defaults['layout']}")
    return parser


def _input_paths(parser, args, progress):
    if (args.train is None) != (args.test is None):
        parser.error("give --train and --test together, or neither for the bundled sample")
    if args.train is not None:
        return args.train, args.test
    sample = REPO / "data"
    if progress and not all((sample / name).exists() for name in ("train.csv", "test.csv")):
        progress(f"writing the bundled sample to {sample} (first use)")
    try:
        return ensure_sample_data(sample)
    except OSError as error:
        raise workflow.WorkflowError(f"cannot write the bundled sample to {str(sample)!r}: {error}") from None


def _make_out_dir(out):
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise workflow.WorkflowError(f"cannot create the output directory {str(out)!r}: {error.strerror}") from None


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    progress = None if args.quiet else print
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
                                  numeric_cols, ignore_cols, progress=progress)
        written = workflow.write_outputs(results, args.out, {"train": str(train_path), "test": str(test_path)})
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; each file under {args.out} is whole (written atomically)",
              file=sys.stderr)
        return 130
    if progress:
        progress(f"wrote {len(written)} files to {args.out}: {', '.join(path.name for path in written)}")
    print(workflow.format_table(results))
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
