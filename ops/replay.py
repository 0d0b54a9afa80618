"""`backtest replay`: send dead-lettered jobs back to the jobs queue so they run again.

A message reaches the DLQ after `maxReceiveCount` failed receives of an infrastructure fault; the
runner marked its job FAILED with `dead_lettered: true` on the last receive. Replaying a message is:

1. look at the job the message names (`JobStore.get`):
   - SUCCEEDED: nothing to run (a duplicate delivery made it); the DLQ message is deleted;
   - FAILED and dead-lettered, or stuck RUNNING (the runner died on the last receive): reset it to
     QUEUED (`reset_for_replay`) — the runner skips terminal jobs, so this comes first;
   - QUEUED: an earlier replay reset it but did not move the message; it is moved as is;
   - FAILED by its own strategy, unknown (expired) or an unreadable message: kept in the DLQ;
2. move the message: SEND it to the jobs queue BEFORE DELETING it from the DLQ, so a crash in between
   leaves a duplicate (harmless: the runner is idempotent per execution id), never a loss.

Moving has two implementations behind `MessageMover`:
- `MoveTaskMover`: SQS's own message move task (`start_message_move_task`, progress from
  `list_message_move_tasks`): used on AWS when every message of the DLQ is to be replayed;
- `ReceiveSendDeleteMover`: message by message: for selected execution ids, `--max`, a DLQ holding
  messages to keep, and wherever the move task is not available (moto does not implement it).

Rerunning is safe: replayed jobs are QUEUED or done, their messages gone from the DLQ.

Optimization chunks (issue 14) have their own queue and DLQ; their messages are replayed in a second pass
(`replay_chunks`), message by message, looking at the optimization and the chunk:
- the optimization SUCCEEDED: nothing to run, the message is deleted (a duplicate, or the last receive
  found the results stored after all);
- RUNNING, QUEUED, or FAILED because a chunk dead-lettered: the chunk's dead-letter mark is removed
  (`reset_chunk_for_replay`: FAILED or stuck RUNNING → QUEUED, its checkpoint kept; a SUCCEEDED chunk is left
  as it is: its redelivery counts it or runs the aggregation that failed) and the optimization is RUNNING
  again (`reset_for_replay`), then the message is sent back to the chunks queue before it is deleted;
- CANCELLED, FAILED by its input, a chunk stopped for good, unknown, or unreadable: kept in the DLQ.
`--optimization-id` selects optimizations; `--execution-id` alone replays jobs only.

    backtest replay --local-endpoint http://127.0.0.1:PORT           # the moto of `backtest local`
    backtest replay --stack-name BacktestService-dev --region eu-west-1 --profile ops --dry-run
    backtest replay --stack-name BacktestService-dev --execution-id ID [--execution-id ID ...]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from backtest_service import topology
from backtest_service.errors import JobNotFound, ReplayRefused
from backtest_service.job_queue import ChunkMessage, InvalidMessage, JobMessage, decode_message, encode_message
from backtest_service.job_store import JobStore
from backtest_service.jobs import JobRecord, Status
from backtest_service.optimization_store import OptimizationStore
from backtest_service.optimizations import OptimizationNotFound
from backtest_service.topology import Output
from local.aws_resources import DEFAULT_PREFIX, queue_names, table_name
from local.embedded_aws import DEFAULT_REGION, fake_session

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

# The deployed stack's outputs replay reads (infra/stack.py publishes them under these keys).
OUTPUTS = (Output.JOBS_QUEUE_URL, Output.DEAD_LETTER_QUEUE_URL, Output.JOBS_TABLE_NAME)
# The optimization chunks' (issue 14): a stack deployed before them has none, and replays jobs only.
OPTIMIZATION_OUTPUTS = (
    Output.OPTIMIZATION_QUEUE_URL,
    Output.OPTIMIZATION_DEAD_LETTER_QUEUE_URL,
    Output.OPTIMIZATIONS_TABLE_NAME,
)
# Error codes meaning "this SQS does not offer message move tasks here".
_MOVE_TASK_UNSUPPORTED = {
    "UnsupportedOperation",
    "AWS.SimpleQueueService.UnsupportedOperation",
    "InvalidAction",
    "NotImplemented",
    "501",
}

Printer = Callable[[str], None]


class ReplayError(RuntimeError):
    """Replay cannot start (no such stack, missing outputs, unreachable endpoint)."""


class MoveTaskUnavailable(RuntimeError):
    """The SQS endpoint offers no message move task (moto, old regions, missing permission)."""


# ---- where to replay ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayTarget:
    sqs: SQSClient
    jobs: JobStore
    jobs_queue_url: str
    dlq_url: str
    move_task_supported: bool = True  # False: go straight to receive → send → delete
    receive_wait_seconds: int = 1  # long polling on AWS (a short poll can miss messages)
    description: str = ""
    # Optimization chunks (issue 14): their table, queue and DLQ (None: this target replays jobs only).
    optimizations: OptimizationStore | None = None
    optimization_queue_url: str | None = None
    optimization_dlq_url: str | None = None

    def queue_arn(self, url: str) -> str:
        out = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(out["Attributes"]["QueueArn"])


def target_from_stack(stack_name: str, *, region: str | None = None, profile: str | None = None) -> ReplayTarget:
    """The deployed stack's queues and table, from its CloudFormation outputs."""
    import boto3

    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
        stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as exc:
        raise ReplayError(f"cannot read stack {stack_name!r}: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", []) if "OutputValue" in o}
    missing = [key for key in OUTPUTS if key not in outputs]
    if missing:
        raise ReplayError(
            f"stack {stack_name} has no output {', '.join(missing)} "
            f"(outputs: {', '.join(sorted(outputs)) or 'none'}); deploy the current infra/ first"
        )
    chunks = all(key in outputs for key in OPTIMIZATION_OUTPUTS)
    return ReplayTarget(
        sqs=session.client("sqs"),
        jobs=JobStore(outputs[Output.JOBS_TABLE_NAME], session.client("dynamodb")),
        jobs_queue_url=outputs[Output.JOBS_QUEUE_URL],
        dlq_url=outputs[Output.DEAD_LETTER_QUEUE_URL],
        description=f"stack {stack_name} ({session.region_name})",
        optimizations=(
            OptimizationStore(outputs[Output.OPTIMIZATIONS_TABLE_NAME], session.client("dynamodb")) if chunks else None
        ),
        optimization_queue_url=outputs.get(Output.OPTIMIZATION_QUEUE_URL) if chunks else None,
        optimization_dlq_url=outputs.get(Output.OPTIMIZATION_DEAD_LETTER_QUEUE_URL) if chunks else None,
    )


def target_from_local(endpoint_url: str, *, region: str = DEFAULT_REGION, prefix: str = DEFAULT_PREFIX) -> ReplayTarget:
    """The resources `backtest local` created (local/aws_resources.py names them after `prefix`)."""
    session = fake_session(region)
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)
    jobs_queue, dlq = queue_names(topology.JOBS_QUEUE, prefix)
    chunks_queue, chunks_dlq = queue_names(topology.OPTIMIZATION_QUEUE, prefix)
    try:
        jobs_url = sqs.get_queue_url(QueueName=jobs_queue)["QueueUrl"]
        dlq_url = sqs.get_queue_url(QueueName=dlq)["QueueUrl"]
        chunks_url = sqs.get_queue_url(QueueName=chunks_queue)["QueueUrl"]
        chunks_dlq_url = sqs.get_queue_url(QueueName=chunks_dlq)["QueueUrl"]
    except (ClientError, BotoCoreError) as exc:
        raise ReplayError(
            f"no queues {jobs_queue} / {dlq} at {endpoint_url} ({exc}); "
            "pass the AWS endpoint `backtest local` printed when it started"
        ) from None
    return ReplayTarget(
        sqs=sqs,
        jobs=JobStore(table_name(topology.JOBS_TABLE, prefix), dynamodb),
        jobs_queue_url=jobs_url,
        dlq_url=dlq_url,
        move_task_supported=False,  # moto implements no message move task
        receive_wait_seconds=0,
        description=f"local stack at {endpoint_url}",
        optimizations=OptimizationStore(table_name(topology.OPTIMIZATIONS_TABLE, prefix), dynamodb),
        optimization_queue_url=chunks_url,
        optimization_dlq_url=chunks_dlq_url,
    )


# ---- moving messages ------------------------------------------------------------------------------


class MessageMover(Protocol):
    """Moves every message of the DLQ to the jobs queue; the number moved."""

    method: str

    def move_all(self) -> int: ...


class MoveTaskMover:
    """SQS's message move task: AWS moves the messages itself; this polls its progress."""

    method = "message move task"

    def __init__(
        self,
        sqs: SQSClient,
        source_arn: str,
        destination_arn: str,
        *,
        poll_seconds: float = 2.0,
        timeout_seconds: float = 3600.0,
        on_progress: Printer | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sqs = sqs
        self.source_arn = source_arn
        self.destination_arn = destination_arn
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.on_progress = on_progress or (lambda _: None)
        self.sleep = sleep

    def move_all(self) -> int:
        try:
            handle = self.sqs.start_message_move_task(SourceArn=self.source_arn, DestinationArn=self.destination_arn)[
                "TaskHandle"
            ]
        except NotImplementedError as exc:  # moto in-process
            raise MoveTaskUnavailable(str(exc)) from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if error.get("Code") in _MOVE_TASK_UNSUPPORTED or status == 501:
                raise MoveTaskUnavailable(f"{error.get('Code')}: {error.get('Message')}") from None
            raise
        self.on_progress(f"message move task started ({handle[:24]}...)")
        waited = 0.0
        while True:
            tasks = self.sqs.list_message_move_tasks(SourceArn=self.source_arn, MaxResults=10).get("Results", [])
            task = next((t for t in tasks if t.get("TaskHandle") == handle), tasks[0] if tasks else None)
            if task is None:
                raise ReplayError(f"the message move task {handle} is not listed for {self.source_arn}")
            moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
            total = task.get("ApproximateNumberOfMessagesToMove")
            state = task.get("Status")
            self.on_progress(f"move task {state}: {moved}" + (f" of {total}" if total is not None else "") + " moved")
            if state == "COMPLETED":
                return moved
            if state in ("FAILED", "CANCELLED", "CANCELLING"):
                raise ReplayError(
                    f"the message move task ended {state}: {task.get('FailureReason', 'no reason given')}"
                )
            if waited >= self.timeout_seconds:
                raise ReplayError(
                    f"the message move task is still {state} after {waited:.0f} s; check it in the console"
                )
            self.sleep(self.poll_seconds)
            waited += self.poll_seconds


class ReceiveSendDeleteMover:
    """Message by message: send a copy to the jobs queue, then delete the original from the DLQ."""

    method = "receive → send → delete"

    def __init__(self, sqs: SQSClient, source_url: str, destination_url: str, *, wait_seconds: int = 0) -> None:
        self.sqs = sqs
        self.source_url = source_url
        self.destination_url = destination_url
        self.wait_seconds = wait_seconds

    def move(self, message: MessageTypeDef, body: str | None = None) -> None:
        """Send `message` (or `body` instead of its own) to the jobs queue, then delete it from the DLQ."""
        request: dict[str, Any] = {"QueueUrl": self.destination_url, "MessageBody": body or message["Body"]}
        if message.get("MessageAttributes"):
            request["MessageAttributes"] = message["MessageAttributes"]
        self.sqs.send_message(**request)
        self.sqs.delete_message(QueueUrl=self.source_url, ReceiptHandle=message["ReceiptHandle"])

    def move_all(self) -> int:
        moved = 0
        while True:
            messages = receive(self.sqs, self.source_url, wait_seconds=self.wait_seconds, hold_seconds=60)
            if not messages:
                return moved
            for message in messages:
                self.move(message)
                moved += 1


def receive(sqs: SQSClient, url: str, *, wait_seconds: int, hold_seconds: int) -> list[MessageTypeDef]:
    out = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=hold_seconds,
        WaitTimeSeconds=wait_seconds,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return list(out.get("Messages", []))


# ---- the replay -----------------------------------------------------------------------------------

REPLAY = "replay"
ALREADY_SUCCEEDED = "already succeeded"
DUPLICATE = "duplicate"
KEEP_REFUSED = "kept: not replayable"
KEEP_UNKNOWN = "kept: unknown job"
KEEP_MALFORMED = "kept: unreadable message"
NOT_SELECTED = "not selected"


@dataclass
class ReplaySummary:
    method: str = ""
    dry_run: bool = False
    moved: list[str] = field(default_factory=list)  # execution ids sent back to the jobs queue
    requeued: list[str] = field(default_factory=list)  # selected dead-lettered jobs whose message was gone
    already_succeeded: list[str] = field(default_factory=list)  # their DLQ messages deleted
    duplicates: int = 0  # more messages for a job already moved in this run: deleted
    kept: dict[str, str] = field(default_factory=dict)  # execution id (or message id) → why it stays
    not_found: list[str] = field(default_factory=list)  # selected ids with no message and nothing to do
    # Optimization chunks (issue 14), each named "<optimization id>#<chunk>".
    chunks_moved: list[str] = field(default_factory=list)
    chunks_done: list[str] = field(default_factory=list)  # their optimization SUCCEEDED: DLQ message deleted
    chunks_kept: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        verb = "would move" if self.dry_run else "moved"
        out = [
            f"{verb} {len(self.moved)} message(s) back to the jobs queue"
            + (f" via {self.method}" if self.method else ""),
            f"already succeeded (DLQ message {'to delete' if self.dry_run else 'deleted'}): "
            f"{len(self.already_succeeded)}",
        ]
        if self.requeued:
            out.append(f"requeued without a DLQ message: {len(self.requeued)} ({', '.join(self.requeued)})")
        if self.duplicates:
            out.append(f"duplicate messages {'to delete' if self.dry_run else 'deleted'}: {self.duplicates}")
        if self.kept:
            out.append(f"kept in the DLQ: {len(self.kept)}")
            out += [f"  {key}: {why}" for key, why in self.kept.items()]
        if self.not_found:
            out.append(f"not in the DLQ: {', '.join(self.not_found)}")
        if self.chunks_moved or self.chunks_done or self.chunks_kept:
            out.append(f"optimization chunks: {verb} {len(self.chunks_moved)} back to their queue")
            if self.chunks_done:
                out.append(
                    f"  already succeeded (DLQ message {'to delete' if self.dry_run else 'deleted'}): "
                    f"{len(self.chunks_done)}"
                )
            if self.chunks_kept:
                out.append(f"  kept in the DLQ: {len(self.chunks_kept)}")
                out += [f"    {key}: {why}" for key, why in self.chunks_kept.items()]
        return out


@dataclass
class _Planned:
    message: MessageTypeDef
    execution_id: str | None
    action: str
    job: JobRecord | None = None
    detail: str = ""


def _plan(message: MessageTypeDef, job: JobRecord | None, execution_id: str | None) -> _Planned:
    if execution_id is None:
        return _Planned(message, None, KEEP_MALFORMED, detail=message.get("Body", "")[:80])
    if job is None:
        return _Planned(message, execution_id, KEEP_UNKNOWN, detail="no such job (expired?)")
    if job.status is Status.SUCCEEDED:
        return _Planned(message, execution_id, ALREADY_SUCCEEDED, job)
    if job.status in (Status.QUEUED, Status.RUNNING) or (job.status is Status.FAILED and job.dead_lettered):
        return _Planned(message, execution_id, REPLAY, job)
    error = job.error or {}
    return _Planned(message, execution_id, KEEP_REFUSED, job, f"FAILED by its strategy: {error.get('type', '?')}")


def replay(
    target: ReplayTarget,
    *,
    execution_ids: Iterable[str] | None = None,
    optimization_ids: Iterable[str] | None = None,
    max_messages: int | None = None,
    dry_run: bool = False,
    move_task: MessageMover | None = None,
    hold_seconds: int = 120,
    out: Printer = print,
) -> ReplaySummary:
    """Replay the DLQ of `target` (all of it, or the messages of `execution_ids`, at most `max_messages`), then
    the optimization chunks' DLQ (all of it, or the chunks of `optimization_ids`; not when only
    `execution_ids` are given).

    `move_task` replaces the SQS message move task (tests); by default one is made for the target.
    Messages are held invisible for `hold_seconds` while replay looks at them; those it keeps are made
    visible again before it returns.
    """
    jobs, chunks = list(execution_ids or []), list(optimization_ids or [])
    summary = ReplaySummary(dry_run=dry_run)
    if jobs or not chunks:
        _replay_jobs(target, summary, jobs, max_messages, dry_run, move_task, hold_seconds, out)
    if chunks or not jobs:
        replay_chunks(target, summary, optimization_ids=chunks, dry_run=dry_run, hold_seconds=hold_seconds, out=out)
    return summary


def _replay_jobs(
    target: ReplayTarget,
    summary: ReplaySummary,
    execution_ids: list[str],
    max_messages: int | None,
    dry_run: bool,
    move_task: MessageMover | None,
    hold_seconds: int,
    out: Printer,
) -> None:
    selected = list(dict.fromkeys(execution_ids))
    fallback = ReceiveSendDeleteMover(
        target.sqs, target.dlq_url, target.jobs_queue_url, wait_seconds=target.receive_wait_seconds
    )

    # 1. Look at every message (held invisible meanwhile) and decide what to do with it.
    plan: list[_Planned] = []
    held: list[MessageTypeDef] = []
    seen: set[str] = set()
    wanted = set(selected)
    to_replay = 0
    while max_messages is None or to_replay < max_messages:
        batch = receive(target.sqs, target.dlq_url, wait_seconds=target.receive_wait_seconds, hold_seconds=hold_seconds)
        if not batch:
            break
        for message in batch:
            execution_id = _execution_id(message)
            if selected and execution_id not in wanted:
                held.append(message)
                continue
            if max_messages is not None and to_replay >= max_messages:
                held.append(message)
                continue
            if execution_id is not None and execution_id in seen:
                plan.append(_Planned(message, execution_id, DUPLICATE))
                continue
            job = target.jobs.get(execution_id) if execution_id else None
            item = _plan(message, job, execution_id)
            if execution_id is not None and item.action in (REPLAY, ALREADY_SUCCEEDED):
                seen.add(execution_id)
            to_replay += item.action == REPLAY
            plan.append(item)

    try:
        if dry_run:
            _report_plan(plan, summary, out)
        else:
            _apply(target, plan, summary, fallback, move_task, selected, out)
        # Selected jobs with no DLQ message: requeue a dead-lettered one (its message expired or was lost).
        for execution_id in selected:
            if execution_id in seen:
                continue
            _replay_without_message(target, execution_id, summary, dry_run, out)
    finally:
        _release(target, held + [p.message for p in plan if p.action.startswith("kept") or dry_run])


def _report_plan(plan: list[_Planned], summary: ReplaySummary, out: Printer) -> None:
    for item in plan:
        _record(item, summary)
        status = item.job.status if item.job else "-"
        key = item.execution_id or item.message["MessageId"]
        out(f"  {item.action:<26} {key}  ({status}) {item.detail}".rstrip())


def _record(item: _Planned, summary: ReplaySummary) -> None:
    key = item.execution_id or item.message["MessageId"]
    if item.action == REPLAY:
        summary.moved.append(key)
    elif item.action == ALREADY_SUCCEEDED:
        summary.already_succeeded.append(key)
    elif item.action == DUPLICATE:
        summary.duplicates += 1
    else:
        summary.kept[key] = f"{item.action.removeprefix('kept: ')}" + (f" ({item.detail})" if item.detail else "")


def _reset(target: ReplayTarget, item: _Planned, out: Printer) -> bool:
    """Make the job runnable again (QUEUED); False when the store refuses (it changed meanwhile)."""
    assert item.execution_id is not None and item.job is not None
    if item.job.status is Status.QUEUED:
        return True
    try:
        target.jobs.reset_for_replay(item.execution_id, allow_running=True)
    except (ReplayRefused, JobNotFound) as exc:
        out(f"  kept     {item.execution_id}: {exc}")
        item.action, item.detail = KEEP_REFUSED, str(exc)
        return False
    return True


def _apply(
    target: ReplayTarget,
    plan: list[_Planned],
    summary: ReplaySummary,
    fallback: ReceiveSendDeleteMover,
    move_task: MessageMover | None,
    selected: list[str],
    out: Printer,
) -> None:
    replays = [p for p in plan if p.action == REPLAY]
    # Messages of finished jobs and duplicates leave the DLQ first (after checking the job's status).
    for item in plan:
        if item.action in (ALREADY_SUCCEEDED, DUPLICATE):
            target.sqs.delete_message(QueueUrl=target.dlq_url, ReceiptHandle=item.message["ReceiptHandle"])
            _record(item, summary)
            if item.action == ALREADY_SUCCEEDED:
                out(f"  deleted  {item.execution_id}: already SUCCEEDED, not run again")
    for item in replays:
        _reset(target, item, out)
    replays = [p for p in replays if p.action == REPLAY]
    keeps = [p for p in plan if p.action.startswith("kept")]

    # The whole DLQ is to be replayed: let SQS move it (AWS), else message by message.
    if replays and not selected and not keeps and target.move_task_supported:
        mover = move_task or MoveTaskMover(
            target.sqs,
            target.queue_arn(target.dlq_url),
            target.queue_arn(target.jobs_queue_url),
            on_progress=lambda line: out(f"  {line}"),
        )
        _release(target, [p.message for p in replays])  # the move task moves visible messages only
        try:
            mover.move_all()
        except MoveTaskUnavailable as exc:
            out(f"  the message move task is not available here ({exc}); moving message by message")
        else:
            summary.method = mover.method
            for item in replays:
                _record(item, summary)
                out(f"  moved    {item.execution_id}")
            return
        # The released messages are visible again: take them back one by one.
        replays = _receive_again(target, {p.execution_id for p in replays})

    summary.method = fallback.method
    for item in replays:
        fallback.move(item.message)
        _record(item, summary)
        out(f"  moved    {item.execution_id}")
    for item in plan:
        if item.action.startswith("kept"):
            _record(item, summary)


def _execution_id(message: MessageTypeDef) -> str | None:
    """The execution id a DLQ message carries, or None for a message that is not a backtest's."""
    try:
        decoded = decode_message(message.get("Body", ""))
    except InvalidMessage:
        return None
    return decoded.execution_id if isinstance(decoded, JobMessage) else None


def _receive_again(target: ReplayTarget, ids: set[str | None]) -> list[_Planned]:
    found: list[_Planned] = []
    others: list[MessageTypeDef] = []
    while True:
        batch = receive(target.sqs, target.dlq_url, wait_seconds=target.receive_wait_seconds, hold_seconds=120)
        if not batch:
            break
        for message in batch:
            execution_id = _execution_id(message)
            if execution_id in ids:
                found.append(_Planned(message, execution_id, REPLAY))
            else:
                others.append(message)
    _release(target, others)
    return found


def _replay_without_message(
    target: ReplayTarget, execution_id: str, summary: ReplaySummary, dry_run: bool, out: Printer
) -> None:
    job = target.jobs.get(execution_id)
    if job is not None and job.status is Status.SUCCEEDED:
        summary.already_succeeded.append(execution_id)
        out(f"  skipped  {execution_id}: already SUCCEEDED (no DLQ message)")
        return
    if job is None or not (job.status is Status.FAILED and job.dead_lettered):
        summary.not_found.append(execution_id)
        out(f"  missing  {execution_id}: no DLQ message" + (f", job is {job.status}" if job else ", no such job"))
        return
    if not dry_run:
        target.jobs.reset_for_replay(execution_id)
        target.sqs.send_message(QueueUrl=target.jobs_queue_url, MessageBody=encode_message(execution_id))
    summary.requeued.append(execution_id)
    verb = "would requeue" if dry_run else "requeued"
    out(f"  {verb} {execution_id}: dead-lettered, its DLQ message was gone")


def _release(target: ReplayTarget, messages: list[MessageTypeDef], url: str | None = None) -> None:
    """Make held messages (of the jobs' DLQ, or of the queue at `url`) visible again at once."""
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(chunk)
        ]
        with contextlib.suppress(ClientError, BotoCoreError):  # else they reappear when the hold expires
            target.sqs.change_message_visibility_batch(QueueUrl=url or target.dlq_url, Entries=entries)  # type: ignore[arg-type]


# ---- optimization chunks (issue 14) --------------------------------------------------------------------


def replay_chunks(
    target: ReplayTarget,
    summary: ReplaySummary,
    *,
    optimization_ids: Iterable[str] | None = None,
    dry_run: bool = False,
    hold_seconds: int = 120,
    out: Printer = print,
) -> None:
    """Replay the optimization chunks' DLQ (see the module docstring), message by message."""
    store, dlq, queue = target.optimizations, target.optimization_dlq_url, target.optimization_queue_url
    if store is None or dlq is None or queue is None:
        return
    wanted = set(optimization_ids or [])
    mover = ReceiveSendDeleteMover(target.sqs, dlq, queue, wait_seconds=target.receive_wait_seconds)
    held: list[MessageTypeDef] = []
    seen: set[str] = set()

    def keep(message: MessageTypeDef, key: str, why: str) -> None:
        summary.chunks_kept[key] = why
        held.append(message)
        out(f"  kept     {key}: {why}")

    try:
        while batch := receive(target.sqs, dlq, wait_seconds=target.receive_wait_seconds, hold_seconds=hold_seconds):
            for message in batch:
                try:
                    decoded = decode_message(message.get("Body", ""))
                except InvalidMessage:
                    decoded = None
                if not isinstance(decoded, ChunkMessage):
                    if wanted:
                        held.append(message)
                    else:
                        keep(message, message["MessageId"], f"unreadable message ({message.get('Body', '')[:80]})")
                    continue
                key = f"{decoded.optimization_id}#{decoded.chunk}"
                if wanted and decoded.optimization_id not in wanted:
                    held.append(message)
                    continue
                if key in seen:
                    summary.duplicates += 1
                    if dry_run:
                        held.append(message)
                    else:
                        target.sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
                    continue
                seen.add(key)
                record = store.get(decoded.optimization_id)
                if record is None:
                    keep(message, key, "unknown optimization (expired?)")
                elif record.status is Status.SUCCEEDED:
                    summary.chunks_done.append(key)
                    if dry_run:
                        held.append(message)
                    else:
                        target.sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
                        out(f"  deleted  {key}: its optimization SUCCEEDED")
                elif record.status is Status.CANCELLED or (record.status is Status.FAILED and not record.dead_lettered):
                    error = (record.error or {}).get("type", "?")
                    keep(message, key, f"not replayable: optimization {record.status} ({error})")
                elif dry_run:
                    summary.chunks_moved.append(key)
                    held.append(message)
                    out(f"  replay   {key}  (optimization {record.status})")
                else:
                    try:
                        store.reset_chunk_for_replay(decoded.optimization_id, decoded.chunk)
                        store.reset_for_replay(decoded.optimization_id, decoded.chunk)
                    except (ReplayRefused, OptimizationNotFound) as exc:
                        keep(message, key, f"not replayable: {exc}")
                        continue
                    mover.move(message)
                    summary.chunks_moved.append(key)
                    out(f"  moved    {key}")
    finally:
        _release(target, held, dlq)


# ---- the command ----------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--execution-id",
        dest="execution_ids",
        action="extend",
        nargs="+",
        default=[],
        metavar="ID",
        help="replay only these jobs (repeatable); default: every message in the DLQ",
    )
    p.add_argument(
        "--optimization-id",
        dest="optimization_ids",
        action="extend",
        nargs="+",
        default=[],
        metavar="ID",
        help="replay only the chunks of these optimizations (repeatable); default: every chunk in their DLQ",
    )
    p.add_argument("--max", dest="max_messages", type=int, help="replay at most N messages")
    p.add_argument("--dry-run", action="store_true", help="show what would be replayed; change nothing")
    deployed = p.add_argument_group("deployed stack")
    deployed.add_argument("--stack-name", help="CloudFormation stack, e.g. BacktestService-dev")
    deployed.add_argument("--region", help="AWS region of the stack (default: your AWS configuration's)")
    deployed.add_argument("--profile", help="AWS profile to use")
    local = p.add_argument_group("local stack")
    local.add_argument("--local-endpoint", metavar="URL", help="the moto endpoint `backtest local` printed")
    local.add_argument("--prefix", default=DEFAULT_PREFIX, help="resource name prefix of the local stack")


def run(args: argparse.Namespace) -> int:
    if bool(args.stack_name) == bool(args.local_endpoint):
        print("error: give either --stack-name (deployed) or --local-endpoint (backtest local)", file=sys.stderr)
        return 2
    if args.max_messages is not None and args.max_messages < 1:
        print("error: --max must be at least 1", file=sys.stderr)
        return 2
    try:
        if args.local_endpoint:
            target = target_from_local(args.local_endpoint, region=args.region or DEFAULT_REGION, prefix=args.prefix)
        else:
            target = target_from_stack(args.stack_name, region=args.region, profile=args.profile)
        print(f"Replaying the dead-letter queue of {target.description}" + (" (dry run)" if args.dry_run else ""))
        summary = replay(
            target,
            execution_ids=args.execution_ids,
            optimization_ids=args.optimization_ids,
            max_messages=args.max_messages,
            dry_run=args.dry_run,
        )
    except (ReplayError, ClientError, BotoCoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in summary.lines():
        print(line)
    return 0
