"""Using a trained model on new data: SavedModel export, raw-column inputs, CSV prediction.

SavedModel signatures (``export_saved_model``), outputs ``{"predictions": float32 N}``
    ``serving_default``  ``feat_index`` int32 N*F and ``feat_value`` float32 N*F.
    ``predict_raw``      one input per feature column of the dictionary, shape N: numeric
                         columns float64 (NaN or ``missing_value`` -> 0.0 after scaling, as
                         ``FeatureDictionary.transform``; infinity is an error), categorical
                         columns strings in the canonical form of ``canonical_key``, looked
                         up in the vocabulary (unknown -> the field's OOV index). Needs no
                         Python preprocessing; ``raw_inputs`` builds these inputs from a frame.

Canonical categorical keys (``canonical_key``)
    Strings stay as they are; ints are written ``"3"``, ``"-1"``; floats with an integral
    value like ints (``3.0`` -> ``"3"``, so a column read as float because of a missing value
    matches the CSV text ``3``), other floats as ``repr`` (``"0.5"``); bools ``"True"``/``"False"``;
    missing (NaN/None) ``""``. A vocabulary whose values collide under this form (the string
    ``"3"`` and the int ``3``) cannot be exported.
"""
import math
import numbers
import os
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf import meta_graph_pb2

from . import graph as G
from . import persistence
from .atomic import atomic_write, write_directory_atomically
from .features import read_header

PREDICT_CSV_CHUNK_ROWS = 100_000
SAVED_MODEL_FILE = "saved_model.pb"
OUTPUT_KEY = "predictions"


def canonical_key(value):
    """The string under which a categorical value is looked up in the ``predict_raw`` signature."""
    value = value.item() if isinstance(value, np.generic) else value
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


def raw_inputs(df, feature_dictionary):
    """The ``predict_raw`` inputs for ``df``: column -> float64 (numeric) or canonical-string array."""
    fd = feature_dictionary
    fd._check_input(df)
    inputs = {}
    for col in fd.fields:
        if col in fd.scaling_params:
            inputs[col] = fd._numeric_values(df, col)[0]  # raw, with NaN; validated (strings, inf)
        else:
            inputs[col] = np.array([canonical_key(v) for v in df[col].to_numpy(dtype=object)], dtype=object)
    return inputs


def _vocabulary_table(fd, col):
    keys = {}
    for value, index in fd.feat_dict[col].items():
        key = canonical_key(value)
        if key in keys:
            raise ValueError(f"categorical column {col!r} holds values {value!r} and {keys[key][0]!r} that share "
                             f"the canonical key {key!r}; the raw signature cannot tell them apart")
        keys[key] = (value, index)
    initializer = tf.lookup.KeyValueTensorInitializer(
        list(keys), tf.constant([index for _, index in keys.values()], tf.int32), tf.string, tf.int32)
    return tf.lookup.StaticHashTable(initializer, default_value=fd.oov_index[col])


def _raw_features(fd):
    """Placeholders for the raw columns and the ``(feat_index, feat_value)`` computed from them."""
    inputs, indices, values = {}, [], []
    for j, col in enumerate(fd.fields):
        if col in fd.scaling_params:
            x = inputs[col] = tf.placeholder(tf.float64, [None], name=f"raw_{j}")
            params = fd.scaling_params[col]
            missing = tf.math.is_nan(x)
            if fd.missing_value is not None:
                missing = missing | tf.equal(x, float(fd.missing_value))
            finite = tf.debugging.assert_equal(tf.reduce_any(tf.math.is_inf(x)), False,
                                               message=f"numeric column {col!r} holds an infinite value")
            with tf.control_dependencies([finite]):
                scaled = tf.where(missing, tf.zeros_like(x), (x - params["center"]) / params["scale"])
            values.append(tf.cast(scaled, tf.float32))  # float64 math then rounding, as transform does
            indices.append(tf.fill(tf.shape(x), tf.constant(fd.feat_dict[col], tf.int32)))
        else:
            s = inputs[col] = tf.placeholder(tf.string, [None], name=f"raw_{j}")
            indices.append(_vocabulary_table(fd, col).lookup(s))
            values.append(tf.ones(tf.shape(s), tf.float32))
    return inputs, tf.stack(indices, 1), tf.stack(values, 1)  # N * F each


def _signature(inputs, outputs):
    """A predict ``SignatureDef`` (built directly: TF's builders log deprecation warnings)."""
    def info(tensor):
        return meta_graph_pb2.TensorInfo(name=tensor.name, dtype=tensor.dtype.as_datatype_enum,
                                         tensor_shape=tensor.shape.as_proto())
    return meta_graph_pb2.SignatureDef(inputs={k: info(t) for k, t in inputs.items()},
                                       outputs={k: info(t) for k, t in outputs.items()},
                                       method_name=tf.saved_model.signature_constants.PREDICT_METHOD_NAME)


def export_saved_model(model, directory, feature_dictionary=None):
    """Write ``model`` as a SavedModel (tag ``serve``) to ``directory``, atomically; return it.

    ``predict_raw`` is added when a feature dictionary is given or bundled with the model.
    """
    model._check_fitted()
    fd = persistence.feature_dictionary_for(model, feature_dictionary)
    values = model.get_weights()
    cfg = model._graph.cfg
    graph = tf.Graph()
    with graph.as_default():
        weights = G.init_weights(cfg)
        feat_index = tf.placeholder(tf.int32, [None, cfg.field_size], name="feat_index")
        feat_value = tf.placeholder(tf.float32, [None, cfg.field_size], name="feat_value")
        signatures = {"serving_default": _signature(
            {"feat_index": feat_index, "feat_value": feat_value},
            {OUTPUT_KEY: G.inference(weights, cfg, feat_index, feat_value)})}
        if fd is not None:
            raw, raw_index, raw_value = _raw_features(fd)
            signatures["predict_raw"] = _signature(raw, {OUTPUT_KEY: G.inference(weights, cfg, raw_index, raw_value)})
        tables_init = tf.tables_initializer()

    def write(tmp):
        with tf.Session(graph=graph) as session:
            for name, var in weights.items():
                session.run(var.initializer, {var.initial_value: values[name]})
            builder = tf.saved_model.Builder(str(tmp))
            builder.add_meta_graph_and_variables(session, [tf.saved_model.tag_constants.SERVING],
                                                 signature_def_map=signatures, main_op=tables_init,
                                                 strip_default_attrs=True)
            builder.save()

    write_directory_atomically(directory, write, SAVED_MODEL_FILE)
    return directory


# ---------------------------------------------------------------- batch prediction
def _required_dictionary(model, feature_dictionary):
    fd = persistence.feature_dictionary_for(model, feature_dictionary)
    if fd is None:
        raise ValueError("the model has no feature dictionary: save it with model.save(path, "
                         "feature_dictionary=fd) or pass feature_dictionary")
    return fd


def predict_frame(model, df, feature_dictionary=None):
    """Predictions for the raw frame ``df`` through the model's bundled (or the given) dictionary."""
    Xi, Xv = _required_dictionary(model, feature_dictionary).transform(df)
    return model.predict(Xi, Xv)


def _read_chunks(path, chunksize):
    try:
        yield from pd.read_csv(path, chunksize=chunksize)
    except pd.errors.ParserError as err:
        raise ValueError(f"{path} could not be parsed: {' '.join(str(err).split())}") from None


def predict_csv(model, input_path, output_path, chunksize=PREDICT_CSV_CHUNK_ROWS, id_col=None,
                feature_dictionary=None):
    """Stream ``input_path`` in chunks of ``chunksize`` rows to a CSV of ``id,target`` rows.

    ``model`` is a fitted ``DeepFM`` or the directory of its save (loaded once the input's
    header has been checked). The id column is ``id_col`` (default: the dictionary's
    ``id_col``), the prediction column the dictionary's ``label_col``. The output is written
    atomically; returns the number of rows.
    """
    if not (isinstance(chunksize, numbers.Integral) and chunksize >= 1):
        raise ValueError(f"chunksize must be a positive integer, got {chunksize!r}")
    header = read_header(input_path)
    if isinstance(model, (str, os.PathLike)):
        from .estimator import DeepFM  # here: the estimator module imports this one

        model = DeepFM.load(model)
    fd = _required_dictionary(model, feature_dictionary)
    id_col = fd.id_col if id_col is None else id_col
    if id_col not in header:
        raise ValueError(f"{input_path} has no id column {id_col!r} (choose it with id_col / --id-col)")
    output_path = Path(output_path)
    if not output_path.parent.is_dir():
        raise FileNotFoundError(f"the output directory {output_path.parent} does not exist")
    rows = 0

    def write(out):
        nonlocal rows
        for chunk in _read_chunks(input_path, chunksize):
            if len(chunk) == 0:  # a header-only file gives one empty chunk
                continue
            result = pd.DataFrame({id_col: chunk[id_col].to_numpy(),
                                   fd.label_col: model.predict(*fd.transform(chunk))})
            result.to_csv(out, header=rows == 0, index=False, lineterminator="\n")
            rows += len(chunk)
        if rows == 0:
            raise ValueError(f"{input_path} has a header but no data rows")

    atomic_write(output_path, write)
    return rows
