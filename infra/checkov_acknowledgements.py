"""Every checkov finding the stack accepts, with the resources it may sit on and why: the one list.

`make test` runs checkov 3.3.30 (its own venv, `make checkov-install`) over every template the infra tests
synthesize (tests/infra/test_checkov.py, through `infra/checkov_gate.py`) and fails on a finding not
listed here, on a finding listed with `unless=` in a template built with that option on, and on an entry
that no template needs any more. `make checkov CDK_CONTEXT="-c stage=prod ..."` reviews one synthesis.

A resource is its CloudFormation type, optionally with the start of its logical id
("AWS::Lambda::Function.FunctionsSubmit"): the construct path without CDK's hash, so a new resource of the
same type under another construct is reviewed afresh. `unless` names a `StageConfig` flag that fixes the
finding (kms: the customer-managed key, off by default).

cdk-nag's acknowledgements (`infra.nag.acknowledge`) sit next to their resources and are listed in
docs/DEPLOY.md; where the two tools ask the same thing the reasons agree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Accepted:
    check: str
    resources: tuple[str, ...]
    reason: str
    unless: str | None = None  # a StageConfig flag that fixes it: with the flag on, the finding must be gone


_FUNCTIONS = "AWS::Lambda::Function"
_API_FUNCTIONS = (
    f"{_FUNCTIONS}.FunctionsSubmit",
    f"{_FUNCTIONS}.FunctionsStatus",
    f"{_FUNCTIONS}.FunctionsResults",
    f"{_FUNCTIONS}.FunctionsSymbols",
    f"{_FUNCTIONS}.FunctionsDatasets",
    f"{_FUNCTIONS}.FunctionsOptimizations",
)
# CDK's own handler that empties dev buckets on `cdk destroy` (auto_delete_objects): not ours to configure.
_AUTO_DELETE_HANDLER = f"{_FUNCTIONS}.CustomS3AutoDeleteObjectsCustomResourceProviderHandler"
# CDK's own handler that puts the bucket's notification configuration at deploy time (the dataset uploads').
_NOTIFICATIONS_HANDLER = f"{_FUNCTIONS}.BucketNotificationsHandler"

ACCEPTED: tuple[Accepted, ...] = (
    # ---- Lambda -----------------------------------------------------------------------------------------
    Accepted(
        "CKV_AWS_115",  # no reserved concurrency
        (
            *_API_FUNCTIONS,
            f"{_FUNCTIONS}.FunctionsRunBacktest",
            f"{_FUNCTIONS}.FunctionsValidateDataset",
            _AUTO_DELETE_HANDLER,
            _NOTIFICATIONS_HANDLER,
        ),
        "The API functions are bounded by API Gateway's stage and route throttling (and WAF's per-IP rate "
        "rule); reserving concurrency for them would take it from the account pool, and a new account's "
        "limit of 10 cannot reserve any. prod reserves the runner's (its event source's maximum); dev "
        "relies on the event source's maximum concurrency alone. validate_dataset runs once per upload, and "
        "uploads need a presigned POST from the (throttled) datasets function.",
    ),
    Accepted(
        "CKV_AWS_116",  # no dead-letter queue for asynchronous invocations
        (_FUNCTIONS,),
        "API Gateway invokes the API functions synchronously and the runner is fed by an SQS event source, "
        "whose failed messages go to the jobs queue's own DLQ (replayed by ops). The one asynchronous "
        "invocation is S3's of validate_dataset per upload: Lambda retries it twice, and an event that still "
        "fails leaves its dataset PENDING, which its owner sees and deletes or uploads again; nothing is "
        "lost that a DLQ would let ops replay (the upload itself expires with its prefix's lifecycle rule).",
    ),
    Accepted(
        "CKV_AWS_117",  # not in a VPC
        (_FUNCTIONS,),
        "The functions reach only regional AWS APIs (DynamoDB, SQS, S3) and nothing in a private network; "
        "a VPC would add NAT or five interface endpoints (about $40+/month) and cold-start ENI setup for no "
        "isolation the IAM roles do not already give. The sandbox, not the network, confines strategy code.",
    ),
    Accepted(
        "CKV_AWS_173",  # environment variables not encrypted with a customer-managed key
        (_FUNCTIONS,),
        "The environment holds resource names, log level and limits, never a secret (tests/infra checks "
        "every variable against topology); Lambda encrypts it at rest with its AWS-managed key anyway.",
    ),
    # ---- API Gateway -------------------------------------------------------------------------------------
    Accepted(
        "CKV_AWS_59",  # a method without authorization
        (
            "AWS::ApiGateway::Method.ApiRestApihealthGET",
            "AWS::ApiGateway::Method.ApiRestApiapibacktestopenapijsonGET",
            "AWS::ApiGateway::Method.ApiRestApiapibacktestdocsGET",
        ),
        "Deliberately public (routes.py auth='public'): GET /health for probes, the OpenAPI document and its "
        "Swagger UI; they return nothing about callers or jobs. Every other method needs a Cognito token "
        "or SigV4 (cdk-nag APIG4/COG4 acknowledge the same three).",
    ),
    Accepted(
        "CKV_AWS_120",  # no stage cache
        ("AWS::ApiGateway::Stage",),
        "Answers are per caller and change while a job runs (status, progress); a stage cache would serve "
        "stale job states and, keyed wrongly, another caller's. The cache cluster would also cost from "
        "$14/month for the few cheap reference routes that could use it.",
    ),
    # ---- S3 ---------------------------------------------------------------------------------------------
    Accepted(
        "CKV_AWS_18",  # no access logging
        ("AWS::S3::Bucket.StorageAccessLogsBucket",),
        "This bucket is the server access log target of the results bucket; logging it would need yet "
        "another bucket, or log into itself, which loops (cdk-nag S1, the same reason).",
    ),
    Accepted(
        "CKV_AWS_21",  # no versioning
        ("AWS::S3::Bucket.StorageResultsBucket", "AWS::S3::Bucket.StorageAccessLogsBucket"),
        "Results are written once per execution id and expire with their job (topology.RESULTS_BUCKET): "
        "versions would only keep expired results as noncurrent copies. Access logs are append-only "
        "objects that expire on their own schedule; a version of either restores nothing anyone needs.",
    ),
    # ---- DynamoDB ---------------------------------------------------------------------------------------
    Accepted(
        "CKV_AWS_28",  # no point-in-time recovery
        ("AWS::DynamoDB::Table.StorageIdempotencyTable",),
        "Idempotency records live a day and only deduplicate retried submits: restoring them has no use. "
        "The jobs table has point-in-time recovery (cdk-nag DDB3, the same reason).",
    ),
    # ---- encryption with the AWS-managed keys (context kms=false, the default) ----------------------------
    Accepted(
        "CKV_AWS_119",  # tables not encrypted with a customer-managed key
        ("AWS::DynamoDB::Table",),
        "Without -c kms=true the tables use the AWS-managed aws/dynamodb key: encrypted at rest, key use in "
        "CloudTrail, nothing to run. The customer-managed key adds a key policy and a kill switch for $1 a "
        "month plus requests, and every principal reading the tables (ops' replay included) needs it.",
        unless="kms",
    ),
    Accepted(
        "CKV_AWS_27",  # queues not encrypted with KMS
        ("AWS::SQS::Queue",),
        "Without -c kms=true the queues use SSE-SQS (SQS-managed keys, encrypted at rest); the messages hold "
        "an execution id and nothing else. -c kms=true switches both queues to the customer-managed key.",
        unless="kms",
    ),
    Accepted(
        "CKV_AWS_26",  # topic not encrypted
        ("AWS::SNS::Topic.MonitoringAlarmTopic",),
        "Without -c kms=true the alarm topic is unencrypted: its messages are alarm names and metric values; "
        "CloudWatch cannot publish to a topic under the AWS-managed aws/sns key, so encryption means the "
        "customer-managed key (-c kms=true, whose policy lets CloudWatch publish). Publishing requires TLS.",
        unless="kms",
    ),
    Accepted(
        "CKV_AWS_158",  # log groups not encrypted with KMS
        ("AWS::Logs::LogGroup",),
        "Without -c kms=true the log groups use CloudWatch Logs' own encryption at rest. They hold request "
        "metadata and the functions' logs, never request bodies or strategy code (the API logs no bodies); "
        "-c kms=true encrypts every log group of the stack with the customer-managed key.",
        unless="kms",
    ),
)
