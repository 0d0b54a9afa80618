"""Pydantic models of a backtest request and of the summary parts of its result: the contract shared by the
CLI, the API and the stored result. Field names keep the seed API's (`total_return_percent`,
`trade_summary`, ...). The full result, with its numpy columns, is `backtest_engine.result` (this module
imports no numpy: the API functions use it).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Annotated, Literal

from pydantic import (
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from backtest_engine.base_model import Model
from backtest_engine.catalog import HISTORY_END, HISTORY_START, MAX_BARS, SYMBOLS, estimate_bars

MAX_CODE_BYTES = 64 * 1024
# The symbol of a request that names a dataset (and of a user's own bars: `csv_data`'s default label).
DATASET_SYMBOL = "CUSTOM"
_DATASET_ID = r"^[A-Za-z0-9_-]{1,128}$"
MAX_PARAMETERS = 64
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

# The strategy the API document shows as its example (tests run it): an SMA crossover, vectorized.
EXAMPLE_STRATEGY = """\
import numpy as np
import talib


def generate_signals(data, params):
    fast = talib.SMA(data.close.values, timeperiod=params.get("fast", 10))
    slow = talib.SMA(data.close.values, timeperiod=params.get("slow", 30))
    return np.where(fast > slow, 1.0, 0.0)
"""

Timeframe = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
ParamValue = bool | int | float | str


class BacktestRequest(Model):
    """What to backtest. Defaults give a sensible run: AAPL, 1h bars over 2024, $10,000, 0.1% commission.

    Validation context (``model_validate(data, context=...)``): ``max_bars`` (int or None to lift the
    cap, default `MAX_BARS`) and ``custom_data`` (True when the caller brings its own OHLCV, which
    lifts the symbol and date-range checks).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    strategy_code: Annotated[
        str,
        Field(
            description="Python source defining generate_signals(data, params), or initialize(ctx) + on_bar(ctx, bar).",
            examples=[EXAMPLE_STRATEGY],
        ),
    ]
    symbol: Annotated[str, Field(description="One of the symbols listed by /market-data/symbols.")] = "AAPL"
    timeframe: Annotated[Timeframe, Field(description="Bar size.")] = "1h"
    start_date: Annotated[date, Field(description="First day of the backtest (inclusive), YYYY-MM-DD.")] = date(
        2024, 1, 1
    )
    end_date: Annotated[date, Field(description="Last day of the backtest (inclusive), YYYY-MM-DD.")] = date(
        2024, 12, 31
    )
    # strict: a number, never a bool or a numeric string (true would otherwise read as 1.0)
    initial_capital: Annotated[float, Field(strict=True, gt=0, le=1e12, description="Starting cash.")] = 10_000.0
    commission: Annotated[
        float, Field(strict=True, ge=0, le=0.1, description="Fraction of each fill's notional, e.g. 0.001 = 0.1%.")
    ] = 0.001
    slippage: Annotated[
        float, Field(strict=True, ge=0, le=0.1, description="Fraction the fill price moves against the trader.")
    ] = 0.0005
    parameters: Annotated[
        dict[str, ParamValue],
        Field(
            description="Strategy parameters (name → number, string or bool), read as params / ctx.params.",
            examples=[{"fast": 10, "slow": 30}],
        ),
    ] = Field(default_factory=dict)
    name: Annotated[str | None, Field(max_length=200, description="A label for the run.")] = None
    dataset_id: Annotated[
        str | None,
        Field(
            pattern=_DATASET_ID,
            description=(
                "One of your READY datasets (POST /api/backtest/datasets), in place of symbol: its bars are the "
                "market data. timeframe, start_date and end_date then default to the dataset's own; given, they "
                "pick its days and a coarser timeframe to aggregate to, checked against the dataset."
            ),
        ),
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _dataset_symbol(cls, data: object) -> object:
        """A request naming a dataset has no symbol of its own: it gets `DATASET_SYMBOL`."""
        if isinstance(data, dict) and data.get("dataset_id") is not None and data.get("symbol") in (None, ""):
            return {**data, "symbol": DATASET_SYMBOL}
        return data

    @field_validator("strategy_code")
    @classmethod
    def _code_size(cls, v: str) -> str:
        size = len(v.encode("utf-8"))
        if size > MAX_CODE_BYTES:
            raise ValueError(f"strategy_code is {size} bytes; the limit is {MAX_CODE_BYTES} bytes (64 KiB)")
        if not v.strip():
            raise ValueError("strategy_code is empty; define generate_signals(data, params) or initialize/on_bar")
        return v

    @field_validator("symbol")
    @classmethod
    def _symbol_known(cls, v: str, info: ValidationInfo) -> str:
        v = v.strip().upper()
        if (info.context or {}).get("custom_data"):
            return v or DATASET_SYMBOL
        if v == DATASET_SYMBOL:  # a dataset's; `_symbol_or_dataset` checks that one is named
            return v
        if v not in SYMBOLS:
            raise ValueError(f"unknown symbol {v!r}; available: {', '.join(SYMBOLS)}")
        return v

    @field_validator("name")
    @classmethod
    def _printable_name(cls, v: str | None) -> str | None:
        if v is not None and any(unicodedata.category(ch) in ("Cc", "Cs") for ch in v):
            raise ValueError("name must not contain control characters")
        return v

    @field_validator("initial_capital", "commission", "slippage")
    @classmethod
    def _finite(cls, v: float) -> float:
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return v

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, v: dict[str, ParamValue]) -> dict[str, ParamValue]:
        if len(v) > MAX_PARAMETERS:
            raise ValueError(f"at most {MAX_PARAMETERS} parameters; got {len(v)}")
        for key, value in v.items():
            if not _PARAM_NAME.match(key):
                raise ValueError(f"parameter name {key!r} must be an identifier of at most 64 characters")
            if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
                raise ValueError(f"parameter {key!r} must be a finite number")
            if isinstance(value, str) and len(value) > 1000:
                raise ValueError(f"parameter {key!r} is longer than 1000 characters")
        return v

    @field_validator("dataset_id")
    @classmethod
    def _not_with_a_symbol(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("symbol", DATASET_SYMBOL) != DATASET_SYMBOL:
            raise ValueError(
                f"give symbol or dataset_id, not both: dataset {v!r} replaces symbol {info.data['symbol']!r}"
            )
        return v

    @model_validator(mode="after")
    def _symbol_or_dataset(self, info: ValidationInfo) -> BacktestRequest:
        if self.symbol == DATASET_SYMBOL and self.dataset_id is None and not (info.context or {}).get("custom_data"):
            raise ValueError(f"unknown symbol {self.symbol!r}; available: {', '.join(SYMBOLS)} (or give a dataset_id)")
        return self

    @model_validator(mode="after")
    def _dates_and_size(self, info: ValidationInfo) -> BacktestRequest:
        ctx = info.context or {}
        if self.end_date < self.start_date:
            raise _field_error("end_date", f"end_date {self.end_date} is before start_date {self.start_date}")
        if ctx.get("custom_data") or self.dataset_id is not None:  # the dataset's range is checked at submit
            return self
        for name in ("start_date", "end_date"):
            day = getattr(self, name)
            if not HISTORY_START <= day <= HISTORY_END:
                raise _field_error(
                    name, f"{name} {day} is outside the available history {HISTORY_START} .. {HISTORY_END}"
                )
        bars = estimate_bars(self.symbol, self.timeframe, self.start_date, self.end_date)
        if bars < 2:
            spec = SYMBOLS[self.symbol]
            raise _field_error(
                "start_date",
                f"{self.symbol} {self.timeframe} from {self.start_date} to {self.end_date} has {bars} bar(s); a "
                f"backtest needs at least 2 ({self.symbol} trades {spec.session}): widen the range",
            )
        max_bars = ctx.get("max_bars", MAX_BARS)
        if max_bars is not None and bars > max_bars:
            raise _field_error(
                "end_date",
                f"{self.symbol} {self.timeframe} from {self.start_date} to {self.end_date} is {bars:,} bars; "
                f"the limit is {max_bars:,}: shorten the range or use a longer timeframe",
            )
        return self


def _field_error(field: str, message: str) -> PydanticCustomError:
    """A whole-request problem that is about one field: its `ctx.field` names it (the API's `errors`)."""
    return PydanticCustomError("value_error", message.replace("{", "{{").replace("}", "}}"), {"field": field})


MetricValue = float | int | None


class TradeSummary(Model):
    total_trades: int
    winning_trades: int
    losing_trades: int
    breakeven_trades: int = 0
    long_trades: int = 0
    short_trades: int = 0
    gross_profit: float = 0.0
    gross_loss: float = 0.0
    total_commission: float = 0.0
    closed_by_end_of_data: int = 0


class DateRange(Model):
    start: str
    end: str


class PriceRange(Model):
    min: float
    max: float


class MarketDataStats(Model):
    data_points: int
    date_range: DateRange | None
    price_range: PriceRange | None
    symbol: str | None = None
    timeframe: str | None = None
    source: str | None = None
