"""The runner's queues (SQS). A message carries only ids (SQS caps messages at 256 KB; the request, code
included, is on the job's or the optimization's record):

- a backtest: `{"execution_id": "<id>"}` (the jobs queue);
- a chunk of a parameter optimization: `{"kind": "optimization_chunk", "optimization_id": "<id>", "chunk": 3}`
  (the optimization chunks queue, `optimization_queue`; the runner takes either kind from either queue).

`decode_message` returns the typed message; the runner function's record handler dispatches on its type."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, ClassVar

from backtest_service import clients
from backtest_service.jobs import is_valid_execution_id
from backtest_service.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class InvalidMessage(ValueError):
    """A message that is none of ours (it goes to the DLQ for a person to look at)."""


@dataclass(frozen=True)
class JobMessage:
    """Run one backtest."""

    execution_id: str
    kind: ClassVar[str] = "backtest"

    def encode(self) -> str:
        return encode_message(self.execution_id)


@dataclass(frozen=True)
class ChunkMessage:
    """Run chunk `chunk` (0-based) of an optimization's combinations."""

    optimization_id: str
    chunk: int
    kind: ClassVar[str] = "optimization_chunk"

    def encode(self) -> str:
        return json.dumps({"kind": self.kind, "optimization_id": self.optimization_id, "chunk": self.chunk})


QueueMessage = JobMessage | ChunkMessage


def encode_message(execution_id: str) -> str:
    return json.dumps({"execution_id": execution_id})


def decode_message(body: str) -> QueueMessage:
    """The typed message of a queue message body; `InvalidMessage` if it is none of ours."""
    try:
        data = json.loads(body)
    except ValueError:
        raise InvalidMessage(f"message body is not JSON: {body[:200]!r}") from None
    if not isinstance(data, dict):
        raise InvalidMessage(f"message body is not a JSON object: {body[:200]!r}")
    kind = data.get("kind", JobMessage.kind)
    if kind == ChunkMessage.kind:
        optimization_id, chunk = data.get("optimization_id"), data.get("chunk")
        if not isinstance(optimization_id, str) or not is_valid_execution_id(optimization_id):
            raise InvalidMessage(f"chunk message has no valid optimization_id: {body[:200]!r}")
        if not isinstance(chunk, int) or isinstance(chunk, bool) or not 0 <= chunk < 1_000_000:
            raise InvalidMessage(f"chunk message has no valid chunk number: {body[:200]!r}")
        return ChunkMessage(optimization_id, chunk)
    if kind != JobMessage.kind:
        raise InvalidMessage(f"message kind {kind!r} is unknown: {body[:200]!r}")
    execution_id = data.get("execution_id")
    if not isinstance(execution_id, str) or not is_valid_execution_id(execution_id):
        raise InvalidMessage(f"message body has no valid execution_id: {body[:200]!r}")
    return JobMessage(execution_id)


class JobQueue:
    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> SQSClient:
        return self._client or clients.sqs()

    def send(self, execution_id: str) -> str:
        """Queue the job; the SQS message id."""
        out = self.client.send_message(QueueUrl=self.queue_url, MessageBody=encode_message(execution_id))
        return out["MessageId"]


@cache
def default_job_queue() -> JobQueue:
    return JobQueue(get_settings().jobs_queue_url)
