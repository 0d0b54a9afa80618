"""`run_backtest`: request → market data → sandboxed strategy → fills → metrics → `BacktestResult`.

The strategy runs in a child process (`sandbox.run_isolated`) together with the broker, so a fault in
user code (exception, timeout, memory, output flood) becomes a typed error and never takes the caller
down. Market data is generated in the parent before the fork; the child inherits it without a copy.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from backtest_engine import __version__
from backtest_engine.bars import Bars
from backtest_engine.broker import EXIT_REASONS, Costs
from backtest_engine.errors import UserInputError
from backtest_engine.market_data import load_bars
from backtest_engine.metrics import MetricInputs, compute_metrics, drawdown_percent
from backtest_engine.models import BacktestRequest, BacktestResult, EquityCurve, TradeSummary
from backtest_engine.runtime import ExecutionRecord, ProgressFn, execute
from backtest_engine.sandbox import SandboxLimits, StrategyLog, compile_strategy, run_isolated


def run_backtest(
    request: BacktestRequest,
    *,
    bars: Bars | None = None,
    limits: SandboxLimits | None = None,
    progress: ProgressFn | None = None,
    check_lookahead: bool = True,
) -> BacktestResult:
    """Backtest `request`; `bars` replaces the synthetic data (e.g. a user's CSV).

    Raises `StrategyCompileError` / `UserInputError` for requests that cannot run, a `StrategyFault`
    subclass for the strategy's own faults; any other exception is an infrastructure fault.
    """
    limits = limits or SandboxLimits()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    strategy = compile_strategy(request.strategy_code)
    timings["compile"] = time.perf_counter() - t0

    t = time.perf_counter()
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
    params: dict[str, Any] = dict(request.parameters)
    capital = request.initial_capital

    def child() -> ExecutionRecord:
        log = StrategyLog(limits.max_log_lines, limits.max_log_bytes)
        return execute(
            strategy, bars, params, capital, costs, log, check_lookahead=check_lookahead, progress=progress
        )

    record = run_isolated(child, limits)
    timings["strategy"] = time.perf_counter() - t

    t = time.perf_counter()
    ledger = record.ledger
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
        style=strategy.style,  # type: ignore[arg-type]
        performance_metrics=values,
        metric_notes=notes,
        periods_per_year=bars.periods_per_year,
        trade_summary=trade_summary(record),
        market_data_stats=bars.stats(),  # type: ignore[arg-type]
        trades=trade_list(record, bars),  # type: ignore[arg-type]
        equity_curve=equity_curve(ledger.equity, bars.times, capital),
        logs=record.logs,
        engine_version=__version__,
        data_fingerprint=bars.fingerprint(),
        timings={},
    )
    timings["result"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    result.timings = {k: round(v, 6) for k, v in timings.items()}
    return result


def trade_summary(record: ExecutionRecord) -> TradeSummary:
    tr = record.ledger.trades
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
        total_commission=float(record.ledger.total_commission),
        closed_by_end_of_data=int(tr.closed_by_end.sum()),
    )


def _iso(times: np.ndarray) -> list[str]:
    return [s + "Z" for s in np.datetime_as_string(times, unit="s").tolist()]


def trade_list(record: ExecutionRecord, bars: Bars) -> list[dict[str, Any]]:
    tr = record.ledger.trades
    if tr.pnl.shape[0] == 0:
        return []
    entry_times = _iso(bars.times[tr.entry_bar])
    exit_times = _iso(bars.times[tr.exit_bar])
    reasons = [EXIT_REASONS[c] for c in record.ledger.exit_reasons.tolist()]
    cols = zip(
        entry_times,
        exit_times,
        tr.entry_bar.tolist(),
        tr.exit_bar.tolist(),
        tr.side.tolist(),
        tr.size.tolist(),
        tr.entry_price.tolist(),
        tr.exit_price.tolist(),
        tr.pnl.tolist(),
        tr.return_pct.tolist(),
        tr.commission.tolist(),
        reasons,
        strict=True,
    )
    return [
        {
            "entry_time": et,
            "exit_time": xt,
            "entry_bar": eb,
            "exit_bar": xb,
            "side": "long" if side > 0 else "short",
            "size": size,
            "entry_price": ep,
            "exit_price": xp,
            "pnl": pnl,
            "return_pct": ret,
            "commission": comm,
            "exit_reason": reason,
            "bars_held": xb - eb,
        }
        for et, xt, eb, xb, side, size, ep, xp, pnl, ret, comm, reason in cols
    ]


def equity_curve(equity: np.ndarray, times: np.ndarray, initial_capital: float) -> EquityCurve:
    """Columnar equity and drawdown per bar (the same drawdown the metrics measure)."""
    drawdown = drawdown_percent(equity, initial_capital)
    return EquityCurve.model_construct(
        time=_iso(times), equity=equity.tolist(), drawdown_pct=drawdown.tolist()
    )
