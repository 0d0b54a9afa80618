"""The optimizations function's use cases (issue 14): submit, estimate, one optimization with its progress and
links, the caller's list, cancel. No numpy: the search is expanded and planned here, never run.

Submit, in order:

1. Every check a backtest submit makes (`submission`: the fields with one 422 entry per field, the code's
   size 413, compiling it under the sandbox policy 400 naming the line), the search's own fields (a condition
   naming an unknown parameter, a constraint on an unknown metric: 422), every value of every parameter
   against what the strategy declares (422 naming `parameters.<name>`), the expansion and its caps
   (`space.combinations`: at most 10,000 combinations: 422 on `parameters`), the folds of a validation (422
   on `validation`), and the estimated work (`optimization_plan.MAX_COMPUTE_SECONDS`: 422 on `parameters`).
   Nothing is stored for a request that fails here; `POST .../estimate` stops after this and answers the plan.
2. The optimization is written QUEUED (a conditional put), with the plan: combinations, chunk size, chunks.
3. One message per chunk goes to the optimization chunks queue. If SQS refuses, the optimization is marked
   FAILED (`QueueUnavailable`; a chunk already queued then finds it FAILED and does nothing) and the caller
   gets 503.

With an `Idempotency-Key` header, steps 2–3 run through powertools idempotency (the submit's configuration:
keyed on the caller and the key), so a retried submit answers the first optimization.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from pydantic import BaseModel, ValidationError

from backtest_engine.catalog import estimate_bars
from backtest_engine.errors import UserInputError
from backtest_engine.models import MAX_CODE_BYTES
from backtest_engine.optimization import space
from backtest_engine.optimization.models import OptimizationRequest, ParameterRange, ParameterValues
from backtest_engine.parameters import declared_parameters, parameter_problems
from backtest_engine.sandbox import compile_strategy
from backtest_service import clients, routes
from backtest_service.errors import CodeTooLarge, RequestInvalid, invalid_from_errors
from backtest_service.job_queue import ChunkMessage
from backtest_service.jobs import Status, queued_fields, utc_now
from backtest_service.observability import MetricUnit, logger, metrics
from backtest_service.optimization_models import (
    BestCombination,
    FailedCombination,
    OptimizationEstimate,
    OptimizationList,
    OptimizationProgress,
    OptimizationStatus,
    OptimizationSubmitResponse,
    OptimizationSummary,
    ranked,
)
from backtest_service.optimization_plan import MAX_COMPUTE_SECONDS, Plan, make_plan
from backtest_service.optimization_queue import ChunkQueue, default_chunk_queue
from backtest_service.optimization_results import OptimizationResults, default_optimization_results
from backtest_service.optimization_store import OptimizationStore, default_optimization_store
from backtest_service.optimizations import OptimizationRecord
from backtest_service.settings import Settings, get_settings
from backtest_service.submission import IDEMPOTENCY_CONFIG, _not_unicode_text, enqueue_or_fail

DEFAULT_PAGE_SIZE = 20


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, eq=False)
class OptimizationDeps:
    settings: Settings
    store: OptimizationStore
    results: OptimizationResults
    queue: ChunkQueue
    idempotency: BasePersistenceLayer | None = None
    clock: Callable[[], datetime] = utc_now
    new_id: Callable[[], str] = _new_id
    _idempotent: dict[str, Callable[..., Any]] = field(default_factory=dict, repr=False)


@cache
def default_deps() -> OptimizationDeps:
    settings = get_settings()
    return OptimizationDeps(
        settings=settings,
        store=default_optimization_store(),
        results=default_optimization_results(),
        queue=default_chunk_queue(),
        idempotency=DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=clients.dynamodb()),
    )


# ---- checks and the plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    request: OptimizationRequest
    style: str
    grid_points: int
    plan: Plan


def _validated(body: BaseModel | Mapping[str, Any], *, max_bars: int) -> OptimizationRequest:
    data = body.model_dump(mode="json") if isinstance(body, BaseModel) else dict(body)
    if (where := _not_unicode_text(data)) is not None:
        raise RequestInvalid(
            f"{where} contains a lone surrogate (\\ud800-\\udfff), which is not Unicode text; remove it", field=where
        )
    code = data.get("strategy_code")
    if isinstance(code, str) and (size := len(code.encode("utf-8"))) > MAX_CODE_BYTES:
        raise CodeTooLarge(
            f"strategy_code is {size:,} bytes; the limit is {MAX_CODE_BYTES:,} bytes (64 KiB): "
            "remove unused code or move data into parameters",
            field="strategy_code",
        )
    try:
        return OptimizationRequest.model_validate(data, context={"max_bars": max_bars})
    except ValidationError as exc:
        raise invalid_from_errors(exc.errors()) from None


def _parameter_problems(request: OptimizationRequest) -> list[tuple[str, str]]:
    """Every parameter value the search would pass (fixed ones and each space's values) against what the
    strategy declares: the first refused value of each parameter."""
    declared = declared_parameters(request.strategy_code)
    problems: list[tuple[str, str]] = []
    for name, value in request.parameters.items():
        values = value.expand() if isinstance(value, (ParameterRange, ParameterValues)) else [value]
        for v in dict.fromkeys(values):  # each distinct value once
            found = parameter_problems(declared, {name: v})
            if found:
                problems.append(found[0])
                break
    return problems


def check_optimization(body: BaseModel | Mapping[str, Any], *, settings: Settings) -> Checked:
    """Every check of a submitted optimization (the module docstring's step 1) and its plan."""
    request = _validated(body, max_bars=settings.max_bars)
    if getattr(request, "dataset_id", None):
        # The chunk runner generates the catalog's bars; reading a caller's dataset there is not built yet.
        raise RequestInvalid(
            "optimizations run on the catalog's symbols only for now; give symbol instead of dataset_id",
            field="dataset_id",
        )
    strategy = compile_strategy(request.strategy_code)  # StrategyCompileError(line=...) → 400
    problems = _parameter_problems(request)
    if problems:
        raise RequestInvalid(
            "; ".join(message for _, message in problems),
            field=problems[0][0],
            errors=[{"field": where, "message": message} for where, message in problems],
        )
    try:
        combos = space.combinations(request)
    except UserInputError as exc:
        field = "conditions" if request.conditions and "conditions" in exc.message else "parameters"
        raise RequestInvalid(exc.message, field=field) from None
    bars = estimate_bars(request.symbol, request.timeframe, request.start_date, request.end_date)
    try:
        plan = make_plan(
            request,
            combinations=len(combos),
            bars=bars,
            style="event" if strategy.style == "event" else "vectorized",
            chunk_seconds=settings.optimization_chunk_seconds,
        )
    except UserInputError as exc:
        raise RequestInvalid(exc.message, field="validation") from None
    if plan.work_seconds > MAX_COMPUTE_SECONDS:
        hours = plan.work_seconds / 3600
        raise RequestInvalid(
            f"{len(combos):,} combinations × {len(plan.sweeps)} sweep(s) of {bars:,} bars are about {hours:,.1f} "
            f"hours of compute; at most {MAX_COMPUTE_SECONDS / 3600:g}: fewer combinations (larger steps, method "
            "random with samples), a shorter range or a longer timeframe",
            field="parameters",
        )
    return Checked(request=request, style=plan.style, grid_points=space.grid_size(request), plan=plan)


def estimate(body: BaseModel | Mapping[str, Any], *, settings: Settings | None = None) -> OptimizationEstimate:
    """`POST .../estimate`: the checks and the plan, nothing stored or queued."""
    checked = check_optimization(body, settings=settings or get_settings())
    plan = checked.plan
    return OptimizationEstimate(
        combinations=plan.combinations,
        grid_points=checked.grid_points,
        chunks=plan.chunks,
        chunk_size=plan.chunk_size,
        bars=plan.bars,
        sweeps=len(plan.sweeps),
        style=plan.style,
        seconds_per_combination=round(plan.seconds_per_combination, 6),
        estimated_seconds=round(plan.estimated_seconds, 1),
        lambda_seconds=round(plan.lambda_seconds, 1),
        lambda_gb_seconds=round(plan.lambda_gb_seconds, 1),
        max_concurrency=plan.max_concurrency,
    )


# ---- submit -----------------------------------------------------------------------------------------------


def submit_optimization(
    body: BaseModel | Mapping[str, Any],
    *,
    owner: str,
    idempotency_key: str | None = None,
    deps: OptimizationDeps | None = None,
) -> OptimizationSubmitResponse:
    """Check, store and queue one optimization for `owner`; the 202 answer (status_url relative)."""
    deps = deps or default_deps()
    checked = check_optimization(body, settings=deps.settings)
    if idempotency_key is None or deps.idempotency is None:
        return create_optimization(checked, owner, deps)
    first = _idempotent_create(deps)(
        idempotency={"owner": owner, "key": idempotency_key, "request": checked.request.model_dump(mode="json")},
        checked=checked,
    )
    return OptimizationSubmitResponse.model_validate(first)


def _idempotent_create(deps: OptimizationDeps) -> Callable[..., Any]:
    if "create" not in deps._idempotent:
        assert deps.idempotency is not None

        @idempotent_function(
            data_keyword_argument="idempotency",
            persistence_store=deps.idempotency,
            config=IDEMPOTENCY_CONFIG,
            key_prefix="optimize",
        )
        def create(*, idempotency: dict[str, Any], checked: Checked) -> dict[str, Any]:
            return create_optimization(checked, idempotency["owner"], deps).model_dump(mode="json")

        deps._idempotent["create"] = create
    return deps._idempotent["create"]


def create_optimization(checked: Checked, owner: str, deps: OptimizationDeps) -> OptimizationSubmitResponse:
    """Store the QUEUED optimization and queue its chunks (steps 2–3)."""
    request, plan = checked.request, checked.plan
    now = deps.clock()
    optimization_id = deps.new_id()
    logger.append_keys(optimization_id=optimization_id)
    record = OptimizationRecord(
        optimization_id=optimization_id,
        **queued_fields(request, owner, now, deps.settings.job_ttl_days),
        style=plan.style,
        bars=plan.bars,
        method=request.method,
        target=request.target,
        direction=request.direction or "max",
        top_k=request.top_k,
        combinations=plan.combinations,
        grid_points=checked.grid_points,
        chunks=plan.chunks,
        chunk_size=plan.chunk_size,
        estimated_seconds=round(plan.estimated_seconds, 1),
    )
    deps.store.put_queued(record)
    enqueue_or_fail(
        lambda: deps.queue.send_all([ChunkMessage(optimization_id, n) for n in range(plan.chunks)]),
        lambda error: deps.store.mark_failed(optimization_id, error),
        "optimization",
    )
    metrics.add_metric(name="OptimizationsSubmitted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="OptimizationChunksQueued", unit=MetricUnit.Count, value=plan.chunks)
    logger.info("optimization queued", extra={"combinations": plan.combinations, "chunks": plan.chunks})
    return OptimizationSubmitResponse(
        optimization_id=optimization_id,
        status_url=routes.GET_OPTIMIZATION.path.format(optimization_id=optimization_id),
        combinations=plan.combinations,
        chunks=plan.chunks,
        chunk_size=plan.chunk_size,
        estimated_seconds=round(plan.estimated_seconds, 1),
    )


# ---- reads and cancel ----------------------------------------------------------------------------------------


def _error(record: OptimizationRecord) -> Any:
    return record.error or None


def _sweeps(record: OptimizationRecord) -> int:
    validation = record.request.get("validation")
    if not validation:
        return 1
    return 1 + (1 if validation.get("kind") == "holdout" else int(validation.get("windows", 4)))


def optimization_status(
    record: OptimizationRecord, *, base_url: str, deps: OptimizationDeps, with_chunks: bool = True
) -> OptimizationStatus:
    """The owner's view of `record`: progress (summing running chunks' own when RUNNING), the top K so far,
    and once SUCCEEDED the presigned table links."""
    running, partial = 0, 0
    if with_chunks and record.status is Status.RUNNING:
        sweeps = _sweeps(record)
        for chunk in deps.store.chunks(record.optimization_id):
            if chunk.status is Status.RUNNING and chunk.chunk not in record.counted:
                running += 1
                partial += int((chunk.progress or {}).get("done", 0)) // sweeps
    dead = len(record.dead_chunks - record.counted)
    done = record.combinations_done + partial
    if record.status is Status.SUCCEEDED:
        done = record.combinations
    percent = 100.0 * done / record.combinations if record.combinations else 0.0
    request = record.request
    links: dict[str, Any] = {
        "status_url": routes.GET_OPTIMIZATION.url(base_url, optimization_id=record.optimization_id)
    }
    if record.status is Status.SUCCEEDED and record.table_json_key and record.table_csv_key:
        links.update(
            table_json_url=deps.results.presigned_url(record.table_json_key),
            table_csv_url=deps.results.presigned_url(record.table_csv_key),
            table_urls_expire_in=deps.results.url_ttl_seconds,
        )
    best = record.best or (record.top[0] if record.top else None)
    return OptimizationStatus.model_validate(
        {
            **record.model_dump(
                include={
                    "optimization_id",
                    "status",
                    "name",
                    "symbol",
                    "timeframe",
                    "start_date",
                    "end_date",
                    "created_at",
                    "started_at",
                    "finished_at",
                    "method",
                    "target",
                    "direction",
                    "top_k",
                    "combinations",
                    "chunks",
                    "chunk_size",
                    "estimated_seconds",
                    "windows",
                    "stitched_out_of_sample_metrics",
                }
            ),
            **links,
            "parameters": request.get("parameters") or {},
            "conditions": request.get("conditions") or [],
            "constraints": request.get("constraints") or [],
            "validation": request.get("validation"),
            "progress": OptimizationProgress(
                combinations_done=min(done, record.combinations),
                combinations_total=record.combinations,
                chunks_done=len(record.counted) if record.status is not Status.SUCCEEDED else record.chunks,
                chunks_total=record.chunks,
                chunks_running=running,
                chunks_dead_lettered=dead,
                percent=round(min(percent, 100.0), 1),
            ),
            "succeeded": record.combinations_done - record.combinations_failed,
            "failed": record.combinations_failed,
            "feasible": record.combinations_feasible,
            "best": BestCombination.model_validate(best) if best else None,
            "top": ranked(record.top),
            "failed_examples": [FailedCombination.model_validate(e) for e in record.failed_examples],
            "cancel_requested": record.cancel_requested_at is not None and not record.status.terminal,
            "error": _error(record),
        }
    )


def get_optimization(
    optimization_id: str, *, owner: str, base_url: str, deps: OptimizationDeps | None = None
) -> OptimizationStatus:
    """The caller's optimization; `OptimizationNotFound` (404) for an unknown or foreign id."""
    deps = deps or default_deps()
    return optimization_status(deps.store.get_for_owner(optimization_id, owner), base_url=base_url, deps=deps)


def list_optimizations(
    *,
    owner: str,
    base_url: str,
    limit: int = DEFAULT_PAGE_SIZE,
    next_token: str | None = None,
    status: Status | None = None,
    deps: OptimizationDeps | None = None,
) -> OptimizationList:
    """A page of the caller's optimizations, newest first."""
    deps = deps or default_deps()
    records, token = deps.store.list_for_owner(owner, limit=limit, next_token=next_token, status=status)
    return OptimizationList(
        optimizations=[
            OptimizationSummary(
                optimization_id=r.optimization_id,
                status=r.status,
                name=r.name,
                symbol=r.symbol,
                timeframe=r.timeframe,
                start_date=r.start_date,
                end_date=r.end_date,
                created_at=r.created_at,
                started_at=r.started_at,
                finished_at=r.finished_at,
                method=r.method,
                target=r.target,
                direction=r.direction,
                combinations=r.combinations,
                chunks=r.chunks,
                combinations_done=r.combinations if r.status is Status.SUCCEEDED else r.combinations_done,
                failed=r.combinations_failed,
                best=BestCombination.model_validate(r.top[0]) if r.top else None,
                error=r.error or None,
                status_url=routes.GET_OPTIMIZATION.url(base_url, optimization_id=r.optimization_id),
            )
            for r in records
        ],
        next_token=token,
    )


def cancel_optimization(
    optimization_id: str, *, owner: str, base_url: str, deps: OptimizationDeps | None = None
) -> OptimizationStatus:
    """Cancel the caller's optimization (idempotent): CANCELLED at once; its queued chunks never run and its
    running ones stop within about a second. A finished one is answered as it is."""
    deps = deps or default_deps()
    record = deps.store.request_cancel(optimization_id, owner)
    if record.status is Status.CANCELLED:
        metrics.add_metric(name="OptimizationsCancelled", unit=MetricUnit.Count, value=1)
    logger.info("optimization cancel requested", extra={"status": record.status})
    return optimization_status(record, base_url=base_url, deps=deps)
