"""Tests for deepfm_graph.features.schema.DatasetSchema: construction and its checks, reading files
(header, names, separators, byte-order marks, text columns, chunks), the feature spec it builds
and the label checks; expected values come from the csv module, pandas or are written by hand."""
import csv
import json

import numpy as np
import pandas as pd
import pytest

from deepfm_graph.features import Categorical, DatasetSchema, Hashed, Numeric, SchemaError, Sequence

EXAMPLE = {"label": "rating", "task": "regression", "id": None,
           "sep": ",", "header": True, "names": None, "default_kind": "categorical",
           "columns": {"genres": {"kind": "sequence", "sep": "|", "max_len": 6, "pooling": "mean"},
                       "zip": {"kind": "hashed", "buckets": 10000},
                       "timestamp": {"kind": "ignore"}, "title": {"kind": "ignore"}}}
BOM = "\ufeff"


def write(tmp_path, text, name="data.csv", bom=False):
    path = tmp_path / name
    path.write_bytes(((BOM if bom else "") + text).encode("utf-8"))
    return path


def schema(**keys):
    return DatasetSchema.from_dict({"label": "y", **keys})


# ------------------------------------------------------------------ construction
def test_schema_error_is_a_value_error():
    assert issubclass(SchemaError, ValueError)


def test_from_dict_takes_the_module_docstring_example():
    s = DatasetSchema.from_dict(EXAMPLE)
    assert (s.label, s.task, s.id, s.sep, s.header, s.names, s.default_kind) == \
        ("rating", "regression", None, ",", True, None, "categorical")
    assert s.columns == EXAMPLE["columns"]
    assert [s.kind_of(n) for n in ("genres", "zip", "timestamp", "title", "gender", "rating")] == \
        ["sequence", "hashed", "ignore", "ignore", "categorical", "ignore"]
    assert s.to_dict() == {**EXAMPLE, "encoding": "utf-8"}


def test_from_dict_defaults():
    s = DatasetSchema.from_dict({"label": "clicked"})
    assert s.to_dict() == {"label": "clicked", "task": "binary", "id": None, "sep": ",", "header": True,
                           "names": None, "default_kind": "categorical", "columns": {}, "encoding": "utf-8"}


@pytest.mark.parametrize("bom", [False, True])
def test_load_reads_a_json_file_with_or_without_byte_order_mark(tmp_path, bom):
    path = write(tmp_path, json.dumps(EXAMPLE, indent=1), name="schema.json", bom=bom)
    assert DatasetSchema.load(path).to_dict() == {**EXAMPLE, "encoding": "utf-8"}


def test_load_of_invalid_json_or_absent_file_raises_schema_error_naming_the_file(tmp_path):
    path = write(tmp_path, '{"label": "y",}', name="broken.json")
    with pytest.raises(SchemaError, match="broken.json.*JSON"):
        DatasetSchema.load(path)
    with pytest.raises(SchemaError, match="absent.json"):
        DatasetSchema.load(tmp_path / "absent.json")


def test_load_names_the_file_in_an_unknown_key_error(tmp_path):
    path = write(tmp_path, json.dumps({"label": "y", "lable": "z"}), name="mine.json")
    with pytest.raises(SchemaError, match=r"mine.json.*'lable'.*did you mean 'label'"):
        DatasetSchema.load(path)


@pytest.mark.parametrize("d, message", [
    ({"label": "y", "colums": {}}, r"'colums'.*did you mean 'columns'"),
    ({"label": "y", "task": "multiclass"}, r"'task'.*'multiclass'"),
    ({"label": None}, "'label'"),
    ({"label": ""}, "'label'"),
    ({"label": "y", "id": "y"}, "'id'.*'y'"),
    ({"label": "y", "sep": ",,"}, r"'sep'.*',,'"),
    ({"label": "y", "sep": ""}, "'sep'"),
    ({"label": "y", "header": False}, "'names'"),
    ({"label": "y", "header": "yes"}, "'header'"),
    ({"label": "y", "names": ["y", "a", "y"]}, r"'names'.*'y'"),
    ({"label": "y", "names": ["y", ""]}, "'names'"),
    ({"label": "y", "columns": {"a": {"kind": "numerc"}}}, r"'a'.*'numerc'"),
    ({"label": "y", "columns": {"a": "numeric"}}, "'a'"),
    pytest.param({"label": "y", "columns": ["a"]}, "'columns'"),
    ({"label": "y", "default_kind": "text"}, r"'default_kind'.*'text'"),
    ({"label": "y", "columns": {"y": {"kind": "numeric"}}}, r"'y'.*label"),
    ({"label": "y", "id": "k", "columns": {"k": {"kind": "categorical"}}}, r"'k'.*id"),
    ({"label": "y", "columns": {"t": {"kind": "ignore", "buckets": 3}}}, r"'t'.*buckets"),
    ({"label": "y", "columns": {"h": {"kind": "hashed", "buckets": 0}}}, r"'h'.*buckets"),
    ({"label": "y", "columns": {"h": {"kind": "hashed"}}}, r"'h'.*buckets"),
    ({"label": "y", "columns": {"n": {"kind": "numeric", "scalng": "minmax"}}}, r"'n'.*did you mean 'scaling'"),
    ({"label": "y", "columns": {"n": {"kind": "numeric", "transform": "log"}}}, r"'n'.*transform"),
    ({"label": "y", "columns": {"g": {"kind": "sequence", "pooling": "max"}}}, r"'g'.*pooling"),
    ({"label": "y", "encoding": 8}, "'encoding'"),
])
def test_invalid_schema_raises_schema_error_naming_the_key_or_column(d, message):
    with pytest.raises(SchemaError, match=message):
        DatasetSchema.from_dict(d)


def test_a_schema_that_is_not_an_object_raises_schema_error():
    with pytest.raises(SchemaError, match="JSON object"):
        DatasetSchema.from_dict(["label", "y"])


def test_a_schema_without_label_raises_schema_error_naming_label():
    with pytest.raises(SchemaError, match="'label'"):
        DatasetSchema.from_dict({"task": "binary", "columns": {}})


def test_names_given_as_one_string_are_refused():
    with pytest.raises(SchemaError, match="'names'"):
        DatasetSchema.from_dict({"label": "y", "header": False, "names": "y,a"})


def test_an_ignored_label_or_id_entry_is_allowed():
    s = schema(id="k", columns={"y": {"kind": "ignore"}, "k": {"kind": "ignore"}})
    assert s.kind_of("y") == s.kind_of("k") == "ignore"


# ------------------------------------------------------------------ files
def test_file_columns_of_a_file_with_header(tmp_path):
    path = write(tmp_path, "y,a,b\n1,x,2\n")
    assert schema().file_columns(path) == ["y", "a", "b"]


def test_file_columns_of_a_headerless_file_are_the_names(tmp_path):
    path = write(tmp_path, "1,x,2\n0,z,3\n")
    s = schema(header=False, names=["y", "a", "b"])
    assert s.file_columns(path) == ["y", "a", "b"]
    df = s.read(path)
    assert list(df.columns) == ["y", "a", "b"] and len(df) == 2
    assert df["a"].tolist() == ["x", "z"]


def test_names_replace_the_header_of_a_file_with_one(tmp_path):
    path = write(tmp_path, "label,a,b\n1,x,2\n")
    df = schema(names=["y", "c", "d"]).read(path)
    assert list(df.columns) == ["y", "c", "d"] and len(df) == 1


def test_names_of_the_wrong_length_raise_naming_both_counts(tmp_path):
    path = write(tmp_path, "1,x,2\n")
    with pytest.raises(SchemaError, match=r"3 fields.*'names' 2"):
        schema(header=False, names=["y", "a"]).file_columns(path)


def test_tsv_read_with_comma_separator_raises_mentioning_sep(tmp_path):
    path = write(tmp_path, "y\ta\tb\n1\tx\t2\n", name="data.tsv")
    with pytest.raises(SchemaError, match=r"'sep'.*'\\t'"):
        schema().read(path)
    headerless = write(tmp_path, "1\tx\t2\n", name="headerless.tsv")
    with pytest.raises(SchemaError, match=r"1 fields.*separator ','"):
        schema(header=False, names=["y", "a", "b"]).read(headerless)
    assert schema(sep="\t").read(path)["a"].tolist() == ["x"]


def test_a_column_absent_from_the_file_raises_naming_it(tmp_path):
    path = write(tmp_path, "y,a\n1,x\n")
    with pytest.raises(SchemaError, match="'zz'"):
        schema(columns={"zz": {"kind": "numeric"}}).read(path)
    with pytest.raises(SchemaError, match="'clicked'"):
        DatasetSchema.from_dict({"label": "clicked"}).read(path)
    with pytest.raises(SchemaError, match="'k'"):
        schema(id="k").read(path)


def test_a_file_without_the_label_reads_when_the_label_is_not_needed(tmp_path):
    path = write(tmp_path, "a,b\nx,1\n")
    df = schema().read(path, need_label=False)
    assert list(df.columns) == ["a", "b"]


def test_a_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path):
    path = write(tmp_path, "y,a\n1,x\n", bom=True)
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    s = schema(columns={"y": {"kind": "ignore"}})
    assert s.file_columns(path) == ["y", "a"]
    df = s.read(path)
    assert list(df.columns) == ["y", "a"]
    assert s.labels(df).tolist() == [1.0]


def test_an_empty_file_raises(tmp_path):
    path = write(tmp_path, "")
    with pytest.raises(SchemaError, match="empty"):
        schema().file_columns(path)
    with pytest.raises(SchemaError, match="empty"):
        schema().read(path)


def test_a_header_only_file_raises(tmp_path):
    path = write(tmp_path, "y,a,b\n")
    with pytest.raises(SchemaError, match="no data rows"):
        schema().read(path)


def test_an_unreadable_path_raises_schema_error(tmp_path):
    with pytest.raises(SchemaError, match="cannot be read"):
        schema().read(tmp_path / "absent.csv")


def test_read_keeps_categorical_hashed_sequence_and_id_columns_as_text(tmp_path):
    text = "k,y,code,zip,g,n,other\n0042,1,007,00501,a|b,3,NA\n0043,0,010,75001,,4,x\n0044,1,,10001,c,,1.50\n"
    path = write(tmp_path, text)
    s = schema(id="k", columns={"zip": {"kind": "hashed", "buckets": 100}, "g": {"kind": "sequence"},
                                "n": {"kind": "numeric"}})
    df = s.read(path)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert df["k"].tolist() == raw["k"].tolist() == ["0042", "0043", "0044"]
    assert df["code"].tolist()[:2] == ["007", "010"] and pd.isna(df["code"][2])
    assert df["zip"].tolist() == ["00501", "75001", "10001"]
    assert df["other"].tolist() == ["NA", "x", "1.50"]  # text kept, "NA" is not missing
    assert df["g"][0] == "a|b" and pd.isna(df["g"][1])
    assert df["n"].tolist()[:2] == [3.0, 4.0] and pd.isna(df["n"][2])
    assert pd.api.types.is_numeric_dtype(df["n"]) and pd.api.types.is_numeric_dtype(df["y"])


def chunk_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 53
    codes = [f"{int(c):03d}" for c in rng.integers(0, 20, n)]
    nums = [("" if i % 11 == 10 else f"{v:.3f}") for i, v in enumerate(rng.normal(size=n))]
    lines = ["y,code,n"] + [f"{i % 2},{c},{v}" for i, (c, v) in enumerate(zip(codes, nums))]
    return write(tmp_path, "\n".join(lines) + "\n"), codes


def test_chunked_read_gives_the_rows_of_a_whole_read(tmp_path):
    path, codes = chunk_file(tmp_path)
    s = schema(columns={"n": {"kind": "numeric"}})
    whole = s.read(path)
    chunks = list(s.read(path, chunksize=7))
    assert [len(c) for c in chunks] == [7] * 7 + [4]
    joined = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole, check_dtype=False)
    assert whole["code"].tolist() == codes
    assert all(c["code"].map(type).eq(str).all() for c in chunks)


def test_read_with_nrows_gives_the_first_rows(tmp_path):
    path, codes = chunk_file(tmp_path)
    df = schema().read(path, nrows=5)
    assert df["code"].tolist() == codes[:5]


# ------------------------------------------------------------------ feature spec
AVAILABLE = ["k", "y", "a", "b", "c", "t", "g"]


def test_feature_spec_skips_label_id_and_ignored_columns_in_file_order():
    s = schema(id="k", columns={"t": {"kind": "ignore"}, "b": {"kind": "numeric", "transform": "log1p"},
                                "g": {"kind": "sequence", "sep": ";"}})
    spec = s.feature_spec(AVAILABLE)
    assert spec.names == ["a", "b", "c", "g"]
    assert [type(c) for c in spec.columns] == [Categorical, Numeric, Categorical, Sequence]
    assert spec.columns[1].options["transform"] == "log1p" and spec.columns[3].sep == ";"
    assert not spec.is_fitted


def test_default_kind_applies_to_unlisted_columns():
    s = schema(default_kind="hashed", columns={"a": {"kind": "numeric"}, "b": {"buckets": 8}})
    assert s.kind_of("b") == "hashed" and s.kind_of("c") == "hashed"
    with pytest.raises(SchemaError, match="'c'.*buckets"):  # an unlisted hashed column has no buckets
        s.feature_spec(["y", "a", "b", "c"])
    spec = s.feature_spec(["y", "a", "b"])
    assert [type(c) for c in spec.columns] == [Numeric, Hashed] and spec.columns[1].buckets == 8


def test_default_kind_ignore_keeps_only_the_listed_columns():
    s = schema(default_kind="ignore", columns={"c": {"kind": "categorical"}, "a": {"kind": "numeric"}})
    assert s.feature_spec(AVAILABLE).names == ["a", "c"]


def test_feature_spec_of_only_ignored_columns_raises():
    with pytest.raises(SchemaError, match="no feature columns"):
        schema(default_kind="ignore").feature_spec(AVAILABLE)
    with pytest.raises(SchemaError, match="single-valued"):
        schema(default_kind="ignore", columns={"g": {"kind": "sequence"}}).feature_spec(AVAILABLE)


# ------------------------------------------------------------------ labels
def test_binary_labels_zero_one_are_accepted_as_float32():
    y = schema().labels(pd.DataFrame({"y": [0, 1, 1, 0]}))
    assert y.dtype == np.float32 and y.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert schema().labels(pd.DataFrame({"y": ["1", "0", "1.0"]})).tolist() == [1.0, 0.0, 1.0]


def test_binary_label_two_is_refused_naming_the_row():
    with pytest.raises(SchemaError, match=r"'y'.*2.*row 2.*binary"):
        schema().labels(pd.DataFrame({"y": [0, 1, 2, 1]}))


@pytest.mark.parametrize("task", ["binary", "regression"])
@pytest.mark.parametrize("bad, row", [([0.0, np.nan, 1.0], 1), (["1", "0", "yes"], 2), ([1.0, 0.0, np.inf], 2)])
def test_missing_or_text_labels_are_refused_naming_the_row(task, bad, row):
    with pytest.raises(SchemaError, match=f"'y'.*row {row}.*not a number"):
        schema(task=task).labels(pd.DataFrame({"y": bad}))


def test_regression_labels_accept_reals():
    values = [0.5, 3.75, -2.0, 1e3]
    y = schema(task="regression").labels(pd.DataFrame({"y": values}))
    np.testing.assert_array_equal(y, np.array(values, np.float32))


def test_labels_of_a_frame_without_the_label_column_raise_naming_it():
    with pytest.raises(SchemaError, match="'y'"):
        schema().labels(pd.DataFrame({"a": [1]}))


# ------------------------------------------------------------------ real samples
CRITEO_NAMES = ["label"] + [f"I{i}" for i in range(1, 14)] + [f"C{i}" for i in range(1, 27)]


def test_criteo_tsv_read_through_a_schema_with_names(shared_data):
    path = shared_data / "criteo/criteo_kaggle_train_head1000.tsv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert {len(r) for r in rows} == {40}
    s = DatasetSchema.from_dict({"label": "label", "sep": "\t", "header": False, "names": CRITEO_NAMES,
                                 "columns": {f"I{i}": {"kind": "numeric"} for i in range(1, 14)}})
    df = s.read(path)
    assert df.shape == (1000, 40) and list(df.columns) == CRITEO_NAMES
    i2 = [float(r[2]) for r in rows if r[2] != ""]
    assert sum(v == -1 for v in i2) == (df["I2"] == -1).sum() == 107
    assert df["C1"].fillna("").tolist() == [r[14] for r in rows]
    np.testing.assert_array_equal(s.labels(df), [float(r[0]) for r in rows])

    spec = s.feature_spec(df.columns)
    assert spec.names == CRITEO_NAMES[1:]
    spec.fit(df)
    i2_column = spec.columns[1]
    assert i2_column.name == "I2"
    assert i2_column.center_ == pytest.approx(np.mean(i2), rel=1e-12)  # -1 counted as a value
    assert i2_column.scale_ == pytest.approx(np.std(i2), rel=1e-12)
    arrays = spec.transform(df)
    at_minus_one = (df["I2"] == -1).to_numpy()
    want = np.float32((-1 - np.mean(i2)) / np.std(i2))
    np.testing.assert_allclose(arrays.Xv[at_minus_one, 1], want, rtol=1e-6)
    assert want != 0.0
    categorical_sizes = [df[c].nunique(dropna=False) + 1 for c in CRITEO_NAMES[14:]]
    assert spec.feat_dim == 13 + sum(categorical_sizes)


def test_movielens_sample_through_the_docstring_example_schema(shared_data):
    path = shared_data / "movielens/deepctr_movielens_sample.csv"
    s = DatasetSchema.from_dict(EXAMPLE)
    df = s.read(path)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert len(df) == len(raw) == 200
    assert df["zip"].tolist() == raw["zip"].tolist()
    spec = s.feature_spec(df.columns).fit(df)
    assert spec.names == ["user_id", "movie_id", "genres", "gender", "age", "occupation", "zip"]
    assert spec.sequence_fields == ["genres"] and spec.sequence_lengths == (6,)
    np.testing.assert_array_equal(s.labels(df), raw["rating"].astype(float).to_numpy(np.float32))
    arrays = spec.transform(df)
    index, weight = arrays.Xs[0]
    n_tokens = raw["genres"].str.count(r"\|") + 1
    np.testing.assert_allclose(weight.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal((weight > 0).sum(1), n_tokens)


def test_fit_spec_reads_the_file_in_chunks_and_equals_the_whole_read_fit(tmp_path):
    rng = np.random.default_rng(4)
    n = 1_000
    frame = pd.DataFrame({"y": rng.integers(0, 2, n), "c": rng.choice(["p", "q", "007"], n),
                          "g": ["|".join(rng.choice(list("abcd"), rng.integers(0, 4))) for _ in range(n)],
                          "x": rng.geometric(0.2, n)})
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    s = schema(label="y", columns={"g": {"kind": "sequence"}, "x": {"kind": "numeric", "transform": "bucketize"}})
    chunked = s.fit_spec(path, chunksize=64)
    whole = s.feature_spec(s.file_columns(path)).fit(s.read(path))
    assert chunked.to_dict() == whole.to_dict()
    assert chunked.columns[0].vocabulary_ == ["007", "p", "q"]  # read as text: "007" stays "007"
