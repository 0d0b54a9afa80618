"""The job record and its lifecycle (DESIGN.md "Job lifecycle").

    QUEUED ──► RUNNING ──► SUCCEEDED
       │          │ ▲
       │          │ └── RUNNING again: the message was redelivered after a crash (attempts + 1)
       │          └───► FAILED  (strategy fault, or the last receive of an infrastructure fault)
       └──────────────► FAILED  (the queue refused the message at submit: QueueUnavailable)
    FAILED (dead-lettered only) ──► QUEUED   ops replay (`job_store.reset_for_replay`)

SUCCEEDED is final. The stores enforce these transitions with DynamoDB condition expressions; this
module states them once.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED})

# status → the statuses it may move to. The replay edge FAILED → QUEUED also needs `dead_lettered`
# and only `job_store.reset_for_replay` takes it; `sources()` leaves it out.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.RUNNING, Status.FAILED}),
    Status.RUNNING: frozenset({Status.RUNNING, Status.SUCCEEDED, Status.FAILED}),
    Status.SUCCEEDED: frozenset(),
    Status.FAILED: frozenset({Status.QUEUED}),
}

# Error types the service itself records on a job (the engine's are its `EngineError.code`s).
QUEUE_UNAVAILABLE = "QueueUnavailable"
INFRASTRUCTURE_ERROR = "InfrastructureError"


_EXECUTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def is_valid_execution_id(value: str) -> bool:
    """Ids are uuid4 strings; anything of this shape is looked up, anything else is unknown."""
    return bool(_EXECUTION_ID.match(value))


def sources(target: Status) -> tuple[Status, ...]:
    """The statuses a job may be in to move to `target` (the stores' condition expressions)."""
    return tuple(s for s in Status if target in TRANSITIONS[s] and s is not Status.FAILED)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """UTC ISO-8601 with microseconds and a Z: sorts as text in time order (the GSI's sort key)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JobRecord(BaseModel):
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
    timings: dict[str, Any] | None = None
    engine_version: str | None = None
    data_fingerprint: str | None = None
    # Set when FAILED.
    error: dict[str, Any] | None = None
    dead_lettered: bool = False


class JobSummaryUpdate(BaseModel):
    """What a successful run writes on its job (the full result is in S3 at `result_key`)."""

    performance_metrics: dict[str, Any]
    trade_summary: dict[str, Any]
    market_data_stats: dict[str, Any]
    result_key: str
    timings: dict[str, Any]
    engine_version: str
    data_fingerprint: str
