"""The jobs table (DynamoDB): every lifecycle transition is one conditional write.

- `put_queued`: a new QUEUED job, only if the id is new.
- `start`: QUEUED or RUNNING → RUNNING, attempts + 1 (RUNNING again = a redelivery after a crash).
- `mark_succeeded`: RUNNING → SUCCEEDED; `mark_failed`: QUEUED/RUNNING → FAILED (never over a
  terminal status).
- `reset_for_replay`: a dead-lettered FAILED job → QUEUED (ops replay); never a SUCCEEDED one.
- `get_for_owner`, `list_for_owner`: what the caller may see (GSI `by_owner`, newest first, with an
  opaque `next_token`).

Table layout from `topology.JOBS_TABLE`; the GSI must project the listed attributes (CDK's default,
ALL, does).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, NoReturn

from botocore.exceptions import ClientError

from backtest_service import clients
from backtest_service.dynamo_codec import deserialize_item, serialize, serialize_item
from backtest_service.errors import InvalidNextToken, JobAlreadyTerminal, JobNotFound, ReplayRefused
from backtest_service.jobs import (
    JobRecord,
    JobSummaryUpdate,
    Status,
    is_valid_execution_id,
    iso,
    sources,
    utc_now,
)
from backtest_service.settings import get_settings
from backtest_service.topology import JOBS_TABLE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MAX_PAGE_SIZE = 100
# Attributes a job list shows (the GSI's projection must include them).
LIST_ATTRIBUTES = (
    "execution_id",
    "owner",
    "status",
    "name",
    "symbol",
    "timeframe",
    "created_at",
    "started_at",
    "finished_at",
    "attempts",
    "error",
    "performance_metrics.total_return_percent",
)
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _status_values(statuses: tuple[Status, ...]) -> tuple[str, dict[str, Any]]:
    """`:from_queued, :from_running` and their values, for `#s IN (...)`."""
    names = {f":from_{s.lower()}": {"S": s.value} for s in statuses}
    return ", ".join(names), names


def _is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class JobStore:
    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self._clock = clock

    @property
    def client(self) -> DynamoDBClient:
        return self._client or clients.dynamodb()

    def _key(self, execution_id: str) -> dict[str, Any]:
        return {JOBS_TABLE.partition_key: {"S": execution_id}}

    # ---- writes -------------------------------------------------------------------------------

    def put_queued(self, record: JobRecord) -> None:
        """Store a new QUEUED job; a `ClientError` (ConditionalCheckFailed) if the id exists."""
        if record.status is not Status.QUEUED:
            raise ValueError(f"a new job must be QUEUED, not {record.status}")
        self.client.put_item(
            TableName=self.table_name,
            Item=serialize_item(record.model_dump(mode="json")),
            ConditionExpression="attribute_not_exists(execution_id)",
        )

    def start(self, execution_id: str) -> JobRecord:
        """QUEUED/RUNNING → RUNNING with attempts + 1 and started_at now; the job as it now is.

        Raises `JobAlreadyTerminal` (the runner skips the message) or `JobNotFound`.
        """
        now = iso(self._clock())
        from_list, from_values = _status_values(sources(Status.RUNNING))
        try:
            out = self.client.update_item(
                TableName=self.table_name,
                Key=self._key(execution_id),
                UpdateExpression=(
                    "SET #s = :running, attempts = if_not_exists(attempts, :zero) + :one, "
                    "started_at = :now, updated_at = :now"
                ),
                ConditionExpression=f"attribute_exists(execution_id) AND #s IN ({from_list})",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    **from_values,
                    ":running": {"S": Status.RUNNING},
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                    ":now": {"S": now},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise
            self._raise_refused(execution_id)
        return JobRecord.model_validate(deserialize_item(out["Attributes"]))

    def mark_succeeded(self, execution_id: str, summary: JobSummaryUpdate) -> bool:
        """RUNNING → SUCCEEDED with the summary; False when it is not RUNNING (another delivery won)."""
        fields = summary.model_dump(mode="json")
        names = {f"#f_{k}": k for k in fields}
        values = {f":f_{k}": serialize(v) for k, v in fields.items()}
        sets = ", ".join(f"#f_{k} = :f_{k}" for k in fields)
        return self._finish(
            execution_id,
            Status.SUCCEEDED,
            f"SET #s = :new, finished_at = :now, updated_at = :now, {sets} REMOVE #e, dead_lettered",
            values,
            names,
        )

    def mark_failed(self, execution_id: str, error: dict[str, Any], *, dead_lettered: bool = False) -> bool:
        """QUEUED/RUNNING → FAILED with `error` ({type, message, line?}); False when already terminal."""
        return self._finish(
            execution_id,
            Status.FAILED,
            "SET #s = :new, finished_at = :now, updated_at = :now, #e = :error, dead_lettered = :dl",
            {":error": serialize(error), ":dl": {"BOOL": dead_lettered}},
        )

    def _finish(
        self,
        execution_id: str,
        status: Status,
        update: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> bool:
        from_list, from_values = _status_values(sources(status))
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(execution_id),
                UpdateExpression=update,
                ConditionExpression=f"attribute_exists(execution_id) AND #s IN ({from_list})",
                ExpressionAttributeNames={"#s": "status", "#e": "error", **(names or {})},
                ExpressionAttributeValues={
                    ":new": {"S": status},
                    ":now": {"S": iso(self._clock())},
                    **from_values,
                    **values,
                },
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def reset_for_replay(self, execution_id: str, *, allow_running: bool = False) -> JobRecord:
        """A dead-lettered FAILED job (or, with `allow_running`, one stuck RUNNING) → QUEUED.

        Call it before moving the job's message from the DLQ back to the jobs queue: the runner
        skips terminal jobs, so a replayed message of a FAILED job would do nothing. A SUCCEEDED job,
        or one that failed because of its strategy (replaying gives the same fault), is refused.
        """
        condition = "#s = :failed AND dead_lettered = :true"
        if allow_running:
            condition = f"({condition}) OR #s = :running"
        try:
            out = self.client.update_item(
                TableName=self.table_name,
                Key=self._key(execution_id),
                UpdateExpression=(
                    "SET #s = :queued, updated_at = :now REMOVE #e, finished_at, started_at, dead_lettered"
                ),
                ConditionExpression=f"attribute_exists(execution_id) AND ({condition})",
                ExpressionAttributeNames={"#s": "status", "#e": "error"},
                ExpressionAttributeValues={
                    ":queued": {"S": Status.QUEUED},
                    ":failed": {"S": Status.FAILED},
                    ":true": {"BOOL": True},
                    ":now": {"S": iso(self._clock())},
                    **({":running": {"S": Status.RUNNING}} if allow_running else {}),
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise
            job = self.get(execution_id)
            if job is None:
                raise JobNotFound(execution_id) from None
            raise ReplayRefused(
                f"backtest {execution_id} is {job.status}"
                + (" after a strategy fault (a replay would fail the same way)" if job.status is Status.FAILED else "")
                + "; only a dead-lettered FAILED job can be replayed"
            ) from None
        return JobRecord.model_validate(deserialize_item(out["Attributes"]))

    def _raise_refused(self, execution_id: str) -> NoReturn:
        job = self.get(execution_id)
        if job is None:
            raise JobNotFound(execution_id) from None
        raise JobAlreadyTerminal(execution_id, job.status) from None

    # ---- reads --------------------------------------------------------------------------------

    def get(self, execution_id: str) -> JobRecord | None:
        if not is_valid_execution_id(execution_id):
            return None
        out = self.client.get_item(TableName=self.table_name, Key=self._key(execution_id), ConsistentRead=True)
        item = out.get("Item")
        return JobRecord.model_validate(deserialize_item(item)) if item else None

    def get_for_owner(self, execution_id: str, owner: str) -> JobRecord:
        """The job if `owner` owns it; `JobNotFound` otherwise (unknown and foreign look the same)."""
        job = self.get(execution_id)
        if job is None or job.owner != owner:
            raise JobNotFound(execution_id)
        return job

    def list_for_owner(
        self, owner: str, *, limit: int = 20, next_token: str | None = None
    ) -> tuple[list[JobRecord], str | None]:
        """A page of `owner`'s jobs, newest first, and the token of the next page (None at the end).

        `InvalidNextToken` (from `decode_next_token`) when the token was not made by this function.
        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be within 1..{MAX_PAGE_SIZE}")
        names = {f"#a{i}": part for i, part in enumerate(sorted({a.split(".")[0] for a in LIST_ATTRIBUTES}))}
        alias = {v: k for k, v in names.items()}
        projection = ", ".join(".".join([alias[a.split(".")[0]], *a.split(".")[1:]]) for a in LIST_ATTRIBUTES)
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": JOBS_TABLE.gsi_name,
            "KeyConditionExpression": f"{alias['owner']} = :owner",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":owner": {"S": owner}},
            "ProjectionExpression": projection,
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if next_token is not None:
            query["ExclusiveStartKey"] = decode_next_token(next_token, owner)
        out = self.client.query(**query)
        jobs = [JobRecord.model_validate(deserialize_item(item)) for item in out.get("Items", [])]
        last = out.get("LastEvaluatedKey")
        return jobs, (encode_next_token(last) if last else None)


def encode_next_token(last_evaluated_key: dict[str, Any]) -> str:
    """The GSI position as an opaque URL-safe token (base64url of the key's id and time)."""
    data = {
        "id": last_evaluated_key[JOBS_TABLE.partition_key]["S"],
        "at": last_evaluated_key[JOBS_TABLE.gsi_sort_key or "created_at"]["S"],
    }
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_next_token(token: str, owner: str) -> dict[str, Any]:
    """The ExclusiveStartKey a token stands for, for `owner`; `InvalidNextToken` if it is not one."""
    try:
        if len(token) > 1024:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if not isinstance(data, dict) or set(data) != {"id", "at"}:
            raise ValueError("wrong shape")
        execution_id, created_at = data["id"], data["at"]
        if not (isinstance(execution_id, str) and is_valid_execution_id(execution_id)):
            raise ValueError("bad id")
        if not (isinstance(created_at, str) and _TIMESTAMP.match(created_at)):
            raise ValueError("bad time")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidNextToken() from None
    return {
        JOBS_TABLE.partition_key: {"S": execution_id},
        JOBS_TABLE.gsi_partition_key or "owner": {"S": owner},
        JOBS_TABLE.gsi_sort_key or "created_at": {"S": created_at},
    }


@cache
def default_job_store() -> JobStore:
    """The store of this container's jobs table (from settings)."""
    return JobStore(get_settings().jobs_table)


def reset_for_replay(execution_id: str, *, allow_running: bool = False) -> JobRecord:
    """`JobStore.reset_for_replay` on the configured table (for ops tooling: `backtest replay`)."""
    return default_job_store().reset_for_replay(execution_id, allow_running=allow_running)
