"""Request and response bodies of the datasets API (`/api/backtest/datasets`): a caller's own OHLCV, uploaded
once by presigned POST, validated once, then named by `dataset_id` in place of `symbol`. No numpy."""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator

from backtest_engine.base_model import Model

DatasetFormat = Literal["csv", "parquet"]
# A dataset's calendar: bars on weekdays only (252 periods a year, like equities) or every day (365).
DatasetCalendar = Literal["weekdays", "24/7"]
PERIODS_PER_YEAR: dict[str, int] = {"weekdays": 252, "24/7": 365}


class DatasetStatus(StrEnum):
    PENDING = "PENDING"  # created; waiting for its upload (and the upload's validation)
    READY = "READY"  # validated: backtests may name it
    INVALID = "INVALID"  # the upload is not usable OHLCV: `error` says where and why


class CreateDatasetRequest(Model):
    """The body of `POST /api/backtest/datasets`."""

    model_config = ConfigDict(extra="forbid", title="CreateDatasetRequest")

    name: Annotated[str, Field(min_length=1, max_length=200, description="A label for the dataset.")]
    format: Annotated[DatasetFormat, Field(description="What the upload will be: csv or parquet.")] = "csv"
    lot_size: Annotated[
        float, Field(gt=0, le=1e9, description="Smallest tradable quantity (1: whole units; 0.001 for crypto).")
    ] = 1.0
    calendar: Annotated[
        DatasetCalendar | None,
        Field(description="weekdays (252 periods a year) or 24/7 (365); omitted: inferred from weekend bars."),
    ] = None

    @field_validator("name")
    @classmethod
    def _printable(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("name must not be blank")
        if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in v):
            raise ValueError("name must not contain control characters")
        return v.strip()

    @field_validator("lot_size")
    @classmethod
    def _finite(cls, v: float) -> float:
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return v


class CreateDatasetResponse(Model):
    success: Literal[True] = True
    dataset_id: str
    status: Literal[DatasetStatus.PENDING] = DatasetStatus.PENDING
    upload_url: Annotated[str, Field(description="POST the file here as multipart/form-data (presigned S3 POST).")]
    upload_fields: Annotated[
        dict[str, str], Field(description="Form fields to send with the file, before it and unchanged.")
    ]
    upload_method: Literal["POST"] = "POST"
    content_type: Annotated[str, Field(description="The Content-Type the upload must declare (a form field).")]
    expires_in: Annotated[int, Field(description="Seconds the upload_url and fields stay valid.")]
    max_bytes: Annotated[int, Field(description="Largest upload S3 accepts (the policy's content-length-range).")]
    dataset_url: Annotated[str, Field(description="Where to poll the dataset: GET this path.")]


class DatasetStats(Model):
    """What the validation found in a READY dataset."""

    rows: int
    first_time: str
    last_time: str
    timeframe: Annotated[str, Field(description="Inferred bar size (1m ... 1d), or custom when irregular.")]
    calendar: DatasetCalendar
    periods_per_year: int
    price_range: dict[str, float]
    fingerprint: Annotated[str, Field(description="Content hash of the bars (the result's data_fingerprint).")]
    bytes: Annotated[int, Field(description="Size of the upload.")]


class DatasetError(Model):
    """Why a dataset is INVALID: the problem, with the file's line (CSV) and column in the message."""

    model_config = ConfigDict(extra="allow")

    type: str
    message: str
    line: int | None = None


class DatasetView(Model):
    """One dataset as its owner sees it."""

    success: Literal[True] = True
    dataset_id: str
    name: str
    format: DatasetFormat
    status: DatasetStatus
    lot_size: float
    calendar: DatasetCalendar | None = None
    created_at: str
    validated_at: str | None = None
    expires_at: Annotated[str, Field(description="When the dataset and its data are deleted (UTC).")]
    stats: DatasetStats | None = None
    error: DatasetError | None = None


class DatasetSummary(Model):
    dataset_id: str
    name: str
    format: DatasetFormat
    status: DatasetStatus
    created_at: str
    rows: int | None = None
    timeframe: str | None = None
    error: DatasetError | None = None


class DatasetList(Model):
    success: Literal[True] = True
    datasets: list[DatasetSummary]
    next_token: Annotated[
        str | None, Field(description="Pass as next_token to get the next page; absent on the last page.")
    ] = None


class DeletedDataset(Model):
    success: Literal[True] = True
    dataset_id: str
    deleted: Literal[True] = True


def view_fields(record: Any) -> dict[str, Any]:
    """The fields of a `DatasetView` from a stored record (a `dataset_store.DatasetRecord`)."""
    return {
        "dataset_id": record.dataset_id,
        "name": record.name,
        "format": record.format,
        "status": record.status,
        "lot_size": record.lot_size,
        "calendar": record.calendar,
        "created_at": record.created_at,
        "validated_at": record.validated_at,
        "expires_at": record.expires_at_iso,
        "stats": record.stats,
        "error": record.error,
    }
