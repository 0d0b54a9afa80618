"""The fast loader (backtest_engine.columnar): the same bars and the same errors as the exact reader, for
CSV (pyarrow and pandas' C engine) and Parquet, and the validated .npz copy."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backtest_engine import columnar, csv_data
from backtest_engine.bar_files import bars_from_npz, bars_to_npz, read_bars, read_parquet_bars
from backtest_engine.csv_data import read_csv_bars
from backtest_engine.errors import DataError
from backtest_engine.market_data import load_bars
from tests.unit import test_csv_data

HEADER = test_csv_data.HEADER
csv_of = test_csv_data.csv_of
# The error cases of the CSV loader's own tests: (text, line, needles).
ERROR_CASES = next(mark.args[1] for mark in test_csv_data.test_every_problem_names_the_line_and_column.pytestmark)


def exact(text: str, **kwargs: Any) -> Any:
    return csv_data._read_exact(
        text,
        symbol=kwargs.get("symbol", "CUSTOM"),
        lot_size=kwargs.get("lot_size", 1.0),
        periods_per_year=kwargs.get("periods_per_year"),
        timeframe=kwargs.get("timeframe"),
    )


@pytest.fixture
def count_exact(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times read_csv_bars handed a file to the exact reader."""
    calls: list[int] = []
    real = csv_data._read_exact

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(csv_data, "_read_exact", spy)
    return calls


@pytest.fixture(params=["pyarrow", "pandas"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs with pyarrow's CSV reader and with pandas' C engine (no pyarrow)."""
    if request.param == "pandas":
        monkeypatch.setattr(columnar, "pyarrow_available", lambda: False)
    return str(request.param)


def same_bars(a: Any, b: Any) -> None:
    assert (a.symbol, a.timeframe, a.periods_per_year, a.lot_size, a.source) == (
        b.symbol,
        b.timeframe,
        b.periods_per_year,
        b.lot_size,
        b.source,
    )
    for name in ("times", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


# ---- CSV: the same bars, without the exact reader ----------------------------------------------------


@pytest.mark.parametrize("timeframe", ["1m", "1h", "1d"])
def test_synthetic_bars_load_on_the_fast_path_identical_to_the_exact_reader(
    timeframe: str, reader: str, count_exact: list[int]
) -> None:
    text = load_bars("AAPL", timeframe, date(2024, 3, 4), date(2024, 3, 15)).to_frame().to_csv()
    fast = read_csv_bars(text)
    assert count_exact == []
    same_bars(fast, exact(text))


@pytest.mark.parametrize(
    "rows",
    [
        ["2024-01-02 09:30:00-05:00,1,1,1,1,1", "2024-01-02T15:31:00+01:00,1,1,1,1,1", "2024-01-02 14:32:00,1,1,1,1,1"],
        ["1704205800,1,1,1,1,1", "1704205860,1,1,1,1,1"],
        ["1704205800000,1,1,1,1,1", "1704205860000,1,1,1,1,1"],
        ["1704205800.25,1,1,1,1,1", "1704205860.5,1,1,1,1,1"],
        ["2024-01-03,3,3,3,3,3", "2024-01-02,2,2,2,2,2", "2024-01-04,4,4,4,4,4"],
        ["2024-01-02T14:30Z,1,1,1,1,1", "2024-01-02T14:31Z, 2 ,2,2,2,0"],
    ],
)
def test_time_formats_and_unsorted_rows_agree_with_the_exact_reader(
    rows: list[str], reader: str, count_exact: list[int]
) -> None:
    text = csv_of(*rows)
    fast = read_csv_bars(text)
    assert count_exact == []
    same_bars(fast, exact(text))


def test_sources_bytes_streams_and_paths_load_alike(tmp_path: Any) -> None:
    text = test_csv_data.GOOD
    path = tmp_path / "bars.csv"
    path.write_text(text)
    loaded = [
        read_csv_bars(text),
        read_csv_bars(text.encode()),
        read_csv_bars(io.BytesIO(text.encode())),
        read_csv_bars(io.StringIO(text)),
        read_csv_bars(path),
    ]
    assert len({bars.fingerprint() for bars in loaded}) == 1


# ---- CSV: the same errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "line", "needles"), ERROR_CASES)
def test_every_error_is_the_exact_readers(text: str, line: int | None, needles: list[str], reader: str) -> None:
    with pytest.raises(DataError) as fast:
        read_csv_bars(text)
    with pytest.raises(DataError) as slow:
        exact(text)
    assert (fast.value.message, fast.value.line) == (slow.value.message, slow.value.line)


def big_csv(rows: int = 200_000) -> list[str]:
    bars = load_bars("BTCUSD", "1m", date(2024, 1, 1), date(2024, 6, 30)).slice(0, rows)
    return bars.to_frame().to_csv().splitlines()


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda cells: cells.__setitem__(1, "-3"), "'open': price must be positive, got -3"),
        (lambda cells: cells.__setitem__(2, "0.5"), "'high': high 0.5 is below max(open, close)"),
        (lambda cells: cells.__setitem__(5, "-1"), "'volume': volume must be >= 0, got -1"),
    ],
)
def test_value_errors_in_a_big_file_are_found_on_the_fast_path(edit: Any, needle: str, count_exact: list[int]) -> None:
    lines = big_csv()
    cells = lines[150_001].split(",")
    edit(cells)
    lines[150_001] = ",".join(cells)
    with pytest.raises(DataError) as err:
        read_csv_bars("\n".join(lines) + "\n")
    assert err.value.line == 150_002
    assert f"line 150002, column {needle}" in err.value.message
    assert count_exact == []  # named by the fast path, exactly as the exact reader would


def test_a_duplicate_time_in_a_big_unsorted_file_names_both_lines(count_exact: list[int]) -> None:
    lines = big_csv()
    lines[10], lines[20] = lines[20], lines[10]
    lines.append(lines[5])
    with pytest.raises(DataError) as err:
        read_csv_bars("\n".join(lines))
    assert "on lines 6 and 200002" in err.value.message
    assert err.value.line == 200_002
    assert count_exact == []


def test_after_a_blank_line_the_exact_reader_names_the_line(count_exact: list[int]) -> None:
    text = HEADER + "2024-01-02T14:30Z,1,1,1,1,1\n\n2024-01-02T14:31Z,1,1,1,1,-1\n"
    with pytest.raises(DataError) as err:
        read_csv_bars(text)
    assert err.value.line == 4
    assert count_exact == [1]


def test_a_cell_that_is_not_a_number_is_quoted_from_the_file(count_exact: list[int]) -> None:
    lines = big_csv(20_000)
    lines[12_000] = lines[12_000].replace(",", ",1.2.3", 1).replace(",1.2.3", ",1.2.3,", 1).rsplit(",", 1)[0]
    with pytest.raises(DataError) as err:
        read_csv_bars("\n".join(lines))
    assert err.value.line == 12_001 and "'1.2.3'" in err.value.message


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "empty"),
        (b"time;open;high;low;close;volume\n2024-01-02;1;1;1;1;1\n", "seems to use ';'"),
        (b"time\topen\thigh\tlow\tclose\tvolume\n2024-01-02\t1\t1\t1\t1\t1\n", "seems to use '\\t'"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not text"),
        (b"PAR1\x15\x04\x15\x10", "Parquet file, not a CSV"),
        (b"date,open\n2024-01-02,1\n", "missing columns high, low, close, volume"),
        ("time,open,high,low,close,volume\n2024-01-02,1,1,1,1,1\n2024-01-03,\xe9,1,1,1,1\n".encode("latin-1"), "UTF-8"),
    ],
)
def test_files_that_are_not_ohlcv_csv_say_what_they_are(data: bytes, needle: str) -> None:
    with pytest.raises(DataError) as err:
        read_csv_bars(data)
    assert needle in err.value.message


# ---- Parquet -----------------------------------------------------------------------------------------


def parquet_of(frame: Any) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue()


def test_parquet_loads_the_same_bars_as_the_csv() -> None:
    bars = load_bars("ETHUSD", "15m", date(2024, 1, 1), date(2024, 1, 20))
    frame = bars.to_frame().reset_index()
    from_parquet = read_parquet_bars(parquet_of(frame))
    from_csv = read_csv_bars(bars.to_frame().to_csv())
    same_bars(from_parquet, read_bars(parquet_of(frame), "parquet"))
    for name in ("times", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(from_parquet, name), getattr(from_csv, name))
    assert (from_parquet.timeframe, from_parquet.periods_per_year, from_parquet.source) == ("15m", 365, "parquet")


def test_parquet_with_epoch_times_integer_prices_and_naive_timestamps() -> None:
    import pandas as pd

    epoch = pd.DataFrame(
        {
            "Time": [1704205800, 1704205860],
            "open": [1, 2],
            "high": [1, 2],
            "low": [1, 2],
            "close": [1, 2],
            "volume": [0, 0],
        }
    )
    naive = epoch.assign(Time=pd.to_datetime(epoch["Time"], unit="s"))
    for frame in (epoch, naive):
        bars = read_parquet_bars(parquet_of(frame))
        np.testing.assert_array_equal(
            bars.times, [np.datetime64("2024-01-02T14:30", "ns"), np.datetime64("2024-01-02T14:31", "ns")]
        )


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"close": [1.0, float("nan"), 1.0]}, "row 2, column 'close': missing value"),
        ({"high": [1.0, 1.0, float("inf")]}, "row 3, column 'high': 'inf' is not a finite number"),
        ({"low": [1.0, -1.0, 1.0]}, "row 2, column 'low': price must be positive, got -1"),
        (
            {"time": ["2024-01-02", "2024-01-02", "2024-01-03"]},
            "duplicate time 2024-01-02T00:00:00+00:00 on rows 1 and 2",
        ),
        ({"time": ["2024-01-02", "someday", "2024-01-03"]}, "row 2, column 'time': 'someday' is not an ISO 8601 time"),
        ({"open": ["1", "1", "1"]}, "column 'open' holds text values; it must hold numbers"),
    ],
)
def test_parquet_errors_name_the_row_and_column(change: dict[str, list[Any]], needle: str) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "time": ["2024-01-02", "2024-01-03", "2024-01-04"],
            "open": [1.0] * 3,
            "high": [1.0] * 3,
            "low": [1.0] * 3,
            "close": [1.0] * 3,
            "volume": [1.0] * 3,
        }
    )
    frame = frame.assign(**change)
    with pytest.raises(DataError) as err:
        read_parquet_bars(parquet_of(frame))
    assert needle in err.value.message
    assert err.value.line is None


@pytest.mark.parametrize(
    ("data", "needle"), [(b"time,open\n1,2\n", "looks like text"), (b"\x00\x01" * 20, "not a Parquet file")]
)
def test_a_file_that_is_not_parquet_says_so(data: bytes, needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        read_parquet_bars(data)


# ---- the validated copy ------------------------------------------------------------------------------


def test_the_npz_copy_round_trips_every_bar_without_pickle() -> None:
    bars = read_csv_bars(
        load_bars("AAPL", "1h", date(2024, 1, 1), date(2024, 2, 1)).to_frame().to_csv(), symbol="MINE", lot_size=0.5
    )
    data = bars_to_npz(bars)
    back = bars_from_npz(data)
    same_bars(back, bars)
    assert back.fingerprint() == bars.fingerprint()
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:  # every member loads without pickle
        assert sorted(npz.files) == ["close", "high", "low", "meta", "open", "times", "volume"]


@pytest.mark.parametrize(
    ("header", "rows"),
    [
        ("Date,Time,Open,High,Low,Close,Volume\n", ["2024-01-02,14:30,1,1,1,1,1", "2024-01-02,14:31:00,1,1,1,1,1"]),
        (
            "date,time,open,high,low,close,volume\n",
            ["2024-01-02,2024-01-02T14:30Z,1,1,1,1,1", "x,2024-01-02T14:31Z,1,1,1,1,1"],
        ),
    ],
)
def test_separate_date_and_time_columns_load_on_the_fast_path(
    header: str, rows: list[str], count_exact: list[int]
) -> None:
    text = csv_of(*rows, header=header)
    fast = read_csv_bars(text)
    assert count_exact == []
    same_bars(fast, exact(text))


def test_a_bad_time_of_day_is_named_by_the_exact_reader() -> None:
    text = csv_of(
        "2024-01-02,14:30,1,1,1,1,1", "2024-13-02,14:31,1,1,1,1,1", header="Date,Time,Open,High,Low,Close,Volume\n"
    )
    with pytest.raises(DataError) as fast:
        read_csv_bars(text)
    with pytest.raises(DataError) as slow:
        exact(text)
    assert fast.value.message == slow.value.message and fast.value.line == 3
