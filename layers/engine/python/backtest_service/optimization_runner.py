"""Run one chunk of a parameter optimization (the run_backtest function's second use case). Idempotent per
chunk: the record handler calls `handle_chunk` for every `ChunkMessage` (the lifecycle: `optimizations`).

For each chunk message:

1. The optimization is read: gone → the message is dropped; finished or cancelled → the chunk is marked
   CANCELLED if it never ran (queued chunks of a cancelled optimization never run) and skipped.
2. `start_chunk` (conditional on the chunk's item): RUNNING, attempts + 1. A chunk already SUCCEEDED (a
   duplicate, a redelivery after a crash, a replay) is not run again: its count is made sure of (idempotent)
   and, when every chunk is counted, the aggregation is run (idempotent too). A chunk another runner is
   alive on is skipped; one whose runner was killed (no heartbeat, no recorded fault) gets its remaining
   combinations recorded failed `RunnerKilled` (running them again would hit the same wall) and is counted.
3. The chunk regenerates the search's combinations (deterministic: grid order, or the seeded draw), loads
   the bars once, and runs its combinations through `backtest_engine.optimization.evaluate` (one compile,
   one sealed memfd of bars, one warm sandbox child for the whole batch), on the whole range and, with
   validation, on each fold's in-sample part, under a `ChunkMonitor`: heartbeat and progress on the chunk's
   item (a write every 2 s at most), the optimization's cancel polled twice a second (the child is stopped
   within about a second), and the chunk's time budget (`CHUNK_BUDGET_SECONDS`, well inside the Lambda
   timeout): a chunk that runs out of it stores what it did as a checkpoint, records it, queues itself
   again and ends; the next invocation resumes from the checkpoint.
   A combination whose strategy fails is recorded failed with its typed error; the chunk goes on.
4. Its results go to S3 at a key of the optimization id and the chunk number (a rerun overwrites them), THEN
   the chunk is marked SUCCEEDED (conditional), THEN counted into the optimization once (its number added
   to `counted`, the running top K merged). The count that reaches the total aggregates: reads every
   chunk's results, ranks them (`ranking`), runs each walk-forward fold's winner out of sample, writes the
   table (JSON and CSV), and marks the optimization SUCCEEDED (conditional: never over a cancel).

An input error (the request cannot run: too few bars for the folds, ...) fails the optimization. Any other
exception is an infrastructure fault: recorded on the chunk (`record_chunk_retry`), raised, and SQS
redelivers the message. On the last receive the chunk is marked FAILED dead-lettered (unless its results
were already stored complete: then it is counted instead) and its number is added to the optimization's
`dead_chunks`; when every chunk is counted or dead, the optimization ends FAILED `InfrastructureError`
until ops replay the DLQ (`backtest replay`, which resets the chunk and the optimization first).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from pydantic import ValidationError

from backtest_engine.bars import Bars
from backtest_engine.errors import UserInputError
from backtest_engine.models import BacktestRequest, ParamValue
from backtest_engine.optimization import ranking, space, walk_forward
from backtest_engine.optimization.evaluate import Evaluated, evaluate, load_request_bars
from backtest_engine.optimization.models import CombinationOutcome, OptimizationRequest, WindowReport
from backtest_service import runner
from backtest_service.errors import invalid_from_errors
from backtest_service.job_monitor import Watch
from backtest_service.job_queue import ChunkMessage
from backtest_service.jobs import (
    CANCEL_POLL_SECONDS,
    HEARTBEAT_SECONDS,
    INFRASTRUCTURE_ERROR,
    PROGRESS_INTERVAL_SECONDS,
    RUNNER_KILLED,
    Status,
    iso,
    utc_now,
)
from backtest_service.observability import MetricUnit, count_failure, logger, metrics, tracer
from backtest_service.optimization_queue import ChunkQueue, default_chunk_queue
from backtest_service.optimization_results import OptimizationResults, default_optimization_results
from backtest_service.optimization_store import OptimizationStore, default_optimization_store
from backtest_service.optimization_table import table_csv, table_json
from backtest_service.optimizations import (
    NO_FEASIBLE,
    ChunkBusy,
    ChunkDone,
    ChunkRecord,
    ChunkStopped,
    ChunkVanished,
    OptimizationRecord,
    chunk_bounds,
    shown_metrics,
)
from backtest_service.settings import Settings, get_settings
from backtest_service.topology import RUN_BACKTEST

# The work one invocation does on a chunk before it checkpoints and continues in a new message: the
# runner's timeout less a reserve for storing the checkpoint (or the results) and counting.
CHUNK_RESERVE_SECONDS = 60
CHUNK_BUDGET_SECONDS = RUN_BACKTEST.timeout_seconds - CHUNK_RESERVE_SECONDS

Evaluate = Callable[..., Iterator[Evaluated]]


class ChunkOutcome(StrEnum):
    SUCCEEDED = "SUCCEEDED"  # the chunk ran (or was found done) and is counted
    AGGREGATED = "AGGREGATED"  # ... and its count completed the optimization, which is now SUCCEEDED
    CONTINUED = "CONTINUED"  # out of time: checkpointed, queued again
    CANCELLED = "CANCELLED"  # the optimization was cancelled: the chunk did not run, or stopped
    FAILED = "FAILED"  # the optimization cannot run (an input error), or its last chunk settled dead-lettered
    SKIPPED = "SKIPPED"  # a duplicate: another runner is on it, or it is done and counted
    MISSING = "MISSING"  # no such optimization (expired): nothing to do


@dataclass(frozen=True, eq=False)
class ChunkDeps:
    settings: Settings
    store: OptimizationStore
    results: OptimizationResults
    queue: ChunkQueue
    evaluate: Evaluate = evaluate
    load_bars: Callable[[BacktestRequest], Bars] = load_request_bars
    budget_seconds: float = CHUNK_BUDGET_SECONDS
    clock: Callable[[], float] = time.monotonic


@cache
def default_deps() -> ChunkDeps:
    return ChunkDeps(
        settings=get_settings(),
        store=default_optimization_store(),
        results=default_optimization_results(),
        queue=default_chunk_queue(),
    )


# ---- the watch over a running chunk -----------------------------------------------------------------------


class ChunkMonitor(Watch):
    """Beside the engine for one attempt on a chunk, like `job_monitor.JobMonitor` for a job: progress and
    heartbeat out (the chunk's item), the optimization's cancel in, and the chunk's time budget. All DynamoDB
    traffic is this thread's; a failed call is logged and tried again on the next tick.

    The time budget stops the chunk only once this attempt finished at least one backtest, so every
    invocation makes progress (one backtest's wall-clock limit is well inside the budget)."""

    def __init__(
        self,
        store: OptimizationStore,
        optimization_id: str,
        chunk: int,
        attempt: int,
        *,
        deadline: float,
        clock: Callable[[], float] = time.monotonic,
        poll_seconds: float = CANCEL_POLL_SECONDS,
    ) -> None:
        super().__init__(f"chunk-monitor-{chunk}", poll_seconds)
        self._store = store
        self._id = optimization_id
        self._chunk = chunk
        self._attempt = attempt
        self._deadline = deadline
        self._clock = clock
        self._lock = threading.Lock()
        self._done = (0, 0)
        self._first: int | None = None  # the unit this attempt started from
        self._written: tuple[int, int] | None = None
        self._last_write = -float("inf")
        self.reason: str | None = None  # "cancelled" | "taken over"

    def progress(self, done: int, total: int) -> None:
        with self._lock:
            if self._first is None:
                self._first = done
            self._done = (done, total)

    @property
    def out_of_time(self) -> bool:
        """Past the budget, with at least one backtest done by this attempt."""
        with self._lock:
            moved = self._first is not None and self._done[0] > self._first
        return moved and self._clock() >= self._deadline

    def should_stop(self) -> bool:
        return self._stop.is_set() or self.out_of_time

    def _halt(self, reason: str) -> None:
        self.reason = reason
        self._stop.set()

    def _tick(self) -> None:
        if self._stop.is_set():
            return
        now = self._clock()
        with self._lock:
            state = self._done
        since = now - self._last_write
        if (state != self._written and since >= PROGRESS_INTERVAL_SECONDS) or since >= HEARTBEAT_SECONDS:
            self._last_write = now
            progress = {"done": state[0], "total": state[1], "updated_at": iso(utc_now())}
            if not self._store.report_chunk_progress(self._id, self._chunk, self._attempt, progress):
                self._halt("taken over")
                return
            self._written = state
        if self._store.stop_requested(self._id):
            self._halt("cancelled")


# ---- one chunk ------------------------------------------------------------------------------------------------


def handle_chunk(message: ChunkMessage, *, receive_count: int, deps: ChunkDeps | None = None) -> ChunkOutcome:
    """Process one chunk message; raises on an infrastructure fault (SQS retries it)."""
    runner.check_sandbox()
    deps = deps or default_deps()
    logger.append_keys(optimization_id=message.optimization_id, chunk=message.chunk, receive_count=receive_count)
    try:
        return run_chunk(message, deps)
    except Exception as exc:
        if receive_count >= deps.settings.max_receive_count:
            if record_dead_letter(message, exc, deps):
                return ChunkOutcome.SUCCEEDED
        else:
            logger.warning(
                "infrastructure fault on a chunk; SQS will redeliver", extra={"error": f"{type(exc).__name__}: {exc}"}
            )
        raise
    finally:
        logger.remove_keys(["optimization_id", "chunk", "receive_count"])


@tracer.capture_method
def run_chunk(message: ChunkMessage, deps: ChunkDeps) -> ChunkOutcome:
    optimization_id, n = message.optimization_id, message.chunk
    record = deps.store.get(optimization_id)
    if record is None:
        logger.warning("no such optimization (expired or never stored); dropping the message")
        return ChunkOutcome.MISSING
    if not 0 <= n < record.chunks:
        logger.error("the message names a chunk the optimization does not have", extra={"chunks": record.chunks})
        return ChunkOutcome.MISSING
    if record.status.terminal or record.cancel_requested_at is not None:
        if deps.store.mark_chunk_cancelled(optimization_id, n):
            logger.info(
                "the optimization is finished or cancelled: the chunk never runs", extra={"status": record.status}
            )
        return ChunkOutcome.CANCELLED if record.status is Status.CANCELLED else ChunkOutcome.SKIPPED
    try:
        chunk = deps.store.start_chunk(optimization_id, n, expires_at=record.expires_at)
    except ChunkDone:
        return settle_done(record, n, deps)
    except ChunkStopped as stopped:
        logger.info("the chunk was stopped earlier; skipping the message", extra={"status": stopped.chunk.status})
        return ChunkOutcome.SKIPPED
    except ChunkBusy:
        logger.info("another runner is alive on this chunk (a duplicate delivery); skipping the message")
        return ChunkOutcome.SKIPPED
    except ChunkVanished as gone:
        return fail_killed(record, gone.chunk, deps)
    if record.status is Status.QUEUED:
        deps.store.mark_running(optimization_id)
    logger.info("chunk started", extra={"attempts": chunk.attempts, "resume_from": chunk.next_unit})
    deadline = deps.clock() + deps.budget_seconds
    try:
        with ChunkMonitor(deps.store, optimization_id, n, chunk.attempts, deadline=deadline, clock=deps.clock) as watch:
            return _run(record, chunk, watch, deps)
    except Exception:
        try:  # so that the redelivery runs the chunk again instead of taking this runner for killed
            deps.store.record_chunk_retry(optimization_id, n, chunk.attempts)
        except Exception:
            logger.exception("could not record the infrastructure fault on the chunk")
        raise


@dataclass
class _Work:
    """What a chunk evaluates: its combinations, the bars of each sweep."""

    request: OptimizationRequest
    single: BacktestRequest
    combos: list[dict[str, ParamValue]]  # the whole search's, in order
    start: int
    stop: int
    bars: Bars
    parts: list[tuple[int, int]]  # [start, stop) bars of each sweep: the whole range, then each in-sample part

    @property
    def params(self) -> list[dict[str, ParamValue]]:
        return self.combos[self.start : self.stop]

    @property
    def units(self) -> int:
        return len(self.parts) * (self.stop - self.start)


def _request(record: OptimizationRecord) -> OptimizationRequest:
    try:
        return OptimizationRequest.model_validate(record.request, context={"max_bars": None})
    except ValidationError as exc:
        raise UserInputError(invalid_from_errors(exc.errors()).message) from None


def _work(record: OptimizationRecord, chunk: int, deps: ChunkDeps) -> _Work:
    request = _request(record)
    combos = space.combinations(request)
    if len(combos) != record.combinations:
        raise RuntimeError(
            f"the search expands to {len(combos)} combinations, the optimization was planned with "
            f"{record.combinations}: the engine's expansion changed since the submit"
        )
    start, stop = chunk_bounds(chunk, record.chunk_size, len(combos))
    single = request.backtest_request()
    bars = deps.load_bars(single)
    parts = [(0, len(bars))]
    if request.validation is not None:
        parts += [fold.in_sample for fold in walk_forward.folds(len(bars), request.validation)]
    return _Work(request, single, combos, start, stop, bars, parts)


def _new_document(record: OptimizationRecord, chunk: int, work: _Work) -> dict[str, Any]:
    return {
        "optimization_id": record.optimization_id,
        "chunk": chunk,
        "start": work.start,
        "stop": work.stop,
        "sweeps": len(work.parts),
        "next_unit": 0,
        "complete": False,
        "combinations": [],  # outcomes on the whole range
        "in_sample": [[] for _ in work.parts[1:]],  # per fold: {index, status, metrics, error, feasible}
    }


def _resume(record: OptimizationRecord, chunk: ChunkRecord, work: _Work, deps: ChunkDeps) -> dict[str, Any]:
    """The checkpoint an earlier attempt stored, when it matches its record; else a fresh document."""
    fresh = _new_document(record, chunk.chunk, work)
    if chunk.next_unit <= 0:
        return fresh
    stored = deps.results.get_chunk(record.optimization_id, chunk.chunk)
    if not stored or stored.get("next_unit") != chunk.next_unit or stored.get("start") != work.start:
        logger.warning("the chunk's checkpoint is missing or does not match; starting it over")
        return fresh
    return stored


def _add(document: dict[str, Any], work: _Work, sweep: int, outcome: CombinationOutcome) -> None:
    if sweep == 0:
        document["combinations"].append(outcome.model_dump(mode="json"))
    else:
        document["in_sample"][sweep - 1].append(outcome.model_dump(mode="json", exclude={"params"}))
    document["next_unit"] += 1


def _run(record: OptimizationRecord, chunk: ChunkRecord, watch: ChunkMonitor, deps: ChunkDeps) -> ChunkOutcome:
    optimization_id, n = record.optimization_id, chunk.chunk
    started = time.perf_counter()
    try:
        work = _work(record, n, deps)
        document = _resume(record, chunk, work, deps)
        count = work.stop - work.start
        limits = runner.sandbox_limits(deps.settings)
        watch.progress(document["next_unit"], work.units)
        while document["next_unit"] < work.units and not watch.should_stop():
            sweep, i = divmod(document["next_unit"], count)
            a, b = work.parts[sweep]
            part = work.bars if sweep == 0 else work.bars.slice(a, b)
            for item in deps.evaluate(
                work.single,
                work.params[i:],
                bars=part,
                limits=limits,
                should_stop=watch.should_stop,
                first_index=work.start + i,
            ):
                _add(
                    document,
                    work,
                    sweep,
                    ranking.outcome(item.index, item.params, item.metrics, item.error, work.request),
                )
                watch.progress(document["next_unit"], work.units)
    except UserInputError as fault:
        return _fail_input(record, n, fault.to_dict(), deps)
    if document["next_unit"] < work.units:
        if watch.stopped:
            return _stopped(record, n, watch, deps)
        return _continue(record, chunk, document, deps)
    document["complete"] = True
    if watch.stopped:
        return _stopped(record, n, watch, deps)
    deps.results.put_chunk(optimization_id, n, document)
    counts = _counts(document)
    if not deps.store.mark_chunk_succeeded(optimization_id, n, counts):
        current = deps.store.get_chunk(optimization_id, n)
        if current is not None and current.status is Status.CANCELLED:
            return ChunkOutcome.CANCELLED
        logger.info("the chunk was finished by another delivery; keeping that outcome")
        return ChunkOutcome.SKIPPED
    metrics.add_metric(name="OptimizationChunksSucceeded", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="OptimizationCombinations", unit=MetricUnit.Count, value=work.stop - work.start)
    logger.info("chunk stored", extra={**counts, "ms": round((time.perf_counter() - started) * 1000, 1)})
    return settle(record, n, document, deps)


def _counts(document: dict[str, Any]) -> dict[str, int]:
    outcomes = document["combinations"]
    return {
        "succeeded": sum(o["status"] == "succeeded" for o in outcomes),
        "failed": sum(o["status"] == "failed" for o in outcomes),
        "feasible": sum(bool(o["feasible"]) for o in outcomes),
    }


def _stopped(record: OptimizationRecord, n: int, watch: ChunkMonitor, deps: ChunkDeps) -> ChunkOutcome:
    if watch.reason == "taken over":
        logger.info("the chunk is no longer this attempt's (taken over); stopping")
        return ChunkOutcome.SKIPPED
    deps.store.mark_chunk_cancelled(record.optimization_id, n)
    logger.info("the optimization was cancelled or ended: the chunk stopped")
    return ChunkOutcome.CANCELLED


def _continue(
    record: OptimizationRecord, chunk: ChunkRecord, document: dict[str, Any], deps: ChunkDeps
) -> ChunkOutcome:
    """Out of time: store the checkpoint, record it, queue the chunk again (the next invocation resumes)."""
    n = chunk.chunk
    deps.results.put_chunk(record.optimization_id, n, document)
    if not deps.store.record_chunk_retry(record.optimization_id, n, chunk.attempts, next_unit=document["next_unit"]):
        logger.info("the chunk was taken over while it checkpointed; leaving it to the other runner")
        return ChunkOutcome.SKIPPED
    deps.queue.send(ChunkMessage(record.optimization_id, n))
    metrics.add_metric(name="OptimizationChunksContinued", unit=MetricUnit.Count, value=1)
    logger.info(
        "the chunk's time budget ran out: checkpointed and queued again", extra={"next_unit": document["next_unit"]}
    )
    return ChunkOutcome.CONTINUED


def _fail_input(record: OptimizationRecord, n: int, error: dict[str, Any], deps: ChunkDeps) -> ChunkOutcome:
    """The request cannot run (every chunk would fail the same way): the optimization FAILED."""
    deps.store.mark_chunk_failed(record.optimization_id, n, error)
    if deps.store.mark_failed(record.optimization_id, error):
        count_failure(str(error.get("type", "InvalidRequest")))
        logger.info("the optimization cannot run: FAILED", extra={"error": error})
    return ChunkOutcome.FAILED


def fail_killed(record: OptimizationRecord, chunk: ChunkRecord, deps: ChunkDeps) -> ChunkOutcome:
    """The previous runner of this chunk was killed by its platform (out of memory, timeout): what it had not
    checkpointed is recorded failed `RunnerKilled` (it would die the same way again), and the chunk counts."""
    optimization_id, n = record.optimization_id, chunk.chunk
    work = _work(record, n, deps)
    document = _resume(record, chunk, work, deps)
    count = work.stop - work.start
    error = {
        "type": RUNNER_KILLED,
        "message": (
            f"the runner was stopped by its platform while on this combination's chunk: it ran out of memory or "
            f"time (the runner has {RUN_BACKTEST.memory_mb} MB and {RUN_BACKTEST.timeout_seconds} s)"
        ),
    }
    while document["next_unit"] < work.units:
        sweep, i = divmod(document["next_unit"], count)
        index = work.start + i
        outcome = ranking.outcome(index, work.combos[index], None, error, work.request)
        _add(document, work, sweep, outcome)
    document["complete"] = True
    deps.results.put_chunk(optimization_id, n, document)
    deps.store.mark_chunk_succeeded(optimization_id, n, _counts(document))
    count_failure(RUNNER_KILLED)
    logger.error("the previous runner of this chunk was killed; its remaining combinations are failed")
    return settle(record, n, document, deps)


# ---- counting and aggregating ---------------------------------------------------------------------------------


def _top_entries(outcomes: list[CombinationOutcome], request: OptimizationRequest) -> list[dict[str, Any]]:
    shown = shown_metrics(request.target, [c.metric for c in request.constraints])
    best = ranking.ranked(outcomes, request)[: request.top_k]
    return [
        {"index": o.index, "params": o.params, "metrics": {k: (o.metrics or {}).get(k) for k in shown}} for o in best
    ]


def _failures(outcomes: list[CombinationOutcome]) -> list[dict[str, Any]]:
    failed = [o for o in outcomes if o.status == "failed"][:3]
    return [{"index": o.index, "params": o.params, "error": o.error} for o in failed]


def _outcomes(document: dict[str, Any]) -> list[CombinationOutcome]:
    return [CombinationOutcome.model_validate(o) for o in document["combinations"]]


def settle(record: OptimizationRecord, n: int, document: dict[str, Any], deps: ChunkDeps) -> ChunkOutcome:
    """Count the finished chunk into its optimization (once), then aggregate if it was the last."""
    request = _request(record)
    outcomes = _outcomes(document)
    counts = _counts(document)
    counted, now = deps.store.count_chunk(
        record.optimization_id,
        n,
        done=len(outcomes),
        failed=counts["failed"],
        feasible=counts["feasible"],
        top=_top_entries(outcomes, request),
        failures=_failures(outcomes),
    )
    if not counted:
        logger.info("the chunk was already counted (or the optimization ended)", extra={"status": now.status})
    return _after_count(now, deps)


def settle_done(record: OptimizationRecord, n: int, deps: ChunkDeps) -> ChunkOutcome:
    """A chunk found SUCCEEDED: count it if an earlier delivery died before counting it, and aggregate if
    every chunk is counted (an earlier aggregation failed, or died)."""
    if n not in record.counted and record.status in (Status.QUEUED, Status.RUNNING):
        document = deps.results.get_chunk(record.optimization_id, n)
        if document is None or not document.get("complete"):
            raise RuntimeError(f"chunk {n} is SUCCEEDED but its results are not stored complete")
        return settle(record, n, document, deps)
    logger.info("the chunk is done and counted; a duplicate, a redelivery or a replay")
    outcome = _after_count(record, deps)
    return ChunkOutcome.SKIPPED if outcome is ChunkOutcome.SUCCEEDED else outcome


def _after_count(record: OptimizationRecord, deps: ChunkDeps) -> ChunkOutcome:
    if record.status not in (Status.QUEUED, Status.RUNNING):
        return ChunkOutcome.CANCELLED if record.status is Status.CANCELLED else ChunkOutcome.SKIPPED
    if len(record.counted) == record.chunks:
        return aggregate(record, deps)
    if record.settled == record.chunks:
        _fail_dead_lettered(record, deps)
        return ChunkOutcome.FAILED
    return ChunkOutcome.SUCCEEDED


def _fail_dead_lettered(record: OptimizationRecord, deps: ChunkDeps) -> None:
    dead = sorted(record.dead_chunks - record.counted)
    if dead:
        what = f"{len(dead)} of {record.chunks} chunk(s) ({', '.join(map(str, dead[:10]))}) failed every attempt"
    else:  # every chunk is counted: the aggregation is what failed, on the last chunk's every receive
        what = "the aggregation of the chunks' results failed every attempt"
    error = {
        "type": INFRASTRUCTURE_ERROR,
        "message": f"{what}; held in the dead-letter queue, the optimization ends when ops replay it",
    }
    if deps.store.mark_failed(record.optimization_id, error, dead_lettered=True):
        count_failure(INFRASTRUCTURE_ERROR)
        logger.error("every chunk settled, some dead-lettered: the optimization is FAILED", extra={"dead": dead})


@tracer.capture_method
def aggregate(record: OptimizationRecord, deps: ChunkDeps) -> ChunkOutcome:
    """Every chunk is counted: rank everything, run the walk-forward winners out of sample, write the table,
    and mark the optimization SUCCEEDED. Idempotent: the same objects, and a conditional final write."""
    started = time.perf_counter()
    optimization_id = record.optimization_id
    request = _request(record)
    documents = []
    for n in range(record.chunks):
        document = deps.results.get_chunk(optimization_id, n)
        if document is None or not document.get("complete"):
            raise RuntimeError(f"chunk {n} is counted but its results are not stored complete")
        documents.append(document)
    outcomes = sorted((o for d in documents for o in _outcomes(d)), key=lambda o: o.index)
    if [o.index for o in outcomes] != list(range(record.combinations)):
        raise RuntimeError(
            f"the chunks' results hold {len(outcomes)} combinations for {record.combinations}: not each once"
        )
    ranked = ranking.ranked(outcomes, request)
    fields: dict[str, Any] = {
        "best": ranked[0].model_dump(mode="json") if ranked else None,
        "top": _top_entries(outcomes, request),
        "failed_examples": _failures(outcomes),
        "combinations_feasible": len(ranked),
        "combinations_failed": sum(o.status == "failed" for o in outcomes),
        "combinations_done": len(outcomes),
    }
    if request.validation is not None:
        windows, stitched = _walk_forward(request, outcomes, documents, deps)
        fields["windows"] = [w.model_dump(mode="json") for w in windows]
        fields["stitched_out_of_sample_metrics"] = stitched
    parameters = list(request.spaces)
    header = {
        "optimization_id": optimization_id,
        "target": request.target,
        "direction": request.direction,
        "method": request.method,
    }
    json_key, csv_key = deps.results.put_table(
        optimization_id, table_json(header, parameters, outcomes), table_csv(parameters, outcomes)
    )
    fields["table_json_key"], fields["table_csv_key"] = json_key, csv_key
    fields["timings"] = {"aggregate_ms": round((time.perf_counter() - started) * 1000, 3)}
    if not deps.store.mark_succeeded(optimization_id, fields):
        current = deps.store.get(optimization_id)
        if current is not None and current.status is Status.CANCELLED:
            deps.results.delete_table(optimization_id)  # nobody will link to them
            return ChunkOutcome.CANCELLED
        logger.info("the optimization was finished by another delivery; keeping that outcome")
        return ChunkOutcome.SKIPPED
    metrics.add_metric(name="OptimizationsSucceeded", unit=MetricUnit.Count, value=1)
    logger.info("optimization succeeded", extra={"combinations": len(outcomes), "feasible": len(ranked)})
    return ChunkOutcome.AGGREGATED


def _walk_forward(
    request: OptimizationRequest,
    outcomes: list[CombinationOutcome],
    documents: list[dict[str, Any]],
    deps: ChunkDeps,
) -> tuple[list[WindowReport], dict[str, Any] | None]:
    """Each fold's winner in sample (from the chunks' in-sample sweeps), run out of sample here, and the
    out-of-sample runs stitched: what `search.run_optimization` reports, computed the same way."""
    assert request.validation is not None
    single = request.backtest_request()
    bars = deps.load_bars(single)
    folds = walk_forward.folds(len(bars), request.validation)
    params = {o.index: o.params for o in outcomes}
    limits = runner.sandbox_limits(deps.settings)
    reports, parts, ledgers = [], [], []
    for f, fold in enumerate(folds):
        report = WindowReport(
            window=fold.window,
            in_sample=walk_forward.span(bars, fold.in_sample),
            out_of_sample=walk_forward.span(bars, fold.out_of_sample),
        )
        in_sample = sorted(
            (
                CombinationOutcome.model_validate({**o, "params": params[o["index"]]})
                for d in documents
                for o in d["in_sample"][f]
            ),
            key=lambda o: o.index,
        )
        winners = ranking.ranked(in_sample, request)
        report.combinations, report.feasible = len(in_sample), len(winners)
        if winners:
            winner = winners[0]
            report.best_params, report.in_sample_metrics = winner.params, winner.metrics
            (oos,) = deps.evaluate(
                single, [winner.params], bars=bars.slice(*fold.out_of_sample), limits=limits, keep_ledgers=True
            )
            report.out_of_sample_metrics = oos.metrics
            report.error = oos.error
            if oos.ledger is not None:
                parts.append(fold.out_of_sample)
                ledgers.append(oos.ledger)
        else:
            report.error = {"type": NO_FEASIBLE, "message": "no combination met the constraints"}
        reports.append(report)
    stitched = None
    if ledgers and len(ledgers) == len(folds):
        stitched = walk_forward.stitched_metrics(bars, parts, ledgers, single.initial_capital)[0]
    return reports, stitched


# ---- the last receive -----------------------------------------------------------------------------------------


def record_dead_letter(message: ChunkMessage, exc: Exception, deps: ChunkDeps) -> bool:
    """Before the message goes to the DLQ: a chunk whose results are stored complete is counted (the fault
    came after); otherwise the chunk is marked FAILED dead-lettered and the optimization notes it (FAILED once
    every chunk settled). True when nothing is left to replay."""
    optimization_id, n = message.optimization_id, message.chunk
    try:
        stored = deps.results.get_chunk(optimization_id, n)
        record = deps.store.get(optimization_id)
    except Exception:
        stored, record = None, None
    if stored is not None and stored.get("complete") and record is not None and not record.status.terminal:
        try:
            try:  # the chunk's own status is the lesser matter: its count is what the optimization needs
                deps.store.mark_chunk_succeeded(optimization_id, n, _counts(stored))
            except Exception:
                logger.exception("could not mark the stored chunk SUCCEEDED; counting it anyway")
            settle(record, n, stored, deps)
            logger.warning("the last receive failed after the chunk's results were stored: the chunk is counted")
            return True
        except Exception:
            logger.exception("could not count the stored chunk on its last receive")
    logger.error(
        "infrastructure fault on the chunk's last receive; the message goes to the DLQ",
        extra={"error": f"{type(exc).__name__}: {exc}"[:500]},
    )
    error = {
        "type": INFRASTRUCTURE_ERROR,
        "message": (
            f"the service failed to run this chunk {deps.settings.max_receive_count} times ({type(exc).__name__}); "
            "it is held in the dead-letter queue and runs again when ops replay it"
        ),
    }
    try:
        deps.store.mark_chunk_failed(optimization_id, n, error, dead_lettered=True)
        now = deps.store.add_dead_chunk(optimization_id, n)
        if now is not None and now.status in (Status.QUEUED, Status.RUNNING) and now.settled == now.chunks:
            _fail_dead_lettered(now, deps)
    except Exception:
        logger.exception("could not record the dead-lettered chunk")
    return False
