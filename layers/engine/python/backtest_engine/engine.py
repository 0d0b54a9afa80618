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
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic_core import to_json

from backtest_engine import __version__
from backtest_engine.bars import Bars
from backtest_engine.broker import (
    EXIT_REASONS,
    Costs,
    Fills,
    Ledger,
    replay_orders,
    simulate_target_fills,
    validate_orders,
)
from backtest_engine.errors import StrategyError, UserInputError
from backtest_engine.market_data import load_bars
from backtest_engine.metrics import MetricInputs, compute_metrics, drawdown_percent, running_max
from backtest_engine.models import BacktestRequest, BacktestResult, EquityCurve, TradeSummary
from backtest_engine.runtime import ProgressFn, coerce_signals
from backtest_engine.sandbox import SandboxLimits, compile_strategy
from backtest_engine.sandbox.supervisor import Answer, Supervisor, default_supervisor


def run_backtest(
    request: BacktestRequest,
    *,
    bars: Bars | None = None,
    limits: SandboxLimits | None = None,
    progress: ProgressFn | None = None,
    check_lookahead: bool = True,
    supervisor: Supervisor | None = None,
) -> BacktestResult:
    """Backtest `request`; `bars` replaces the synthetic data (e.g. a user's CSV).

    Raises `StrategyCompileError` / `UserInputError` for requests that cannot run, a `StrategyFault`
    subclass for the strategy's own faults; any other exception is an infrastructure fault.
    """
    limits = limits or SandboxLimits()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    strategy = compile_strategy(request.strategy_code)  # refuse early; the child compiles its own copy
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
    capital = request.initial_capital
    header = {
        "bars": len(bars),
        "source": request.strategy_code,
        "params": dict(request.parameters),
        "symbol": bars.symbol,
        "timeframe": bars.timeframe,
        "lot_size": bars.lot_size,
        "periods_per_year": bars.periods_per_year,
        "initial_capital": capital,
        "commission": request.commission,
        "slippage": request.slippage,
        "check_lookahead": check_lookahead,
        "style": strategy.style,
    }
    columns = {
        "times": bars.times.view(np.int64),
        "open": bars.open,
        "high": bars.high,
        "low": bars.low,
        "close": bars.close,
        "volume": bars.volume,
    }
    # The data fingerprint hashes every bar (~50 ms per million): a thread of this process computes it
    # while the strategy runs in the child (hashlib releases the GIL), instead of after it.
    fingerprint = _helper().submit(bars.fingerprint)
    try:
        answer = (supervisor or default_supervisor()).run(
            header, columns, limits, code=marshal.dumps(strategy.code), progress=progress
        )
    finally:
        wait([fingerprint])
    data_fingerprint = fingerprint.result()
    timings["strategy"] = time.perf_counter() - t
    timings["sandbox_ready"] = answer.timings.get("ready", 0.0)  # fork, job, confinement: before the first bar

    t = time.perf_counter()
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
        style=strategy.style,  # type: ignore[arg-type]
        performance_metrics=values,
        metric_notes=notes,
        periods_per_year=bars.periods_per_year,
        trade_summary=trade_summary(ledger),
        market_data_stats=bars.stats(),  # type: ignore[arg-type]
        trades=trade_list(ledger, bars),  # type: ignore[arg-type]
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


def _iso(times: np.ndarray) -> list[str]:
    return [s + "Z" for s in np.datetime_as_string(times, unit="s").tolist()]


def trade_list(ledger: Ledger, bars: Bars) -> list[dict[str, Any]]:
    tr = ledger.trades
    if tr.pnl.shape[0] == 0:
        return []
    entry_times = _iso(bars.times[tr.entry_bar])
    exit_times = _iso(bars.times[tr.exit_bar])
    reasons = [EXIT_REASONS[c] for c in ledger.exit_reasons.tolist()]
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
    """Columnar equity and drawdown per bar (the same drawdown the metrics measure), deferred: the lists
    or the JSON are made from the arrays only when asked for (see `CurveArrays`)."""
    return EquityCurve.deferred(CurveArrays(times, np.asarray(equity, dtype=np.float64), float(initial_capital)))


@dataclass(frozen=True, eq=False)
class CurveArrays:
    """The equity curve as the engine's arrays: times (datetime64[ns], UTC), equity, initial capital.

    `json()` writes ``{"time": [...], "equity": [...], "drawdown_pct": [...]}`` chunk by chunk: times from
    a table of dates and one of times of day (numpy, no per-bar Python objects), numbers through
    pydantic-core (so exactly pydantic's float text). The result is the JSON of `lists()`, byte for byte.
    """

    times: np.ndarray
    equity: np.ndarray
    initial_capital: float

    def lists(self) -> tuple[list[str], list[float], list[float]]:
        drawdown = drawdown_percent(self.equity, self.initial_capital)
        return _iso(self.times), self.equity.tolist(), drawdown.tolist()

    def json(self) -> str:
        n = self.equity.shape[0]
        steps = range(0, n, _JSON_CHUNK)
        seconds = np.asarray(self.times).astype("datetime64[s]").view(np.int64)
        dates = _DateTable(seconds)
        parts = ['{"time":[']
        parts += _joined(dates.quoted_iso(seconds[k : k + _JSON_CHUNK]) for k in steps)
        parts.append('],"equity":[')
        parts += _joined(_json_numbers(self.equity[k : k + _JSON_CHUNK]) for k in steps)
        parts.append('],"drawdown_pct":[')
        peak = self.initial_capital
        drawdowns = []
        for k in steps:  # the running peak carries over, so each chunk equals `drawdown_percent` exactly
            chunk = self.equity[k : k + _JSON_CHUNK]
            chunk_peak = running_max(chunk, peak)
            peak = float(chunk_peak[-1])
            drawdowns.append(_json_numbers((chunk / chunk_peak - 1.0) * 100.0))
        parts += _joined(drawdowns)
        parts.append("]}")
        return "".join(parts)


_JSON_CHUNK = 1 << 17
_SECONDS_PER_DAY = 86_400


def _joined(pieces: Iterable[str]) -> list[str]:
    out: list[str] = []
    for piece in pieces:
        if out:
            out.append(",")
        out.append(piece)
    return out


def _json_numbers(values: np.ndarray) -> str:
    """``1.5,2.0,...``: the numbers as pydantic writes a list[float] (without the brackets)."""
    return to_json(values.tolist()).decode("ascii")[1:-1]


class _DateTable:
    """``"YYYY-MM-DDTHH:MM:SSZ"`` for epoch seconds, from two tables: the date of each calendar day of the
    span (10 bytes) and the time of each second of a day (8 bytes, one uint64), gathered into 23-byte rows."""

    def __init__(self, seconds: np.ndarray) -> None:
        first = int(seconds.min()) if seconds.shape[0] else 0
        last = int(seconds.max()) if seconds.shape[0] else 0
        self.first_day = first // _SECONDS_PER_DAY
        span = last // _SECONDS_PER_DAY - self.first_day + 1
        self.days: np.ndarray | None = None
        if span <= max(4 * seconds.shape[0], 1 << 16):  # else very sparse times: the generic path
            text = np.datetime_as_string(np.arange(self.first_day, self.first_day + span).astype("datetime64[D]"))
            if bool((np.strings.str_len(text) == 10).all()):  # years 0000..9999 (others take more characters)
                self.days = text.astype("S10")

    def quoted_iso(self, seconds: np.ndarray) -> str:
        if self.days is None:
            return to_json(_iso(seconds.astype("datetime64[s]"))).decode("ascii")[1:-1]
        day = seconds // _SECONDS_PER_DAY
        out = np.empty(seconds.shape[0], dtype=_ROW)
        out["open"] = out["close"] = ord('"')
        out["date"] = self.days[day - self.first_day]
        out["t"] = ord("T")
        out["time"] = _time_of_day_table()[seconds - day * _SECONDS_PER_DAY]
        out["z"] = ord("Z")
        out["comma"] = ord(",")
        return out.tobytes()[:-1].decode("ascii")


# One JSON array item: "YYYY-MM-DDTHH:MM:SSZ", (23 bytes, packed).
_ROW = np.dtype(
    [("open", "u1"), ("date", "S10"), ("t", "u1"), ("time", "V8"), ("z", "u1"), ("close", "u1"), ("comma", "u1")]
)


@functools.cache
def _time_of_day_table() -> np.ndarray:
    """``HH:MM:SS`` as one 8-byte item for each of the 86,400 seconds of a day."""
    s = np.arange(_SECONDS_PER_DAY)
    digits = np.stack([s // 36000, s // 3600 % 10, s // 600 % 6, s // 60 % 10, s // 10 % 6, s % 10], axis=1)
    table = np.full((_SECONDS_PER_DAY, 8), ord(":"), dtype=np.uint8)
    table[:, [0, 1, 3, 4, 6, 7]] = digits + ord("0")
    return table.view("V8").reshape(_SECONDS_PER_DAY)
