"""A finished job's results for a chart and a table: GET .../executions/{id}/equity (downsampled curve) and
GET .../executions/{id}/trades (a page of trades)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from backtest_engine.downsample import DEFAULT_POINTS
from backtest_service import result_pages, routes, topology
from backtest_service.api_models import EquityResponse, TradesResponse
from backtest_service.observability import logger, metrics, tracer
from backtest_service.rest import create_resolver, current_caller, responses
from backtest_service.settings import get_settings

settings = get_settings()  # cold start: a misconfigured function fails here, naming the variable
app = create_resolver(topology.RESULTS)


@app.serve(
    routes.GET_EQUITY,
    summary="The equity and drawdown curve, downsampled with every extreme kept",
    description=(
        "At most `points` points of the curve between start and end (default: the whole run). Each bucket "
        "keeps its first point and the minimum and maximum of equity and of drawdown, so peaks, troughs and "
        "the maximum drawdown of the range are exact; ask for a narrower range to see more detail."
    ),
    responses=responses(200, "The curve", 401, 404, 409, 410, 503),
    tags=["results"],
)
@tracer.capture_method
def get_equity(
    execution_id: str,
    points: Annotated[
        int, Query(ge=8, le=result_pages.MAX_POINTS, description="Most points to return.")
    ] = DEFAULT_POINTS,
    start: Annotated[
        str | None,
        Query(
            pattern=result_pages.ISO_MOMENT,
            description="First time to include: YYYY-MM-DD or an ISO-8601 date and time (UTC if no offset).",
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(pattern=result_pages.ISO_MOMENT, description="Last time to include, the same way (inclusive)."),
    ] = None,
) -> EquityResponse:
    logger.append_keys(execution_id=execution_id)
    return result_pages.equity(
        execution_id,
        owner=current_caller(app).owner,
        points=points,
        start=result_pages.moment(start, "start"),
        end=result_pages.moment(end, "end"),
    )


@app.serve(
    routes.GET_TRADES,
    summary="The trades, a page at a time, in exit order",
    responses=responses(200, "A page of trades and the next page's token", 400, 401, 404, 409, 410, 503),
    tags=["results"],
)
@tracer.capture_method
def get_trades(
    execution_id: str,
    limit: Annotated[
        int, Query(ge=1, le=result_pages.MAX_TRADES_PAGE, description="Trades per page.")
    ] = result_pages.DEFAULT_TRADES_PAGE,
    next_token: Annotated[str | None, Query(max_length=256, description="From the previous page.")] = None,
) -> TradesResponse:
    logger.append_keys(execution_id=execution_id)
    return result_pages.trades(execution_id, owner=current_caller(app).owner, limit=limit, next_token=next_token)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
