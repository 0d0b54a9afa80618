"""The datasets table (DynamoDB) and the dataset objects (S3): every status change is one conditional write.

- `put_pending`: a new PENDING dataset, only if the id is new.
- `mark_ready` / `mark_invalid`: PENDING → READY (with its stats and the key of its validated copy) or
  INVALID (with the error); False when it is no longer PENDING or no longer exists (deleted meanwhile:
  the validation then removes what it wrote, so nothing half-written stays).
- `delete_for_owner`: the record, only if the caller owns it; then its objects (best effort: the bucket's
  lifecycle rules expire whatever a failed delete leaves, and no record points at them any more).
- `get_for_owner`, `list_for_owner`: what the caller may see (GSI `by_owner`, newest first).

Objects (topology): the raw upload at `DATASET_UPLOADS_PREFIX + id`, the validated copy at
`DATASET_DATA_PREFIX + id + ".npz"`, both SSE-S3 encrypted, expired by lifecycle rules; the record expires by
TTL on the copy's schedule (`DATASET_TTL_DAYS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import ConfigDict, Field

from backtest_engine.base_model import Model
from backtest_service import clients
from backtest_service.dataset_models import DatasetStatus
from backtest_service.dynamo_codec import deserialize_item, serialize, serialize_item
from backtest_service.errors import DatasetNotFound
from backtest_service.jobs import iso, utc_now
from backtest_service.owner_index import PageTokens, delete_owned, is_conditional_failure
from backtest_service.settings import get_settings
from backtest_service.topology import DATASET_DATA_PREFIX, DATASET_UPLOADS_PREFIX, DATASETS_TABLE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

MAX_PAGE_SIZE = 100
_DATASET_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
LIST_ATTRIBUTES = ("dataset_id", "owner", "name", "format", "status", "created_at", "stats", "error")


def is_valid_dataset_id(value: str) -> bool:
    return bool(_DATASET_ID.match(value))


PAGE_TOKENS = PageTokens(DATASETS_TABLE, is_valid_dataset_id, "your datasets")


def upload_key(dataset_id: str) -> str:
    return f"{DATASET_UPLOADS_PREFIX}{dataset_id}"


def data_key(dataset_id: str) -> str:
    return f"{DATASET_DATA_PREFIX}{dataset_id}.npz"


def dataset_id_of_upload(key: str) -> str | None:
    """The dataset id of an upload's object key; None for a key that is not an upload's."""
    if not key.startswith(DATASET_UPLOADS_PREFIX):
        return None
    dataset_id = key[len(DATASET_UPLOADS_PREFIX) :]
    return dataset_id if is_valid_dataset_id(dataset_id) else None


class DatasetRecord(Model):
    """One item of the datasets table."""

    model_config = ConfigDict(extra="ignore")

    dataset_id: str
    owner: str
    name: str
    format: str
    status: DatasetStatus
    lot_size: float = 1.0
    calendar: str | None = None
    created_at: str
    updated_at: str | None = None
    validated_at: str | None = None
    expires_at: int = Field(description="Epoch seconds: DynamoDB TTL.")
    stats: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    data_key: str | None = None

    @property
    def expires_at_iso(self) -> str:
        return datetime.fromtimestamp(self.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DatasetStore:
    def __init__(
        self,
        table_name: str,
        bucket: str,
        *,
        dynamodb: DynamoDBClient | None = None,
        s3: S3Client | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.table_name = table_name
        self.bucket = bucket
        self._dynamodb = dynamodb
        self._s3 = s3
        self._clock = clock

    @property
    def dynamodb(self) -> DynamoDBClient:
        return self._dynamodb or clients.dynamodb()

    @property
    def s3(self) -> S3Client:
        return self._s3 or clients.s3()

    def _key(self, dataset_id: str) -> dict[str, Any]:
        return {DATASETS_TABLE.partition_key: {"S": dataset_id}}

    # ---- writes -------------------------------------------------------------------------------

    def put_pending(self, record: DatasetRecord) -> None:
        if record.status is not DatasetStatus.PENDING:
            raise ValueError(f"a new dataset must be PENDING, not {record.status}")
        self.dynamodb.put_item(
            TableName=self.table_name,
            Item=serialize_item(record.model_dump(mode="json")),
            ConditionExpression="attribute_not_exists(dataset_id)",
        )

    def mark_ready(self, dataset_id: str, stats: dict[str, Any], key: str) -> bool:
        return self._finish(
            dataset_id,
            DatasetStatus.READY,
            "SET #s = :new, validated_at = :now, updated_at = :now, stats = :stats, data_key = :key",
            {":stats": serialize(stats), ":key": {"S": key}},
        )

    def mark_invalid(self, dataset_id: str, error: dict[str, Any]) -> bool:
        return self._finish(
            dataset_id,
            DatasetStatus.INVALID,
            "SET #s = :new, validated_at = :now, updated_at = :now, #e = :error",
            {":error": serialize(error)},
        )

    def _finish(self, dataset_id: str, status: DatasetStatus, update: str, values: dict[str, Any]) -> bool:
        names = {"#s": "status"}
        if "#e" in update:
            names["#e"] = "error"
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key(dataset_id),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(dataset_id) AND #s = :pending",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    ":new": {"S": status},
                    ":pending": {"S": DatasetStatus.PENDING},
                    ":now": {"S": iso(self._clock())},
                    **values,
                },
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    def delete_for_owner(self, dataset_id: str, owner: str) -> DatasetRecord:
        """Delete the caller's dataset (record, then objects); `DatasetNotFound` for anyone else's."""
        if not is_valid_dataset_id(dataset_id):
            raise DatasetNotFound(dataset_id)
        old = delete_owned(self.dynamodb, self.table_name, self._key(dataset_id), owner)
        if old is None:
            raise DatasetNotFound(dataset_id)
        record = DatasetRecord.model_validate(deserialize_item(old))
        self.delete_objects(dataset_id)
        return record

    def delete_objects(self, dataset_id: str) -> None:
        """The upload and the validated copy (deleting a missing key is no error in S3)."""
        self.s3.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": upload_key(dataset_id)}, {"Key": data_key(dataset_id)}], "Quiet": True},
        )

    # ---- reads --------------------------------------------------------------------------------

    def get(self, dataset_id: str) -> DatasetRecord | None:
        if not is_valid_dataset_id(dataset_id):
            return None
        out = self.dynamodb.get_item(TableName=self.table_name, Key=self._key(dataset_id), ConsistentRead=True)
        item = out.get("Item")
        return DatasetRecord.model_validate(deserialize_item(item)) if item else None

    def get_for_owner(self, dataset_id: str, owner: str) -> DatasetRecord:
        record = self.get(dataset_id)
        if record is None or record.owner != owner:
            raise DatasetNotFound(dataset_id)
        return record

    def list_for_owner(
        self, owner: str, *, limit: int = 20, next_token: str | None = None
    ) -> tuple[list[DatasetRecord], str | None]:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be within 1..{MAX_PAGE_SIZE}")
        names = {f"#a{i}": name for i, name in enumerate(LIST_ATTRIBUTES)}
        alias = {v: k for k, v in names.items()}
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": DATASETS_TABLE.gsi_name,
            "KeyConditionExpression": f"{alias['owner']} = :owner",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":owner": {"S": owner}},
            "ProjectionExpression": ", ".join(names),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if next_token is not None:
            query["ExclusiveStartKey"] = PAGE_TOKENS.decode(next_token, owner)
        out = self.dynamodb.query(**query)
        records = [
            DatasetRecord.model_validate({"expires_at": 0, "lot_size": 1.0, **deserialize_item(item)})
            for item in out.get("Items", [])
        ]
        last = out.get("LastEvaluatedKey")
        return records, (PAGE_TOKENS.encode(last) if last else None)


@cache
def default_dataset_store() -> DatasetStore:
    settings = get_settings()
    return DatasetStore(settings.datasets_table, settings.results_bucket)
