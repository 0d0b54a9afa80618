"""POST /api/backtest/run: validate, compile-check, store and queue a backtest; 202 with its id (or, with
?wait=S, the finished job itself when it ends within S seconds). POST /api/backtest/validate: the same
checks, nothing stored."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from backtest_service import queries, routes, submission, topology
from backtest_service.api_models import RunResponse, SubmitRequest, SubmitResponse, ValidateResponse
from backtest_service.jobs import Status
from backtest_service.links import api_base_url
from backtest_service.observability import logger, metrics, tracer
from backtest_service.rest import IDEMPOTENCY_HEADER, create_resolver, current_caller, responses
from backtest_service.settings import get_settings

settings = get_settings()  # cold start: a misconfigured function fails here, naming the variable
app = create_resolver(topology.SUBMIT, idempotency=True)

_FINISHED: dict[int | str, Any] = {
    200: {
        "description": "With ?wait=: the job ended within the wait (the seed API's synchronous answer)",
        "content": {content_types.APPLICATION_JSON: {"model": RunResponse}},
    },
    202: {
        "description": "Queued (or still running after the wait): poll status_url, also in the Location header",
        "content": {content_types.APPLICATION_JSON: {"model": SubmitResponse}},
    },
}


@app.serve(
    routes.SUBMIT_BACKTEST,
    summary="Submit a backtest",
    description=(
        "Queues the backtest and answers 202 at once; poll status_url (absolute, also the Location header). "
        f"With ?wait=S (S ≤ {topology.MAX_WAIT_SECONDS}) it waits up to S seconds and answers 200 with the "
        "finished job (performance_metrics, trade_summary, market_data_stats) when it ends in time. Send an "
        "Idempotency-Key header to retry safely."
    ),
    responses={**responses(202, "Queued", 400, 401, 409, 413, 415, 429, 503), **_FINISHED},
    tags=["backtests"],
)
@tracer.capture_method
def submit(
    request: Annotated[SubmitRequest, Body()],
    idempotency_key: Annotated[str | None, Header(alias=IDEMPOTENCY_HEADER, min_length=1, max_length=255)] = None,
    wait: Annotated[
        float,
        Query(ge=0, le=topology.MAX_WAIT_SECONDS, description="Seconds to wait for the job to finish (0: do not)."),
    ] = 0,
) -> Response[SubmitResponse | RunResponse]:
    owner = current_caller(app).owner
    base = api_base_url(app.current_event.raw_event, settings.public_base_url)
    queued = submission.submit_backtest(request, owner=owner, idempotency_key=idempotency_key)
    status_url = routes.GET_STATUS.url(base, execution_id=queued.execution_id)
    if wait > 0 and (job := submission.wait_for_job(queued.execution_id, owner=owner, seconds=wait)) is not None:
        shown = queries.job_status(job, base_url=base, deps=queries.default_deps())
        body = RunResponse.model_validate({**shown.model_dump(), "success": job.status is Status.SUCCEEDED})
        return Response(200, content_types.APPLICATION_JSON, body=body)
    answer = queued.model_copy(update={"status_url": status_url})
    return Response(202, content_types.APPLICATION_JSON, body=answer, headers={"Location": status_url})


@app.serve(
    routes.VALIDATE_BACKTEST,
    summary="Check a backtest without running it",
    description=(
        "Every check of POST /run (fields, bar cap, sessions in the range, compiling the strategy, its declared "
        "parameters); nothing is stored or queued."
    ),
    responses=responses(200, "The request would be accepted", 400, 401, 413, 415),
    tags=["backtests"],
)
@tracer.capture_method
def validate(request: Annotated[SubmitRequest, Body()]) -> ValidateResponse:
    current_caller(app)
    return submission.validate_backtest(request, owner=current_caller(app).owner)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    submission.register_lambda_context(context)
    return app.resolve(event, context)
