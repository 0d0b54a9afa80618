"""The service's AWS resources, created from `backtest_service.topology`'s specs in whatever AWS boto3
points at (moto, for the local stack and the tests): the same specs the CDK stack (infra/parts/) builds
from, so local runs exercise the deployed layout. tests/infra/test_local_parity.py compares the two.

    names = create_resources("us-east-1", prefix="backtest", allowed_origins=("*",))
    topology.function_environment(topology.SUBMIT, log_level="INFO", **names.resources())

What is built: every table of `topology.TABLES` (keys, GSI, TTL, on-demand billing, point-in-time recovery,
KMS encryption with the AWS-managed key), every queue of `topology.QUEUES` and its DLQ (SSE-SQS, visibility
timeout, retention, redrive after `maxReceiveCount`), the results bucket (public access blocked, SSE-S3, CORS
for the given origins, lifecycle, the event notification of dataset uploads: moto stores it,
`local/s3_events.py` delivers it). Not emulated: IAM roles and resource policies (TLS-only), deletion
protection, the access-log bucket; AWS builds those and tests/infra checks them. Creating twice is harmless:
existing resources are kept. boto3 is imported by the functions that call AWS only: the names (`table_name`,
`queue_names`, `bucket_name`) are read where no AWS client should load (the local event builders).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from backtest_service import topology
from backtest_service.topology import BucketSpec, FunctionSpec, QueueSpec, TableSpec

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

DEFAULT_PREFIX = "backtest"


@dataclass(frozen=True)
class ResourceNames:
    region: str
    jobs_table: str
    idempotency_table: str
    jobs_queue_url: str
    jobs_queue_arn: str
    dlq_url: str
    dlq_arn: str
    results_bucket: str
    datasets_table: str
    # Parameter optimizations (issue 14): their table, and the chunks' queue with its DLQ.
    optimizations_table: str
    optimization_queue_url: str
    optimization_queue_arn: str
    optimization_dlq_url: str
    optimization_dlq_arn: str

    def resources(self) -> dict[str, str]:
        """The keyword arguments of `topology.resource_environment` / `function_environment`."""
        return {
            "jobs_table": self.jobs_table,
            "idempotency_table": self.idempotency_table,
            "jobs_queue_url": self.jobs_queue_url,
            "results_bucket": self.results_bucket,
            "datasets_table": self.datasets_table,
            "optimizations_table": self.optimizations_table,
            "optimization_queue_url": self.optimization_queue_url,
        }


def table_name(spec: TableSpec, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}-{spec.name}"


def queue_names(spec: QueueSpec, prefix: str = DEFAULT_PREFIX) -> tuple[str, str]:
    """The queue's name and its DLQ's."""
    return f"{prefix}-{spec.name}", f"{prefix}-{spec.dlq_name}"


def bucket_name(spec: BucketSpec, region: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}-{spec.name}-{region}"


def function_name(spec: FunctionSpec, prefix: str = DEFAULT_PREFIX) -> str:
    """The local function's name (the `LambdaContext.function_name` its invocations get)."""
    return f"{prefix}-{spec.name}"


def function_arn(spec: FunctionSpec, region: str, prefix: str = DEFAULT_PREFIX) -> str:
    from local.embedded_aws import ACCOUNT_ID

    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name(spec, prefix)}"


def create_table(client: DynamoDBClient, name: str, spec: TableSpec) -> None:
    from botocore.exceptions import ClientError

    schema = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
    if spec.sort_key:
        schema.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": k, "AttributeType": "S"} for k in spec.key_attributes],
        "KeySchema": schema,
        "BillingMode": spec.billing_mode,
        "SSESpecification": {"Enabled": True, "SSEType": "KMS"},  # no key given: the AWS-managed one
    }
    if spec.indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.partition_key, "KeyType": "HASH"},
                    *([{"AttributeName": index.sort_key, "KeyType": "RANGE"}] if index.sort_key else []),
                ],
                "Projection": {"ProjectionType": index.projection},
            }
            for index in spec.indexes
        ]
    try:
        client.create_table(**request)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        return
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    if spec.ttl_attribute:
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
        )
    if spec.point_in_time_recovery:
        client.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )


def create_queues(client: SQSClient, spec: QueueSpec, prefix: str = DEFAULT_PREFIX) -> tuple[str, str, str, str]:
    """A queue redriving to its DLQ: (queue url, queue arn, dlq url, dlq arn)."""
    name, dlq_name = queue_names(spec, prefix)
    dlq_url = client.create_queue(
        QueueName=dlq_name,
        Attributes={"MessageRetentionPeriod": str(spec.dlq_retention_seconds), "SqsManagedSseEnabled": "true"},
    )["QueueUrl"]
    dlq_arn = _queue_arn(client, dlq_url)
    url = client.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(spec.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(spec.retention_seconds),
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receive_count}),
        },
    )["QueueUrl"]
    return url, _queue_arn(client, url), dlq_url, dlq_arn


def _queue_arn(client: SQSClient, url: str) -> str:
    return client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def create_bucket(
    client: S3Client,
    name: str,
    spec: BucketSpec,
    *,
    region: str,
    allowed_origins: Sequence[str],
    prefix: str = DEFAULT_PREFIX,
) -> None:
    from botocore.exceptions import ClientError

    try:
        if region == "us-east-1":
            client.create_bucket(Bucket=name)
        else:
            client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    client.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    encryption: Any = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": spec.encryption}}]}
    client.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=encryption)
    if spec.versioned:
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    client.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": rule.id,
                    "Filter": {"Prefix": rule.prefix},
                    "Status": "Enabled",
                    "Expiration": {"Days": rule.expiration_days},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": rule.abort_incomplete_upload_days},
                }
                for rule in spec.lifecycle
            ]
        },
    )
    if spec.notifications:  # moto keeps the configuration; local/s3_events.py delivers what it names
        configuration: Any = {
            "LambdaFunctionConfigurations": [
                {
                    "Id": f"{notification.function.name}-{i}",
                    "LambdaFunctionArn": function_arn(notification.function, region, prefix),
                    "Events": list(notification.events),
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": notification.prefix}]}},
                }
                for i, notification in enumerate(spec.notifications)
            ]
        }
        client.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration=configuration)
    if spec.cors is not None:
        client.put_bucket_cors(
            Bucket=name,
            CORSConfiguration={
                "CORSRules": [
                    {
                        "AllowedMethods": list(spec.cors.methods),
                        "AllowedOrigins": list(allowed_origins),
                        "AllowedHeaders": list(spec.cors.headers),
                        "MaxAgeSeconds": spec.cors.max_age_seconds,
                    }
                ]
            },
        )


def create_resources(
    region: str = "us-east-1",
    *,
    prefix: str = DEFAULT_PREFIX,
    allowed_origins: Sequence[str] = ("*",),
    job_ttl_days: int = topology.JOB_TTL_DAYS,
) -> ResourceNames:
    """Create the tables (jobs, idempotency, datasets, optimizations), the jobs and optimization-chunks queues
    with their DLQs, and the results bucket; `allowed_origins`: the origins the bucket's CORS rule allows (a
    stage's allowedOrigins on AWS); `job_ttl_days`: how long results live (the functions' JOB_TTL_DAYS: job
    record and objects on one schedule; `backtest local --job-ttl-days`)."""
    import dataclasses

    import boto3

    session = boto3.session.Session(region_name=region)
    dynamodb = session.client("dynamodb")
    for spec in topology.TABLES:
        create_table(dynamodb, table_name(spec, prefix), spec)
    queue_url, queue_arn, dlq_url, dlq_arn = create_queues(session.client("sqs"), topology.JOBS_QUEUE, prefix)
    chunks_url, chunks_arn, chunks_dlq_url, chunks_dlq_arn = create_queues(
        session.client("sqs"), topology.OPTIMIZATION_QUEUE, prefix
    )
    bucket = bucket_name(topology.RESULTS_BUCKET, region, prefix)
    results = topology.RESULTS_BUCKET
    if job_ttl_days != topology.JOB_TTL_DAYS:
        # the results rule keeps its lead over the records (topology: a day after them); datasets' rules stay
        lifecycle = tuple(
            dataclasses.replace(rule, expiration_days=job_ttl_days + rule.expiration_days - topology.JOB_TTL_DAYS)
            if rule.prefix == topology.RESULTS_PREFIX
            else rule
            for rule in results.lifecycle
        )
        results = dataclasses.replace(results, lifecycle=lifecycle)
    create_bucket(session.client("s3"), bucket, results, region=region, allowed_origins=allowed_origins, prefix=prefix)
    return ResourceNames(
        region=region,
        jobs_table=table_name(topology.JOBS_TABLE, prefix),
        idempotency_table=table_name(topology.IDEMPOTENCY_TABLE, prefix),
        jobs_queue_url=queue_url,
        jobs_queue_arn=queue_arn,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
        results_bucket=bucket,
        datasets_table=table_name(topology.DATASETS_TABLE, prefix),
        optimizations_table=table_name(topology.OPTIMIZATIONS_TABLE, prefix),
        optimization_queue_url=chunks_url,
        optimization_queue_arn=chunks_arn,
        optimization_dlq_url=chunks_dlq_url,
        optimization_dlq_arn=chunks_dlq_arn,
    )
