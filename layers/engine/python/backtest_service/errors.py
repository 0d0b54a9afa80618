"""Domain errors of the service. Plain classes: `http.py` maps each to an HTTP status and error body,
the runner decides retry or not from them. None of them is about the strategy (that is the engine's
`backtest_engine.errors`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class ServiceError(Exception):
    """Base: `code` is the `error.type` of the answer, `status` its HTTP status."""

    code = "ServiceError"
    status = 500

    def __init__(self, message: str, *, field: str | None = None, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        # One {field, message} per bad field (a 422's `errors`); a lone problem is its own list.
        self.errors = errors if errors is not None else [{"field": field, "message": message}]
        self.headers: dict[str, str] = {}  # extra answer headers (Retry-After, ...)


class Unauthenticated(ServiceError):
    code = "Unauthorized"
    status = 401


class JobNotFound(ServiceError):
    """Unknown id, or an id owned by someone else: one answer for both, so ids cannot be probed."""

    code = "NotFound"
    status = 404

    def __init__(self, execution_id: str) -> None:
        super().__init__(f"no backtest with execution_id {execution_id!r}")
        self.execution_id = execution_id


class JobNotReady(ServiceError):
    """The job has no results (yet): it is not SUCCEEDED."""

    code = "NotReady"
    status = 409


class JobExpired(ServiceError):
    """The job's results are past their expiry (the record lingers until DynamoDB's TTL deletes it)."""

    code = "Gone"
    status = 410


class InvalidNextToken(ServiceError):
    code = "InvalidNextToken"
    status = 400

    def __init__(self, what: str = "your executions") -> None:
        super().__init__(
            f"next_token is not one this API returned for {what}; "
            "omit it to start from the first page, or pass the next_token of the previous page unchanged",
            field="next_token",
        )


class RequestInvalid(ServiceError):
    """The body parsed, but a value is unusable (dates, bar cap, ...)."""

    code = "ValidationError"
    status = 422


class UnsupportedContentType(ServiceError):
    code = "UnsupportedContentType"
    status = 415


class CodeTooLarge(ServiceError):
    code = "PayloadTooLarge"
    status = 413


class TooManyJobs(ServiceError):
    """The caller already has as many jobs QUEUED or RUNNING as the stage allows (fairness)."""

    code = "TooManyRequests"
    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class QueueUnavailable(ServiceError):
    code = "QueueUnavailable"
    status = 503


class StoreUnavailable(ServiceError):
    code = "ServiceUnavailable"
    status = 503


class JobAlreadyTerminal(ServiceError):
    """A transition was refused because the job already finished (the runner skips such a job)."""

    code = "JobAlreadyTerminal"
    status = 409

    def __init__(self, execution_id: str, status: str) -> None:
        super().__init__(f"backtest {execution_id} is already {status}")
        self.execution_id = execution_id
        self.job_status = status


class JobBusy(ServiceError):
    """Another runner is alive on this job (its heartbeat is fresh): a duplicate delivery leaves it alone."""

    code = "JobBusy"
    status = 409

    def __init__(self, execution_id: str) -> None:
        super().__init__(f"backtest {execution_id} is being run by another runner")
        self.execution_id = execution_id


class RunnerVanished(ServiceError):
    """The job is RUNNING, but its runner stopped writing heartbeats without recording a fault: Lambda
    killed it (timeout or out of memory), where no Python code runs to say so."""

    code = "RunnerKilled"
    status = 500

    def __init__(self, job: Any) -> None:
        super().__init__(f"the runner of backtest {job.execution_id} stopped without a word")
        self.job = job


class ReplayRefused(ServiceError):
    code = "ReplayRefused"
    status = 409


def _field_name(loc: Sequence[Any]) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or None


def invalid_from_errors(errors: Sequence[Mapping[str, Any]]) -> RequestInvalid:
    """One `RequestInvalid` from pydantic-style errors: every problem in the message and in `errors` (one
    entry per problem, with its field), the first field as `field`. A problem of the whole request (a
    model validator's) names the field its message is about, from the `field` its context carries."""
    problems = []
    entries: list[dict[str, Any]] = []
    for err in errors:
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        name = _field_name(err.get("loc", ())) or (err.get("ctx") or {}).get("field")
        if isinstance(name, str) and name in ("body", "query", "path"):
            name = None
        problems.append(f"{name}: {msg}" if name and not msg.startswith(name) else msg)
        entries.append({"field": name, "message": msg})
    first = entries[0]["field"] if entries else None
    return RequestInvalid("; ".join(problems) or "the request is invalid", field=first, errors=entries)


# ---- datasets --------------------------------------------------------------------------------------


class DatasetNotFound(ServiceError):
    """Unknown dataset id, or one owned by someone else: one answer for both."""

    code = "NotFound"
    status = 404

    def __init__(self, dataset_id: str) -> None:
        super().__init__(f"no dataset with dataset_id {dataset_id!r}", field="dataset_id")
        self.dataset_id = dataset_id
