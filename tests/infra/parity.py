"""The deployed and the local stack, described alike, so that one can be compared with the other.

`cdk_view` reads the synthesized CloudFormation template; `local_view` asks moto (and the local stack,
for the functions' environment) after `LocalStack` created everything. Both give, per resource of
`topology` (named by its spec's logical id), the properties the service relies on:

- tables: key schema, attribute types, GSIs (keys, projection), TTL attribute, billing mode,
  point-in-time recovery, encryption;
- queues: visibility timeout, retention, SSE-SQS, redrive policy (target and maxReceiveCount),
  redrive allow policy;
- the results bucket: encryption, public access block, versioning, CORS rules, lifecycle rules, its event
  notifications (function, events, prefix: the dataset uploads');
- functions: their environment variables, with resource names replaced by `<logical id>`.

`differences(cdk, local)` lists every property that is not the same on both sides.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Stack

from backtest_service import topology
from infra.stack import BacktestServiceStack
from local.stack import LOCAL_RUNTIME_ENV, LocalStack

View = dict[str, dict[str, Any]]
# What AWS applies to a queue property CloudFormation leaves out.
_QUEUE_DEFAULTS = {"VisibilityTimeout": 30, "MessageRetentionPeriod": 345600}


# ---- CloudFormation ------------------------------------------------------------------------------


def _logical_ids(stack: BacktestServiceStack) -> dict[str, str]:
    """CloudFormation logical id → the topology spec's logical id, for every resource compared."""
    parts = {
        **{spec.logical_id: stack.storage for spec in topology.TABLES},
        topology.RESULTS_BUCKET.logical_id: stack.storage,
        **{spec.logical_id: stack.queues for spec in topology.QUEUES},
        **{spec.dlq_logical_id: stack.queues for spec in topology.QUEUES},
    }
    out = {}
    for spec_id, part in parts.items():
        element = part.node.find_child(spec_id).node.default_child
        out[Stack.of(part).get_logical_id(element)] = spec_id  # type: ignore[arg-type]
    return out


def _symbolic(value: Any, names: dict[str, str]) -> Any:
    """A reference to a compared resource as `<logical id>` (Ref → name or URL, GetAtt → ARN)."""
    if isinstance(value, dict) and "Ref" in value and value["Ref"] in names:
        return f"<{names[value['Ref']]}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value and value["Fn::GetAtt"][0] in names:
        return f"<{names[value['Fn::GetAtt'][0]]}>"
    return value


def cdk_view(template: dict[str, Any], stack: BacktestServiceStack) -> View:
    names = _logical_ids(stack)
    resources = template["Resources"]
    view: View = {}
    for logical_id, spec_id in names.items():
        props = resources[logical_id]["Properties"]
        kind = resources[logical_id]["Type"]
        if kind == "AWS::DynamoDB::Table":
            view[f"table {spec_id}"] = _cdk_table(props)
        elif kind == "AWS::SQS::Queue":
            view[f"queue {spec_id}"] = _cdk_queue(props, names)
        elif kind == "AWS::S3::Bucket":
            view[f"bucket {spec_id}"] = _cdk_bucket(props)
    functions = {
        Stack.of(function).get_logical_id(function.node.default_child): spec.name  # type: ignore[arg-type]
        for spec, function in stack.functions.by_spec.items()
    }
    for logical_id, spec_id in names.items():
        if resources[logical_id]["Type"] == "AWS::S3::Bucket":
            view[f"bucket {spec_id}"]["Notifications"] = _cdk_notifications(resources, logical_id, functions)
    for spec, function in stack.functions.by_spec.items():
        props = resources[Stack.of(function).get_logical_id(function.node.default_child)]["Properties"]  # type: ignore[arg-type]
        variables = props.get("Environment", {}).get("Variables", {})
        view[f"function {spec.name}"] = {key: _symbolic(value, names) for key, value in variables.items()}
    return view


def _cdk_notifications(resources: dict[str, Any], bucket_id: str, functions: dict[str, str]) -> list[dict[str, Any]]:
    """The bucket's Lambda notifications (CDK puts them with its Custom::S3BucketNotifications resource)."""
    out = []
    for resource in resources.values():
        if resource["Type"] != "Custom::S3BucketNotifications" or resource["Properties"]["BucketName"] != {
            "Ref": bucket_id
        }:
            continue
        for entry in resource["Properties"]["NotificationConfiguration"].get("LambdaFunctionConfigurations", []):
            out.append(
                _notification(
                    functions.get(entry["LambdaFunctionArn"]["Fn::GetAtt"][0], "?"),
                    entry["Events"],
                    entry.get("Filter", {}).get("Key", {}).get("FilterRules", []),
                )
            )
    return sorted(out, key=str)


def _notification(function: str, events: list[str], rules: list[dict[str, str]]) -> dict[str, Any]:
    prefix = next((rule["Value"] for rule in rules if rule["Name"].lower() == "prefix"), None)
    return {"Function": function, "Events": sorted(events), "Prefix": prefix}


def _cdk_table(props: dict[str, Any]) -> dict[str, Any]:
    ttl = props.get("TimeToLiveSpecification") or {}
    sse = props.get("SSESpecification") or {}
    return {
        "KeySchema": _keys(props["KeySchema"]),
        "AttributeDefinitions": _attributes(props["AttributeDefinitions"]),
        "GlobalSecondaryIndexes": _indexes(props.get("GlobalSecondaryIndexes", [])),
        "TimeToLive": ttl.get("AttributeName") if ttl.get("Enabled") else None,
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
        "PointInTimeRecovery": bool(
            (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")
        ),
        "Encryption": "KMS" if sse.get("SSEEnabled") else "AWS_OWNED",
    }


def _cdk_queue(props: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    redrive = props.get("RedrivePolicy")
    return {
        "VisibilityTimeout": int(props.get("VisibilityTimeout", _QUEUE_DEFAULTS["VisibilityTimeout"])),
        "MessageRetentionPeriod": int(props.get("MessageRetentionPeriod", _QUEUE_DEFAULTS["MessageRetentionPeriod"])),
        "SqsManagedSseEnabled": bool(props.get("SqsManagedSseEnabled", False)),
        "RedrivePolicy": (
            {
                "deadLetterTarget": _symbolic(redrive["deadLetterTargetArn"], names),
                "maxReceiveCount": int(redrive["maxReceiveCount"]),
            }
            if redrive
            else None
        ),
        "RedriveAllowPolicy": props.get("RedriveAllowPolicy"),
    }


def _cdk_bucket(props: dict[str, Any]) -> dict[str, Any]:
    rules = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
    return {
        "Encryption": [rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for rule in rules],
        "PublicAccessBlock": props.get("PublicAccessBlockConfiguration"),
        "Versioning": props.get("VersioningConfiguration", {}).get("Status") == "Enabled",
        "Cors": [
            {
                "AllowedMethods": sorted(rule["AllowedMethods"]),
                "AllowedOrigins": list(rule["AllowedOrigins"]),
                "AllowedHeaders": list(rule.get("AllowedHeaders", [])),
                "MaxAgeSeconds": rule.get("MaxAge"),
            }
            for rule in props.get("CorsConfiguration", {}).get("CorsRules", [])
        ],
        "Lifecycle": [
            {
                "Id": rule.get("Id"),
                "Prefix": rule.get("Prefix"),
                "Status": rule["Status"],
                "ExpirationDays": rule.get("ExpirationInDays"),
                "AbortIncompleteUploadDays": rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation"),
            }
            for rule in props.get("LifecycleConfiguration", {}).get("Rules", [])
        ],
    }


# ---- moto ----------------------------------------------------------------------------------------


def local_view(stack: LocalStack) -> View:
    names = stack.resources
    symbolic = {
        names.jobs_table: f"<{topology.JOBS_TABLE.logical_id}>",
        names.idempotency_table: f"<{topology.IDEMPOTENCY_TABLE.logical_id}>",
        names.jobs_queue_url: f"<{topology.JOBS_QUEUE.logical_id}>",
        names.dlq_arn: f"<{topology.JOBS_QUEUE.dlq_logical_id}>",
        names.results_bucket: f"<{topology.RESULTS_BUCKET.logical_id}>",
        names.datasets_table: f"<{topology.DATASETS_TABLE.logical_id}>",
        names.optimizations_table: f"<{topology.OPTIMIZATIONS_TABLE.logical_id}>",
        names.optimization_queue_url: f"<{topology.OPTIMIZATION_QUEUE.logical_id}>",
        names.optimization_dlq_arn: f"<{topology.OPTIMIZATION_QUEUE.dlq_logical_id}>",
    }
    view: View = {
        f"table {topology.JOBS_TABLE.logical_id}": _moto_table(stack, names.jobs_table),
        f"table {topology.IDEMPOTENCY_TABLE.logical_id}": _moto_table(stack, names.idempotency_table),
        f"table {topology.DATASETS_TABLE.logical_id}": _moto_table(stack, names.datasets_table),
        f"queue {topology.JOBS_QUEUE.logical_id}": _moto_queue(stack, names.jobs_queue_url, symbolic),
        f"queue {topology.JOBS_QUEUE.dlq_logical_id}": _moto_queue(stack, names.dlq_url, symbolic),
        f"bucket {topology.RESULTS_BUCKET.logical_id}": _moto_bucket(stack, names.results_bucket),
        f"table {topology.OPTIMIZATIONS_TABLE.logical_id}": _moto_table(stack, names.optimizations_table),
        f"queue {topology.OPTIMIZATION_QUEUE.logical_id}": _moto_queue(stack, names.optimization_queue_url, symbolic),
        f"queue {topology.OPTIMIZATION_QUEUE.dlq_logical_id}": _moto_queue(stack, names.optimization_dlq_url, symbolic),
    }
    for spec in topology.FUNCTIONS:
        environment = stack.function_environment(spec)
        deployed = {key: value for key, value in environment.items() if key not in LOCAL_RUNTIME_ENV}
        view[f"function {spec.name}"] = {key: symbolic.get(value, value) for key, value in deployed.items()}
    return view


def _moto_table(stack: LocalStack, name: str) -> dict[str, Any]:
    dynamodb = stack.client("dynamodb")
    table = dynamodb.describe_table(TableName=name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    sse = table.get("SSEDescription") or {}
    return {
        "KeySchema": _keys(table["KeySchema"]),
        "AttributeDefinitions": _attributes(table["AttributeDefinitions"]),
        "GlobalSecondaryIndexes": _indexes(table.get("GlobalSecondaryIndexes", [])),
        "TimeToLive": ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") == "ENABLED" else None,
        "BillingMode": table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED"),
        "PointInTimeRecovery": backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED",
        "Encryption": "KMS" if sse.get("Status") == "ENABLED" and sse.get("SSEType") == "KMS" else "AWS_OWNED",
    }


def _moto_queue(stack: LocalStack, url: str, symbolic: dict[str, str]) -> dict[str, Any]:
    attributes = stack.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"]) if "RedrivePolicy" in attributes else None
    allow = attributes.get("RedriveAllowPolicy")
    return {
        "VisibilityTimeout": int(attributes["VisibilityTimeout"]),
        "MessageRetentionPeriod": int(attributes["MessageRetentionPeriod"]),
        "SqsManagedSseEnabled": attributes.get("SqsManagedSseEnabled") == "true",
        "RedrivePolicy": (
            {
                "deadLetterTarget": symbolic.get(redrive["deadLetterTargetArn"], redrive["deadLetterTargetArn"]),
                "maxReceiveCount": int(redrive["maxReceiveCount"]),
            }
            if redrive
            else None
        ),
        "RedriveAllowPolicy": json.loads(allow) if allow else None,
    }


def _moto_bucket(stack: LocalStack, name: str) -> dict[str, Any]:
    s3 = stack.client("s3")
    rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    try:
        cors = s3.get_bucket_cors(Bucket=name)["CORSRules"]
    except s3.exceptions.ClientError:
        cors = []
    return {
        "Encryption": [rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for rule in rules],
        "PublicAccessBlock": s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"],
        "Versioning": s3.get_bucket_versioning(Bucket=name).get("Status") == "Enabled",
        "Cors": [
            {
                "AllowedMethods": sorted(rule["AllowedMethods"]),
                "AllowedOrigins": list(rule["AllowedOrigins"]),
                "AllowedHeaders": list(rule.get("AllowedHeaders", [])),
                "MaxAgeSeconds": rule.get("MaxAgeSeconds"),
            }
            for rule in cors
        ],
        "Lifecycle": [
            {
                "Id": rule.get("ID"),
                "Prefix": rule.get("Filter", {}).get("Prefix", rule.get("Prefix")),
                "Status": rule["Status"],
                "ExpirationDays": rule.get("Expiration", {}).get("Days"),
                "AbortIncompleteUploadDays": rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation"),
            }
            for rule in s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        ],
        "Notifications": sorted(
            (
                _notification(
                    stack._function_of_arn(entry["LambdaFunctionArn"]) or "?",
                    list(entry["Events"]),
                    [dict(rule) for rule in entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])],
                )
                for entry in s3.get_bucket_notification_configuration(Bucket=name).get(
                    "LambdaFunctionConfigurations", []
                )
            ),
            key=str,
        ),
    }


# ---- shared --------------------------------------------------------------------------------------


def _keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(key["AttributeName"], key["KeyType"]) for key in schema]


def _attributes(definitions: list[dict[str, str]]) -> dict[str, str]:
    return {a["AttributeName"]: a["AttributeType"] for a in definitions}


def _indexes(indexes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        index["IndexName"]: {
            "KeySchema": _keys(index["KeySchema"]),
            "Projection": index["Projection"]["ProjectionType"],
        }
        for index in indexes
    }


def differences(cdk: View, local: View) -> list[str]:
    """Every resource or property that is not the same in both views, one line each."""
    out = []
    for resource in sorted(set(cdk) | set(local)):
        if resource not in local:
            out.append(f"{resource}: only in the CDK stack")
            continue
        if resource not in cdk:
            out.append(f"{resource}: only in the local stack")
            continue
        for key in sorted(set(cdk[resource]) | set(local[resource])):
            ours, theirs = cdk[resource].get(key, "<absent>"), local[resource].get(key, "<absent>")
            if ours != theirs:
                out.append(f"{resource}: {key} is {ours!r} in the CDK stack, {theirs!r} in the local stack")
    return out
