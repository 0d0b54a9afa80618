"""The caller's own market data: POST /api/backtest/datasets (a presigned upload), GET (list, one), DELETE."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from backtest_service import datasets, routes, topology
from backtest_service.dataset_models import (
    CreateDatasetRequest,
    CreateDatasetResponse,
    DatasetList,
    DatasetView,
    DeletedDataset,
)
from backtest_service.dataset_store import MAX_PAGE_SIZE
from backtest_service.observability import logger, metrics, tracer
from backtest_service.rest import create_resolver, current_caller, responses
from backtest_service.settings import get_settings

settings = get_settings()  # cold start: a misconfigured function fails here, naming the variable
app = create_resolver(topology.DATASETS)


@app.serve(
    routes.CREATE_DATASET,
    summary="Create a dataset: answers a presigned S3 POST to upload its CSV or Parquet file to",
    description=(
        "The dataset is PENDING until its file is uploaded (multipart/form-data POST to upload_url with "
        "upload_fields, then the file; at most max_bytes) and validated once: then READY with its stats, or "
        "INVALID with the line and column at fault. Name it as dataset_id in POST /api/backtest/run."
    ),
    status_code=201,
    responses=responses(201, "Created: upload the file to upload_url", 400, 401, 415, 503),
    tags=["datasets"],
)
@tracer.capture_method
def create_dataset(request: Annotated[CreateDatasetRequest, Body()]) -> CreateDatasetResponse:
    return datasets.create_dataset(request, owner=current_caller(app).owner)


@app.serve(
    routes.LIST_DATASETS,
    summary="The caller's datasets, newest first",
    responses=responses(200, "A page of datasets and the next page's token", 400, 401, 503),
    tags=["datasets"],
)
@tracer.capture_method
def list_datasets(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size.")] = datasets.DEFAULT_PAGE_SIZE,
    next_token: Annotated[str | None, Query(max_length=1024, description="From the previous page.")] = None,
) -> DatasetList:
    return datasets.list_datasets(owner=current_caller(app).owner, limit=limit, next_token=next_token)


@app.serve(
    routes.GET_DATASET,
    summary="One dataset: its status, stats once READY, the error when INVALID",
    responses=responses(200, "The dataset", 401, 404, 503),
    tags=["datasets"],
)
@tracer.capture_method
def get_dataset(dataset_id: str) -> DatasetView:  # any id that is not the caller's dataset is a 404
    logger.append_keys(dataset_id=dataset_id)
    return datasets.get_dataset(dataset_id, owner=current_caller(app).owner)


@app.serve(
    routes.DELETE_DATASET,
    summary="Delete a dataset and its data (a queued backtest that names it then fails DatasetUnavailable)",
    responses=responses(200, "Deleted", 401, 404, 503),
    tags=["datasets"],
)
@tracer.capture_method
def delete_dataset(dataset_id: str) -> DeletedDataset:
    logger.append_keys(dataset_id=dataset_id)
    return datasets.delete_dataset(dataset_id, owner=current_caller(app).owner)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
