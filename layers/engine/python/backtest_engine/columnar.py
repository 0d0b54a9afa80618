"""The fast path of the market-data loaders: a columnar parse, then vectorized validation.

`parse_csv` reads a CSV with pyarrow's multithreaded CSV reader (pandas' C engine where pyarrow is not
installed), the prices typed float64 and the time column in whatever type the reader infers (ISO 8601
timestamps, dates, epoch integers or floats; text that it cannot type is parsed by pandas, vectorized);
`parse_parquet` reads a Parquet file's columns. `finish` then checks what `csv_data` checks, with whole-
column operations, and builds the `Bars`.

The CSV's errors stay those of `csv_data`'s exact reader (which parses cell by cell and names the line and
the column): where the columnar reader cannot tell exactly what the exact reader would say (a cell that
is not a number, a missing value, a time it could not parse, separate date and time columns, or a
problem after a blank line, where a row's number no longer tells its line), `parse_csv` / `finish` answer
None and `read_csv_bars` hands the file to the exact reader. A valid file never takes that path. The
checks that need only the parsed values (at least two bars, positive prices, OHLC consistency, volume,
duplicate times) are answered here, with the same messages and lines.

A Parquet file has no lines: its errors name the 1-based row (``row 7, column 'close': ...``).
"""

from __future__ import annotations

import csv
import functools
import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backtest_engine.bars import Bars
from backtest_engine.csv_data import (
    _CLOCK,
    _DAY_NS,
    _EPOCH_UNITS,
    _MAX_NS,
    _MIN_NS,
    _NUMBER,
    VALUE_COLUMNS,
    _fail,
    check_bars,
    check_unique_times,
    make_bars,
    map_headers,
    too_few_bars_message,
)
from backtest_engine.errors import DataError, UserInputError

__all__ = ["Parsed", "finish", "parse_csv", "parse_parquet", "pyarrow_available"]

_HEAD_BYTES = 65536
_HINT = "an ISO 8601 time (like 2023-01-03T14:30:00Z) or epoch seconds/milliseconds"


@dataclass
class Parsed:
    """The columns of a file as a columnar reader gave them."""

    headers: dict[str, str]  # standard name (time, open, ...) → the column as the file spells it
    rows: int
    time: Any  # a pyarrow (Chunked)Array, or a numpy array of text (pandas' reader)
    values: dict[str, np.ndarray | None]  # float64 columns; None: the column has a missing value
    # The file line (CSV) or 1-based row (Parquet) of each row; None: not known. Computed when a check
    # fails (a valid file never pays for counting its lines).
    line_numbers: Callable[[], np.ndarray | None] = field(repr=False)
    where: str = "line"  # "line" (CSV) or "row" (Parquet)
    exact_fallback: bool = True  # CSV: problems the exact reader words go back to it; Parquet: raised here

    @functools.cached_property
    def lines(self) -> np.ndarray | None:
        return self.line_numbers()


@dataclass(frozen=True)
class CsvInput:
    """A CSV for the columnar reader: its first bytes, what the reader reads (a path or the bytes), and
    the whole file again should a line number be needed."""

    head: bytes
    readable: Any
    whole: Callable[[], bytes]

    @classmethod
    def of_bytes(cls, data: bytes) -> CsvInput:
        return cls(data[:_HEAD_BYTES], data, lambda: data)

    @classmethod
    def of_path(cls, path: str | os.PathLike[str]) -> CsvInput:
        def whole() -> bytes:
            with open(path, "rb") as handle:
                return handle.read()

        with open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
        return cls(head, os.fspath(path), whole)


def pyarrow_available() -> bool:
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


# ---- CSV -------------------------------------------------------------------------------------------


def parse_csv(source: CsvInput | bytes) -> Parsed | None:
    """The CSV's columns, or None where only the exact reader can tell what to do with the file."""
    csv_input = source if isinstance(source, CsvInput) else CsvInput.of_bytes(source)
    head = csv_input.head
    newline = head.find(b"\n")
    if not head.strip() or (newline < 0 and len(head) == _HEAD_BYTES):
        return None  # empty (the exact reader says so), or a header longer than 64 KiB
    try:
        header_text = head[: newline if newline >= 0 else len(head)].decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        return None
    headers = next(csv.reader([header_text]), [])
    if not headers or len(set(headers)) != len(headers) or any(not h.strip() for h in headers):
        return None  # pandas renames blank and repeated headers: the exact reader words that
    columns = map_headers(headers)  # header problems are raised here, as the exact reader raises them
    date = columns.pop("_date_header", None)
    time_of_day = columns.pop("_time_header", None)
    names = [columns["time"], *(columns[c] for c in VALUE_COLUMNS)]
    if date is not None and time_of_day is not None:  # a date column and a time column: maybe a time of day
        if not pyarrow_available():
            return None  # the exact reader decides
        parsed = _read_with_pyarrow(csv_input.readable, names, date=date)
        if parsed is not None and parsed[3]:
            columns["time"] = date  # as the exact reader names the combined column
    elif pyarrow_available():
        parsed = _read_with_pyarrow(csv_input.readable, names)
    else:
        parsed = _read_with_pandas(csv_input.whole(), names)
    if parsed is None:
        return None
    time, values, rows, _ = parsed

    def line_numbers() -> np.ndarray | None:
        data = csv_input.whole()
        end = len(data)
        while end and data[end - 1] in b"\r\n":  # trailing blank lines shift no row
            end -= 1
        # Row i is on line i + 2 unless blank lines (or a quoted newline) sit between the rows.
        if data.count(b"\n", 0, end) + 1 != rows + 1:
            return None
        return np.arange(rows, dtype=np.int64) + 2

    headers_map = {name: columns[name] for name in ("time", *VALUE_COLUMNS)}
    named = dict(zip(VALUE_COLUMNS, values, strict=True))
    return Parsed(headers_map, rows, time, named, line_numbers)


def _read_with_pyarrow(
    data: Any, names: list[str], *, date: str | None = None
) -> tuple[Any, list[np.ndarray | None], int, bool] | None:
    """(time column, value columns (None: has a missing value), rows, whether the time is `date` + a time of
    day). With `date`, both the time column and `date` are read as text: when every time is a time of day
    (HH:MM[:SS]), the two make the time, as the exact reader combines them."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    types = {name: pa.float64() for name in names[1:]}
    if date is not None:
        types.update({names[0]: pa.string(), date: pa.string()})
    try:
        table = pacsv.read_csv(
            data if isinstance(data, str) else pa.py_buffer(data),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                include_columns=[*names, *([date] if date else [])],
                column_types=types,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowException, ValueError, OSError):
        return None  # a cell that is not a number, a ragged row, bytes that are not UTF-8, ...
    values = [None if table.column(n).null_count else table.column(n).to_numpy() for n in names[1:]]
    time, combined = table.column(names[0]), False
    if date is not None:
        clock = pc.match_substring_regex(pc.utf8_trim_whitespace(time), _CLOCK.pattern)
        if time.null_count or table.column(date).null_count:
            return None  # the exact reader decides what a blank date or time means
        if table.num_rows and pc.all(clock).as_py():
            time = pc.binary_join_element_wise(
                pc.utf8_trim_whitespace(table.column(date)), pc.utf8_trim_whitespace(time), " "
            )
            combined = True
    return time, values, table.num_rows, combined


def _read_with_pandas(data: bytes, names: list[str]) -> tuple[Any, list[np.ndarray | None], int, bool] | None:
    import pandas as pd

    try:
        frame = pd.read_csv(  # every column, not usecols: with usecols pandas lets a row with an extra cell pass
            io.BytesIO(data),
            dtype={names[0]: str, **{name: np.float64 for name in names[1:]}},
            engine="c",
            skipinitialspace=True,
            encoding="utf-8-sig",
        )
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return None
    values: list[np.ndarray | None] = []
    for name in names[1:]:
        column = frame[name].to_numpy(dtype=np.float64)
        values.append(None if np.isnan(column).any() else column)
    time = frame[names[0]]
    if time.isna().any():
        return frame[names[0]].to_numpy(dtype=object), [None] * len(values), len(frame), False
    return time.to_numpy(dtype=object), values, len(frame), False


# ---- Parquet ---------------------------------------------------------------------------------------


def parse_parquet(data: bytes) -> Parsed:
    """A Parquet file's columns (time, open, high, low, close, volume: names as for a CSV)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is installed wherever datasets are validated
        raise UserInputError("reading Parquet needs pyarrow, which this installation lacks") from None
    if len(data) < 12 or data[:4] != b"PAR1" or data[-4:] != b"PAR1":
        hint = " (it looks like text: upload it as a CSV dataset)" if _looks_like_text(data) else ""
        raise DataError(f"the file is not a Parquet file: it does not start and end with PAR1{hint}")
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        headers = list(parquet.schema_arrow.names)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"the Parquet file cannot be read: {str(exc).strip()}") from None
    columns = map_headers(headers)
    names = [columns["time"], *(columns[c] for c in VALUE_COLUMNS)]
    try:
        table = parquet.read(columns=names)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"the Parquet file cannot be read: {str(exc).strip()}") from None
    values: dict[str, np.ndarray | None] = {}
    for name in VALUE_COLUMNS:
        column = table.column(columns[name])
        kind = column.type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
            described = "text" if pa.types.is_string(kind) or pa.types.is_large_string(kind) else str(kind)
            raise DataError(f"column {columns[name]!r} holds {described} values; it must hold numbers")
        as_float = column.cast(pa.float64()).to_numpy()
        values[name] = np.asarray(as_float, dtype=np.float64)  # nulls are NaN: reported as missing
    rows = table.num_rows
    headers_map = {name: columns[name] for name in ("time", *VALUE_COLUMNS)}
    return Parsed(
        headers_map,
        rows,
        table.column(columns["time"]),
        values,
        lambda: np.arange(rows, dtype=np.int64) + 1,
        where="row",
        exact_fallback=False,
    )


def _looks_like_text(data: bytes) -> bool:
    head = data[:4096]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


# ---- validation ------------------------------------------------------------------------------------


class _Exact(Exception):
    """The exact reader must word this problem (CSV only)."""


def finish(
    parsed: Parsed,
    *,
    symbol: str,
    lot_size: float,
    periods_per_year: int | None,
    timeframe: str | None,
    source: str,
) -> Bars | None:
    """The validated, sorted `Bars`, a `DataError`, or None: hand the file to the exact reader."""
    try:
        return _finish(parsed, symbol, lot_size, periods_per_year, timeframe, source)
    except _Exact:
        return None


def _finish(
    parsed: Parsed, symbol: str, lot_size: float, periods_per_year: int | None, timeframe: str | None, source: str
) -> Bars:
    headers, where = parsed.headers, parsed.where
    if parsed.exact_fallback and any(v is None for v in parsed.values.values()):
        raise _Exact  # a missing value (or a blank line the exact reader skips)
    if parsed.rows < 2:
        raise DataError(too_few_bars_message(parsed.rows) if where == "line" else _too_few_rows(parsed.rows))
    times = _times_ns(parsed)
    values: dict[str, np.ndarray] = {}
    for name in VALUE_COLUMNS:
        column = parsed.values[name]
        assert column is not None
        bad = np.flatnonzero(~np.isfinite(column))
        if len(bad):
            lines = parsed.lines
            if parsed.exact_fallback or lines is None:
                raise _Exact  # the exact reader quotes the cell as the file spells it
            missing = np.flatnonzero(np.isnan(column))
            if len(missing):
                _fail(missing, lines, headers[name], "missing value (empty or NaN)", where)
            _fail(bad, lines, headers[name], f"{str(column[bad[0]])!r} is not a finite number", where)
        values[name] = column
    _checked(lambda known: check_bars(values, known, headers, where), parsed)

    order = None if bool(np.all(times[1:] > times[:-1])) else np.argsort(times, kind="stable")
    if order is not None:
        times = times[order]
        _checked(
            lambda known: check_unique_times(times, known[order], "lines" if where == "line" else "rows"),
            parsed,
        )
        values = {name: np.ascontiguousarray(column[order]) for name, column in values.items()}
    else:
        values = {name: np.ascontiguousarray(column, dtype=np.float64) for name, column in values.items()}
    return make_bars(
        times,
        values,
        symbol=symbol,
        lot_size=lot_size,
        periods_per_year=periods_per_year,
        timeframe=timeframe,
        source=source,
    )


def _too_few_rows(count: int) -> str:
    return f"the file needs at least two bars; it has {count}"


def _checked(check: Any, parsed: Parsed) -> None:
    """Run a check that names lines: first with placeholders (a valid file stops here), then, when it
    failed, with the rows' real lines; without them, the exact reader words the failure."""
    try:
        check(np.zeros(parsed.rows, dtype=np.int64))
        return
    except DataError:
        pass
    if parsed.lines is None:
        raise _Exact
    check(parsed.lines)


# ---- times -----------------------------------------------------------------------------------------


def _times_ns(parsed: Parsed) -> np.ndarray:
    """int64 UTC nanoseconds of the time column (the rules of `csv_data._parse_times`)."""
    column, name, where = parsed.time, parsed.headers["time"], parsed.where

    def problem(bad: np.ndarray, text: str) -> None:
        lines = None if parsed.exact_fallback else parsed.lines
        if lines is None:
            raise _Exact
        _fail(bad, lines, name, text, where)

    if isinstance(column, np.ndarray):  # text, from pandas' reader
        return _times_from_text(column, problem)
    import pyarrow as pa

    kind = column.type
    if column.null_count:
        nulls = np.flatnonzero(np.asarray(column.is_null().to_numpy(zero_copy_only=False)))
        problem(nulls, "missing value (empty or NaN)")
    if pa.types.is_timestamp(kind):
        per = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[kind.unit]
        raw = np.asarray(column.cast(pa.int64()).to_numpy(), dtype=np.int64)
        return _bounded(raw, per, problem, column)
    if pa.types.is_date32(kind):
        raw = np.asarray(column.cast(pa.int32()).to_numpy(), dtype=np.int64)
        return _bounded(raw, _DAY_NS, problem, column)
    if pa.types.is_date64(kind):
        raw = np.asarray(column.cast(pa.int64()).to_numpy(), dtype=np.int64)
        return _bounded(raw, 1_000_000, problem, column)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        numbers = np.asarray(column.to_numpy())
        if pa.types.is_floating(kind) and not np.isfinite(numbers).all():
            bad = np.flatnonzero(~np.isfinite(numbers))
            problem(bad, f"{str(numbers[bad[0]])!r} is not {_HINT}")
        return _epoch_ns(numbers, problem, lambda i: str(numbers[i]))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _times_from_text(np.asarray(column.to_numpy(), dtype=object), problem)
    problem(np.arange(1), f"the time column holds {kind} values, not {_HINT}")
    raise AssertionError("unreachable")  # pragma: no cover


def _bounded(raw: np.ndarray, per: int, problem: Any, column: Any) -> np.ndarray:
    low, high = -((-_MIN_NS) // per), -((-_MAX_NS) // per)  # ceil: raw * per within [_MIN_NS, _MAX_NS)
    outside = np.flatnonzero((raw < low) | (raw >= high))
    if len(outside):
        problem(outside, f"{str(column[int(outside[0])])!r} is outside the supported years 1900-2199")
    return raw * per if per != 1 else raw


def _epoch_ns(numbers: np.ndarray, problem: Any, text: Any) -> np.ndarray:
    magnitude = float(np.abs(numbers.astype(np.float64)).max())
    factor = next(f for limit, f in _EPOCH_UNITS if magnitude < limit)
    if np.issubdtype(numbers.dtype, np.integer):
        ns = numbers.astype(np.int64) * factor
    elif factor >= 1000:  # fractional epoch numbers, kept to the microsecond
        ns = np.rint(numbers.astype(np.float64) * (factor // 1000)).astype(np.int64) * 1000
    else:
        ns = np.rint(numbers.astype(np.float64) * factor).astype(np.int64)
    implausible = np.flatnonzero((ns < _MIN_NS) | (ns >= _MAX_NS))
    if len(implausible):
        problem(implausible, f"{text(int(implausible[0]))!r} is outside the supported years 1900-2199")
    return ns


def _times_from_text(text: np.ndarray, problem: Any) -> np.ndarray:
    import pandas as pd

    missing = np.flatnonzero(pd.isna(text))
    if len(missing):
        problem(missing, "missing value (empty or NaN)")
    if _NUMBER.match(str(text[0]).strip()):
        numbers = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce")
        if not numbers.isna().any():
            return _epoch_ns(numbers.to_numpy(), problem, lambda i: str(text[i]).strip())
    try:
        parsed = pd.to_datetime(pd.Series(text, dtype=object), utc=True, format="ISO8601", errors="coerce")
    except (OverflowError, pd.errors.OutOfBoundsDatetime, ValueError):
        problem(np.arange(1), f"{str(text[0])!r} is not {_HINT}")
        raise AssertionError("unreachable") from None  # pragma: no cover
    nat = np.flatnonzero(parsed.isna().to_numpy())
    if len(nat):
        problem(nat, f"{str(text[nat[0]]).strip()!r} is not {_HINT}")
    low, high = pd.Timestamp(_MIN_NS, tz="UTC"), pd.Timestamp(_MAX_NS, tz="UTC")
    implausible = np.flatnonzero(((parsed < low) | (parsed >= high)).to_numpy())  # before nanoseconds: no overflow
    if len(implausible):
        problem(implausible, f"{str(text[implausible[0]]).strip()!r} is outside the supported years 1900-2199")
    return np.asarray(parsed.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").astype(np.int64))
