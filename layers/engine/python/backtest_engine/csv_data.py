"""A user's own OHLCV bars from a CSV file, validated with errors that name the line and the column.

The file has a header line and one bar per line. Columns (names case-insensitive, in any order, extra
columns ignored):

- ``time`` (or ``timestamp``, ``datetime``, ``date``; or separate ``date`` and ``time`` columns, the
  latter holding HH:MM[:SS]): an ISO 8601 time (``2023-01-03T14:30:00Z``, ``2023-01-03 09:30-05:00``,
  ``2023-01-03``) or epoch seconds / milliseconds (also micro- and nanoseconds, told apart by size).
  Times with an offset are converted to UTC; times without one are taken as UTC. A bar's time is
  its open time.
- ``open``, ``high``, ``low``, ``close``: positive prices with low <= min(open, close) and
  max(open, close) <= high.
- ``volume``: required (use a column of zeros when you have none), >= 0.

Rows may come in any order (they are sorted by time); two rows with the same time are an error. Blank
lines are skipped. At least two bars are needed. Every problem raises `DataError` whose message names
the 1-based line of the file (the header is line 1; a quoted value spanning lines shifts the count) and
the column, and whose ``line`` attribute holds that line.

Unless given, the calendar is inferred (any bar on a Saturday or Sunday, UTC: 365 periods per year;
otherwise 252) and so is the timeframe (the median spacing of consecutive bars, or their most common
spacing when overnight gaps pull the median off, named like the catalog's "1m" ... "1d", or "custom").
"""

from __future__ import annotations

import io
import math
import os
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from backtest_engine.bars import Bars, iso_utc
from backtest_engine.catalog import TIMEFRAMES
from backtest_engine.errors import DataError, UserInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["read_csv_bars"]

PRICE_COLUMNS = ("open", "high", "low", "close")
VALUE_COLUMNS = (*PRICE_COLUMNS, "volume")
TIME_ALIASES = ("time", "timestamp", "datetime", "date")
_MISSING = frozenset({"", "nan", "na", "n/a", "null", "none", "nat", "-"})
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_CLOCK = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")
_DAY_NS = 86_400 * 1_000_000_000
_MINUTE_NS = 60 * 1_000_000_000
# Epoch numbers below these magnitudes are seconds, milliseconds, microseconds; above: nanoseconds.
_EPOCH_UNITS = ((1e11, 1_000_000_000), (1e14, 1_000_000), (1e17, 1_000), (math.inf, 1))
_MIN_NS = np.datetime64("1900-01-01", "ns").astype(np.int64)
_MAX_NS = np.datetime64("2200-01-01", "ns").astype(np.int64)


def read_csv_bars(
    source: str | os.PathLike[str] | io.TextIOBase | io.BufferedIOBase | bytes,
    *,
    symbol: str = "CUSTOM",
    lot_size: float = 1.0,
    periods_per_year: int | None = None,
    timeframe: str | None = None,
) -> Bars:
    """Bars from a CSV: a path, an open text or binary stream, the CSV bytes, or the CSV text itself (a str
    holding a newline).

    How: the file is parsed by a columnar reader (pyarrow's CSV reader when installed, else pandas' C
    engine) with the prices typed float64, then validated with vectorized checks (`columnar.finish`). The
    few cases those readers cannot decide exactly (a cell that is not a number, a missing value, a time
    they cannot parse, separate date and time columns, blank lines before a problem) are handed to the
    exact reader below (`_read_exact`), which parses cell by cell and names the line: a valid file never
    takes it, and every error message is the exact reader's.
    """
    _check_arguments(symbol, lot_size, periods_per_year, timeframe)
    from backtest_engine import columnar  # here: it imports this module's helpers

    data, exact_source = _as_input(source, columnar.CsvInput)
    if data is not None:
        _check_text(data.head)
        parsed = columnar.parse_csv(data)
        if parsed is not None:
            bars = columnar.finish(
                parsed,
                symbol=symbol,
                lot_size=lot_size,
                periods_per_year=periods_per_year,
                timeframe=timeframe,
                source="csv",
            )
            if bars is not None:
                return bars
    return _read_exact(
        exact_source, symbol=symbol, lot_size=lot_size, periods_per_year=periods_per_year, timeframe=timeframe
    )


def _check_arguments(symbol: Any, lot_size: Any, periods_per_year: Any, timeframe: Any) -> None:
    if not isinstance(symbol, str) or not symbol.strip():
        raise UserInputError("symbol must be a non-empty string")
    if (
        isinstance(lot_size, bool)
        or not isinstance(lot_size, int | float)
        or not math.isfinite(lot_size)
        or lot_size <= 0
    ):
        raise UserInputError(f"lot_size must be a positive number, got {lot_size!r}")
    if periods_per_year is not None and (
        isinstance(periods_per_year, bool) or not isinstance(periods_per_year, int) or periods_per_year <= 0
    ):
        raise UserInputError(f"periods_per_year must be a positive integer, got {periods_per_year!r}")
    if timeframe is not None and (not isinstance(timeframe, str) or not timeframe.strip()):
        raise UserInputError("timeframe must be a non-empty string")


def _as_input(source: Any, csv_input: Any) -> tuple[Any, Any]:
    """The file for the columnar reader (a `columnar.CsvInput`; None: leave it to the exact reader), and
    what the exact reader reads should it be needed (a stream is read once here, so it gets a copy)."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        return csv_input.of_bytes(data), io.BytesIO(data)
    if isinstance(source, io.TextIOBase) or hasattr(source, "read"):
        content = source.read()
        if isinstance(content, str):
            encoded = _encoded(content)
            return (csv_input.of_bytes(encoded) if encoded is not None else None), io.StringIO(content)
        if isinstance(content, bytes | bytearray):
            return csv_input.of_bytes(bytes(content)), io.BytesIO(bytes(content))
        return None, source
    if isinstance(source, str) and "\n" in source:
        encoded = _encoded(source)
        return (csv_input.of_bytes(encoded) if encoded is not None else None), source
    if isinstance(source, str | os.PathLike):
        try:
            return csv_input.of_path(source), source
        except OSError:
            return None, source  # the exact reader names the problem
    return None, source


def _check_text(data: bytes) -> None:
    """A clear error for a file that is not text at all (pandas would report a confusing parse error)."""
    head = data[:65536]
    if head.startswith(b"PAR1"):
        raise DataError("the file is a Parquet file, not a CSV: read it as Parquet (dataset format parquet)")
    if b"\x00" in head:
        raise DataError("the file is not text (it holds NUL bytes): a CSV is UTF-8 text with a header line")


def _encoded(text: str) -> bytes | None:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the exact reader reports it
        return None


def _read_exact(
    source: Any, *, symbol: str, lot_size: float, periods_per_year: int | None, timeframe: str | None
) -> Bars:
    """The exact reader: every cell parsed as text, so each problem names its file line and column."""
    frame = _read(source)
    columns = _columns(frame)
    lines = np.arange(len(frame), dtype=np.int64) + 2  # the header is line 1
    text = {name: frame[col].fillna("").astype(str).str.strip().to_numpy(dtype=object) for name, col in columns.items()}

    blank = np.ones(len(frame), dtype=bool)
    for col in frame.columns:
        blank &= frame[col].fillna("").astype(str).str.strip().to_numpy(dtype=object) == ""
    if blank.any():
        keep = ~blank
        lines = lines[keep]
        text = {name: values[keep] for name, values in text.items()}
    if len(lines) < 2:
        raise DataError(too_few_bars_message(len(lines)))

    if "clock" in text:  # separate date and time-of-day columns
        _check_present(text["time"], lines, columns["time"])
        _check_present(text["clock"], lines, columns["clock"])
        text["time"] = np.array([f"{d} {t}" for d, t in zip(text["time"], text["clock"], strict=True)], dtype=object)
    times = _parse_times(text["time"], lines, columns["time"])
    values = {name: _parse_numbers(text[name], lines, columns[name]) for name in VALUE_COLUMNS}
    check_bars(values, lines, columns)

    order = np.argsort(times, kind="stable")
    times, lines = times[order], lines[order]
    check_unique_times(times, lines)
    arrays = {name: np.ascontiguousarray(values[name][order], dtype=np.float64) for name in VALUE_COLUMNS}
    return make_bars(
        times, arrays, symbol=symbol, lot_size=lot_size, periods_per_year=periods_per_year, timeframe=timeframe
    )


def too_few_bars_message(count: int) -> str:
    return f"the CSV needs at least two bars; it has {count}"


def check_unique_times(times: np.ndarray, lines: np.ndarray, where: str = "lines") -> None:
    """`times` sorted; a `DataError` naming the first two rows (their lines) that share a time."""
    same = np.flatnonzero(times[1:] == times[:-1])
    if len(same):
        i = same[0]
        first, second = sorted((int(lines[i]), int(lines[i + 1])))
        raise DataError(
            f"duplicate time {iso_utc(times[i])} on {where} {first} and {second}",
            line=second if where == "lines" else None,
        )


def make_bars(
    times: np.ndarray,
    arrays: dict[str, np.ndarray],
    *,
    symbol: str,
    lot_size: float,
    periods_per_year: int | None,
    timeframe: str | None,
    source: str = "csv",
) -> Bars:
    """The `Bars` of validated, sorted columns, with the calendar and timeframe inferred unless given."""
    if periods_per_year is None:
        weekday = (times // _DAY_NS + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        periods_per_year = 365 if bool(np.any(weekday >= 5)) else 252
    if timeframe is None:
        timeframe = _infer_timeframe(np.diff(times))
    return Bars(
        symbol=symbol.strip(),
        timeframe=timeframe,
        times=np.ascontiguousarray(times, dtype=np.int64).view("datetime64[ns]"),
        open=arrays["open"],
        high=arrays["high"],
        low=arrays["low"],
        close=arrays["close"],
        volume=arrays["volume"],
        lot_size=float(lot_size),
        periods_per_year=periods_per_year,
        source=source,
    )


def _read(source: Any) -> pd.DataFrame:
    import pandas as pd  # here, not at import: the runner reads stored bars and never a CSV (its cold start)

    options: dict[str, Any] = {"dtype": str, "keep_default_na": False, "skip_blank_lines": False}
    try:
        if isinstance(source, io.TextIOBase) or hasattr(source, "read"):
            return pd.read_csv(source, **options)
        if isinstance(source, str) and "\n" in source:
            return pd.read_csv(io.StringIO(source), **options)
        if isinstance(source, str | os.PathLike):
            return pd.read_csv(os.fspath(source), encoding="utf-8-sig", **options)
    except FileNotFoundError:
        raise DataError(f"cannot read {os.fspath(source)!r}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"cannot read {os.fspath(source)!r}: it is a directory") from None
    except pd.errors.EmptyDataError:
        raise DataError("the CSV is empty: it needs a header line and at least two bars") from None
    except pd.errors.ParserError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = int(found.group(1)) if found else None
        raise DataError(f"the CSV cannot be parsed: {str(exc).strip()}", line=line) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"the CSV is not UTF-8 text: {exc.reason}") from None
    raise UserInputError(f"source must be a path, a text stream or CSV text, got {type(source).__name__}")


def _columns(frame: pd.DataFrame) -> dict[str, str]:
    """Map the standard names (time, open, ..., volume; clock for a separate time-of-day) to headers."""
    out = map_headers([str(header) for header in frame.columns])
    date, time_header = out.pop("_date_header", None), out.pop("_time_header", None)
    if date is not None and time_header is not None:
        clock = frame[time_header].fillna("").astype(str).str.strip()
        clock = clock[clock != ""]
        if len(clock) and clock.str.match(_CLOCK).all():
            out["time"], out["clock"] = date, time_header
    return out


def map_headers(headers: list[str]) -> dict[str, str]:
    """The header of each standard column (time, open, high, low, close, volume), or a `DataError` naming
    line 1. When the time column is `time` and there is a `date` column too, the result also holds
    `_time_header` and `_date_header`: the two may be a date and a time of day (`_columns` decides)."""
    by_name: dict[str, str] = {}
    for header in headers:
        name = header.strip().lstrip("\ufeff").lower()
        if name in by_name:
            raise DataError(f"column {name!r} appears twice in the header (line 1)", line=1)
        by_name[name] = header
    out: dict[str, str] = {}
    aliases = [a for a in TIME_ALIASES if a in by_name]
    if not aliases:
        raise DataError(
            "no time column: the header (line 1) needs one of time, timestamp, datetime or date; "
            f"found: {', '.join(headers)}{_delimiter_hint(headers)}",
            line=1,
        )
    out["time"] = by_name[aliases[0]]
    missing = [c for c in VALUE_COLUMNS if c not in by_name]
    if missing:
        raise DataError(
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} in the header (line 1); "
            f"expected time, open, high, low, close, volume (volume is required: use 0 when unknown); "
            f"found: {', '.join(headers)}",
            line=1,
        )
    out.update({c: by_name[c] for c in VALUE_COLUMNS})
    if aliases[0] == "time" and "date" in by_name:
        out["_time_header"], out["_date_header"] = by_name["time"], by_name["date"]
    return out


def _delimiter_hint(headers: list[str]) -> str:
    """When the header is one column holding ';', tabs or '|': the file uses another delimiter."""
    if len(headers) == 1:
        for delimiter in (";", "\t", "|"):
            if delimiter in headers[0]:
                return f" (the header is one column: the file seems to use {delimiter!r} between values; use commas)"
    return ""


def _check_present(text: np.ndarray, lines: np.ndarray, column: str) -> None:
    missing = np.flatnonzero([str(v).lower() in _MISSING for v in text])
    if len(missing):
        _fail(missing, lines, column, "missing value (empty or NaN)")


def _parse_numbers(text: np.ndarray, lines: np.ndarray, column: str) -> np.ndarray:
    import pandas as pd

    _check_present(text, lines, column)
    values = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(values))
    if len(bad):
        _fail(bad, lines, column, f"{text[bad[0]]!r} is not a number")
    infinite = np.flatnonzero(~np.isfinite(values))
    if len(infinite):
        _fail(infinite, lines, column, f"{text[infinite[0]]!r} is not a finite number")
    return values


def _parse_times(text: np.ndarray, lines: np.ndarray, column: str) -> np.ndarray:
    """int64 UTC nanoseconds of each time (ISO 8601 or epoch numbers)."""
    import pandas as pd

    _check_present(text, lines, column)
    hint = "an ISO 8601 time (like 2023-01-03T14:30:00Z) or epoch seconds/milliseconds"
    numeric = np.array([bool(_NUMBER.match(v)) for v in text], dtype=bool)
    if numeric.all():
        numbers = pd.to_numeric(pd.Series(text, dtype=object))
        magnitude = float(np.abs(numbers.to_numpy(dtype=np.float64)).max())
        factor = next(f for limit, f in _EPOCH_UNITS if magnitude < limit)
        if pd.api.types.is_integer_dtype(numbers.dtype):
            ns = numbers.to_numpy(dtype=np.int64) * factor
        elif factor >= 1000:  # fractional epoch numbers, kept to the microsecond
            ns = np.rint(numbers.to_numpy(dtype=np.float64) * (factor // 1000)).astype(np.int64) * 1000
        else:
            ns = np.rint(numbers.to_numpy(dtype=np.float64) * factor).astype(np.int64)
        implausible = np.flatnonzero((ns < _MIN_NS) | (ns >= _MAX_NS))
    else:
        try:
            parsed = pd.to_datetime(pd.Series(text, dtype=object), utc=True, format="ISO8601", errors="coerce")
        except (OverflowError, pd.errors.OutOfBoundsDatetime, ValueError):
            parsed = _parse_one_by_one(text)
        nat = np.flatnonzero(parsed.isna().to_numpy())
        if len(nat):
            _fail(nat, lines, column, f"{text[nat[0]]!r} is not {hint}")
        low, high = pd.Timestamp(_MIN_NS, tz="UTC"), pd.Timestamp(_MAX_NS, tz="UTC")
        implausible = np.flatnonzero(((parsed < low) | (parsed >= high)).to_numpy())
        if not len(implausible):
            ns = parsed.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").astype(np.int64)
    if len(implausible):
        _fail(implausible, lines, column, f"{text[implausible[0]]!r} is outside the supported years 1900-2199")
    return ns


def _parse_one_by_one(text: np.ndarray) -> pd.Series:
    """ISO times parsed one at a time, out-of-range ones as NaT (the slow path for a bad file)."""
    import pandas as pd

    out: list[pd.Timestamp | None] = []
    for value in text:
        try:
            out.append(pd.Timestamp(pd.to_datetime(value, utc=True, format="ISO8601")))
        except (OverflowError, pd.errors.OutOfBoundsDatetime, ValueError):
            out.append(None)
    return pd.Series(out, dtype="datetime64[us, UTC]")


def check_bars(values: dict[str, np.ndarray], lines: np.ndarray, columns: dict[str, str], where: str = "line") -> None:
    """Positive prices, low <= min(open, close), max(open, close) <= high, volume >= 0; the first row
    breaking a rule is named (`lines`, `where`: see `_fail`)."""
    for name in PRICE_COLUMNS:
        bad = np.flatnonzero(values[name] <= 0)
        if len(bad):
            _fail(bad, lines, columns[name], f"price must be positive, got {values[name][bad[0]]:g}", where)
    o, h, low, c = (values[name] for name in PRICE_COLUMNS)
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    bad = np.flatnonzero(h < top)
    if len(bad):
        i = bad[0]
        _fail(bad, lines, columns["high"], f"high {h[i]:g} is below max(open, close) = {top[i]:g}", where)
    bad = np.flatnonzero(low > bottom)
    if len(bad):
        i = bad[0]
        _fail(bad, lines, columns["low"], f"low {low[i]:g} is above min(open, close) = {bottom[i]:g}", where)
    bad = np.flatnonzero(values["volume"] < 0)
    if len(bad):
        _fail(bad, lines, columns["volume"], f"volume must be >= 0, got {values['volume'][bad[0]]:g}", where)


def _fail(bad: np.ndarray, lines: np.ndarray, column: str, problem: str, where: str = "line") -> None:
    """`lines`: the file line of each row (`where="line"`), or its 1-based row number (`where="row"`, Parquet)."""
    at = int(lines[bad[0]])
    more = f" ({len(bad)} rows have this problem)" if len(bad) > 1 else ""
    raise DataError(f"{where} {at}, column {column!r}: {problem}{more}", line=at if where == "line" else None)


def _infer_timeframe(spacing: np.ndarray) -> str:
    names = {minutes * _MINUTE_NS: name for name, minutes in TIMEFRAMES.items()}
    median = int(np.sort(spacing)[(len(spacing) - 1) // 2])
    if median in names:
        return names[median]
    steps, counts = np.unique(spacing, return_counts=True)
    mode = int(steps[np.argmax(counts)])
    return names.get(mode, "custom")
