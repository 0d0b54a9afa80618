"""The service's AWS resources, created from `backtest_service.topology` in whatever AWS boto3 points
at (moto in tests and the local stack): the same key schemas, index, TTL attributes, queue redrive and
retention as the CDK stack builds, so local runs exercise the deployed layout.

    names = create_resources("us-east-1", prefix="backtest")
    os.environ.update(names.env())        # what the functions read (backtest_service.settings)

Creating twice is harmless: existing resources are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from backtest_service import topology
from backtest_service.topology import Env, TableSpec

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


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

    def env(self) -> dict[str, str]:
        """The environment variables the functions need (see `backtest_service.settings`)."""
        return {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            Env.JOBS_TABLE: self.jobs_table,
            Env.IDEMPOTENCY_TABLE: self.idempotency_table,
            Env.JOBS_QUEUE_URL: self.jobs_queue_url,
            Env.RESULTS_BUCKET: self.results_bucket,
            Env.MAX_RECEIVE_COUNT: str(topology.JOBS_QUEUE.max_receive_count),
            Env.JOB_TTL_DAYS: str(topology.JOB_TTL_DAYS),
            Env.RESULTS_URL_TTL_SECONDS: str(topology.RESULTS_URL_TTL_SECONDS),
            Env.POWERTOOLS_SERVICE_NAME: topology.SERVICE_NAME,
            Env.POWERTOOLS_METRICS_NAMESPACE: topology.METRICS_NAMESPACE,
        }


def _create_table(client: DynamoDBClient, name: str, spec: TableSpec) -> None:
    keys = [spec.partition_key, spec.sort_key, spec.gsi_partition_key, spec.gsi_sort_key]
    attributes = [{"AttributeName": k, "AttributeType": "S"} for k in dict.fromkeys(k for k in keys if k)]
    schema = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
    if spec.sort_key:
        schema.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": attributes,
        "KeySchema": schema,
        "BillingMode": "PAY_PER_REQUEST",
    }
    if spec.gsi_name and spec.gsi_partition_key:
        gsi_schema = [{"AttributeName": spec.gsi_partition_key, "KeyType": "HASH"}]
        if spec.gsi_sort_key:
            gsi_schema.append({"AttributeName": spec.gsi_sort_key, "KeyType": "RANGE"})
        request["GlobalSecondaryIndexes"] = [
            {"IndexName": spec.gsi_name, "KeySchema": gsi_schema, "Projection": {"ProjectionType": "ALL"}}
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


def create_resources(region: str = "us-east-1", *, prefix: str = "backtest") -> ResourceNames:
    """Create the jobs and idempotency tables, the jobs queue with its DLQ, and the results bucket."""
    session = boto3.session.Session(region_name=region)
    dynamodb = session.client("dynamodb")
    sqs = session.client("sqs")
    s3 = session.client("s3")

    jobs_table = f"{prefix}-jobs"
    idempotency_table = f"{prefix}-idempotency"
    _create_table(dynamodb, jobs_table, topology.JOBS_TABLE)
    _create_table(dynamodb, idempotency_table, topology.IDEMPOTENCY_TABLE)

    spec = topology.JOBS_QUEUE
    dlq_url = sqs.create_queue(
        QueueName=f"{prefix}-jobs-dlq",
        Attributes={"MessageRetentionPeriod": str(spec.dlq_retention_seconds)},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    jobs_queue_url = sqs.create_queue(
        QueueName=f"{prefix}-jobs",
        Attributes={
            "VisibilityTimeout": str(spec.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(spec.retention_seconds),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(spec.max_receive_count)}
            ),
        },
    )["QueueUrl"]
    jobs_queue_arn = sqs.get_queue_attributes(QueueUrl=jobs_queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sqs.set_queue_attributes(
        QueueUrl=dlq_url,
        Attributes={
            "RedriveAllowPolicy": json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [jobs_queue_arn]})
        },
    )

    bucket = f"{prefix}-results-{region}"
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-results",
                    "Filter": {"Prefix": topology.RESULTS_PREFIX},
                    "Status": "Enabled",
                    "Expiration": {"Days": topology.JOB_TTL_DAYS},
                }
            ]
        },
    )
    return ResourceNames(
        region=region,
        jobs_table=jobs_table,
        idempotency_table=idempotency_table,
        jobs_queue_url=jobs_queue_url,
        jobs_queue_arn=jobs_queue_arn,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
        results_bucket=bucket,
    )
