"""The strategy corpus: every file in `strategies/` run through the real engine (`run_backtest`).

The corpus is written the way quants and code generators write strategies (a no-code builder, LLMs,
people porting from backtesting.py, vectorbt and freqtrade): ordinary Python over numpy, pandas and
TA-Lib, in both styles. It is the sandbox's acceptance test: a strategy that is correct plain Python must
run in the sandbox and give the same trades as when it runs unsandboxed.

Each strategy file may start with one comment line that tells this module how to run it::

    # corpus: data=btc15m trades=yes

- ``data``: a key of `DATASETS` (default ``aapl1h``);
- ``trades``: ``yes`` (default) when the strategy is written to trade on that data (the test asserts at
  least one trade), ``any`` when no trade is also a correct outcome.

Per strategy:

- `test_reference_run_unsandboxed`: the strategy run by the engine's runtime and broker in plain Python
  (real builtins, no RestrictedPython, no child process). It proves the strategy itself is correct, so
  a failure of the next test is the sandbox's, not the strategy's.
- `test_strategy_runs_in_engine`: the full `run_backtest` (compile → sandboxed child → fills → metrics):
  it succeeds, the equity curve has one point per bar, the final capital is finite and positive, it
  traded where expected, and its trades and final equity equal the unsandboxed run's.
For the corpus as a whole:

- `test_corpus_size_and_styles`: at least 100 strategies, at least 45 of each style;
- `test_runs_are_deterministic_and_independent`: a handful of strategies run in one order, then again
  in the reverse order after others, give identical metrics and trades (or identical errors).
"""

from __future__ import annotations

import ast
import builtins
import functools
import json
import math
import re
import statistics
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import talib

from backtest_engine import broker
from backtest_engine.broker import Costs
from backtest_engine.engine import run_backtest
from backtest_engine.market_data import load_bars
from backtest_engine.models import BacktestRequest
from backtest_engine.result import BacktestResult
from backtest_engine.runtime import execute
from backtest_engine.sandbox import StrategyLog

STRATEGY_DIR = Path(__file__).resolve().parent / "strategies"
FILES = sorted(STRATEGY_DIR.glob("*.py"))
NAMES = [p.stem for p in FILES]

MIN_STRATEGIES = 100
MIN_PER_STYLE = 45

# Small but real synthetic data sets (about 500-1500 bars each): symbol, timeframe, start, end.
DATASETS: dict[str, tuple[str, str, date, date]] = {
    "aapl1h": ("AAPL", "1h", date(2024, 1, 1), date(2024, 6, 30)),  # ~910 bars, 7 a day
    "aapl15m": ("AAPL", "15m", date(2024, 3, 1), date(2024, 4, 15)),  # ~830 bars, 26 a day
    "tsla1h": ("TSLA", "1h", date(2023, 6, 1), date(2023, 12, 31)),  # ~1050 bars
    "msft1d": ("MSFT", "1d", date(2019, 1, 1), date(2023, 12, 31)),  # ~1300 bars
    "btc15m": ("BTCUSD", "15m", date(2024, 3, 1), date(2024, 3, 14)),  # 1344 bars, 24/7
    "btc1h": ("BTCUSD", "1h", date(2024, 1, 1), date(2024, 2, 29)),  # 1440 bars
    "btc1d": ("BTCUSD", "1d", date(2021, 1, 1), date(2023, 12, 31)),  # 1095 bars
    "eth1h": ("ETHUSD", "1h", date(2024, 4, 1), date(2024, 5, 15)),  # 1080 bars
}
DEFAULT_DATA = "aapl1h"
CAPITAL = 10_000.0
COMMISSION = 0.001
SLIPPAGE = 0.0005

# The corpus is written as people write strategies, deprecated pandas spellings included
# (`Timestamp.dayofweek`): their warnings in the unsandboxed reference run are expected.
pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated and will be removed in a future version")

_HEADER = re.compile(r"^#\s*corpus:(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    style: str  # "vectorized" or "event"
    data: str
    expect_trades: bool

    def request(self) -> BacktestRequest:
        symbol, timeframe, start, end = DATASETS[self.data]
        return BacktestRequest(
            strategy_code=self.source,
            symbol=symbol,
            timeframe=timeframe,
            start_date=start,
            end_date=end,
            initial_capital=CAPITAL,
            commission=COMMISSION,
            slippage=SLIPPAGE,
        )


def _style(source: str) -> str:
    names = {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
    return "event" if "on_bar" in names else "vectorized"


@functools.cache
def case(name: str) -> Case:
    source = (STRATEGY_DIR / f"{name}.py").read_text()
    options: dict[str, str] = {}
    match = _HEADER.search(source)
    if match:
        for item in match.group(1).split():
            key, _, value = item.partition("=")
            options[key] = value
    data = options.get("data", DEFAULT_DATA)
    assert data in DATASETS, f"{name}: unknown corpus data set {data!r}"
    trades = options.get("trades", "yes")
    assert trades in ("yes", "any"), f"{name}: trades must be yes or any, got {trades!r}"
    return Case(name, source, _style(source), data, trades == "yes")


# ---- the unsandboxed reference run ------------------------------------------------------------------


@dataclass(frozen=True)
class _PlainStrategy:
    """Stands in for `CompiledStrategy`: the module body run with the real builtins, no sandbox."""

    style: str
    source: str

    def load(self, log: StrategyLog) -> dict[str, Any]:
        def plain_print(*args: Any, sep: str = " ", end: str = "\n", **_: Any) -> None:
            log.write(sep.join(str(a) for a in args))

        namespace: dict[str, Any] = {
            "__name__": "strategy",
            "__builtins__": builtins,
            "np": np,
            "numpy": np,
            "pd": pd,
            "pandas": pd,
            "talib": talib,
            "math": math,
            "statistics": statistics,
            "print": plain_print,
        }
        exec(compile(self.source, "<strategy>", "exec"), namespace)
        return namespace


@dataclass(frozen=True)
class Reference:
    bars: int
    equity: np.ndarray
    trades: list[tuple[int, int, int, float]]  # entry bar, exit bar, side, size
    logs: list[str]


@functools.cache
def reference(name: str) -> Reference:
    c = case(name)
    symbol, timeframe, start, end = DATASETS[c.data]
    bars = load_bars(symbol, timeframe, start, end)
    costs = Costs(commission=COMMISSION, slippage=SLIPPAGE, lot_size=bars.lot_size)
    log = StrategyLog(2000, 1 << 20)
    decided = execute(_PlainStrategy(c.style, c.source), bars, {}, CAPITAL, costs, log)  # type: ignore[arg-type]
    fills = _fills(decided, bars, costs)
    ledger = fills.ledger(bars.close)
    tr = ledger.trades
    trades = [
        (int(e), int(x), int(s), float(z))
        for e, x, s, z in zip(tr.entry_bar, tr.exit_bar, tr.side, tr.size, strict=True)
    ]
    return Reference(len(bars), np.asarray(ledger.equity), trades, list(log.lines))


def _fills(decided: Any, bars: Any, costs: Costs) -> Any:
    """The broker's fills for what `execute` returned: the fills themselves (a runtime that simulates in
    the child), or the strategy's decisions replayed by the trusted side's broker."""
    if hasattr(decided, "fills"):
        return decided.fills
    if getattr(decided, "signals", None) is not None:
        return broker.simulate_target_fills(decided.signals, bars.open, bars.close, CAPITAL, costs)
    return broker.replay_orders(decided.orders, bars.open, bars.high, bars.low, bars.close, CAPITAL, costs)


# ---- the tests ---------------------------------------------------------------------------------------


def test_corpus_size_and_styles():
    styles = [case(n).style for n in NAMES]
    assert len(NAMES) >= MIN_STRATEGIES, f"{len(NAMES)} strategies; the corpus needs at least {MIN_STRATEGIES}"
    assert styles.count("event") >= MIN_PER_STYLE, f"{styles.count('event')} event-driven strategies"
    assert styles.count("vectorized") >= MIN_PER_STYLE, f"{styles.count('vectorized')} vectorized"
    assert len(set(NAMES)) == len(NAMES)


# Both tests of a strategy run on the same xdist worker, so its reference run is computed once.
PARAMS = [pytest.param(name, marks=pytest.mark.xdist_group(f"corpus-{name}")) for name in NAMES]


@pytest.mark.parametrize("name", PARAMS)
def test_reference_run_unsandboxed(name):
    c = case(name)
    ref = reference(name)
    assert ref.equity.shape == (ref.bars,)
    assert np.isfinite(ref.equity).all()
    assert ref.equity[-1] > 0
    if c.expect_trades:
        assert ref.trades, f"{name} is written to trade on {c.data} but made no trade"


@pytest.mark.parametrize("name", PARAMS)
def test_strategy_runs_in_engine(name):
    c = case(name)
    error = None
    try:
        result = run_backtest(c.request())
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    if error is not None:
        pytest.fail(f"{name} ({c.style}, {c.data}) failed in the engine: {error}", pytrace=False)
    n = result.market_data_stats.data_points
    assert n >= 2
    curve = result.equity_curve
    assert len(curve.time) == len(curve.equity) == len(curve.drawdown_pct) == n
    final = result.performance_metrics["final_capital"]
    assert final is not None and math.isfinite(final) and final > 0
    assert result.style == c.style
    if c.expect_trades:
        assert result.trade_summary.total_trades > 0, f"{name} is written to trade on {c.data} but made no trade"
    # The sandbox must not change what the strategy does.
    ref = reference(name)
    assert n == ref.bars
    got = [(t["entry_bar"], t["exit_bar"], 1 if t["side"] == "long" else -1, t["size"]) for t in result.trades.rows()]
    assert got == ref.trades, "the sandboxed run traded differently from the same code run unsandboxed"
    assert curve.equity[-1] == pytest.approx(float(ref.equity[-1]), rel=1e-9)
    assert result.logs == ref.logs


# A mix of styles and idioms: module state, classes, ctx.state, printing, stops, pyramids, pandas, TA-Lib.
DETERMINISM_SAMPLE = [
    "vec_sma_crossover_basic",
    "vec_freqtrade_rsi_bb",
    "vec_class_indicator_pipeline",
    "vec_loc_iloc_indexing",
    "vec_zscore_single_series",
    "event_backtestingpy_smacross_class",
    "event_trailing_stop_atr",
    "event_pyramiding_size_units",
    "event_grid_mean_reversion",
    "event_zscore_state_dict",
    "event_print_formatting",
]
INTERLEAVED = ["vec_numpy_masks_fancy_indexing", "event_dunder_ring_buffer", "vec_resample_daily_levels"]


def _outcome(name: str) -> tuple[str, ...]:
    try:
        result: BacktestResult = run_backtest(case(name).request())
    except Exception as exc:  # a failure must be deterministic too
        return ("error", type(exc).__name__, str(exc))
    metrics = json.dumps(result.performance_metrics, sort_keys=True)
    trades = json.dumps(result.trades.model_dump(mode="json"), sort_keys=True)
    return ("ok", metrics, trades, json.dumps(result.logs))


@pytest.mark.xdist_group("corpus-determinism")
def test_runs_are_deterministic_and_independent():
    sample = [n for n in DETERMINISM_SAMPLE if n in NAMES]
    assert len(sample) >= 5
    first = {name: _outcome(name) for name in sample}
    for name in INTERLEAVED:
        if name in NAMES:
            _outcome(name)
    second = {name: _outcome(name) for name in reversed(sample)}
    for name in sample:
        assert second[name] == first[name], f"{name} gave a different result when run again in another order"
