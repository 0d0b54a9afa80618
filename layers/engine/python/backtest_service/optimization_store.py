"""The optimizations table (DynamoDB): an optimization's item and its chunks' items; every transition one
conditional write (the lifecycle is in `optimizations`).

The optimization (item ``optimization``):
- `put_queued`: a new QUEUED optimization, only if the id is new.
- `mark_running`: QUEUED → RUNNING when its first chunk starts (a refusal is fine: it already is).
- `count_chunk`: adds a finished chunk's counts once (`counted` must not hold its number) and merges its best
  combinations into the running top K under the optimistic `version`; the optimization as it now is.
- `add_dead_chunk`: a chunk that dead-lettered (the optimization cannot end SUCCEEDED until it is replayed).
- `mark_succeeded` (the aggregation's final write), `mark_failed`: only from QUEUED or RUNNING, never after a
  cancel.
- `request_cancel`: the owner's cancel: QUEUED or RUNNING → CANCELLED at once (chunks look for it).
- `reset_for_replay`: a chunk's dead-letter mark removed and a dead-lettered FAILED optimization RUNNING again.
- `get_for_owner`, `list_for_owner`: what the caller may see (GSI `by_owner`, sparse: only optimizations).

A chunk (item ``chunk#00042``, created by its first start):
- `start_chunk`: (none)/QUEUED → RUNNING, or RUNNING → RUNNING when the previous attempt recorded a fault or a
  continuation (`retry_attempt` = attempts), attempts + 1; refused with `ChunkDone`, `ChunkStopped`,
  `ChunkBusy` (a live runner: fresh heartbeat) or `ChunkVanished` (a killed one).
- `report_chunk_progress` (heartbeat), `record_chunk_retry` (a fault or a continuation, with its checkpoint).
- `mark_chunk_succeeded`, `mark_chunk_failed`, `mark_chunk_cancelled`: never over another terminal status.
- `reset_chunk_for_replay`: a dead-lettered (or stuck RUNNING) chunk → QUEUED, its checkpoint kept.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from backtest_service import clients
from backtest_service.dynamo_codec import deserialize_item, serialize, serialize_item
from backtest_service.errors import ReplayRefused
from backtest_service.jobs import (
    CANCELLED_ERROR,
    STALE_AFTER_SECONDS,
    Status,
    is_valid_execution_id,
    iso,
    parse_iso,
    utc_now,
)
from backtest_service.optimizations import (
    CHUNK_ITEM_PREFIX,
    HEADER_ITEM,
    ChunkBusy,
    ChunkDone,
    ChunkRecord,
    ChunkStopped,
    ChunkVanished,
    OptimizationContended,
    OptimizationNotFound,
    OptimizationRecord,
    chunk_item,
    merge_failures,
    merge_top,
)
from backtest_service.owner_index import PageTokens, is_conditional_failure
from backtest_service.settings import get_settings
from backtest_service.topology import OPTIMIZATIONS_TABLE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MAX_PAGE_SIZE = 100
MAX_FILTER_READS = 8
# A count retries this often when other chunks' counts keep changing the optimization's `version`.
MAX_COUNT_ATTEMPTS = 25
# What a list line shows (`top`: its first entry is the best so far).
LIST_ATTRIBUTES = (
    "optimization_id",
    "owner",
    "status",
    "name",
    "symbol",
    "timeframe",
    "start_date",
    "end_date",
    "created_at",
    "started_at",
    "finished_at",
    "method",
    "target",
    "direction",
    "combinations",
    "chunks",
    "chunks_done",
    "combinations_done",
    "combinations_failed",
    "error",
    "top",
)
# What a status read needs of each chunk item.
CHUNK_ATTRIBUTES = ("chunk", "status", "progress", "attempts", "dead_lettered")
_ACTIVE = (Status.QUEUED, Status.RUNNING)
PAGE_TOKENS = PageTokens(
    OPTIMIZATIONS_TABLE,
    is_valid_execution_id,
    "your optimizations",
    fixed_key={OPTIMIZATIONS_TABLE.sort_key or "item": HEADER_ITEM},
)


def _cancelled_error() -> dict[str, Any]:
    return {"type": CANCELLED_ERROR, "message": "the optimization was cancelled by its owner"}


class OptimizationStore:
    def __init__(
        self, table_name: str, client: DynamoDBClient | None = None, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.table_name = table_name
        self._client = client
        self._clock = clock

    @property
    def client(self) -> DynamoDBClient:
        return self._client or clients.dynamodb()

    def _now(self) -> str:
        return iso(self._clock())

    @staticmethod
    def _key(optimization_id: str, item: str = HEADER_ITEM) -> dict[str, Any]:
        return {
            OPTIMIZATIONS_TABLE.partition_key: {"S": optimization_id},
            OPTIMIZATIONS_TABLE.sort_key or "item": {"S": item},
        }

    def _update(
        self,
        key: dict[str, Any],
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """One conditional update; the item after it, or None when the condition refused it."""
        try:
            out = self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={
                    **({"#s": "status"} if "#s" in update + condition else {}),
                    **(names or {}),
                },
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return None
            raise
        return deserialize_item(out["Attributes"])

    # ---- the optimization ---------------------------------------------------------------------------

    def put_queued(self, record: OptimizationRecord) -> None:
        if record.status is not Status.QUEUED:
            raise ValueError(f"a new optimization must be QUEUED, not {record.status}")
        item = record.model_dump(mode="json", exclude={"counted", "dead_chunks"})
        self.client.put_item(
            TableName=self.table_name,
            Item=serialize_item(item),
            ConditionExpression="attribute_not_exists(optimization_id)",
        )

    def get(self, optimization_id: str) -> OptimizationRecord | None:
        if not is_valid_execution_id(optimization_id):
            return None
        out = self.client.get_item(TableName=self.table_name, Key=self._key(optimization_id), ConsistentRead=True)
        item = out.get("Item")
        return OptimizationRecord.model_validate(deserialize_item(item)) if item else None

    def get_for_owner(self, optimization_id: str, owner: str) -> OptimizationRecord:
        record = self.get(optimization_id)
        if record is None or record.owner != owner:
            raise OptimizationNotFound(optimization_id)
        return record

    def stop_requested(self, optimization_id: str) -> bool:
        """Whether the chunks of this optimization must stop: cancelled, failed, gone (one small read; a
        running chunk asks twice a second)."""
        out = self.client.get_item(
            TableName=self.table_name,
            Key=self._key(optimization_id),
            ProjectionExpression="cancel_requested_at, #s",
            ExpressionAttributeNames={"#s": "status"},
        )
        item = out.get("Item")
        return item is None or "cancel_requested_at" in item or item.get("status", {}).get("S") not in _ACTIVE

    def mark_running(self, optimization_id: str) -> bool:
        now = self._now()
        return (
            self._update(
                self._key(optimization_id),
                "SET #s = :running, started_at = :now, updated_at = :now",
                "#s = :queued",
                {":running": {"S": Status.RUNNING}, ":queued": {"S": Status.QUEUED}, ":now": {"S": now}},
            )
            is not None
        )

    def count_chunk(
        self,
        optimization_id: str,
        chunk: int,
        *,
        done: int,
        failed: int,
        feasible: int,
        top: list[dict[str, Any]],
        failures: list[dict[str, Any]],
    ) -> tuple[bool, OptimizationRecord]:
        """Count finished chunk `chunk` into its optimization, once: (whether this call counted it, the
        optimization as it now is). Not counted: already counted, or the optimization is no longer active."""
        for _ in range(MAX_COUNT_ATTEMPTS):
            record = self.get(optimization_id)
            if record is None:
                raise OptimizationNotFound(optimization_id)
            if chunk in record.counted or record.status not in _ACTIVE:
                return False, record
            merged = merge_top(record.top, top, k=record.top_k, target=record.target, direction=record.direction)
            item = self._update(
                self._key(optimization_id),
                "SET top = :top, failed_examples = :failures, version = :next, updated_at = :now "
                "ADD chunks_done :one, combinations_done :done, combinations_failed :failed, "
                "combinations_feasible :feasible, counted :chunk_set",
                "#s IN (:queued, :running) AND NOT contains(counted, :chunk) AND "
                "(attribute_not_exists(version) OR version = :version)",
                {
                    ":top": serialize(merged),
                    ":failures": serialize(merge_failures(record.failed_examples, failures)),
                    ":next": {"N": str(record.version + 1)},
                    ":version": {"N": str(record.version)},
                    ":now": {"S": self._now()},
                    ":one": {"N": "1"},
                    ":done": {"N": str(done)},
                    ":failed": {"N": str(failed)},
                    ":feasible": {"N": str(feasible)},
                    ":chunk_set": {"NS": [str(chunk)]},
                    ":chunk": {"N": str(chunk)},
                    ":queued": {"S": Status.QUEUED},
                    ":running": {"S": Status.RUNNING},
                },
            )
            if item is not None:
                return True, OptimizationRecord.model_validate(item)
        raise OptimizationContended(f"optimization {optimization_id} kept changing while chunk {chunk} was counted")

    def add_dead_chunk(self, optimization_id: str, chunk: int) -> OptimizationRecord | None:
        """Note that `chunk` dead-lettered; the optimization as it now is (None if it is gone)."""
        item = self._update(
            self._key(optimization_id),
            "SET updated_at = :now ADD dead_chunks :chunk_set",
            "attribute_exists(optimization_id)",
            {":now": {"S": self._now()}, ":chunk_set": {"NS": [str(chunk)]}},
        )
        return OptimizationRecord.model_validate(item) if item is not None else None

    def mark_succeeded(self, optimization_id: str, fields: dict[str, Any]) -> bool:
        """QUEUED/RUNNING (not cancelled) → SUCCEEDED with `fields` (best, top, windows, table keys...)."""
        names = {f"#f_{k}": k for k in fields}
        values = {f":f_{k}": serialize(v) for k, v in fields.items()}
        sets = ", ".join(f"#f_{k} = :f_{k}" for k in fields)
        return (
            self._update(
                self._key(optimization_id),
                f"SET #s = :succeeded, finished_at = :now, updated_at = :now, {sets} REMOVE #e, dead_lettered",
                "#s IN (:queued, :running) AND attribute_not_exists(cancel_requested_at)",
                {
                    ":succeeded": {"S": Status.SUCCEEDED},
                    ":queued": {"S": Status.QUEUED},
                    ":running": {"S": Status.RUNNING},
                    ":now": {"S": self._now()},
                    **values,
                },
                {"#e": "error", **names},
            )
            is not None
        )

    def mark_failed(self, optimization_id: str, error: dict[str, Any], *, dead_lettered: bool = False) -> bool:
        """QUEUED/RUNNING → FAILED with `error`; False when already terminal."""
        return (
            self._update(
                self._key(optimization_id),
                "SET #s = :failed, finished_at = :now, updated_at = :now, #e = :error, dead_lettered = :dl",
                "#s IN (:queued, :running)",
                {
                    ":failed": {"S": Status.FAILED},
                    ":queued": {"S": Status.QUEUED},
                    ":running": {"S": Status.RUNNING},
                    ":now": {"S": self._now()},
                    ":error": serialize(error),
                    ":dl": {"BOOL": dead_lettered},
                },
                {"#e": "error"},
            )
            is not None
        )

    def request_cancel(self, optimization_id: str, owner: str) -> OptimizationRecord:
        """The owner's cancel: QUEUED or RUNNING → CANCELLED at once (queued chunks never run, running ones
        stop within about a second); a terminal optimization is answered as it is. Idempotent."""
        record = self.get_for_owner(optimization_id, owner)
        if record.status.terminal:
            return record
        now = self._now()
        item = self._update(
            self._key(optimization_id),
            "SET #s = :cancelled, finished_at = :now, updated_at = :now, #e = :error, "
            "cancel_requested_at = if_not_exists(cancel_requested_at, :now)",
            "#o = :owner AND #s IN (:queued, :running)",
            {
                ":cancelled": {"S": Status.CANCELLED},
                ":queued": {"S": Status.QUEUED},
                ":running": {"S": Status.RUNNING},
                ":owner": {"S": owner},
                ":now": {"S": now},
                ":error": serialize(_cancelled_error()),
            },
            {"#e": "error", "#o": "owner"},
        )
        return OptimizationRecord.model_validate(item) if item else self.get_for_owner(optimization_id, owner)

    def reset_for_replay(self, optimization_id: str, chunk: int) -> OptimizationRecord:
        """Before a dead-lettered chunk's message goes back to its queue: the chunk is no longer dead, and a
        dead-lettered FAILED optimization is RUNNING again. `ReplayRefused` for a SUCCEEDED, CANCELLED or
        input-FAILED optimization (nothing a replay can change), `OptimizationNotFound` when it is gone."""
        values = {":now": {"S": self._now()}, ":chunk_set": {"NS": [str(chunk)]}}
        item = self._update(
            self._key(optimization_id),
            "SET #s = :running, updated_at = :now REMOVE #e, finished_at, dead_lettered DELETE dead_chunks :chunk_set",
            "#s = :failed AND dead_lettered = :t",
            {**values, ":running": {"S": Status.RUNNING}, ":failed": {"S": Status.FAILED}, ":t": {"BOOL": True}},
            {"#e": "error"},
        ) or self._update(
            self._key(optimization_id),
            "SET updated_at = :now DELETE dead_chunks :chunk_set",
            "#s IN (:queued, :running)",
            {**values, ":queued": {"S": Status.QUEUED}, ":running": {"S": Status.RUNNING}},
        )
        if item is not None:
            return OptimizationRecord.model_validate(item)
        record = self.get(optimization_id)
        if record is None:
            raise OptimizationNotFound(optimization_id)
        raise ReplayRefused(
            f"optimization {optimization_id} is {record.status}; only a running one or one FAILED because a chunk "
            "dead-lettered can be replayed"
        )

    def list_for_owner(
        self, owner: str, *, limit: int = 20, next_token: str | None = None, status: Status | None = None
    ) -> tuple[list[OptimizationRecord], str | None]:
        """A page of `owner`'s optimizations, newest first, and the next page's token (None at the end)."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be within 1..{MAX_PAGE_SIZE}")
        roots = sorted({a.split(".")[0].split("[")[0] for a in LIST_ATTRIBUTES})
        names = {f"#a{i}": name for i, name in enumerate(roots)}
        alias = {v: k for k, v in names.items()}

        def path(attribute: str) -> str:
            root = attribute.split(".")[0].split("[")[0]
            return alias[root] + attribute[len(root) :]

        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": OPTIMIZATIONS_TABLE.gsi_name,
            "KeyConditionExpression": f"{alias['owner']} = :owner",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":owner": {"S": owner}},
            "ProjectionExpression": ", ".join(path(a) for a in LIST_ATTRIBUTES),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if status is not None:
            query["FilterExpression"] = f"{alias['status']} = :f_status"
            query["ExpressionAttributeValues"][":f_status"] = {"S": status.value}
        if next_token is not None:
            query["ExclusiveStartKey"] = PAGE_TOKENS.decode(next_token, owner)
        items: list[dict[str, Any]] = []
        last: dict[str, Any] | None = None
        for _ in range(MAX_FILTER_READS if status is not None else 1):
            out = self.client.query(**query)
            items.extend(out.get("Items", []))
            last = out.get("LastEvaluatedKey")
            if len(items) >= limit or not last:
                break
            query["ExclusiveStartKey"] = last
        if len(items) > limit:
            items = items[:limit]
            last = items[-1]
        records = []
        for item in items:
            data = deserialize_item(item)
            data.setdefault("request", {})
            records.append(OptimizationRecord.model_validate(data))
        return records, (PAGE_TOKENS.encode(last) if last else None)

    # ---- chunks -------------------------------------------------------------------------------------

    def get_chunk(self, optimization_id: str, chunk: int) -> ChunkRecord | None:
        out = self.client.get_item(
            TableName=self.table_name, Key=self._key(optimization_id, chunk_item(chunk)), ConsistentRead=True
        )
        item = out.get("Item")
        return ChunkRecord.model_validate(deserialize_item(item)) if item else None

    def chunks(self, optimization_id: str) -> list[ChunkRecord]:
        """The items of the chunks that started (or were stopped), in chunk order (a few small attributes)."""
        names = {"#i": OPTIMIZATIONS_TABLE.sort_key or "item", **{f"#c{i}": a for i, a in enumerate(CHUNK_ATTRIBUTES)}}
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "optimization_id = :id AND begins_with(#i, :prefix)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":id": {"S": optimization_id}, ":prefix": {"S": CHUNK_ITEM_PREFIX}},
            "ProjectionExpression": ", ".join(
                ["optimization_id", "#i", *(f"#c{i}" for i in range(len(CHUNK_ATTRIBUTES)))]
            ),
        }
        out: list[ChunkRecord] = []
        while True:
            page = self.client.query(**query)
            # An item without a status is one being created (seen on the local stack, whose moto is not atomic
            # across threads): not started yet.
            out.extend(
                ChunkRecord.model_validate(deserialize_item(item)) for item in page.get("Items", []) if "status" in item
            )
            if not page.get("LastEvaluatedKey"):
                return out
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def is_stale(self, chunk: ChunkRecord) -> bool:
        beat = chunk.heartbeat_at or chunk.started_at or chunk.updated_at
        return beat is None or (self._clock() - parse_iso(beat)).total_seconds() > STALE_AFTER_SECONDS

    def start_chunk(self, optimization_id: str, chunk: int, *, expires_at: int | None) -> ChunkRecord:
        """(none)/QUEUED → RUNNING, or RUNNING → RUNNING after a recorded fault or continuation; attempts + 1.
        Refused: `ChunkDone`, `ChunkStopped`, `ChunkBusy`, `ChunkVanished` (see the module docstring)."""
        now = self._now()
        item = self._update(
            self._key(optimization_id, chunk_item(chunk)),
            "SET #s = :running, chunk = :chunk, attempts = if_not_exists(attempts, :zero) + :one, "
            "started_at = if_not_exists(started_at, :now), updated_at = :now, heartbeat_at = :now, "
            "expires_at = :expires REMOVE progress",
            "attribute_not_exists(#s) OR #s = :queued OR (#s = :running AND retry_attempt = attempts)",
            {
                ":running": {"S": Status.RUNNING},
                ":queued": {"S": Status.QUEUED},
                ":chunk": {"N": str(chunk)},
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
                ":now": {"S": now},
                ":expires": {"N": str(expires_at)} if expires_at is not None else {"NULL": True},
            },
        )
        if item is not None:
            return ChunkRecord.model_validate(item)
        current = self.get_chunk(optimization_id, chunk)
        if current is None:  # removed between the two calls (the optimization expired): retry
            raise ChunkBusy(f"chunk {chunk} of optimization {optimization_id} disappeared")
        if current.status is Status.SUCCEEDED:
            raise ChunkDone(current)
        if current.status in (Status.CANCELLED, Status.FAILED):
            raise ChunkStopped(current)
        if current.status is Status.RUNNING and self.is_stale(current):
            raise ChunkVanished(current)
        raise ChunkBusy(f"chunk {chunk} of optimization {optimization_id} is being run by another runner")

    def _running_chunk(
        self, optimization_id: str, chunk: int, attempt: int, update: str, values: dict[str, Any]
    ) -> bool:
        return (
            self._update(
                self._key(optimization_id, chunk_item(chunk)),
                update,
                "#s = :running AND attempts = :attempt",
                {
                    ":running": {"S": Status.RUNNING},
                    ":attempt": {"N": str(attempt)},
                    ":now": {"S": self._now()},
                    **values,
                },
            )
            is not None
        )

    def report_chunk_progress(self, optimization_id: str, chunk: int, attempt: int, progress: dict[str, Any]) -> bool:
        """The running attempt's progress and heartbeat; False when the chunk is no longer this attempt's."""
        return self._running_chunk(
            optimization_id,
            chunk,
            attempt,
            "SET progress = :progress, heartbeat_at = :now, updated_at = :now",
            {":progress": serialize(progress)},
        )

    def record_chunk_retry(
        self, optimization_id: str, chunk: int, attempt: int, *, next_unit: int | None = None
    ) -> bool:
        """`attempt` ended with an infrastructure fault, or continues in a new message (`next_unit`: its
        checkpoint): the next delivery may run the chunk again."""
        update = "SET retry_attempt = :attempt, updated_at = :now"
        values: dict[str, Any] = {}
        if next_unit is not None:
            update += ", next_unit = :unit"
            values[":unit"] = {"N": str(next_unit)}
        return self._running_chunk(optimization_id, chunk, attempt, update, values)

    def mark_chunk_succeeded(self, optimization_id: str, chunk: int, counts: dict[str, int]) -> bool:
        """RUNNING → SUCCEEDED with its counts; False when it is not RUNNING (another delivery finished it)."""
        return (
            self._update(
                self._key(optimization_id, chunk_item(chunk)),
                "SET #s = :succeeded, finished_at = :now, updated_at = :now, succeeded = :ok, failed = :bad, "
                "feasible = :feasible REMOVE progress, #e, dead_lettered",
                "#s = :running",
                {
                    ":succeeded": {"S": Status.SUCCEEDED},
                    ":running": {"S": Status.RUNNING},
                    ":now": {"S": self._now()},
                    ":ok": {"N": str(counts["succeeded"])},
                    ":bad": {"N": str(counts["failed"])},
                    ":feasible": {"N": str(counts["feasible"])},
                },
                {"#e": "error"},
            )
            is not None
        )

    def _stop_chunk(self, optimization_id: str, chunk: int, status: Status, error: dict[str, Any], dead: bool) -> bool:
        return (
            self._update(
                self._key(optimization_id, chunk_item(chunk)),
                "SET #s = :new, chunk = :chunk, finished_at = :now, updated_at = :now, #e = :error, "
                "dead_lettered = :dead REMOVE progress",
                "attribute_not_exists(#s) OR #s IN (:queued, :running)",
                {
                    ":new": {"S": status},
                    ":chunk": {"N": str(chunk)},
                    ":queued": {"S": Status.QUEUED},
                    ":running": {"S": Status.RUNNING},
                    ":now": {"S": self._now()},
                    ":error": serialize(error),
                    ":dead": {"BOOL": dead},
                },
                {"#e": "error"},
            )
            is not None
        )

    def mark_chunk_failed(
        self, optimization_id: str, chunk: int, error: dict[str, Any], *, dead_lettered: bool = False
    ) -> bool:
        return self._stop_chunk(optimization_id, chunk, Status.FAILED, error, dead_lettered)

    def mark_chunk_cancelled(self, optimization_id: str, chunk: int) -> bool:
        return self._stop_chunk(optimization_id, chunk, Status.CANCELLED, _cancelled_error(), False)

    def reset_chunk_for_replay(self, optimization_id: str, chunk: int) -> bool:
        """A dead-lettered FAILED (or stuck RUNNING) chunk → QUEUED, keeping its checkpoint; True when reset,
        False when there was nothing to reset (not started, QUEUED, or SUCCEEDED: its message is moved as is)."""
        item = self._update(
            self._key(optimization_id, chunk_item(chunk)),
            "SET #s = :queued, updated_at = :now REMOVE #e, finished_at, dead_lettered, retry_attempt, heartbeat_at, "
            "progress",
            "(#s = :failed AND dead_lettered = :t) OR #s = :running",
            {
                ":queued": {"S": Status.QUEUED},
                ":failed": {"S": Status.FAILED},
                ":running": {"S": Status.RUNNING},
                ":t": {"BOOL": True},
                ":now": {"S": self._now()},
            },
            {"#e": "error"},
        )
        if item is not None:
            return True
        current = self.get_chunk(optimization_id, chunk)
        if current is not None and current.status in (Status.FAILED, Status.CANCELLED):
            raise ReplayRefused(
                f"chunk {chunk} of optimization {optimization_id} is {current.status}"
                + (f" ({(current.error or {}).get('type')})" if current.error else "")
                + "; only a dead-lettered chunk can be replayed"
            )
        return False


@cache
def default_optimization_store() -> OptimizationStore:
    return OptimizationStore(get_settings().optimizations_table)
