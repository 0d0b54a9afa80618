"""What the engine can backtest: symbols, timeframes and the span of the synthetic history.

This is the single declaration the API's `/market-data/symbols` listing, request validation and the
market-data generator all read. Nothing here imports numpy or pandas, so the API functions can use it
without paying for those imports at cold start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

AssetClass = Literal["equity", "crypto"]
Calendar = Literal["XNYS", "24/7"]


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One tradable symbol and the parameters of its synthetic history."""

    symbol: str
    name: str
    asset_class: AssetClass
    calendar: Calendar
    lot_size: float  # smallest tradable quantity: 1 share, or a fraction of a coin
    periods_per_year: int  # trading days per year used to annualize daily returns
    reference_price: float  # price level on ANCHOR_DATE, near the real 2023 level
    annual_volatility: float  # of daily log returns, as a fraction
    annual_drift: float  # expected log return per year, as a fraction
    daily_volume: float  # average units traded per day
    tail_dof: float  # Student-t degrees of freedom of returns (lower = fatter tails)

    @property
    def session(self) -> str:
        return "09:30-16:00 America/New_York, weekdays" if self.calendar == "XNYS" else "00:00-24:00 UTC, every day"

    @property
    def minutes_per_day(self) -> int:
        return 390 if self.calendar == "XNYS" else 1440


SYMBOLS: dict[str, SymbolSpec] = {
    s.symbol: s
    for s in (
        SymbolSpec("AAPL", "Apple Inc.", "equity", "XNYS", 1, 252, 130.0, 0.28, 0.15, 60e6, 4.0),
        SymbolSpec("GOOGL", "Alphabet Inc. Class A", "equity", "XNYS", 1, 252, 89.0, 0.32, 0.12, 35e6, 4.0),
        SymbolSpec("MSFT", "Microsoft Corporation", "equity", "XNYS", 1, 252, 240.0, 0.27, 0.14, 28e6, 4.0),
        SymbolSpec("TSLA", "Tesla, Inc.", "equity", "XNYS", 1, 252, 110.0, 0.60, 0.10, 120e6, 3.5),
        SymbolSpec("AMZN", "Amazon.com, Inc.", "equity", "XNYS", 1, 252, 85.0, 0.35, 0.12, 65e6, 4.0),
        SymbolSpec("BTCUSD", "Bitcoin / US dollar", "crypto", "24/7", 0.00001, 365, 16600.0, 0.60, 0.20, 25000.0, 3.0),
        SymbolSpec("ETHUSD", "Ether / US dollar", "crypto", "24/7", 0.0001, 365, 1200.0, 0.75, 0.20, 350000.0, 3.0),
    )
}

# Timeframe → minutes per bar. Every timeframe is aggregated from the one 1-minute history.
TIMEFRAMES: dict[str, int] = {"1m": 1, "5m": 5, "15m": 15, "1h": 60, "4h": 240, "1d": 1440}
TIMEFRAME_DESCRIPTIONS: dict[str, str] = {
    "1m": "1 minute",
    "5m": "5 minutes",
    "15m": "15 minutes",
    "1h": "1 hour (equity bars start at 09:30, 10:30, ...; the last one of a session is 30 minutes)",
    "4h": "4 hours (equity bars start at 09:30 and 13:30; the second one is 2.5 hours)",
    "1d": "1 day (one session for equities, a UTC day for crypto)",
}

# The synthetic history covers these dates (inclusive); the price level is anchored on ANCHOR_DATE.
HISTORY_START = date(2018, 1, 1)
HISTORY_END = date(2025, 12, 31)
ANCHOR_DATE = date(2023, 1, 3)

# The most bars one API request may ask for (the CLI may lift it).
MAX_BARS = 2_000_000


def symbol_spec(symbol: str) -> SymbolSpec:
    """The spec of `symbol`, or a KeyError whose message lists the symbols there are."""
    try:
        return SYMBOLS[symbol.upper()]
    except KeyError:
        raise KeyError(f"unknown symbol {symbol!r}; available: {', '.join(SYMBOLS)}") from None


def session_days(spec: SymbolSpec, start: date, end: date) -> int:
    """The days in [start, end] (inclusive) on which `spec` trades: weekdays for XNYS (exchange holidays are
    not modelled by the synthetic market), every day for 24/7."""
    days = (end - start).days + 1
    if days <= 0:
        return 0
    if spec.calendar != "XNYS":
        return days
    full_weeks, rest = divmod(days, 7)
    first = start.weekday()
    return full_weeks * 5 + sum(1 for k in range(rest) if (first + k) % 7 < 5)


def estimate_bars(symbol: str, timeframe: str, start: date, end: date) -> int:
    """The bars in [start, end] (inclusive) of the synthetic market, without generating any data."""
    spec = symbol_spec(symbol)
    trading_days = session_days(spec, start, end)
    minutes = TIMEFRAMES[timeframe]
    if minutes >= 1440:
        return trading_days
    per_day = -(-spec.minutes_per_day // minutes)
    return trading_days * per_day
