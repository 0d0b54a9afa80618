"""The dataset resources of the CDK stack: the table, the two functions' least-privilege roles, the
uploads' S3 notification to validate_dataset, the datasets layer."""

from __future__ import annotations

import json

import pytest

from backtest_service.topology import (
    DATASET_DATA_PREFIX,
    DATASET_UPLOADS_PREFIX,
    DATASETS,
    DATASETS_TABLE,
    SUBMIT,
    VALIDATE_DATASET,
    Env,
)
from tests.infra.test_stack import (
    Template,
    actions,
    datasets_table_id,
    function_id,
    granted,
    layer_ids,
    props,
    ref_id,
    resources,
    results_bucket_id,
    role_statements,
)

pytestmark = pytest.mark.xdist_group("infra")


def prefixes(resources_: list[object]) -> set[str]:
    """The object prefixes granted (`<bucket arn>/datasets/uploads/*` → `datasets/uploads/*`)."""
    return {json.dumps(r).split('"/', 1)[-1].split('"', 1)[0] for r in resources_}


def test_datasets_table_is_keyed_by_id_listed_by_owner_and_expires(dev: Template) -> None:
    table = props(dev, datasets_table_id(dev))
    assert table["TimeToLiveSpecification"] == {"AttributeName": DATASETS_TABLE.ttl_attribute, "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == DATASETS_TABLE.gsi_name


def test_the_datasets_function_manages_records_and_presigns_uploads_only(dev: Template) -> None:
    statements = role_statements(dev, function_id(dev, DATASETS))
    table = datasets_table_id(dev)
    for action in ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"):
        assert [ref_id(r) for r in granted(statements, action)] == [table]
    assert prefixes(granted(statements, "s3:PutObject")) == {f"{DATASET_UPLOADS_PREFIX}*"}
    assert prefixes(granted(statements, "s3:DeleteObject")) == {f"{DATASET_UPLOADS_PREFIX}*", f"{DATASET_DATA_PREFIX}*"}
    assert not {"s3:GetObject", "dynamodb:UpdateItem", "sqs:SendMessage"} & actions(statements)


def test_validate_dataset_reads_uploads_writes_copies_and_has_pyarrow(dev: Template) -> None:
    fn = function_id(dev, VALIDATE_DATASET)
    statements = role_statements(dev, fn)
    assert prefixes(granted(statements, "s3:GetObject")) == {f"{DATASET_UPLOADS_PREFIX}*"}
    assert prefixes(granted(statements, "s3:PutObject")) == {f"{DATASET_DATA_PREFIX}*"}
    assert [ref_id(r) for r in granted(statements, "dynamodb:UpdateItem")] == [datasets_table_id(dev)]
    assert not {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "sqs:SendMessage"} & actions(statements)
    assert sorted(ref_id(layer) for layer in props(dev, fn)["Layers"]) == sorted(layer_ids(dev))


def test_uploads_notify_validate_dataset(dev: Template) -> None:
    (notifications,) = resources(dev, "Custom::S3BucketNotifications").values()
    assert notifications["Properties"]["BucketName"] == {"Ref": results_bucket_id(dev)}
    (config,) = notifications["Properties"]["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    assert ref_id(config["LambdaFunctionArn"]) == function_id(dev, VALIDATE_DATASET)
    assert config["Events"] == ["s3:ObjectCreated:*"]
    assert config["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": DATASET_UPLOADS_PREFIX}]
    (permission,) = (
        p["Properties"]
        for p in resources(dev, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "s3.amazonaws.com"
    )
    assert ref_id(permission["FunctionName"]) == function_id(dev, VALIDATE_DATASET)


def test_submit_reads_datasets_but_writes_none(dev: Template) -> None:
    statements = role_statements(dev, function_id(dev, SUBMIT))
    assert datasets_table_id(dev) in [ref_id(r) for r in granted(statements, "dynamodb:GetItem")]
    assert datasets_table_id(dev) not in [ref_id(r) for r in granted(statements, "dynamodb:PutItem")]
    env = props(dev, function_id(dev, SUBMIT))["Environment"]["Variables"]
    assert ref_id(env[Env.DATASETS_TABLE]) == datasets_table_id(dev)
