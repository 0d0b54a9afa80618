"""Evaluate many parameter sets of one strategy on one set of bars: the hot path of an optimization.

What the combinations share is done once: the compile, the bars (one sealed memfd for the child), the
sandbox child itself (`sandbox.batch.run_batch`: one fork and confinement for the whole batch, a fresh
module namespace per combination). Per combination the child sends its decisions, and this side runs
exactly what `engine.run_backtest` runs on them: `engine.simulate` (validation and fills on this side's
own bars), `Fills.ledger`, `metrics.compute_metrics` with the same inputs. So every combination's metrics
are identical to a single `run_backtest` of the same parameters, and a strategy can no more forge them
here than there. The child works on combination k+1 while this side simulates k.

The look-ahead check runs for every combination, as `run_backtest` runs it (a parameter can change what
a strategy reads: a window centred or not, a shift); it costs the child about 0.6 ms per combination on
100k bars, hidden behind the trusted side's own work, so checking only the first combination would save
nothing measurable.

A combination whose strategy fails (its exception, a limit, invalid decisions) is returned failed with its
typed error; the others go on. `UserInputError` (no bars, code that does not compile) and infrastructure
faults are raised.
"""

from __future__ import annotations

import marshal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from backtest_engine.bars import Bars
from backtest_engine.broker import Costs, Ledger
from backtest_engine.engine import bar_columns, job_header, simulate
from backtest_engine.errors import StrategyFault, UserInputError
from backtest_engine.market_data import load_bars
from backtest_engine.metrics import MetricInputs, MetricResult, compute_metrics
from backtest_engine.models import BacktestRequest, ParamValue
from backtest_engine.sandbox import SandboxLimits, compile_strategy
from backtest_engine.sandbox.batch import run_batch
from backtest_engine.sandbox.supervisor import Supervisor, default_supervisor


@dataclass
class Evaluated:
    """One combination's outcome: complete metrics and their notes, or the typed error it failed with."""

    index: int
    params: dict[str, ParamValue]
    metrics: dict[str, MetricResult] | None = None
    notes: dict[str, str] = field(default_factory=dict)
    error: dict[str, object] | None = None
    logs: list[str] = field(default_factory=list)
    ledger: Ledger | None = None  # kept only with keep_ledgers (walk-forward stitching)

    @property
    def succeeded(self) -> bool:
        return self.metrics is not None


def load_request_bars(request: BacktestRequest) -> Bars:
    bars = load_bars(request.symbol, request.timeframe, request.start_date, request.end_date)
    if len(bars) < 2:
        raise UserInputError(
            f"{request.symbol} {request.timeframe} from {request.start_date} to {request.end_date} has "
            f"{len(bars)} bar(s); a backtest needs at least 2"
        )
    return bars


def evaluate(
    request: BacktestRequest,
    param_sets: Sequence[Mapping[str, ParamValue]],
    *,
    bars: Bars | None = None,
    limits: SandboxLimits | None = None,
    check_lookahead: bool = True,
    supervisor: Supervisor | None = None,
    should_stop: Callable[[], bool] | None = None,
    keep_ledgers: bool = False,
    first_index: int = 0,
) -> Iterator[Evaluated]:
    """Yield each combination's `Evaluated`, in order, as soon as it is done.

    A combination's parameters are `request.parameters` updated with its parameter set; `first_index` is
    the index of `param_sets[0]` in the whole search. Ends early when `should_stop()` turns true.
    """
    limits = limits or SandboxLimits()
    strategy = compile_strategy(request.strategy_code)
    if bars is None:
        bars = load_request_bars(request)
    if len(bars) < 2:
        raise UserInputError(f"{len(bars)} bar(s); a backtest needs at least 2")
    costs = Costs(commission=request.commission, slippage=request.slippage, lot_size=bars.lot_size)
    capital = request.initial_capital
    combos = [{**request.parameters, **p} for p in param_sets]
    header = job_header(request, bars, strategy.style, check_lookahead)
    columns = bar_columns(bars)
    items = run_batch(
        supervisor or default_supervisor(),
        header,
        columns,
        combos,
        limits,
        code=marshal.dumps(strategy.code),
        should_stop=should_stop,
    )
    for item in items:
        params = dict(param_sets[item.index])
        out = Evaluated(index=first_index + item.index, params=params)
        if item.error is not None:
            if not isinstance(item.error, StrategyFault):  # the child's runtime: reported as the strategy's
                out.error = {"type": "StrategyError", "message": item.error.message}
            else:
                out.error = item.error.to_dict()
            yield out
            continue
        assert item.answer is not None
        out.logs = item.answer.logs
        try:
            fills = simulate(item.answer, strategy.style, bars, capital, costs)
        except StrategyFault as fault:
            out.error = fault.to_dict()
            yield out
            continue
        ledger = fills.ledger(bars.close)
        out.metrics, out.notes = compute_metrics(
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
        if keep_ledgers:
            out.ledger = ledger
        yield out


def timed(items: Iterator[Evaluated]) -> Iterator[tuple[Evaluated, float]]:
    """Each item with the seconds since the previous one (for progress and throughput)."""
    last = time.perf_counter()
    for item in items:
        now = time.perf_counter()
        yield item, now - last
        last = now
