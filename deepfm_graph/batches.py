"""Batch sources: training rows that come from files, chunk by chunk, instead of whole arrays.

``FileSource`` reads a file through its dataset schema in chunks of ``chunk_rows`` rows,
encodes each with a fitted ``FeatureSpec`` and yields it as a ``Part``; the next chunk is read
and encoded on a background thread (``prefetch``) while the current one trains, so memory holds
about two chunks whatever the file's size. A fixed fraction of the rows (``valid_frac``, chosen
by a hash of the row number: the same rows in every pass) is held out for validation:
``training()`` yields the other rows, ``held_out()`` those, each in its own pass over the file.
``DeepFM.fit_stream`` trains from it; ``serving.predict_table`` predicts files the same way.

Shuffling is within a chunk (a seeded permutation per chunk and epoch), not global: rows of one
chunk are never mixed with another's. Not there yet: shuffling across chunks, a binary cache of
the encoded chunks for later epochs, checkpoints in the middle of a stream.
"""
import queue
import threading
from dataclasses import dataclass

import numpy as np

from .features import FeatureArrays
from .params import DEFAULT_CHUNK_ROWS

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


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
    """

    def __init__(self, schema, path, chunk_rows=DEFAULT_CHUNK_ROWS, valid_frac=0.0):
        if not (isinstance(chunk_rows, (int, np.integer)) and chunk_rows >= 1):
            raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
        if not 0.0 <= valid_frac < 1.0:
            raise ValueError(f"valid_frac must be in [0, 1), got {valid_frac!r}")
        self.schema, self.path, self.chunk_rows, self.valid_frac = schema, path, int(chunk_rows), valid_frac
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
        return prefetch(self._encode(frame) for frame in self._frames(held))

    def training(self):
        """The training rows, a ``Part`` per chunk (one pass over the file, read ahead)."""
        return self._parts(held=False)

    def held_out(self):
        """The held-out rows, a ``Part`` per chunk (one pass over the file, read ahead); none without
        ``valid_frac``."""
        return self._parts(held=True) if self.valid_frac > 0 else iter(())
