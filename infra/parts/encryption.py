"""The customer-managed KMS key (context `kms=true`; off by default): one key, rotated every year, for the
jobs queue and its DLQ, both tables, the alarm topic and every log group of the stack, in place of the
AWS-managed keys they use otherwise (SSE-SQS, aws/dynamodb, none for the topic, CloudWatch Logs' own).

What it buys: key use shows in CloudTrail per principal, the key policy is one more gate in front of the
data, and disabling the key locks it all at once. What it costs: $1 a month plus $0.03 per 10,000 requests
(SQS reuses a data key for an hour, DynamoDB caches its table key), and every principal that reads or writes
those resources needs the key too: the functions get it here; ops running `backtest replay` need
kms:Decrypt and kms:GenerateDataKey on it for the queues and kms:Decrypt, kms:Encrypt for the jobs table.
The results bucket stays SSE-S3: presigned links then need no key grant, and the access-log bucket
cannot use SSE-KMS at all.
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import Aws, Duration, IAspect, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from infra.config import StageConfig

# What a function needs on the key to use the encrypted queue and tables (explicit: no `kms:*` wildcard).
DATA_KEY_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")


class Encryption(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description=f"{config.resource_prefix}: jobs queue, tables, alarm topic and log groups",
            enable_key_rotation=True,
            pending_window=Duration.days(30 if config.stage == "prod" else 7),
            removal_policy=RemovalPolicy.RETAIN if config.stage == "prod" else RemovalPolicy.DESTROY,
        )
        # CloudWatch Logs encrypts and decrypts the stack's log groups with it (and only log groups of this
        # account and region: the encryption context names the group).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:DescribeKey",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                        )
                    }
                },
            )
        )
        # CloudWatch alarms publish to the encrypted alarm topic (the reason AWS-managed aws/sns cannot serve).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
            )
        )

    def grant_data_use(self, *grantees: iam.IGrantable) -> None:
        """Let each grantee use the encrypted queue and tables (the SQS event source grants the runner's
        receive side, kms:Decrypt, on its own)."""
        for grantee in grantees:
            self.key.grant(grantee, *DATA_KEY_ACTIONS)


@jsii.implements(IAspect)
class EncryptLogGroups:
    """Every log group of the scope (the functions', the API's access logs, WAF's) encrypted with `key`."""

    def __init__(self, key: kms.IKey) -> None:
        self.key = key

    def visit(self, node: IConstruct) -> Any:
        if isinstance(node, logs.CfnLogGroup) and node.kms_key_id is None:
            node.kms_key_id = self.key.key_arn
