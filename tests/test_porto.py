"""Tests for deepfm_graph.porto: schema constants, roles, engineered features, validation."""
import time

import numpy as np
import pandas as pd
import pytest

from deepfm_graph import porto
from deepfm_graph.porto import PortoSchemaError, validate_porto_frame
from deepfm_graph.synthetic import make_porto_data


@pytest.fixture(scope="module")
def frames():
    return make_porto_data(n_train=60, n_test=20, seed=1)


@pytest.fixture
def train(frames):
    return frames[0].copy()


def real_frame(shared_data, name):
    return pd.read_csv(shared_data / "porto_seguro" / name)


# --- schema constants ---------------------------------------------------------------------

def test_feature_columns_are_the_real_header_in_order(shared_data):
    header = pd.read_csv(shared_data / "porto_seguro" / "train_head10000.csv", nrows=0).columns
    assert list(header) == ["id", "target", *porto.FEATURE_COLUMNS]


def test_column_kinds_follow_suffix_and_whole_numbers(shared_data):
    real = real_frame(shared_data, "train_head10000.csv")
    for column, kind in porto.COLUMN_KINDS.items():
        whole = bool((real[column] == real[column].round()).all())
        expected = next((k for k in ("cat", "bin") if column.endswith(f"_{k}")),
                        "int" if whole else "cont")
        assert kind == expected, column


def test_missing_columns_are_those_with_minus_one_in_full_train(shared_data):
    stats = pd.read_csv(shared_data / "porto_seguro" / "column_stats.csv")
    with_missing = stats.loc[stats["full_n_minus1"] > 0, "column"]
    assert set(porto.MISSING_COLUMNS) == set(with_missing)


def test_roles_split_the_features_into_numeric_categorical_ignored():
    raw_numeric = [c for c in porto.NUMERIC_COLS if c not in porto.ENGINEERED_COLS]
    assert raw_numeric == ["ps_reg_01", "ps_reg_02", "ps_reg_03", "ps_car_12", "ps_car_13",
                           "ps_car_14", "ps_car_15"]
    assert {"id", "target"} | {c for c in porto.FEATURE_COLUMNS if "calc" in c} \
        == set(porto.IGNORE_COLS)
    roles = set(raw_numeric) | set(porto.CATEGORICAL_COLS) | set(porto.IGNORE_COLS)
    assert roles == set(porto.FEATURE_COLUMNS) | {"id", "target"}
    assert len(porto.CATEGORICAL_COLS) == 57 - 7 - 20


# --- column_roles -------------------------------------------------------------------------

def test_column_roles_defaults_are_the_porto_roles():
    assert porto.column_roles() == (porto.NUMERIC_COLS, porto.IGNORE_COLS)


def test_column_roles_overrides_return_tuples():
    numeric, ignore = porto.column_roles(numeric_cols=["ps_car_13"], ignore_cols=["id"])
    assert numeric == ("ps_car_13",)
    assert ignore == ("id",)


def test_column_roles_override_one_role_only():
    numeric, ignore = porto.column_roles(ignore_cols=())
    assert numeric == porto.NUMERIC_COLS and ignore == ()


def test_column_roles_rejects_a_bare_string():
    with pytest.raises(TypeError, match="ps_car_13"):
        porto.column_roles(numeric_cols="ps_car_13")


def test_column_roles_rejects_a_column_in_both_roles():
    with pytest.raises(ValueError, match="ps_car_13"):
        porto.column_roles(numeric_cols=["ps_car_13"], ignore_cols=["id", "ps_car_13"])


# --- add_engineered_features --------------------------------------------------------------

def test_engineered_features_match_hand_computation(train):
    train.loc[0, ["ps_ind_05_cat", "ps_car_03_cat", "ps_reg_03"]] = -1
    out = porto.add_engineered_features(train)
    for i, row in train.iterrows():
        expected_missing = sum(1 for c in porto.FEATURE_COLUMNS if row[c] == -1)
        assert out.loc[i, "missing_feat"] == expected_missing
        expected_product = row["ps_car_13"] * row["ps_reg_03"]
        assert out.loc[i, "ps_car_13_x_ps_reg_03"] == pytest.approx(expected_product)
    assert out.loc[0, "missing_feat"] >= 3


def test_engineered_features_keep_the_original_columns_first(train):
    out = porto.add_engineered_features(train)
    assert list(out.columns) == list(train.columns) + list(porto.ENGINEERED_COLS)
    pd.testing.assert_frame_equal(out[train.columns], train)


def test_engineered_features_do_not_mutate_the_input(train):
    before = train.copy()
    porto.add_engineered_features(train)
    pd.testing.assert_frame_equal(train, before)


def test_engineered_features_need_all_feature_columns(train):
    with pytest.raises(PortoSchemaError, match="ps_car_13"):
        porto.add_engineered_features(train.drop(columns="ps_car_13"))


# --- validate_porto_frame: accepted frames ------------------------------------------------

def test_validator_accepts_generated_train_and_test(frames):
    train, test = frames
    assert validate_porto_frame(train) is None
    assert validate_porto_frame(test, has_target=False, name="test") is None


def test_validator_accepts_the_real_samples(shared_data):
    validate_porto_frame(real_frame(shared_data, "train_head10000.csv"))
    validate_porto_frame(real_frame(shared_data, "test_head2000.csv"), has_target=False)


def test_validator_allows_minus_one_in_missing_columns(train):
    train.loc[:, list(porto.MISSING_COLUMNS)] = -1
    validate_porto_frame(train)


# --- validate_porto_frame: rejected frames ------------------------------------------------

def set_cell(column, position, value):
    def mutate(df):
        df[column] = df[column].astype(object)
        df.loc[position, column] = value
        return df
    return mutate


def duplicate_id(df):
    df.loc[6, "id"] = df.loc[5, "id"]
    return df


CELL_CASES = {  # case -> (mutation, column, row position)
    "target_nan": (set_cell("target", 3, np.nan), "target", 3),
    "target_two": (set_cell("target", 4, 2), "target", 4),
    "text_in_feature": (set_cell("ps_ind_03", 4, "abc"), "ps_ind_03", 4),
    "nan_in_feature": (set_cell("ps_reg_01", 2, np.nan), "ps_reg_01", 2),
    "inf_in_feature": (set_cell("ps_car_13", 7, np.inf), "ps_car_13", 7),
    "bin_is_two": (set_cell("ps_ind_06_bin", 5, 2), "ps_ind_06_bin", 5),
    "bin_is_minus_one": (set_cell("ps_calc_15_bin", 8, -1), "ps_calc_15_bin", 8),
    "duplicated_id": (duplicate_id, "id", 6),
}


@pytest.mark.parametrize("case", sorted(CELL_CASES))
def test_validator_names_column_row_and_id_of_a_bad_cell(train, case):
    mutate, column, position = CELL_CASES[case]
    bad = mutate(train)
    row_id = bad.loc[position, "id"]
    with pytest.raises(PortoSchemaError) as error:
        validate_porto_frame(bad, name="train")
    message = str(error.value)
    assert f"'{column}'" in message
    assert f"row {position} (id {row_id})" in message
    assert message.startswith("train:")


def test_validator_reports_the_first_bad_row(train):
    train.loc[[9, 3], "ps_ind_07_bin"] = 5
    with pytest.raises(PortoSchemaError, match=r"row 3 "):
        validate_porto_frame(train)


def test_validator_rejects_a_missing_id(train):
    train["id"] = train["id"].astype(float)
    train.loc[1, "id"] = np.nan
    with pytest.raises(PortoSchemaError, match=r"'id'.*missing id at row 1"):
        validate_porto_frame(train)


FRAME_CASES = {  # case -> (mutation, text the message must hold)
    "missing_feature": (lambda df: df.drop(columns="ps_car_13"), "ps_car_13"),
    "extra_column": (lambda df: df.assign(foo=1), "foo"),
    "duplicated_column": (lambda df: pd.concat([df, df[["ps_ind_01"]]], axis=1), "ps_ind_01"),
    "missing_target": (lambda df: df.drop(columns="target"), "target"),
    "missing_id_column": (lambda df: df.drop(columns="id"), "id"),
    "empty": (lambda df: df.iloc[:0], "no rows"),
}


@pytest.mark.parametrize("case", sorted(FRAME_CASES))
def test_validator_rejects_a_bad_frame_naming_the_problem(train, case):
    mutate, text = FRAME_CASES[case]
    with pytest.raises(PortoSchemaError, match=f"^train: .*{text}"):
        validate_porto_frame(mutate(train))


def test_validator_error_is_a_value_error(train):
    with pytest.raises(ValueError):
        validate_porto_frame(train.drop(columns="ps_ind_01"))


def test_test_frames_need_no_target(frames):
    validate_porto_frame(frames[0].drop(columns="target"), has_target=False)


def test_validator_is_fast_on_600k_rows(frames):
    big = frames[0].iloc[np.arange(600_000) % len(frames[0])].reset_index(drop=True)
    big["id"] = np.arange(len(big))
    start = time.perf_counter()
    validate_porto_frame(big)
    assert time.perf_counter() - start < 10  # a loop over rows would take minutes


# --- read_porto_csv -----------------------------------------------------------------------

def test_read_porto_csv_returns_the_checked_frame_with_compact_dtypes(tmp_path, frames):
    path = tmp_path / "train.csv"
    frames[0].to_csv(path, index=False)
    df = porto.read_porto_csv(path)
    pd.testing.assert_frame_equal(df, frames[0], check_dtype=False)
    assert df["ps_car_11_cat"].dtype == np.int16 and df["ps_reg_03"].dtype == np.float64


def test_read_porto_csv_names_the_column_of_a_value_that_breaks_compact_dtypes(tmp_path, frames):
    path = tmp_path / "train.csv"
    bad = frames[0].astype({"ps_ind_01": object})
    bad.loc[bad.index[3], "ps_ind_01"] = "abc"
    bad.to_csv(path, index=False)
    with pytest.raises(porto.PortoSchemaError, match="ps_ind_01"):
        porto.read_porto_csv(path)


@pytest.mark.parametrize("content", ["", "id,target\n1,0\n2,1,3,4\n"], ids=["empty", "ragged"])
def test_read_porto_csv_turns_unreadable_files_into_schema_errors(tmp_path, content):
    path = tmp_path / "broken.csv"
    path.write_text(content)
    with pytest.raises(PortoSchemaError, match="broken.csv"):
        porto.read_porto_csv(path, has_target=True, name="train")


def test_read_porto_csv_names_the_file_in_schema_errors(tmp_path, frames):
    path = tmp_path / "test.csv"
    frames[1].drop(columns="ps_reg_02").to_csv(path, index=False)
    with pytest.raises(PortoSchemaError, match=r"test file .*test\.csv.*ps_reg_02"):
        porto.read_porto_csv(path, has_target=False, name="test")
