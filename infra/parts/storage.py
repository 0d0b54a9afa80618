"""DynamoDB tables (jobs, idempotency) and the S3 results bucket with its access-log bucket."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from backtest_service.topology import IDEMPOTENCY_TABLE, JOB_TTL_DAYS, JOBS_TABLE, RESULTS_PREFIX, TableSpec
from infra.config import StageConfig
from infra.nag import acknowledge


def _attribute(name: str) -> dynamodb.Attribute:
    # Every key of the service is a string (ids, owners, ISO timestamps).
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class Storage(Construct):
    """Where jobs and results live. Key schemas come from topology, shared with the local stack."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.jobs_table = self._table(JOBS_TABLE, config, point_in_time_recovery=True)
        assert JOBS_TABLE.gsi_name and JOBS_TABLE.gsi_partition_key and JOBS_TABLE.gsi_sort_key
        # Projection ALL: the list query reads a dozen job attributes (job_store.LIST_ATTRIBUTES); the
        # items are a few KB, so INCLUDE would save little and break when the list shows a new field.
        self.jobs_table.add_global_secondary_index(
            index_name=JOBS_TABLE.gsi_name,
            partition_key=_attribute(JOBS_TABLE.gsi_partition_key),
            sort_key=_attribute(JOBS_TABLE.gsi_sort_key),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        # Idempotency records live an hour and only deduplicate retried submits: nothing to restore.
        self.idempotency_table = self._table(IDEMPOTENCY_TABLE, config, point_in_time_recovery=False)
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

        # Versioning off: results are written once under a fresh execution id and never overwritten (the
        # runner skips terminal jobs), so versions would only keep expired objects around as noncurrent
        # versions. Access is audited through the server access logs.
        self.results_bucket = s3.Bucket(
            self,
            "ResultsBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=False,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="results-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-results",
                    prefix=RESULTS_PREFIX,
                    expiration=Duration.days(JOB_TTL_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            # The frontend fetches the full result through the presigned link the status call returns.
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.GET, s3.HttpMethods.HEAD],
                    allowed_origins=list(config.allowed_origins),
                    allowed_headers=["*"],
                    max_age=3600,
                )
            ],
            removal_policy=config.removal_policy,
            auto_delete_objects=config.auto_delete_objects,
        )

    @staticmethod
    def results_objects_arn(bucket: s3.IBucket) -> str:
        """ARN of every object under the results prefix (what the runner writes and status presigns)."""
        return bucket.arn_for_objects(f"{RESULTS_PREFIX}*")

    def _table(self, spec: TableSpec, config: StageConfig, *, point_in_time_recovery: bool) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            spec.logical_id,
            partition_key=_attribute(spec.partition_key),
            sort_key=_attribute(spec.sort_key) if spec.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=spec.ttl_attribute,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=point_in_time_recovery
            ),
            # The AWS-managed key (aws/dynamodb): KMS encryption whose use CloudTrail records, no key to run.
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=config.deletion_protection,
            removal_policy=config.removal_policy,
        )
