"""The caller's jobs: GET /api/backtest/status/{id}, GET /api/backtest/executions, and their management
(POST .../executions/{id}/cancel, PATCH and DELETE .../executions/{id})."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from backtest_service import queries, routes, topology
from backtest_service.api_models import JobList, JobStatus, UpdateRequest
from backtest_service.job_store import MAX_PAGE_SIZE, ListFilters
from backtest_service.jobs import Status
from backtest_service.links import api_base_url
from backtest_service.observability import logger, metrics, tracer
from backtest_service.rest import create_resolver, current_caller, responses
from backtest_service.settings import get_settings

settings = get_settings()  # cold start: a misconfigured function fails here, naming the variable
app = create_resolver(topology.STATUS)


def _base_url() -> str:
    return api_base_url(app.current_event.raw_event, settings.public_base_url)


@app.serve(
    routes.GET_STATUS,
    summary="One backtest: status, progress, summary metrics and links to its curve, trades, result and report",
    responses=responses(200, "The job; its result links once SUCCEEDED", 401, 404, 503),
    tags=["backtests"],
)
@tracer.capture_method
def get_status(execution_id: str) -> JobStatus:  # any id that is not the caller's job is a 404
    logger.append_keys(execution_id=execution_id)
    return queries.get_job(execution_id, owner=current_caller(app).owner, base_url=_base_url())


@app.serve(
    routes.LIST_EXECUTIONS,
    summary="The caller's backtests, newest first, with their parameters and headline metrics",
    responses=responses(200, "A page of jobs and the next page's token", 400, 401, 503),
    tags=["backtests"],
)
@tracer.capture_method
def list_executions(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size.")] = queries.DEFAULT_PAGE_SIZE,
    next_token: Annotated[str | None, Query(max_length=1024, description="From the previous page.")] = None,
    status: Annotated[Status | None, Query(description="Only jobs in this status.")] = None,
    symbol: Annotated[str | None, Query(min_length=1, max_length=32, description="Only jobs of this symbol.")] = None,
    name: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Only jobs whose name starts with this.")
    ] = None,
) -> JobList:
    filters = ListFilters(status=status, symbol=symbol.strip().upper() if symbol else None, name_prefix=name)
    return queries.list_jobs(
        owner=current_caller(app).owner, base_url=_base_url(), limit=limit, next_token=next_token, filters=filters
    )


@app.serve(
    routes.CANCEL_EXECUTION,
    summary="Cancel a backtest",
    description=(
        "A QUEUED job is CANCELLED at once and never runs; a RUNNING one answers with cancel_requested and "
        "its runner stops the strategy within about a second (poll status_url until CANCELLED). Idempotent: "
        "a finished job is answered as it is."
    ),
    responses=responses(200, "The job after the request", 401, 404, 503),
    tags=["backtests"],
)
@tracer.capture_method
def cancel_execution(execution_id: str) -> JobStatus:
    logger.append_keys(execution_id=execution_id)
    return queries.cancel_job(execution_id, owner=current_caller(app).owner, base_url=_base_url())


@app.serve(
    routes.UPDATE_EXECUTION,
    summary="Rename a backtest or change its notes",
    responses=responses(200, "The job after the change", 400, 401, 404, 415, 503),
    tags=["backtests"],
)
@tracer.capture_method
def update_execution(execution_id: str, changes: Annotated[UpdateRequest, Body()]) -> JobStatus:
    logger.append_keys(execution_id=execution_id)
    fields = {name: getattr(changes, name) for name in changes.model_fields_set}
    return queries.update_job(execution_id, fields, owner=current_caller(app).owner, base_url=_base_url())


@app.serve(
    routes.DELETE_EXECUTION,
    summary="Delete a backtest and everything stored for it (a running one is stopped)",
    responses=responses(204, "Deleted", 401, 404, 503),
    tags=["backtests"],
)
@tracer.capture_method
def delete_execution(execution_id: str) -> Response[None]:
    logger.append_keys(execution_id=execution_id)
    queries.delete_job(execution_id, owner=current_caller(app).owner)
    return Response(204, None, None)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
