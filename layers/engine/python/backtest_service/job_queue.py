"""The jobs queue (SQS). A message carries only the execution id (SQS caps messages at 256 KB;
the request, code included, is on the job record)."""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING

from backtest_service import clients
from backtest_service.jobs import is_valid_execution_id
from backtest_service.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class InvalidMessage(ValueError):
    """A message that does not carry an execution id (it goes to the DLQ for a person to look at)."""


def encode_message(execution_id: str) -> str:
    return json.dumps({"execution_id": execution_id})


def decode_message(body: str) -> str:
    """The execution id of a jobs-queue message body."""
    try:
        data = json.loads(body)
    except ValueError:
        raise InvalidMessage(f"message body is not JSON: {body[:200]!r}") from None
    execution_id = data.get("execution_id") if isinstance(data, dict) else None
    if not isinstance(execution_id, str) or not is_valid_execution_id(execution_id):
        raise InvalidMessage(f"message body has no valid execution_id: {body[:200]!r}")
    return execution_id


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
