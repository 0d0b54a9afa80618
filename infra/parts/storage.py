"""DynamoDB tables (jobs, idempotency, datasets, optimizations) and the S3 results bucket with its access-log bucket."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from backtest_service.topology import (
    DATASET_DATA_PREFIX,
    DATASET_UPLOADS_PREFIX,
    DATASETS_TABLE,
    IDEMPOTENCY_TABLE,
    JOBS_TABLE,
    OPTIMIZATIONS_PREFIX,
    OPTIMIZATIONS_TABLE,
    RESULTS_BUCKET,
    RESULTS_PREFIX,
    BucketSpec,
    TableSpec,
)
from infra.config import StageConfig
from infra.nag import acknowledge

_BUCKET_ENCRYPTION = {"AES256": s3.BucketEncryption.S3_MANAGED}


def _attribute(name: str) -> dynamodb.Attribute:
    # Every key of the service is a string (ids, owners, ISO timestamps).
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class Storage(Construct):
    """Where jobs and results live, built from topology's specs (the local stack builds the same)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, key: kms.IKey | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        self._key = key
        self.jobs_table = self._table(JOBS_TABLE, config)
        self.idempotency_table = self._table(IDEMPOTENCY_TABLE, config)
        acknowledge(
            self.idempotency_table,
            "AwsSolutions-DDB3",
            "Idempotency records expire by TTL within hours and only deduplicate retried "
            "submits; a point-in-time restore of them has no use, the jobs table has PITR.",
        )

        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            # Server access log delivery supports SSE-S3 only.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(config.access_log_expiry_days))
            ],
            removal_policy=config.removal_policy,
            auto_delete_objects=config.auto_delete_objects,
        )
        acknowledge(
            self.access_logs_bucket,
            "AwsSolutions-S1",
            "This bucket is the server access log target of the results bucket; logging "
            "it would need yet another bucket (or log into itself, which loops).",
        )

        self.results_bucket = self._bucket(RESULTS_BUCKET, config)
        # The callers' datasets: records here, objects in the results bucket under topology's prefixes.
        self.datasets_table = self._table(DATASETS_TABLE, config)
        # Parameter optimizations (issue 14): optimizations and their chunks.
        self.optimizations_table = self._table(OPTIMIZATIONS_TABLE, config)

    @staticmethod
    def results_objects_arn(bucket: s3.IBucket) -> str:
        """ARN of every object under the results prefix (what the runner writes and status presigns)."""
        return bucket.arn_for_objects(f"{RESULTS_PREFIX}*")

    @staticmethod
    def dataset_uploads_arn(bucket: s3.IBucket) -> str:
        return bucket.arn_for_objects(f"{DATASET_UPLOADS_PREFIX}*")

    @staticmethod
    def dataset_data_arn(bucket: s3.IBucket) -> str:
        return bucket.arn_for_objects(f"{DATASET_DATA_PREFIX}*")

    @staticmethod
    def optimizations_objects_arn(bucket: s3.IBucket) -> str:
        """ARN of every object under the optimizations prefix (chunk results, the tables)."""
        return bucket.arn_for_objects(f"{OPTIMIZATIONS_PREFIX}*")

    def _table(self, spec: TableSpec, config: StageConfig) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            spec.logical_id,
            partition_key=_attribute(spec.partition_key),
            sort_key=_attribute(spec.sort_key) if spec.sort_key else None,
            billing_mode=dynamodb.BillingMode(spec.billing_mode),
            time_to_live_attribute=spec.ttl_attribute,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=spec.point_in_time_recovery
            ),
            # The aws/dynamodb key (see TableSpec), or the stack's customer-managed key with kms=true.
            encryption=dynamodb.TableEncryption.AWS_MANAGED
            if self._key is None
            else dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self._key,
            deletion_protection=config.deletion_protection,
            removal_policy=config.removal_policy,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_attribute(index.partition_key),
                sort_key=_attribute(index.sort_key) if index.sort_key else None,
                projection_type=dynamodb.ProjectionType(index.projection),
            )
        return table

    def _bucket(self, spec: BucketSpec, config: StageConfig) -> s3.Bucket:
        """A bucket of topology (encryption, CORS, lifecycle), access-logged to `access_logs_bucket`."""
        cors = spec.cors
        return s3.Bucket(
            self,
            spec.logical_id,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=_BUCKET_ENCRYPTION[spec.encryption],
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=spec.versioned,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix=f"{spec.name}-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id=rule.id,
                    prefix=rule.prefix,
                    expiration=Duration.days(rule.expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(rule.abort_incomplete_upload_days),
                )
                for rule in spec.lifecycle
            ],
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods(method) for method in cors.methods],
                    allowed_origins=list(config.allowed_origins),
                    allowed_headers=list(cors.headers),
                    max_age=cors.max_age_seconds,
                )
            ]
            if cors
            else None,
            removal_policy=config.removal_policy,
            auto_delete_objects=config.auto_delete_objects,
        )
