"""CSV reading and row validation: every problem is a DataError that names it, and a file's
messages name it by its name only, never quoting its contents."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from azuraforge_forecasting import (
    MAX_HORIZON,
    DataError,
    column_name,
    forecast_horizon,
    frame_from_rows,
    prepare_frame,
    read_csv,
)


def rows(n=5, **columns):
    frame = pd.DataFrame({"date": pd.date_range("2021-03-01", periods=n, freq="D").astype(str)})
    for name, values in columns.items():
        frame[name] = values
    return frame


def test_headers_are_matched_case_and_space_insensitively():
    assert column_name(" Adj Close ") == "adj_close"
    frame = prepare_frame(rows(3, **{"Close Price": [1, 2, 3]}), required=["close_price"])
    assert list(frame.columns) == ["date", "close_price"]
    assert frame["close_price"].dtype == np.float64


def test_a_missing_column_is_named_with_the_columns_there_are():
    with pytest.raises(DataError) as err:
        prepare_frame(rows(3, open=[1, 2, 3]), required=["close"], what="prices.csv")
    assert str(err.value) == (
        "prices.csv is missing the column(s) 'close' (its columns: date, open)"
    )


def test_a_missing_date_column_is_named():
    with pytest.raises(DataError, match=r"has no 'date' column \(its columns: close\)"):
        prepare_frame(pd.DataFrame({"close": [1.0, 2.0]}), required=["close"])


def test_non_numeric_cells_are_named_by_column_and_row():
    frame = rows(4, close=["1", "2", "abc", "4"])
    with pytest.raises(DataError) as err:
        prepare_frame(frame, required=["close"])
    assert str(err.value) == "the data: column 'close' has non-numeric values: row 3 ('abc')"
    # a file's contents are never quoted (a server shows the message to whoever named it)
    with pytest.raises(DataError) as err:
        prepare_frame(frame, required=["close"], quote_values=False)
    assert str(err.value) == "the data: column 'close' has non-numeric values: row 3"


def test_a_mostly_text_column_that_is_not_required_is_left_out():
    frame = prepare_frame(rows(3, close=[1, 2, 3], label=["a", "b", "c"]), required=["close"])
    assert list(frame.columns) == ["date", "close"]


def test_empty_cells_dates_that_are_not_dates_and_duplicate_dates_are_refused():
    with pytest.raises(DataError, match=r"column 'close' has empty or missing cells in row 2"):
        prepare_frame(rows(3, close=[1.0, None, 3.0]), required=["close"])
    bad_date = rows(3, close=[1, 2, 3])
    bad_date.loc[1, "date"] = "someday"
    with pytest.raises(
        DataError, match=r"'date' has values that are not dates: row 2 \('someday'\)"
    ):
        prepare_frame(bad_date, required=["close"])
    twice = rows(3, close=[1, 2, 3])
    twice.loc[2, "date"] = twice.loc[0, "date"]
    with pytest.raises(DataError, match=r"some dates appear twice: row 3"):
        prepare_frame(twice, required=["close"])


def test_rows_come_back_sorted_by_date():
    frame = prepare_frame(rows(3, close=[1, 2, 3]).iloc[::-1], required=["close"])
    assert frame["close"].tolist() == [1.0, 2.0, 3.0]


def test_no_rows_at_all_is_refused():
    with pytest.raises(DataError, match="has no rows"):
        prepare_frame(rows(0, close=[]), required=["close"])


def test_a_missing_file_is_named_by_its_name_only(tmp_path):
    path = tmp_path / "private" / "folder" / "prices.csv"
    with pytest.raises(DataError) as err:
        read_csv(path)
    assert str(err.value) == "the CSV file: no such file (prices.csv)"
    assert "private" not in str(err.value)


def test_an_unreadable_file_is_named_without_quoting_its_contents(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="the CSV file is empty"):
        read_csv(empty)
    binary = tmp_path / "secret.csv"
    binary.write_bytes(b"date,close\n2021-01-01,\xff\xfeTOPSECRET\n")
    with pytest.raises(DataError) as err:
        read_csv(binary, what="secret.csv")
    assert "not UTF-8" in str(err.value) and "TOPSECRET" not in str(err.value)


def test_an_uploaded_csv_with_bad_cells_is_refused_without_quoting_them(tmp_path):
    path = tmp_path / "upload.csv"
    path.write_text("date,value\n2021-01-01,1\n2021-01-02,hunter2\n")
    with pytest.raises(DataError) as err:
        frame_from_rows(path, required=["value"])
    assert str(err.value) == "the rows: column 'value' has non-numeric values: row 2"


def test_rows_for_predict_are_dicts_a_frame_or_a_path_never_a_plain_string(tmp_path):
    dicts = [{"date": "2021-01-01", "value": 1}, {"date": "2021-01-02", "value": 2}]
    assert frame_from_rows(dicts, required=["value"])["value"].tolist() == [1.0, 2.0]
    indexed = pd.DataFrame(
        {"value": [3.0, 4.0]}, index=pd.Index(["2021-01-01", "2021-01-02"], name="date")
    )
    assert frame_from_rows(indexed, required=["value"])["value"].tolist() == [3.0, 4.0]
    path = tmp_path / "rows.csv"
    pd.DataFrame(dicts).to_csv(path, index=False)
    assert frame_from_rows(Path(path), required=["value"])["value"].tolist() == [1.0, 2.0]
    with pytest.raises(DataError, match="must be a list of dicts"):
        frame_from_rows(str(path), required=["value"])  # JSON from a client cannot name a file


@pytest.mark.parametrize("value", [1, 7.0, np.int64(3), MAX_HORIZON])
def test_a_horizon_is_a_whole_number_of_steps(value):
    assert forecast_horizon(value) == int(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "between 1 and 1000 steps, got 0"),
        (MAX_HORIZON + 1, "between 1 and 1000 steps, got 1001"),
        (1e20, "between 1 and 1000 steps"),
        (2.5, "a whole number of steps, got 2.5"),
        (float("inf"), "a whole number of steps, got inf"),
        (True, "a whole number of steps, got bool"),
        ("3", "a whole number of steps, got str"),
    ],
)
def test_a_horizon_outside_the_bounds_is_refused_with_the_reason(value, message):
    with pytest.raises(DataError, match=message):
        forecast_horizon(value)
