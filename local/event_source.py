"""Lambda's SQS event source mapping, locally: what drains the jobs queue (and, a second mapping, the
optimization chunks queue) into run_backtest.

As AWS does it with `ReportBatchItemFailures`: receive up to `topology.JOBS_QUEUE.batch_size` messages
with the queue's visibility timeout, pass them as a real SQS event (ApproximateReceiveCount included) to
the function, delete the records it did not report in `batchItemFailures`; a malformed answer or a raised
exception fails the whole batch. Each receive counts, and after `maxReceiveCount` receives moto moves the
message to the dead-letter queue, exactly as SQS does.

One deliberate difference: a failed record becomes visible again after `retry_delay_seconds` (the local
stack's default is 2 s, the tests' 0) instead of the 30-minute visibility timeout, so an infrastructure
fault is retried within seconds. `None` keeps the visibility timeout, as on AWS.

`max_concurrency` plays the mapping's maximum concurrency: a poll while that many batches of this mapping are
running receives nothing (several threads may poll one mapping; a mapping with a smaller cap leaves the
other threads to the other queue).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from local.events import sqs_event, sqs_record

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

log = logging.getLogger("backtest.local")
# Seconds before a failed record is delivered again, locally (AWS waits out the visibility timeout).
DEFAULT_RETRY_DELAY_SECONDS = 2


@dataclass
class Delivery:
    """One invocation of the function with a batch: the event, its answer, what it reported failed."""

    event: dict[str, Any]
    response: Any
    failed_ids: list[str] = field(default_factory=list)  # message ids left for SQS to deliver again
    duration_s: float = 0.0

    @property
    def message_ids(self) -> list[str]:
        return [record["messageId"] for record in self.event["Records"]]

    @property
    def succeeded_ids(self) -> list[str]:
        return [i for i in self.message_ids if i not in self.failed_ids]


# What the mapping reports about each record it delivered: (record, failed, seconds the batch took).
Observer = Callable[[dict[str, Any], bool, float], None]


class EventSourceMapping:
    """The jobs queue → a function, one poll at a time (several threads may poll one mapping)."""

    def __init__(
        self,
        sqs: SQSClient,
        *,
        queue_url: str,
        queue_arn: str,
        region: str,
        invoke: Callable[[Mapping[str, Any]], Any],
        batch_size: int,
        visibility_timeout_seconds: int,
        retry_delay_seconds: float | None = DEFAULT_RETRY_DELAY_SECONDS,
        on_receive: Callable[[dict[str, Any]], None] | None = None,
        on_result: Observer | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.invoke = invoke
        self.batch_size = batch_size
        self.visibility_timeout_seconds = visibility_timeout_seconds
        self.retry_delay_seconds = retry_delay_seconds
        self.on_receive = on_receive
        self.on_result = on_result
        # One receive at a time: moto's receive is not atomic across threads (two pollers could both
        # take one message); SQS guarantees that, and the runs themselves still overlap.
        self._receive_lock = threading.Lock()
        self.max_concurrency = max_concurrency
        self._slots = threading.BoundedSemaphore(max_concurrency) if max_concurrency else None

    def poll(self, *, wait_seconds: int = 0) -> Delivery | None:
        """Receive a batch, run it, delete what succeeded; None when the queue had nothing visible (or the
        mapping already runs `max_concurrency` batches)."""
        if self._slots is None:
            return self._poll(wait_seconds)
        if not self._slots.acquire(blocking=False):
            return None
        try:
            return self._poll(wait_seconds)
        finally:
            self._slots.release()

    def _poll(self, wait_seconds: int) -> Delivery | None:
        with self._receive_lock:
            out = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                VisibilityTimeout=self.visibility_timeout_seconds,
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        messages = out.get("Messages", [])
        if not messages:
            return None
        delivery = self.deliver([self._record(m) for m in messages])
        done = [m for m in messages if m["MessageId"] not in delivery.failed_ids]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        if self.retry_delay_seconds is not None:
            for m in messages:
                if m["MessageId"] in delivery.failed_ids:
                    with contextlib.suppress(Exception):  # the message may already be gone
                        self.sqs.change_message_visibility(
                            QueueUrl=self.queue_url,
                            ReceiptHandle=m["ReceiptHandle"],
                            VisibilityTimeout=max(0, round(self.retry_delay_seconds)),
                        )
        if self.on_result is not None:
            for record in delivery.event["Records"]:
                self.on_result(record, record["messageId"] in delivery.failed_ids, delivery.duration_s)
        return delivery

    def deliver(self, records: Iterable[dict[str, Any]]) -> Delivery:
        """Invoke the function with these records (no queue involved: a test's hand-made delivery)."""
        event = sqs_event(list(records))
        message_ids = {record["messageId"] for record in event["Records"]}
        if self.on_receive is not None:
            for record in event["Records"]:
                self.on_receive(record)
        started = time.perf_counter()
        try:
            response = self.invoke(event)
            failed = batch_item_failures(response, message_ids)
        except Exception:
            log.exception("the function raised: the whole batch is retried")
            response, failed = None, set(message_ids)
        ordered = [record["messageId"] for record in event["Records"] if record["messageId"] in failed]
        return Delivery(event, response, ordered, time.perf_counter() - started)

    def drain(self, *, wait_for_retries: bool = False, timeout_seconds: float = 600.0) -> list[Delivery]:
        """Poll until the queue is empty; every delivery made.

        With `wait_for_retries`, also wait for failed messages to come back (after the retry delay)
        until every message was either deleted or moved to the DLQ.
        """
        deliveries: list[Delivery] = []
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            delivery = self.poll()
            if delivery is not None:
                deliveries.append(delivery)
                continue
            if not wait_for_retries or self.in_flight() == 0:
                return deliveries
            time.sleep(0.2)
        raise TimeoutError(f"the queue did not drain within {timeout_seconds:.0f} s")

    def in_flight(self) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def _record(self, message: MessageTypeDef) -> dict[str, Any]:
        return sqs_record(
            message["Body"],
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            attributes={str(k): v for k, v in message.get("Attributes", {}).items()},
            message_attributes=message.get("MessageAttributes"),
            md5_of_body=message.get("MD5OfBody"),
            queue_arn=self.queue_arn,
            region=self.region,
        )


def batch_item_failures(response: Any, message_ids: set[str]) -> set[str]:
    """The message ids a `ReportBatchItemFailures` response names; a malformed answer fails the batch."""
    if response is None:
        return set()
    if not isinstance(response, Mapping) or not isinstance(response.get("batchItemFailures", []), list):
        log.error("the function returned %r: Lambda treats that as a failure of the whole batch", response)
        return set(message_ids)
    failed: set[str] = set()
    for item in response.get("batchItemFailures", []):
        ident = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not ident or ident not in message_ids:
            log.error("batchItemFailures names %r, not a message of the batch: the whole batch is retried", ident)
            return set(message_ids)
        failed.add(ident)
    return failed
