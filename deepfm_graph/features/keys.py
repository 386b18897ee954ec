"""Canonical string keys of categorical values, and their stable hash.

A categorical value is known by one string, its *key*: strings as they are; ints as ``"3"``,
``"-1"``; floats with an integral value like ints (``3.0`` -> ``"3"``, so a column that pandas
read as float because of a missing value still matches the CSV text ``3``), other floats as
``repr`` (``"0.5"``); bools ``"True"``/``"False"``; missing (NaN, None) ``""``. The typed
feature columns, their JSON and the SavedModel's raw signature all use this one form.

``hash_keys`` maps keys to uint32: FNV-1a over the key's UTF-8 bytes, then the ``lowbias32``
finaliser. It is a pure function of the bytes (not Python's salted ``hash()``), written once
in numpy here and once in TensorFlow ops (``tf_hash_keys``), which agree bit for bit.
"""
import math
import numbers

import numpy as np
import pandas as pd

from ..checks import native

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
MIX_1, MIX_2 = 0x7FEB352D, 0x846CA68B  # lowbias32 (C. Wellons)
EXACT_FLOAT_INTEGERS = 2.0 ** 53


def canonical_key(value):
    """The key of one categorical value (see the module docstring)."""
    value = native(value)
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise TypeError(f"categorical value {value!r} of type {type(value).__name__} has no canonical key")


_MIXED = ("mixed", "mixed-integer", "boolean")  # object columns whose values need keying one by one


def key_codes(values):
    """``(codes, keys)`` of a Series or 1-D array: ``keys`` (object array of str) holds the key of each
    distinct value, ``codes`` (intp N) each value's position in it, so ``keys[codes]`` are the values'
    keys. Distinct values are keyed once each; two values may share a key (``3`` and ``3.0``)."""
    array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if array.dtype.kind != "O":
        return pd.factorize(_vector_keys(array))
    inferred = pd.api.types.infer_dtype(array, skipna=True)
    if inferred in _MIXED:
        # factorize takes True for 1 and False for 0: bools beside numbers are keyed one by one (rare)
        return pd.factorize(np.array([canonical_key(v) for v in array], dtype=object))
    codes, uniques = pd.factorize(array, use_na_sentinel=True)
    if inferred in ("string", "empty"):
        keys = np.append(uniques.astype(object), "")  # missing (code -1) is the last key, ""
    else:
        keys = np.array([canonical_key(u) for u in uniques] + [""], dtype=object)
    return np.where(codes < 0, len(keys) - 1, codes), keys


def canonical_keys(values):
    """Keys of a Series or 1-D array, as an object array of str (N); vectorised per dtype."""
    array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if array.dtype.kind != "O":
        return _vector_keys(array)
    codes, keys = key_codes(array)
    return keys[codes]


def _vector_keys(array):
    """Keys of a numeric or bool array (N), vectorised."""
    kind = array.dtype.kind
    if kind in "iu":
        return array.astype(str).astype(object)
    if kind == "b":
        return np.where(array, "True", "False").astype(object)
    if kind == "f":
        x = array.astype(np.float64)
        keys = np.full(len(x), "", dtype=object)
        finite = np.isfinite(x)
        integral = finite & (x == np.floor(np.where(finite, x, 0.0)))
        small = integral & (np.abs(x) < 2.0 ** 63)
        keys[small] = x[small].astype(np.int64).astype(str)
        keys[integral & ~small] = [str(int(v)) for v in x[integral & ~small]]  # beyond int64: rare
        other = ~integral & ~np.isnan(x)
        keys[other] = x[other].astype(str)  # numpy writes the shortest round-trip form, as repr does
        return keys
    return canonical_keys(array.astype(object))


def _mix32(h):
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(MIX_1)
    h = h ^ (h >> np.uint32(15))
    h = h * np.uint32(MIX_2)
    return h ^ (h >> np.uint32(16))


def hash_keys(keys):
    """uint32 hash of each key (an array of str, N): FNV-1a of its UTF-8 bytes, then lowbias32.

    Distinct keys are hashed once each; the bytes are processed one position at a time over
    all keys at once (a loop over the longest key's length, not over the keys).
    """
    keys = np.asarray(keys, dtype=object)
    codes, uniques = pd.factorize(keys)
    utf8 = [k.encode("utf-8") for k in uniques]
    lengths = np.array([len(b) for b in utf8], dtype=np.int64)  # numpy's bytes arrays drop trailing NULs
    width = max(int(lengths.max(initial=0)), 1)
    encoded = np.array(utf8, dtype=f"S{width}")
    data = np.frombuffer(encoded.tobytes(), np.uint8).reshape(len(encoded), width)
    h = np.full(len(encoded), FNV_OFFSET, dtype=np.uint32)
    with np.errstate(over="ignore"):
        for j in range(width):
            active = j < lengths
            h = np.where(active, (h ^ data[:, j].astype(np.uint32)) * np.uint32(FNV_PRIME), h)
        h = _mix32(h)
    return h[codes]


def tf_hash_keys(strings):
    """``hash_keys`` of a string tensor (N), as TensorFlow ops (for the SavedModel's raw signature)."""
    import tensorflow.compat.v1 as tf  # here: the feature modules stay free of TensorFlow

    lengths = tf.strings.length(strings)  # bytes
    width = tf.maximum(tf.reduce_max(tf.concat([lengths, [0]], 0)), 1)
    data = tf.cast(tf.raw_ops.DecodePaddedRaw(input_bytes=strings, fixed_length=width, out_type=tf.uint8),
                   tf.uint32)  # N * width, zero-padded

    def step(j, h):
        mixed = tf.bitwise.bitwise_xor(h, data[:, j]) * tf.constant(FNV_PRIME, tf.uint32)
        return j + 1, tf.where(j < lengths, mixed, h)

    h0 = tf.fill(tf.shape(strings), tf.constant(FNV_OFFSET, tf.uint32))
    _, h = tf.while_loop(lambda j, h: j < width, step, [tf.constant(0), h0])

    def shift_xor(x, bits):
        return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(bits, tf.uint32)))

    h = shift_xor(h, 16) * tf.constant(MIX_1, tf.uint32)
    h = shift_xor(h, 15) * tf.constant(MIX_2, tf.uint32)
    return shift_xor(h, 16)
