"""The CSV loader: a user's own OHLCV, validated with errors that name the line and the column."""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest_engine.bars import iso_utc
from backtest_engine.csv_data import read_csv_bars
from backtest_engine.errors import DataError, UserInputError
from backtest_engine.market_data import aggregate, load_bars, minute_bars

HEADER = "time,open,high,low,close,volume\n"
GOOD = (
    HEADER
    + "2024-01-02T14:30:00Z,100,101,99,100.5,1000\n"
    + "2024-01-02T14:31:00Z,100.5,102,100,101.5,1200\n"
    + "2024-01-02T14:32:00Z,101.5,101.5,100.5,101,800\n"
)


def csv_of(*rows: str, header: str = HEADER) -> str:
    return header + "".join(row + "\n" for row in rows)


def ns(text: str) -> np.datetime64:
    return np.datetime64(text, "ns")


# --- happy paths -----------------------------------------------------------------------------------


def test_reads_a_file_with_any_header_case_and_extra_columns(tmp_path):
    # Given a file with capitalized headers, a BOM and an extra column
    path = tmp_path / "bars.csv"
    path.write_text(
        "\ufeffTimestamp,Open,High,Low,Close,Volume,Note\n"
        "2024-01-02T14:30:00Z,100,101,99,100.5,1000,a\n"
        "2024-01-02T14:31:00Z,100.5,102,100,101.5,1200,b\n",
        encoding="utf-8",
    )
    # When it is read
    bars = read_csv_bars(path, symbol="MYCO", lot_size=0.5)
    # Then every column is there as float64, times as UTC datetime64[ns]
    assert (bars.symbol, bars.source, bars.lot_size, bars.timeframe, bars.periods_per_year) == (
        "MYCO",
        "csv",
        0.5,
        "1m",
        252,
    )
    assert bars.times.dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(bars.times, [ns("2024-01-02T14:30"), ns("2024-01-02T14:31")])
    np.testing.assert_array_equal(bars.open, [100, 100.5])
    np.testing.assert_array_equal(bars.high, [101, 102])
    np.testing.assert_array_equal(bars.low, [99, 100])
    np.testing.assert_array_equal(bars.close, [100.5, 101.5])
    np.testing.assert_array_equal(bars.volume, [1000, 1200])
    assert all(getattr(bars, c).dtype == np.float64 for c in ("open", "high", "low", "close", "volume"))


def test_reads_a_text_stream_a_string_path_and_csv_text_alike(tmp_path):
    path = tmp_path / "bars.csv"
    path.write_text(GOOD)
    from_stream = read_csv_bars(io.StringIO(GOOD))
    from_text = read_csv_bars(GOOD)
    from_path = read_csv_bars(str(path))
    assert from_stream.fingerprint() == from_text.fingerprint() == from_path.fingerprint()
    assert len(from_text) == 3 and from_text.symbol == "CUSTOM"


def test_unsorted_rows_are_sorted_with_their_values():
    text = csv_of(
        "2024-01-02T14:32:00Z,3,3,3,3,30",
        "2024-01-02T14:30:00Z,1,1,1,1,10",
        "2024-01-02T14:31:00Z,2,2,2,2,20",
    )
    bars = read_csv_bars(text)
    np.testing.assert_array_equal(bars.close, [1, 2, 3])
    np.testing.assert_array_equal(bars.volume, [10, 20, 30])
    assert np.all(np.diff(bars.times.view(np.int64)) > 0)


def test_offsets_are_converted_to_utc_and_naive_times_are_utc():
    text = csv_of(
        "2024-01-02 09:30:00-05:00,1,1,1,1,1",
        "2024-01-02T15:31:00+01:00,1,1,1,1,1",
        "2024-01-02 14:32:00,1,1,1,1,1",
        "2024-01-02T14:33:00.500Z,1,1,1,1,1",
    )
    bars = read_csv_bars(text)
    expected = ["2024-01-02T14:30", "2024-01-02T14:31", "2024-01-02T14:32", "2024-01-02T14:33:00.500"]
    np.testing.assert_array_equal(bars.times, [ns(t) for t in expected])


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        (["1704205800", "1704205860"], ["2024-01-02T14:30", "2024-01-02T14:31"]),  # seconds
        (["1704205800000", "1704205860000"], ["2024-01-02T14:30", "2024-01-02T14:31"]),  # milliseconds
        (["1704205800.25", "1704205860.5"], ["2024-01-02T14:30:00.250", "2024-01-02T14:31:00.500"]),
        (["1704205800000000", "1704205860000000"], ["2024-01-02T14:30", "2024-01-02T14:31"]),  # micro
    ],
)
def test_epoch_times_are_told_apart_by_size(stamps, expected):
    bars = read_csv_bars(csv_of(*(f"{s},1,1,1,1,1" for s in stamps)))
    np.testing.assert_array_equal(bars.times, [ns(t) for t in expected])


def test_separate_date_and_time_columns_are_combined():
    text = csv_of(
        "2024-01-02,14:30,1,1,1,1,1",
        "2024-01-02,14:31:00,1,1,1,1,1",
        header="Date,Time,Open,High,Low,Close,Volume\n",
    )
    np.testing.assert_array_equal(read_csv_bars(text).times, [ns("2024-01-02T14:30"), ns("2024-01-02T14:31")])


def test_blank_lines_are_skipped_and_lines_still_count():
    text = HEADER + "\n2024-01-02T14:30:00Z,1,1,1,1,1\n\n2024-01-02T14:31:00Z,1,1,1,x,1\n"
    with pytest.raises(DataError) as err:
        read_csv_bars(text)
    assert err.value.line == 5 and "line 5" in str(err.value)
    assert len(read_csv_bars(HEADER + "\n2024-01-02T14:30:00Z,1,1,1,1,1\n\n2024-01-02T14:31:00Z,1,1,1,1,1\n\n")) == 2


# --- inference -------------------------------------------------------------------------------------


def test_calendar_is_inferred_from_weekend_bars_unless_given():
    weekdays = csv_of("2024-01-04,1,1,1,1,1", "2024-01-05,1,1,1,1,1", "2024-01-08,1,1,1,1,1")
    with_weekend = csv_of("2024-01-05,1,1,1,1,1", "2024-01-06,1,1,1,1,1", "2024-01-07,1,1,1,1,1")
    assert read_csv_bars(weekdays).periods_per_year == 252
    assert read_csv_bars(with_weekend).periods_per_year == 365
    assert read_csv_bars(with_weekend, periods_per_year=252).periods_per_year == 252
    assert read_csv_bars(weekdays).timeframe == read_csv_bars(with_weekend).timeframe == "1d"


@pytest.mark.parametrize(("timeframe", "expected"), [(tf, tf) for tf in ("1m", "5m", "15m", "1h", "4h", "1d")])
def test_timeframe_is_inferred_from_equity_session_bars(timeframe, expected):
    # Given a week of synthetic equity bars written out as CSV (sessions with overnight gaps)
    bars = load_bars("MSFT", timeframe, date(2024, 3, 4), date(2024, 3, 15))
    text = bars.to_frame().to_csv()
    # Then the loader names the timeframe (the median spacing, or the most common one for 4h bars)
    assert read_csv_bars(text).timeframe == expected


def test_irregular_spacing_is_custom_and_a_given_timeframe_wins():
    text = csv_of("2024-01-02T14:30Z,1,1,1,1,1", "2024-01-02T14:37Z,1,1,1,1,1", "2024-01-02T14:44Z,1,1,1,1,1")
    assert read_csv_bars(text).timeframe == "custom"
    assert read_csv_bars(text, timeframe="7m").timeframe == "7m"


def test_synthetic_bars_survive_a_csv_round_trip_and_aggregate_the_same():
    # Given a week of synthetic AAPL minutes saved as CSV
    minutes = minute_bars("AAPL", date(2024, 3, 4), date(2024, 3, 12))  # across the DST change
    loaded = read_csv_bars(minutes.to_frame().to_csv(), symbol="MYAAPL")
    # Then the loaded bars are identical, and aggregate like the synthetic ones
    for c in ("times", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(loaded, c), getattr(minutes, c))
    assert (loaded.timeframe, loaded.periods_per_year) == ("1m", 252)
    for tf in ("1h", "4h", "1d"):
        ours, theirs = aggregate(loaded, tf), aggregate(minutes, tf)
        np.testing.assert_array_equal(ours.times, theirs.times)
        np.testing.assert_array_equal(ours.high, theirs.high)
        np.testing.assert_array_equal(ours.volume, theirs.volume)


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "needles"),
    [
        # structure
        (
            "time,open,high,low,close\n2024-01-02,1,1,1,1\n",
            1,
            ["missing column volume", "line 1", "required"],
        ),
        (
            "when,open,high,low,close,volume\n2024-01-02,1,1,1,1,1\n",
            1,
            ["no time column", "timestamp", "when"],
        ),
        ("time,close,Close,open,high,low,volume\n", 1, ["'close' appears twice"]),
        (HEADER, None, ["at least two bars", "has 0"]),
        (csv_of("2024-01-02,1,1,1,1,1"), None, ["at least two bars", "has 1"]),
        (csv_of("2024-01-02,1,1,1,1,1", "2024-01-03,1,1,1,1,1,7"), 3, ["cannot be parsed", "line 3"]),
        # missing and bad values
        (csv_of("2024-01-02,1,1,1,1,1", "2024-01-03,1,1,1,NaN,1"), 3, ["line 3", "'close'", "missing"]),
        (csv_of("2024-01-02,,1,1,1,1", "2024-01-03,1,1,1,1,1"), 2, ["line 2", "'open'", "missing"]),
        (
            csv_of("2024-01-02,1,1,1,1,1", "2024-01-03,1,abc,1,1,1"),
            3,
            ["line 3", "'high'", "'abc' is not a number"],
        ),
        (
            csv_of("2024-01-02,1,1,1,1,1", "2024-01-03,1,inf,1,1,1"),
            3,
            ["line 3", "'high'", "not a finite number"],
        ),
        (csv_of("2024-01-02,1,1,1,1,1", ",1,1,1,1,1"), 3, ["line 3", "'time'", "missing"]),
        (
            csv_of("2024-01-02,1,1,1,1,1", "01/03/2024,1,1,1,1,1"),
            3,
            ["line 3", "'time'", "ISO 8601", "epoch"],
        ),
        (
            csv_of("2024-01-02,1,1,1,1,1", "2500-01-03,1,1,1,1,1"),
            3,
            ["line 3", "'time'", "outside the supported years 1900-2199"],
        ),
        # bar rules
        (csv_of("2024-01-02,1,1,1,1,1", "2024-01-03,0,1,0,1,1"), 3, ["line 3", "'open'", "positive, got 0"]),
        (csv_of("2024-01-02,1,1,1,1,1", "2024-01-03,1,1,-1,1,1"), 3, ["line 3", "'low'", "positive, got -1"]),
        (
            csv_of("2024-01-02,1,1,1,1,1", "2024-01-03,1,1.5,1,2,1"),
            3,
            ["line 3", "'high'", "below max(open, close) = 2"],
        ),
        (
            csv_of("2024-01-02,1,2,1.5,1.8,1", "2024-01-03,1,1,1,1,1"),
            2,
            ["line 2", "'low'", "above min(open, close) = 1"],
        ),
        (csv_of("2024-01-02,1,1,1,1,1", "2024-01-03,1,1,1,1,-5"), 3, ["line 3", "'volume'", ">= 0, got -5"]),
        (
            csv_of("2024-01-02T14:30Z,1,1,1,1,1", "2024-01-02T14:31Z,1,1,1,1,1", "2024-01-02 14:30,1,1,1,1,1"),
            4,
            ["duplicate time 2024-01-02T14:30:00+00:00", "lines 2 and 4"],
        ),
        # several bad rows: the first is named and the rest counted
        (
            csv_of("2024-01-02,1,1,1,1,1", "2024-01-03,1,x,1,1,1", "2024-01-04,1,y,1,1,1"),
            3,
            ["line 3", "2 rows"],
        ),
    ],
)
def test_every_problem_names_the_line_and_column(text, line, needles):
    with pytest.raises(DataError) as err:
        read_csv_bars(text)
    assert err.value.line == line
    for needle in needles:
        assert needle in str(err.value)
    assert err.value.to_dict()["type"] == "InvalidMarketData"


def test_the_column_is_named_as_the_file_spells_it():
    text = csv_of("2024-01-02,1,1,1,1,1", "2024-01-03,1,1,1,,1", header="Date,OPEN,HIGH,LOW,CLOSE,VOLUME\n")
    with pytest.raises(DataError, match=r"line 3, column 'CLOSE': missing"):
        read_csv_bars(text)


def test_unreadable_sources_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_csv_bars(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_csv_bars(empty)
    with pytest.raises(UserInputError, match="source must be"):
        read_csv_bars(42)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"lot_size": 0}, "lot_size"),
        ({"lot_size": float("nan")}, "lot_size"),
        ({"periods_per_year": 0}, "periods_per_year"),
        ({"periods_per_year": 252.5}, "periods_per_year"),
        ({"symbol": " "}, "symbol"),
        ({"timeframe": ""}, "timeframe"),
    ],
)
def test_bad_arguments_are_user_errors(kwargs, needle):
    with pytest.raises(UserInputError, match=needle):
        read_csv_bars(GOOD, **kwargs)


@settings(max_examples=300, deadline=None)
@given(ns=st.integers(min_value=-2_208_988_800 * 10**9, max_value=7_258_118_400 * 10**9 - 1))
def test_iso_utc_writes_a_time_as_pandas_does(ns):
    """`bars.iso_utc` spares the runner pandas (its cold start); the text must not change for it."""
    expected = pd.Timestamp(ns, unit="ns", tz="UTC").isoformat()
    assert iso_utc(ns) == expected
    assert iso_utc(np.datetime64(ns, "ns")) == expected
