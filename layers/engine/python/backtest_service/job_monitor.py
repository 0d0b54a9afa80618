"""The runner's watch over one running job: its progress and heartbeat out, its cancel request in.

A thread beside the engine, for the life of one attempt:

- every `CANCEL_POLL_SECONDS` it reads whether the caller asked to stop (one small projected read);
- at most every `PROGRESS_INTERVAL_SECONDS` it writes the progress (stage, percent, bars) if it moved, and
  at least every `HEARTBEAT_SECONDS` even when it did not: the heartbeat is how a later delivery tells a
  live runner (a duplicate message: leave it alone) from a killed one (end the job FAILED);
- a refused write (cancelled, deleted, finished, taken over) or a cancel request sets `stopped`, which the
  engine polls (`should_stop`) to kill the strategy's child.

The engine's callbacks (`stage`, `bars`) only record numbers under a lock; all DynamoDB traffic is this
thread's, so a strategy reporting progress 500 times a second costs nothing and DynamoDB sees at most one
write every two seconds. A failed write or read is logged and tried again on the next tick: the watch must
never fail the job it watches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Self

from backtest_service.job_store import JobStore
from backtest_service.jobs import (
    CANCEL_POLL_SECONDS,
    HEARTBEAT_SECONDS,
    PROGRESS_INTERVAL_SECONDS,
    Stage,
    iso,
    utc_now,
)
from backtest_service.observability import logger

# Where each stage starts and ends on the 0..100 scale of `percent` (the strategy's span moves with its bars).
STAGE_SPANS: dict[Stage, tuple[float, float]] = {
    Stage.DATA: (0.0, 5.0),
    Stage.STRATEGY: (5.0, 85.0),
    Stage.METRICS: (85.0, 92.0),
    Stage.STORING: (92.0, 100.0),
}


def progress_document(stage: Stage, bars_done: int, bars_total: int) -> dict[str, Any]:
    """The job's `progress` attribute: {stage, percent, bars_done, bars_total, updated_at}."""
    low, high = STAGE_SPANS[stage]
    fraction = bars_done / bars_total if stage is Stage.STRATEGY and bars_total > 0 else 0.0
    return {
        "stage": stage.value,
        "percent": round(low + (high - low) * min(max(fraction, 0.0), 1.0), 1),
        "bars_done": bars_done,
        "bars_total": bars_total,
        "updated_at": iso(utc_now()),
    }


class Watch:
    """A daemon thread that calls `_tick` every `poll_seconds` between entering and leaving `with`; `_tick`
    sets `_stop` to tell the engine (`should_stop`) to end the run. A failed tick (a DynamoDB call) is logged
    and the next one tries again: the watch never fails the run it watches."""

    def __init__(self, name: str, poll_seconds: float) -> None:
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=name, daemon=True)

    def should_stop(self) -> bool:
        return self._stop.is_set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._closed.wait(self._poll):
            try:
                self._tick()
            except Exception as exc:
                logger.warning(
                    f"{self._thread.name}: DynamoDB call failed", extra={"error": f"{type(exc).__name__}: {exc}"}
                )

    def _tick(self) -> None:
        raise NotImplementedError


class JobMonitor(Watch):
    def __init__(
        self,
        jobs: JobStore,
        execution_id: str,
        attempt: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        poll_seconds: float = CANCEL_POLL_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self._jobs = jobs
        self._execution_id = execution_id
        self._attempt = attempt
        super().__init__(f"job-monitor-{execution_id[:8]}", poll_seconds)
        self._clock = clock
        self._heartbeat = heartbeat_seconds
        self._lock = threading.Lock()
        self._stage = Stage.DATA
        self._bars = (0, 0)
        self._written: tuple[Stage, tuple[int, int]] | None = None
        self._last_write = -float("inf")
        self.writes = 0

    # ---- what the engine calls (cheap: no I/O) ----------------------------------------------------------

    def stage(self, name: str) -> None:
        with self._lock:
            self._stage = Stage(name)
            if self._stage is not Stage.STRATEGY:
                self._bars = (self._bars[1], self._bars[1])

    def bars(self, done: int, total: int) -> None:
        with self._lock:
            self._bars = (done, total)

    # ---- the thread ---------------------------------------------------------------------------------

    def _tick(self) -> None:
        if self._stop.is_set():
            return
        now = self._clock()
        with self._lock:
            state = (self._stage, self._bars)
        since = now - self._last_write
        if (state != self._written and since >= PROGRESS_INTERVAL_SECONDS) or since >= self._heartbeat:
            stage, (done, total) = state
            self._last_write = now
            self.writes += 1
            if not self._jobs.report_progress(self._execution_id, self._attempt, progress_document(stage, done, total)):
                logger.info("the job was cancelled, deleted or taken over; stopping it")
                self._stop.set()
                return
            self._written = state
        elif self._jobs.cancel_requested(self._execution_id):
            logger.info("cancel requested; stopping the strategy")
            self._stop.set()

    def report_now(self) -> bool:
        """Write the progress at once (a stage boundary the caller wants seen, e.g. storing); False when the
        job is no longer this attempt's."""
        with self._lock:
            stage, (done, total) = self._stage, self._bars
        if self._stop.is_set():
            return False
        ok = self._jobs.report_progress(self._execution_id, self._attempt, progress_document(stage, done, total))
        if not ok:
            self._stop.set()
        return ok
