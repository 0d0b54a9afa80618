"""The uploads' S3 notification: validates each uploaded dataset once (READY with a columnar copy, or INVALID)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from backtest_service import dataset_validation
from backtest_service.observability import logger, metrics, tracer
from backtest_service.settings import get_settings

settings = get_settings()  # cold start: a misconfigured function fails here, naming the variable


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcomes = dataset_validation.handle_s3_event(event)
    return {"outcomes": outcomes}
