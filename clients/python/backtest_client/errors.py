"""The client's exceptions: one class per kind of answer a caller handles differently, mapped from the
service's error body `{"success": false, "error": {type, message, field?, line?}, "errors"?: [...]}` and
its HTTP status. Answers that do not come from the service's functions (API Gateway's own 403 or 429,
`{"message": "..."}`; S3's XML for an expired link) map by status alone.

    BacktestServiceError                 type, message, status, request_id, field, line, errors, retry_after
    ├── BadRequest                       400, 415 (not JSON, bad next_token, ...)
    │   └── StrategyCompileError         400 StrategyCompileError / StrategyPolicyViolation: `line`
    ├── Unauthorized                     401, 403
    ├── NotFound                         404 (unknown id, another caller's, unknown route)
    ├── Conflict                         409
    │   └── NotReady                     the job has no results (yet): not SUCCEEDED; `job` when known
    ├── PayloadTooLarge                  413 (strategy_code over 64 KiB)
    ├── ValidationFailed                 422: `errors`, one FieldError per bad field
    ├── Unavailable                      429, 502, 503, 504: retried first; raised once the retries ran out
    │   ├── RateLimited                  429
    │   └── ConnectionFailed             no answer at all (connect, read, timeout)
    ├── ServerError                      500 and other 5xx
    ├── WaitTimeout (also TimeoutError)  wait() gave up: `job` is the last status seen
    └── NoReport                         report(): the job has no report_url
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backtest_client.models import FieldError

if TYPE_CHECKING:
    import httpx

    from backtest_client.models import JobStatus

# Where API Gateway and the local server put the request id (the service's 500 also names it).
REQUEST_ID_HEADERS = ("x-amzn-requestid", "x-amz-apigw-id", "x-request-id")


class BacktestServiceError(Exception):
    """An answer of the service that is not a success, or no answer at all.

    `type` is the service's stable `error.type` (e.g. `ValidationError`, `NotFound`), or `HTTP <status>`
    for an answer without one; `status` is the HTTP status (None when no answer came).
    """

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        field: str | None = None,
        line: int | None = None,
        errors: list[FieldError] | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.type = type or (f"HTTP {status}" if status is not None else type_name(self))
        self.status = status
        self.request_id = request_id
        self.field = field
        self.line = line
        self.errors: list[FieldError] = errors or []
        self.retry_after = retry_after
        self.body = body

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None and f"line {self.line}" not in self.message else ""
        status = f"{self.status} " if self.status is not None else ""
        request = f" [request id {self.request_id}]" if self.request_id else ""
        return f"{status}{self.type}{where}: {self.message}{request}"


def type_name(error: BaseException) -> str:
    return type(error).__name__


class BadRequest(BacktestServiceError):
    pass


class StrategyCompileError(BadRequest):
    """The strategy does not compile or breaks the sandbox's policy; `line` names where."""


class Unauthorized(BacktestServiceError):
    pass


class NotFound(BacktestServiceError):
    pass


class Conflict(BacktestServiceError):
    pass


class NotReady(Conflict):
    """The job has no results: it is QUEUED or RUNNING, or it FAILED or was CANCELLED (`job` says which)."""

    def __init__(self, message: str, *, job: JobStatus | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("type", "NotReady")
        super().__init__(message, **kwargs)
        self.job = job


class PayloadTooLarge(BacktestServiceError):
    pass


class ValidationFailed(BacktestServiceError):
    """A field is invalid; `errors` has one FieldError (field, message) per bad field."""


class Unavailable(BacktestServiceError):
    """The service (or a dependency) is unavailable or throttling; the client retried, then gave up."""


class RateLimited(Unavailable):
    pass


class ConnectionFailed(Unavailable):
    """No answer: the connection failed or timed out (after the retries)."""


class ServerError(BacktestServiceError):
    pass


class WaitTimeout(BacktestServiceError, TimeoutError):
    """`wait()` ran out of time; `job` is the last status seen (the job goes on)."""

    def __init__(self, message: str, *, job: JobStatus) -> None:
        super().__init__(message, type="WaitTimeout")
        self.job = job


class NoReport(BacktestServiceError):
    """The job has no `report_url` (not SUCCEEDED, or a deployment that writes no reports)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="NoReport")


_BY_STATUS: dict[int, type[BacktestServiceError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: BadRequest,
    422: ValidationFailed,
    429: RateLimited,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}
_BY_TYPE: dict[str, type[BacktestServiceError]] = {
    "StrategyCompileError": StrategyCompileError,
    "StrategyPolicyViolation": StrategyCompileError,
    "NotReady": NotReady,
}


def error_class(status: int, error_type: str | None) -> type[BacktestServiceError]:
    if error_type in _BY_TYPE and 400 <= status < 500:
        return _BY_TYPE[error_type]
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else BacktestServiceError


def error_from_response(response: httpx.Response, *, retry_after: float | None = None) -> BacktestServiceError:
    """The exception for an error answer (any status ≥ 400), whatever its body."""
    status = response.status_code
    request_id = next((response.headers[h] for h in REQUEST_ID_HEADERS if h in response.headers), None)
    body: Any
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        body = response.text
    detail: Mapping[str, Any] = {}
    if isinstance(body, Mapping):
        error = body.get("error")
        detail = error if isinstance(error, Mapping) else body  # API Gateway's own: {"message": "..."}
    error_type = detail.get("type") if isinstance(detail.get("type"), str) else None
    message = detail.get("message") or detail.get("Message")
    if not isinstance(message, str) or not message:
        text = body.strip() if isinstance(body, str) else ""
        message = (text[:500] if text else response.reason_phrase) or f"HTTP {status}"
    errors = []
    if isinstance(body, Mapping) and isinstance(body.get("errors"), list):
        errors = [FieldError.model_validate(e) for e in body["errors"] if isinstance(e, Mapping)]
    line = detail.get("line")
    field = detail.get("field")
    cls = error_class(status, error_type)
    kwargs: dict[str, Any] = {
        "type": error_type,
        "status": status,
        "request_id": request_id,
        "field": field if isinstance(field, str) else None,
        "line": line if isinstance(line, int) else None,
        "errors": errors,
        "retry_after": retry_after,
        "body": body,
    }
    return cls(message, **kwargs)
