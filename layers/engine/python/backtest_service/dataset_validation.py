"""Validate an uploaded dataset once (the validate_dataset function's use case, fed by the bucket's S3
notification for `DATASET_UPLOADS_PREFIX`).

For each created upload object:

1. The dataset's record must exist and be PENDING; anything else is skipped (a record deleted while its
   file was uploading: the file is removed; a second upload through the same presigned POST after the
   dataset was validated: ignored, the validated copy stays the dataset's data).
2. Too large (S3's policy refuses that upload, this checks again), unreadable or not valid OHLCV: the
   dataset becomes INVALID with the loader's error (`{type, message, line?}`: the line and column, as
   `backtest run --data` reports them).
3. Valid: the columnar copy (`bar_files.bars_to_npz`, read by the runner with numpy alone) is written to
   `DATASET_DATA_PREFIX`, THEN the dataset becomes READY with its stats, on condition it is still PENDING;
   when it is not (deleted meanwhile), the copy is deleted again, so nothing half-written stays.
4. The raw upload is deleted (it was read once; the lifecycle rule expires it anyway).

A fault of S3 or DynamoDB propagates: Lambda retries an asynchronous invocation twice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from backtest_engine.bar_files import bars_to_npz, read_bars
from backtest_engine.catalog import MAX_BARS
from backtest_engine.errors import DataError, UserInputError
from backtest_engine.models import DATASET_SYMBOL
from backtest_service.dataset_models import PERIODS_PER_YEAR, DatasetStatus
from backtest_service.dataset_store import DatasetStore, data_key, dataset_id_of_upload, default_dataset_store
from backtest_service.observability import MetricUnit, logger, metrics
from backtest_service.topology import DATASET_MAX_BYTES

CALENDARS = {periods: name for name, periods in PERIODS_PER_YEAR.items()}


def handle_s3_event(event: Mapping[str, Any], *, store: DatasetStore | None = None) -> list[str]:
    """Validate every upload an S3 event notification names; the outcome of each ("READY", "INVALID",
    "SKIPPED")."""
    store = store or default_dataset_store()
    outcomes = []
    for record in event.get("Records", []):
        s3 = record.get("s3", {})
        key = unquote_plus(str(s3.get("object", {}).get("key", "")))
        size = int(s3.get("object", {}).get("size") or 0)
        outcomes.append(validate_upload(key, size, store=store))
    return outcomes


def validate_upload(key: str, size: int, *, store: DatasetStore) -> str:
    dataset_id = dataset_id_of_upload(key)
    if dataset_id is None:
        logger.warning("an object that is not a dataset upload; ignored", extra={"key": key})
        return "SKIPPED"
    logger.append_keys(dataset_id=dataset_id)
    try:
        return _validate(dataset_id, key, size, store)
    finally:
        logger.remove_keys(["dataset_id"])


def _validate(dataset_id: str, key: str, size: int, store: DatasetStore) -> str:
    record = store.get(dataset_id)
    if record is None:
        logger.info("the dataset was deleted (or expired) before its upload was validated; removing the upload")
        store.delete_objects(dataset_id)
        return "SKIPPED"
    if record.status is not DatasetStatus.PENDING:
        logger.info("the dataset was already validated; this upload is ignored", extra={"status": record.status})
        return "SKIPPED"
    started = time.perf_counter()
    if size > DATASET_MAX_BYTES:
        return _invalid(
            store,
            dataset_id,
            {
                "type": "DatasetTooLarge",
                "message": f"the upload is {size:,} bytes; a dataset may be at most {DATASET_MAX_BYTES:,} bytes",
            },
        )
    try:
        body = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            logger.info("the upload is gone (deleted with its dataset); nothing to validate")
            return "SKIPPED"
        raise
    periods = PERIODS_PER_YEAR[record.calendar] if record.calendar else None
    try:
        if len(body) > DATASET_MAX_BYTES:
            raise DataError(f"the upload is {len(body):,} bytes; a dataset may be at most {DATASET_MAX_BYTES:,} bytes")
        bars = read_bars(body, record.format, symbol=DATASET_SYMBOL, lot_size=record.lot_size, periods_per_year=periods)  # type: ignore[arg-type]
        if len(bars) > MAX_BARS:
            raise DataError(f"the file holds {len(bars):,} bars; a dataset may hold at most {MAX_BARS:,}")
    except (DataError, UserInputError) as exc:
        return _invalid(store, dataset_id, exc.to_dict())
    copy_key = data_key(dataset_id)
    store.s3.put_object(
        Bucket=store.bucket,
        Key=copy_key,
        Body=bars_to_npz(bars),
        ContentType="application/octet-stream",
        ServerSideEncryption="AES256",
        Metadata={"dataset-id": dataset_id},
    )
    stats = {
        **_stats(bars),
        "bytes": len(body),
    }
    if not store.mark_ready(dataset_id, stats, copy_key):
        logger.info("the dataset was deleted while it was validated; removing its copy")
        store.delete_objects(dataset_id)
        return "SKIPPED"
    _drop_upload(store, key)
    seconds = time.perf_counter() - started
    metrics.add_metric(name="DatasetsReady", unit=MetricUnit.Count, value=1)
    logger.info("dataset READY", extra={"rows": stats["rows"], "seconds": round(seconds, 3)})
    return "READY"


def _stats(bars: Any) -> dict[str, Any]:
    stats = bars.stats()
    return {
        "rows": len(bars),
        "first_time": stats["date_range"]["start"],
        "last_time": stats["date_range"]["end"],
        "timeframe": bars.timeframe,
        "calendar": CALENDARS.get(bars.periods_per_year, "weekdays"),
        "periods_per_year": bars.periods_per_year,
        "price_range": stats["price_range"],
        "fingerprint": bars.fingerprint(),
    }


def _invalid(store: DatasetStore, dataset_id: str, error: dict[str, Any]) -> str:
    if store.mark_invalid(dataset_id, error):
        metrics.add_metric(name="DatasetsInvalid", unit=MetricUnit.Count, value=1)
        logger.info("dataset INVALID", extra={"error": error})
    store.delete_objects(dataset_id)  # the upload: an invalid file is not kept
    return "INVALID"


def _drop_upload(store: DatasetStore, key: str) -> None:
    try:
        store.s3.delete_object(Bucket=store.bucket, Key=key)
    except ClientError:
        logger.warning("could not delete the validated upload; the lifecycle rule expires it", extra={"key": key})
