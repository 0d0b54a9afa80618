"""Reference data: symbols and timeframes, metric definitions, health, and the API's OpenAPI document."""

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from backtest_service import api_docs, reference_data, routes, topology
from backtest_service.api_models import HealthResponse, MetricDefinitionsResponse, SymbolsResponse
from backtest_service.observability import logger, metrics, tracer
from backtest_service.rest import create_resolver, responses
from backtest_service.settings import get_settings

settings = get_settings()  # cold start: a misconfigured function fails here, naming the variable
app = create_resolver(topology.SYMBOLS)
api_docs.serve_swagger_ui(app, routes.SWAGGER_UI)


@app.serve(
    routes.MARKET_DATA_SYMBOLS,
    summary="Symbols, timeframes and the date range",
    responses=responses(200, "What can be backtested"),
    tags=["reference"],
)
def symbols() -> SymbolsResponse:
    return reference_data.market_data(max_bars=settings.max_bars)


@app.serve(
    routes.METRIC_DEFINITIONS,
    summary="Every metric and its formula, exactly as computed",
    responses=responses(200, "The metric definitions"),
    tags=["reference"],
)
def metric_definitions() -> MetricDefinitionsResponse:
    return reference_data.metric_catalog()


@app.serve(routes.HEALTH, summary="Liveness", responses=responses(200, "The service is up"), tags=["reference"])
def health() -> HealthResponse:
    return reference_data.health(service=settings.service_name, version=settings.service_version)


@app.serve(routes.OPENAPI_DOCUMENT, summary="This API's OpenAPI document")
def openapi_document() -> Response[str]:
    return Response(200, content_types.APPLICATION_JSON, body=api_docs.document_json())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
