"""Use cases of the datasets function, and the submit function's check of a request that names a dataset.

A dataset's life: `create_dataset` stores it PENDING and answers a presigned S3 POST (size limited by the
policy's content-length-range, content type fixed, SSE-S3 required, valid `DATASET_UPLOAD_URL_TTL_SECONDS`);
the client uploads the file; S3 notifies `validate_dataset` (dataset_validation.py), which validates it once
and makes it READY (with stats and a columnar copy) or INVALID (with the error); backtests name it by
`dataset_id`; `delete_dataset` removes it; otherwise it expires after `DATASET_TTL_DAYS` (TTL on the
record, lifecycle rules on the objects). Another caller's dataset is a 404, as an unknown one.

No numpy: the API functions import this.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache

from backtest_engine.catalog import TIMEFRAMES
from backtest_engine.models import BacktestRequest
from backtest_service.dataset_models import (
    CreateDatasetRequest,
    CreateDatasetResponse,
    DatasetList,
    DatasetStatus,
    DatasetSummary,
    DatasetView,
    DeletedDataset,
    view_fields,
)
from backtest_service.dataset_store import DatasetRecord, DatasetStore, default_dataset_store, upload_key
from backtest_service.errors import RequestInvalid
from backtest_service.jobs import iso, utc_now
from backtest_service.observability import MetricUnit, logger, metrics
from backtest_service.topology import (
    API_PREFIX,
    DATASET_MAX_BYTES,
    DATASET_TTL_DAYS,
    DATASET_UPLOAD_URL_TTL_SECONDS,
)

CONTENT_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
SERVER_SIDE_ENCRYPTION = "AES256"
DEFAULT_PAGE_SIZE = 20


def dataset_path(dataset_id: str) -> str:
    return f"{API_PREFIX}/datasets/{dataset_id}"


@dataclass(frozen=True, eq=False)
class DatasetDeps:
    store: DatasetStore
    clock: Callable[[], datetime] = utc_now
    new_id: Callable[[], str] = lambda: str(uuid.uuid4())
    max_bytes: int = DATASET_MAX_BYTES


@cache
def default_deps() -> DatasetDeps:
    return DatasetDeps(store=default_dataset_store())


def create_dataset(body: CreateDatasetRequest, *, owner: str, deps: DatasetDeps | None = None) -> CreateDatasetResponse:
    """Store the PENDING dataset; the presigned POST its file goes to."""
    deps = deps or default_deps()
    now = deps.clock()
    dataset_id = deps.new_id()
    logger.append_keys(dataset_id=dataset_id)
    deps.store.put_pending(
        DatasetRecord(
            dataset_id=dataset_id,
            owner=owner,
            name=body.name,
            format=body.format,
            status=DatasetStatus.PENDING,
            lot_size=body.lot_size,
            calendar=body.calendar,
            created_at=iso(now),
            updated_at=iso(now),
            expires_at=int((now + timedelta(days=DATASET_TTL_DAYS)).timestamp()),
        )
    )
    content_type = CONTENT_TYPES[body.format]
    post = deps.store.s3.generate_presigned_post(
        Bucket=deps.store.bucket,
        Key=upload_key(dataset_id),
        Fields={"Content-Type": content_type, "x-amz-server-side-encryption": SERVER_SIDE_ENCRYPTION},
        Conditions=[
            {"Content-Type": content_type},
            {"x-amz-server-side-encryption": SERVER_SIDE_ENCRYPTION},
            ["content-length-range", 1, deps.max_bytes],
        ],
        ExpiresIn=DATASET_UPLOAD_URL_TTL_SECONDS,
    )
    metrics.add_metric(name="DatasetsCreated", unit=MetricUnit.Count, value=1)
    logger.info("dataset created; waiting for its upload", extra={"format": body.format})
    return CreateDatasetResponse(
        dataset_id=dataset_id,
        upload_url=post["url"],
        upload_fields={str(k): str(v) for k, v in post["fields"].items()},
        content_type=content_type,
        expires_in=DATASET_UPLOAD_URL_TTL_SECONDS,
        max_bytes=deps.max_bytes,
        dataset_url=dataset_path(dataset_id),
    )


def get_dataset(dataset_id: str, *, owner: str, deps: DatasetDeps | None = None) -> DatasetView:
    deps = deps or default_deps()
    return DatasetView.model_validate(view_fields(deps.store.get_for_owner(dataset_id, owner)))


def list_datasets(
    *, owner: str, limit: int = DEFAULT_PAGE_SIZE, next_token: str | None = None, deps: DatasetDeps | None = None
) -> DatasetList:
    deps = deps or default_deps()
    records, token = deps.store.list_for_owner(owner, limit=limit, next_token=next_token)
    return DatasetList(
        datasets=[
            DatasetSummary(
                dataset_id=r.dataset_id,
                name=r.name,
                format=r.format,
                status=r.status,
                created_at=r.created_at,
                rows=(r.stats or {}).get("rows"),
                timeframe=(r.stats or {}).get("timeframe"),
                error=r.error,
            )
            for r in records
        ],
        next_token=token,
    )


def delete_dataset(dataset_id: str, *, owner: str, deps: DatasetDeps | None = None) -> DeletedDataset:
    deps = deps or default_deps()
    deps.store.delete_for_owner(dataset_id, owner)
    logger.info("dataset deleted", extra={"dataset_id": dataset_id})
    return DeletedDataset(dataset_id=dataset_id)


# ---- a backtest that names a dataset ---------------------------------------------------------------


def resolve_request(request: BacktestRequest, owner: str, *, store: DatasetStore | None = None) -> BacktestRequest:
    """The request as it will run: unchanged without a `dataset_id`; with one, checked against the caller's
    READY dataset (422 naming the field otherwise), its omitted timeframe and dates taken from the dataset.

    - timeframe: omitted → the dataset's own; given → the dataset's, or a coarser catalog timeframe its
      bars aggregate to (the dataset's must then be a catalog timeframe that divides it).
    - start_date / end_date: omitted → the dataset's first / last day (UTC); given → must overlap it.
    """
    if request.dataset_id is None:
        return request
    record = (store or default_dataset_store()).get(request.dataset_id)
    if record is None or record.owner != owner:
        raise RequestInvalid(
            f"dataset_id: no dataset {request.dataset_id!r} of yours (unknown, expired or deleted); "
            "see GET /api/backtest/datasets",
            field="dataset_id",
        )
    if record.status is not DatasetStatus.READY or not record.stats:
        why = (
            f": {record.error.get('message')}"
            if record.error
            else " (upload its file to the upload_url, then wait for it to be validated)"
        )
        raise RequestInvalid(
            f"dataset_id: dataset {request.dataset_id!r} is {record.status.value}, not READY{why}", field="dataset_id"
        )
    stats = record.stats
    given = request.model_fields_set
    native = str(stats["timeframe"])
    updates: dict[str, object] = {}
    if "timeframe" not in given:
        if native in TIMEFRAMES:
            updates["timeframe"] = native
    elif request.timeframe != native and not _aggregates(native, request.timeframe):
        raise RequestInvalid(
            f"timeframe: dataset {request.dataset_id!r} holds {native} bars, which cannot make "
            f"{request.timeframe} bars; omit timeframe, or give one its bars divide "
            f"({', '.join(tf for tf in TIMEFRAMES if tf == native or _aggregates(native, tf)) or native})",
            field="timeframe",
        )
    first, last = _day(stats["first_time"]), _day(stats["last_time"])
    start = request.start_date if "start_date" in given else first
    end = request.end_date if "end_date" in given else last
    if end < start:
        raise RequestInvalid(f"end_date {end} is before start_date {start}", field="end_date")
    if start > last or end < first:
        raise RequestInvalid(
            f"start_date: {start} .. {end} holds no bar of dataset {request.dataset_id!r}, which spans "
            f"{first} .. {last}; omit the dates to use all of it",
            field="start_date",
        )
    updates.update(start_date=start, end_date=end)
    return request.model_copy(update=updates)


def dataset_rows(dataset_id: str, owner: str, *, store: DatasetStore | None = None) -> int:
    """The bars of the caller's dataset (0 when it is not theirs or not READY: `resolve_request` says why)."""
    record = (store or default_dataset_store()).get(dataset_id)
    if record is None or record.owner != owner or not record.stats:
        return 0
    return int(record.stats.get("rows", 0))


def _aggregates(native: str, target: str) -> bool:
    """Whether bars of `native` aggregate to `target` (both catalog timeframes, the target coarser)."""
    if native not in TIMEFRAMES or target not in TIMEFRAMES:
        return False
    return TIMEFRAMES[target] > TIMEFRAMES[native] and TIMEFRAMES[target] % TIMEFRAMES[native] == 0


def _day(text: str) -> date:
    return date.fromisoformat(str(text)[:10])
