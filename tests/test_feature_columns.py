"""Tests for the typed feature columns (deepfm_graph.features: keys, numeric, categorical, hashed,
sequence, spec), each checked against an independent computation: pure Python, numpy, pandas or
values worked out by hand. TensorFlow is imported only by the raw_lookup / tf_hash_keys tests."""
import copy
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from deepfm_graph.features import (
    Categorical,
    FeatureSpec,
    Hashed,
    Numeric,
    Sequence,
    canonical_key,
    canonical_keys,
    hash_keys,
)

M32 = 2 ** 32


# ------------------------------------------------------------------ independent references
def fnv1a32(data):
    """FNV-1a 32 of ``data`` (bytes), pure Python."""
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) % M32
    return h


def lowbias32(h):
    h ^= h >> 16
    h = (h * 0x7FEB352D) % M32
    h ^= h >> 15
    h = (h * 0x846CA68B) % M32
    h ^= h >> 16
    return h


def reference_hash(key):
    return lowbias32(fnv1a32(key.encode("utf-8")))


def run_tf(build, feed_values, dtype):
    """Build ``build(placeholder)`` in a fresh graph and run it on ``feed_values``."""
    import tensorflow.compat.v1 as tf

    with tf.Graph().as_default():
        raw = tf.placeholder(getattr(tf, dtype), [None])
        outputs = build(raw)
        with tf.Session() as session:
            session.run(tf.tables_initializer())
            return session.run(outputs, {raw: feed_values})


def random_strings(n, seed=0):
    """Strings of 0..40 characters over ASCII and 2-, 3- and 4-byte UTF-8 characters."""
    rng = np.random.default_rng(seed)
    alphabet = list("abcXYZ019 |,;-_.") + ["é", "ß", "中", "文", "😀", "€", "\t"]
    out = ["", "a", "é", "😀"]
    while len(out) < n:
        length = int(rng.integers(0, 41))
        out.append("".join(rng.choice(alphabet, length)))
    return out


# ------------------------------------------------------------------ keys
def test_reference_fnv1a_matches_published_test_vectors():
    # FNV-1a 32 test vectors (Fowler/Noll/Vo), to trust the reference used below
    assert fnv1a32(b"") == 0x811C9DC5
    assert fnv1a32(b"a") == 0xE40C292C
    assert fnv1a32(b"foobar") == 0xBF9CF968


CANONICAL_CASES = {
    "int64": np.array([0, 3, -1, 2 ** 62, -2 ** 63, 2 ** 63 - 1], dtype=np.int64),
    "uint64": np.array([0, 2 ** 64 - 1], dtype=np.uint64),
    "int8": np.array([-128, 5], dtype=np.int8),
    "float_integral": np.array([3.0, -0.0, -1.0, 1e15, 1e16, 2.0 ** 53, 2.0 ** 63, -2.0 ** 63]),
    "float_non_integral": np.array([0.5, 0.1, -2.25, 1e-5, 1e-4, 5e-324, 123456789012.5, 1e15 + 0.5,
                                    1234567890123456.7]),
    "float_nan_inf": np.array([np.nan, 1.0, np.inf, -np.inf]),
    "float_huge": np.array([1e300, -1.5e300, np.finfo(np.float64).max]),
    "float32": np.array([0.1, 3.0, np.nan], dtype=np.float32),
    "bool": np.array([True, False, True]),
    "str": np.array(["a", "", " b ", "é中", "3", "3.0"], dtype=object),
    "mixed_object": np.array(["a", 3, 3.0, 2.5, None, np.nan, np.int64(7), np.float64(8.0), pd.NA, "", False,
                              np.float32(0.5)], dtype=object),
}


@pytest.mark.parametrize("case", sorted(CANONICAL_CASES))
def test_canonical_keys_equals_canonical_key_elementwise(case):
    values = CANONICAL_CASES[case]
    assert list(canonical_keys(values)) == [canonical_key(v) for v in values]


def test_canonical_keys_of_pandas_series_equals_canonical_key_elementwise():
    for series in (pd.Series([1, None, 3], dtype="Int64"), pd.Series(["x", None, "y"]),
                   pd.Series([1.5, None, 2.0], dtype="Float64"), pd.Series([1.0, np.nan, 2.5])):
        assert list(canonical_keys(series)) == [canonical_key(v) for v in series.astype(object)]


def test_canonical_key_values_by_hand():
    values = [3, 3.0, "3", np.int32(3), np.float64(3.0), -1, -1.0, 0.5, True, False, None, np.nan, "", 1e16, -0.0]
    want = ["3", "3", "3", "3", "3", "-1", "-1", "0.5", "True", "False", "", "", "", "10000000000000000", "0"]
    assert [canonical_key(v) for v in values] == want
    assert list(canonical_keys(np.array(values, dtype=object))[:8]) == want[:8]


def test_canonical_key_of_huge_integral_float_is_its_exact_integer():
    assert canonical_key(1e300) == str(int(1e300))
    assert canonical_keys(np.array([1e300]))[0] == str(int(1e300))


def test_canonical_key_of_unsupported_type_raises_type_error():
    with pytest.raises(TypeError):
        canonical_key(object())


@pytest.mark.parametrize("values", [[1, True], [True, 1], [0, False, 0.0], [1.0, True, "True"]])
def test_canonical_keys_keeps_bools_apart_from_equal_numbers_in_mixed_objects(values):
    values = np.array(values, dtype=object)
    assert list(canonical_keys(values)) == [canonical_key(v) for v in values]


@pytest.mark.parametrize("keys", [["a", "foobar", "hello world", "3", "-1", "True"], [""], ["", "a", ""],
                                  ["é", "中文", "😀", "naïve café", "Ω≈ç√"], ["x" * 300, "x" * 299]])
def test_hash_keys_equals_pure_python_fnv1a_lowbias32(keys):
    got = hash_keys(np.array(keys, dtype=object))
    assert got.dtype == np.uint32
    assert [int(h) for h in got] == [reference_hash(k) for k in keys]


def test_hash_keys_of_no_keys_is_empty():
    assert hash_keys(np.array([], dtype=object)).shape == (0,)


def test_hash_keys_is_the_same_for_repeated_and_reordered_keys():
    keys = random_strings(60, seed=5)
    forward = hash_keys(np.array(keys + keys, dtype=object))
    backward = hash_keys(np.array(keys[::-1], dtype=object))
    assert [int(h) for h in forward] == [reference_hash(k) for k in keys + keys]
    np.testing.assert_array_equal(backward, forward[:len(keys)][::-1])


def test_hash_keys_counts_a_trailing_nul_byte():
    keys = ["a\x00", "a", "\x00"]
    assert [int(h) for h in hash_keys(np.array(keys, dtype=object))] == [reference_hash(k) for k in keys]


def test_hash_keys_is_the_same_in_a_process_with_another_hash_seed():
    keys = ["a", "", "é中😀", "Comedy", "68fd1e64"]
    seed = "12345" if os.environ.get("PYTHONHASHSEED") != "12345" else "54321"
    # the feature modules import no TensorFlow, so the child process is fast
    code = ("import numpy as np; from deepfm_graph.features import keys; "
            f"print(hash({keys[3]!r})); "
            f"print(' '.join(str(int(h)) for h in keys.hash_keys(np.array({keys!r}, dtype=object))))")
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONHASHSEED=seed),
                          capture_output=True, text=True, timeout=120, check=True)
    salted, hashes = done.stdout.splitlines()
    assert int(salted) != hash(keys[3])  # the child's str hash is salted differently
    want = [reference_hash(k) for k in keys]
    assert [int(t) for t in hashes.split()] == want
    assert [int(h) for h in hash_keys(np.array(keys, dtype=object))] == want


def test_tf_hash_keys_equals_hash_keys_bit_for_bit():
    from deepfm_graph.features.keys import tf_hash_keys

    keys = random_strings(300, seed=1)
    got = run_tf(tf_hash_keys, np.array(keys, dtype=object), "string")
    np.testing.assert_array_equal(got.astype(np.uint32), hash_keys(np.array(keys, dtype=object)))
    assert [int(h) for h in got] == [reference_hash(k) for k in keys]


def test_tf_hash_keys_of_only_empty_strings_is_the_fnv_offset_mixed():
    from deepfm_graph.features.keys import tf_hash_keys

    got = run_tf(tf_hash_keys, np.array(["", ""], dtype=object), "string")
    assert [int(h) for h in got] == [lowbias32(0x811C9DC5)] * 2


# ------------------------------------------------------------------ numeric
TRAIN_X = np.array([1.0, 4.0, 2.0, 10.0, -3.0, 0.0, 7.5, 100.0])
TEST_X = np.array([0.0, 1.0, -50.0, 1000.0, 3.3])


def test_numeric_standard_scaling_equals_numpy():
    column = Numeric("x").fit(pd.Series(TRAIN_X))
    _, value = column.transform(pd.Series(TEST_X))
    want = (TEST_X - TRAIN_X.mean()) / TRAIN_X.std()
    np.testing.assert_allclose(value, want.astype(np.float32), rtol=1e-6)
    assert value.dtype == np.float32


def test_numeric_minmax_scaling_equals_numpy():
    column = Numeric("x", scaling="minmax").fit(pd.Series(TRAIN_X))
    _, value = column.transform(pd.Series(TEST_X))
    want = (TEST_X - TRAIN_X.min()) / (TRAIN_X.max() - TRAIN_X.min())
    np.testing.assert_allclose(value, want, rtol=1e-6)


def test_numeric_without_scaling_passes_values_through():
    column = Numeric("x", scaling="none").fit(pd.Series(TRAIN_X))
    index, value = column.transform(pd.Series(TEST_X))
    np.testing.assert_array_equal(value, TEST_X.astype(np.float32))
    np.testing.assert_array_equal(index, np.zeros(len(TEST_X)))
    assert column.size_ == 1


def test_numeric_constant_column_is_scaled_by_one_not_zero():
    column = Numeric("x").fit(pd.Series([5.0, 5.0, 5.0]))
    _, value = column.transform(pd.Series([5.0, 6.0]))
    np.testing.assert_array_equal(value, [0.0, 1.0])


@pytest.mark.parametrize("scaling", ["standard", "minmax", "none"])
def test_numeric_log1p_is_signed_log1p_then_scaled(scaling):
    column = Numeric("x", transform="log1p", scaling=scaling).fit(pd.Series(TRAIN_X))
    _, value = column.transform(pd.Series(TEST_X))
    t_train = np.sign(TRAIN_X) * np.log1p(np.abs(TRAIN_X))
    t_test = np.sign(TEST_X) * np.log1p(np.abs(TEST_X))
    if scaling == "standard":
        want = (t_test - t_train.mean()) / t_train.std()
    elif scaling == "minmax":
        want = (t_test - t_train.min()) / (t_train.max() - t_train.min())
    else:
        want = t_test
    np.testing.assert_allclose(value, want, rtol=1e-6, atol=1e-7)


def test_numeric_missing_markers_and_nan_are_left_out_of_statistics_and_encoded_zero():
    train = pd.Series([1.0, -1.0, 3.0, np.nan, 5.0, -999.0])
    column = Numeric("x", missing=[-1, -999]).fit(train)
    observed = np.array([1.0, 3.0, 5.0])
    assert column.center_ == pytest.approx(observed.mean())
    assert column.scale_ == pytest.approx(observed.std())
    _, value = column.transform(pd.Series([-1.0, np.nan, -999.0, 3.0, 5.0]))
    np.testing.assert_allclose(value, [0.0, 0.0, 0.0, 0.0, (5.0 - 3.0) / observed.std()], atol=1e-7)


def test_numeric_minus_one_is_a_value_not_missing_by_default():
    # the Criteo I2 case: -1 is a real count there
    train = pd.Series([-1.0, 0.0, 2.0, 3.0])
    column = Numeric("I2").fit(train)
    assert column.center_ == pytest.approx(train.mean())
    _, value = column.transform(pd.Series([-1.0]))
    assert value[0] == pytest.approx((-1.0 - train.mean()) / train.to_numpy().std(), rel=1e-6)
    assert value[0] != 0.0


def test_numeric_reads_numbers_given_as_text():
    column = Numeric("x", scaling="none").fit(pd.Series(["1", "2.5", None]))
    _, value = column.transform(pd.Series(["-3", "1e2", None]))
    np.testing.assert_array_equal(value, [-3.0, 100.0, 0.0])


def test_numeric_empty_text_cell_is_missing():
    column = Numeric("x", scaling="none").fit(pd.Series(["1", "", "3"]))
    _, value = column.transform(pd.Series(["", "2"]))
    np.testing.assert_array_equal(value, [0.0, 2.0])


def bucket_reference(train, test, bins):
    observed = train[~np.isnan(train)]
    edges = np.unique(np.quantile(observed, np.linspace(0, 1, bins + 1)[1:-1]))
    index = np.searchsorted(edges, np.nan_to_num(test), side="right")
    return edges, np.where(np.isnan(test), len(edges) + 1, index)


def test_numeric_bucketize_equals_numpy_quantile_edges_and_searchsorted():
    rng = np.random.default_rng(3)
    train = np.append(rng.exponential(10.0, 200), [np.nan, np.nan])
    column = Numeric("x", transform="bucketize", bins=5).fit(pd.Series(train))
    edges, _ = bucket_reference(train, train, 5)
    np.testing.assert_allclose(column.edges_, edges, rtol=0)
    assert column.size_ == len(edges) + 2
    test = np.concatenate([edges, [-1e6, 1e6, np.nan, 0.0], rng.exponential(10.0, 30)])
    index, value = column.transform(pd.Series(test))
    np.testing.assert_array_equal(index, bucket_reference(train, test, 5)[1])
    np.testing.assert_array_equal(value, np.ones(len(test), np.float32))


def test_numeric_bucketize_outside_training_range_goes_to_end_bins_and_missing_after_them():
    train = np.arange(1.0, 11.0)  # edges 2.8, 4.6, 6.4, 8.2 with 5 bins
    column = Numeric("x", transform="bucketize", bins=5).fit(pd.Series(train))
    np.testing.assert_allclose(column.edges_, [2.8, 4.6, 6.4, 8.2])
    index, _ = column.transform(pd.Series([-100.0, 1.0, 4.6, 10.0, 1e9, np.nan]))
    np.testing.assert_array_equal(index, [0, 0, 2, 4, 4, 5])


def test_numeric_bucketize_merges_duplicate_edges_and_missing_marker_gets_missing_index():
    train = pd.Series([0.0] * 8 + [1.0, 2.0, -1.0, -1.0])
    column = Numeric("x", transform="bucketize", bins=4, missing=[-1]).fit(train)
    observed = np.array([0.0] * 8 + [1.0, 2.0])
    edges = np.unique(np.quantile(observed, [0.25, 0.5, 0.75]))
    np.testing.assert_allclose(column.edges_, edges)
    index, _ = column.transform(pd.Series([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(index, [len(edges) + 1, np.searchsorted(edges, 0.0, "right"),
                                          np.searchsorted(edges, 2.0, "right")])


def test_numeric_fitted_on_only_missing_values_keeps_values_unscaled():
    column = Numeric("x").fit(pd.Series([np.nan, np.nan]))
    assert (column.center_, column.scale_) == (0.0, 1.0)
    np.testing.assert_array_equal(column.transform(pd.Series([2.5, np.nan]))[1], [2.5, 0.0])
    bucketized = Numeric("x", transform="bucketize").fit(pd.Series([np.nan]))
    assert bucketized.edges_ == [] and bucketized.size_ == 2
    np.testing.assert_array_equal(bucketized.transform(pd.Series([7.0, np.nan]))[0], [0, 1])


@pytest.mark.parametrize("bad", [["1", "abc", "2"], [1.0, np.inf, 2.0], [1.0, -np.inf, 2.0]])
def test_numeric_non_numeric_text_or_inf_raises_naming_the_column(bad):
    with pytest.raises(ValueError, match="'price'"):
        Numeric("price").fit(pd.Series(bad, dtype=object))
    fitted = Numeric("price").fit(pd.Series([1.0, 2.0]))
    with pytest.raises(ValueError, match="'price'.*row 1"):
        fitted.transform(pd.Series(bad, dtype=object))


@pytest.mark.parametrize("options, word", [
    ({"transform": "log"}, "transform"), ({"scaling": "zscore"}, "scaling"), ({"bins": 1}, "bins"),
    ({"bins": 2.5}, "bins"), ({"bins": True}, "bins"), ({"missing": "x"}, "missing"), ({"missing": -1}, "missing"),
    ({"missing": [np.nan]}, "missing"), ({"missing": ["-1"]}, "missing")])
def test_numeric_invalid_option_raises_naming_the_column(options, word):
    with pytest.raises(ValueError, match=f"'price'.*{word}"):
        Numeric("price", **options)


def test_numeric_transform_option_is_kept_beside_the_transform_method():
    column = Numeric("x", transform="log1p", scaling="none").fit(pd.Series([0.0, 3.0]))
    assert column.options == {"transform": "log1p", "scaling": "none", "bins": 10, "missing": ()}
    assert column.to_dict()["transform"] == "log1p"
    _, value = column.transform(pd.Series([np.e - 1]))
    np.testing.assert_allclose(value, [1.0], rtol=1e-6)


def test_numeric_unknown_option_raises_with_did_you_mean():
    with pytest.raises(ValueError, match=r"'price'.*'scalng'.*did you mean 'scaling'"):
        Numeric("price", scalng="minmax")


@pytest.mark.parametrize("options", [{}, {"scaling": "minmax"}, {"scaling": "none"}, {"transform": "log1p"},
                                     {"transform": "log1p", "scaling": "minmax"}, {"missing": [-1, 0.5]},
                                     {"transform": "bucketize", "bins": 4},
                                     {"transform": "bucketize", "bins": 6, "missing": [-1]}])
def test_numeric_raw_lookup_in_tensorflow_equals_transform(options):
    rng = np.random.default_rng(7)
    train = pd.Series(np.concatenate([rng.normal(3.0, 20.0, 100), [-1.0, np.nan, 0.5]]))
    test = pd.Series(np.concatenate([rng.normal(3.0, 40.0, 60), [-1.0, np.nan, 0.5, 0.0, -1e8, 1e8]]))
    column = Numeric("x", **options).fit(train)
    raw = column.raw_values(test)
    assert raw.dtype == np.float64
    index, value = run_tf(column.raw_lookup, raw, "float64")
    want_index, want_value = column.transform(test)
    np.testing.assert_array_equal(index, want_index)
    np.testing.assert_array_max_ulp(value, want_value, maxulp=1)


# ------------------------------------------------------------------ categorical
def test_categorical_vocabulary_is_sorted_keys_with_count_at_least_min_count():
    train = pd.Series(["b", "a", "b", "c", "a", "b", "d", "e", "e", "a"])
    for min_count in (1, 2, 3, 4):
        column = Categorical("c", min_count=min_count).fit(train)
        counts = train.value_counts()
        assert column.vocabulary_ == sorted(counts[counts >= min_count].index)
        assert column.size_ == len(column.vocabulary_) + 1


def test_categorical_rare_and_unseen_values_take_the_oov_index():
    train = pd.Series(["b", "a", "b", "c", "a", "b"])
    column = Categorical("c", min_count=2).fit(train)  # vocabulary a, b; OOV 2
    index, value = column.transform(pd.Series(["a", "b", "c", "zzz", None]))
    np.testing.assert_array_equal(index, [0, 1, 2, 2, 2])
    assert index.dtype == np.int64
    np.testing.assert_array_equal(value, np.ones(5, np.float32))
    assert column.oov_index_ == 2


def test_categorical_int_float_and_text_of_one_number_are_one_category():
    column = Categorical("c").fit(pd.Series([3, 4, 3]))
    assert column.vocabulary_ == ["3", "4"]
    for test in (pd.Series([3, 4]), pd.Series([3.0, 4.0]), pd.Series(["3", "4"]), pd.Series([3.0, 4.0, np.nan])[:2],
                 pd.Series([3, "4"], dtype=object)):
        np.testing.assert_array_equal(column.transform(test)[0], [0, 1])
    mixed = Categorical("c").fit(pd.Series([3, 3.0, "3"], dtype=object))
    assert mixed.vocabulary_ == ["3"]


def test_categorical_missing_is_the_empty_key_and_a_category_when_frequent():
    train = pd.Series(["x", None, "y", np.nan, "x"], dtype=object)
    column = Categorical("c").fit(train)
    assert column.vocabulary_ == ["", "x", "y"]
    np.testing.assert_array_equal(column.transform(pd.Series([None, np.nan, "y", "q"], dtype=object))[0],
                                  [0, 0, 2, 3])
    rare = Categorical("c", min_count=2).fit(pd.Series(["x", None, "x", "y", "y"], dtype=object))
    assert rare.vocabulary_ == ["x", "y"]
    np.testing.assert_array_equal(rare.transform(pd.Series([None, "x"], dtype=object))[0], [2, 0])


def test_categorical_float_column_with_nan_matches_text_of_the_integers():
    # pandas reads an int column holding an empty cell as float: 3.0 must still be category "3"
    column = Categorical("c").fit(pd.Series([1.0, np.nan, 3.0]))
    assert column.vocabulary_ == ["", "1", "3"]
    np.testing.assert_array_equal(column.transform(pd.Series(["3", "1", ""]))[0], [2, 1, 0])


@pytest.mark.parametrize("min_count", [0, -1, 1.5, True, "2"])
def test_categorical_invalid_min_count_raises_naming_the_column(min_count):
    with pytest.raises(ValueError, match="'city'.*min_count"):
        Categorical("city", min_count=min_count)


def test_categorical_unknown_option_raises_with_did_you_mean():
    with pytest.raises(ValueError, match=r"'city'.*did you mean 'min_count'"):
        Categorical("city", min_cont=2)


def test_column_name_must_be_a_non_empty_string():
    for name in ("", None, 3):
        with pytest.raises(TypeError):
            Categorical(name)


def test_categorical_raw_lookup_in_tensorflow_equals_transform():
    train = pd.Series(["b", "a", 3, 3.0, None, "é", "b", 2.5], dtype=object)
    test = pd.Series(["a", "3", 3, None, "zzz", "é", 2.5, "2.5", "", "b"], dtype=object)
    for min_count in (1, 2):
        column = Categorical("c", min_count=min_count).fit(train)
        raw = column.raw_values(test)
        assert list(raw) == [canonical_key(v) for v in test]
        index, value = run_tf(column.raw_lookup, raw, "string")
        want_index, want_value = column.transform(test)
        np.testing.assert_array_equal(index, want_index)
        np.testing.assert_array_equal(value, want_value)


# ------------------------------------------------------------------ hashed
def test_hashed_index_is_the_stable_hash_modulo_buckets():
    values = ["a", "b", "68fd1e64", "", "é", "zip 75001"] + [str(i) for i in range(50)]
    column = Hashed("h", buckets=13).fit(pd.Series(values))
    index, value = column.transform(pd.Series(values))
    np.testing.assert_array_equal(index, [reference_hash(v) % 13 for v in values])
    assert index.min() >= 0 and index.max() < 13
    np.testing.assert_array_equal(value, np.ones(len(values), np.float32))
    assert column.size_ == 13
    assert not hasattr(column, "vocabulary_")


def test_hashed_index_is_within_range_for_many_buckets():
    values = pd.Series(random_strings(200, seed=2))
    column = Hashed("h", buckets=2 ** 31).fit(values)
    index, _ = column.transform(values)
    np.testing.assert_array_equal(index, [reference_hash(v) % 2 ** 31 for v in values])
    assert index.min() >= 0 and index.max() < 2 ** 31


def test_hashed_int_float_and_text_of_one_number_share_an_index():
    column = Hashed("h", buckets=1000).fit(pd.Series(["x"]))
    index, _ = column.transform(pd.Series(["3", 3, 3.0, np.int64(3)], dtype=object))
    assert list(index) == [reference_hash("3") % 1000] * 4
    missing, _ = column.transform(pd.Series([None, np.nan], dtype=object))
    assert list(missing) == [reference_hash("") % 1000] * 2


@pytest.mark.parametrize("options", [{"buckets": 0}, {"buckets": -5}, {}, {"buckets": None}, {"buckets": 10.0},
                                     {"buckets": "10"}, {"buckets": True}, {"buckets": 2 ** 31 + 1}])
def test_hashed_invalid_buckets_raise_naming_the_column(options):
    with pytest.raises(ValueError, match="'device'.*buckets"):
        Hashed("device", **options)


def test_hashed_raw_lookup_in_tensorflow_equals_transform():
    test = pd.Series(random_strings(100, seed=4) + [3, 3.0, None, 2.5], dtype=object)
    column = Hashed("h", buckets=97).fit(test)
    index, value = run_tf(column.raw_lookup, column.raw_values(test), "string")
    want_index, want_value = column.transform(test)
    np.testing.assert_array_equal(index, want_index)
    np.testing.assert_array_equal(value, want_value)


# ------------------------------------------------------------------ sequence
GENRES = pd.Series(["a|b", "b", "", None, "c|a|a"], dtype=object)
P = 4  # the pad index of GENRES: vocabulary a, b, c (0-2), OOV 3, pad 4


def test_sequence_mean_pooling_block_by_hand():
    column = Sequence("g").fit(GENRES)
    assert column.vocabulary_ == ["a", "b", "c"]
    assert (column.max_len_, column.pad_index_, column.size_) == (3, P, 5)
    index, weight = column.transform(GENRES)
    np.testing.assert_array_equal(index, [[0, 1, P], [1, P, P], [P, P, P], [P, P, P], [2, 0, 0]])
    third = np.float32(1 / 3)
    np.testing.assert_array_equal(weight, np.array([[0.5, 0.5, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0],
                                                    [third, third, third]], np.float32))
    assert index.dtype == np.int32 and weight.dtype == np.float32


def test_sequence_sum_pooling_gives_each_token_weight_one():
    column = Sequence("g", pooling="sum").fit(GENRES)
    _, weight = column.transform(GENRES)
    np.testing.assert_array_equal(weight, [[1, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0], [1, 1, 1]])


def test_sequence_unseen_token_takes_oov_index_and_padding_follows_it():
    column = Sequence("g").fit(GENRES)
    index, weight = column.transform(pd.Series(["d|a", "zz"]))
    np.testing.assert_array_equal(index, [[3, 0, P], [3, P, P]])
    np.testing.assert_array_equal(weight, [[0.5, 0.5, 0], [1, 0, 0]])


def test_sequence_max_len_defaults_to_the_longest_training_list():
    lengths = GENRES.fillna("").map(lambda s: len([t for t in s.split("|") if t]))
    assert Sequence("g").fit(GENRES).max_len_ == lengths.max() == 3
    assert Sequence("g", max_len=5).fit(GENRES).transform(GENRES)[0].shape == (5, 5)


def test_sequence_list_longer_than_a_given_max_len_raises_naming_column_and_row():
    column = Sequence("genres", max_len=2).fit(pd.Series(["a|b", "c"]))
    with pytest.raises(ValueError, match=r"'genres'.*row 2.*max_len=2"):
        column.transform(pd.Series(["a", "b|c", "a|b|c", "a|b|c|a"]))
    with pytest.raises(ValueError, match=r"'genres'.*row 12.*max_len=2"):  # the row is the frame's index label
        column.transform(pd.Series(["a", "a|b|c"], index=[11, 12]))


def test_sequence_with_a_fitted_max_len_keeps_the_first_values_of_a_longer_list():
    column = Sequence("genres").fit(pd.Series(["a|b", "c"]))  # max_len_ 2: the longest training list
    index, weight = column.transform(pd.Series(["c|a|b", "a"]))
    np.testing.assert_array_equal(index, [[2, 0], [0, 4]])  # vocabulary a, b, c; OOV 3; padding 4
    np.testing.assert_array_equal(weight, [[0.5, 0.5], [1.0, 0.0]])


def test_sequence_truncate_keeps_the_first_max_len_tokens_weighted_over_the_kept():
    column = Sequence("g", max_len=2, truncate=True).fit(GENRES)
    index, weight = column.transform(pd.Series(["c|a|b", "b|c"]))
    np.testing.assert_array_equal(index, [[2, 0], [1, 2]])
    np.testing.assert_array_equal(weight, [[0.5, 0.5], [0.5, 0.5]])


def test_sequence_cells_as_lists_or_tuples_equal_the_same_cells_as_text():
    column = Sequence("g").fit(GENRES)
    as_lists = pd.Series([["a", "b"], ("b",), [], None, ["c", "a", "a"]], dtype=object)
    mixed = pd.Series([["a", "b"], "b", "", None, ("c", "a", "a")], dtype=object)
    want = column.transform(GENRES)
    for cells in (as_lists, mixed):
        got = column.transform(cells)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    fitted_on_lists = Sequence("g").fit(as_lists)
    assert fitted_on_lists.vocabulary_ == ["a", "b", "c"] and fitted_on_lists.max_len_ == 3


def test_sequence_whitespace_around_tokens_is_stripped():
    column = Sequence("g").fit(GENRES)
    spaced = pd.Series([" a | b ", "b ", " ", None, "c|  a|a  "], dtype=object)
    np.testing.assert_array_equal(column.transform(spaced)[0], column.transform(GENRES)[0])
    np.testing.assert_array_equal(column.transform(pd.Series([[" a", "b "]], dtype=object))[0], [[0, 1, P]])


def test_sequence_numbers_as_tokens_use_canonical_keys():
    column = Sequence("g").fit(pd.Series([[3, 4.0], [5]], dtype=object))
    assert column.vocabulary_ == ["3", "4", "5"]
    np.testing.assert_array_equal(column.transform(pd.Series(["3|4", "5.0"]))[0], [[0, 1], [3, 4]])


def test_sequence_hashed_tokens_are_hash_modulo_buckets_with_pad_index_buckets():
    column = Sequence("g", buckets=7).fit(GENRES)
    assert not hasattr(column, "vocabulary_")
    assert (column.pad_index_, column.size_) == (7, 8)
    index, weight = column.transform(GENRES)
    h = {t: reference_hash(t) % 7 for t in "abc"}
    np.testing.assert_array_equal(index, [[h["a"], h["b"], 7], [h["b"], 7, 7], [7, 7, 7], [7, 7, 7],
                                          [h["c"], h["a"], h["a"]]])
    np.testing.assert_array_equal(weight, Sequence("g").fit(GENRES).transform(GENRES)[1])


def test_sequence_min_count_counts_token_occurrences():
    tokens = GENRES.dropna().str.split("|").explode()
    counts = tokens[tokens != ""].value_counts()  # a 3, b 2, c 1
    column = Sequence("g", min_count=2).fit(GENRES)
    assert column.vocabulary_ == sorted(counts[counts >= 2].index) == ["a", "b"]
    index, _ = column.transform(pd.Series(["c|a"]))
    np.testing.assert_array_equal(index, [[2, 0, 3]])


def test_sequence_fitted_on_only_empty_cells_sends_every_token_to_oov():
    column = Sequence("g").fit(pd.Series([None, "", None], dtype=object))
    assert (column.vocabulary_, column.max_len_, column.pad_index_) == ([], 1, 1)
    index, weight = column.transform(pd.Series(["a", None]))
    np.testing.assert_array_equal(index, [[0], [1]])
    np.testing.assert_array_equal(weight, [[1], [0]])


def test_sequence_wrong_separator_raises_mentioning_sep():
    with pytest.raises(ValueError, match=r"'g'.*sep"):
        Sequence("g", sep="|").fit(pd.Series(["a,b", "c,d", "e"]))


@pytest.mark.parametrize("options, word", [({"sep": ""}, "sep"), ({"max_len": 0}, "max_len"),
                                           ({"pooling": "max"}, "pooling"), ({"min_count": 0}, "min_count"),
                                           ({"buckets": 0}, "buckets"), ({"truncate": 1}, "truncate"),
                                           ({"buckets": 10, "min_count": 2}, "min_count")])
def test_sequence_invalid_option_raises_naming_the_column(options, word):
    with pytest.raises(ValueError, match=f"'genres'.*{word}"):
        Sequence("genres", **options)


def test_sequence_raw_values_join_the_stripped_tokens_with_sep():
    column = Sequence("g", sep=";").fit(pd.Series(["a;b", "c"]))
    cells = pd.Series([" a ; b", "", None, ["c", " d", 3.0], "x;;y"], dtype=object)
    want = [";".join(t.strip() for t in (c.split(";") if isinstance(c, str) else [canonical_key(v) for v in c])
                     if t.strip()) if c is not None else "" for c in cells]
    assert list(column.raw_values(cells)) == want == ["a;b", "", "", "c;d;3", "x;y"]


@pytest.mark.parametrize("options", [{}, {"pooling": "sum"}, {"min_count": 2}, {"buckets": 11},
                                     {"max_len": 2, "truncate": True}, {"sep": ","}])
def test_sequence_raw_lookup_in_tensorflow_equals_transform(options):
    sep = options.get("sep", "|")
    train = pd.Series([t.replace("|", sep) if t else t for t in GENRES], dtype=object)
    test = pd.Series(["a|b", "", None, "c|zz|a", " b | a ", "zz", "é|a"], dtype=object)
    if not options.get("truncate"):
        test = test[test.fillna("").str.count(r"\|") < 3]
    test = pd.Series([t.replace("|", sep) if isinstance(t, str) else t for t in test], dtype=object)
    column = Sequence("g", **options).fit(train)
    raw = column.raw_values(test)
    assert raw[1] == "" and raw[2] == ""
    index, weight = run_tf(column.raw_lookup, raw, "string")
    want_index, want_weight = column.transform(test)
    np.testing.assert_array_equal(index, want_index)
    np.testing.assert_array_max_ulp(weight, want_weight, maxulp=1)


# ------------------------------------------------------------------ FeatureSpec
def spec_frames():
    train = pd.DataFrame({"c": ["a", "b", "a", "c"], "s": ["x|y", "y", "", "x|x|z"], "n": [1.0, 2.0, 3.0, 6.0],
                          "h": [1, 2, 3, 4], "t": ["u", "v|u", None, "v"], "unused": [0, 0, 0, 0]})
    test = pd.DataFrame({"c": ["c", "zzz", "a"], "s": ["z|w", "y", "w|w"], "n": [0.0, 6.0, np.nan],
                         "h": [9, 1, 3], "t": ["u|u", "", "v"], "unused": [1, 1, 1]})
    return train, test


def make_spec(numeric=True):
    """Columns c (categorical), s (sequence), [n (numeric)], h (hashed), t (hashed sequence)."""
    middle = [Numeric("n")] if numeric else []
    return FeatureSpec([Categorical("c"), Sequence("s"), *middle, Hashed("h", buckets=5),
                        Sequence("t", buckets=3, pooling="sum")])


def test_spec_offsets_are_consecutive_in_column_order_and_feat_dim_is_their_sum():
    train, _ = spec_frames()
    spec = make_spec().fit(train)
    sizes = {"c": 3 + 1, "s": 3 + 2, "n": 1, "h": 5, "t": 3 + 1}
    assert spec.names == ["c", "s", "n", "h", "t"]
    assert spec.offsets_ == {"c": 0, "s": 4, "n": 9, "h": 10, "t": 15}
    assert [c.size_ for c in spec.columns] == list(sizes.values())
    assert spec.feat_dim == sum(sizes.values()) == 19
    assert spec.fields == ["c", "n", "h"] and spec.field_size == 3
    assert spec.sequence_fields == ["s", "t"]
    assert spec.sequence_lengths == (3, 2)


def check_spec_arrays(spec, train, test, numeric):
    """The arrays of ``make_spec(numeric)`` fitted on ``train`` for ``test``, worked out by hand."""
    arrays = spec.transform(test)
    shift = 1 if numeric else 0  # the numeric column's one index moves the later offsets
    c_local = [2, 3, 0]  # vocabulary a, b, c; OOV 3
    h_local = [reference_hash(str(v)) % 5 for v in test["h"]]
    columns = [np.add(c_local, 0)] + ([[9, 9, 9]] if numeric else []) + [np.add(h_local, 9 + shift)]
    np.testing.assert_array_equal(arrays.Xi, np.stack(columns, 1))
    assert arrays.Xi.dtype == np.int32 and arrays.Xv.dtype == np.float32
    assert arrays.Xi.shape == arrays.Xv.shape == (3, 2 + shift)
    np.testing.assert_array_equal(arrays.Xv[:, [0, -1]], 1.0)
    if numeric:
        n = train["n"].to_numpy()
        np.testing.assert_allclose(arrays.Xv[:, 1], [(0 - n.mean()) / n.std(), (6 - n.mean()) / n.std(), 0.0],
                                   rtol=1e-6)
    assert len(arrays.Xs) == 2 and len(arrays) == 3
    s_index, s_weight = arrays.Xs[0]  # vocabulary x, y, z; OOV 3; pad 4; offset 4
    np.testing.assert_array_equal(s_index, np.array([[2, 3, 4], [1, 4, 4], [3, 3, 4]]) + 4)
    np.testing.assert_array_equal(s_weight, [[0.5, 0.5, 0], [1, 0, 0], [0.5, 0.5, 0]])
    t_index, t_weight = arrays.Xs[1]  # hashed into 3 buckets, pad 3, offset 14 (+1)
    u, v = reference_hash("u") % 3, reference_hash("v") % 3
    np.testing.assert_array_equal(t_index, np.array([[u, u], [3, 3], [v, 3]]) + 14 + shift)
    np.testing.assert_array_equal(t_weight, [[1, 1], [0, 0], [1, 0]])
    assert s_index.dtype == t_index.dtype == np.int32


def test_spec_arrays_are_local_indices_plus_offsets():
    train, test = spec_frames()
    check_spec_arrays(make_spec(numeric=False).fit(train), train, test, numeric=False)


def test_spec_arrays_with_a_numeric_column_are_local_indices_plus_offsets():
    train, test = spec_frames()
    check_spec_arrays(make_spec().fit(train), train, test, numeric=True)


def test_spec_take_selects_rows_of_every_array():
    train, test = spec_frames()
    arrays = make_spec(numeric=False).fit(train).transform(test)
    part = arrays.take([2, 0])
    np.testing.assert_array_equal(part.Xi, arrays.Xi[[2, 0]])
    np.testing.assert_array_equal(part.Xv, arrays.Xv[[2, 0]])
    np.testing.assert_array_equal(part.Xs[1][0], arrays.Xs[1][0][[2, 0]])


def test_spec_fit_sees_only_training_values_and_oov_counts_test_values():
    train, test = spec_frames()
    spec = make_spec(numeric=False).fit(train)
    assert spec.columns[0].vocabulary_ == sorted(train["c"].unique())
    arrays = spec.transform(test)
    assert spec.columns[0].vocabulary_ == sorted(train["c"].unique())
    assert arrays.Xi[1, 0] == len(spec.columns[0].vocabulary_)  # the test-only "zzz" is OOV
    train_tokens = set(train["s"].str.split("|").explode()) - {""}
    test_tokens = test["s"].str.split("|").explode()
    assert spec.oov_counts_ == {"c": int((~test["c"].isin(train["c"])).sum()),
                                "s": int((~test_tokens.isin(train_tokens)).sum())} == {"c": 1, "s": 3}


def test_spec_transform_ignores_the_frame_index():
    train, test = spec_frames()
    spec = make_spec().fit(train)
    shuffled = test.set_axis([30, 10, 20])
    assert_arrays_equal(spec.transform(shuffled), spec.transform(test))


def test_spec_transform_does_not_modify_the_frame():
    train, test = spec_frames()
    train_copy, test_copy = copy.deepcopy(train), copy.deepcopy(test)
    spec = make_spec(numeric=False)
    spec.fit_transform(train)
    spec.transform(test)
    pd.testing.assert_frame_equal(train, train_copy)
    pd.testing.assert_frame_equal(test, test_copy)


def assert_arrays_equal(a, b):
    np.testing.assert_array_equal(a.Xi, b.Xi)
    np.testing.assert_array_equal(a.Xv, b.Xv)
    assert len(a.Xs) == len(b.Xs)
    for (i1, w1), (i2, w2) in zip(a.Xs, b.Xs):
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(w1, w2)


ROUND_TRIP_TRAIN = pd.DataFrame({"c": ["a", "b", "a", None], "s": ["x|y", "y", "", "x|x|z"], "h": [1, 2, 3, 4],
                                 "n": [1.1, 2.2, 3.3, 0.7], "b": [0.5, 7.0, 3.0, np.nan],
                                 "l": [1.0, 10.0, -1.0, 100.0]})
ROUND_TRIP_TEST = pd.DataFrame({"c": ["c", None, "a"], "s": ["z|w", "y", "x"], "h": ["9", "1", "3"],
                                "n": [0.1, 6.0, np.nan], "b": [-1.0, 2.0, np.nan], "l": [-1.0, 5.0, 1e5]})
ROUND_TRIP_NUMERIC = [Numeric("n", scaling="minmax"), Numeric("b", transform="bucketize", bins=3),
                      Numeric("l", transform="log1p", missing=[-1])]


def round_trip_spec(numeric):
    columns = [Categorical("c", min_count=2), Sequence("s", max_len=4, pooling="sum"), Hashed("h", buckets=6),
               Sequence("t", buckets=3)]
    if numeric:
        columns += copy.deepcopy(ROUND_TRIP_NUMERIC)
    train, test = ROUND_TRIP_TRAIN.assign(t=ROUND_TRIP_TRAIN["s"]), ROUND_TRIP_TEST.assign(t=ROUND_TRIP_TEST["s"])
    return FeatureSpec(columns).fit(train), test


@pytest.mark.parametrize("numeric", [False, True])
def test_spec_json_round_trip_gives_identical_arrays_and_dict(numeric):
    spec, test = round_trip_spec(numeric)
    again = FeatureSpec.from_json(spec.to_json())
    assert again.to_dict() == spec.to_dict()
    assert again.offsets_ == spec.offsets_ and again.feat_dim == spec.feat_dim
    assert again.sequence_lengths == spec.sequence_lengths
    assert_arrays_equal(again.transform(test), spec.transform(test))


@pytest.mark.parametrize("numeric", [False, True])
def test_spec_save_and_load_give_identical_arrays_and_dict(tmp_path, numeric):
    spec, test = round_trip_spec(numeric)
    path = tmp_path / "spec.json"
    spec.save(path)
    loaded = FeatureSpec.load(path)
    assert loaded.to_dict() == spec.to_dict()
    assert_arrays_equal(loaded.transform(test), spec.transform(test))


def test_spec_json_round_trip_keeps_numeric_state_exactly():
    spec, _ = round_trip_spec(numeric=True)
    again = FeatureSpec.from_json(spec.to_json())
    assert again.to_dict() == spec.to_dict()
    for before, after in zip(spec.columns[-3:], again.columns[-3:]):
        assert after.options == before.options and after.to_dict() == before.to_dict()
        got = after.transform(ROUND_TRIP_TEST[before.name])
        want = before.transform(ROUND_TRIP_TEST[before.name])
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_spec_from_dict_refuses_another_format_or_unknown_kind():
    spec, _ = round_trip_spec(numeric=False)
    d = spec.to_dict()
    with pytest.raises(ValueError, match="format"):
        FeatureSpec.from_dict({**d, "format_version": 99})
    bad = copy.deepcopy(d)
    bad["columns"][0]["kind"] = "fancy"
    with pytest.raises(ValueError, match="'c'.*'fancy'"):
        FeatureSpec.from_dict(bad)


def test_spec_absent_column_raises_naming_it():
    train, _ = spec_frames()
    spec = make_spec()
    with pytest.raises(ValueError, match="'n'"):
        spec.fit(train.drop(columns="n"))
    spec.fit(train)
    with pytest.raises(ValueError, match="'h'"):
        spec.transform(train.drop(columns="h"))


def test_spec_refuses_duplicate_column_names():
    with pytest.raises(ValueError, match="'c'"):
        FeatureSpec([Categorical("c"), Numeric("c")])


def test_spec_refuses_only_sequence_columns():
    with pytest.raises(ValueError, match="single-valued"):
        FeatureSpec([Sequence("s"), Sequence("t")])


def test_spec_refuses_something_that_is_not_a_column():
    with pytest.raises(TypeError):
        FeatureSpec([Categorical("c"), "n"])


def test_spec_unfitted_transform_raises_not_fitted_error():
    train, _ = spec_frames()
    spec = make_spec()
    with pytest.raises(NotFittedError):
        spec.transform(train)
    with pytest.raises(NotFittedError):
        _ = spec.feat_dim
    assert spec.fields == ["c", "n", "h"]  # the layout of fields needs no fitting


# ------------------------------------------------------------------ real MovieLens sample
def test_movielens_genres_as_sequence_has_17_genres_and_as_categorical_79_combinations(shared_data):
    path = shared_data / "movielens/deepctr_movielens_sample.csv"
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    n_genres = raw["genres"].str.split("|").explode().nunique()
    n_combinations = raw["genres"].nunique()
    assert (n_genres, n_combinations) == (17, 79)

    df = pd.read_csv(path)
    spec = FeatureSpec([Categorical("gender"), Sequence("genres")]).fit(df)
    index, weight = spec.transform(df).Xs[0]
    genre_column = spec.columns[1]
    tokens = index[weight > 0] - spec.offsets_["genres"]
    assert len(np.unique(tokens)) == len(genre_column.vocabulary_) == n_genres
    assert sorted(genre_column.vocabulary_) == sorted(raw["genres"].str.split("|").explode().unique())
    assert genre_column.max_len_ == raw["genres"].str.count(r"\|").max() + 1

    as_categorical = FeatureSpec([Categorical("genres")]).fit(df)
    assert len(np.unique(as_categorical.transform(df).Xi[:, 0])) == n_combinations


# ------------------------------------------------------------------ one pass over chunks
def every_kind_frame(n=503, seed=11):
    rng = np.random.default_rng(seed)
    tokens = np.array(["a", "b", "c", "d", "e"])
    return pd.DataFrame({
        "count": np.where(rng.random(n) < 0.1, np.nan, rng.geometric(0.1, n) - 1.0),
        "level": rng.normal(3, 2, n), "price": rng.normal(10, 3, n),
        "city": rng.choice(["x", "y", "z", "rare"], n, p=[.4, .4, .19, .01]),
        "device": [f"d{i}" for i in rng.integers(0, 300, n)],
        "tags": ["|".join(rng.choice(tokens, rng.integers(0, 5))) for _ in range(n)]})


def every_kind_spec():
    return FeatureSpec([Numeric("count", transform="log1p"), Numeric("level", scaling="minmax"),
                        Numeric("price", transform="bucketize", bins=7), Categorical("city", min_count=8),
                        Hashed("device", buckets=32), Sequence("tags", min_count=2)])


def test_fit_in_one_chunk_is_fit():
    df = every_kind_frame()
    assert every_kind_spec().fit_chunks([df]).to_dict() == every_kind_spec().fit(df).to_dict()


def test_fit_over_chunks_equals_the_whole_frame_fit():
    df = every_kind_frame()
    whole = every_kind_spec().fit(df)
    chunked = every_kind_spec().fit_chunks(df.iloc[start:start + 37] for start in range(0, len(df), 37))
    for a, b in zip(whole.to_dict()["columns"], chunked.to_dict()["columns"]):
        fitted_a, fitted_b = a.pop("fitted"), b.pop("fitted")
        assert a == b
        assert fitted_a.keys() == fitted_b.keys()
        for key in fitted_a:  # vocabularies, edges, max_len exactly; merged moments to float rounding
            assert fitted_b[key] == (pytest.approx(fitted_a[key], rel=1e-12) if key in ("center", "scale")
                                     else fitted_a[key]), (a["name"], key)
    x = np.sign(df["count"]) * np.log1p(np.abs(df["count"]))  # numpy's own moments of the log1p counts
    count = chunked.columns[0]
    assert count.center_ == pytest.approx(np.nanmean(x), rel=1e-12)
    assert count.scale_ == pytest.approx(np.nanstd(x), rel=1e-12)
    a, b = whole.transform(df), chunked.transform(df)
    np.testing.assert_array_equal(a.Xi, b.Xi)
    np.testing.assert_allclose(a.Xv, b.Xv, rtol=1e-6)
    for (index_a, weight_a), (index_b, weight_b) in zip(a.Xs, b.Xs):
        np.testing.assert_array_equal(index_a, index_b)
        np.testing.assert_array_equal(weight_a, weight_b)


def test_bucketize_beyond_the_sample_capacity_keeps_a_uniform_sample():
    from deepfm_graph.features.numeric import QuantileSample

    values = np.random.default_rng(3).random(20_000)
    sample = QuantileSample("u", capacity=2_000)
    for start in range(0, values.size, 1_500):
        sample.add(values[start:start + 1_500])
    assert sample.seen == 20_000 and sample.values.size == 2_000 and np.isin(sample.values, values).all()
    np.testing.assert_allclose(np.quantile(sample.values, [0.1, 0.5, 0.9]), [0.1, 0.5, 0.9], atol=0.03)
    again = QuantileSample("u", capacity=2_000)
    for start in range(0, values.size, 1_500):
        again.add(values[start:start + 1_500])
    np.testing.assert_array_equal(again.values, sample.values)  # seeded by the column name


def test_a_wrong_sequence_separator_is_found_over_chunks():
    chunks = [pd.Series(["a", "b"] * 5), pd.Series(["a,b", "c,d"] * 5)]
    column = Sequence("g").start_fit()
    for chunk in chunks:
        column.partial_fit(chunk)
    with pytest.raises(ValueError, match=r"no value holds the separator sep='\|', but 50% hold ','"):
        column.finish_fit()


def test_key_counter_counts_over_chunks_and_keeps_only_frequent_keys_text():
    from deepfm_graph.features.categorical import KeyCounter

    rng = np.random.default_rng(0)
    chunks = [rng.zipf(1.3, 5_000).astype(str).astype(object) for _ in range(6)]
    counter = KeyCounter(min_count=4)
    for chunk in chunks:
        counter.add(chunk)
    counts = pd.Series(np.concatenate(chunks)).value_counts()
    assert counter.frequent_keys() == sorted(counts.index[counts >= 4])  # keys crossing min_count in any chunk
    assert len(counter.hashes) == len(counts) and counter.counts.sum() == 30_000
    assert len(counter.frequent) == (counts >= 4).sum() < len(counts)  # no text kept for the rare keys
    codes, keys = np.array([0, 1, 1, 2]), np.array(["3", "x", "3"], dtype=object)  # one key under two codes
    assert KeyCounter(2).add(keys, codes).frequent_keys() == ["3", "x"]
