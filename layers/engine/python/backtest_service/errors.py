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

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


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


class InvalidNextToken(ServiceError):
    code = "InvalidNextToken"
    status = 400

    def __init__(self) -> None:
        super().__init__(
            "next_token is not one this API returned for your executions; "
            "omit it to start from the newest job, or pass the next_token of the previous page unchanged",
            field="next_token",
        )


class RequestInvalid(ServiceError):
    """The body parsed, but a value is unusable (dates, bar cap, ...)."""

    code = "ValidationError"
    status = 422


class CodeTooLarge(ServiceError):
    code = "PayloadTooLarge"
    status = 413


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


class ReplayRefused(ServiceError):
    code = "ReplayRefused"
    status = 409


def _field_name(loc: Sequence[Any]) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or None


def invalid_from_errors(errors: Sequence[Mapping[str, Any]]) -> RequestInvalid:
    """One `RequestInvalid` from pydantic-style errors: every problem in the message, the first field."""
    problems = []
    for err in errors:
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        name = _field_name(err.get("loc", ()))
        problems.append(f"{name}: {msg}" if name else msg)
    first = _field_name(errors[0].get("loc", ())) if errors else None
    return RequestInvalid("; ".join(problems) or "the request is invalid", field=first)


# ---- datasets --------------------------------------------------------------------------------------


class DatasetNotFound(ServiceError):
    """Unknown dataset id, or one owned by someone else: one answer for both."""

    code = "NotFound"
    status = 404

    def __init__(self, dataset_id: str) -> None:
        super().__init__(f"no dataset with dataset_id {dataset_id!r}", field="dataset_id")
        self.dataset_id = dataset_id


class InvalidDatasetNextToken(InvalidNextToken):
    def __init__(self) -> None:
        ServiceError.__init__(
            self,
            "next_token is not one this API returned for your datasets; omit it to start from the newest "
            "dataset, or pass the next_token of the previous page unchanged",
            field="next_token",
        )
