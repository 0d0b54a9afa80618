"""The local stack builds what the CDK stack deploys: both come from `topology`, and this compares the
results, what CDK synthesizes against what moto describes once `LocalStack` created its resources
(tests/infra/parity.py lists the properties). A drift on either side fails here, naming the property."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from backtest_service import topology
from infra.config import stage_config
from local import aws_resources
from local.stack import LocalStack
from tests.infra.infra_harness import Synthesized
from tests.infra.parity import View, cdk_view, differences, local_view

pytestmark = pytest.mark.xdist_group("infra")


DEV = stage_config({})  # the stage the `Dev` template is synthesized for


def local_stack(**overrides: Any) -> LocalStack:
    """The local stack configured as the dev stage: its origins on the bucket, its log level."""
    return LocalStack(**{"allowed_origins": DEV.allowed_origins, "handler_log_level": DEV.log_level, **overrides})


@pytest.fixture(scope="module")
def cdk(synthesized: Synthesized) -> View:
    return cdk_view(synthesized.json("Dev"), synthesized.stacks["Dev"])


@pytest.fixture(scope="module")
def local() -> View:
    # Described, then stopped: two in-process stacks at once would share moto's state.
    with local_stack() as stack:
        return local_view(stack)


def test_the_local_stack_builds_what_the_cdk_stack_deploys(cdk: View, local: View) -> None:
    # The comparison covers every resource both sides build, not a subset that happens to agree.
    assert set(cdk) == {
        "table JobsTable",
        "table IdempotencyTable",
        "table DatasetsTable",
        "queue JobsQueue",
        "queue DeadLetterQueue",
        "bucket ResultsBucket",
        "table OptimizationsTable",
        "queue OptimizationQueue",
        "queue OptimizationDeadLetterQueue",
        *(f"function {spec.name}" for spec in topology.FUNCTIONS),
    }
    assert differences(cdk, local) == []


def test_the_properties_that_matter_are_compared(cdk: View) -> None:
    # Spot checks that the views read the real values (an empty view would agree with anything).
    assert cdk["queue JobsQueue"]["RedrivePolicy"] == {
        "deadLetterTarget": "<DeadLetterQueue>",
        "maxReceiveCount": topology.JOBS_QUEUE.max_receive_count,
    }
    assert cdk["queue JobsQueue"]["VisibilityTimeout"] == topology.JOBS_QUEUE.visibility_timeout_seconds
    assert cdk["queue DeadLetterQueue"]["RedriveAllowPolicy"] is None  # see topology.QueueSpec
    assert cdk["table JobsTable"]["PointInTimeRecovery"] is True
    assert cdk["table JobsTable"]["GlobalSecondaryIndexes"]["by_owner"]["Projection"] == "ALL"
    assert cdk["bucket ResultsBucket"]["Cors"][0]["AllowedOrigins"] == list(DEV.allowed_origins)
    assert cdk["bucket ResultsBucket"]["Lifecycle"][0]["AbortIncompleteUploadDays"] == 1
    assert cdk["function run_backtest"][topology.Env.JOBS_TABLE] == "<JobsTable>"
    assert cdk["function status"][topology.Env.RESULTS_URL_TTL_SECONDS] == "900"
    assert cdk["bucket ResultsBucket"]["Notifications"] == [
        {"Function": "validate_dataset", "Events": ["s3:ObjectCreated:*"], "Prefix": topology.DATASET_UPLOADS_PREFIX}
    ]
    assert cdk["table DatasetsTable"]["GlobalSecondaryIndexes"]["by_owner"]["KeySchema"] == [
        ("owner", "HASH"),
        ("created_at", "RANGE"),
    ]
    assert cdk["function validate_dataset"][topology.Env.DATASETS_TABLE] == "<DatasetsTable>"
    # Parameter optimizations (issue 14): the chunks queue redrives to its own DLQ, every function is told the
    # optimizations table and the chunks queue, and the bucket expires optimization objects too
    assert cdk["queue OptimizationQueue"]["RedrivePolicy"] == {
        "deadLetterTarget": "<OptimizationDeadLetterQueue>",
        "maxReceiveCount": topology.OPTIMIZATION_QUEUE.max_receive_count,
    }
    assert cdk["table OptimizationsTable"]["KeySchema"] == [("optimization_id", "HASH"), ("item", "RANGE")]
    assert cdk["function run_backtest"][topology.Env.OPTIMIZATIONS_TABLE] == "<OptimizationsTable>"
    assert cdk["function optimizations"][topology.Env.OPTIMIZATION_QUEUE_URL] == "<OptimizationQueue>"
    assert cdk["function optimizations"][topology.Env.OPTIMIZATION_CHUNK_SECONDS] == "60"
    assert [rule["Prefix"] for rule in cdk["bucket ResultsBucket"]["Lifecycle"]] == [
        "results/",
        topology.DATASET_UPLOADS_PREFIX,
        topology.DATASET_DATA_PREFIX,
        "optimizations/",
    ]


# ---- a drift on one side only is reported --------------------------------------------------------


def _local_drift(monkeypatch: pytest.MonkeyPatch, name: str, value: Any) -> View:
    """The local view when the local side builds `topology.<name>` as `value` (CDK already synthesized)."""
    monkeypatch.setattr(aws_resources.topology, name, value)
    with local_stack() as stack:
        return local_view(stack)


def test_a_queue_built_locally_with_another_visibility_timeout_is_reported(
    cdk: View, monkeypatch: pytest.MonkeyPatch
) -> None:
    drifted = _local_drift(
        monkeypatch, "JOBS_QUEUE", dataclasses.replace(topology.JOBS_QUEUE, visibility_timeout_seconds=60)
    )
    assert differences(cdk, drifted) == [
        "queue JobsQueue: VisibilityTimeout is 1800 in the CDK stack, 60 in the local stack"
    ]


def test_a_bucket_built_locally_without_cors_is_reported(cdk: View, monkeypatch: pytest.MonkeyPatch) -> None:
    drifted = _local_drift(monkeypatch, "RESULTS_BUCKET", dataclasses.replace(topology.RESULTS_BUCKET, cors=None))
    (problem,) = differences(cdk, drifted)
    assert problem.startswith("bucket ResultsBucket: Cors is [{") and problem.endswith("[] in the local stack")


def test_a_bucket_built_locally_without_its_upload_notification_is_reported(
    cdk: View, monkeypatch: pytest.MonkeyPatch
) -> None:
    drifted = _local_drift(
        monkeypatch, "RESULTS_BUCKET", dataclasses.replace(topology.RESULTS_BUCKET, notifications=())
    )
    (problem,) = differences(cdk, drifted)
    assert problem.startswith("bucket ResultsBucket: Notifications is [{'Function': 'validate_dataset'")


def test_an_environment_variable_set_on_one_side_only_is_reported(cdk: View) -> None:
    with local_stack(env={"MAX_BARS": "1000"}) as stack:
        drifted = local_view(stack)
    assert differences(cdk, drifted) == [
        f"function {spec.name}: MAX_BARS is '<absent>' in the CDK stack, '1000' in the local stack"
        for spec in sorted(topology.FUNCTIONS, key=lambda spec: spec.name)
    ]


def test_a_property_changed_in_the_template_only_is_reported(synthesized: Synthesized, local: View) -> None:
    template = copy.deepcopy(synthesized.json("Dev"))
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::DynamoDB::Table":
            resource["Properties"]["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": False}
        if resource["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in resource["Properties"]:
            resource["Properties"]["RedrivePolicy"]["maxReceiveCount"] = 5
    assert sorted(differences(cdk_view(template, synthesized.stacks["Dev"]), local)) == sorted(
        [
            "queue JobsQueue: RedrivePolicy is {'deadLetterTarget': '<DeadLetterQueue>', 'maxReceiveCount': 5} in the "
            "CDK stack, {'deadLetterTarget': '<DeadLetterQueue>', 'maxReceiveCount': 3} in the local stack",
            "table DatasetsTable: PointInTimeRecovery is False in the CDK stack, True in the local stack",
            "queue OptimizationQueue: RedrivePolicy is {'deadLetterTarget': '<OptimizationDeadLetterQueue>', "
            "'maxReceiveCount': 5} in the CDK stack, {'deadLetterTarget': '<OptimizationDeadLetterQueue>', "
            "'maxReceiveCount': 3} in the local stack",
            "table JobsTable: PointInTimeRecovery is False in the CDK stack, True in the local stack",
            "table OptimizationsTable: PointInTimeRecovery is False in the CDK stack, True in the local stack",
        ]
    )
