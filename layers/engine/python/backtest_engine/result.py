"""The full result of a backtest, and its JSON: the one place both are defined.

`BacktestResult` is a plain pydantic model. Its two big parts stay numpy columns from the broker to storage,
never a Python object per trade or bar: `TradeColumns` (one entry per trade) and `EquityCurve` (one per
bar). `iter_json` writes the whole result as JSON in bounded chunks straight from those arrays (orjson
serializes numpy arrays natively; measured against the hand-written writer this module replaces, it gives
the same text), so a run of millions of bars or trades is stored (the result store compresses the chunks as
they come) without ever holding its JSON, or a list per column, in memory. `json_bytes` is the same JSON in
one piece, and `model_dump(mode="json")` the same data as Python objects (for small results and tests).

The JSON (stored in S3, and `backtest run --json`)::

    {"request": {...}, "style": ..., "performance_metrics": {...}, "metric_notes": {...},
     "periods_per_year": ..., "trade_summary": {...}, "market_data_stats": {...},
     "trades": {"entry_time": [...], "exit_time": [...], "entry_bar": [...], "exit_bar": [...],
                "side": ["long" | "short", ...], "size": [...], "entry_price": [...], "exit_price": [...],
                "pnl": [...], "return_pct": [...], "commission": [...],
                "exit_reason": ["signal" | "stop_loss" | "take_profit" | "end_of_data", ...], "bars_held": [...]},
     "equity_curve": {"time": [...], "equity": [...], "drawdown_pct": [...]},
     "logs": [...], "engine_version": ..., "data_fingerprint": ..., "timings": {...}}

Times are ISO-8601 UTC ending in ``Z``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, model_serializer

from backtest_engine.base_model import Model
from backtest_engine.broker import EXIT_REASONS
from backtest_engine.models import MarketDataStats, MetricValue, TradeSummary

CHUNK = 1 << 16  # array entries per JSON chunk: a chunk of floats is about 1.3 MB of text
_NUMPY = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
_SIDES = np.array(["short", "", "long"], dtype=object)  # indexed by side + 1
_REASONS = np.array(EXIT_REASONS, dtype=object)


Column = Annotated[np.ndarray, Field()]


class _Columns(Model):
    """Numpy columns of equal length; dumped (`model_dump`) as the JSON has them."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    @model_serializer(mode="plain")
    def _as_json(self) -> dict[str, list[Any]]:
        return {name: _json_column(name, getattr(self, name)) for name in type(self).model_fields}


class TradeColumns(_Columns):
    """Every closed trade, in exit order, one numpy array per field (all of equal length)."""

    entry_time: Column = Field(description="datetime64[ns] UTC of the entry fill.")
    exit_time: Column = Field(description="datetime64[ns] UTC of the exit fill.")
    entry_bar: Column
    exit_bar: Column
    side: Column = Field(description="int8: +1 long, -1 short (JSON: 'long' / 'short').")
    size: Column = Field(description="Largest absolute position held during the trade, in units.")
    entry_price: Column = Field(description="Average fill price of the units bought (long) or sold (short).")
    exit_price: Column = Field(description="Average fill price of the units that closed the trade.")
    pnl: Column = Field(description="Profit or loss in money, net of every commission of the trade.")
    return_pct: Column = Field(description="pnl as a percent of the money put into the trade (size × entry price).")
    commission: Column
    exit_reason: Column = Field(description="int8 codes into EXIT_REASONS (JSON: the reason's name).")
    bars_held: Column

    def __len__(self) -> int:
        return int(self.pnl.shape[0])

    def rows(self, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """Trades `start`..`stop` as one dict each, as JSON has them (for a page, a table, a test)."""
        part = {name: _json_column(name, getattr(self, name)[start:stop]) for name in type(self).model_fields}
        return [dict(zip(part, values, strict=True)) for values in zip(*part.values(), strict=True)]


class EquityCurve(_Columns):
    """Equity and drawdown at every bar's close (numpy arrays of equal length)."""

    time: Column = Field(description="datetime64[ns] UTC of each bar.")
    equity: Column
    drawdown_pct: Column = Field(description="Percent below the running peak of equity (≤ 0).")

    def __len__(self) -> int:
        return int(self.equity.shape[0])


class BacktestResult(Model):
    """What a backtest produced (see the module docstring for its JSON)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    request: dict[str, Any]
    style: Literal["vectorized", "event"]
    performance_metrics: dict[str, MetricValue]
    metric_notes: dict[str, str] = Field(
        default_factory=dict, description="Why a metric is null (no trades, zero volatility, ...)."
    )
    periods_per_year: int
    trade_summary: TradeSummary
    market_data_stats: MarketDataStats
    trades: TradeColumns
    equity_curve: EquityCurve
    logs: list[str]
    engine_version: str
    data_fingerprint: str
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds spent per stage.")


_COLUMNAR = {"trades": TradeColumns, "equity_curve": EquityCurve}


def iter_json(result: BacktestResult) -> Iterator[bytes]:
    """The result's JSON in chunks of bounded size (each at most about `CHUNK` array entries)."""
    yield b"{"
    for k, name in enumerate(BacktestResult.model_fields):
        yield (b',"' if k else b'"') + name.encode() + b'":'
        value = getattr(result, name)
        if name in _COLUMNAR:
            yield from _iter_columns(value)
        else:
            yield orjson.dumps(result.model_dump(mode="json", include={name})[name])
    yield b"}"


def json_bytes(result: BacktestResult) -> bytes:
    """The result's JSON in one piece (what `iter_json` yields, joined)."""
    return b"".join(iter_json(result))


def _iter_columns(model: BaseModel) -> Iterator[bytes]:
    yield b"{"
    for k, name in enumerate(type(model).model_fields):
        yield (b',"' if k else b'"') + name.encode() + b'":['
        values: np.ndarray = getattr(model, name)
        for start in range(0, values.shape[0], CHUNK):
            text = _json_array(_json_ready(name, values[start : start + CHUNK]))
            yield (b"," if start else b"") + text[1:-1]
        yield b"]"
    yield b"}"


def _json_ready(name: str, values: np.ndarray) -> Any:
    """A chunk of a column as orjson writes it: numeric and datetime arrays as they are, codes as names."""
    if name == "side":
        return _SIDES[values.astype(np.int64) + 1].tolist()
    if name == "exit_reason":
        return _REASONS[values].tolist()
    if values.dtype.kind == "M":
        return values.astype("datetime64[s]")  # whole seconds, like every other time of the service
    return values


def _json_array(values: Any) -> bytes:
    return orjson.dumps(values, option=_NUMPY)


def _json_column(name: str, values: np.ndarray) -> list[Any]:
    return orjson.loads(_json_array(_json_ready(name, values)))


# ---- the columns as fixed-width records, for the API's curve and trade pages ------------------------------
#
# Beside the JSON, the runner stores the equity curve and the trades as `.npy` files of fixed-width records
# (numpy's own format: a small text header, then the rows; read with `allow_pickle=False`, so a stored
# object can never run code). Fixed width is what makes a page of trades one ranged GET: row i starts at
# `offset + i * itemsize`. The curve is read whole (24 bytes a bar) and downsampled per request.

EQUITY_DTYPE = np.dtype([("time", "<M8[ns]"), ("equity", "<f8"), ("drawdown_pct", "<f8")])
TRADE_DTYPE = np.dtype(
    [
        ("entry_time", "<M8[ns]"),
        ("exit_time", "<M8[ns]"),
        ("entry_bar", "<i8"),
        ("exit_bar", "<i8"),
        ("side", "i1"),
        ("size", "<f8"),
        ("entry_price", "<f8"),
        ("exit_price", "<f8"),
        ("pnl", "<f8"),
        ("return_pct", "<f8"),
        ("commission", "<f8"),
        ("exit_reason", "i1"),
        ("bars_held", "<i8"),
    ]
)
RECORDS_PER_CHUNK = 1 << 17  # rows per chunk written: ~11 MB of trades, 3 MB of curve


def npy_chunks(columns: _Columns, dtype: np.dtype) -> Iterator[bytes]:
    """`columns` as one `.npy` file of `dtype` records, in chunks of at most `RECORDS_PER_CHUNK` rows (so a
    million trades are never a second copy in memory)."""
    import io

    n = len(columns)  # type: ignore[arg-type]
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n,)}
    )
    yield header.getvalue()
    names = dtype.names or ()
    for start in range(0, n, RECORDS_PER_CHUNK):
        stop = min(start + RECORDS_PER_CHUNK, n)
        records = np.empty(stop - start, dtype=dtype)
        for name in names:
            records[name] = getattr(columns, name)[start:stop]
        yield records.tobytes()


def npy_layout(prefix: bytes) -> tuple[np.dtype, int, int]:
    """(dtype, rows, offset of row 0) of an `.npy` file from its first bytes (4 KiB is plenty); ValueError
    when it is not an `.npy` file of one-dimensional records."""
    import io

    fp = io.BytesIO(prefix)
    version = np.lib.format.read_magic(fp)
    if version != (1, 0):
        raise ValueError(f"unsupported .npy version {version}")
    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
    if fortran or len(shape) != 1 or dtype.hasobject:
        raise ValueError("not a one-dimensional file of plain records")
    return dtype, int(shape[0]), fp.tell()


def records_from(data: bytes, dtype: np.dtype) -> np.ndarray:
    """Rows of `dtype` from their raw bytes (a ranged read of an `.npy` file past its header)."""
    usable = len(data) - len(data) % dtype.itemsize
    return np.frombuffer(data[:usable], dtype=dtype)


def trade_rows(records: np.ndarray) -> list[dict[str, Any]]:
    """Trade records as `TradeColumns.rows` gives them (the JSON's names and formats)."""
    columns = TradeColumns(**{name: np.ascontiguousarray(records[name]) for name in TRADE_DTYPE.names or ()})
    return columns.rows()


def curve_points(records: np.ndarray) -> dict[str, list[Any]]:
    """Equity records as the JSON's `equity_curve` columns ({time, equity, drawdown_pct})."""
    columns = {name: np.ascontiguousarray(records[name]) for name in EQUITY_DTYPE.names or ()}
    return EquityCurve(**columns).model_dump()
