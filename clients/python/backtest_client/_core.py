"""What the sync and the async client share: every operation of the API written once, without I/O.

An operation is a generator that yields *effects* and is sent back their outcome:

- `Call` (one HTTP exchange): the driver sends it and sends back the `httpx.Response`, or the
  `httpx.TransportError` it raised (connection refused, timeout, ...);
- `Sleep(seconds)`: the driver sleeps (`time.sleep` or `asyncio.sleep`);
- `Notify(callback, value)`: the driver calls `callback(value)` (and awaits it when it returns an awaitable);
- `Emit(item)`: one item of an iteration (a job of the list, a trade): the driver yields it to its caller.

The generator's return value is the operation's result. Request building, retries with backoff, jitter and
Retry-After, the idempotency key of a submit, error mapping, polling and pagination all live here, so
`BacktestClient` and `AsyncBacktestClient` differ only in how they perform the four effects. Adding an
endpoint (optimizations, datasets) is one operation here and one line in each client.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from backtest_client import models
from backtest_client.errors import (
    BacktestServiceError,
    ConnectionFailed,
    NoReport,
    NotFound,
    NotReady,
    WaitTimeout,
    error_from_response,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

API = "/api/backtest"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
MAX_WAIT_SECONDS = 25  # POST /run?wait= (API Gateway answers within 29 s)
MAX_LIST_PAGE = 100  # GET /executions?limit= (its maximum in openapi.json; a test compares)
Status = Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]


# ---- effects ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One HTTP exchange. `path` is relative to the API root (which may carry a stage, `/prod`) or an
    absolute URL (a presigned link, sent without the client's auth: its signature is in the URL)."""

    method: str
    path: str
    query: Sequence[tuple[str, str]] = ()
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    authenticated: bool = True
    read_timeout: float | None = None  # longer than the client's (POST /run?wait=)

    @property
    def target(self) -> str:
        """Path and query, the query encoded as SigV4 canonicalizes it (sorted, RFC 3986, %20 for a space),
        so the URL signed and the URL sent are the same bytes."""
        if not self.query:
            return self.path
        pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in self.query)
        return f"{self.path}?{'&'.join(f'{k}={v}' for k, v in pairs)}"


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Notify:
    callback: Callable[[Any], Any]
    value: Any


@dataclass(frozen=True)
class Emit:
    item: Any


Effect = Call | Sleep | Notify | Emit
Operation = Generator[Effect, Any, T]


# ---- retries ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How one request is retried: on `statuses` and on connection errors and timeouts, up to `attempts`
    tries in all. The delay before try n+1 is the answer's Retry-After when it has one (capped at
    `max_retry_after`), else an exponential backoff with jitter: half of min(max_backoff, backoff·2ⁿ⁻¹)
    plus a random part up to the other half. Every request is safe to retry: a submit carries an
    Idempotency-Key, the others are reads or idempotent changes."""

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 10.0
    max_retry_after: float = 60.0
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed try number `attempt` (1-based)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after))
        cap = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return cap / 2 + self.rng.uniform(0, cap / 2)


NO_RETRY = RetryPolicy(attempts=1)


@dataclass(frozen=True)
class PollPolicy:
    """How `wait` polls: first after `initial` seconds, then `factor` times longer each time up to
    `maximum` (the runner writes progress at most every 2 s)."""

    initial: float = 0.2
    factor: float = 1.5
    maximum: float = 2.0


def retry_after_seconds(response: httpx.Response, *, now: datetime | None = None) -> float | None:
    """The Retry-After header in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = now or datetime.now(when.tzinfo)
    return max(0.0, (when - current).total_seconds())


_RETRIED_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def send(
    call: Call, policy: RetryPolicy, *, retry_conflicts: frozenset[str] = frozenset()
) -> Operation[httpx.Response]:
    """Make `call` until it succeeds (2xx/3xx), fails for good, or the tries run out; raise the typed error.

    `retry_conflicts`: 409 error types that are retried too (a submit whose first try is still in progress)."""
    attempt = 0
    while True:
        attempt += 1
        outcome = yield call
        if isinstance(outcome, httpx.TransportError):
            if not isinstance(outcome, _RETRIED_TRANSPORT_ERRORS):
                raise outcome
            if attempt >= policy.attempts:
                raise ConnectionFailed(
                    f"no answer from {call.method} {call.path} after {attempt} tries: {type(outcome).__name__}: "
                    f"{outcome or 'no detail'}"
                ) from outcome
            yield Sleep(policy.delay(attempt, None))
            continue
        response: httpx.Response = outcome
        if response.status_code < 400:
            return response
        retry_after = retry_after_seconds(response)
        error = error_from_response(response, retry_after=retry_after)
        retryable = response.status_code in policy.statuses or (
            response.status_code == 409 and error.type in retry_conflicts
        )
        if not retryable or attempt >= policy.attempts:
            if attempt > 1 and isinstance(error, NotFound) and call.method == "DELETE":
                return response  # an earlier try deleted it and its answer was lost
            raise error
        yield Sleep(policy.delay(attempt, retry_after))


def parse(model: type[M], response: httpx.Response) -> M:
    return model.model_validate(response.json())


def _get(model: type[M], path: str, policy: RetryPolicy, query: Sequence[tuple[str, str]] = ()) -> Operation[M]:
    response = yield from send(Call("GET", path, query=query), policy)
    return parse(model, response)


def job_path(execution_id: str, suffix: str = "") -> str:
    if not execution_id or not execution_id.strip():
        raise ValueError("an execution id is needed")
    return f"{API}/executions/{quote(execution_id, safe='')}{suffix}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _query(**values: Any) -> list[tuple[str, str]]:
    return [(k, _text(v)) for k, v in values.items() if v is not None]


# ---- requests ---------------------------------------------------------------------------------------

_REQUEST_FIELDS = (
    "symbol",
    "timeframe",
    "start_date",
    "end_date",
    "initial_capital",
    "commission",
    "slippage",
    "parameters",
    "name",
)


def request_body(strategy: str | models.SubmitRequest, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of a submit or validate: a `SubmitRequest` as it was built (only the fields that were
    set, so the service's defaults apply to the rest), or strategy code and keyword fields (None: omitted).
    Nothing is validated here: the service's answer (ValidationFailed, per field) is the one truth."""
    if isinstance(strategy, models.SubmitRequest):
        if any(v is not None for v in fields.values()):
            raise TypeError("pass either a SubmitRequest or strategy code with keyword fields, not both")
        return strategy.model_dump(mode="json", exclude_unset=True)
    if not isinstance(strategy, str):
        raise TypeError(f"strategy must be the strategy's code (str) or a SubmitRequest, not {type(strategy).__name__}")
    unknown = set(fields) - set(_REQUEST_FIELDS)
    if unknown:
        raise TypeError(f"unknown request field(s): {', '.join(sorted(unknown))}")
    body: dict[str, Any] = {"strategy_code": strategy}
    for name, value in fields.items():
        if value is not None:
            body[name] = value.isoformat() if isinstance(value, date) else value
    return body


# ---- operations -------------------------------------------------------------------------------------


def health(policy: RetryPolicy) -> Operation[models.HealthResponse]:
    return (yield from _get(models.HealthResponse, "/health", policy))


def symbols(policy: RetryPolicy) -> Operation[models.SymbolsResponse]:
    return (yield from _get(models.SymbolsResponse, f"{API}/market-data/symbols", policy))


def metric_definitions(policy: RetryPolicy) -> Operation[models.MetricDefinitionsResponse]:
    return (yield from _get(models.MetricDefinitionsResponse, f"{API}/performance-metrics/definitions", policy))


def submit(
    body: Mapping[str, Any],
    policy: RetryPolicy,
    *,
    idempotency_key: str | None = None,
    wait: float | None = None,
    read_timeout: float | None = None,
) -> Operation[models.SubmitResponse | models.RunResponse]:
    """POST /run. One key per logical submit (generated unless given), the same on every retry, so a try
    whose answer was lost cannot queue a second job. With `wait`, 200 is the finished job (RunResponse)."""
    key = idempotency_key or str(uuid.uuid4())
    query = []
    if wait is not None:
        if not 0 <= wait <= MAX_WAIT_SECONDS:
            raise ValueError(f"wait must be between 0 and {MAX_WAIT_SECONDS} seconds")
        query = [("wait", _text(wait))]
        read_timeout = max(read_timeout or 0.0, wait + 10.0)
    call = Call(
        "POST",
        f"{API}/run",
        query=query,
        json=dict(body),
        headers={IDEMPOTENCY_HEADER: key},
        read_timeout=read_timeout,
    )
    response = yield from send(call, policy, retry_conflicts=frozenset({"IdempotencyKeyInProgress"}))
    if response.status_code == 200:
        return parse(models.RunResponse, response)
    return parse(models.SubmitResponse, response)


def validate(body: Mapping[str, Any], policy: RetryPolicy) -> Operation[models.ValidateResponse]:
    response = yield from send(Call("POST", f"{API}/validate", json=dict(body)), policy)
    return parse(models.ValidateResponse, response)


def status(execution_id: str, policy: RetryPolicy) -> Operation[models.JobStatus]:
    if not execution_id or not execution_id.strip():
        raise ValueError("an execution id is needed")
    return (yield from _get(models.JobStatus, f"{API}/status/{quote(execution_id, safe='')}", policy))


def _progress_key(job: models.JobStatus) -> tuple[Any, ...]:
    p = job.progress
    return (job.status, job.cancel_requested, p.stage if p else None, p.percent if p else None, p.bars_done if p else 0)


def wait(
    execution_id: str,
    policy: RetryPolicy,
    *,
    timeout: float | None,
    on_progress: Callable[[models.JobStatus], Any] | None = None,
    poll: PollPolicy = PollPolicy(),
    clock: Callable[[], float] = time.monotonic,
) -> Operation[models.JobStatus]:
    """Poll the status until the job is SUCCEEDED, FAILED or CANCELLED and return it (a failed job is
    returned, not raised: its `error` says why). `on_progress(job)` is called with the first status and
    with every one whose status, stage, percent or bars changed. `timeout` None: wait as long as it takes."""
    deadline = None if timeout is None else clock() + timeout
    interval = poll.initial
    seen: tuple[Any, ...] | None = None
    while True:
        job = yield from status(execution_id, policy)
        key = _progress_key(job)
        if on_progress is not None and key != seen:
            yield Notify(on_progress, job)
        seen = key
        if job.status in TERMINAL:
            return job
        remaining = None if deadline is None else deadline - clock()
        if remaining is not None and remaining <= 0:
            raise WaitTimeout(f"backtest {execution_id} is still {job.status} after {timeout:g} s", job=job)
        yield Sleep(interval if remaining is None else min(interval, remaining))
        interval = min(interval * poll.factor, poll.maximum)


def _finished(execution_id: str, policy: RetryPolicy) -> Operation[models.JobStatus]:
    job = yield from status(execution_id, policy)
    if job.status != "SUCCEEDED":
        why = f": {job.error.type}: {job.error.message}" if job.error else ""
        raise NotReady(f"backtest {execution_id} is {job.status}, so it has no results{why}", job=job)
    return job


def _download(url: str, what: str, policy: RetryPolicy) -> Operation[httpx.Response]:
    try:
        return (yield from send(Call("GET", url, authenticated=False), policy))
    except BacktestServiceError as exc:
        if exc.status in (400, 403):  # S3's answer to an expired presigned link
            exc.message = f"the {what} link was refused ({exc.message}); it may have expired: fetch it again"
        raise


def result(execution_id: str, policy: RetryPolicy) -> Operation[dict[str, Any]]:
    """The full result document behind results_url (gzip-encoded: httpx decodes Content-Encoding)."""
    job = yield from _finished(execution_id, policy)
    if not job.results_url:
        raise NotReady(f"backtest {execution_id} has no results_url", job=job)
    response = yield from _download(job.results_url, "results_url", policy)
    document: dict[str, Any] = response.json()
    return document


def report(execution_id: str, policy: RetryPolicy) -> Operation[bytes]:
    """The HTML report behind report_url."""
    job = yield from status(execution_id, policy)
    if not job.report_url:
        state = "it is not SUCCEEDED" if job.status != "SUCCEEDED" else "this deployment writes no report"
        raise NoReport(f"backtest {execution_id} ({job.status}) has no report_url: {state}")
    response = yield from _download(job.report_url, "report_url", policy)
    return response.content


def equity(
    execution_id: str,
    policy: RetryPolicy,
    *,
    points: int | None = None,
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
) -> Operation[models.EquityResponse]:
    query = _query(points=points, start=start, end=end)
    return (yield from _get(models.EquityResponse, job_path(execution_id, "/equity"), policy, query))


def trades_page(
    execution_id: str, policy: RetryPolicy, *, limit: int | None = None, next_token: str | None = None
) -> Operation[models.TradesResponse]:
    query = _query(limit=limit, next_token=next_token)
    return (yield from _get(models.TradesResponse, job_path(execution_id, "/trades"), policy, query))


def trades(execution_id: str, policy: RetryPolicy, *, page_size: int | None = None) -> Operation[None]:
    """Every trade, in exit order, a page at a time (Emit per trade)."""
    token: str | None = None
    while True:
        page = yield from trades_page(execution_id, policy, limit=page_size, next_token=token)
        for trade in page.trades:
            yield Emit(trade)
        if not page.next_token:
            return
        token = page.next_token


def list_page(
    policy: RetryPolicy,
    *,
    limit: int | None = None,
    next_token: str | None = None,
    status: Status | None = None,
    symbol: str | None = None,
    name: str | None = None,
) -> Operation[models.JobList]:
    query = _query(limit=limit, next_token=next_token, status=status, symbol=symbol, name=name)
    return (yield from _get(models.JobList, f"{API}/executions", policy, query))


def list_jobs(
    policy: RetryPolicy,
    *,
    status: Status | None = None,
    symbol: str | None = None,
    name: str | None = None,
    page_size: int | None = None,
    limit: int | None = None,
) -> Operation[None]:
    """The caller's jobs, newest first, filtered (name: a prefix), a page at a time; at most `limit`."""
    token: str | None = None
    emitted = 0
    while True:
        size = page_size if limit is None else min(page_size or MAX_LIST_PAGE, limit - emitted)
        page = yield from list_page(policy, limit=size, next_token=token, status=status, symbol=symbol, name=name)
        for job in page.executions:
            yield Emit(job)
            emitted += 1
            if limit is not None and emitted >= limit:
                return
        if not page.next_token:
            return
        token = page.next_token


def cancel(execution_id: str, policy: RetryPolicy) -> Operation[models.JobStatus]:
    response = yield from send(Call("POST", job_path(execution_id, "/cancel")), policy)
    return parse(models.JobStatus, response)


UNSET: Any = object()  # update(): a field not given stays as it is (None clears it)


def update(
    execution_id: str, policy: RetryPolicy, *, name: Any = UNSET, notes: Any = UNSET
) -> Operation[models.JobStatus]:
    changes = {k: v for k, v in (("name", name), ("notes", notes)) if v is not UNSET}
    response = yield from send(Call("PATCH", job_path(execution_id), json=changes), policy)
    return parse(models.JobStatus, response)


def delete(execution_id: str, policy: RetryPolicy) -> Operation[None]:
    yield from send(Call("DELETE", job_path(execution_id)), policy)
