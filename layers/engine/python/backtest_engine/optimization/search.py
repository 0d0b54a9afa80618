"""The whole search in one process (the CLI's `backtest optimize`, the tests, the benchmark): expand the
space, evaluate every combination in batches (`evaluate`), rank, and with validation run the walk-forward
folds. The service runs the same pieces fanned out over Lambda (`backtest_service.optimization_runner`).

With `validation`, the combinations table and the ranking are those of the whole range (one sweep), and
each fold adds a sweep of its in-sample part plus one run of its winner out of sample: (folds + 1) sweeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from backtest_engine.bars import Bars
from backtest_engine.broker import Ledger
from backtest_engine.models import ParamValue
from backtest_engine.optimization import ranking, space, walk_forward

# Estimates live in `cost` (no numpy: the API functions use them); re-exported here.
from backtest_engine.optimization.cost import (
    SECONDS_PER_COMBINATION_FIXED,
    SECONDS_PER_COMBINATION_PER_BAR,
    estimate_seconds,
)
from backtest_engine.optimization.evaluate import Evaluated, evaluate, load_request_bars
from backtest_engine.optimization.models import (
    CombinationOutcome,
    OptimizationRequest,
    OptimizationResult,
    WindowReport,
)
from backtest_engine.sandbox import SandboxLimits
from backtest_engine.sandbox.supervisor import Supervisor

ProgressFn = Callable[[int, int], None]  # (backtests done, backtests total)

__all__ = [
    "SECONDS_PER_COMBINATION_FIXED",
    "SECONDS_PER_COMBINATION_PER_BAR",
    "ProgressFn",
    "estimate_seconds",
    "run_optimization",
]


def run_optimization(
    request: OptimizationRequest,
    *,
    bars: Bars | None = None,
    limits: SandboxLimits | None = None,
    supervisor: Supervisor | None = None,
    progress: ProgressFn | None = None,
    batch_size: int = 1000,
) -> OptimizationResult:
    """Run the whole search of `request` in this process."""
    started = time.perf_counter()
    combos = space.combinations(request)
    single = request.backtest_request()
    if bars is None:
        bars = load_request_bars(single)
    folds = walk_forward.folds(len(bars), request.validation) if request.validation else []
    total = len(combos) * (1 + len(folds)) + len(folds)
    done = 0

    def sweep(part: Bars, param_sets: Sequence[dict[str, ParamValue]], keep: bool = False) -> list[Evaluated]:
        nonlocal done
        out: list[Evaluated] = []
        for first in range(0, len(param_sets), batch_size):
            for item in evaluate(
                single,
                param_sets[first : first + batch_size],
                bars=part,
                limits=limits,
                supervisor=supervisor,
                keep_ledgers=keep,
                first_index=first,
            ):
                out.append(item)
                done += 1
                if progress is not None:
                    progress(done, total)
        return out

    outcomes = _outcomes(sweep(bars, combos), request)
    best_list = ranking.ranked(outcomes, request)
    result = OptimizationResult(
        target=request.target,
        direction=request.direction or "max",
        method=request.method,
        total=len(outcomes),
        succeeded=sum(o.status == "succeeded" for o in outcomes),
        failed=sum(o.status == "failed" for o in outcomes),
        feasible=len(best_list),
        best=best_list[0] if best_list else None,
        top=best_list[: request.top_k],
        combinations=outcomes,
    )
    if folds:
        reports: list[WindowReport] = []
        parts: list[tuple[int, int]] = []
        ledgers: list[Ledger] = []
        for fold in folds:
            report = WindowReport(
                window=fold.window,
                in_sample=walk_forward.span(bars, fold.in_sample),
                out_of_sample=walk_forward.span(bars, fold.out_of_sample),
            )
            in_sample = _outcomes(sweep(bars.slice(*fold.in_sample), combos), request)
            winners = ranking.ranked(in_sample, request)
            report.combinations = len(in_sample)
            report.feasible = len(winners)
            if winners:
                winner = winners[0]
                report.best_params = winner.params
                report.in_sample_metrics = winner.metrics
                (oos,) = sweep(bars.slice(*fold.out_of_sample), [winner.params], keep=True)
                report.out_of_sample_metrics = oos.metrics
                report.error = oos.error
                if oos.ledger is not None:
                    parts.append(fold.out_of_sample)
                    ledgers.append(oos.ledger)
            else:
                done += 1
                report.error = {"type": "NoFeasibleCombination", "message": "no combination met the constraints"}
            reports.append(report)
        result.windows = reports
        if ledgers and len(ledgers) == len(folds):
            result.stitched_out_of_sample_metrics = walk_forward.stitched_metrics(
                bars, parts, ledgers, single.initial_capital
            )[0]
    result.timings = {"total": round(time.perf_counter() - started, 6)}
    return result


def _outcomes(items: list[Evaluated], request: OptimizationRequest) -> list[CombinationOutcome]:
    return [ranking.outcome(i.index, dict(i.params), i.metrics, i.error, request) for i in items]
