"""GET /api/backtest/status/{execution_id} and GET /api/backtest/executions: the caller's jobs."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from backtest_service import queries, routes, topology
from backtest_service.api_models import JobList, JobStatus
from backtest_service.job_store import MAX_PAGE_SIZE
from backtest_service.observability import logger, metrics, tracer
from backtest_service.rest import create_resolver, current_caller, responses
from backtest_service.settings import get_settings

settings = get_settings()  # cold start: a misconfigured function fails here, naming the variable
app = create_resolver(topology.STATUS)


@app.serve(
    routes.GET_STATUS,
    summary="One backtest: status, summary metrics and a link to the full result",
    responses=responses(200, "The job; results_url once SUCCEEDED", 401, 404, 503),
    tags=["backtests"],
)
@tracer.capture_method
def get_status(execution_id: str) -> JobStatus:  # any id that is not the caller's job is a 404
    logger.append_keys(execution_id=execution_id)
    return queries.get_job(execution_id, owner=current_caller(app).owner)


@app.serve(
    routes.LIST_EXECUTIONS,
    summary="The caller's backtests, newest first",
    responses=responses(200, "A page of jobs and the next page's token", 400, 401, 503),
    tags=["backtests"],
)
@tracer.capture_method
def list_executions(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size.")] = queries.DEFAULT_PAGE_SIZE,
    next_token: Annotated[str | None, Query(max_length=1024, description="From the previous page.")] = None,
) -> JobList:
    return queries.list_jobs(owner=current_caller(app).owner, limit=limit, next_token=next_token)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
