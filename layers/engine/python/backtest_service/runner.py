"""Run one queued backtest (the run_backtest function's use case). Idempotent per execution id.

For each jobs-queue message:

1. `start`: QUEUED/RUNNING → RUNNING, attempts + 1 (conditional). A job already SUCCEEDED or FAILED
   is skipped (a duplicate delivery, or a replay of a finished job): the message succeeds, nothing
   is written. A message whose job does not exist (expired) is dropped with a warning.
2. The engine runs the stored request in the sandbox with the settings' CPU and memory limits.
   A `StrategyFault` or `UserInputError` ends the job FAILED with `{type, message, line}`; the
   message succeeds (running the same code again fails the same way).
3. The full result goes to S3 at a key made from the execution id only (a rerun overwrites it),
   THEN the job becomes SUCCEEDED with the summary, on condition that it is still RUNNING (so never
   over a terminal status).
   A crash between the two leaves the job RUNNING; the redelivery runs it again and overwrites the
   same object.

Any other exception is an infrastructure fault: it propagates, the batch reports the record failed
and SQS redelivers it. On the last receive (`ApproximateReceiveCount` ≥ `max_receive_count`) the job
is first marked FAILED (`InfrastructureError`, `dead_lettered: true`) so its status says what
happened; then the exception propagates and SQS moves the message to the DLQ. Ops replay it with
`job_store.reset_for_replay` + moving the message back (`backtest replay`).

Collaborators come in a `RunnerDeps` (stores, engine, settings) so tests can inject a fault at each
step; `default_deps()` builds the real ones once per container.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from pydantic import ValidationError

from backtest_engine.bars import Bars
from backtest_engine.engine import run_backtest
from backtest_engine.errors import EngineError, StrategyFault, UserInputError
from backtest_engine.models import BacktestRequest
from backtest_engine.result import BacktestResult, iter_json
from backtest_engine.sandbox import SandboxLimits
from backtest_engine.sandbox.supervisor import default_supervisor
from backtest_service import dataset_bars
from backtest_service.errors import JobAlreadyTerminal, JobNotFound, invalid_from_errors
from backtest_service.job_queue import decode_message
from backtest_service.job_store import JobStore, default_job_store
from backtest_service.jobs import INFRASTRUCTURE_ERROR, JobSummaryUpdate
from backtest_service.observability import MetricUnit, count_failure, logger, metrics, tracer
from backtest_service.result_store import ResultStore, default_result_store
from backtest_service.settings import Settings, get_settings

# (request, limits) for the synthetic catalog; (request, limits, bars) for a dataset's bars.
Engine = Callable[..., BacktestResult]


class Outcome(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"  # the strategy's fault: recorded, not retried
    SKIPPED = "SKIPPED"  # the job was already terminal
    MISSING = "MISSING"  # no such job (expired by TTL): nothing to do


def run_engine(request: BacktestRequest, limits: SandboxLimits, bars: Bars | None = None) -> BacktestResult:
    return run_backtest(request, limits=limits, bars=bars)


@dataclass(frozen=True, eq=False)
class RunnerDeps:
    settings: Settings
    jobs: JobStore
    results: ResultStore
    engine: Engine = run_engine


@cache
def default_deps() -> RunnerDeps:
    return RunnerDeps(settings=get_settings(), jobs=default_job_store(), results=default_result_store())


def sandbox_limits(settings: Settings) -> SandboxLimits:
    return SandboxLimits(
        cpu_seconds=settings.strategy_cpu_seconds,
        wall_seconds=settings.strategy_wall_seconds,
        memory_mb=settings.strategy_memory_mb,
    )


SANDBOX_LAYERS = ("core", "seccomp", "no_new_privs", "parent_death_signal", "non_dumpable", "runner_non_dumpable")


@cache
def check_sandbox() -> dict[str, Any]:
    """Once per container, on its first job (the zygote itself starts at cold start, before any AWS client
    exists, and warms up while the function finishes importing): probe which confinement layers hold here,
    log them and emit one metric per layer (1 = active). Without the core layers every job is refused anyway
    (each child checks them before it runs strategy code); this makes that visible at once."""
    try:
        layers = default_supervisor().layers()
    except EngineError as exc:
        logger.error("the strategy sandbox is unavailable: strategy code will be refused", extra={"error": str(exc)})
        layers = {"core": False, "notes": [str(exc)]}
    (logger.info if layers.get("core") else logger.error)("strategy sandbox layers", extra={"sandbox": layers})
    for name in SANDBOX_LAYERS:
        metrics.add_metric(name=f"Sandbox.{name}", unit=MetricUnit.Count, value=int(bool(layers.get(name))))
    return layers


def handle_message(body: str, *, receive_count: int, deps: RunnerDeps | None = None) -> Outcome:
    """Process one jobs-queue message; raises on an infrastructure fault (SQS retries it)."""
    check_sandbox()
    deps = deps or default_deps()
    execution_id = decode_message(body)  # InvalidMessage: retried, then kept in the DLQ for a person
    logger.append_keys(execution_id=execution_id, receive_count=receive_count)
    try:
        return run_job(execution_id, deps)
    except Exception as exc:
        if receive_count >= deps.settings.max_receive_count:
            record_dead_letter(execution_id, exc, receive_count, deps)
        else:
            logger.warning(
                "infrastructure fault; SQS will redeliver",
                extra={"error": f"{type(exc).__name__}: {exc}"[:500]},
            )
        raise
    finally:
        logger.remove_keys(["execution_id", "receive_count"])


@tracer.capture_method
def run_job(execution_id: str, deps: RunnerDeps) -> Outcome:
    try:
        job = deps.jobs.start(execution_id)
    except JobAlreadyTerminal as done:
        logger.info("job already finished; skipping the message", extra={"status": done.job_status})
        return Outcome.SKIPPED
    except JobNotFound:
        logger.warning("no such job (expired or never stored); dropping the message")
        return Outcome.MISSING
    logger.info("job started", extra={"attempts": job.attempts})

    started = time.perf_counter()
    try:
        try:
            request = BacktestRequest.model_validate(job.request, context={"max_bars": None})
        except ValidationError as exc:
            raise UserInputError(invalid_from_errors(exc.errors()).message) from None
        bars = dataset_bars.bars_for(request, job.owner)  # a dataset's bars; None: the synthetic catalog
        limits = sandbox_limits(deps.settings)
        result = deps.engine(request, limits) if bars is None else deps.engine(request, limits, bars)
    except (StrategyFault, UserInputError) as fault:
        error = fault.to_dict()
        if deps.jobs.mark_failed(execution_id, error):
            count_failure(fault.code)
            logger.info("job failed: the strategy's fault, not retried", extra={"error": error})
            return Outcome.FAILED
        logger.info("job was finished by another delivery; keeping that outcome")
        return Outcome.SKIPPED
    run_ms = (time.perf_counter() - started) * 1000.0

    key = deps.results.put(execution_id, iter_json(result))
    summary = JobSummaryUpdate(
        performance_metrics=result.performance_metrics,
        trade_summary=result.trade_summary.model_dump(mode="json"),
        market_data_stats=result.market_data_stats.model_dump(mode="json"),
        result_key=key,
        timings={**result.timings, "run_ms": round(run_ms, 3)},
        engine_version=result.engine_version,
        data_fingerprint=result.data_fingerprint,
    )
    if not deps.jobs.mark_succeeded(execution_id, summary):
        logger.info("job was finished by another delivery; keeping that outcome")
        return Outcome.SKIPPED
    metrics.add_metric(name="JobsSucceeded", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="RunDuration", unit=MetricUnit.Milliseconds, value=run_ms)
    metrics.add_metric(name="BarsProcessed", unit=MetricUnit.Count, value=result.market_data_stats.data_points)
    logger.info("job succeeded", extra={"run_ms": round(run_ms, 1), "result_key": key})
    return Outcome.SUCCEEDED


def record_dead_letter(execution_id: str, exc: Exception, receive_count: int, deps: RunnerDeps) -> None:
    """Mark the job FAILED before its message goes to the DLQ (best effort: the raise follows anyway)."""
    logger.error(
        "infrastructure fault on the last receive; the message goes to the DLQ",
        extra={"error": f"{type(exc).__name__}: {exc}"[:500]},
    )
    error = {
        "type": INFRASTRUCTURE_ERROR,
        "message": (
            f"the service failed to run this backtest {receive_count} times ({type(exc).__name__}); "
            "it is held in the dead-letter queue and will run again when ops replay it"
        ),
    }
    try:
        if deps.jobs.mark_failed(execution_id, error, dead_lettered=True):
            count_failure(INFRASTRUCTURE_ERROR)
    except Exception:
        logger.exception("could not record the failure on the job; it stays as it was")
