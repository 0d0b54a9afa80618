"""The jobs table (DynamoDB): every lifecycle transition is one conditional write.

- `put_queued`: a new QUEUED job, only if the id is new.
- `start`: QUEUED → RUNNING, or RUNNING → RUNNING when the previous attempt recorded its infrastructure
  fault (`record_retry`), attempts + 1. A RUNNING job whose runner vanished without recording anything
  (Lambda killed it: timeout, out of memory) is ended FAILED `RunnerKilled` instead of being run into the
  same wall again; one whose runner is still alive (fresh heartbeat: a duplicate delivery) is left alone.
- `report_progress`: the running attempt's progress and heartbeat; False once the job was cancelled,
  deleted, finished or taken over, which tells the runner to stop.
- `mark_succeeded`: RUNNING → SUCCEEDED; `mark_failed`: QUEUED/RUNNING → FAILED; `mark_cancelled`:
  RUNNING → CANCELLED (never over a terminal status).
- `request_cancel`, `delete_for_owner`, `update_for_owner`: the caller's run management.
- `reset_for_replay`: a dead-lettered FAILED job → QUEUED (ops replay); never a SUCCEEDED or CANCELLED one.
- `get_for_owner`, `list_for_owner`: what the caller may see (GSI `by_owner`, newest first, with an
  opaque `next_token`, optionally filtered by status, symbol and name prefix).

Table layout from `topology.JOBS_TABLE`; the GSI must project the listed attributes (CDK's default,
ALL, does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, NoReturn

from botocore.exceptions import ClientError

from backtest_service import clients
from backtest_service.dynamo_codec import deserialize_item, serialize, serialize_item
from backtest_service.errors import (
    JobAlreadyTerminal,
    JobBusy,
    JobNotFound,
    ReplayRefused,
    RunnerVanished,
)
from backtest_service.jobs import (
    CANCELLED_ERROR,
    STALE_AFTER_SECONDS,
    JobRecord,
    JobSummaryUpdate,
    Status,
    is_valid_execution_id,
    iso,
    parse_iso,
    sources,
    utc_now,
)
from backtest_service.owner_index import PageTokens, delete_owned, is_conditional_failure
from backtest_service.settings import get_settings
from backtest_service.topology import ACTIVE_BY_OWNER, JOBS_TABLE

PAGE_TOKENS = PageTokens(JOBS_TABLE, is_valid_execution_id, "your executions")

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MAX_PAGE_SIZE = 100
# The metrics a job list shows beside each job (the full set is on the job and in its result).
HEADLINE_METRICS = (
    "total_return_percent",
    "sharpe_ratio",
    "max_drawdown_percent",
    "win_rate",
    "total_trades",
    "final_capital",
)
# A filtered list reads at most this many GSI pages to fill one answer (each read returns `limit` items
# before the filter), so a rare filter answers a short page with a next_token instead of scanning forever.
MAX_FILTER_READS = 8
# Attributes a job list shows (the GSI's projection must include them).
LIST_ATTRIBUTES = (
    "execution_id",
    "owner",
    "status",
    "name",
    "notes",
    "symbol",
    "timeframe",
    "start_date",
    "end_date",
    "created_at",
    "started_at",
    "finished_at",
    "attempts",
    "error",
    "progress",
    "request.parameters",
    *(f"performance_metrics.{key}" for key in HEADLINE_METRICS),
)


def _status_values(statuses: tuple[Status, ...]) -> tuple[str, dict[str, Any]]:
    """`:from_queued, :from_running` and their values, for `#s IN (...)`."""
    names = {f":from_{s.lower()}": {"S": s.value} for s in statuses}
    return ", ".join(names), names


class JobStore:
    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        stale_after_seconds: float = STALE_AFTER_SECONDS,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self._clock = clock
        self.stale_after_seconds = stale_after_seconds

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
            Item=serialize_item({**record.model_dump(mode="json"), "active_owner": record.owner}),
            ConditionExpression="attribute_not_exists(execution_id)",
        )

    def start(self, execution_id: str) -> JobRecord:
        """QUEUED → RUNNING (or RUNNING → RUNNING after a recorded infrastructure fault) with attempts + 1
        and started_at and heartbeat_at now; the job as it now is.

        Raises `JobAlreadyTerminal` (the runner skips the message), `JobBusy` (another runner is alive on
        it: skip), `RunnerVanished` (the previous attempt was killed: the caller ends the job FAILED) or
        `JobNotFound`. A job whose cancel was requested is never started: it is ended CANCELLED here and
        `JobAlreadyTerminal` raised.
        """
        now = iso(self._clock())
        try:
            out = self.client.update_item(
                TableName=self.table_name,
                Key=self._key(execution_id),
                UpdateExpression=(
                    "SET #s = :running, attempts = if_not_exists(attempts, :zero) + :one, "
                    "started_at = :now, updated_at = :now, heartbeat_at = :now REMOVE progress"
                ),
                ConditionExpression=(
                    "attribute_exists(execution_id) AND attribute_not_exists(cancel_requested_at) AND "
                    "(#s = :queued OR (#s = :running AND retry_attempt = attempts))"
                ),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":queued": {"S": Status.QUEUED},
                    ":running": {"S": Status.RUNNING},
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                    ":now": {"S": now},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            self._raise_refused(execution_id)
        return JobRecord.model_validate(deserialize_item(out["Attributes"]))

    def _raise_refused(self, execution_id: str) -> NoReturn:
        job = self.get(execution_id)
        if job is None:
            raise JobNotFound(execution_id) from None
        if job.status.terminal:
            raise JobAlreadyTerminal(execution_id, job.status) from None
        if job.cancel_requested_at is not None:
            self.mark_cancelled(execution_id)
            raise JobAlreadyTerminal(execution_id, Status.CANCELLED) from None
        if job.status is Status.RUNNING:
            if not self.is_stale(job):
                raise JobBusy(execution_id) from None
            raise RunnerVanished(job) from None
        # QUEUED again between the update and the read (a replay): let SQS deliver once more
        raise JobBusy(execution_id) from None

    def is_stale(self, job: JobRecord) -> bool:
        """True when the job's runner has not written a heartbeat for `stale_after_seconds`."""
        beat = job.heartbeat_at or job.started_at or job.updated_at or job.created_at
        return (self._clock() - parse_iso(beat)).total_seconds() > self.stale_after_seconds

    def record_retry(self, execution_id: str, attempt: int) -> bool:
        """Note that `attempt` ended with an infrastructure fault the runner saw (so SQS's redelivery runs
        the job again instead of taking it for a killed runner); False if the job moved on meanwhile."""
        return self._update_running(execution_id, attempt, "SET retry_attempt = :attempt, updated_at = :now", {})

    def report_progress(self, execution_id: str, attempt: int, progress: dict[str, Any]) -> bool:
        """Write the running attempt's progress and heartbeat. False when the job is no longer this attempt's
        to run: cancelled, deleted, finished, or started again by another delivery — the runner stops."""
        return self._update_running(
            execution_id,
            attempt,
            "SET progress = :progress, heartbeat_at = :now, updated_at = :now",
            {":progress": serialize(progress)},
            extra_condition="attribute_not_exists(cancel_requested_at)",
        )

    def _update_running(
        self,
        execution_id: str,
        attempt: int,
        update: str,
        values: dict[str, Any],
        *,
        extra_condition: str | None = None,
    ) -> bool:
        condition = "attribute_exists(execution_id) AND #s = :running AND attempts = :attempt"
        if extra_condition:
            condition = f"{condition} AND {extra_condition}"
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(execution_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":running": {"S": Status.RUNNING},
                    ":attempt": {"N": str(attempt)},
                    ":now": {"S": iso(self._clock())},
                    **values,
                },
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    def count_active(self, owner: str, *, at_most: int) -> int:
        """How many of `owner`'s jobs are QUEUED or RUNNING, counting no further than `at_most` (one query of
        the sparse index: it holds active jobs only; eventually consistent, so a limit on it is soft by the
        second or so the index lags)."""
        out = self.client.query(
            TableName=self.table_name,
            IndexName=ACTIVE_BY_OWNER.name,
            KeyConditionExpression="active_owner = :owner",
            ExpressionAttributeValues={":owner": {"S": owner}},
            Select="COUNT",
            Limit=at_most,
        )
        return int(out.get("Count", 0))

    def cancel_requested(self, execution_id: str) -> bool:
        """Whether the caller asked to stop this job, or it is gone (one small eventually consistent read:
        the runner asks twice a second while the strategy runs)."""
        out = self.client.get_item(
            TableName=self.table_name,
            Key=self._key(execution_id),
            ProjectionExpression="cancel_requested_at, #s",
            ExpressionAttributeNames={"#s": "status"},
        )
        item = out.get("Item")
        return item is None or "cancel_requested_at" in item or item.get("status", {}).get("S") != Status.RUNNING

    def mark_succeeded(self, execution_id: str, summary: JobSummaryUpdate) -> bool:
        """RUNNING → SUCCEEDED with the summary; False when it is not RUNNING (another delivery won)."""
        fields = summary.model_dump(mode="json")
        names = {f"#f_{k}": k for k in fields}
        values = {f":f_{k}": serialize(v) for k, v in fields.items()}
        sets = ", ".join(f"#f_{k} = :f_{k}" for k in fields)
        return self._finish(
            execution_id,
            Status.SUCCEEDED,
            f"SET #s = :new, finished_at = :now, updated_at = :now, {sets} "
            "REMOVE #e, dead_lettered, progress, active_owner",
            values,
            names,
        )

    def mark_failed(self, execution_id: str, error: dict[str, Any], *, dead_lettered: bool = False) -> bool:
        """QUEUED/RUNNING → FAILED with `error` ({type, message, line?}); False when already terminal."""
        return self._finish(
            execution_id,
            Status.FAILED,
            "SET #s = :new, finished_at = :now, updated_at = :now, #e = :error, dead_lettered = :dl "
            "REMOVE progress, active_owner",
            {":error": serialize(error), ":dl": {"BOOL": dead_lettered}},
        )

    def mark_cancelled(self, execution_id: str) -> bool:
        """QUEUED/RUNNING → CANCELLED; False when already terminal."""
        return self._finish(
            execution_id,
            Status.CANCELLED,
            "SET #s = :new, finished_at = :now, updated_at = :now, #e = :error, "
            "cancel_requested_at = if_not_exists(cancel_requested_at, :now) REMOVE progress, active_owner",
            {":error": serialize(_cancelled_error())},
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
            if is_conditional_failure(exc):
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
                    "SET #s = :queued, updated_at = :now, active_owner = #o "
                    "REMOVE #e, finished_at, started_at, dead_lettered, retry_attempt, heartbeat_at, progress"
                ),
                ConditionExpression=f"attribute_exists(execution_id) AND ({condition})",
                ExpressionAttributeNames={"#s": "status", "#e": "error", "#o": "owner"},
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
            if not is_conditional_failure(exc):
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

    # ---- the caller's run management ---------------------------------------------------------------

    def request_cancel(self, execution_id: str, owner: str) -> JobRecord:
        """Cancel the caller's job; the job as it now is. Idempotent.

        QUEUED: CANCELLED at once (its message is skipped when it arrives). RUNNING: `cancel_requested_at`
        is set and the runner, which looks for it twice a second, stops the strategy and ends the job
        CANCELLED; a RUNNING job whose runner is gone (no heartbeat for `STALE_AFTER_SECONDS`) is ended
        CANCELLED here. A terminal job is left as it is. `JobNotFound` for an unknown or foreign id."""
        job = self.get_for_owner(execution_id, owner)
        now = iso(self._clock())
        stale = iso(self._clock() - timedelta(seconds=self.stale_after_seconds))
        steps: list[tuple[str, str, dict[str, Any]]] = [
            (
                "SET #s = :cancelled, finished_at = :now, updated_at = :now, cancel_requested_at = :now, #e = :error "
                "REMOVE active_owner",
                "#s = :queued",
                {":cancelled": {"S": Status.CANCELLED}, ":queued": {"S": Status.QUEUED}},
            ),
            (
                "SET #s = :cancelled, finished_at = :now, updated_at = :now, "
                "cancel_requested_at = if_not_exists(cancel_requested_at, :now), #e = :error "
                "REMOVE progress, active_owner",
                "#s = :running AND heartbeat_at < :stale",
                {":cancelled": {"S": Status.CANCELLED}, ":running": {"S": Status.RUNNING}, ":stale": {"S": stale}},
            ),
            (
                "SET cancel_requested_at = if_not_exists(cancel_requested_at, :now), updated_at = :now",
                "#s = :running",
                {":running": {"S": Status.RUNNING}},
            ),
        ]
        for update, condition, values in steps if not job.status.terminal else []:
            try:
                out = self.client.update_item(
                    TableName=self.table_name,
                    Key=self._key(execution_id),
                    UpdateExpression=update,
                    ConditionExpression=f"#o = :owner AND {condition}",
                    ExpressionAttributeNames={
                        "#s": "status",
                        "#o": "owner",
                        **({"#e": "error"} if "#e" in update else {}),
                    },
                    ExpressionAttributeValues={
                        ":owner": {"S": owner},
                        ":now": {"S": now},
                        **({":error": serialize(_cancelled_error())} if "#e" in update else {}),
                        **values,
                    },
                    ReturnValues="ALL_NEW",
                )
            except ClientError as exc:
                if not is_conditional_failure(exc):
                    raise
                continue
            return JobRecord.model_validate(deserialize_item(out["Attributes"]))
        return self.get_for_owner(execution_id, owner)

    def delete_for_owner(self, execution_id: str, owner: str) -> JobRecord:
        """Remove the caller's job record; the record as it was. A runner still on it finds it gone at its
        next progress write, stops, and removes anything it stored after this (see the runner)."""
        if not is_valid_execution_id(execution_id):
            raise JobNotFound(execution_id)
        old = delete_owned(self.client, self.table_name, self._key(execution_id), owner)
        if old is None:
            raise JobNotFound(execution_id)
        return JobRecord.model_validate(deserialize_item(old))

    def update_for_owner(self, execution_id: str, owner: str, changes: dict[str, str | None]) -> JobRecord:
        """Set (a value) or remove (None) the caller's editable fields (`name`, `notes`); the job after."""
        if not is_valid_execution_id(execution_id):
            raise JobNotFound(execution_id)
        names = {f"#f_{k}": k for k in changes}
        sets = [f"#f_{k} = :f_{k}" for k, v in changes.items() if v is not None]
        removes = [f"#f_{k}" for k, v in changes.items() if v is None]
        update = "SET " + ", ".join([*sets, "updated_at = :now"]) + (f" REMOVE {', '.join(removes)}" if removes else "")
        try:
            out = self.client.update_item(
                TableName=self.table_name,
                Key=self._key(execution_id),
                UpdateExpression=update,
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={**names, "#o": "owner"},
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":now": {"S": iso(self._clock())},
                    **{f":f_{k}": {"S": v} for k, v in changes.items() if v is not None},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                raise JobNotFound(execution_id) from None
            raise
        return JobRecord.model_validate(deserialize_item(out["Attributes"]))

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
        self,
        owner: str,
        *,
        limit: int = 20,
        next_token: str | None = None,
        filters: ListFilters | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        """A page of `owner`'s jobs, newest first, and the token of the next page (None at the end).

        With `filters`, only matching jobs: DynamoDB applies a filter after reading `Limit` items, so this
        reads on (at most `MAX_FILTER_READS` times) until the page is full; the token then points just after
        the last job returned. `InvalidNextToken` (from `PageTokens.decode`) for a token not made here.
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
        if filters is not None and (expression := filters.expression(alias)) is not None:
            condition, values = expression
            query["FilterExpression"] = condition
            query["ExpressionAttributeValues"].update(values)
        if next_token is not None:
            query["ExclusiveStartKey"] = PAGE_TOKENS.decode(next_token, owner)
        items: list[dict[str, Any]] = []
        last: dict[str, Any] | None = None
        for _ in range(MAX_FILTER_READS if "FilterExpression" in query else 1):
            out = self.client.query(**query)
            items.extend(out.get("Items", []))
            last = out.get("LastEvaluatedKey")
            if len(items) >= limit or not last:
                break
            query["ExclusiveStartKey"] = last
        if len(items) > limit:  # the page ends inside the last read: continue after its last job
            items = items[:limit]
            last = items[-1]
        jobs = [JobRecord.model_validate(deserialize_item(item)) for item in items]
        return jobs, (PAGE_TOKENS.encode(last) if last else None)


@dataclass(frozen=True)
class ListFilters:
    """What a job list may be narrowed to (each None = any)."""

    status: Status | None = None
    symbol: str | None = None
    name_prefix: str | None = None

    def expression(self, alias: dict[str, str]) -> tuple[str, dict[str, Any]] | None:
        """The FilterExpression and its values over the list's projection aliases; None without filters."""
        parts: list[str] = []
        values: dict[str, Any] = {}
        if self.status is not None:
            parts.append(f"{alias['status']} = :f_status")
            values[":f_status"] = {"S": self.status.value}
        if self.symbol is not None:
            parts.append(f"{alias['symbol']} = :f_symbol")
            values[":f_symbol"] = {"S": self.symbol}
        if self.name_prefix:
            parts.append(f"begins_with({alias['name']}, :f_name)")
            values[":f_name"] = {"S": self.name_prefix}
        return (" AND ".join(parts), values) if parts else None


def _cancelled_error() -> dict[str, Any]:
    return {"type": CANCELLED_ERROR, "message": "the backtest was cancelled by its owner"}


@cache
def default_job_store() -> JobStore:
    """The store of this container's jobs table (from settings)."""
    settings = get_settings()
    return JobStore(settings.jobs_table, stale_after_seconds=settings.stale_after_seconds)


def reset_for_replay(execution_id: str, *, allow_running: bool = False) -> JobRecord:
    """`JobStore.reset_for_replay` on the configured table (for ops tooling: `backtest replay`)."""
    return default_job_store().reset_for_replay(execution_id, allow_running=allow_running)
