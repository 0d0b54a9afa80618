"""POST /api/backtest/run: validate, compile-check, store and queue a backtest; 202 with its id."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from backtest_service import routes, submission, topology
from backtest_service.api_models import SubmitRequest, SubmitResponse
from backtest_service.observability import logger, metrics, tracer
from backtest_service.rest import IDEMPOTENCY_HEADER, create_resolver, current_caller, responses
from backtest_service.settings import get_settings

settings = get_settings()  # cold start: a misconfigured function fails here, naming the variable
app = create_resolver(topology.SUBMIT, idempotency=True)


@app.serve(
    routes.SUBMIT_BACKTEST,
    summary="Submit a backtest",
    description=(
        "Queues the backtest and answers at once; poll status_url. Send an Idempotency-Key header to retry safely."
    ),
    status_code=202,
    responses=responses(202, "Queued: poll status_url", 400, 401, 409, 413, 415, 503),
    tags=["backtests"],
)
@tracer.capture_method
def submit(
    request: Annotated[SubmitRequest, Body()],
    idempotency_key: Annotated[str | None, Header(alias=IDEMPOTENCY_HEADER, min_length=1, max_length=255)] = None,
) -> SubmitResponse:
    caller = current_caller(app)
    return submission.submit_backtest(request, owner=caller.owner, idempotency_key=idempotency_key)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    submission.register_lambda_context(context)
    return app.resolve(event, context)
