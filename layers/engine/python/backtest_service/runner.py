"""Run one queued backtest (the run_backtest function's use case). Idempotent per execution id.

For each jobs-queue message:

1. `start` (conditional): QUEUED → RUNNING, attempts + 1, or RUNNING → RUNNING when the previous attempt
   recorded an infrastructure fault. Skipped, the message succeeding with nothing written: a job already
   SUCCEEDED, FAILED or CANCELLED (a duplicate, or a replay of a finished job). A job another runner is
   alive on (fresh heartbeat: a duplicate delivery) is left alone and its message retried later. A job still
   RUNNING whose runner vanished without recording a fault was killed by Lambda (timeout, out of memory: no
   Python runs to say so): it ends FAILED `RunnerKilled` naming the stage it died in, because running it
   again would hit the same wall. A message whose job does not exist (expired, deleted) is dropped with a
   warning.
2. The engine runs the stored request in the sandbox with the settings' CPU and memory limits, under a
   `JobMonitor`: progress and heartbeat to the job (at most one write every 2 s), and the caller's cancel
   request in (looked for twice a second), which kills the strategy's child: the job ends CANCELLED.
   A `StrategyFault` or `UserInputError` ends the job FAILED with `{type, message, line}`; the message
   succeeds (running the same code again fails the same way).
3. The artifacts go to S3 at keys made from the execution id only (a rerun overwrites them): the curve and
   trade records the API pages through, the HTML report, the full result JSON, and last the summary, the
   run's commit point (written once: a later attempt finding it commits that result instead of running
   again). THEN the job becomes
   SUCCEEDED with the summary, on condition that it is still RUNNING (so never over a terminal status).
   If it is not (cancelled or deleted meanwhile), the artifacts are removed again.
   A crash between the two leaves the job RUNNING; the redelivery runs it again into the same objects.

Any other exception is an infrastructure fault: the runner records it on the job (`record_retry`), then
it propagates, the batch reports the record failed and SQS redelivers it. On the last receive
(`ApproximateReceiveCount` ≥ `max_receive_count`) the job is first marked FAILED (`InfrastructureError`,
`dead_lettered: true`) so its status says what happened; then SQS moves the message to the DLQ. Ops replay
it with `job_store.reset_for_replay` + moving the message back (`backtest replay`).

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
from backtest_engine.market_data import load_bars
from backtest_engine.models import BacktestRequest
from backtest_engine.result import EQUITY_DTYPE, TRADE_DTYPE, BacktestResult, iter_json, npy_chunks
from backtest_engine.sandbox import SandboxLimits
from backtest_engine.sandbox.supervisor import Cancelled, default_supervisor
from backtest_service import dataset_bars
from backtest_service.errors import JobAlreadyTerminal, JobBusy, JobNotFound, RunnerVanished, invalid_from_errors
from backtest_service.job_monitor import JobMonitor
from backtest_service.job_queue import InvalidMessage, JobMessage, decode_message
from backtest_service.job_store import JobStore, default_job_store
from backtest_service.jobs import (
    HEARTBEAT_SECONDS,
    INFRASTRUCTURE_ERROR,
    RUNNER_KILLED,
    JobRecord,
    JobSummaryUpdate,
    Stage,
)
from backtest_service.observability import MetricUnit, count_failure, logger, metrics, tracer
from backtest_service.result_store import Artifact, ResultStore, default_result_store
from backtest_service.settings import Settings, get_settings
from backtest_service.topology import RUN_BACKTEST

RUN_MEMORY_MB = RUN_BACKTEST.memory_mb
RUN_TIMEOUT_SECONDS = RUN_BACKTEST.timeout_seconds


@dataclass(frozen=True)
class RunHooks:
    """What the runner hears from, and tells, a running engine (the `JobMonitor`'s callbacks)."""

    on_stage: Callable[[str], None] | None = None
    progress: Callable[[int, int], None] | None = None
    should_stop: Callable[[], bool] | None = None


@dataclass(frozen=True)
class EngineRun:
    result: BacktestResult
    bars: Bars  # what the strategy ran on (the report draws the price and buy-and-hold from it)


# (request, limits, hooks); with a fourth argument, a dataset's bars in place of the synthetic catalog's.
Engine = Callable[..., EngineRun]


class Outcome(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"  # the strategy's fault (recorded, not retried), or a runner Lambda killed
    CANCELLED = "CANCELLED"  # the caller stopped it
    SKIPPED = "SKIPPED"  # the job was already terminal, or another runner is alive on it
    MISSING = "MISSING"  # no such job (expired by TTL, or deleted): nothing to do


def run_engine(
    request: BacktestRequest, limits: SandboxLimits, hooks: RunHooks | None = None, bars: Bars | None = None
) -> EngineRun:
    hooks = hooks or RunHooks()
    if hooks.on_stage is not None:
        hooks.on_stage(Stage.DATA)
    if bars is None:
        bars = load_bars(request.symbol, request.timeframe, request.start_date, request.end_date)
    result = run_backtest(
        request,
        bars=bars,
        limits=limits,
        on_stage=hooks.on_stage,
        progress=hooks.progress,
        should_stop=hooks.should_stop,
    )
    return EngineRun(result=result, bars=bars)


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
    message = decode_message(body)  # InvalidMessage: retried, then kept in the DLQ for a person
    if not isinstance(message, JobMessage):  # the record handler gives chunks to optimization_runner
        raise InvalidMessage(f"not a backtest message: {body[:200]!r}")
    execution_id = message.execution_id
    logger.append_keys(execution_id=execution_id, receive_count=receive_count)
    try:
        return run_job(execution_id, deps)
    except JobBusy:
        # Another runner is alive on the job (its heartbeat is fresh): a duplicate delivery, or a redelivery
        # that came back before a killed runner's heartbeat went stale. Not a fault, nothing is recorded: the
        # message comes back later, when the job is finished (skipped then) or its runner proven gone.
        logger.info("another runner is alive on this job; the message comes back later")
        raise
    except Exception as exc:
        if receive_count >= deps.settings.max_receive_count:
            if record_dead_letter(execution_id, exc, receive_count, deps):
                return Outcome.SUCCEEDED  # everything was stored: the message is done, nothing to replay
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
    except RunnerVanished as gone:
        return _fail_killed(gone.job, deps)
    except JobNotFound:
        logger.warning("no such job (expired, deleted or never stored); dropping the message")
        return Outcome.MISSING
    logger.info("job started", extra={"attempts": job.attempts})
    try:
        beat = min(HEARTBEAT_SECONDS, deps.settings.stale_after_seconds / 3)
        with JobMonitor(deps.jobs, execution_id, job.attempts, heartbeat_seconds=beat) as monitor:
            return _run(job, monitor, deps)
    except Exception:
        try:  # so that the redelivery runs the job again instead of taking this runner for killed
            deps.jobs.record_retry(execution_id, job.attempts)
        except Exception:
            logger.exception("could not record the infrastructure fault on the job")
        raise


def _run(job: JobRecord, monitor: JobMonitor, deps: RunnerDeps) -> Outcome:
    execution_id = job.execution_id
    if (stored := deps.results.get_summary(execution_id)) is not None:
        # An earlier attempt stored everything and died before its status write: its result is the job's.
        logger.info("an earlier attempt stored the result; the job succeeds from it without running again")
        return _succeed_from_stored(execution_id, stored, deps)
    started = time.perf_counter()
    hooks = RunHooks(on_stage=monitor.stage, progress=monitor.bars, should_stop=monitor.should_stop)
    try:
        try:
            request = BacktestRequest.model_validate(job.request, context={"max_bars": None})
        except ValidationError as exc:
            raise UserInputError(invalid_from_errors(exc.errors()).message) from None
        bars = dataset_bars.bars_for(request, job.owner)  # a dataset's bars; None: the synthetic catalog
        limits = sandbox_limits(deps.settings)
        run = deps.engine(request, limits, hooks) if bars is None else deps.engine(request, limits, hooks, bars)
    except Cancelled:
        return _finish_cancelled(execution_id, deps)
    except (StrategyFault, UserInputError) as fault:
        error = fault.to_dict()
        if deps.jobs.mark_failed(execution_id, error):
            count_failure(fault.code)
            logger.info("job failed: the strategy's fault, not retried", extra={"error": error})
            return Outcome.FAILED
        logger.info("job was finished by another delivery; keeping that outcome")
        return Outcome.SKIPPED
    if monitor.stopped:  # cancelled (or deleted) after the strategy ended: store nothing
        return _finish_cancelled(execution_id, deps)
    run_ms = (time.perf_counter() - started) * 1000.0

    monitor.stage(Stage.STORING)
    monitor.report_now()
    result = run.result
    t = time.perf_counter()
    key, report = store_artifacts(execution_id, run, deps.results)
    store_ms = (time.perf_counter() - t) * 1000.0
    summary = JobSummaryUpdate(
        performance_metrics=result.performance_metrics,
        trade_summary=result.trade_summary.model_dump(mode="json"),
        market_data_stats=result.market_data_stats.model_dump(mode="json"),
        result_key=key,
        report_key=report,
        timings={**result.timings, "run_ms": round(run_ms, 3), "store_ms": round(store_ms, 3)},
        engine_version=result.engine_version,
        data_fingerprint=result.data_fingerprint,
    )
    if not deps.results.put_summary(execution_id, summary.model_dump(mode="json")):
        stored = deps.results.get_summary(execution_id)  # another attempt committed first: its result wins
        if stored is not None:
            return _succeed_from_stored(execution_id, stored, deps)
    if not deps.jobs.mark_succeeded(execution_id, summary):
        current = deps.jobs.get(execution_id)
        if current is None or current.status.value == "CANCELLED":
            deps.results.delete_all(execution_id)  # nobody will ever link to them
            logger.info("the job was cancelled or deleted while its result was stored; removed the result")
            return Outcome.CANCELLED if current is not None else Outcome.MISSING
        logger.info("job was finished by another delivery; keeping that outcome")
        return Outcome.SKIPPED
    metrics.add_metric(name="JobsSucceeded", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="RunDuration", unit=MetricUnit.Milliseconds, value=run_ms)
    metrics.add_metric(name="BarsProcessed", unit=MetricUnit.Count, value=result.market_data_stats.data_points)
    logger.info("job succeeded", extra={"run_ms": round(run_ms, 1), "result_key": key})
    return Outcome.SUCCEEDED


def store_artifacts(execution_id: str, run: EngineRun, results: ResultStore) -> tuple[str, str | None]:
    """Write the job's objects: the curve and trade records, the report, then the full result (its key is what
    the job record points at); (result key, report key or None when the report could not be built)."""
    result = run.result
    results.put_records(execution_id, Artifact.EQUITY, npy_chunks(result.equity_curve, EQUITY_DTYPE))
    results.put_records(execution_id, Artifact.TRADES, npy_chunks(result.trades, TRADE_DTYPE))
    report = _store_report(execution_id, run, results)
    return results.put(execution_id, iter_json(result)), report


def _store_report(execution_id: str, run: EngineRun, results: ResultStore) -> str | None:
    """The HTML report, imported only here (the runner's cold start never loads it). A report that cannot be
    built is a bug to fix, not a reason to fail a backtest that ran: logged, counted, and the job succeeds
    without a report_url. A failure to store it is an infrastructure fault like any other (retried)."""
    from backtest_engine.report import build_report

    try:
        html = build_report(run.result, run.bars)
    except Exception:
        logger.exception("the report could not be built; the job succeeds without one")
        metrics.add_metric(name="ReportsFailed", unit=MetricUnit.Count, value=1)
        return None
    return results.put_report(execution_id, html)


def _succeed_from_stored(execution_id: str, stored: dict[str, Any], deps: RunnerDeps) -> Outcome:
    if deps.jobs.mark_succeeded(execution_id, JobSummaryUpdate.model_validate(stored)):
        metrics.add_metric(name="JobsSucceeded", unit=MetricUnit.Count, value=1)
        return Outcome.SUCCEEDED
    logger.info("job was finished by another delivery; keeping that outcome")
    return Outcome.SKIPPED


def _finish_cancelled(execution_id: str, deps: RunnerDeps) -> Outcome:
    if deps.jobs.mark_cancelled(execution_id):
        metrics.add_metric(name="JobsCancelled", unit=MetricUnit.Count, value=1)
        logger.info("job cancelled by its owner")
        return Outcome.CANCELLED
    logger.info("job is gone or was finished by another delivery")
    return Outcome.SKIPPED


def _fail_killed(job: JobRecord, deps: RunnerDeps) -> Outcome:
    """End FAILED a job whose previous runner was killed by Lambda (it is still RUNNING, without a heartbeat
    since and without a recorded fault)."""
    progress = job.progress or {}
    where = f" while {progress['stage']}" if progress.get("stage") else ""
    if progress.get("stage") == Stage.STRATEGY and progress.get("bars_total"):
        where += f" (bar {progress.get('bars_done', 0):,} of {progress['bars_total']:,})"
    error = {
        "type": RUNNER_KILLED,
        "message": (
            f"the runner was stopped by its platform{where} without finishing: it ran out of memory or time "
            f"(the runner has {RUN_MEMORY_MB} MB and {RUN_TIMEOUT_SECONDS} s). It is not retried, since it would "
            "stop the same way: shorten the date range, use a longer timeframe, or trade less often"
        ),
    }
    if deps.jobs.mark_failed(job.execution_id, error):
        count_failure(RUNNER_KILLED)
        logger.error("the previous runner of this job was killed; job FAILED", extra={"progress": progress})
        return Outcome.FAILED
    return Outcome.SKIPPED


def record_dead_letter(execution_id: str, exc: Exception, receive_count: int, deps: RunnerDeps) -> bool:
    """Mark the job FAILED before its message goes to the DLQ (best effort: the raise follows anyway) — unless
    a run stored everything (its summary object exists) and only the status write failed: then the job's
    state follows its result and it is marked SUCCEEDED from that summary."""
    try:
        stored = deps.results.get_summary(execution_id)
    except Exception:
        stored = None
    if stored is not None:
        try:
            if deps.jobs.mark_succeeded(execution_id, JobSummaryUpdate.model_validate(stored)):
                logger.warning("the last receive failed after the result was stored: the job is SUCCEEDED from it")
                metrics.add_metric(name="JobsSucceeded", unit=MetricUnit.Count, value=1)
                return True
        except Exception:
            logger.exception("could not mark the job SUCCEEDED from its stored summary")
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
        return False
    try:  # what the failed attempts stored before the fault (a replay writes them again)
        deps.results.delete_all(execution_id)
    except Exception:
        logger.warning("could not remove the partial objects; the bucket's lifecycle rule expires them")
    return False
