"""Submit a backtest: validate → compile-check → store the QUEUED job → queue its id → 202.

Order and failure semantics:

1. The body is validated with the deployment's limits: code over 64 KiB → 413, dates reversed or
   outside the history, more bars than `MAX_BARS` → 422 naming the field.
2. The strategy is compiled under the sandbox policy (no run): a syntax or policy error → 400 with
   its line. Nothing is stored for a request that fails here.
3. Fairness: a caller with `MAX_ACTIVE_JOBS` jobs QUEUED or RUNNING gets 429 with Retry-After (counted on
   the sparse index of active jobs). Then the job is written QUEUED with a conditional put (a fresh uuid4
   never collides; the condition makes that a guarantee).
4. Its id is sent to the jobs queue. If SQS refuses, the job is marked FAILED (`QueueUnavailable`)
   so no QUEUED job is left without a message, and the caller gets 503 with a retry message. (If
   that write fails as well, the job stays QUEUED until its TTL; the error is logged.)

With an `Idempotency-Key` header, steps 3–4 run through powertools idempotency keyed on the caller
and the key: a retry returns the first answer and creates no second job; a failed attempt (503) is
not remembered, so retrying with the same key tries again. The same key with a different body → 422.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ValidationError

from backtest_engine.catalog import estimate_bars
from backtest_engine.models import MAX_CODE_BYTES, BacktestRequest
from backtest_engine.parameters import Declared, declared_parameters, effective_parameters, parameter_problems
from backtest_engine.sandbox import compile_strategy
from backtest_service import clients, datasets
from backtest_service.api_models import SubmitResponse, ValidateResponse
from backtest_service.errors import CodeTooLarge, QueueUnavailable, RequestInvalid, TooManyJobs, invalid_from_errors
from backtest_service.job_queue import JobQueue, default_job_queue
from backtest_service.job_store import JobStore, default_job_store
from backtest_service.jobs import QUEUE_UNAVAILABLE, JobRecord, queued_fields, utc_now
from backtest_service.observability import MetricUnit, count_failure, logger, metrics
from backtest_service.routes import GET_STATUS
from backtest_service.settings import Settings, get_settings
from backtest_service.topology import THROTTLED_RETRY_AFTER_SECONDS

# `?wait=`: how often the job is read while waiting for it (after a quicker start).
WAIT_POLL_SECONDS = 0.5

# An Idempotency-Key is remembered this long; the caller's retry window.
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
IDEMPOTENCY_CONFIG = IdempotencyConfig(
    event_key_jmespath="[owner, key]",
    payload_validation_jmespath="request",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
)


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, eq=False)
class SubmitDeps:
    """What submitting talks to; tests inject failing ones."""

    settings: Settings
    jobs: JobStore
    queue: JobQueue
    idempotency: BasePersistenceLayer
    clock: Callable[[], datetime] = utc_now
    new_id: Callable[[], str] = _new_id
    _idempotent: dict[str, Callable[..., Any]] = field(default_factory=dict, repr=False)


@cache
def default_deps() -> SubmitDeps:
    settings = get_settings()
    return SubmitDeps(
        settings=settings,
        jobs=default_job_store(),
        queue=default_job_queue(),
        idempotency=DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=clients.dynamodb()),
    )


def register_lambda_context(context: Any) -> None:
    """Lets idempotency expire an in-progress record when the invocation times out."""
    IDEMPOTENCY_CONFIG.register_lambda_context(context)


def validate_request(body: BaseModel | Mapping[str, Any], *, max_bars: int) -> BacktestRequest:
    """The request with every check of `BacktestRequest` under this deployment's bar cap."""
    # exclude_unset: the request knows which fields the caller gave (a dataset's own dates apply otherwise)
    data = body.model_dump(exclude_unset=True) if isinstance(body, BaseModel) else dict(body)
    if (where := _not_unicode_text(data)) is not None:  # DynamoDB stores UTF-8: refuse, never a 5xx
        raise RequestInvalid(
            f"{where} contains a lone surrogate (\\ud800-\\udfff), which is not Unicode text; remove it",
            field=where,
        )
    code = data.get("strategy_code")
    if isinstance(code, str) and (size := len(code.encode("utf-8"))) > MAX_CODE_BYTES:
        raise CodeTooLarge(
            f"strategy_code is {size:,} bytes; the limit is {MAX_CODE_BYTES:,} bytes (64 KiB): "
            "remove unused code or move data into parameters",
            field="strategy_code",
        )
    try:
        return BacktestRequest.model_validate(data, context={"max_bars": max_bars})
    except ValidationError as exc:
        raise invalid_from_errors(exc.errors()) from None


def _not_unicode_text(value: Any, where: str = "") -> str | None:
    """The dotted field of the first string (key or value) that cannot be encoded as UTF-8, or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where or "body"
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _not_unicode_text(key) is not None:
                return where or "body"
            found = _not_unicode_text(item, f"{where}.{key}" if where else str(key))
            if found is not None:
                return found
    return None


@dataclass(frozen=True)
class Checked:
    """A submission that passed every check: the request, the strategy's style and what it declares."""

    request: BacktestRequest
    style: str
    declared: Declared


def check_submission(body: BaseModel | Mapping[str, Any], *, max_bars: int) -> Checked:
    """Every check a submission gets before anything is stored: the request's fields (422, one entry per
    field), the code's size (413), compiling it under the sandbox policy (400 naming the line), and the
    parameters against what the strategy declares (422 naming `parameters.<name>`)."""
    request = validate_request(body, max_bars=max_bars)
    strategy = compile_strategy(request.strategy_code)  # StrategyCompileError(line=...) → 400
    declared = declared_parameters(request.strategy_code)
    problems = parameter_problems(declared, dict(request.parameters))
    if problems:
        raise RequestInvalid(
            "; ".join(message for _, message in problems),
            field=problems[0][0],
            errors=[{"field": where, "message": message} for where, message in problems],
        )
    return Checked(request=request, style=strategy.style, declared=declared)


def validate_backtest(
    body: BaseModel | Mapping[str, Any], *, deps: SubmitDeps | None = None, owner: str | None = None
) -> ValidateResponse:
    """`POST /validate`: what `POST /run` would check, and nothing stored or queued."""
    settings = deps.settings if deps is not None else get_settings()
    checked = check_submission(body, max_bars=settings.max_bars)
    request = checked.request
    if request.dataset_id is not None:  # the caller's READY dataset (422 otherwise); its rows bound the bars
        request = datasets.resolve_request(request, owner or "")
        estimated = datasets.dataset_rows(request.dataset_id or "", owner or "")
    else:
        estimated = estimate_bars(request.symbol, request.timeframe, request.start_date, request.end_date)
    return ValidateResponse(
        style=checked.style,
        estimated_bars=estimated,
        parameters=effective_parameters(checked.declared, dict(request.parameters)),
        declared_parameters=checked.declared.types,
    )


def submit_backtest(
    body: BaseModel | Mapping[str, Any],
    *,
    owner: str,
    idempotency_key: str | None = None,
    deps: SubmitDeps | None = None,
) -> SubmitResponse:
    """Validate, compile-check, store and queue one backtest for `owner`; the 202 answer."""
    deps = deps or default_deps()
    request = check_submission(body, max_bars=deps.settings.max_bars).request
    request = datasets.resolve_request(request, owner)  # dataset_id: the caller's READY dataset, else 422
    if idempotency_key is None:
        return create_job(request, owner, deps)
    first_answer = _idempotent_create(deps)(
        idempotency={"owner": owner, "key": idempotency_key, "request": request.model_dump(mode="json")},
        request=request,
    )
    return SubmitResponse.model_validate(first_answer)


def wait_for_job(
    execution_id: str,
    *,
    owner: str,
    seconds: float,
    jobs: JobStore | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> JobRecord | None:
    """The job once it is terminal, if that happens within `seconds`; else None (the caller answers 202).
    Polls the job record (a consistent read) every `WAIT_POLL_SECONDS`, more often at first: most small jobs
    end within a second."""
    jobs = jobs or default_job_store()
    deadline = monotonic() + seconds
    delay = 0.1
    while True:
        job = jobs.get_for_owner(execution_id, owner)
        if job.status.terminal:
            return job
        left = deadline - monotonic()
        if left <= 0:
            return None
        sleep(min(delay, left))
        delay = min(delay * 2, WAIT_POLL_SECONDS)


def _idempotent_create(deps: SubmitDeps) -> Callable[..., Any]:
    """`create_job` behind powertools idempotency, built once per `deps` (it needs their store)."""
    if "create" not in deps._idempotent:

        @idempotent_function(
            data_keyword_argument="idempotency",
            persistence_store=deps.idempotency,
            config=IDEMPOTENCY_CONFIG,
            key_prefix="submit",
        )
        def create(*, idempotency: dict[str, Any], request: BacktestRequest) -> dict[str, Any]:
            return create_job(request, idempotency["owner"], deps).model_dump(mode="json")

        deps._idempotent["create"] = create
    return deps._idempotent["create"]


def check_capacity(owner: str, deps: SubmitDeps) -> None:
    """Fairness: `TooManyJobs` (429, Retry-After) when `owner` already has `max_active_jobs` jobs QUEUED or
    RUNNING; the caller's next job gets through as soon as one of them ends."""
    limit = deps.settings.max_active_jobs
    if deps.jobs.count_active(owner, at_most=limit) >= limit:
        metrics.add_metric(name="SubmissionsThrottled", unit=MetricUnit.Count, value=1)
        logger.info("caller at its limit of active jobs", extra={"limit": limit, "owner": owner})
        raise TooManyJobs(
            f"you already have {limit} backtests queued or running, the most this service runs at once for one "
            f"caller; submit again when one has finished (or cancel one)",
            retry_after=THROTTLED_RETRY_AFTER_SECONDS,
        )


def create_job(request: BacktestRequest, owner: str, deps: SubmitDeps) -> SubmitResponse:
    """Store the QUEUED job and queue it (steps 3–4 above), if the caller is within its limit."""
    check_capacity(owner, deps)
    now = deps.clock()
    execution_id = deps.new_id()
    logger.append_keys(execution_id=execution_id)
    record = JobRecord(
        execution_id=execution_id,
        **queued_fields(request, owner, now, deps.settings.job_ttl_days),
    )
    deps.jobs.put_queued(record)
    enqueue_or_fail(lambda: deps.queue.send(execution_id), lambda e: deps.jobs.mark_failed(execution_id, e), "backtest")
    metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
    logger.info("backtest queued", extra={"symbol": request.symbol, "timeframe": request.timeframe})
    return SubmitResponse(execution_id=execution_id, status_url=GET_STATUS.path.format(execution_id=execution_id))


def enqueue_or_fail(send: Callable[[], object], mark_failed: Callable[[dict[str, Any]], object], what: str) -> None:
    """Queue a just-recorded QUEUED `what` (a backtest, an optimization) with `send`. When the queue refuses,
    nothing will ever run it: the record is marked FAILED (so it is not left QUEUED until its TTL) and the
    caller gets `QueueUnavailable` (503), to retry."""
    try:
        send()
    except (ClientError, BotoCoreError) as exc:
        logger.exception(f"the queue refused the {what}; marking it FAILED")
        error = {
            "type": QUEUE_UNAVAILABLE,
            "message": f"the queue did not accept this {what}, so it never ran; submit it again",
        }
        try:
            mark_failed(error)
        except (ClientError, BotoCoreError):
            logger.exception(f"could not mark the {what} FAILED; it stays QUEUED until its TTL")
        count_failure(QUEUE_UNAVAILABLE)
        raise QueueUnavailable(
            f"the queue is unavailable, so the {what} was not started (nothing will run); "
            "retry the request in a few seconds"
        ) from exc
