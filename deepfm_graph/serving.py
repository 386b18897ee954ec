"""Using a trained model on new data: SavedModel export, raw-column inputs, CSV prediction.

SavedModel signatures (``export_saved_model``), outputs ``{"predictions": float32 N}``
    ``serving_default``  ``feat_index`` int32 N*F and ``feat_value`` float32 N*F, and for each
                         sequence field s ``seq_index_s`` int32 N*L_s and ``seq_weight_s``.
    ``predict_raw``      one input per feature column, shape N. With a ``FeatureSpec`` each
                         column kind builds its own lookup (``Column.raw_lookup``): numeric
                         float64, categorical and hashed the canonical key string, sequence
                         the row's values joined by the column's ``sep``. With a classic
                         ``FeatureDictionary``: numeric
                         columns float64 (NaN or ``missing_value`` -> 0.0 after scaling, as
                         ``FeatureDictionary.transform``; infinity is an error), categorical
                         columns strings in the canonical form of ``canonical_key``, looked
                         up in the vocabulary (unknown -> the field's OOV index). Needs no
                         Python preprocessing; ``raw_inputs`` builds these inputs from a frame.

Canonical categorical keys (``features.keys.canonical_key``): a FeatureDictionary vocabulary
whose values collide under this form (the string ``"3"`` and the int ``3``) cannot be exported.

Batch prediction of files: ``predict_csv`` (a model with a classic dictionary: ``id,target``
rows) and ``predict_table`` (a model with a ``FeatureSpec`` from a dataset schema: read with
the schema's separator, header and names; a ``prediction`` column, after the id column when
the schema has one). Both read in chunks and write atomically.
"""
import numbers
import os
from pathlib import Path

import pandas as pd
import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf import meta_graph_pb2

from . import graph as G
from . import persistence
from .atomic import atomic_write, write_directory_atomically
from .features import DatasetSchema, FeatureArrays, FeatureSpec, canonical_key, canonical_keys, read_header

PREDICT_CSV_CHUNK_ROWS = 100_000
SAVED_MODEL_FILE = "saved_model.pb"
OUTPUT_KEY = "predictions"


def raw_inputs(df, feature_dictionary):
    """The ``predict_raw`` inputs for ``df``: column -> float64 (numeric) or canonical-string array."""
    fd = feature_dictionary
    if isinstance(fd, FeatureSpec):
        return fd.raw_inputs(df)
    fd._check_input(df)
    inputs = {}
    for col in fd.fields:
        if col in fd.scaling_params:
            inputs[col] = fd._numeric_values(df, col)[0]  # raw, with NaN; validated (strings, inf)
        else:
            inputs[col] = canonical_keys(df[col])
    return inputs


def encode(features, df):
    """``df`` encoded by a ``FeatureDictionary`` or ``FeatureSpec`` as ``FeatureArrays``."""
    if isinstance(features, FeatureSpec):
        return features.transform(df)
    return FeatureArrays(*features.transform(df))


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
    """Placeholders for the raw columns and the ``(feat_index, feat_value, sequences)`` computed from them."""
    if isinstance(fd, FeatureSpec):
        return fd.raw_features()
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
    return inputs, tf.stack(indices, 1), tf.stack(values, 1), ()  # N * F each


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
        sequences = G.sequence_placeholders(cfg)
        inputs = {"feat_index": feat_index, "feat_value": feat_value}
        for s, (index, weight) in enumerate(sequences):
            inputs[f"seq_index_{s}"], inputs[f"seq_weight_{s}"] = index, weight
        signatures = {"serving_default": _signature(
            inputs, {OUTPUT_KEY: G.inference(weights, cfg, feat_index, feat_value, sequences)})}
        if fd is not None:
            raw, raw_index, raw_value, raw_sequences = _raw_features(fd)
            signatures["predict_raw"] = _signature(
                raw, {OUTPUT_KEY: G.inference(weights, cfg, raw_index, raw_value, raw_sequences)})
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
    """Predictions for the raw frame ``df`` through the model's bundled (or the given) dictionary or spec."""
    X = encode(_required_dictionary(model, feature_dictionary), df)
    return model.predict(X.Xi, X.Xv, X.Xs)


def _loaded(model):
    if isinstance(model, (str, os.PathLike)):
        from .estimator import DeepFM  # here: the estimator module imports this one

        return DeepFM.load(model)
    return model


def _check_output(output_path):
    if not Path(output_path).parent.is_dir():
        raise FileNotFoundError(f"the output directory {Path(output_path).parent} does not exist")


def _check_chunksize(chunksize):
    if not (isinstance(chunksize, numbers.Integral) and chunksize >= 1):
        raise ValueError(f"chunksize must be a positive integer, got {chunksize!r}")


PREDICTION_COL = "prediction"


def predict_table(model, input_path, output_path, chunksize=PREDICT_CSV_CHUNK_ROWS):
    """Predict the file ``input_path`` with a model whose bundled ``FeatureSpec`` came from a dataset
    schema: read it in chunks of ``chunksize`` rows with the schema's separator, header and names
    (the label column may be absent), and write a CSV with a ``prediction`` column, after the id
    column when the schema has one, one row per input row in input order. ``model``: a fitted
    ``DeepFM`` or a save directory. Atomic; returns the number of rows.
    """
    _check_chunksize(chunksize)
    model = _loaded(model)
    spec = _required_dictionary(model, None)
    if not isinstance(spec, FeatureSpec) or spec.schema is None:
        raise ValueError("the model was not trained from a dataset schema (it has no FeatureSpec with a schema); "
                         "predict it with predict_csv")
    schema = DatasetSchema.from_dict(spec.schema)
    _check_output(output_path)
    chunks = schema.read(input_path, chunksize=chunksize, need_label=False)

    def predict_chunk(chunk, first_row):
        try:
            X = spec.transform(chunk)
        except ValueError as err:  # rows are the file's data rows: chunks keep counting
            raise ValueError(f"{input_path}: {err}") from None
        result = pd.DataFrame({PREDICTION_COL: model.predict(X.Xi, X.Xv, X.Xs)})
        if schema.id:
            result.insert(0, schema.id, chunk[schema.id].to_numpy())
        return result

    return _write_predictions(output_path, chunks, predict_chunk, f"{input_path} has no data rows")


def _write_predictions(output_path, chunks, predict_chunk, empty_message):
    """Write ``predict_chunk(chunk, first row)`` (a frame) of every non-empty chunk as one CSV, atomically;
    returns the number of rows (``ValueError(empty_message)`` for none)."""
    rows = 0

    def write(out):
        nonlocal rows
        for chunk in chunks:
            if len(chunk) == 0:  # a header-only file gives one empty chunk
                continue
            predict_chunk(chunk, rows).to_csv(out, header=rows == 0, index=False, lineterminator="\n")
            rows += len(chunk)
        if rows == 0:
            raise ValueError(empty_message)

    atomic_write(output_path, write)
    return rows


def _read_chunks(path, chunksize):
    try:
        yield from pd.read_csv(path, chunksize=chunksize, encoding="utf-8-sig")
    except pd.errors.ParserError as err:
        raise ValueError(f"{path} could not be parsed: {' '.join(str(err).split())}") from None


def predict_csv(model, input_path, output_path, chunksize=PREDICT_CSV_CHUNK_ROWS, id_col=None,
                feature_dictionary=None):
    """Stream ``input_path`` in chunks of ``chunksize`` rows to a CSV of ``id,target`` rows.

    ``model`` is a fitted ``DeepFM`` or the directory of its save (loaded once the input's
    header has been checked). The id column is ``id_col`` (default: the dictionary's
    ``id_col``, left out when the input has none), the prediction column the dictionary's
    ``label_col``. The output is written atomically; returns the number of rows.
    """
    _check_chunksize(chunksize)
    header = read_header(input_path)
    model = _loaded(model)
    fd = _required_dictionary(model, feature_dictionary)
    if isinstance(fd, FeatureSpec):
        raise ValueError("the model was trained from a dataset schema: predict it with predict_table")
    if id_col is not None and id_col not in header:
        raise ValueError(f"{input_path} has no id column {id_col!r} (choose it with id_col / --id-col)")
    id_col = id_col or (fd.id_col if fd.id_col in header else None)
    _check_output(output_path)

    def predict_chunk(chunk, first_row):
        result = pd.DataFrame({fd.label_col: model.predict(*fd.transform(chunk))})
        if id_col is not None:
            result.insert(0, id_col, chunk[id_col].to_numpy())
        return result

    return _write_predictions(output_path, _read_chunks(input_path, chunksize), predict_chunk,
                              f"{input_path} has a header but no data rows")
