"""The benchmark's contenders: our engine (both styles, through `run_backtest`) and the two peers.

Every contender runs the same strategy on the same bars: SMA(10) / SMA(30) of the close (TA-Lib), long
while the fast one is above the slow one, flat otherwise, ordering only where that changes (buy all-in
when the fast SMA crosses above, close when it crosses below); whole units; 0.1% commission per fill;
10,000 cash; a decision on bar t's close fills at bar t+1's open; no slippage. Each `run_*`
returns a `Run`: the trades as (entry bar, exit bar or None while open, units) and the equity marked to
market at the last close (before any closing of the position still open, which the peers do not do).
The bars are a `Bars` of our engine; the peers get the same arrays as a DataFrame (`peer_frame`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's per-bar progress bar: off, its fastest setting

import numpy as np
import pandas as pd
import talib

from backtest_engine.bars import Bars
from backtest_engine.engine import run_backtest
from backtest_engine.market_data import load_bars
from backtest_engine.models import BacktestRequest
from backtest_engine.result import BacktestResult

ROOT = Path(__file__).resolve().parent.parent
VECTORIZED_FILE = ROOT / "examples" / "sma_crossover_vectorized.py"
EVENT_FILE = ROOT / "examples" / "sma_crossover_event.py"

SYMBOL = "BTCUSD"
FIRST_DAY = date(2018, 1, 1)
PRICE_SCALE = 0.01  # BTC / 100 (about $30-$700 over the history) traded in whole units (lot 1)
CASH = 10_000.0
COMMISSION = 0.001
FAST, SLOW = 10, 30


@dataclass(frozen=True)
class Run:
    """What a contender produced: trades (entry bar, exit bar or None if still open, units) and the
    equity marked at the last close with any open position still held."""

    trades: list[tuple[int, int | None, float]]
    final_equity: float


# ---- data ------------------------------------------------------------------------------------------


def benchmark_bars(n: int) -> Bars:
    """The first `n` one-minute BTCUSD bars from 2018-01-01, prices ÷ 100, lot size 1 (whole units)."""
    days = -(-n // 1440)
    raw = load_bars(SYMBOL, "1m", FIRST_DAY, FIRST_DAY + timedelta(days=days - 1))
    if len(raw) < n:
        raise ValueError(f"only {len(raw)} bars from {FIRST_DAY}; asked for {n}")
    b = raw.slice(0, n)
    s = PRICE_SCALE
    return Bars(
        b.symbol,
        b.timeframe,
        b.times.copy(),
        b.open * s,
        b.high * s,
        b.low * s,
        b.close * s,
        b.volume.copy(),
        1.0,
        b.periods_per_year,
        "synthetic",
    )


def fresh(bars: Bars) -> Bars:
    """The same arrays in a new `Bars`, so nothing cached from an earlier run (the data fingerprint) is reused."""
    return Bars(
        bars.symbol,
        bars.timeframe,
        bars.times,
        bars.open,
        bars.high,
        bars.low,
        bars.close,
        bars.volume,
        bars.lot_size,
        bars.periods_per_year,
        bars.source,
    )


def peer_frame(bars: Bars) -> pd.DataFrame:
    """The bars as backtesting.py and vectorbt take them: Open/High/Low/Close/Volume, naive UTC index."""
    return pd.DataFrame(
        {"Open": bars.open, "High": bars.high, "Low": bars.low, "Close": bars.close, "Volume": bars.volume},
        index=pd.DatetimeIndex(bars.times, name="time"),
    )


# ---- our engine ------------------------------------------------------------------------------------


def request(style: str, bars: Bars) -> BacktestRequest:
    code = (VECTORIZED_FILE if style == "vectorized" else EVENT_FILE).read_text(encoding="utf-8")
    first = pd.Timestamp(bars.times[0]).date()
    last = pd.Timestamp(bars.times[-1]).date()
    return BacktestRequest.model_validate(
        {
            "strategy_code": code,
            "symbol": SYMBOL,
            "timeframe": "1m",
            "start_date": first,
            "end_date": last,
            "initial_capital": CASH,
            "commission": COMMISSION,
            "slippage": 0.0,
            "parameters": {"fast": FAST, "slow": SLOW},
        },
        context={"max_bars": None},
    )


def run_ours(style: str, bars: Bars) -> BacktestResult:
    """`run_backtest` end to end: compile, the sandbox child (the strategy), the fills on the trusted side,
    metrics and the `BacktestResult` (its trades and equity curve stay numpy until serialized)."""
    return run_backtest(request(style, bars), bars=fresh(bars))


def ours_run(result: BacktestResult) -> Run:
    trades: list[tuple[int, int | None, float]] = []
    final = float(result.performance_metrics["final_capital"] or 0.0)
    for t in result.trades.rows():
        if t["exit_reason"] == "end_of_data":  # the peers keep it open: undo the closing fill's commission
            trades.append((t["entry_bar"], None, t["size"]))
            final += t["size"] * t["exit_price"] * COMMISSION
        else:
            trades.append((t["entry_bar"], t["exit_bar"], t["size"]))
    return Run(trades, final)


# ---- vectorbt ------------------------------------------------------------------------------------


def run_vectorbt(frame: pd.DataFrame) -> tuple[Any, Any]:
    """Signals from TA-Lib, `Portfolio.from_signals` and `stats()` (its metrics): what is timed."""
    import vectorbt as vbt

    close = frame["Close"]
    values = close.to_numpy()
    above = talib.SMA(values, timeperiod=FAST) > talib.SMA(values, timeperiod=SLOW)  # NaN compares False
    before = np.concatenate(([False], above[:-1]))
    # Orders only where `above` changes (the crosses), as our engine orders only where the target changes.
    # Decided on bar t's close, filled at bar t+1's open: the signals move one bar later, the price is the open.
    entries = np.zeros_like(above)
    exits = np.zeros_like(above)
    entries[1:] = (above & ~before)[:-1]
    exits[1:] = (~above & before)[:-1]
    portfolio = vbt.Portfolio.from_signals(
        close=close,
        entries=pd.Series(entries, index=close.index),
        exits=pd.Series(exits, index=close.index),
        price=frame["Open"],
        size=np.inf,
        size_granularity=1,
        fees=COMMISSION,
        init_cash=CASH,
        freq="1min",
    )
    stats = portfolio.stats()
    return portfolio, stats


def vectorbt_run(portfolio: Any) -> Run:
    records = portfolio.trades.values  # the structured record array
    trades = [
        (int(r["entry_idx"]), int(r["exit_idx"]) if int(r["status"]) == 1 else None, float(r["size"])) for r in records
    ]
    return Run(trades, float(portfolio.final_value()))


# ---- backtesting.py ---------------------------------------------------------------------------------


def _sma_or(values: Any, period: int, fill: float) -> np.ndarray:
    """TA-Lib's SMA with its warm-up NaNs replaced by `fill` (-inf for the fast, +inf for the slow one):
    the comparison stays False there as with NaN, and backtesting.py does not skip warm-up bars."""
    return np.nan_to_num(talib.SMA(np.asarray(values, dtype=np.float64), timeperiod=period), nan=fill)


def _strategy_class() -> type:
    from backtesting import Strategy

    class SmaCross(Strategy):
        def init(self) -> None:
            self.fast = self.I(_sma_or, self.data.Close, FAST, -np.inf)
            self.slow = self.I(_sma_or, self.data.Close, SLOW, np.inf)

        def next(self) -> None:
            # The crosses: orders only where "fast above slow" changes, as in our engine (and in
            # backtesting.py's own SmaCross example, `crossover`, which is the same but for exact ties).
            above = self.fast[-1] > self.slow[-1]
            if above != (self.fast[-2] > self.slow[-2]):
                if above:
                    self.buy()  # all-in: int(cash × (1 − ε) // (open × (1 + commission))) units
                elif self.position:
                    self.position.close()

    return SmaCross


def run_backtesting(frame: pd.DataFrame) -> Any:
    """`Backtest(...)` and `run()` (which computes its stats): what is timed."""
    from backtesting import Backtest

    with warnings.catch_warnings():
        # Once the account is down to less than one unit's price, every all-in buy is cancelled with a
        # warning per bar; the warnings themselves are not what is measured.
        warnings.simplefilter("ignore")
        bt = Backtest(
            frame,
            _strategy_class(),
            cash=CASH,
            commission=COMMISSION,
            trade_on_close=False,
            exclusive_orders=True,
            finalize_trades=False,
        )
        return bt.run()


def backtesting_run(stats: Any) -> Run:
    closed = stats["_trades"]
    trades: list[tuple[int, int | None, float]] = [
        (int(e), int(x), float(abs(s)))
        for e, x, s in zip(closed["EntryBar"], closed["ExitBar"], closed["Size"], strict=True)
    ]
    trades += [(int(t.entry_bar), None, float(abs(t.size))) for t in stats["_strategy"].trades]
    return Run(sorted(trades), float(stats["Equity Final [$]"]))


# ---- agreement --------------------------------------------------------------------------------------

EQUITY_RTOL = 1e-9


@dataclass(frozen=True)
class Agreement:
    trades: int
    same_trades: bool  # same count, entry and exit bars and units
    first_difference: str | None
    final_equity: float
    max_relative_equity_difference: float


def agree(runs: dict[str, Run]) -> Agreement:
    """Compare every run with the first one (ours)."""
    names = list(runs)
    base = runs[names[0]]
    first_difference: str | None = None
    for name in names[1:]:
        other = runs[name]
        if other.trades != base.trades and first_difference is None:
            k = next(
                (i for i, (a, b) in enumerate(zip(base.trades, other.trades, strict=False)) if a != b),
                min(len(base.trades), len(other.trades)),
            )
            mine = base.trades[k] if k < len(base.trades) else None
            theirs = other.trades[k] if k < len(other.trades) else None
            first_difference = (
                f"{name}: {len(other.trades)} trades vs {len(base.trades)}; trade #{k}: {theirs} vs ours {mine}"
            )
    worst = max(abs(r.final_equity - base.final_equity) / abs(base.final_equity) for r in runs.values())
    return Agreement(len(base.trades), first_difference is None, first_difference, base.final_equity, worst)
