"""The job record and its lifecycle (DESIGN.md "Job lifecycle").

    QUEUED ──► RUNNING ──► SUCCEEDED
       │          │ ▲
       │          │ └── RUNNING again: redelivered after an infrastructure fault the runner recorded
       │          │     (`retry_attempt` = attempts); attempts + 1
       │          ├───► FAILED  (strategy fault; the last receive of an infrastructure fault; or a
       │          │              redelivery finding the previous runner killed: RunnerKilled)
       │          └───► CANCELLED (the caller cancelled: the runner stops the strategy within ~1 s)
       ├──────────────► FAILED  (the queue refused the message at submit: QueueUnavailable)
       └──────────────► CANCELLED (cancelled before a runner took it: it never runs)
    FAILED (dead-lettered only) ──► QUEUED   ops replay (`job_store.reset_for_replay`)

SUCCEEDED and CANCELLED are final. The stores enforce these transitions with DynamoDB condition
expressions; this module states them once.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from backtest_engine.base_model import Model


class Status(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})

# status → the statuses it may move to. The replay edge FAILED → QUEUED also needs `dead_lettered`
# and only `job_store.reset_for_replay` takes it; `sources()` leaves it out.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.RUNNING, Status.FAILED, Status.CANCELLED}),
    Status.RUNNING: frozenset({Status.RUNNING, Status.SUCCEEDED, Status.FAILED, Status.CANCELLED}),
    Status.SUCCEEDED: frozenset(),
    Status.FAILED: frozenset({Status.QUEUED}),
    Status.CANCELLED: frozenset(),
}

# Error types the service itself records on a job (the engine's are its `EngineError.code`s).
QUEUE_UNAVAILABLE = "QueueUnavailable"
INFRASTRUCTURE_ERROR = "InfrastructureError"
RUNNER_KILLED = "RunnerKilled"
CANCELLED_ERROR = "Cancelled"


class Stage(StrEnum):
    """What a RUNNING job is doing (`progress.stage`), in order."""

    DATA = "data"  # loading or generating the bars
    STRATEGY = "strategy"  # the strategy runs in the sandbox (percent: bars done / bars total)
    METRICS = "metrics"  # fills, accounting and metrics on the trusted side
    STORING = "storing"  # the result, its columns and the report go to S3


# A RUNNING job's runner writes its progress (and so a heartbeat) at most this often, and at least every
# HEARTBEAT_SECONDS even when nothing moved; a delivery that finds the job RUNNING with a fresher heartbeat
# than STALE_AFTER_SECONDS knows another runner is alive (a duplicate delivery) and leaves it alone.
PROGRESS_INTERVAL_SECONDS = 2.0
HEARTBEAT_SECONDS = 10.0
STALE_AFTER_SECONDS = 60.0
# How often the runner looks for a cancel request while the strategy runs (a projected read, not a write).
CANCEL_POLL_SECONDS = 0.5


_EXECUTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def is_valid_execution_id(value: str) -> bool:
    """Ids are uuid4 strings; anything of this shape is looked up, anything else is unknown."""
    return bool(_EXECUTION_ID.match(value))


def sources(target: Status) -> tuple[Status, ...]:
    """The statuses a job may be in to move to `target` (the stores' condition expressions)."""
    return tuple(s for s in Status if target in TRANSITIONS[s] and s is not Status.FAILED)


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def queued_fields(request: Any, owner: str, now: datetime, ttl_days: int) -> dict[str, Any]:
    """What every new QUEUED record (a job, an optimization) says of its request, its owner and its expiry."""
    return {
        "owner": owner,
        "status": Status.QUEUED,
        "created_at": iso(now),
        "updated_at": iso(now),
        "name": request.name,
        "symbol": request.symbol,
        "timeframe": request.timeframe,
        "start_date": request.start_date.isoformat(),
        "end_date": request.end_date.isoformat(),
        "request": request.model_dump(mode="json"),
        "expires_at": int((now + timedelta(days=ttl_days)).timestamp()),
    }


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """UTC ISO-8601 with microseconds and a Z: sorts as text in time order (the GSI's sort key)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JobRecord(Model):
    """One item of the jobs table. Nested documents are plain JSON-like values."""

    model_config = ConfigDict(extra="ignore")

    execution_id: str
    owner: str
    status: Status
    created_at: str
    updated_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0
    name: str | None = None
    notes: str | None = None
    symbol: str
    timeframe: str
    start_date: str | None = None
    end_date: str | None = None
    request: dict[str, Any] = Field(default_factory=dict)
    expires_at: int | None = Field(default=None, description="Epoch seconds: DynamoDB TTL.")
    # Set when SUCCEEDED.
    performance_metrics: dict[str, Any] | None = None
    trade_summary: dict[str, Any] | None = None
    market_data_stats: dict[str, Any] | None = None
    result_key: str | None = None
    report_key: str | None = None
    timings: dict[str, Any] | None = None
    engine_version: str | None = None
    data_fingerprint: str | None = None
    # While RUNNING: {stage, percent, bars_done, bars_total, updated_at}; heartbeat_at: the runner is alive.
    progress: dict[str, Any] | None = None
    heartbeat_at: str | None = None
    # The attempt whose infrastructure fault the runner recorded before raising (SQS redelivers it): a
    # delivery finding the job RUNNING with retry_attempt != attempts knows the previous runner was killed.
    retry_attempt: int | None = None
    cancel_requested_at: str | None = None
    # = owner while QUEUED or RUNNING, absent once terminal: the sparse index topology.ACTIVE_BY_OWNER.
    active_owner: str | None = None
    # Set when FAILED (or CANCELLED: type Cancelled).
    error: dict[str, Any] | None = None
    dead_lettered: bool = False


class JobSummaryUpdate(Model):
    """What a successful run writes on its job (the full result is in S3 at `result_key`)."""

    performance_metrics: dict[str, Any]
    trade_summary: dict[str, Any]
    market_data_stats: dict[str, Any]
    result_key: str
    report_key: str | None = None
    timings: dict[str, Any]
    engine_version: str
    data_fingerprint: str
