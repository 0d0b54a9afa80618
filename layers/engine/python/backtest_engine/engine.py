"""`run_backtest`: request → market data → sandboxed strategy → fills → metrics → `BacktestResult`.

The strategy runs in a fresh sandbox child (`sandbox.supervisor`) on its own copy of the bars and sends back
only what it decided: a target exposure per bar, or the orders it placed. This side then simulates the fills
(`broker`), the accounting and the metrics on its own bars, so a strategy cannot forge its own result; a
fault in user code (exception, timeout, memory, output flood) comes back as a typed error.
"""

from __future__ import annotations

import functools
import marshal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import numpy as np

from backtest_engine import __version__
from backtest_engine.bars import Bars
from backtest_engine.broker import (
    Costs,
    Fills,
    Ledger,
    replay_orders,
    simulate_target_fills,
    validate_orders,
)
from backtest_engine.errors import StrategyError, UserInputError
from backtest_engine.market_data import load_bars
from backtest_engine.metrics import MetricInputs, compute_metrics, drawdown_percent
from backtest_engine.models import BacktestRequest, TradeSummary
from backtest_engine.result import BacktestResult, EquityCurve, TradeColumns
from backtest_engine.runtime import ProgressFn, coerce_signals
from backtest_engine.sandbox import SandboxLimits, compile_strategy
from backtest_engine.sandbox.supervisor import Answer, Supervisor, default_supervisor


def run_backtest(
    request: BacktestRequest,
    *,
    bars: Bars | None = None,
    limits: SandboxLimits | None = None,
    progress: ProgressFn | None = None,
    on_stage: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    check_lookahead: bool = True,
    supervisor: Supervisor | None = None,
) -> BacktestResult:
    """Backtest `request`; `bars` replaces the synthetic data (e.g. a user's CSV).

    `on_stage` hears each stage as it begins ("data", "strategy", "metrics"), `progress` the strategy's
    bars done; `should_stop`, polled while the strategy runs, ends it with `Cancelled` when it returns True.
    Raises `StrategyCompileError` / `UserInputError` for requests that cannot run, a `StrategyFault`
    subclass for the strategy's own faults, `Cancelled` when stopped; any other exception is an
    infrastructure fault.
    """
    stage = on_stage or _ignore
    limits = limits or SandboxLimits()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    strategy = compile_strategy(request.strategy_code)  # refuse early; the child compiles its own copy
    timings["compile"] = time.perf_counter() - t0

    t = time.perf_counter()
    stage("data")
    if bars is None:
        bars = load_bars(request.symbol, request.timeframe, request.start_date, request.end_date)
    if len(bars) < 2:
        raise UserInputError(
            f"{request.symbol} {request.timeframe} from {request.start_date} to {request.end_date} has "
            f"{len(bars)} bar(s); a backtest needs at least 2 (weekends and nights have no equity bars)"
        )
    timings["data"] = time.perf_counter() - t

    t = time.perf_counter()
    costs = Costs(commission=request.commission, slippage=request.slippage, lot_size=bars.lot_size)
    capital = request.initial_capital
    header = {**job_header(request, bars, strategy.style, check_lookahead), "params": dict(request.parameters)}
    columns = bar_columns(bars)
    # The data fingerprint hashes every bar (~50 ms per million): a thread of this process computes it
    # while the strategy runs in the child (hashlib releases the GIL), instead of after it.
    fingerprint = _helper().submit(bars.fingerprint)
    stage("strategy")
    try:
        answer = (supervisor or default_supervisor()).run(
            header, columns, limits, code=marshal.dumps(strategy.code), progress=progress, should_stop=should_stop
        )
    finally:
        wait([fingerprint])
    data_fingerprint = fingerprint.result()
    timings["strategy"] = time.perf_counter() - t
    timings["sandbox_ready"] = answer.timings.get("ready", 0.0)  # fork, job, confinement: before the first bar

    t = time.perf_counter()
    stage("metrics")
    fills = simulate(answer, strategy.style, bars, capital, costs)
    ledger = fills.ledger(bars.close)  # the per-bar position, cash and equity from the fills
    timings["fills"] = time.perf_counter() - t

    t = time.perf_counter()
    values, notes = compute_metrics(
        MetricInputs(
            times=bars.times,
            equity=ledger.equity,
            close=bars.close,
            position=ledger.position,
            initial_capital=capital,
            periods_per_year=bars.periods_per_year,
            trades=ledger.trades,
            total_commission=ledger.total_commission,
        )
    )
    timings["metrics"] = time.perf_counter() - t

    t = time.perf_counter()
    result = BacktestResult(
        request=request.model_dump(mode="json"),
        style=strategy.style,
        performance_metrics=values,
        metric_notes=notes,
        periods_per_year=bars.periods_per_year,
        trade_summary=trade_summary(ledger),
        market_data_stats=bars.stats(),
        trades=trade_columns(ledger, bars),
        equity_curve=equity_curve(ledger.equity, bars.times, capital),
        logs=answer.logs,
        engine_version=__version__,
        data_fingerprint=data_fingerprint,
        timings={},
    )
    timings["result"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    result.timings = {k: round(v, 6) for k, v in timings.items()}
    return result


def job_header(request: BacktestRequest, bars: Bars, style: str, check_lookahead: bool) -> dict[str, Any]:
    """What the sandbox child is told about a run (all but its parameters): the one declaration the single
    run and the optimization batch share."""
    return {
        "bars": len(bars),
        "source": request.strategy_code,
        "symbol": bars.symbol,
        "timeframe": bars.timeframe,
        "lot_size": bars.lot_size,
        "periods_per_year": bars.periods_per_year,
        "initial_capital": request.initial_capital,
        "commission": request.commission,
        "slippage": request.slippage,
        "check_lookahead": check_lookahead,
        "style": style,
    }


def bar_columns(bars: Bars) -> dict[str, np.ndarray]:
    """The bars as the sandbox gets them (times as int64 nanoseconds)."""
    return {
        "times": bars.times.view(np.int64),
        "open": bars.open,
        "high": bars.high,
        "low": bars.low,
        "close": bars.close,
        "volume": bars.volume,
    }


def _ignore(stage: str) -> None:
    pass


def simulate(answer: Answer, style: str, bars: Bars, capital: float, costs: Costs) -> Fills:
    """The fills of what the child decided, simulated on the trusted side's own bars. A child that sent the
    wrong kind of decision, or orders its runtime cannot have placed, is the strategy's fault."""
    if style == "vectorized":
        if answer.signals is None:
            raise StrategyError("the strategy process sent no signals")
        signals = coerce_signals(answer.signals, len(bars))
        return simulate_target_fills(signals, bars.open, bars.close, capital, costs)
    if answer.orders is None:
        raise StrategyError("the strategy process sent no orders")
    try:
        validate_orders(answer.orders, len(bars))
    except ValueError as exc:
        raise StrategyError(f"the strategy process sent orders its runtime cannot place: {exc}") from None
    return replay_orders(answer.orders, bars.open, bars.high, bars.low, bars.close, capital, costs)


@functools.cache
def _helper() -> ThreadPoolExecutor:
    """One thread, kept for the life of the process, for work the parent does while the child runs (a new
    thread per run would cost its start-up on every run)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="backtest-engine")


def trade_summary(ledger: Ledger) -> TradeSummary:
    tr = ledger.trades
    pnl = tr.pnl
    return TradeSummary(
        total_trades=int(pnl.shape[0]),
        winning_trades=int((pnl > 0).sum()),
        losing_trades=int((pnl < 0).sum()),
        breakeven_trades=int((pnl == 0).sum()),
        long_trades=int((tr.side > 0).sum()),
        short_trades=int((tr.side < 0).sum()),
        gross_profit=float(pnl[pnl > 0].sum()),
        gross_loss=float(pnl[pnl < 0].sum()),
        total_commission=float(ledger.total_commission),
        closed_by_end_of_data=int(tr.closed_by_end.sum()),
    )


def trade_columns(ledger: Ledger, bars: Bars) -> TradeColumns:
    """The ledger's trades as result columns (numpy, no object per trade)."""
    tr = ledger.trades
    return TradeColumns(
        entry_time=bars.times[tr.entry_bar],
        exit_time=bars.times[tr.exit_bar],
        entry_bar=tr.entry_bar,
        exit_bar=tr.exit_bar,
        side=tr.side,
        size=tr.size,
        entry_price=tr.entry_price,
        exit_price=tr.exit_price,
        pnl=tr.pnl,
        return_pct=tr.return_pct,
        commission=tr.commission,
        exit_reason=ledger.exit_reasons,
        bars_held=tr.exit_bar - tr.entry_bar,
    )


def equity_curve(equity: np.ndarray, times: np.ndarray, initial_capital: float) -> EquityCurve:
    """Equity and drawdown per bar (the same drawdown the metrics measure)."""
    equity = np.asarray(equity, dtype=np.float64)
    return EquityCurve(time=times, equity=equity, drawdown_pct=drawdown_percent(equity, initial_capital))
