"""The engine layer, the datasets layer and the eight functions, each with its own role holding only what it calls."""

from __future__ import annotations

import ast
from pathlib import Path

from aws_cdk import Annotations, CfnElement, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3_notifications
from constructs import Construct

from backtest_service.topology import (
    DATASET_DATA_PREFIX,
    DATASET_UPLOADS_PREFIX,
    DATASETS,
    DATASETS_TABLE,
    HANDLER,
    HANDLER_FUNCTION,
    HANDLER_MODULE,
    JOBS_QUEUE,
    JOBS_TABLE,
    OPTIMIZATION_QUEUE,
    OPTIMIZATIONS,
    OPTIMIZATIONS_PREFIX,
    OPTIMIZATIONS_TABLE,
    RESULTS,
    RESULTS_BUCKET,
    RESULTS_PREFIX,
    RUN_BACKTEST,
    SERVICE_NAME,
    STATUS,
    SUBMIT,
    SYMBOLS,
    VALIDATE_DATASET,
    Env,
    FunctionSpec,
    function_environment,
)
from infra.config import FUNCTIONS_DIR, ConfigError, StageConfig
from infra.nag import acknowledge, wildcard_resource
from infra.parts.queues import JobQueues
from infra.parts.storage import Storage
from infra.runtime import ARCHITECTURE, PYTHON_VERSION

RUNTIME = lambda_.Runtime(f"python{PYTHON_VERSION}", lambda_.RuntimeFamily.PYTHON)
ARCH = lambda_.Architecture.X86_64 if ARCHITECTURE == "x86_64" else lambda_.Architecture.ARM_64
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.mypy_cache"]
# The id aws-s3 gives its singleton BucketNotificationsHandler (the custom resource behind add_event_notification).
NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
XRAY_REASON = (
    "Active tracing adds xray:PutTraceSegments and xray:PutTelemetryRecords, which have no resource-level "
    "permissions: X-Ray only accepts Resource '*' for them."
)


def handler_entry(folder: Path) -> str:
    """topology.HANDLER, after checking that the folder's handler module defines that function."""
    source = folder / f"{HANDLER_MODULE}.py"
    if not source.is_file():
        raise ConfigError(f"{source} is missing: every function folder needs a {HANDLER_MODULE}.py")
    defined: set[str] = set()
    for node in ast.parse(source.read_text(encoding="utf-8"), filename=str(source)).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(target.id for target in node.targets if isinstance(target, ast.Name))
    if HANDLER_FUNCTION not in defined:
        raise ConfigError(f"{source} defines no {HANDLER_FUNCTION}(event, context)")
    return HANDLER


class Functions(Construct):
    """submit, status, results, symbols, optimizations (behind the API) and run_backtest (fed by the jobs queue
    and the optimization chunks queue)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, storage: Storage, queues: JobQueues
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.layer = self._layer()

        self._resource_names = {
            "jobs_table": storage.jobs_table.table_name,
            "idempotency_table": storage.idempotency_table.table_name,
            "jobs_queue_url": queues.jobs.queue_url,
            "results_bucket": storage.results_bucket.bucket_name,
            "datasets_table": storage.datasets_table.table_name,
            "optimizations_table": storage.optimizations_table.table_name,
            "optimization_queue_url": queues.optimizations.queue_url,
        }
        jobs_arn = storage.jobs_table.table_arn
        results_objects = Storage.results_objects_arn(storage.results_bucket)

        self.submit = self._function(SUBMIT)
        self._allow(self.submit, ["dynamodb:PutItem", "dynamodb:UpdateItem"], [jobs_arn])
        # Powertools idempotency: read, claim, complete and (on failure) release a record.
        self._allow(
            self.submit,
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            [storage.idempotency_table.table_arn],
        )
        self._allow(self.submit, ["sqs:SendMessage"], [queues.jobs.queue_arn])
        # ?wait=: reads the job until it ends, then answers it with presigned result links (signed with this
        # role: it must be able to read what it links to).
        self._allow(self.submit, ["dynamodb:GetItem"], [jobs_arn])
        self._allow(self.submit, ["s3:GetObject"], [results_objects])
        self._acknowledge_results_prefix(self.submit, storage.results_bucket, "links to")

        self.status = self._function(STATUS)
        # Read one job, cancel (UpdateItem), rename (UpdateItem), delete (DeleteItem) the caller's jobs.
        self._allow(self.status, ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], [jobs_arn])
        self._allow(self.status, ["dynamodb:Query"], [f"{jobs_arn}/index/{JOBS_TABLE.gsi_name}"])
        # Presigned result links are signed with this role: it must be able to read what it links to; a
        # deleted job's objects are deleted with it.
        self._allow(self.status, ["s3:GetObject", "s3:DeleteObject"], [results_objects])
        self._acknowledge_results_prefix(self.status, storage.results_bucket, "reads and deletes")

        self.results = self._function(RESULTS)
        self._allow(self.results, ["dynamodb:GetItem"], [jobs_arn])
        self._allow(self.results, ["s3:GetObject"], [results_objects])
        self._acknowledge_results_prefix(self.results, storage.results_bucket, "reads")

        self.symbols = self._function(SYMBOLS)  # reference data from the engine catalog: no AWS calls

        self.runner = self._function(RUN_BACKTEST, reserved_concurrency=config.runner_reserved_concurrency)
        self._allow(self.runner, ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"], [jobs_arn])
        # PutObject (and the multipart upload of large record files, which it also covers); DeleteObject: the
        # objects of a job cancelled or deleted while they were being written.
        # GetObject: the run's summary, its commit point (a redelivery finding it commits that result).
        self._allow(
            self.runner,
            ["s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject"],
            [results_objects],
        )
        self._acknowledge_results_prefix(self.runner, storage.results_bucket, "writes")
        # Without ListBucket, S3 answers a GET of a missing key 403 instead of 404 (NoSuchKey), and the first
        # attempt of every run looks for a summary that is not there yet. Unconditioned: the 404 decision of a
        # GET carries no s3:prefix to match a condition against; it lists keys (ids), never their contents.
        self._allow(self.runner, ["s3:ListBucket"], [storage.results_bucket.bucket_arn])
        # The event source grants the queue's consume actions (receive, delete, change visibility).
        self.runner.add_event_source(
            event_sources.SqsEventSource(
                queues.jobs,
                batch_size=JOBS_QUEUE.batch_size,
                max_batching_window=(
                    Duration.seconds(JOBS_QUEUE.max_batching_window_seconds)
                    if JOBS_QUEUE.max_batching_window_seconds
                    else None
                ),
                max_concurrency=JOBS_QUEUE.max_concurrency,
                report_batch_item_failures=True,
            )
        )
        self._datasets(storage)
        self._optimizations(storage, queues)

    def _datasets(self, storage: Storage) -> None:
        """The datasets API function, validate_dataset (its own pyarrow layer) fed by the uploads'
        notification, and what submit and the runner read of a dataset."""
        table, bucket = storage.datasets_table.table_arn, storage.results_bucket
        uploads, data = Storage.dataset_uploads_arn(bucket), Storage.dataset_data_arn(bucket)

        self.datasets = self._function(DATASETS)
        self._allow(self.datasets, ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"], [table])
        self._allow(self.datasets, ["dynamodb:Query"], [f"{table}/index/{DATASETS_TABLE.gsi_name}"])
        # The presigned POST is signed with this role, so it must be allowed the upload it presigns.
        self._allow(self.datasets, ["s3:PutObject"], [uploads])
        self._allow(self.datasets, ["s3:DeleteObject"], [uploads, data])
        self._acknowledge_prefix(self.datasets, bucket, "presigns uploads of and deletes", f"{DATASET_UPLOADS_PREFIX}*")
        self._acknowledge_prefix(self.datasets, bucket, "deletes", f"{DATASET_DATA_PREFIX}*")

        self.datasets_layer = self._datasets_layer()
        self.validate_dataset = self._function(VALIDATE_DATASET, extra_layers=[self.datasets_layer])
        self._allow(self.validate_dataset, ["dynamodb:GetItem", "dynamodb:UpdateItem"], [table])
        self._allow(self.validate_dataset, ["s3:GetObject", "s3:DeleteObject"], [uploads])
        self._allow(self.validate_dataset, ["s3:PutObject", "s3:DeleteObject"], [data])
        self._acknowledge_prefix(self.validate_dataset, bucket, "reads and deletes", f"{DATASET_UPLOADS_PREFIX}*")
        self._acknowledge_prefix(self.validate_dataset, bucket, "writes and deletes", f"{DATASET_DATA_PREFIX}*")
        for notification in RESULTS_BUCKET.notifications:
            assert notification.function == VALIDATE_DATASET
            bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                s3_notifications.LambdaDestination(self.validate_dataset),
                s3.NotificationKeyFilter(prefix=notification.prefix),
            )
        # CDK configures the notification with its own singleton function (a custom resource).
        handler = Stack.of(self).node.try_find_child(NOTIFICATIONS_HANDLER_ID)
        if handler is not None:
            acknowledge(
                handler,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                "CDK's own custom resource that puts the bucket's notification configuration at deploy time "
                "(aws-s3's BucketNotificationsHandler); it runs only during deployments and its role is CDK's.",
            )

        # A backtest that names a dataset: submit checks it (owner, READY), the runner reads its copy.
        self._allow(self.submit, ["dynamodb:GetItem"], [table])
        self._allow(self.runner, ["dynamodb:GetItem"], [table])
        self._allow(self.runner, ["s3:GetObject"], [data])
        self._acknowledge_prefix(self.runner, bucket, "reads", f"{DATASET_DATA_PREFIX}*")

    def _datasets_layer(self) -> lambda_.LayerVersion:
        source = self._config.datasets_layer
        layer = lambda_.LayerVersion(
            self,
            "DatasetsLayer",
            code=lambda_.Code.from_asset(str(source.directory), exclude=[*ASSET_EXCLUDES, "*.txt"]),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCH],
            description="pyarrow (CSV and Parquet readers) for validate_dataset, on top of the engine layer",
            removal_policy=self._config.removal_policy,
        )
        if not source.built:
            Annotations.of(layer).add_warning_v2(
                "backtest:datasets-layer-not-built",
                f"The datasets layer is the unbuilt source tree {source.directory}: without pyarrow, "
                "validate_dataset reads CSV with pandas' C engine and refuses Parquet. Run `make layer`.",
            )
        return layer

    def _optimizations(self, storage: Storage, queues: JobQueues) -> None:
        """Parameter optimizations (issue 14): their API function, and what the runner needs for chunks."""
        table_arn = storage.optimizations_table.table_arn
        objects = Storage.optimizations_objects_arn(storage.results_bucket)

        self.optimizations = self._function(OPTIMIZATIONS)
        # Create an optimization (PutItem), read it (GetItem), cancel it (UpdateItem: also the FAILED mark when
        # the queue refuses its chunks), sum its chunks' progress (Query on the table), list (Query on the GSI).
        self._allow(
            self.optimizations,
            ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"],
            [table_arn],
        )
        self._allow(self.optimizations, ["dynamodb:Query"], [f"{table_arn}/index/{OPTIMIZATIONS_TABLE.gsi_name}"])
        # Powertools idempotency (an Idempotency-Key on submit), as the submit function.
        self._allow(
            self.optimizations,
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            [storage.idempotency_table.table_arn],
        )
        self._allow(self.optimizations, ["sqs:SendMessage"], [queues.optimizations.queue_arn])
        # The table's presigned links are signed with this role: it must be able to read what it links to.
        self._allow(self.optimizations, ["s3:GetObject"], [objects])
        self._acknowledge_prefix(self.optimizations, storage.results_bucket, "links to", f"{OPTIMIZATIONS_PREFIX}*")

        # The runner: chunk and optimization items (start, heartbeat, counts, final writes), the chunks' results
        # and the table (written, read back by the aggregation; a cancelled one's table deleted), and a chunk
        # that runs out of time queues itself again (SendMessage on the chunks queue only).
        self._allow(self.runner, ["dynamodb:GetItem", "dynamodb:UpdateItem"], [table_arn])
        self._allow(self.runner, ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"], [objects])
        self._acknowledge_prefix(self.runner, storage.results_bucket, "writes and reads", f"{OPTIMIZATIONS_PREFIX}*")
        self._allow(self.runner, ["sqs:SendMessage"], [queues.optimizations.queue_arn])
        self.runner.add_event_source(
            event_sources.SqsEventSource(
                queues.optimizations,
                batch_size=OPTIMIZATION_QUEUE.batch_size,
                max_batching_window=(
                    Duration.seconds(OPTIMIZATION_QUEUE.max_batching_window_seconds)
                    if OPTIMIZATION_QUEUE.max_batching_window_seconds
                    else None
                ),
                max_concurrency=OPTIMIZATION_QUEUE.max_concurrency,
                report_batch_item_failures=True,
            )
        )

    @property
    def all(self) -> tuple[lambda_.Function, ...]:
        return (
            self.submit,
            self.status,
            self.results,
            self.symbols,
            self.runner,
            self.datasets,
            self.validate_dataset,
            self.optimizations,
        )

    @property
    def by_spec(self) -> dict[FunctionSpec, lambda_.Function]:
        return {
            SUBMIT: self.submit,
            STATUS: self.status,
            RESULTS: self.results,
            SYMBOLS: self.symbols,
            RUN_BACKTEST: self.runner,
            DATASETS: self.datasets,
            VALIDATE_DATASET: self.validate_dataset,
            OPTIMIZATIONS: self.optimizations,
        }

    def _layer(self) -> lambda_.LayerVersion:
        source = self._config.layer
        layer = lambda_.LayerVersion(
            self,
            "EngineLayer",
            code=lambda_.Code.from_asset(str(source.directory), exclude=[*ASSET_EXCLUDES, "requirements.txt"]),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCH],
            description="backtest_engine + backtest_service with numpy, pandas, TA-Lib, RestrictedPython, "
            "pydantic, powertools",
            removal_policy=self._config.removal_policy,
        )
        if not source.built:
            Annotations.of(layer).add_warning_v2(
                "backtest:layer-not-built",
                f"The engine layer is the unbuilt source tree {source.directory}: it lacks numpy, pandas, "
                "TA-Lib and the byte-code, so deployed functions would fail to import. Run `make layer` "
                "before `cdk deploy`.",
            )
        return layer

    def _function(
        self,
        spec: FunctionSpec,
        *,
        reserved_concurrency: int | None = None,
        extra_layers: list[lambda_.ILayerVersion] | None = None,
    ) -> lambda_.Function:
        config = self._config
        name = "".join(part.title() for part in spec.name.split("_"))
        log_group = logs.LogGroup(
            self, f"{name}Logs", retention=config.log_retention, removal_policy=config.removal_policy
        )
        # A role per function, without AWSLambdaBasicExecutionRole's logs:* on every log group.
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{SERVICE_NAME} {spec.name}: least privilege",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
            )
        )
        function = lambda_.Function(
            self,
            name,
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCH,
            handler=handler_entry(FUNCTIONS_DIR / spec.name),
            code=lambda_.Code.from_asset(str(FUNCTIONS_DIR / spec.name), exclude=ASSET_EXCLUDES),
            layers=[self.layer, *(extra_layers or [])],
            memory_size=spec.memory_mb,
            timeout=Duration.seconds(spec.timeout_seconds),
            role=role,
            environment={
                **function_environment(spec, **self._resource_names, log_level=config.log_level),
                # the stage's own fairness limit (function_environment gives topology's default)
                **({Env.MAX_ACTIVE_JOBS: str(config.max_active_jobs)} if Env.MAX_ACTIVE_JOBS in spec.settings else {}),
            },
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel(config.log_level),
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=log_group,
            reserved_concurrent_executions=reserved_concurrency,
        )
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]", XRAY_REASON)
        acknowledge(
            function,
            "AwsSolutions-L1",
            f"Pinned to python{PYTHON_VERSION}, the interpreter the layer's wheels and "
            "byte-code are built for (infra/runtime.py); moving to a newer runtime means rebuilding "
            "the layer for it, a deliberate change, not a drift.",
        )
        return function

    @staticmethod
    def _allow(function: lambda_.Function, actions: list[str], resources: list[str]) -> None:
        function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))

    @staticmethod
    def _acknowledge_prefix(function: lambda_.Function, bucket: s3.IBucket, verb: str, prefix: str) -> None:
        assert function.role is not None and isinstance(bucket.node.default_child, CfnElement)
        acknowledge(
            function.role,
            wildcard_resource(bucket.node.default_child, "Arn", f"/{prefix}"),
            f"The function {verb} objects, one per dataset, optimization or chunk, under {prefix} only; their keys "
            "are not known in advance, so the resource is the prefix.",
        )

    @staticmethod
    def _acknowledge_results_prefix(function: lambda_.Function, bucket: s3.IBucket, verb: str) -> None:
        assert function.role is not None and isinstance(bucket.node.default_child, CfnElement)
        acknowledge(
            function.role,
            wildcard_resource(bucket.node.default_child, "Arn", f"/{RESULTS_PREFIX}*"),
            f"The function {verb} result objects, one per execution id, under the {RESULTS_PREFIX} prefix "
            "only; the keys are not known in advance, so the resource is the prefix.",
        )
