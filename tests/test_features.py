"""Tests for deepfm_graph.features: layout, OOV, scaling, validation, JSON, parser."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from deepfm_graph.features import DataParser, FeatureDictionary

PORTO_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "porto_seguro"


@pytest.fixture
def train():
    return pd.DataFrame({
        "id": [1, 2, 3],
        "target": [0, 1, 0],
        "cat": ["b", "a", "b"],
        "num": [1.0, 2.0, 3.0],
        "icat": [3, 1, 3],
    })


def fit_tiny(train, **kwargs):
    return FeatureDictionary(dfTrain=train, numeric_cols=("num",), **kwargs)


# ------------------------------------------------------------------ layout
def test_index_layout_matches_hand_computed_indices(train):
    fd = fit_tiny(train, scaling=None)
    # cat: a=0, b=1, OOV=2 | num: 3 | icat: 1=4, 3=5, OOV=6
    assert fd.fields == ["cat", "num", "icat"]
    assert fd.feat_dict == {"cat": {"a": 0, "b": 1}, "num": 3, "icat": {1: 4, 3: 5}}
    assert fd.oov_index == {"cat": 2, "icat": 6}
    assert (fd.feat_dim, fd.field_size) == (7, 3)
    Xi, Xv = fd.transform(train)
    np.testing.assert_array_equal(Xi, [[1, 3, 5], [0, 3, 4], [1, 3, 5]])
    np.testing.assert_array_equal(Xv, [[1, 1, 1], [1, 2, 1], [1, 3, 1]])


def test_transform_returns_c_contiguous_int32_and_float32(train):
    Xi, Xv = fit_tiny(train).transform(train)
    assert Xi.dtype == np.int32 and Xv.dtype == np.float32
    assert Xi.flags.c_contiguous and Xv.flags.c_contiguous
    assert Xi.shape == Xv.shape == (3, 3)


def test_label_and_id_are_never_features(train):
    fd = FeatureDictionary(dfTrain=train)
    assert fd.fields == ["cat", "num", "icat"]


def test_custom_label_and_id_columns_are_excluded():
    df = pd.DataFrame({"key": [1, 2], "clicked": [0, 1], "c": ["x", "y"]})
    assert FeatureDictionary(dfTrain=df, label_col="clicked", id_col="key").fields == ["c"]


def test_mixed_type_categorical_sorts_numbers_before_strings():
    df = pd.DataFrame({"c": pd.Series(["b", 2, 1.5, "a", 2], dtype=object)})
    fd = FeatureDictionary(dfTrain=df)
    assert list(fd.feat_dict["c"].items()) == [(1.5, 0), (2, 1), ("a", 2), ("b", 3)]
    assert fd.oov_index["c"] == 4


def test_unsupported_categorical_value_type_raises_naming_column():
    df = pd.DataFrame({"when": pd.Series([pd.Timestamp("2020-01-01")], dtype=object)})
    with pytest.raises(ValueError, match="when"):
        FeatureDictionary(dfTrain=df)


# --------------------------------------------------------------------- OOV
def test_unseen_values_map_to_their_own_fields_oov_index(train):
    fd = fit_tiny(train)
    test = pd.DataFrame({"cat": ["z", "a", None], "num": [1.0, 2.0, 3.0], "icat": [2, 3, 7]})
    Xi, Xv = fd.transform(test)
    np.testing.assert_array_equal(Xi[:, 0], [2, 0, 2])
    np.testing.assert_array_equal(Xi[:, 2], [6, 5, 6])
    np.testing.assert_array_equal(Xv[:, [0, 2]], np.ones((3, 2)))


def test_nan_seen_in_training_is_its_own_category():
    train = pd.DataFrame({"c": ["x", None, "y"]})
    fd = FeatureDictionary(dfTrain=train)
    # x=0, y=1, NaN=2, OOV=3
    Xi, _ = fd.transform(pd.DataFrame({"c": [np.nan, "y", "q"]}))
    np.testing.assert_array_equal(Xi[:, 0], [2, 1, 3])
    assert fd.oov_index["c"] == 3


def test_count_oov_and_oov_counts_after_transform(train):
    fd = fit_tiny(train)
    test = pd.DataFrame({"cat": ["z", "q", "a"], "num": [0.0, 0.0, 0.0], "icat": [1, 3, 9]})
    assert fd.count_oov(test) == {"cat": 2, "icat": 1}
    fd.transform(test)
    assert fd.oov_counts_ == {"cat": 2, "icat": 1}


# -------------------------------------------------------------- vocabulary
def test_test_frame_does_not_change_vocabulary_by_default(train):
    test = pd.DataFrame({"cat": ["z"], "num": [100.0], "icat": [8]})
    with_test = FeatureDictionary(dfTrain=train, dfTest=test, numeric_cols=["num"])
    assert with_test.feat_dict == {"cat": {"a": 0, "b": 1}, "num": 3, "icat": {1: 4, 3: 5}}
    assert with_test.feat_dim == 7


def test_include_test_adds_test_values_but_scales_on_train_only(train):
    test = pd.DataFrame({"cat": ["z"], "num": [100.0], "icat": [8]})
    fd = FeatureDictionary(dfTrain=train, dfTest=test, numeric_cols=["num"], include_test=True)
    assert fd.feat_dict == {"cat": {"a": 0, "b": 1, "z": 2}, "num": 4, "icat": {1: 5, 3: 6, 8: 7}}
    assert fd.oov_index == {"cat": 3, "icat": 8}
    assert fd.scaling_params["num"] == pytest.approx({"center": 2.0, "scale": np.std([1.0, 2.0, 3.0])})


def test_int_like_floats_match_int_vocabulary(train):
    fd = fit_tiny(train)
    test = pd.DataFrame({"cat": ["a", "a", "a"], "num": [1.0, 1.0, 1.0], "icat": [1.0, 3.0, np.nan]})
    np.testing.assert_array_equal(fd.transform(test)[0][:, 2], [4, 5, 6])


def test_ints_match_float_vocabulary_from_column_with_nan():
    fd = FeatureDictionary(dfTrain=pd.DataFrame({"c": [1.0, np.nan, 2.0]}))
    # 1.0=0, 2.0=1, NaN=2, OOV=3
    Xi, _ = fd.transform(pd.DataFrame({"c": [2, 1, 5]}))
    np.testing.assert_array_equal(Xi[:, 0], [1, 0, 3])


def test_numeric_strings_match_a_numeric_vocabulary(train):
    # icat: 1=4, 3=5, OOV=6. The column as pandas reads it when one CSV chunk holds a stray token.
    fd = fit_tiny(train)
    test = pd.DataFrame({"cat": ["a"] * 5, "num": [1.0] * 5, "icat": ["1", "3.0", " 3", "?", "2"]})
    np.testing.assert_array_equal(fd.transform(test)[0][:, 2], [4, 5, 5, 6, 6])
    assert fd.oov_counts_["icat"] == 2


def test_numbers_match_a_vocabulary_of_numeric_strings():
    # "1"=0, "2.5"=1, "x"=2, OOV=3: a column read as text in training, as numbers now.
    fd = FeatureDictionary(dfTrain=pd.DataFrame({"c": ["x", "1", "2.5"]}))
    assert fd.feat_dict["c"] == {"1": 0, "2.5": 1, "x": 2}
    np.testing.assert_array_equal(fd.transform(pd.DataFrame({"c": [2.5, 1, 1.0, 7]}))[0][:, 0], [1, 0, 0, 3])


def test_numbers_never_join_strings_to_strings_or_pick_between_two_values():
    # "00e5" and "0e12" both read as 0: a 0 cannot tell them apart; strings match only exactly.
    fd = FeatureDictionary(dfTrain=pd.DataFrame({"h": ["0e12", "00e5", "1", "1.0"], "m": pd.Series([1, "1", 2, 2])}))
    # h: "00e5"=0, "0e12"=1, "1"=2, "1.0"=3, OOV=4 | m: 1=5, 2=6, "1"=7, OOV=8
    test = pd.DataFrame({"h": pd.Series(["0e1", 0, "01", 1]), "m": pd.Series(["1", "1.0", "2", 1])})
    Xi = fd.transform(test)[0]
    np.testing.assert_array_equal(Xi[:, 0], [4, 4, 4, 4])
    np.testing.assert_array_equal(Xi[:, 1], [7, 5, 6, 5])  # exact first; else the number among numbers


def test_values_that_are_not_real_numbers_are_not_matched_as_numbers():
    fd = FeatureDictionary(dfTrain=pd.DataFrame({"c": [1, 2]}))  # 1=0, 2=1, OOV=2
    for column in ([1 + 1j, 2], [pd.Timestamp("1970-01-01 00:00:00.000000001"), "2"]):  # 1 ns: not a 1
        np.testing.assert_array_equal(fd.transform(pd.DataFrame({"c": pd.Series(column)}))[0][:, 0], [2, 1])


def test_integers_beyond_float_precision_are_not_matched_as_numbers():
    big = 2 ** 53
    fd = FeatureDictionary(dfTrain=pd.DataFrame({"c": [big, 5]}))  # 5=0, 2**53=1, OOV=2
    test = pd.DataFrame({"c": [str(big), str(big + 1), "5"]})
    np.testing.assert_array_equal(fd.transform(test)[0][:, 0], [2, 2, 0])


# ----------------------------------------------------------------- scaling
@pytest.mark.parametrize("scaling, scaler", [("standard", StandardScaler), ("minmax", MinMaxScaler)])
def test_scaling_uses_train_statistics(scaling, scaler):
    rng = np.random.default_rng(0)
    x_train, x_test = rng.normal(5.0, 2.0, 50), rng.normal(5.0, 2.0, 20)
    fd = FeatureDictionary(dfTrain=pd.DataFrame({"x": x_train}), numeric_cols=["x"],
                           scaling=scaling, missing_value=None)
    expected = scaler().fit(x_train[:, None]).transform(x_test[:, None])[:, 0]
    Xi, Xv = fd.transform(pd.DataFrame({"x": x_test}))
    np.testing.assert_allclose(Xv[:, 0], expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(Xi[:, 0], 0)


@pytest.mark.parametrize("scaling", [None, "none"])
def test_no_scaling_keeps_raw_values(scaling):
    x = np.array([0.5, -3.25, 7.0])
    fd = FeatureDictionary(dfTrain=pd.DataFrame({"x": x}), numeric_cols=["x"], scaling=scaling)
    np.testing.assert_array_equal(fd.transform(pd.DataFrame({"x": x}))[1][:, 0], x.astype(np.float32))


@pytest.mark.parametrize("scaling", ["standard", "minmax"])
def test_constant_numeric_column_uses_unit_scale(scaling):
    fd = FeatureDictionary(dfTrain=pd.DataFrame({"x": [4.0, 4.0]}), numeric_cols=["x"], scaling=scaling)
    assert fd.scaling_params["x"] == {"center": 4.0, "scale": 1.0}
    np.testing.assert_array_equal(fd.transform(pd.DataFrame({"x": [4.0, 6.0]}))[1][:, 0], [0.0, 2.0])


def test_invalid_scaling_raises(train):
    with pytest.raises(ValueError, match="scaling"):
        fit_tiny(train, scaling="log")


# ---------------------------------------------------- numeric missing policy
def test_minus_one_and_nan_are_missing_excluded_from_stats_and_encoded_zero():
    fd = FeatureDictionary(dfTrain=pd.DataFrame({"x": [1.0, -1.0, 3.0, np.nan]}), numeric_cols=["x"], missing_value=-1)
    # observed values are 1 and 3: mean 2, std 1
    assert fd.scaling_params["x"] == {"center": 2.0, "scale": 1.0}
    Xv = fd.transform(pd.DataFrame({"x": [-1, 5, np.nan, 0]}))[1]
    np.testing.assert_array_equal(Xv[:, 0], [0.0, 3.0, 0.0, -2.0])


def test_minus_one_is_a_number_by_default_as_criteo_i2():
    x = np.array([1.0, -1.0, 3.0])
    for fd in (FeatureDictionary(dfTrain=pd.DataFrame({"x": x}), numeric_cols=["x"]),
               FeatureDictionary(dfTrain=pd.DataFrame({"x": x}), numeric_cols=["x"], missing_value=None)):
        assert fd.missing_value is None
        assert fd.scaling_params["x"] == pytest.approx({"center": x.mean(), "scale": x.std()})


def test_entirely_missing_numeric_column_gets_mean_zero_std_one():
    fd = FeatureDictionary(dfTrain=pd.DataFrame({"x": [-1, -1]}), numeric_cols=["x"], missing_value=-1)
    assert fd.scaling_params["x"] == {"center": 0.0, "scale": 1.0}
    np.testing.assert_array_equal(fd.transform(pd.DataFrame({"x": [-1, 2]}))[1][:, 0], [0.0, 2.0])


def test_infinite_numeric_value_raises_naming_column(train):
    bad = train.assign(num=[1.0, np.inf, 3.0])
    with pytest.raises(ValueError, match="'num'.*infinite"):
        fit_tiny(bad)
    with pytest.raises(ValueError, match="'num'.*infinite"):
        fit_tiny(train).transform(bad)


def test_non_numeric_string_raises_naming_column_and_row(train):
    bad = train.assign(num=["1.5", "oops", "3"])
    with pytest.raises(ValueError, match=r"'num'.*'oops'.*row 1 \(id 2\)"):
        fit_tiny(bad)
    with pytest.raises(ValueError, match=r"'num'.*row 1 \(id 2\)"):
        fit_tiny(train).transform(bad)


def test_numeric_strings_are_parsed(train):
    fd = fit_tiny(train, scaling=None, missing_value=-1)
    Xv = fd.transform(train.assign(num=["1.5", "-1", None]))[1]
    np.testing.assert_array_equal(Xv[:, 1], [1.5, 0.0, 0.0])


# --------------------------------------------------------------- validation
def test_transform_before_fit_raises(train):
    fd = FeatureDictionary(numeric_cols=["num"])
    assert not fd.is_fitted
    with pytest.raises(NotFittedError):
        fd.transform(train)
    assert fd.fit(train) is fd and fd.is_fitted


@pytest.mark.parametrize("argument", ["numeric_cols", "ignore_cols"])
def test_unknown_role_column_raises_naming_it(train, argument):
    with pytest.raises(ValueError, match="nope"):
        FeatureDictionary(dfTrain=train, **{argument: ["nope"]})


def test_column_both_numeric_and_ignored_raises(train):
    with pytest.raises(ValueError, match="num"):
        FeatureDictionary(dfTrain=train, numeric_cols=["num"], ignore_cols=["num"])


def test_label_as_numeric_column_raises(train):
    with pytest.raises(ValueError, match="target"):
        FeatureDictionary(dfTrain=train, numeric_cols=["target"])


def test_missing_feature_column_in_transform_raises_naming_it(train):
    with pytest.raises(ValueError, match="icat"):
        fit_tiny(train).transform(train.drop(columns="icat"))


def test_extra_columns_are_ignored_in_transform(train):
    fd = fit_tiny(train)
    np.testing.assert_array_equal(fd.transform(train.assign(extra=7))[0], fd.transform(train)[0])


def test_duplicated_column_names_raise(train):
    duplicated = pd.concat([train, train[["cat"]]], axis=1)
    with pytest.raises(ValueError, match="duplicated.*cat"):
        fit_tiny(duplicated)
    with pytest.raises(ValueError, match="duplicated.*cat"):
        fit_tiny(train).transform(duplicated)


def test_empty_frame_raises(train):
    with pytest.raises(ValueError, match="no rows"):
        fit_tiny(train.iloc[:0])
    with pytest.raises(ValueError, match="no rows"):
        fit_tiny(train).transform(train.iloc[:0])


def test_both_train_sources_or_both_test_sources_raise(train, tmp_path):
    path = tmp_path / "train.csv"
    train.to_csv(path, index=False)
    with pytest.raises(ValueError, match="not both"):
        FeatureDictionary(trainfile=path, dfTrain=train)
    with pytest.raises(ValueError, match="not both"):
        FeatureDictionary(dfTrain=train, testfile=path, dfTest=train)


def test_caller_frames_are_not_mutated(train):
    train.loc[1, "num"] = -1.0
    test = train.assign(cat=["z", None, "a"], icat=[1.0, np.nan, 3.0])
    train_copy, test_copy = train.copy(deep=True), test.copy(deep=True)
    fd = FeatureDictionary(dfTrain=train, dfTest=test, numeric_cols=["num"], include_test=True)
    fd.transform(test)
    DataParser(fd).parse(df=train, has_label=True)
    pd.testing.assert_frame_equal(train, train_copy)
    pd.testing.assert_frame_equal(test, test_copy)


# -------------------------------------------------------------------- JSON
@pytest.fixture
def awkward():
    """Frame whose vocabularies exercise JSON: NaN, strings, exact floats, ints, bools."""
    return pd.DataFrame({
        "id": [10, 11, 12, 13],
        "s": ["a", None, "ü", "a"],
        "f": [0.7180703307999999, 0.1, np.nan, 1e-300],
        "i": [2**40, -3, 7, 7],
        "b": [True, False, True, True],
        "x": [0.3, -1.0, 2.5, 9.0],
    })


def test_json_round_trip_gives_identical_dictionary_and_transform(awkward, tmp_path):
    fd = FeatureDictionary(dfTrain=awkward, numeric_cols=["x"], scaling="minmax")
    path = tmp_path / "features.json"
    fd.save(path)
    loaded = FeatureDictionary.load(path)
    assert [p.name for p in tmp_path.iterdir()] == ["features.json"]
    assert loaded.to_dict() == fd.to_dict()
    assert (loaded.fields, loaded.feat_dim, loaded.oov_index) == (fd.fields, fd.feat_dim, fd.oov_index)
    for col in ["i", "b", "x"]:
        assert loaded.feat_dict[col] == fd.feat_dict[col]
    probe = awkward.assign(s=["ü", "new", None, "a"], f=[0.7180703307999999, 0.1000001, np.nan, 2.0])
    for frame in (awkward, probe):
        (Xi, Xv), (Xi2, Xv2) = fd.transform(frame), loaded.transform(frame)
        assert Xi.tobytes() == Xi2.tobytes() and Xv.tobytes() == Xv2.tobytes()


def test_json_keeps_vocabulary_types_and_encodes_nan_as_null(awkward):
    fd = FeatureDictionary(dfTrain=awkward, numeric_cols=["x"])
    text = fd.to_json()
    assert "0.7180703307999999" in text
    fields = {f["name"]: f for f in json.loads(text)["fields"]}
    assert fields["s"]["vocabulary"] == ["a", "ü", None]
    assert json.loads(text)["format_version"] == 1
    loaded = FeatureDictionary.from_json(text)
    assert [type(v) for v in loaded.feat_dict["i"]] == [int, int, int]
    assert [type(v) for v in loaded.feat_dict["b"]] == [bool, bool]
    f_keys = list(loaded.feat_dict["f"])
    assert f_keys[:3] == [1e-300, 0.1, 0.7180703307999999] and math.isnan(f_keys[3])


def test_unknown_format_version_raises(awkward):
    d = FeatureDictionary(dfTrain=awkward).to_dict()
    d["format_version"] = 99
    with pytest.raises(ValueError, match="format_version"):
        FeatureDictionary.from_dict(d)


def test_repr_is_short(train):
    assert repr(fit_tiny(train)) == "FeatureDictionary(field_size=3, feat_dim=7, scaling='standard')"
    assert "unfitted" in repr(FeatureDictionary())


# ------------------------------------------------------------------ parser
def test_parser_returns_float32_labels(train):
    Xi, Xv, y = DataParser(fit_tiny(train)).parse(df=train, has_label=True)
    assert y.dtype == np.float32 and y.shape == (3,)
    np.testing.assert_array_equal(y, [0.0, 1.0, 0.0])
    assert Xi.shape == Xv.shape == (3, 3)


def test_parser_returns_ids_or_positions(train):
    parser = DataParser(fit_tiny(train))
    np.testing.assert_array_equal(parser.parse(df=train)[2], [1, 2, 3])
    np.testing.assert_array_equal(parser.parse(df=train.drop(columns="id"))[2], [0, 1, 2])


def test_parser_sets_oov_counts(train):
    parser = DataParser(fit_tiny(train))
    parser.parse(df=train.assign(cat=["a", "z", "z"]))
    assert parser.oov_counts_ == {"cat": 2, "icat": 0}


def test_parser_label_errors(train):
    parser = DataParser(fit_tiny(train))
    with pytest.raises(ValueError, match="target"):
        parser.parse(df=train.drop(columns="target"), has_label=True)
    with pytest.raises(ValueError, match="target"):
        parser.parse(df=train.assign(target=[0.0, np.nan, 1.0]), has_label=True)


def test_parser_needs_exactly_one_source(train, tmp_path):
    parser = DataParser(fit_tiny(train))
    with pytest.raises(ValueError, match="exactly one"):
        parser.parse()
    with pytest.raises(ValueError, match="exactly one"):
        parser.parse(infile=tmp_path / "x.csv", df=train)


def test_parser_reads_csv_like_dataframe(train, tmp_path):
    path = tmp_path / "train.csv"
    train.to_csv(path, index=False)
    parser = DataParser(fit_tiny(train))
    from_file, from_frame = parser.parse(infile=path, has_label=True), parser.parse(df=train, has_label=True)
    for a, b in zip(from_file, from_frame):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("content, message", [("", "empty"), ("id,target,cat,num,icat\n", "no data rows")])
def test_parser_rejects_empty_and_header_only_csv(train, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        DataParser(fit_tiny(train)).parse(infile=path)


def test_classic_keyword_construction(train, tmp_path):
    path = tmp_path / "train.csv"
    train.to_csv(path, index=False)
    fd = FeatureDictionary(trainfile=str(path), numeric_cols=["num"], ignore_cols=["id", "target", "icat"])
    assert fd.feat_dict == {"cat": {"a": 0, "b": 1}, "num": 3}
    assert fd.feat_dim == 4
    Xi, _, y = DataParser(feat_dict=fd).parse(infile=str(path), has_label=True)
    np.testing.assert_array_equal(Xi, [[1, 3], [0, 3], [1, 3]])


# ------------------------------------------------------------ Porto sample
PORTO_NUMERIC = ["ps_reg_01", "ps_reg_02", "ps_reg_03", "ps_car_12", "ps_car_13", "ps_car_14", "ps_car_15"]


@pytest.fixture(scope="module")
def porto():
    train_path, test_path = PORTO_DIR / "train_head10000.csv", PORTO_DIR / "test_head2000.csv"
    if not (train_path.exists() and test_path.exists()):
        pytest.skip("Porto Seguro sample not available")
    return pd.read_csv(train_path), pd.read_csv(test_path)


def test_porto_sample_indices_stay_in_each_fields_range(porto):
    train, test = porto
    ignore = [c for c in train.columns if c.startswith("ps_calc_")]
    fd = FeatureDictionary(dfTrain=train, dfTest=test, numeric_cols=PORTO_NUMERIC, ignore_cols=ignore,
                           missing_value=-1)
    assert "target" not in fd.fields and "id" not in fd.fields
    Xi, Xv, ids = DataParser(fd).parse(df=test)
    np.testing.assert_array_equal(ids, test["id"].to_numpy())
    assert Xi.shape == (len(test), fd.field_size)
    assert Xi.min() >= 0 and Xi.max() < fd.feat_dim
    assert not np.isnan(Xv).any()
    for j, col in enumerate(fd.fields):
        if col in PORTO_NUMERIC:
            assert (Xi[:, j] == fd.feat_dict[col]).all()
        else:
            low = min(fd.feat_dict[col].values())
            assert fd.oov_index[col] == low + train[col].nunique(dropna=False)
            assert ((Xi[:, j] >= low) & (Xi[:, j] <= fd.oov_index[col])).all()
    _, Xv_train, y = DataParser(fd).parse(df=train, has_label=True)
    np.testing.assert_array_equal(y, train["target"].to_numpy(dtype=np.float32))
    observed = train["ps_reg_03"].to_numpy()
    observed = observed[observed != -1]
    expected = (observed - observed.mean()) / observed.std()
    np.testing.assert_allclose(Xv_train[train["ps_reg_03"] != -1, fd.fields.index("ps_reg_03")],
                               expected, rtol=1e-5, atol=1e-6)


def test_transform_output_is_64_byte_aligned_so_tensorflow_feeds_it_without_a_copy():
    train = pd.DataFrame({"a": np.arange(1001) % 7, "x": np.linspace(0.0, 1.0, 1001)})
    Xi, Xv = FeatureDictionary(dfTrain=train, numeric_cols=["x"]).transform(train)
    assert Xi.ctypes.data % 64 == 0 and Xv.ctypes.data % 64 == 0
    assert Xi.flags.c_contiguous and Xv.flags.c_contiguous and Xi.flags.owndata is False
    np.testing.assert_array_equal(Xi[:, 0], np.arange(1001) % 7)
