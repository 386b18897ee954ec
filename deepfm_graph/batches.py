"""Batch sources: training rows that come from files, chunk by chunk, instead of whole arrays.

``FileSource`` reads a file through its dataset schema in chunks of ``chunk_rows`` rows,
encodes each with a fitted ``FeatureSpec`` and yields it as a ``Part``; the next chunk is read
and encoded on a background thread (``prefetch``) while the current one trains, so memory holds
about two chunks whatever the file's size. A fixed fraction of the rows (``valid_frac``, chosen
by a hash of the row number: the same rows in every pass) is held out for validation:
``training()`` yields the other rows, ``held_out()`` those, each in its own pass over the file.
``DeepFM.fit_stream`` trains from it; ``serving.predict_table`` predicts files the same way.

Shuffling is within a chunk (a seeded permutation per chunk and epoch), not global: rows of one
chunk are never mixed with another's. Not there yet: shuffling across chunks, checkpoints in the
middle of a stream.
"""
import json
import queue
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .features import FeatureArrays
from .params import DEFAULT_CHUNK_ROWS

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
CACHE_KEY, CACHE_COMPLETE = "key.json", "complete"


@dataclass
class Part:
    """Encoded rows of one chunk: ``X`` (``FeatureArrays``) and labels ``y`` (float32 N)."""

    X: FeatureArrays
    y: np.ndarray

    def __len__(self):
        return len(self.y)


def held_out(rows, fraction):
    """Whether each data row number in ``rows`` (int N) is held out: a hash of the number below
    ``fraction``; the same rows for the same fraction in every pass and process."""
    if fraction <= 0:
        return np.zeros(len(rows), dtype=bool)
    with np.errstate(over="ignore"):
        mixed = np.asarray(rows, dtype=np.uint64) * _GOLDEN
    return (mixed >> np.uint64(11)).astype(np.float64) / 2.0 ** 53 < fraction


class _Failure:
    def __init__(self, error):
        self.error = error


def prefetch(iterable, depth=1):
    """The items of ``iterable``, the next ``depth`` ones made on a background thread while the
    caller works on the current one; an exception raised there is raised here. Closing the
    generator early stops the thread."""
    items, stop, done = queue.Queue(maxsize=depth), threading.Event(), object()

    def put(item):
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in iterable:
                if not put(item):
                    return
            put(done)
        except BaseException as error:  # handed to the consumer, raised there
            put(_Failure(error))

    thread = threading.Thread(target=work, name="deepfm-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join(timeout=10)


class FileSource:
    """The rows of the file ``path``, read through ``schema`` (a ``DatasetSchema``) in chunks.

    ``fit_spec()`` fits the schema's feature columns in one pass over the training rows (the
    held-out ones left out) and returns ``(spec, label mean)``; ``training()`` and ``held_out()``
    then yield the training or the held-out rows of each chunk as a ``Part`` encoded by that spec,
    read ahead on a background thread.

    ``cache_dir``: the first complete pass also writes each encoded chunk there as ``.npy`` arrays;
    later passes memory-map them instead of parsing text again (parsing is the slow part on 2
    cores). A cache is used only for the same file (path, size, modification time), chunking,
    held-out fraction and spec; an interrupted pass leaves no usable cache.
    """

    def __init__(self, schema, path, chunk_rows=DEFAULT_CHUNK_ROWS, valid_frac=0.0, cache_dir=None):
        if not (isinstance(chunk_rows, (int, np.integer)) and chunk_rows >= 1):
            raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
        if not 0.0 <= valid_frac < 1.0:
            raise ValueError(f"valid_frac must be in [0, 1), got {valid_frac!r}")
        self.schema, self.path, self.chunk_rows, self.valid_frac = schema, path, int(chunk_rows), valid_frac
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.spec, self.label_mean, self.training_rows = None, None, None

    def _frames(self, held=False):
        """The training (or with ``held``, the held-out) rows of each chunk of the file, unencoded."""
        for chunk in self.schema.read(self.path, chunksize=self.chunk_rows):
            rows = held_out(chunk.index.to_numpy(), self.valid_frac)
            rows = rows if held else ~rows
            if rows.any():
                yield chunk[rows]

    def fit_spec(self):
        """Fit the schema's feature spec on the training rows in one pass; ``(spec, label mean)``."""
        spec = self.schema.feature_spec(self.schema.file_columns(self.path))
        total, rows = 0.0, 0

        def training_frames():
            nonlocal total, rows
            for train in self._frames():
                y = self.schema.labels(train, str(self.path))
                total, rows = total + float(y.sum(dtype=np.float64)), rows + len(y)
                yield train

        try:
            self.spec = spec.fit_chunks(training_frames())
        except ValueError as err:  # a column's error: rows are the file's data rows
            raise (err if str(self.path) in str(err) else ValueError(f"{self.path}: {err}")) from None
        self.label_mean, self.training_rows = total / rows, rows
        return self.spec, self.label_mean

    def _encode(self, frame):
        try:
            return Part(self.spec.transform(frame), self.schema.labels(frame, str(self.path)))
        except ValueError as err:  # rows are the file's data rows
            raise ValueError(f"{self.path}: {err}") from None

    def _parts(self, held):
        if self.spec is None:
            raise ValueError("the source's feature spec is not fitted: call fit_spec() first")
        encoded = (self._encode(frame) for frame in self._frames(held))
        if self.cache_dir is None:
            return prefetch(encoded)
        directory = self.cache_dir / ("held_out" if held else "training")
        key = self._cache_key()
        if (directory / CACHE_COMPLETE).exists() and _read_text(directory / CACHE_KEY) == key:
            return prefetch(_load_parts(directory))
        return prefetch(_write_through(encoded, directory, key))

    def _cache_key(self):
        """What a cache depends on, as JSON text: the file's identity, the chunking, the spec."""
        stat = Path(self.path).stat()
        return json.dumps({"path": str(Path(self.path).resolve()), "size": stat.st_size,
                           "mtime_ns": stat.st_mtime_ns, "chunk_rows": self.chunk_rows,
                           "valid_frac": self.valid_frac, "spec": self.spec.to_json()}, sort_keys=True)

    def training(self):
        """The training rows, a ``Part`` per chunk (one pass over the file, read ahead)."""
        return self._parts(held=False)

    def held_out(self):
        """The held-out rows, a ``Part`` per chunk (one pass over the file, read ahead); none without
        ``valid_frac``."""
        return self._parts(held=True) if self.valid_frac > 0 else iter(())


# ---------------------------------------------------------------- cache of encoded chunks
def _read_text(path):
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _save_part(directory, part):
    directory.mkdir(parents=True)
    arrays = {"Xi": part.X.Xi, "Xv": part.X.Xv, "y": part.y}
    for s, (index, weight) in enumerate(part.X.Xs):
        arrays[f"seq_index_{s}"], arrays[f"seq_weight_{s}"] = index, weight
    for name, array in arrays.items():
        np.save(directory / f"{name}.npy", array)


def _load_part(directory):
    def load(name):
        return np.load(directory / f"{name}.npy", mmap_mode="r")

    n_sequences = len(list(directory.glob("seq_index_*.npy")))
    sequences = tuple((load(f"seq_index_{s}"), load(f"seq_weight_{s}")) for s in range(n_sequences))
    return Part(FeatureArrays(load("Xi"), load("Xv"), sequences), load("y"))


def _write_through(parts, directory, key):
    """Yield ``parts``, saving each under ``directory``; mark the cache complete after the last."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    (directory / CACHE_KEY).write_text(key, encoding="utf-8")
    for k, part in enumerate(parts):
        _save_part(directory / f"{k:06d}", part)
        yield part
    (directory / CACHE_COMPLETE).write_text("", encoding="utf-8")


def _load_parts(directory):
    for chunk in sorted(p for p in directory.iterdir() if p.is_dir()):
        yield _load_part(chunk)
