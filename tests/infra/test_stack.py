"""The CDK stack, asserted on its synthesized CloudFormation (one synthesis per session, conftest.py).

Variants: Dev (defaults), Prod (stage=prod, two origins, alarm e-mail), Hardened (prod with kms=true,
mfa=required, threatProtection=enforced), Iam (authMode=iam) and ImportedPool (userPoolId of an existing
pool).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Match
from cfnlint.api import ManualArgs, lint

from backtest_service.routes import ROUTES
from backtest_service.settings import Settings
from backtest_service.topology import (
    ACTIVE_BY_OWNER,
    API_PREFIX,
    DATASET_DATA_PREFIX,
    DATASET_TTL_DAYS,
    DATASET_UPLOAD_TTL_DAYS,
    DATASET_UPLOADS_PREFIX,
    DATASETS_TABLE,
    FUNCTIONS,
    HANDLER,
    IDEMPOTENCY_TABLE,
    JOB_TTL_DAYS,
    JOBS_QUEUE,
    JOBS_TABLE,
    MAX_ACTIVE_JOBS_PER_CALLER,
    METRICS_NAMESPACE,
    OPTIMIZATION_QUEUE,
    OPTIMIZATIONS,
    OPTIMIZATIONS_PREFIX,
    OPTIMIZATIONS_TABLE,
    RESULTS,
    RESULTS_PREFIX,
    RUN_BACKTEST,
    SERVICE_NAME,
    STATUS,
    SUBMIT,
    SYMBOLS,
    VALIDATE_DATASET,
    Env,
    FunctionSpec,
)
from infra.app import new_app
from infra.config import DEV_ORIGINS, ConfigError, resolve_layer, stage_config
from infra.nag import add_checks
from infra.parts.functions import handler_entry
from infra.runtime import PYTHON_VERSION
from tests.infra.infra_harness import IMPORTED_POOL_ID, REPO_ROOT, VARIANTS, Synthesized

pytestmark = pytest.mark.xdist_group("infra")

Template = dict[str, Any]
# The route table is the declaration; these tests check that API Gateway builds exactly it.
SECURED_ROUTES = [(r.method, r.path, r.function) for r in ROUTES if r.auth == "caller"]
PUBLIC_ROUTES = [(r.method, r.path, r.function) for r in ROUTES if r.auth == "public"]
# The documented output keys, spelled out: a rename in topology.Output must fail here (scripts rely on them).
STABLE_OUTPUTS = {
    "ApiUrl",
    "UserPoolId",
    "UserPoolClientId",
    "JobsQueueUrl",
    "DeadLetterQueueUrl",
    "ResultsBucketName",
    "JobsTableName",
    "IdempotencyTableName",
    "OptimizationsTableName",
    "OptimizationQueueUrl",
    "OptimizationDeadLetterQueueUrl",
}
# Each acknowledged cdk-nag finding, with the resources it may sit on (docs/DEPLOY.md lists the reasons).
EXPECTED_ACKNOWLEDGMENTS = {
    "AwsSolutions-APIG3",
    "AwsSolutions-APIG4",
    "AwsSolutions-COG2",
    "AwsSolutions-COG4",
    "AwsSolutions-COG8",
    "AwsSolutions-DDB3",
    "AwsSolutions-IAM4",
    "AwsSolutions-IAM5",
    "AwsSolutions-L1",
    "AwsSolutions-S1",
    "AwsSolutions-SNS2",
    "AwsSolutions-SQS3",
}


# ---------------------------------------------------------------------------------------------- helpers
def resources(template: Template, type_: str) -> dict[str, dict[str, Any]]:
    return {key: res for key, res in template["Resources"].items() if res["Type"] == type_}


def props(template: Template, logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]


def only(template: Template, type_: str, **match: Any) -> str:
    """The logical id of the one resource of this type whose properties include `match`."""
    found = [
        key
        for key, res in resources(template, type_).items()
        if all(res.get("Properties", {}).get(k) == v for k, v in match.items())
    ]
    assert len(found) == 1, f"expected one {type_} with {match}, found {found}"
    return found[0]


def function_id(template: Template, spec: FunctionSpec) -> str:
    return only(template, "AWS::Lambda::Function", Description=spec.description)


def ref_id(value: Any) -> str:
    """The logical id a Ref or Fn::GetAtt points at."""
    if "Ref" in value:
        return str(value["Ref"])
    return str(value["Fn::GetAtt"][0])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: Template, function_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of the inline policies attached to the function's role."""
    role = ref_id(props(template, function_logical_id)["Role"])
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def layer_ids(template: Template) -> tuple[str, str]:
    """The engine layer's logical id and the datasets layer's."""
    layers = resources(template, "AWS::Lambda::LayerVersion")
    engine = next(k for k, v in layers.items() if v["Properties"]["Description"].startswith("backtest_engine"))
    (datasets,) = (k for k in layers if k != engine)
    return engine, datasets


def datasets_table_id(template: Template) -> str:
    return only(template, "AWS::DynamoDB::Table", KeySchema=_key(DATASETS_TABLE.partition_key))


def actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for st in statements for action in as_list(st["Action"])}


def granted(statements: list[dict[str, Any]], action: str) -> list[Any]:
    """The resources an action is allowed on."""
    return [
        resource
        for st in statements
        if st["Effect"] == "Allow" and action in as_list(st["Action"])
        for resource in as_list(st["Resource"])
    ]


def mentions(value: Any, logical_id: str) -> bool:
    return logical_id in json.dumps(value)


def resource_paths(template: Template) -> dict[str, str]:
    """API Gateway resource logical id → its full path ("/api/backtest/run")."""
    api_resources = resources(template, "AWS::ApiGateway::Resource")

    def path(logical_id: str) -> str:
        res = api_resources[logical_id]["Properties"]
        parent = res["ParentId"]
        prefix = "" if "Fn::GetAtt" in parent else path(parent["Ref"])
        return f"{prefix}/{res['PathPart']}"

    return {key: path(key) for key in api_resources}


def method(template: Template, http_method: str, path: str) -> dict[str, Any]:
    paths = resource_paths(template)
    found = [
        res["Properties"]
        for res in resources(template, "AWS::ApiGateway::Method").values()
        if res["Properties"]["HttpMethod"] == http_method
        and "Ref" in res["Properties"]["ResourceId"]
        and paths[res["Properties"]["ResourceId"]["Ref"]] == path
    ]
    assert len(found) == 1, f"{http_method} {path}: {len(found)} methods"
    return found[0]


def log_retention(template: Template, function_logical_id: str) -> int:
    group = props(template, function_logical_id)["LoggingConfig"]["LogGroup"]["Ref"]
    return int(props(template, group)["RetentionInDays"])


# ------------------------------------------------------------------------------------------ functions
@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_function_runtime_size_tracing_and_logging(dev: Template, spec: FunctionSpec) -> None:
    # Given the dev stack, When reading one function, Then it matches topology and the runtime module.
    fn = props(dev, function_id(dev, spec))
    assert fn["Runtime"] == f"python{PYTHON_VERSION}"
    assert fn["Architectures"] == ["x86_64"]
    assert fn["Handler"] == HANDLER == "handler.lambda_handler"
    assert fn["MemorySize"] == spec.memory_mb
    assert fn["Timeout"] == spec.timeout_seconds
    assert fn["TracingConfig"] == {"Mode": "Active"}
    assert fn["LoggingConfig"]["LogFormat"] == "JSON"
    assert fn["LoggingConfig"]["ApplicationLogLevel"] == "INFO"
    engine, datasets = layer_ids(dev)
    expected = {engine, datasets} if spec == VALIDATE_DATASET else {engine}  # no file in both: order is free
    assert {ref_id(layer) for layer in fn["Layers"]} == expected and len(fn["Layers"]) == len(expected)
    env = fn["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == SERVICE_NAME
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE
    assert env["POWERTOOLS_LOG_LEVEL"] == fn["LoggingConfig"]["ApplicationLogLevel"]


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_every_function_gets_the_settings_it_requires(dev: Template, spec: FunctionSpec) -> None:
    # Given the variables Settings refuses to start without, Then every function's environment has them
    # (a missing one would fail every cold start with SettingsError).
    required = {str(field.validation_alias) for field in Settings.model_fields.values() if field.is_required()}
    assert required == {
        Env.JOBS_TABLE,
        Env.IDEMPOTENCY_TABLE,
        Env.JOBS_QUEUE_URL,
        Env.RESULTS_BUCKET,
        Env.DATASETS_TABLE,
        Env.OPTIMIZATIONS_TABLE,
        Env.OPTIMIZATION_QUEUE_URL,
    }
    env = props(dev, function_id(dev, spec))["Environment"]["Variables"]
    assert required <= set(env)
    assert ref_id(env[Env.JOBS_TABLE]) == only(dev, "AWS::DynamoDB::Table", KeySchema=_key(JOBS_TABLE.partition_key))
    assert ref_id(env[Env.RESULTS_BUCKET]) == results_bucket_id(dev)


def test_handler_entry_names_a_function_the_module_defines(tmp_path: Path) -> None:
    # The real folders: the entry point the stack deploys exists in every handler module.
    for spec in FUNCTIONS:
        assert handler_entry(REPO_ROOT / "functions" / spec.name) == HANDLER
        source = (REPO_ROOT / "functions" / spec.name / "handler.py").read_text()
        assert f"def {HANDLER.split('.')[1]}(" in source
    # A module without it is an error naming the file, before anything deploys.
    module = tmp_path / "handler.py"
    module.write_text("async def lambda_handler(event, context):\n    return 1\n")
    assert handler_entry(tmp_path) == "handler.lambda_handler"
    module.write_text("def main(event, context):\n    return 1\n")
    with pytest.raises(ConfigError, match=r"handler\.py defines no lambda_handler"):
        handler_entry(tmp_path)
    with pytest.raises(ConfigError, match="missing"):
        handler_entry(tmp_path / "empty")


def test_function_specific_settings_come_from_topology(dev: Template) -> None:
    runner_env = props(dev, function_id(dev, RUN_BACKTEST))["Environment"]["Variables"]
    queue = props(dev, jobs_queue_id(dev))
    # The runner knows which receive is the last one: the same number the redrive policy uses.
    assert runner_env[Env.MAX_RECEIVE_COUNT] == str(queue["RedrivePolicy"]["maxReceiveCount"]) == "3"
    assert runner_env[Env.JOB_TTL_DAYS] == str(JOB_TTL_DAYS)
    status_env = props(dev, function_id(dev, STATUS))["Environment"]["Variables"]
    assert status_env[Env.RESULTS_URL_TTL_SECONDS] == "900"
    # The fairness limit: topology's default in dev, the stage's own in prod
    submit_env = props(dev, function_id(dev, SUBMIT))["Environment"]["Variables"]
    assert submit_env[Env.MAX_ACTIVE_JOBS] == str(MAX_ACTIVE_JOBS_PER_CALLER)


def test_runner_is_big_enough_and_consumes_the_queue(dev: Template) -> None:
    runner = function_id(dev, RUN_BACKTEST)
    assert props(dev, runner)["MemorySize"] >= 2048
    mappings = {
        ref_id(res["Properties"]["EventSourceArn"]): res["Properties"]
        for res in resources(dev, "AWS::Lambda::EventSourceMapping").values()
        if res["Properties"]["FunctionName"] == {"Ref": runner}
    }
    # Two queues feed the runner: the jobs queue, and the optimization chunks queue with a smaller cap
    assert set(mappings) == {jobs_queue_id(dev), optimization_queue_id(dev)}
    for queue, spec in ((jobs_queue_id(dev), JOBS_QUEUE), (optimization_queue_id(dev), OPTIMIZATION_QUEUE)):
        esm = mappings[queue]
        assert esm["BatchSize"] == spec.batch_size
        assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert esm["ScalingConfig"] == {"MaximumConcurrency": spec.max_concurrency}
    assert OPTIMIZATION_QUEUE.max_concurrency < JOBS_QUEUE.max_concurrency


def test_runner_reserved_concurrency_in_prod_only(dev: Template, prod: Template) -> None:
    # prod reserves exactly what both event sources may use (so optimization chunks never take the jobs'
    # share); dev relies on the event sources' maxima (new accounts have too little concurrency to reserve any).
    reserved = props(prod, function_id(prod, RUN_BACKTEST))["ReservedConcurrentExecutions"]
    assert reserved == JOBS_QUEUE.max_concurrency + OPTIMIZATION_QUEUE.max_concurrency
    assert "ReservedConcurrentExecutions" not in props(dev, function_id(dev, RUN_BACKTEST))


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_log_groups_keep_logs_per_stage(dev: Template, prod: Template, spec: FunctionSpec) -> None:
    assert log_retention(dev, function_id(dev, spec)) == 7
    assert log_retention(prod, function_id(prod, spec)) == 90


def test_layer_targets_the_function_runtime(synthesized: Synthesized, dev: Template) -> None:
    assert len(resources(dev, "AWS::Lambda::LayerVersion")) == 2  # the engine's and the datasets' (pyarrow)
    for layer in resources(dev, "AWS::Lambda::LayerVersion").values():
        assert layer["Properties"]["CompatibleRuntimes"] == [f"python{PYTHON_VERSION}"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]
    # The tests synthesize with the source tree as the layer: the stack says so, loudly.
    warnings = synthesized.messages("Dev", "aws:cdk:warning")
    assert any("make layer" in text for text in warnings), warnings


def test_layer_source_prefers_the_built_layer(tmp_path: Path) -> None:
    # Given no build, When resolving, Then the source tree is used and flagged as unbuilt.
    unbuilt = resolve_layer(built=tmp_path / "build" / "layer")
    assert not unbuilt.built
    assert unbuilt.directory.name == "engine"
    # Given a build with python/ inside, Then it wins.
    (tmp_path / "build" / "layer" / "python").mkdir(parents=True)
    built = resolve_layer(built=tmp_path / "build" / "layer")
    assert built.built
    assert built.directory == tmp_path / "build" / "layer"
    with pytest.raises(ConfigError, match="python/"):
        resolve_layer(str(tmp_path / "nowhere"))


# ----------------------------------------------------------------------------------------------- IAM
def test_submit_writes_jobs_and_sends_and_only_links_to_results(dev: Template) -> None:
    statements = role_statements(dev, function_id(dev, SUBMIT))
    jobs, idem, queue = jobs_table_id(dev), idempotency_table_id(dev), jobs_queue_id(dev)
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"):  # GetItem: ?wait= reads the job
        assert any(mentions(r, jobs) for r in granted(statements, action))
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"):
        assert any(mentions(r, idem) for r in granted(statements, action))
    assert [ref_id(r) for r in granted(statements, "sqs:SendMessage")] == [queue]
    # ?wait= answers presigned links, signed with this role: it reads results, under the prefix only
    (objects,) = granted(statements, "s3:GetObject")
    assert mentions(objects, results_bucket_id(dev)) and f"/{RESULTS_PREFIX}*" in json.dumps(objects)
    # Cannot: write or delete results, delete jobs, touch tables' definitions.
    assert {a for a in actions(statements) if a.startswith("s3:")} == {"s3:GetObject"}
    assert not any(mentions(r, jobs) for r in granted(statements, "dynamodb:DeleteItem"))
    assert "dynamodb:DeleteTable" not in actions(statements)


def test_status_manages_jobs_and_presigns_results_but_sends_nothing(dev: Template) -> None:
    statements = role_statements(dev, function_id(dev, STATUS))
    jobs = jobs_table_id(dev)
    # Read, cancel or rename (UpdateItem) and delete the caller's jobs
    for action in ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"):
        assert [ref_id(r) for r in granted(statements, action)] == [jobs]
    (index_arn,) = granted(statements, "dynamodb:Query")
    assert mentions(index_arn, jobs) and f"/index/{JOBS_TABLE.gsi_name}" in json.dumps(index_arn)
    for action in ("s3:GetObject", "s3:DeleteObject"):  # presigned links; a deleted job's objects
        (objects,) = granted(statements, action)
        assert mentions(objects, results_bucket_id(dev)) and f"/{RESULTS_PREFIX}*" in json.dumps(objects)
    # Cannot: queue, create jobs, write results.
    assert not any(a.startswith("sqs:") for a in actions(statements))
    assert not {"dynamodb:PutItem", "s3:PutObject"} & actions(statements)


def test_results_only_reads_jobs_and_results(dev: Template) -> None:
    statements = role_statements(dev, function_id(dev, RESULTS))
    assert [ref_id(r) for r in granted(statements, "dynamodb:GetItem")] == [jobs_table_id(dev)]
    (objects,) = granted(statements, "s3:GetObject")
    assert mentions(objects, results_bucket_id(dev)) and f"/{RESULTS_PREFIX}*" in json.dumps(objects)
    data = {a for a in actions(statements) if a.startswith(("dynamodb:", "s3:", "sqs:"))}
    assert data == {"dynamodb:GetItem", "s3:GetObject"}


def test_symbols_touches_no_data(dev: Template) -> None:
    statements = role_statements(dev, function_id(dev, SYMBOLS))
    assert actions(statements) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }


def test_runner_updates_jobs_writes_results_and_consumes(dev: Template) -> None:
    statements = role_statements(dev, function_id(dev, RUN_BACKTEST))
    jobs, queue = jobs_table_id(dev), jobs_queue_id(dev)
    for action in ("dynamodb:UpdateItem", "dynamodb:PutItem"):
        assert jobs in [ref_id(r) for r in granted(statements, action)]
    # GetItem: its jobs, the dataset a job names (whose copy it reads), and (chunks) the optimizations table
    assert sorted(ref_id(r) for r in granted(statements, "dynamodb:GetItem")) == sorted(
        [jobs, datasets_table_id(dev), optimizations_table_id(dev)]
    )
    assert sorted(ref_id(r) for r in granted(statements, "dynamodb:UpdateItem")) == sorted(
        [jobs, optimizations_table_id(dev)]
    )
    assert [ref_id(r) for r in granted(statements, "dynamodb:PutItem")] == [jobs]
    # GetObject: datasets' validated copies, under results/ a run's summary (its commit point), chunks' objects
    reads = json.dumps(granted(statements, "s3:GetObject"))
    assert (
        f"/{DATASET_DATA_PREFIX}*" in reads and f"/{RESULTS_PREFIX}*" in reads and f"/{OPTIMIZATIONS_PREFIX}*" in reads
    )
    # ListBucket on the results bucket, so a summary not yet written is a 404, not a 403
    (bucket,) = granted(statements, "s3:ListBucket")
    assert mentions(bucket, results_bucket_id(dev))
    # Write results (multipart for large record files), and remove those of a job cancelled or deleted while
    # they were written; and (optimizations) write, read back and delete the chunks' results and the table
    for action in ("s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"):
        results = [r for r in granted(statements, action) if f"/{RESULTS_PREFIX}*" in json.dumps(r)]
        assert len(results) == 1 and mentions(results[0], results_bucket_id(dev))
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"):
        assert sorted(ref_id(r) for r in granted(statements, action)) == sorted([queue, optimization_queue_id(dev)])
    # Cannot: delete jobs, read results (only optimization objects), queue backtests.
    assert not {"dynamodb:DeleteItem", "dynamodb:DeleteTable"} & actions(statements)
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        for resource in granted(statements, action):
            where = json.dumps(resource)
            assert any(f"/{p}*" in where for p in (RESULTS_PREFIX, OPTIMIZATIONS_PREFIX, DATASET_DATA_PREFIX))
    # SendMessage: only a chunk continuing itself, to the chunks queue, never to the jobs queue
    assert [ref_id(r) for r in granted(statements, "sqs:SendMessage")] == [optimization_queue_id(dev)]


def test_runner_runs_optimization_chunks_with_the_least_it_needs(dev: Template) -> None:
    statements = role_statements(dev, function_id(dev, RUN_BACKTEST))
    table = optimizations_table_id(dev)
    # Start, heartbeat, checkpoint, count and finish chunks and optimizations: read and update, nothing else
    on_table = {
        a
        for st in statements
        for a in as_list(st["Action"])
        if any(mentions(r, table) for r in as_list(st["Resource"]))
    }
    assert on_table == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject"):
        objects = [r for r in granted(statements, action) if f"/{OPTIMIZATIONS_PREFIX}*" in json.dumps(r)]
        assert len(objects) == 1 and mentions(objects[0], results_bucket_id(dev))


def test_optimizations_function_plans_queues_and_reads_only_its_own(dev: Template) -> None:
    statements = role_statements(dev, function_id(dev, OPTIMIZATIONS))
    table, idem = optimizations_table_id(dev), idempotency_table_id(dev)
    for action in ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"):
        assert any(mentions(r, table) for r in granted(statements, action))
    queried = granted(statements, "dynamodb:Query")
    assert {ref_id(r) for r in queried if "Fn::GetAtt" in r} == {table}  # the chunks' progress
    assert any(f"/index/{OPTIMIZATIONS_TABLE.gsi_name}" in json.dumps(r) for r in queried)  # the list
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"):
        assert any(mentions(r, idem) for r in granted(statements, action))
    assert [ref_id(r) for r in granted(statements, "sqs:SendMessage")] == [optimization_queue_id(dev)]
    (objects,) = granted(statements, "s3:GetObject")  # presigned table links, under its prefix only
    assert mentions(objects, results_bucket_id(dev)) and f"/{OPTIMIZATIONS_PREFIX}*" in json.dumps(objects)
    # Cannot: touch jobs, write or delete objects, delete optimizations, receive from queues.
    assert not any(mentions(r, jobs_table_id(dev)) for st in statements for r in as_list(st["Resource"]))
    assert {a for a in actions(statements) if a.startswith("s3:")} == {"s3:GetObject"}
    assert not any(mentions(r, table) for r in granted(statements, "dynamodb:DeleteItem"))
    assert {a for a in actions(statements) if a.startswith("sqs:")} == {"sqs:SendMessage"}


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_roles_have_no_managed_policies_and_only_xray_on_star(dev: Template, spec: FunctionSpec) -> None:
    # The IAM5 acknowledgment for Resource::* is safe only while X-Ray is the one thing granted on "*".
    fn = function_id(dev, spec)
    role = props(dev, ref_id(props(dev, fn)["Role"]))
    assert "ManagedPolicyArns" not in role
    statements = role_statements(dev, fn)
    on_star = {a for st in statements if st["Resource"] == "*" for a in as_list(st["Action"])}
    assert on_star == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    # Logs go to the function's own log group, nowhere else.
    group = props(dev, fn)["LoggingConfig"]["LogGroup"]["Ref"]
    assert [ref_id(r) for r in granted(statements, "logs:PutLogEvents")] == [group]


# ------------------------------------------------------------------------------------- queues, tables
def _queue_id(template: Template, construct_id: str) -> str:
    (queue,) = [
        k
        for k, r in resources(template, "AWS::SQS::Queue").items()
        if "RedrivePolicy" in r["Properties"] and k.startswith(f"Queues{construct_id}")
    ]
    return queue


def jobs_queue_id(template: Template) -> str:
    return _queue_id(template, JOBS_QUEUE.logical_id)


def optimization_queue_id(template: Template) -> str:
    return _queue_id(template, OPTIMIZATION_QUEUE.logical_id)


def optimization_dead_letter_id(template: Template) -> str:
    return ref_id(props(template, optimization_queue_id(template))["RedrivePolicy"]["deadLetterTargetArn"])


def dead_letter_id(template: Template) -> str:
    return ref_id(props(template, jobs_queue_id(template))["RedrivePolicy"]["deadLetterTargetArn"])


def _key(partition_key: str) -> list[dict[str, str]]:
    return [{"AttributeName": partition_key, "KeyType": "HASH"}]


def jobs_table_id(template: Template) -> str:
    return only(template, "AWS::DynamoDB::Table", KeySchema=_key(JOBS_TABLE.partition_key))


def idempotency_table_id(template: Template) -> str:
    return only(template, "AWS::DynamoDB::Table", KeySchema=_key(IDEMPOTENCY_TABLE.partition_key))


def optimizations_table_id(template: Template) -> str:
    key = [
        *_key(OPTIMIZATIONS_TABLE.partition_key),
        {"AttributeName": OPTIMIZATIONS_TABLE.sort_key, "KeyType": "RANGE"},
    ]
    return only(template, "AWS::DynamoDB::Table", KeySchema=key)


def results_bucket_id(template: Template) -> str:
    (bucket,) = [
        k for k, r in resources(template, "AWS::S3::Bucket").items() if "LoggingConfiguration" in r["Properties"]
    ]
    return bucket


def test_jobs_queue_redrives_to_a_retained_dlq(synthesized: Synthesized, dev: Template) -> None:
    assert JOBS_QUEUE.visibility_timeout_seconds >= 6 * RUN_BACKTEST.timeout_seconds
    synthesized.templates["Dev"].has_resource_properties(
        "AWS::SQS::Queue",
        {
            "SqsManagedSseEnabled": True,
            "VisibilityTimeout": JOBS_QUEUE.visibility_timeout_seconds,
            "MessageRetentionPeriod": JOBS_QUEUE.retention_seconds,
            "RedrivePolicy": {"deadLetterTargetArn": Match.any_value(), "maxReceiveCount": 3},
        },
    )
    dlq = props(dev, dead_letter_id(dev))
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert dlq["SqsManagedSseEnabled"] is True


@pytest.mark.parametrize("queue", ["jobs", "dead_letter", "optimizations", "optimization_dead_letter"])
def test_queues_refuse_plain_http(dev: Template, queue: str) -> None:
    queue_id = {
        "jobs": jobs_queue_id,
        "dead_letter": dead_letter_id,
        "optimizations": optimization_queue_id,
        "optimization_dead_letter": optimization_dead_letter_id,
    }[queue](dev)
    (policy,) = [
        p for p in resources(dev, "AWS::SQS::QueuePolicy").values() if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_jobs_table(synthesized: Synthesized) -> None:
    synthesized.templates["Dev"].has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": _key(JOBS_TABLE.partition_key),
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "TimeToLiveSpecification": {"AttributeName": JOBS_TABLE.ttl_attribute, "Enabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": JOBS_TABLE.gsi_name,
                    "KeySchema": [
                        {"AttributeName": JOBS_TABLE.gsi_partition_key, "KeyType": "HASH"},
                        {"AttributeName": JOBS_TABLE.gsi_sort_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
                {  # the sparse index of active jobs (the fairness limit counts a caller's)
                    "IndexName": ACTIVE_BY_OWNER.name,
                    "KeySchema": [{"AttributeName": ACTIVE_BY_OWNER.partition_key, "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                },
            ],
        },
    )


def test_optimization_queue_redrives_to_a_retained_dlq(dev: Template) -> None:
    queue = props(dev, optimization_queue_id(dev))
    assert (
        queue["VisibilityTimeout"] == OPTIMIZATION_QUEUE.visibility_timeout_seconds >= 6 * RUN_BACKTEST.timeout_seconds
    )
    assert (
        queue["RedrivePolicy"]["maxReceiveCount"]
        == OPTIMIZATION_QUEUE.max_receive_count
        == JOBS_QUEUE.max_receive_count
    )
    assert queue["SqsManagedSseEnabled"] is True
    dlq = props(dev, optimization_dead_letter_id(dev))
    assert dlq["MessageRetentionPeriod"] == OPTIMIZATION_QUEUE.dlq_retention_seconds
    assert dlq["SqsManagedSseEnabled"] is True


def test_optimizations_table(synthesized: Synthesized) -> None:
    synthesized.templates["Dev"].has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": OPTIMIZATIONS_TABLE.partition_key, "KeyType": "HASH"},
                {"AttributeName": OPTIMIZATIONS_TABLE.sort_key, "KeyType": "RANGE"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "TimeToLiveSpecification": {"AttributeName": OPTIMIZATIONS_TABLE.ttl_attribute, "Enabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": OPTIMIZATIONS_TABLE.gsi_name,
                    "KeySchema": [
                        {"AttributeName": OPTIMIZATIONS_TABLE.gsi_partition_key, "KeyType": "HASH"},
                        {"AttributeName": OPTIMIZATIONS_TABLE.gsi_sort_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        },
    )


def test_idempotency_table(synthesized: Synthesized) -> None:
    synthesized.templates["Dev"].has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": _key(IDEMPOTENCY_TABLE.partition_key),
            "BillingMode": "PAY_PER_REQUEST",
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
            "SSESpecification": {"SSEEnabled": True},
        },
    )


def test_stage_removal_and_deletion_protection(dev: Template, prod: Template) -> None:
    for table in (jobs_table_id(prod), idempotency_table_id(prod), optimizations_table_id(prod)):
        assert prod["Resources"][table]["DeletionPolicy"] == "Retain"
        assert props(prod, table)["DeletionProtectionEnabled"] is True
    for table in (jobs_table_id(dev), idempotency_table_id(dev), optimizations_table_id(dev)):
        assert dev["Resources"][table]["DeletionPolicy"] == "Delete"
        assert props(dev, table).get("DeletionProtectionEnabled", False) is False
    assert prod["Resources"][results_bucket_id(prod)]["DeletionPolicy"] == "Retain"
    assert dev["Resources"][results_bucket_id(dev)]["DeletionPolicy"] == "Delete"
    # dev empties its buckets on delete; prod never deletes objects.
    assert len(resources(dev, "Custom::S3AutoDeleteObjects")) == 2
    assert resources(prod, "Custom::S3AutoDeleteObjects") == {}


# ------------------------------------------------------------------------------------------------ S3
def test_results_bucket(dev: Template) -> None:
    bucket = props(dev, results_bucket_id(dev))
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    rule, *other_rules = bucket["LifecycleConfiguration"]["Rules"]
    assert (rule["Prefix"], rule["ExpirationInDays"], rule["Status"]) == (
        RESULTS_PREFIX,
        JOB_TTL_DAYS + 1,  # a day after the job records: a link the status gives out never points at nothing
        "Enabled",
    )
    assert [(r["Prefix"], r["ExpirationInDays"]) for r in other_rules] == [
        (DATASET_UPLOADS_PREFIX, DATASET_UPLOAD_TTL_DAYS),
        (DATASET_DATA_PREFIX, DATASET_TTL_DAYS),
        (OPTIMIZATIONS_PREFIX, JOB_TTL_DAYS + 1),  # optimization objects as results
    ]
    assert "VersioningConfiguration" not in bucket  # results are write-once (see storage.py)
    access_logs = ref_id(bucket["LoggingConfiguration"]["DestinationBucketName"])
    assert access_logs in resources(dev, "AWS::S3::Bucket") and access_logs != results_bucket_id(dev)
    (cors,) = bucket["CorsConfiguration"]["CorsRules"]
    assert cors["AllowedOrigins"] == list(DEV_ORIGINS) and cors["AllowedMethods"] == ["GET", "HEAD", "POST"]


@pytest.mark.parametrize("which", ["results", "access_logs"])
def test_buckets_refuse_plain_http(dev: Template, which: str) -> None:
    bucket = results_bucket_id(dev)
    if which == "access_logs":
        bucket = ref_id(props(dev, bucket)["LoggingConfiguration"]["DestinationBucketName"])
    (policy,) = [
        p for p in resources(dev, "AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert {"Bool": {"aws:SecureTransport": "false"}} in [s["Condition"] for s in denies]
    assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in [s["Condition"] for s in denies]


# ----------------------------------------------------------------------------------------------- API
def rest_api_id(template: Template) -> str:
    (api,) = resources(template, "AWS::ApiGateway::RestApi")
    return api


@pytest.mark.parametrize(("http_method", "path", "spec"), SECURED_ROUTES, ids=lambda v: str(v))
def test_secured_routes_use_the_cognito_authorizer(
    dev: Template, http_method: str, path: str, spec: FunctionSpec
) -> None:
    m = method(dev, http_method, path)
    (authorizer,) = resources(dev, "AWS::ApiGateway::Authorizer")
    assert m["AuthorizationType"] == "COGNITO_USER_POOLS"
    assert m["AuthorizerId"] == {"Ref": authorizer}
    assert m["Integration"]["Type"] == "AWS_PROXY"
    assert mentions(m["Integration"]["Uri"], function_id(dev, spec))


def test_the_api_has_exactly_the_route_tables_methods(dev: Template) -> None:
    paths = resource_paths(dev)
    built = {
        (res["Properties"]["HttpMethod"], paths[res["Properties"]["ResourceId"]["Ref"]])
        for res in resources(dev, "AWS::ApiGateway::Method").values()
        if res["Properties"]["HttpMethod"] != "OPTIONS" and "Ref" in res["Properties"]["ResourceId"]
    }
    assert built == {(route.method, route.path) for route in ROUTES}


@pytest.mark.parametrize(("http_method", "path", "spec"), PUBLIC_ROUTES, ids=lambda v: str(v))
def test_public_routes(dev: Template, http_method: str, path: str, spec: FunctionSpec) -> None:
    m = method(dev, http_method, path)
    assert m["AuthorizationType"] == "NONE"
    assert mentions(m["Integration"]["Uri"], function_id(dev, spec))


def test_cognito_pool_client_and_authorizer(dev: Template) -> None:
    (pool_id,) = resources(dev, "AWS::Cognito::UserPool")
    pool = props(dev, pool_id)
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] >= 12
    (client,) = resources(dev, "AWS::Cognito::UserPoolClient").values()
    assert client["Properties"]["UserPoolId"] == {"Ref": pool_id}
    assert client["Properties"]["GenerateSecret"] is False
    assert set(client["Properties"]["ExplicitAuthFlows"]) >= {
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_USER_PASSWORD_AUTH",
    }
    (authorizer,) = resources(dev, "AWS::ApiGateway::Authorizer").values()
    assert authorizer["Properties"]["Type"] == "COGNITO_USER_POOLS"
    assert authorizer["Properties"]["IdentitySource"] == "method.request.header.Authorization"
    assert [ref_id(arn) for arn in authorizer["Properties"]["ProviderARNs"]] == [pool_id]


def test_existing_user_pool_gets_a_client_not_a_new_pool(synthesized: Synthesized) -> None:
    template = synthesized.json("ImportedPool")
    assert resources(template, "AWS::Cognito::UserPool") == {}
    (client,) = resources(template, "AWS::Cognito::UserPoolClient").values()
    assert client["Properties"]["UserPoolId"] == IMPORTED_POOL_ID
    (authorizer,) = resources(template, "AWS::ApiGateway::Authorizer").values()
    assert IMPORTED_POOL_ID in json.dumps(authorizer["Properties"]["ProviderARNs"])


def test_iam_mode_signs_every_secured_route(synthesized: Synthesized) -> None:
    template = synthesized.json("Iam")
    for http_method, path, _ in SECURED_ROUTES:
        assert method(template, http_method, path)["AuthorizationType"] == "AWS_IAM"
    for http_method, path, _ in PUBLIC_ROUTES:
        assert method(template, http_method, path)["AuthorizationType"] == "NONE"
    assert resources(template, "AWS::Cognito::UserPool") == {}
    assert resources(template, "AWS::ApiGateway::Authorizer") == {}
    assert synthesized.stacks["Iam"].config.stack_name == "BacktestService-dev-iam"


def test_cors_preflight_allows_the_configured_origins(dev: Template, prod: Template) -> None:
    run = resource_paths(dev)
    preflights = [
        res["Properties"]
        for res in resources(dev, "AWS::ApiGateway::Method").values()
        if res["Properties"]["HttpMethod"] == "OPTIONS"
    ]
    assert len(preflights) == len(run) + 1  # every resource and the root
    submit_preflight = method(dev, "OPTIONS", f"{API_PREFIX}/run")
    assert submit_preflight["AuthorizationType"] == "NONE"
    headers = submit_preflight["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
    assert "Idempotency-Key" in headers["method.response.header.Access-Control-Allow-Headers"]
    dev_preflight = json.dumps(submit_preflight["Integration"])
    assert all(origin in dev_preflight for origin in DEV_ORIGINS)
    prod_preflight = json.dumps(method(prod, "OPTIONS", f"{API_PREFIX}/run")["Integration"])
    assert "https://app.example.com" in prod_preflight and "https://admin.example.com" in prod_preflight
    assert "localhost" not in prod_preflight


def test_stage_tracing_throttling_and_json_access_logs(dev: Template) -> None:
    (stage_id,) = resources(dev, "AWS::ApiGateway::Stage")
    stage = props(dev, stage_id)
    assert stage["StageName"] == "dev"
    assert stage["TracingEnabled"] is True
    access_log = json.loads(stage["AccessLogSetting"]["Format"])  # the format itself is JSON
    assert {"requestId", "status", "ip", "resourcePath", "integrationLatencyMs", "user"} <= set(access_log)
    assert mentions(stage["AccessLogSetting"]["DestinationArn"], "ApiAccessLogs")
    settings = {(s["ResourcePath"], s["HttpMethod"]): s for s in stage["MethodSettings"]}
    everything = settings[("/*", "*")]
    assert (everything["ThrottlingRateLimit"], everything["ThrottlingBurstLimit"]) == (10, 20)
    assert everything["LoggingLevel"] == "ERROR" and everything["DataTraceEnabled"] is False
    submit = settings[("/~1api~1backtest~1run", "POST")]
    assert submit["ThrottlingRateLimit"] < everything["ThrottlingRateLimit"]


def test_usage_plan_on_the_stage(dev: Template) -> None:
    (plan,) = resources(dev, "AWS::ApiGateway::UsagePlan").values()
    (stage_id,) = resources(dev, "AWS::ApiGateway::Stage")
    assert plan["Properties"]["Throttle"] == {"RateLimit": 10, "BurstLimit": 20}
    assert plan["Properties"]["Quota"]["Period"] == "MONTH"
    assert plan["Properties"]["ApiStages"][0]["Stage"] == {"Ref": stage_id}


def test_submit_body_must_be_a_json_object(dev: Template) -> None:
    run = method(dev, "POST", f"{API_PREFIX}/run")
    validator = props(dev, run["RequestValidatorId"]["Ref"])
    assert validator["ValidateRequestBody"] is True and validator["ValidateRequestParameters"] is True
    model = props(dev, run["RequestModels"]["application/json"]["Ref"])
    assert model["Schema"]["type"] == "object"
    status = method(dev, "GET", f"{API_PREFIX}/status/{{execution_id}}")
    assert status["RequestParameters"] == {"method.request.path.execution_id": True}
    # The gateway's own 400 speaks the service's error shape and says what to send.
    (bad_body,) = [
        r["Properties"]
        for r in resources(dev, "AWS::ApiGateway::GatewayResponse").values()
        if r["Properties"]["ResponseType"] == "BAD_REQUEST_BODY"
    ]
    body = json.loads(bad_body["ResponseTemplates"]["application/json"])
    assert body["success"] is False and "JSON object" in body["error"]["message"]


def test_gateway_errors_carry_cors_headers(dev: Template) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in resources(dev, "AWS::ApiGateway::GatewayResponse").values()
    }
    assert set(responses) == {"BAD_REQUEST_BODY", "DEFAULT_4XX", "DEFAULT_5XX"}
    for response in responses.values():
        assert "gatewayresponse.header.Access-Control-Allow-Origin" in response["ResponseParameters"]


def test_access_log_retention(dev: Template, prod: Template) -> None:
    for template, days in ((dev, 7), (prod, 90)):
        (stage_id,) = resources(template, "AWS::ApiGateway::Stage")
        group = [
            g
            for g in resources(template, "AWS::Logs::LogGroup")
            if mentions(props(template, stage_id)["AccessLogSetting"], g)
        ]
        assert [props(template, g)["RetentionInDays"] for g in group] == [days]


# ---------------------------------------------------------------------------------------- monitoring
def alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {key: res["Properties"] for key, res in resources(template, "AWS::CloudWatch::Alarm").items()}


def test_dlq_alarm_notifies_the_topic(dev: Template) -> None:
    (topic,) = resources(dev, "AWS::SNS::Topic")
    (dlq_alarm,) = [
        a
        for a in alarms(dev).values()
        if a["MetricName"] == "ApproximateNumberOfMessagesVisible" and mentions(a["Dimensions"], dead_letter_id(dev))
    ]
    assert (dlq_alarm["Threshold"], dlq_alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert dlq_alarm["AlarmActions"] == [{"Ref": topic}]


def test_alarms_cover_runner_errors_api_5xx_latency_and_throttles(dev: Template) -> None:
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for alarm in alarms(dev).values():
        by_metric.setdefault(alarm["MetricName"], []).append(alarm)
        assert alarm["AlarmActions"] and alarm["TreatMissingData"] == "notBreaching"
    (errors,) = by_metric["Errors"]
    assert mentions(errors["Dimensions"], function_id(dev, RUN_BACKTEST))
    (server_errors,) = by_metric["5XXError"]
    assert server_errors["Namespace"] == "AWS/ApiGateway" and server_errors["Threshold"] == 1
    assert len(by_metric["Latency"]) == 1
    throttled = {ref_id(a["Dimensions"][0]["Value"]) for a in by_metric["Throttles"]}
    assert throttled == {function_id(dev, spec) for spec in FUNCTIONS}
    # The backlog of each queue (the jobs', the optimization chunks')
    backlog = {ref_id(a["Dimensions"][0]["Value"]) for a in by_metric["ApproximateAgeOfOldestMessage"]}
    assert backlog == {jobs_queue_id(dev), optimization_queue_id(dev)}


def test_the_optimization_dlq_alarm_notifies_the_topic(dev: Template) -> None:
    (topic,) = resources(dev, "AWS::SNS::Topic")
    (dlq_alarm,) = [
        a
        for a in alarms(dev).values()
        if a["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and mentions(a["Dimensions"], optimization_dead_letter_id(dev))
    ]
    assert (dlq_alarm["Threshold"], dlq_alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert dlq_alarm["AlarmActions"] == [{"Ref": topic}]


def test_alarm_email_subscription_only_when_given(dev: Template, prod: Template) -> None:
    assert resources(dev, "AWS::SNS::Subscription") == {}
    (subscription,) = resources(prod, "AWS::SNS::Subscription").values()
    assert (subscription["Properties"]["Protocol"], subscription["Properties"]["Endpoint"]) == (
        "email",
        "ops@example.com",
    )
    (topic_policy,) = resources(dev, "AWS::SNS::TopicPolicy").values()
    (deny,) = topic_policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_dashboard(dev: Template) -> None:
    (dashboard,) = resources(dev, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"{SERVICE_NAME}-dev"
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in ("5XXError", "Throttles", "ApproximateAgeOfOldestMessage", METRICS_NAMESPACE):
        assert metric in body


# ------------------------------------------------------------------------------------------- outputs
def test_stable_outputs(synthesized: Synthesized, dev: Template) -> None:
    assert set(dev["Outputs"]) >= STABLE_OUTPUTS
    assert ref_id(dev["Outputs"]["JobsQueueUrl"]["Value"]) == jobs_queue_id(dev)
    assert ref_id(dev["Outputs"]["DeadLetterQueueUrl"]["Value"]) == dead_letter_id(dev)
    assert ref_id(dev["Outputs"]["JobsTableName"]["Value"]) == jobs_table_id(dev)
    assert ref_id(dev["Outputs"]["IdempotencyTableName"]["Value"]) == idempotency_table_id(dev)
    assert ref_id(dev["Outputs"]["OptimizationsTableName"]["Value"]) == optimizations_table_id(dev)
    assert ref_id(dev["Outputs"]["OptimizationQueueUrl"]["Value"]) == optimization_queue_id(dev)
    assert ref_id(dev["Outputs"]["OptimizationDeadLetterQueueUrl"]["Value"]) == optimization_dead_letter_id(dev)
    assert ref_id(dev["Outputs"]["ResultsBucketName"]["Value"]) == results_bucket_id(dev)
    assert mentions(dev["Outputs"]["ApiUrl"]["Value"], rest_api_id(dev))
    iam = synthesized.json("Iam")["Outputs"]
    assert STABLE_OUTPUTS - {"UserPoolId", "UserPoolClientId"} <= set(iam)
    assert "UserPoolId" not in iam and iam["AuthMode"]["Value"] == "iam"


# ------------------------------------------------------------------------------------ nag and linting
def test_cdk_nag_passes_with_every_acknowledgment_explained(synthesized: Synthesized) -> None:
    # Synthesis itself fails on an unacknowledged AwsSolutions finding (cdk-nag 3 is a validation
    # plugin); the fixture got here, and the report, when written, lists no AwsSolutions violation.
    report_path = synthesized.outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {"pluginReports": []}
    nag_violations = [
        v["ruleName"]
        for p in report["pluginReports"]
        for v in p.get("violations", [])
        if "AwsSolutions" in v["ruleName"]
    ]
    assert nag_violations == []
    acknowledged: dict[str, set[str]] = {}
    for name in VARIANTS:
        for res in synthesized.json(name)["Resources"].values():
            for rule in res.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                assert len(rule["reason"]) >= 60, rule
                acknowledged.setdefault(rule["id"].split("[")[0], set()).add(rule["reason"])
    assert set(acknowledged) == EXPECTED_ACKNOWLEDGMENTS


def test_cdk_nag_catches_what_is_not_acknowledged(tmp_path: Path) -> None:
    # Given a stack with a queue that accepts plain HTTP and has no DLQ, When synthesizing with the
    # same checks, Then synthesis fails naming the rules.
    app = new_app(outdir=str(tmp_path))
    sqs.Queue(Stack(app, "Insecure"), "Queue", encryption=sqs.QueueEncryption.SQS_MANAGED)
    add_checks(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p.get("violations", [])}
    assert {"AwsSolutions-SQS3", "AwsSolutions-SQS4"} <= rules


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_cfn_lint_is_clean(synthesized: Synthesized, variant: str) -> None:
    # W3005 (DependsOn already implied by a GetAtt) is ignored: CDK adds DependsOn from each function to
    # its role *and* the role's DefaultPolicy on purpose, so the policy exists before the first invoke.
    matches = lint(
        json.dumps(synthesized.json(variant)),
        config=ManualArgs(regions=["us-east-1", "eu-west-1"], ignore_checks=["W3005"]),
    )
    assert [str(m) for m in matches] == []


# -------------------------------------------------------------------------------------------- config
def test_prod_requires_explicit_origins() -> None:
    with pytest.raises(ConfigError, match="allowedOrigins"):
        stage_config({"stage": "prod"})
    with pytest.raises(ConfigError, match="refused in prod"):
        stage_config({"stage": "prod", "allowedOrigins": "*"})
    with pytest.raises(ConfigError, match="scheme"):
        stage_config({"allowedOrigins": "app.example.com"})
    with pytest.raises(ConfigError, match="stage"):
        stage_config({"stage": "staging"})
    with pytest.raises(ConfigError, match="authMode"):
        stage_config({"authMode": "apikey"})
    assert stage_config({"allowedOrigins": "https://a.example.com/, https://b.example.com"}).allowed_origins == (
        "https://a.example.com",
        "https://b.example.com",
    )


def test_app_synthesizes_from_the_command_line(tmp_path: Path) -> None:
    # `python infra/app.py` from the repo root, with no sys.path set-up: nothing in infra/ shadows a library.
    env = {**os.environ, "CDK_OUTDIR": ""}
    done = subprocess.run(
        [sys.executable, "infra/app.py", "--outdir", str(tmp_path), "-c", "layerDir=layers/engine"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "run `make layer`" in done.stderr
    template = json.loads((tmp_path / "BacktestService-dev.template.json").read_text())
    assert set(template["Outputs"]) >= STABLE_OUTPUTS
