"""Measure deepfm_graph's speed: in memory on Porto-shaped data (the default), or streamed from files
on Criteo-shaped data (``--stream``).

By default: Porto-shaped data with the classic DeepFM configuration. Prints, and writes as JSON with
--json: parse time (read CSV + feature dictionary + parse), training samples/s per epoch (first epoch
apart, then min / median), prediction samples/s, peak RSS through parse, fit and predict, and then the
gini reached on held-out labelled rows.

``--stream``: Criteo-shaped TSV files (``datasets.criteo_scale``: 13 counts, 26 categorical columns of up
to 10^6 values, ``min_count`` 10) made once in ``--data-dir`` and reused; in a child process, whose peak
RSS is the run's own: the spec fitted in one pass (rows/s), ``DeepFM.fit_stream`` for ``--epochs``
epochs (epoch 1 parses text and writes the cache of encoded chunks, later epochs read the cache; rows/s
of both, and how long training waited for the reader), prediction of the test file chunk by chunk
(rows/s from text, and of the model alone), test AUC, peak RSS, wall time, and RSS by phase.
``--compare-memory`` then trains the same rows from arrays in memory and from the cache, alternating, in
one more child process (the in-memory rate, the streamed one, their ratio); ``--time-reader`` times a
pass of each reader alone.

    deepfm-benchmark                       # 200k train + 100k test rows, 5 epochs
    deepfm-benchmark --training-loop feed  # the reference-style one-run-per-batch loop
    deepfm-benchmark --stream --rows 5000000 --deep-layers 32,32 --json stream.json

(``python scripts/benchmark.py`` is the same.) Arguments are parsed before TensorFlow loads.
"""
import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from . import configure_tensorflow
from .atomic import atomic_write
from .features import DataParser, FeatureDictionary
from .params import CLASSIC_PARAMS, DEFAULT_CHUNK_ROWS
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


# ---------------------------------------------------------------- streaming from files (issue #16)
STREAM_ROWS, STREAM_TEST_ROWS, STREAM_EPOCHS = 1_000_000, 200_000, 2
STREAM_DEEP_LAYERS = (400, 400, 400)  # the paper's; (32, 32) is the classic reference's
STREAM_VALID_FRAC = 0.02  # held out for the per-epoch validation pass, as deepfm-train --stream does
COMPARE_EPOCHS = 3  # per run of the A/B: the first (compiling) epoch is left out of the rates
COMPARE_RUNS = ("memory", "stream", "stream", "memory")  # ABBA: a linear drift of the VM's speed cancels
RSS_SAMPLE_SECONDS = 0.05


def default_data_dir():
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "deepfm_graph" / "criteo_scale"


def scale_files(data_dir, rows, test_rows, seed):
    """The train and test TSVs of ``criteo_scale`` in ``data_dir``, named by generator version, seed and
    rows; those absent are generated in a child process (its memory is not the benchmark's).
    Returns ``(train, test, seconds spent generating, None when both were there)``."""
    from .datasets.criteo_scale import VERSION

    data_dir.mkdir(parents=True, exist_ok=True)
    paths = {part: data_dir / f"criteo_scale_v{VERSION}_seed{seed}_{part}_{n}.tsv"
             for part, n in (("train", rows), ("test", test_rows))}
    todo = [str(a) for part, n in (("train", rows), ("test", test_rows)) if not paths[part].exists()
            for a in (paths[part], n, part)]
    if not todo:
        return paths["train"], paths["test"], None
    print(f"generating {', '.join(todo[0::3])}", flush=True)
    start = time.perf_counter()
    code = ("import sys; from deepfm_graph.datasets.criteo_scale import write_criteo_tsv as write; a = sys.argv; "
            "[write(a[i], int(a[i + 1]), int(a[1]), a[i + 2]) for i in range(2, len(a), 3)]")
    subprocess.run([sys.executable, "-c", code, str(seed), *todo], check=True, env=_child_env())
    return paths["train"], paths["test"], time.perf_counter() - start


def _child_env():
    """The environment of a child process, which imports this package from where the parent did."""
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}


def current_memory_mb():
    """``(resident, anonymous)`` memory of the process now, in MiB (Linux's /proc: the resident memory is the
    anonymous plus the mapped files' pages, libraries and the memory-mapped cache among them); None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f if line.startswith(("VmRSS", "RssAnon")))
        return int(fields["VmRSS"].split()[0]) / 1024.0, int(fields["RssAnon"].split()[0]) / 1024.0
    except (OSError, ValueError, KeyError):
        return None


class RssMonitor:
    """Resident memory sampled on a thread every ``RSS_SAMPLE_SECONDS``, attributed to named phases, one
    at a time: ``phases`` holds per phase its seconds, the resident memory at its start, its highest sample
    (and that of the anonymous memory) and the memory at its end. ``say``: called with a line as each
    phase starts (progress of long runs)."""

    def __init__(self, say=None):
        self.phases, self._current, self._started, self._stop = {}, None, None, threading.Event()
        self._say, self._created = say, time.perf_counter()
        self._thread = threading.Thread(target=self._sample, name="rss-monitor", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.end()
        self._stop.set()
        self._thread.join()

    def _sample(self):
        while not self._stop.wait(RSS_SAMPLE_SECONDS):
            self._note()

    def _note(self):
        memory, phase = current_memory_mb(), self._current
        if memory is not None and phase is not None:
            phase["rss_peak_mb"], phase["anon_peak_mb"] = max(phase["rss_peak_mb"], memory[0]), \
                max(phase["anon_peak_mb"], memory[1])

    def begin(self, name):
        """End the current phase and start ``name``; returns its record (complete once it ends)."""
        self.end()
        rss, anon = current_memory_mb() or (0.0, 0.0)
        self._current = self.phases[name] = {"seconds": 0.0, "rss_start_mb": rss, "rss_peak_mb": rss,
                                             "anon_peak_mb": anon}
        self._started = time.perf_counter()
        if self._say:
            self._say(f"{self._started - self._created:8.1f} s  {name} (RSS {rss:,.0f} MiB)")
        return self._current

    def end(self):
        record = self._current
        if record is not None:
            self._note()
            record.update(seconds=time.perf_counter() - self._started, rss_end_mb=(current_memory_mb() or (0.0,))[0])
            self._current = None

    @contextlib.contextmanager
    def phase(self, name):
        try:
            yield self.begin(name)
        finally:
            self.end()


class WatchedSource:
    """A ``batches.FileSource`` as ``DeepFM.fit_stream`` sees it, which also records per pass over the
    training (or held-out) rows how long the consumer waited for the next chunk (``waits``: the reader not
    keeping up), and starts a phase of ``monitor`` at each pass: ``epoch k training`` lasts until the
    epoch's validation pass starts (``epoch k validation``), which lasts until the next epoch starts.
    Everything else is the source's."""

    def __init__(self, source, monitor):
        self._source, self._monitor = source, monitor
        self.waits = {"training": [], "held_out": []}

    def __getattr__(self, name):
        return getattr(self._source, name)

    def training(self, *args, **kwargs):
        self._monitor.begin(f"epoch {len(self.waits['training']) + 1} training")
        return self._watched(self._source.training(*args, **kwargs), self.waits["training"])

    def held_out(self, *args, **kwargs):
        self._monitor.begin(f"epoch {len(self.waits['held_out']) + 1} validation")
        return self._watched(self._source.held_out(*args, **kwargs), self.waits["held_out"])

    @staticmethod
    def _watched(parts, waits):
        waits.append(0.0)
        parts = iter(parts)
        try:
            while True:
                start = time.perf_counter()
                part = next(parts, None)
                waits[-1] += time.perf_counter() - start
                if part is None:
                    return
                yield part
        finally:
            getattr(parts, "close", lambda: None)()  # stops the source's read-ahead thread


def stream_params(settings, epochs):
    """The benchmark's DeepFM parameters: embedding 8, ``deep_layers`` without dropout, batch 1024."""
    layers = tuple(settings["deep_layers"])
    return {"embedding_size": settings["embedding_size"], "deep_layers": layers,
            "dropout_deep": (1.0,) * (len(layers) + 1), "epoch": epochs, "batch_size": settings["batch_size"],
            "eval_train": False, "verbose": False, "eval_metric": "auc", "training_loop": settings["training_loop"]}


def _rate(rows, seconds):
    return round(rows / seconds) if seconds > 0 else None


def run_stream(settings, cache_dir):
    """The streamed workload of one child process: fit the spec in one pass over the train file, train
    ``epochs`` epochs from it (the first parses text and writes the cache, later ones read the cache),
    predict the test file chunk by chunk; the figures, the peak RSS being this process's own."""
    from sklearn.metrics import roc_auc_score

    from . import DeepFM
    from .batches import FileSource
    from .datasets.criteo_scale import SCHEMA
    from .features import DatasetSchema

    figures = {"rss_after_import_mb": round(peak_rss_mb())}
    schema = DatasetSchema.from_dict(SCHEMA)
    train, test, chunk_rows = settings["train"], settings["test"], settings["chunk_rows"]
    wall = time.perf_counter()
    with RssMonitor(say=lambda line: print(line, flush=True)) as monitor:
        with monitor.phase("fit_spec") as phase:
            source = FileSource(schema, train, chunk_rows, settings["valid_frac"], cache_dir)
            spec, label_mean = source.fit_spec()
        rows = source.training_rows
        vocabulary = sum(len(c.vocabulary_) for c in spec.columns if hasattr(c, "vocabulary_"))
        figures.update(training_rows=rows, label_mean=round(label_mean, 4), feat_dim=spec.feat_dim,
                       vocabulary_size=vocabulary, spec_fit_seconds=round(phase["seconds"], 2),
                       spec_fit_rows_per_s=_rate(settings["rows"], phase["seconds"]),
                       rss_after_spec_mb=round(peak_rss_mb()))

        watched = WatchedSource(source, monitor)
        fit_start = time.perf_counter()
        model = DeepFM(**stream_params(settings, settings["epochs"]), feature_size=spec.feat_dim).fit_stream(watched)
        monitor.end()
        epochs = model.epoch_seconds_
        figures.update(fit_seconds=round(time.perf_counter() - fit_start, 2),
                       epoch_seconds=[round(s, 2) for s in epochs],
                       train_rows_per_s_epoch_1=_rate(rows, epochs[0]),
                       train_rows_per_s_cached=_rate(rows, statistics.median(epochs[1:])) if len(epochs) > 1 else None,
                       reader_wait_seconds=[round(s, 2) for s in watched.waits["training"]],
                       validation_seconds=[round(monitor.phases[f"epoch {k + 1} validation"]["seconds"], 2)
                                           for k in range(len(watched.waits["held_out"]))],
                       valid_auc=[round(v, 4) for v in model.valid_result_])

        with monitor.phase("predict test file") as phase:
            test_source = FileSource(schema, test, chunk_rows, spec=spec)
            parts, predictions = [], []
            for part in test_source.training():
                predictions.append(model.predict(part.X.Xi, part.X.Xv))
                parts.append(part)
        labels, predictions = np.concatenate([p.y for p in parts]), np.concatenate(predictions)
        figures.update(predict_file_rows_per_s=_rate(len(labels), phase["seconds"]),
                       test_auc=round(float(roc_auc_score(labels, predictions)), 4))
        figures["wall_seconds"] = round(time.perf_counter() - wall, 1)
        figures["peak_rss_mb"] = round(peak_rss_mb())  # the workload's: spec fit, training and prediction

        Xi, Xv = np.concatenate([p.X.Xi for p in parts]), np.concatenate([p.X.Xv for p in parts])
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            model.predict(Xi, Xv)
            timings.append(time.perf_counter() - start)
        figures["predict_rows_per_s"] = _rate(len(Xi), statistics.median(timings))  # encoded arrays: the model alone
        if settings["time_reader"]:
            figures.update(time_reader(schema, spec, settings, source, monitor))
    figures["rss_by_phase"] = {name: {key: round(value, 1) for key, value in phase.items()}
                               for name, phase in monitor.phases.items()}
    return figures


def time_reader(schema, spec, settings, source, monitor):
    """Rows/s of the readers alone, without training: parse and encode the train file (what epoch 1
    waits for), and read the cache of encoded chunks (what later epochs wait for), each page touched."""
    from .batches import FileSource

    def one_pass(parts, name):
        rows = 0
        with monitor.phase(name) as phase:
            for part in parts:
                rows += len(part)
                part.X.Xi.max(), part.X.Xv.max(), part.y.max()
        return _rate(rows, phase["seconds"])

    text = FileSource(schema, settings["train"], settings["chunk_rows"], settings["valid_frac"], spec=spec)
    return {"reader_text_rows_per_s": one_pass(text.training(), "reader alone: text"),
            "reader_cache_rows_per_s": one_pass(source.training(), "reader alone: cache")}


def compare_memory(settings, cache_dir):
    """Same-process A/B of training from arrays in memory and from the cache of encoded chunks: the
    same rows (none held out) and parameters, runs in ``COMPARE_RUNS`` order, ``COMPARE_EPOCHS``
    each; rows/s of the epochs after the first of each run."""
    from . import DeepFM
    from .batches import FileSource
    from .datasets.criteo_scale import SCHEMA
    from .features import DatasetSchema

    schema = DatasetSchema.from_dict(SCHEMA)
    source = FileSource(schema, settings["train"], settings["chunk_rows"], 0.0, cache_dir)
    spec, _ = source.fit_spec()
    for _ in source.training():  # writes the cache: every streamed run below reads it
        pass
    df = schema.read(settings["train"])
    X, y = spec.transform(df), schema.labels(df)
    del df
    params = {**stream_params(settings, COMPARE_EPOCHS), "feature_size": spec.feat_dim}
    rates = {"memory": [], "stream": []}
    for kind in COMPARE_RUNS:
        model = DeepFM(**params)
        model.fit(X.Xi, X.Xv, y) if kind == "memory" else model.fit_stream(source)
        rates[kind] += [round(len(y) / s) for s in model.epoch_seconds_[1:]]
        print(f"  {kind}: {rates[kind][-COMPARE_EPOCHS + 1:]} rows/s", flush=True)
        del model
    memory, stream = statistics.median(rates["memory"]), statistics.median(rates["stream"])
    return {"compare_rows": len(y), "compare_epochs": COMPARE_EPOCHS, "compare_runs": list(COMPARE_RUNS),
            "memory_rows_per_s": rates["memory"], "stream_cached_rows_per_s": rates["stream"],
            "memory_rows_per_s_median": round(memory), "stream_cached_rows_per_s_median": round(stream),
            "stream_to_memory_ratio": round(stream / memory, 3)}


def stream_child(settings_json, out_path):
    """A child process's part: ``run_stream`` (or ``compare_memory`` with ``settings["mode"]``) with a
    fresh cache directory beside the data, its figures written to ``out_path`` as JSON."""
    configure_tensorflow()
    settings = json.loads(settings_json)
    with tempfile.TemporaryDirectory(prefix="cache-", dir=settings["data_dir"]) as cache_dir:
        run = compare_memory if settings["mode"] == "compare" else run_stream
        figures = run(settings, cache_dir)
    Path(out_path).write_text(json.dumps(figures), encoding="utf-8")


def _in_child(settings, mode):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "figures.json")
        code = "import sys; from deepfm_graph.benchmark import stream_child; stream_child(sys.argv[1], sys.argv[2])"
        subprocess.run([sys.executable, "-c", code, json.dumps({**settings, "mode": mode}), str(out)], check=True,
                       env=_child_env())
        return json.loads(out.read_text(encoding="utf-8"))


def run_stream_benchmark(args):
    """``--stream``: the data made or reused, then the streamed run and, with ``--compare-memory``, the
    A/B, each in its own child process."""
    data_dir = (args.data_dir or default_data_dir()).resolve()
    print(f"data directory: {data_dir}", flush=True)
    train, test, generate_seconds = scale_files(data_dir, args.rows, args.test_rows, args.seed)
    settings = {"train": str(train), "test": str(test), "data_dir": str(data_dir), "rows": args.rows,
                "test_rows": args.test_rows, "epochs": args.epochs, "deep_layers": list(args.deep_layers),
                "embedding_size": 8, "batch_size": args.batch_size, "chunk_rows": args.chunk_rows,
                "valid_frac": args.valid_frac, "training_loop": args.training_loop, "time_reader": args.time_reader}
    figures = {"rows": args.rows, "test_rows": args.test_rows, "epochs": args.epochs,
               "deep_layers": list(args.deep_layers), "embedding_size": 8, "batch_size": args.batch_size,
               "chunk_rows": args.chunk_rows, "valid_frac": args.valid_frac, "cpu_count": os.cpu_count(),
               "train_file": str(train), "train_file_mb": round(train.stat().st_size / 2 ** 20),
               "generate_seconds": None if generate_seconds is None else round(generate_seconds, 1)}
    figures.update(_in_child(settings, "stream"))
    if args.compare_memory:
        print("in memory against streamed from the cache, same process:", flush=True)
        figures.update(_in_child(settings, "compare"))
    return figures


def _layers(text):
    try:
        layers = tuple(int(n) for n in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes such as 400,400,400, got {text!r}") \
            from None
    if not layers or min(layers) < 1:
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return layers


def print_figures(figures):
    phases = figures.pop("rss_by_phase", None)
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if phases:
        figures["rss_by_phase"] = phases
        print("RSS by phase (MiB): start / peak (anonymous memory's peak) / end, seconds")
        for name, p in phases.items():
            print(f"  {name:<24} {p['rss_start_mb']:7.0f} / {p['rss_peak_mb']:7.0f} ({p['anon_peak_mb']:5.0f}) / "
                  f"{p['rss_end_mb']:7.0f}  {p['seconds']:8.1f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="deepfm-benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, help="training rows (default 200000; with --stream 1000000)")
    parser.add_argument("--test-rows", type=int, help="test rows (default 100000, unlabelled; with --stream 200000)")
    parser.add_argument("--holdout-rows", type=int, help="labelled rows for the gini (default 50000)")
    parser.add_argument("--epochs", type=int, help="training epochs (default 5; with --stream 2)")
    parser.add_argument("--batch-size", type=int, default=1024, help="training batch size (default 1024)")
    parser.add_argument("--training-loop", choices=("graph", "feed"), default="graph")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    stream = parser.add_argument_group("streaming from files (Criteo-shaped TSV, --stream)")
    stream.add_argument("--stream", action="store_true", help="train from a generated Criteo-shaped file in chunks")
    stream.add_argument("--deep-layers", type=_layers, help="deep layer sizes (default 400,400,400)")
    stream.add_argument("--chunk-rows", type=int, help=f"rows per chunk (default {DEFAULT_CHUNK_ROWS})")
    stream.add_argument("--valid-frac", type=float, help=f"rows held out (default {STREAM_VALID_FRAC})")
    stream.add_argument("--data-dir", type=Path,
                        help=f"where the data are made or reused (default {default_data_dir()})")
    stream.add_argument("--compare-memory", action="store_true",
                        help="also train the same rows from arrays in memory and from the cache, alternating "
                             "(holds the whole file in memory: up to a few million rows)")
    stream.add_argument("--time-reader", action="store_true",
                        help="also time a pass of the text reader and of the cache reader alone")
    args = parser.parse_args(argv)
    stream_only = ("deep_layers", "chunk_rows", "valid_frac", "data_dir", "compare_memory", "time_reader")
    if not args.stream:
        given = [name for name in stream_only if getattr(args, name) not in (None, False)]
        if given:
            parser.error(f"--{given[0].replace('_', '-')} needs --stream")
    elif args.holdout_rows is not None:
        parser.error("--holdout-rows is not used with --stream (the test file is labelled)")
    defaults = ({"rows": STREAM_ROWS, "test_rows": STREAM_TEST_ROWS, "epochs": STREAM_EPOCHS,
                 "deep_layers": STREAM_DEEP_LAYERS, "chunk_rows": DEFAULT_CHUNK_ROWS, "valid_frac": STREAM_VALID_FRAC}
                if args.stream else {"rows": 200_000, "test_rows": 100_000, "holdout_rows": 50_000, "epochs": 5})
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    sizes = ("rows", "test_rows", "epochs", "batch_size") + (("chunk_rows",) if args.stream else ("holdout_rows",))
    for name in sizes:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.stream and not 0.0 <= args.valid_frac < 1.0:
        parser.error("--valid-frac must be in [0, 1)")
    configure_tensorflow()
    figures = run_stream_benchmark(args) if args.stream else run(args)
    print_figures(figures)
    if args.json:
        atomic_write(args.json, lambda f: json.dump(figures, f, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
