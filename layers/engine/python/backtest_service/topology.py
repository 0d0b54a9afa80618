"""The service's resources, declared once.

The CDK stack (infra/parts/) builds these on AWS and the local stack (local/aws_resources.py) builds the
same ones in moto: both read this module, so key schemas, indexes, TTL, billing, point-in-time recovery,
encryption, queue redrive and timeouts, the bucket's encryption, CORS and lifecycle, and every function's
environment cannot drift apart. tests/infra/test_local_parity.py compares what CDK synthesizes with what
moto describes after the local stack created it. Pure constants: no boto3, no CDK.
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICE_NAME = "backtest-service"
METRICS_NAMESPACE = "BacktestService"
API_PREFIX = "/api/backtest"


class Env:
    """Names of the environment variables the functions read (see backtest_service.settings)."""

    JOBS_TABLE = "JOBS_TABLE_NAME"
    IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE_NAME"
    JOBS_QUEUE_URL = "JOBS_QUEUE_URL"
    RESULTS_BUCKET = "RESULTS_BUCKET_NAME"
    JOB_TTL_DAYS = "JOB_TTL_DAYS"
    MAX_RECEIVE_COUNT = "MAX_RECEIVE_COUNT"
    DATASETS_TABLE = "DATASETS_TABLE_NAME"
    RESULTS_URL_TTL_SECONDS = "RESULTS_URL_TTL_SECONDS"
    MAX_BARS = "MAX_BARS"
    STRATEGY_CPU_SECONDS = "STRATEGY_CPU_SECONDS"
    STRATEGY_MEMORY_MB = "STRATEGY_MEMORY_MB"
    PUBLIC_BASE_URL = "PUBLIC_BASE_URL"
    MAX_ACTIVE_JOBS = "MAX_ACTIVE_JOBS"
    STALE_AFTER_SECONDS = "STALE_AFTER_SECONDS"
    SERVICE_VERSION = "SERVICE_VERSION"
    POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
    POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
    POWERTOOLS_LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"
    # Parameter optimizations (issue 14).
    OPTIMIZATIONS_TABLE = "OPTIMIZATIONS_TABLE_NAME"
    OPTIMIZATION_QUEUE_URL = "OPTIMIZATION_QUEUE_URL"
    OPTIMIZATION_CHUNK_SECONDS = "OPTIMIZATION_CHUNK_SECONDS"


@dataclass(frozen=True)
class IndexSpec:
    """A further global secondary index of a table (string keys, like every key of the service)."""

    name: str
    partition_key: str
    sort_key: str | None = None
    projection: str = "KEYS_ONLY"


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table. Every key is a string (ids, owners, ISO timestamps); billing is on demand and
    encryption uses the AWS-managed key (aws/dynamodb): KMS whose use CloudTrail records, no key to run."""

    logical_id: str  # the CDK construct id
    name: str  # the local table is `<prefix>-<name>` (AWS names it after the stack)
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str | None = None
    gsi_name: str | None = None
    gsi_partition_key: str | None = None
    gsi_sort_key: str | None = None
    # ALL: the list query reads a dozen job attributes (job_store.LIST_ATTRIBUTES); the items are a few KB,
    # so INCLUDE would save little and break when the list shows a new field.
    gsi_projection: str = "ALL"
    point_in_time_recovery: bool = False
    billing_mode: str = "PAY_PER_REQUEST"
    more_indexes: tuple[IndexSpec, ...] = ()

    @property
    def indexes(self) -> tuple[IndexSpec, ...]:
        """Every global secondary index: the main one (gsi_*) and `more_indexes`."""
        main = (
            (IndexSpec(self.gsi_name, self.gsi_partition_key, self.gsi_sort_key, self.gsi_projection),)
            if self.gsi_name and self.gsi_partition_key
            else ()
        )
        return (*main, *self.more_indexes)

    @property
    def key_attributes(self) -> tuple[str, ...]:
        """Every attribute a key schema names (table and index), each once."""
        keys = [self.partition_key, self.sort_key]
        for index in self.indexes:
            keys += [index.partition_key, index.sort_key]
        return tuple(dict.fromkeys(k for k in keys if k))


# A job carries `active_owner` (= its owner) while QUEUED or RUNNING and loses it when it ends: the sparse index
# `active_by_owner` holds exactly the active jobs, so counting a caller's is one small query (the fairness limit).
ACTIVE_BY_OWNER = IndexSpec(name="active_by_owner", partition_key="active_owner")
JOBS_TABLE = TableSpec(
    logical_id="JobsTable",
    name="jobs",
    partition_key="execution_id",
    ttl_attribute="expires_at",
    gsi_name="by_owner",
    gsi_partition_key="owner",
    gsi_sort_key="created_at",
    point_in_time_recovery=True,
    more_indexes=(ACTIVE_BY_OWNER,),
)
# Powertools idempotency's default layout: partition key "id", TTL "expiration". No point-in-time
# recovery: the records live an hour and only deduplicate retried submits, nothing to restore.
IDEMPOTENCY_TABLE = TableSpec(
    logical_id="IdempotencyTable", name="idempotency", partition_key="id", ttl_attribute="expiration"
)
# The callers' own market data (datasets.py): one item per dataset, listed per owner like the jobs.
DATASETS_TABLE = TableSpec(
    logical_id="DatasetsTable",
    name="datasets",
    partition_key="dataset_id",
    ttl_attribute="expires_at",
    gsi_name="by_owner",
    gsi_partition_key="owner",
    gsi_sort_key="created_at",
    point_in_time_recovery=True,
)
# ---- parameter optimizations (issue 14) ----
# One item per optimization (`item` = "optimization": owner, request, plan, counters, running top K; the
# GSI lists a caller's, sparse: chunk items have no owner) and one per chunk (`item` = "chunk#00042": its
# status, attempts, heartbeat, checkpoint). `optimization_store` documents every conditional write.
OPTIMIZATIONS_TABLE = TableSpec(
    logical_id="OptimizationsTable",
    name="optimizations",
    partition_key="optimization_id",
    sort_key="item",
    ttl_attribute="expires_at",
    gsi_name="by_owner",
    gsi_partition_key="owner",
    gsi_sort_key="created_at",
    point_in_time_recovery=True,
)
TABLES = (JOBS_TABLE, IDEMPOTENCY_TABLE, DATASETS_TABLE, OPTIMIZATIONS_TABLE)


# Every function is `functions/<name>/handler.py` and Lambda calls its `lambda_handler(event, context)`.
HANDLER_MODULE = "handler"
HANDLER_FUNCTION = "lambda_handler"
HANDLER = f"{HANDLER_MODULE}.{HANDLER_FUNCTION}"


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # folder under functions/
    memory_mb: int
    timeout_seconds: int
    description: str
    # The optional settings (`Env` names) it is given on top of what every function gets; their values
    # are `SETTING_VALUES`'. Settings defaults equal them, so a function without one still agrees.
    settings: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueueSpec:
    """A queue (the jobs queue, the optimization chunks queue) and its dead-letter queue, and the event source
    mapping that drains it.

    Both queues use SQS-managed encryption (SSE-SQS). The DLQ carries no RedriveAllowPolicy, on AWS as
    locally: the policy would name the jobs queue's ARN while the jobs queue's RedrivePolicy names the
    DLQ's, a reference cycle CloudFormation refuses (breaking it takes fixed queue names, which would
    replace the deployed queues, or a custom resource); what it would add, keeping other queues of the
    account from dead-lettering into this one, replay already tolerates (it keeps unreadable and unknown
    messages in the DLQ and lists them).
    """

    logical_id: str
    name: str  # the local queue is `<prefix>-<name>`, its DLQ `<prefix>-<dlq_name>`
    dlq_logical_id: str
    dlq_name: str
    visibility_timeout_seconds: int
    max_receive_count: int  # receives before SQS moves a message to the DLQ
    retention_seconds: int
    dlq_retention_seconds: int
    batch_size: int
    max_batching_window_seconds: int
    max_concurrency: int  # event source mapping's maximum concurrency (≥ 2)


@dataclass(frozen=True)
class LifecycleRule:
    id: str
    prefix: str
    expiration_days: int
    abort_incomplete_upload_days: int


@dataclass(frozen=True)
class CorsRule:
    """The CORS rule of a bucket; its origins are the deployment's (the stage's allowedOrigins)."""

    methods: tuple[str, ...]
    headers: tuple[str, ...]
    max_age_seconds: int


@dataclass(frozen=True)
class BucketNotification:
    """S3 invokes `function` (asynchronously) for each object created under `prefix`."""

    function: FunctionSpec
    prefix: str
    events: tuple[str, ...] = ("s3:ObjectCreated:*",)


@dataclass(frozen=True)
class BucketSpec:
    """An S3 bucket: public access blocked, SSE-S3 (AES256) encryption, versioning off."""

    logical_id: str
    name: str  # the local bucket is `<prefix>-<name>-<region>`
    lifecycle: tuple[LifecycleRule, ...]
    cors: CorsRule | None = None
    encryption: str = "AES256"
    versioned: bool = False
    notifications: tuple[BucketNotification, ...] = ()


# API Gateway ends an integration after 29 s: `POST /run?wait=` waits at most MAX_WAIT_SECONDS, and the
# submit function's timeout leaves it room to answer.
API_GATEWAY_TIMEOUT_SECONDS = 29
MAX_WAIT_SECONDS = 25
SUBMIT = FunctionSpec(
    "submit",
    512,
    API_GATEWAY_TIMEOUT_SECONDS + 1,
    "Validates and compile-checks a strategy, stores the job, queues it (and waits for it, with ?wait=)",
    settings=(Env.JOB_TTL_DAYS, Env.RESULTS_URL_TTL_SECONDS, Env.MAX_ACTIVE_JOBS),
)
STATUS = FunctionSpec(
    "status",
    512,
    10,
    "The caller's jobs: one with its links, the list, cancel, rename, delete",
    settings=(Env.RESULTS_URL_TTL_SECONDS,),
)
# Reads a job's stored curve (24 bytes a bar: 48 MB at the bar cap) and pages of its trades (ranged GETs).
RESULTS = FunctionSpec(
    "results",
    1024,
    15,
    "A finished job's equity curve, downsampled, and its trades a page at a time",
    settings=(Env.RESULTS_URL_TTL_SECONDS,),
)
SYMBOLS = FunctionSpec("symbols", 256, 5, "Symbols, timeframes, metric definitions, health")
# Runner: 3008 MB buys about 1.7 vCPU (the strategy child process and the parent overlap).
RUN_BACKTEST = FunctionSpec(
    "run_backtest",
    3008,
    300,
    "Runs queued backtests in the sandbox and stores results",
    settings=(Env.JOB_TTL_DAYS, Env.MAX_RECEIVE_COUNT),
)
# Datasets (the caller's own OHLCV): the API function (no numpy, no pyarrow) and the one that validates an
# upload once, invoked by the bucket's notification; only it has pyarrow (its own layer, infra/build_layer.py).
DATASETS = FunctionSpec(
    "datasets",
    512,
    10,
    "Creates (with a presigned upload), lists, shows and deletes the caller's datasets",
)
VALIDATE_DATASET = FunctionSpec(
    "validate_dataset",
    2048,
    180,
    "Validates an uploaded dataset once and stores its columnar copy",
)
# ---- parameter optimizations (issue 14) ----
# The API of optimizations: validate, expand and plan the search, store it and queue its chunks (at most
# `optimization_plan.MAX_CHUNKS` messages), status with progress and the running top K, list, cancel,
# estimate. Expanding a full grid (up to 1,000,000 points) is its heaviest step: 1 GB buys the CPU for it.
OPTIMIZATIONS = FunctionSpec(
    "optimizations",
    1024,
    API_GATEWAY_TIMEOUT_SECONDS + 1,
    "Parameter optimizations: validate, plan and fan out into chunks; status, list, cancel, estimate",
    settings=(Env.JOB_TTL_DAYS, Env.RESULTS_URL_TTL_SECONDS, Env.OPTIMIZATION_CHUNK_SECONDS),
)
FUNCTIONS = (SUBMIT, STATUS, RESULTS, SYMBOLS, RUN_BACKTEST, DATASETS, VALIDATE_DATASET, OPTIMIZATIONS)

JOBS_QUEUE = QueueSpec(
    logical_id="JobsQueue",
    name="jobs",
    dlq_logical_id="DeadLetterQueue",
    dlq_name="jobs-dlq",
    visibility_timeout_seconds=6 * RUN_BACKTEST.timeout_seconds,
    max_receive_count=3,
    retention_seconds=4 * 24 * 3600,
    dlq_retention_seconds=14 * 24 * 3600,
    batch_size=1,
    max_batching_window_seconds=0,
    max_concurrency=10,
)

# Fairness: at most this many of one caller's jobs QUEUED or RUNNING at once (the stage's config may raise it);
# one more is a 429 with Retry-After, so one caller cannot fill the runner's slots for everyone.
MAX_ACTIVE_JOBS_PER_CALLER = 10
THROTTLED_RETRY_AFTER_SECONDS = 10

# ---- parameter optimizations (issue 14) ----
# The chunks of optimizations go to their own queue, drained by the same runner function through a second
# event source mapping whose maximum concurrency is smaller than the jobs queue's: one big optimization
# uses at most `max_concurrency` runners and single backtests keep all of theirs (in prod the runner's
# reserved concurrency is the sum of both, infra/config.py). Same receive count as the jobs queue: the
# runner reads one MAX_RECEIVE_COUNT for both. Its own DLQ, replayed by `backtest replay` like the jobs'.
OPTIMIZATION_QUEUE = QueueSpec(
    logical_id="OptimizationQueue",
    name="optimization-chunks",
    dlq_logical_id="OptimizationDeadLetterQueue",
    dlq_name="optimization-chunks-dlq",
    visibility_timeout_seconds=6 * RUN_BACKTEST.timeout_seconds,
    max_receive_count=JOBS_QUEUE.max_receive_count,
    retention_seconds=4 * 24 * 3600,
    dlq_retention_seconds=14 * 24 * 3600,
    batch_size=1,
    max_batching_window_seconds=0,
    max_concurrency=4,
)
QUEUES = (JOBS_QUEUE, OPTIMIZATION_QUEUE)

# Job records expire (DynamoDB TTL) this long after they were created; results in S3 likewise.
JOB_TTL_DAYS = 30
RESULTS_PREFIX = "results/"
# Parameter optimizations (issue 14): each chunk's results and the full table (JSON and CSV), gzip-encoded,
# under `optimizations/<optimization id>/`; expired by the bucket's lifecycle on the jobs' schedule.
OPTIMIZATIONS_PREFIX = "optimizations/"
# Target work of one chunk of an optimization (the submit splits the combinations by the estimated cost).
OPTIMIZATION_CHUNK_SECONDS = 60
RESULTS_URL_TTL_SECONDS = 900

# Datasets live in the results bucket under their own prefix: the raw upload (a presigned POST, at most
# DATASET_MAX_BYTES, kept a day: it is read once, by the validation) and the validated columnar copy the
# runner reads (kept, like the dataset's record, DATASET_TTL_DAYS after its creation).
DATASETS_PREFIX = "datasets/"
DATASET_UPLOADS_PREFIX = f"{DATASETS_PREFIX}uploads/"
DATASET_DATA_PREFIX = f"{DATASETS_PREFIX}data/"
DATASET_TTL_DAYS = 30
DATASET_UPLOAD_TTL_DAYS = 1
DATASET_MAX_BYTES = 100 * 1024 * 1024
DATASET_UPLOAD_URL_TTL_SECONDS = 900

# Versioning off: results are written once under a fresh execution id and never overwritten (the runner
# skips terminal jobs), so versions would only keep expired objects around as noncurrent versions.
RESULTS_BUCKET = BucketSpec(
    logical_id="ResultsBucket",
    name="results",
    lifecycle=(
        LifecycleRule(
            id="expire-results",
            prefix=RESULTS_PREFIX,
            # A day after the job record's TTL: written after the record, and S3 expires at the next midnight UTC,
            # so a link the status answer still gives out never points at a deleted object (the status answer
            # itself says `expired` once the record's expires_at has passed, while DynamoDB's TTL deletion lags).
            expiration_days=JOB_TTL_DAYS + 1,
            abort_incomplete_upload_days=1,
        ),
        LifecycleRule(
            id="expire-dataset-uploads",
            prefix=DATASET_UPLOADS_PREFIX,
            expiration_days=DATASET_UPLOAD_TTL_DAYS,
            abort_incomplete_upload_days=1,
        ),
        LifecycleRule(
            id="expire-datasets",
            prefix=DATASET_DATA_PREFIX,
            expiration_days=DATASET_TTL_DAYS,
            abort_incomplete_upload_days=1,
        ),
        LifecycleRule(
            id="expire-optimizations",
            prefix=OPTIMIZATIONS_PREFIX,
            expiration_days=JOB_TTL_DAYS + 1,  # as results: a day after the records that link to them
            abort_incomplete_upload_days=1,
        ),
    ),
    # The frontend fetches the full result through the presigned link the status call returns, and
    # uploads a dataset with the presigned POST the datasets function returns.
    cors=CorsRule(methods=("GET", "HEAD", "POST"), headers=("*",), max_age_seconds=3600),
    notifications=(BucketNotification(function=VALIDATE_DATASET, prefix=DATASET_UPLOADS_PREFIX),),
)


# The values of the optional settings a function is given (`FunctionSpec.settings`).
SETTING_VALUES = {
    Env.JOB_TTL_DAYS: str(JOB_TTL_DAYS),
    Env.MAX_RECEIVE_COUNT: str(JOBS_QUEUE.max_receive_count),
    Env.RESULTS_URL_TTL_SECONDS: str(RESULTS_URL_TTL_SECONDS),
    Env.MAX_ACTIVE_JOBS: str(MAX_ACTIVE_JOBS_PER_CALLER),
    Env.OPTIMIZATION_CHUNK_SECONDS: str(OPTIMIZATION_CHUNK_SECONDS),
}


def resource_environment(
    *,
    jobs_table: str,
    idempotency_table: str,
    jobs_queue_url: str,
    results_bucket: str,
    datasets_table: str,
    optimizations_table: str,
    optimization_queue_url: str,
) -> dict[str, str]:
    """The variables naming the resources: every function gets them (Settings requires them at cold start,
    so a misconfigured function fails loudly); what it may DO with them is its role's business."""
    return {
        Env.JOBS_TABLE: jobs_table,
        Env.IDEMPOTENCY_TABLE: idempotency_table,
        Env.JOBS_QUEUE_URL: jobs_queue_url,
        Env.RESULTS_BUCKET: results_bucket,
        Env.DATASETS_TABLE: datasets_table,
        Env.OPTIMIZATIONS_TABLE: optimizations_table,
        Env.OPTIMIZATION_QUEUE_URL: optimization_queue_url,
    }


def function_environment(function: FunctionSpec, *, log_level: str, **resources: str) -> dict[str, str]:
    """The environment variables of `function`, as the CDK stack sets them and the local stack does.

    `resources`: the keyword arguments of `resource_environment`, CDK tokens on AWS and the moto
    resources' names locally.
    """
    return {
        Env.POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        Env.POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        Env.POWERTOOLS_LOG_LEVEL: log_level,
        **resource_environment(**resources),
        **{name: SETTING_VALUES[name] for name in function.settings},
    }


class Output:
    """The CloudFormation output keys of the deployed stack: stable, ops scripts and `backtest replay` read them."""

    API_URL = "ApiUrl"
    AUTH_MODE = "AuthMode"
    JOBS_QUEUE_URL = "JobsQueueUrl"
    DEAD_LETTER_QUEUE_URL = "DeadLetterQueueUrl"
    RESULTS_BUCKET_NAME = "ResultsBucketName"
    JOBS_TABLE_NAME = "JobsTableName"
    DATASETS_TABLE_NAME = "DatasetsTableName"
    IDEMPOTENCY_TABLE_NAME = "IdempotencyTableName"
    ALARM_TOPIC_ARN = "AlarmTopicArn"
    DASHBOARD_NAME = "DashboardName"
    USER_POOL_ID = "UserPoolId"
    USER_POOL_CLIENT_ID = "UserPoolClientId"
    HOSTED_UI_URL = "HostedUiUrl"
    # Parameter optimizations (issue 14).
    OPTIMIZATIONS_TABLE_NAME = "OptimizationsTableName"
    OPTIMIZATION_QUEUE_URL = "OptimizationQueueUrl"
    OPTIMIZATION_DEAD_LETTER_QUEUE_URL = "OptimizationDeadLetterQueueUrl"
