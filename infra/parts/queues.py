"""The jobs queue and its dead-letter queue, built from `topology.JOBS_QUEUE` (the local stack builds the same)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from backtest_service.topology import JOBS_QUEUE
from infra.config import StageConfig
from infra.nag import acknowledge


class JobQueues(Construct):
    """Submit sends execution ids to `jobs`; after `max_receive_count` failed receives SQS moves a
    message to `dead_letter`, where it waits (14 days) until ops replay it (`backtest replay`). The
    DLQ has no RedriveAllowPolicy: see `topology.QueueSpec` for why."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, key: kms.IKey | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        # SSE-SQS, or SSE-KMS with the stack's customer-managed key (context kms=true; data keys reused
        # for an hour, so a busy queue makes few KMS calls).
        encryption: dict[str, Any] = (
            {"encryption": sqs.QueueEncryption.SQS_MANAGED}
            if key is None
            else {
                "encryption": sqs.QueueEncryption.KMS,
                "encryption_master_key": key,
                "data_key_reuse": Duration.hours(1),
            }
        )
        self.dead_letter = sqs.Queue(
            self,
            JOBS_QUEUE.dlq_logical_id,
            **encryption,
            enforce_ssl=True,
            retention_period=Duration.seconds(JOBS_QUEUE.dlq_retention_seconds),
            removal_policy=config.removal_policy,
        )
        acknowledge(
            self.dead_letter,
            "AwsSolutions-SQS3",
            "This queue is the jobs queue's dead-letter queue; its messages are replayed "
            "by ops, a DLQ of the DLQ would only hide them further.",
        )
        self.jobs = sqs.Queue(
            self,
            JOBS_QUEUE.logical_id,
            **encryption,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(JOBS_QUEUE.visibility_timeout_seconds),
            retention_period=Duration.seconds(JOBS_QUEUE.retention_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter, max_receive_count=JOBS_QUEUE.max_receive_count
            ),
            removal_policy=config.removal_policy,
        )
