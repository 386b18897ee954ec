"""Predict a CSV with a saved DeepFM model; writes ``id,target`` rows like a Kaggle submission.

The model directory must bundle its FeatureDictionary: ``model.save(path, feature_dictionary=fd)``.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import deepfm_graph  # noqa: E402  (light: TensorFlow comes with the estimator)

deepfm_graph.configure_tensorflow()
from deepfm_graph import serving  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(prog="predict.py", description=__doc__)
    parser.add_argument("--model", required=True, help="directory written by DeepFM.save")
    parser.add_argument("--input", required=True, help="CSV with the id and feature columns")
    parser.add_argument("--output", required=True, help="CSV to write: id and prediction columns")
    parser.add_argument("--chunksize", type=int, default=serving.PREDICT_CSV_CHUNK_ROWS,
                        help=f"rows read at a time (default {serving.PREDICT_CSV_CHUNK_ROWS:,})")
    parser.add_argument("--id-col", default=None, help="id column (default: the dictionary's id_col)")
    args = parser.parse_args(argv)
    try:
        rows = serving.predict_csv(args.model, args.input, args.output, args.chunksize, args.id_col)
    except (ValueError, TypeError, OSError) as err:
        parser.exit(1, f"{parser.prog}: error: {' '.join(str(err).split())}\n")
    print(f"wrote {rows:,} predictions to {args.output}")


if __name__ == "__main__":
    main()
