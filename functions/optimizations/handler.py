"""Parameter optimizations (issue 14): POST /api/backtest/optimizations (check, plan, fan out into chunks),
POST .../optimizations/estimate (the plan, nothing stored), GET .../optimizations (the caller's),
GET .../optimizations/{id} (progress, the top K so far, the table's links once done) and
POST .../optimizations/{id}/cancel."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from backtest_service import optimization_service, routes, submission, topology
from backtest_service.jobs import Status
from backtest_service.links import api_base_url
from backtest_service.observability import logger, metrics, tracer
from backtest_service.optimization_models import (
    OptimizationEstimate,
    OptimizationList,
    OptimizationStatus,
    OptimizationSubmitRequest,
    OptimizationSubmitResponse,
)
from backtest_service.optimization_store import MAX_PAGE_SIZE
from backtest_service.rest import IDEMPOTENCY_HEADER, create_resolver, current_caller, responses
from backtest_service.settings import get_settings

settings = get_settings()  # cold start: a misconfigured function fails here, naming the variable
app = create_resolver(topology.OPTIMIZATIONS, idempotency=True)


def _base_url() -> str:
    return api_base_url(app.current_event.raw_event, settings.public_base_url)


@app.serve(
    routes.SUBMIT_OPTIMIZATION,
    summary="Submit a parameter optimization",
    description=(
        "Checks the backtest fields and the search (one 422 entry per bad field; at most 10,000 combinations "
        "and about 4 hours of estimated compute), cuts the combinations into chunks of about a minute of work "
        "each, queues them and answers 202 at once; poll status_url (absolute, also the Location header). "
        "Send an Idempotency-Key header to retry safely."
    ),
    responses=responses(202, "Queued", 400, 401, 409, 413, 415, 503),
    tags=["optimizations"],
)
@tracer.capture_method
def submit(
    request: Annotated[OptimizationSubmitRequest, Body()],
    idempotency_key: Annotated[str | None, Header(alias=IDEMPOTENCY_HEADER, min_length=1, max_length=255)] = None,
) -> Response[OptimizationSubmitResponse]:
    owner = current_caller(app).owner
    queued = optimization_service.submit_optimization(request, owner=owner, idempotency_key=idempotency_key)
    status_url = routes.GET_OPTIMIZATION.url(_base_url(), optimization_id=queued.optimization_id)
    answer = queued.model_copy(update={"status_url": status_url})
    return Response(202, content_types.APPLICATION_JSON, body=answer, headers={"Location": status_url})


@app.serve(
    routes.ESTIMATE_OPTIMIZATION,
    summary="What an optimization would cost: combinations, chunks, runtime and Lambda-seconds",
    description="Every check of POST /optimizations, then the plan; nothing is stored or queued.",
    responses=responses(200, "The plan", 400, 401, 413, 415),
    tags=["optimizations"],
)
@tracer.capture_method
def estimate(request: Annotated[OptimizationSubmitRequest, Body()]) -> OptimizationEstimate:
    current_caller(app)
    return optimization_service.estimate(request, settings=settings)


@app.serve(
    routes.LIST_OPTIMIZATIONS,
    summary="The caller's optimizations, newest first, with their progress and best so far",
    responses=responses(200, "A page of optimizations and the next page's token", 400, 401, 503),
    tags=["optimizations"],
)
@tracer.capture_method
def list_optimizations(
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size.")
    ] = optimization_service.DEFAULT_PAGE_SIZE,
    next_token: Annotated[str | None, Query(max_length=1024, description="From the previous page.")] = None,
    status: Annotated[Status | None, Query(description="Only optimizations in this status.")] = None,
) -> OptimizationList:
    return optimization_service.list_optimizations(
        owner=current_caller(app).owner, base_url=_base_url(), limit=limit, next_token=next_token, status=status
    )


@app.serve(
    routes.GET_OPTIMIZATION,
    summary="One optimization: progress, the best and the top K so far, failures, walk-forward windows, table links",
    responses=responses(200, "The optimization; its table's links once SUCCEEDED", 401, 404, 503),
    tags=["optimizations"],
)
@tracer.capture_method
def get_optimization(optimization_id: str) -> OptimizationStatus:
    logger.append_keys(optimization_id=optimization_id)
    return optimization_service.get_optimization(optimization_id, owner=current_caller(app).owner, base_url=_base_url())


@app.serve(
    routes.CANCEL_OPTIMIZATION,
    summary="Cancel an optimization",
    description=(
        "CANCELLED at once: its queued chunks never run and its running chunks stop within about a second (the "
        "best so far stays readable). Idempotent: a finished optimization is answered as it is."
    ),
    responses=responses(200, "The optimization after the request", 401, 404, 503),
    tags=["optimizations"],
)
@tracer.capture_method
def cancel_optimization(optimization_id: str) -> OptimizationStatus:
    logger.append_keys(optimization_id=optimization_id)
    return optimization_service.cancel_optimization(
        optimization_id, owner=current_caller(app).owner, base_url=_base_url()
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    submission.register_lambda_context(context)
    return app.resolve(event, context)
