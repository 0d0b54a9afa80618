"""Market-data files in and out: a user's CSV or Parquet file → validated `Bars`; `Bars` ⇄ the validated
columnar copy the service stores (an uncompressed ``.npz``: one array per column, read with numpy alone).

The ``.npz`` holds ``times`` (int64 UTC nanoseconds), ``open``, ``high``, ``low``, ``close``, ``volume``
(float64) and ``meta`` (a JSON text array: symbol, timeframe, lot size, periods per year, source). It is
written and read with ``allow_pickle=False``: nothing in it is a Python object, so loading it runs no code.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, Literal

import numpy as np

from backtest_engine.bars import COLUMNS, Bars
from backtest_engine.csv_data import _check_arguments, read_csv_bars
from backtest_engine.errors import DataError, UserInputError

__all__ = ["FORMATS", "Format", "bars_from_npz", "bars_to_npz", "read_bars", "read_parquet_bars"]

Format = Literal["csv", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "parquet")
NPZ_VERSION = 1


def read_bars(
    source: bytes | str | os.PathLike[str],
    format: Format,
    *,
    symbol: str = "CUSTOM",
    lot_size: float = 1.0,
    periods_per_year: int | None = None,
    timeframe: str | None = None,
) -> Bars:
    """Validated bars of a CSV or Parquet file (its bytes or its path)."""
    if format == "csv":
        return read_csv_bars(
            source, symbol=symbol, lot_size=lot_size, periods_per_year=periods_per_year, timeframe=timeframe
        )
    if format == "parquet":
        return read_parquet_bars(
            source, symbol=symbol, lot_size=lot_size, periods_per_year=periods_per_year, timeframe=timeframe
        )
    raise UserInputError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")


def read_parquet_bars(
    source: bytes | str | os.PathLike[str],
    *,
    symbol: str = "CUSTOM",
    lot_size: float = 1.0,
    periods_per_year: int | None = None,
    timeframe: str | None = None,
) -> Bars:
    """Bars of a Parquet file with the CSV's columns (time, open, high, low, close, volume; names
    case-insensitive) and rules; errors name the 1-based row and the column."""
    from backtest_engine import columnar

    _check_arguments(symbol, lot_size, periods_per_year, timeframe)
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        try:
            with open(os.fspath(source), "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            raise DataError(f"cannot read {os.fspath(source)!r}: no such file") from None
        except IsADirectoryError:
            raise DataError(f"cannot read {os.fspath(source)!r}: it is a directory") from None
    bars = columnar.finish(
        columnar.parse_parquet(data),
        symbol=symbol,
        lot_size=lot_size,
        periods_per_year=periods_per_year,
        timeframe=timeframe,
        source="parquet",
    )
    assert bars is not None  # a Parquet file's problems are raised, never handed to the CSV reader
    return bars


def bars_to_npz(bars: Bars) -> bytes:
    """The validated copy of `bars`: an uncompressed .npz of its columns and metadata."""
    meta = {
        "version": NPZ_VERSION,
        "symbol": bars.symbol,
        "timeframe": bars.timeframe,
        "lot_size": bars.lot_size,
        "periods_per_year": bars.periods_per_year,
        "source": bars.source,
    }
    buffer = io.BytesIO()
    arrays: dict[str, Any] = {"times": np.ascontiguousarray(bars.times.view(np.int64))}
    arrays.update({name: np.ascontiguousarray(getattr(bars, name), dtype=np.float64) for name in COLUMNS})
    np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
    return buffer.getvalue()


def bars_from_npz(data: bytes) -> Bars:
    """`Bars` from `bars_to_npz`'s bytes (numpy only; no pickle)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        if meta.get("version") != NPZ_VERSION:
            raise ValueError(f"unsupported bars file version {meta.get('version')!r}")
        columns = {name: np.ascontiguousarray(npz[name], dtype=np.float64) for name in COLUMNS}
        times = np.ascontiguousarray(npz["times"], dtype=np.int64)
    return Bars(
        symbol=str(meta["symbol"]),
        timeframe=str(meta["timeframe"]),
        times=times.view("datetime64[ns]"),
        lot_size=float(meta["lot_size"]),
        periods_per_year=int(meta["periods_per_year"]),
        source=str(meta["source"]),
        open=columns["open"],
        high=columns["high"],
        low=columns["low"],
        close=columns["close"],
        volume=columns["volume"],
    )
