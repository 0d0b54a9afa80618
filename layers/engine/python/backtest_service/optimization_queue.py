"""The optimization chunks queue (SQS): one `ChunkMessage` per chunk, sent by the submit in batches of ten,
and by a runner whose chunk ran out of time and continues (`optimization_runner`)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

from backtest_service import clients
from backtest_service.job_queue import ChunkMessage
from backtest_service.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SQS_BATCH = 10  # entries one SendMessageBatch call takes


class ChunkQueue:
    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> SQSClient:
        return self._client or clients.sqs()

    def send(self, message: ChunkMessage) -> str:
        return self.client.send_message(QueueUrl=self.queue_url, MessageBody=message.encode())["MessageId"]

    def send_all(self, messages: Sequence[ChunkMessage]) -> None:
        """Send every message, ten a call; an entry SQS refuses is sent once more on its own, and a second
        refusal raises (the caller decides what an unsent chunk means)."""
        for first in range(0, len(messages), SQS_BATCH):
            batch = messages[first : first + SQS_BATCH]
            out = self.client.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "MessageBody": m.encode()} for i, m in enumerate(batch)],
            )
            for failed in out.get("Failed", []):
                self.send(batch[int(failed["Id"])])


@cache
def default_chunk_queue() -> ChunkQueue:
    return ChunkQueue(get_settings().optimization_queue_url)
