"""The jobs queue and the optimization chunks queue, each with its dead-letter queue, built from
`topology.JOBS_QUEUE` and `topology.OPTIMIZATION_QUEUE` (the local stack builds the same)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from backtest_service.topology import JOBS_QUEUE, OPTIMIZATION_QUEUE, QueueSpec
from infra.config import StageConfig
from infra.nag import acknowledge


class JobQueues(Construct):
    """Submit sends execution ids to `jobs`; after `max_receive_count` failed receives SQS moves a
    message to `dead_letter`, where it waits (14 days) until ops replay it (`backtest replay`). The
    DLQ has no RedriveAllowPolicy: see `topology.QueueSpec` for why.

    The optimization chunks queue (issue 14) is built the same way: the optimizations function sends one
    message per chunk to `optimizations`; its DLQ is `optimization_dead_letter`."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, key: kms.IKey | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        # SSE-SQS, or SSE-KMS with the stack's customer-managed key (context kms=true; data keys reused
        # for an hour, so a busy queue makes few KMS calls).
        self._encryption: dict[str, Any] = (
            {"encryption": sqs.QueueEncryption.SQS_MANAGED}
            if key is None
            else {
                "encryption": sqs.QueueEncryption.KMS,
                "encryption_master_key": key,
                "data_key_reuse": Duration.hours(1),
            }
        )
        self.jobs, self.dead_letter = self._queue(JOBS_QUEUE, config, "the jobs queue")
        self.optimizations, self.optimization_dead_letter = self._queue(
            OPTIMIZATION_QUEUE, config, "the optimization chunks queue"
        )

    def _queue(self, spec: QueueSpec, config: StageConfig, what: str) -> tuple[sqs.Queue, sqs.Queue]:
        """The queue of `spec` and its dead-letter queue."""
        dead_letter = sqs.Queue(
            self,
            spec.dlq_logical_id,
            **self._encryption,
            enforce_ssl=True,
            retention_period=Duration.seconds(spec.dlq_retention_seconds),
            removal_policy=config.removal_policy,
        )
        acknowledge(
            dead_letter,
            "AwsSolutions-SQS3",
            f"This queue is {what}'s dead-letter queue; its messages are replayed "
            "by ops, a DLQ of the DLQ would only hide them further.",
        )
        queue = sqs.Queue(
            self,
            spec.logical_id,
            **self._encryption,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(spec.visibility_timeout_seconds),
            retention_period=Duration.seconds(spec.retention_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letter, max_receive_count=spec.max_receive_count),
            removal_policy=config.removal_policy,
        )
        return queue, dead_letter
