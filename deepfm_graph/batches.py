"""Batch sources: training rows that come from files, chunk by chunk, instead of whole arrays.

``FileSource`` reads one or more files (CSV/TSV as the dataset schema says, gzip and the other
compressions pandas infers from the name; a list or a glob pattern) through the schema in chunks
of ``chunk_rows`` rows, encodes each with a fitted ``FeatureSpec`` and yields it as a ``Part``;
the next chunk is read and encoded on a background thread (``prefetch``) while the current one
trains, so memory holds a few chunks whatever the files' size. A fixed fraction of the rows
(``valid_frac``, chosen by a hash of the file and row number: the same rows in every pass) is
held out for validation: ``training()`` yields the other rows, ``held_out()`` those.

Shuffling (``window_steps``) is not global: rows are shuffled within a window that slides over
the stream (each chunk is shuffled together with ``window`` rows kept back from the chunks
before it), and, once the encoded chunks are cached, the chunks themselves come in a seeded
order from the second epoch on. ``DeepFM.fit_stream`` trains from a source;
``serving.predict_table`` predicts files chunk by chunk.
"""
import glob
import hashlib
import itertools
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
_FILE_SHIFT = 40  # the file number's place in the held-out hash input: rows of one file < 2**40
CACHE_KEY, CACHE_COMPLETE = "key.json", "complete"


@dataclass
class Part:
    """Encoded rows of one chunk: ``X`` (``FeatureArrays``) and labels ``y`` (float32 N)."""

    X: FeatureArrays
    y: np.ndarray

    def __len__(self):
        return len(self.y)

    def take(self, rows):
        """The rows ``rows`` (int N) of this part, as a new part (copies)."""
        return Part(self.X.take(rows), self.y[rows])

    @staticmethod
    def join(a, b):
        """The rows of ``a`` then those of ``b``, as a new part."""
        return Part(FeatureArrays.concatenate(a.X, b.X), np.concatenate([a.y, b.y]))

    def to_dict(self):
        """The arrays by name (``FeatureArrays.to_dict`` and ``y``)."""
        return dict(self.X.to_dict(), y=self.y)

    @classmethod
    def from_dict(cls, arrays):
        return cls(FeatureArrays.from_dict(arrays), arrays["y"])


@dataclass
class Step:
    """What to train next: the rows of ``part`` in the order ``order`` (int32, whole batches but at the
    end of a pass); ``chunks`` chunks of the pass are consumed, and ``carry`` (a ``Part``, or None) holds
    the rows kept back for the next steps."""

    part: Part
    order: np.ndarray
    chunks: int
    carry: Part


def window_steps(parts, window, batch_size, permutation, start=0, carry=None):
    """Training steps over ``parts`` (an iterable of ``Part``) with the rows shuffled within a window.

    Each chunk is joined to the ``carry`` rows kept back so far and shuffled by
    ``permutation(n, k)`` (k: the chunk's place in the pass, from ``start``); all but about
    ``window`` rows of it train now, in whole batches of ``batch_size``, and the rest (a random
    subset) are carried on, to be shuffled with the next chunk. The rows left after the last chunk
    train in the order they are in. So a row can move anywhere within the ``window`` rows around
    it and further back with decreasing chance; with one chunk, the pass trains the rows in exactly
    the order ``permutation(n, 0)``, as an in-memory epoch does. ``start`` and ``carry`` resume a
    pass from a ``Step``'s ``chunks`` and ``carry``.
    """
    k = start
    for k, part in enumerate(parts, start + 1):
        pool = part if carry is None or len(carry) == 0 else Part.join(carry, part)
        order = permutation(len(pool), k - 1)
        trained = max(0, (len(pool) - window) // batch_size * batch_size)
        carry = pool.take(order[trained:])
        yield Step(pool, order[:trained], k, carry)
    if carry is not None and len(carry):
        yield Step(carry, np.arange(len(carry), dtype=np.int32), k, None)


def held_out(rows, fraction, file=0):
    """Whether each data row number in ``rows`` (int N) of file number ``file`` is held out: a hash of
    the numbers below ``fraction``; the same rows for the same fraction in every pass and process."""
    if fraction <= 0:
        return np.zeros(len(rows), dtype=bool)
    with np.errstate(over="ignore"):
        keys = np.asarray(rows, dtype=np.uint64) + (np.uint64(file) << np.uint64(_FILE_SHIFT))
        mixed = keys * _GOLDEN
    return (mixed >> np.uint64(11)).astype(np.float64) / 2.0 ** 53 < fraction


def expand_paths(paths):
    """The files of ``paths``: a path, a glob pattern (``"logs/day_*.tsv.gz"``, sorted) or a list of
    either; ``ValueError`` for a pattern matching nothing or no files at all."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files = []
    for item in items:
        text = str(item)
        if glob.has_magic(text) and not Path(text).exists():
            matched = sorted(glob.glob(text))
            if not matched:
                raise ValueError(f"no file matches {text!r}")
            files.extend(Path(m) for m in matched)
        else:
            files.append(Path(item))
    if not files:
        raise ValueError("no input files given")
    return files


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
    """The rows of the files ``paths`` (see ``expand_paths``), read through ``schema`` (a
    ``DatasetSchema``) in chunks of ``chunk_rows`` rows; a chunk never spans two files.

    ``fit_spec()`` fits the schema's feature columns in one pass over the training rows (the
    held-out ones left out) and returns ``(spec, label mean)``; or ``spec`` gives a fitted spec
    (a validation file's source takes the training source's). ``training()`` and ``held_out()``
    then yield the training or the held-out rows of each chunk as a ``Part`` encoded by the spec,
    read ahead on a background thread.

    ``cache_dir``: the first complete pass also writes each encoded chunk there as ``.npy`` arrays;
    later passes memory-map them instead of parsing text again (parsing is the slow part on 2
    cores) and can take the chunks in any order. A cache is used only for the same files (path,
    size, modification time), chunking, held-out fraction and spec; an interrupted pass leaves no
    usable cache.
    """

    def __init__(self, schema, paths, chunk_rows=DEFAULT_CHUNK_ROWS, valid_frac=0.0, cache_dir=None, spec=None):
        if not (isinstance(chunk_rows, (int, np.integer)) and chunk_rows >= 1):
            raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
        if not 0.0 <= valid_frac < 1.0:
            raise ValueError(f"valid_frac must be in [0, 1), got {valid_frac!r}")
        self.schema, self.paths, self.chunk_rows, self.valid_frac = schema, expand_paths(paths), int(chunk_rows), \
            valid_frac
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.spec, self.label_mean, self.training_rows = spec, None, None

    @property
    def path(self):
        """The first file (the only one, for a source of one file)."""
        return self.paths[0]

    def _frames(self, held=False):
        """``(path, frame)``: the training (or with ``held``, the held-out) rows of each chunk, unencoded."""
        for number, path in enumerate(self.paths):
            for chunk in self.schema.read(path, chunksize=self.chunk_rows):
                rows = held_out(chunk.index.to_numpy(), self.valid_frac, number)
                rows = rows if held else ~rows
                if rows.any():
                    yield path, chunk[rows]

    def fit_spec(self):
        """Fit the schema's feature spec on the training rows in one pass; ``(spec, label mean)``."""
        columns = self.schema.file_columns(self.path)
        for path in self.paths[1:]:
            if self.schema.file_columns(path) != columns:
                raise ValueError(f"{path} has other columns than {self.path}")
        spec = self.schema.feature_spec(columns)
        total, rows, where = 0.0, 0, [self.path]

        def training_frames():
            nonlocal total, rows
            for path, train in self._frames():
                where[0] = path
                y = self.schema.labels(train, str(path))
                total, rows = total + float(y.sum(dtype=np.float64)), rows + len(y)
                yield train

        try:
            self.spec = spec.fit_chunks(training_frames())
        except ValueError as err:  # a column's error: rows are the file's data rows
            raise (err if str(where[0]) in str(err) else ValueError(f"{where[0]}: {err}")) from None
        if rows == 0:
            raise ValueError(f"{self.path}: no training rows (all {len(self.paths)} file(s) empty or held out)")
        self.label_mean, self.training_rows = total / rows, rows
        return self.spec, self.label_mean

    def _encode(self, path, frame):
        try:
            return Part(self.spec.transform(frame), self.schema.labels(frame, str(path)))
        except ValueError as err:  # rows are the file's data rows
            raise ValueError(f"{path}: {err}") from None

    def _parts(self, held, shuffle_seed=None, start=0):
        if self.spec is None:
            raise ValueError("the source's feature spec is not fitted: call fit_spec() first")
        encoded = (self._encode(path, frame) for path, frame in self._frames(held))
        if self.cache_dir is None:
            return prefetch(itertools.islice(encoded, start, None))
        directory, key = self._cache_directory(held), self._cache_key()
        chunks = _cached_chunks(directory, key)
        if chunks is None:  # the pass that writes the cache parses every chunk, the skipped ones too
            return prefetch(itertools.islice(_write_through(encoded, directory, key), start, None))
        if shuffle_seed is not None:
            chunks = [chunks[k] for k in np.random.default_rng(shuffle_seed).permutation(len(chunks))]
        return prefetch(_load_part(chunk) for chunk in chunks[start:])

    def _cache_directory(self, held):
        return self.cache_dir / ("held_out" if held else "training")

    def _cache_key(self):
        """What a cache depends on, as JSON text: the files' identity, the chunking, the spec."""
        files = []
        for path in self.paths:
            stat = Path(path).stat()
            files.append({"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
        return json.dumps({"files": files, "chunk_rows": self.chunk_rows, "valid_frac": self.valid_frac,
                           "spec": self.spec.to_json()}, sort_keys=True)

    def identity(self):
        """A digest of the files' identity (path, size, modification time), the chunking, the held-out
        fraction and the spec: what a resumed run checks instead of hashing the data."""
        return hashlib.sha256(self._cache_key().encode("utf-8")).hexdigest()

    def shuffles_chunks(self):
        """Whether ``training(shuffle_seed=...)`` can take the chunks in a seeded order: with a cache."""
        return self.cache_dir is not None

    def training(self, shuffle_seed=None, start=0):
        """The training rows, a ``Part`` per chunk (one pass over the files, read ahead), from the
        ``start``-th on. ``shuffle_seed``: the chunks in an order seeded by it when they come from a
        complete cache (``shuffles_chunks``), else in file order."""
        return self._parts(False, shuffle_seed, start)

    def held_out(self):
        """The held-out rows, a ``Part`` per chunk (one pass over the files, read ahead); none without
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
    for name, array in part.to_dict().items():
        np.save(directory / f"{name}.npy", array)


def _load_part(directory):
    return Part.from_dict({path.stem: np.load(path, mmap_mode="r") for path in directory.glob("*.npy")})


def _write_through(parts, directory, key):
    """Yield ``parts``, saving each under ``directory``; mark the cache complete after the last."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    (directory / CACHE_KEY).write_text(key, encoding="utf-8")
    for k, part in enumerate(parts):
        _save_part(directory / f"{k:06d}", part)
        yield part
    (directory / CACHE_COMPLETE).write_text("", encoding="utf-8")


def _cached_chunks(directory, key):
    """The chunk directories of the complete cache ``directory`` made for ``key``, in file order; None
    if there is none."""
    if not ((directory / CACHE_COMPLETE).exists() and _read_text(directory / CACHE_KEY) == key):
        return None
    return sorted(p for p in directory.iterdir() if p.is_dir())
