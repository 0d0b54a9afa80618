"""The service's resources, declared once.

The CDK stack (infra/) builds these on AWS and the local stack (local/) builds the same ones in moto:
both read this module, so key schemas, index names, queue redrive and timeouts cannot drift apart.
Pure constants: no boto3, no CDK.
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICE_NAME = "backtest-service"
METRICS_NAMESPACE = "BacktestService"
API_PREFIX = "/api/backtest"


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str | None = None
    gsi_name: str | None = None
    gsi_partition_key: str | None = None
    gsi_sort_key: str | None = None


JOBS_TABLE = TableSpec(
    logical_id="JobsTable",
    partition_key="execution_id",
    ttl_attribute="expires_at",
    gsi_name="by_owner",
    gsi_partition_key="owner",
    gsi_sort_key="created_at",
)
# Powertools idempotency's default layout: partition key "id", TTL "expiration".
IDEMPOTENCY_TABLE = TableSpec(logical_id="IdempotencyTable", partition_key="id", ttl_attribute="expiration")


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


SUBMIT = FunctionSpec("submit", 512, 15, "Validates and compile-checks a strategy, stores the job, queues it")
STATUS = FunctionSpec("status", 512, 10, "One job with a presigned result link, or the caller's jobs")
SYMBOLS = FunctionSpec("symbols", 256, 5, "Symbols, timeframes, metric definitions, health")
# Runner: 3008 MB buys about 1.7 vCPU (the strategy child process and the parent overlap).
RUN_BACKTEST = FunctionSpec("run_backtest", 3008, 300, "Runs queued backtests in the sandbox and stores results")
FUNCTIONS = (SUBMIT, STATUS, SYMBOLS, RUN_BACKTEST)


@dataclass(frozen=True)
class QueueSpec:
    visibility_timeout_seconds: int
    max_receive_count: int  # receives before SQS moves a message to the DLQ
    retention_seconds: int
    dlq_retention_seconds: int
    batch_size: int
    max_batching_window_seconds: int
    max_concurrency: int  # event source mapping's maximum concurrency (≥ 2)


JOBS_QUEUE = QueueSpec(
    visibility_timeout_seconds=6 * RUN_BACKTEST.timeout_seconds,
    max_receive_count=3,
    retention_seconds=4 * 24 * 3600,
    dlq_retention_seconds=14 * 24 * 3600,
    batch_size=1,
    max_batching_window_seconds=0,
    max_concurrency=10,
)

# Job records expire (DynamoDB TTL) this long after they were created; results in S3 likewise.
JOB_TTL_DAYS = 30
RESULTS_PREFIX = "results/"
RESULTS_URL_TTL_SECONDS = 900


class Env:
    """Names of the environment variables the functions read (see backtest_service.settings)."""

    JOBS_TABLE = "JOBS_TABLE_NAME"
    IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE_NAME"
    JOBS_QUEUE_URL = "JOBS_QUEUE_URL"
    RESULTS_BUCKET = "RESULTS_BUCKET_NAME"
    JOB_TTL_DAYS = "JOB_TTL_DAYS"
    MAX_RECEIVE_COUNT = "MAX_RECEIVE_COUNT"
    RESULTS_URL_TTL_SECONDS = "RESULTS_URL_TTL_SECONDS"
    MAX_BARS = "MAX_BARS"
    STRATEGY_CPU_SECONDS = "STRATEGY_CPU_SECONDS"
    STRATEGY_MEMORY_MB = "STRATEGY_MEMORY_MB"
    SERVICE_VERSION = "SERVICE_VERSION"
    POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
    POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
