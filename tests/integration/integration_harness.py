"""Integration harness: the four real handlers on moto, driven by real event shapes (fixtures in conftest.py).

- `stack` (per test): a fresh `mock_aws`, the resources created from topology by
  `local.aws_resources.create_resources`, their environment set, every service cache cleared.
- `api`: calls an API function's `lambda_handler` with an API Gateway REST (v1) proxy event
  carrying the caller in `requestContext.authorizer.claims.sub`, as the Cognito authorizer does.
- `worker`: plays Lambda's SQS event source mapping: receives from the jobs queue (with
  `ApproximateReceiveCount`), calls run_backtest's `lambda_handler` with a real SQS event, deletes
  the records not reported in `batchItemFailures` and makes the failed ones visible again.
- `inject_fault`: makes one AWS operation of the functions' shared clients fail N times.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3

from backtest_service import topology

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO / "functions"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"

# A small, fast strategy: SMA crossover on one month of hourly bars.
SMA_CROSS = """\
import numpy as np
import talib


def generate_signals(data, params):
    fast = talib.SMA(data.close.values, timeperiod=params.get("fast", 5))
    slow = talib.SMA(data.close.values, timeperiod=params.get("slow", 20))
    return np.where(fast > slow, 1.0, 0.0)
"""
SMALL_RUN = {"symbol": "AAPL", "timeframe": "1h", "start_date": "2024-01-01", "end_date": "2024-01-31"}

_BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_NAMESPACE": topology.METRICS_NAMESPACE,
    "POWERTOOLS_SERVICE_NAME": topology.SERVICE_NAME,
}
_HANDLERS: dict[str, ModuleType] = {}


def clear_service_caches() -> None:
    """Drop what the service modules cached (settings, clients, stores) for a fresh embedded AWS."""
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith("backtest_service"):
            continue
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == name:
                value.cache_clear()
    from backtest_service import clients

    clients.reset_clients()


def load_handler(function: str) -> ModuleType:
    """The function's handler module, imported once per test process under a unique name."""
    if function not in _HANDLERS:
        path = FUNCTIONS_DIR / function / "handler.py"
        spec = importlib.util.spec_from_file_location(f"functions_{function}_handler", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _HANDLERS[function] = module
    return _HANDLERS[function]


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    timeout_seconds: int = 30
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/test"
    log_stream_name: str = "test"
    _start: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._start)) * 1000))


def api_gateway_event(
    method: str,
    path: str,
    *,
    body: str | None = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    user: str | None = "alice",
    iam_arn: str | None = None,
    resource: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST API (v1) Lambda proxy event; `user` is the Cognito `sub`, `iam_arn` a SigV4
    caller's ARN (IAM auth: no authorizer claims); neither: no authenticated caller."""
    hdrs = {"Host": "abc123.execute-api.us-east-1.amazonaws.com", "User-Agent": "pytest", **(headers or {})}
    request_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    authorizer = None
    if user is not None:
        authorizer = {"claims": {"sub": user, "cognito:username": user, "token_use": "id", "aud": "client"}}
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": hdrs,
        "multiValueHeaders": {k: [v] for k, v in hdrs.items()},
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "abc123",
            "authorizer": authorizer,
            "domainName": hdrs["Host"],
            "domainPrefix": "abc123",
            "extendedRequestId": request_id,
            "httpMethod": method,
            "identity": {
                "sourceIp": "203.0.113.7",
                "userAgent": "pytest",
                "accountId": None,
                "caller": iam_arn and "AIDAJQABLZS4A3QDU576Q",
                "user": iam_arn and "AIDAJQABLZS4A3QDU576Q",
                "userArn": iam_arn,
                "cognitoIdentityId": None,
                "accessKey": None,
            },
            "path": f"/prod{path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "resourceId": "res123",
            "resourcePath": resource or path,
            "stage": "prod",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def sqs_record(
    body: str, *, receive_count: int = 1, message_id: str | None = None, queue_arn: str | None = None
) -> dict[str, Any]:
    """One record of the SQS event Lambda's event source mapping delivers."""
    now = str(int(time.time() * 1000))
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": f"handle-{uuid.uuid4()}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": now,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn or f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:backtest-jobs",
        "awsRegion": REGION,
    }


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: Any
    request_id: str = ""  # API Gateway's request id: the functions' log correlation id

    @property
    def error(self) -> dict[str, Any]:
        assert self.body["success"] is False, self.body
        return dict(self.body["error"])


class Api:
    """Calls the API functions' handlers the way API Gateway does."""

    ROUTES = (
        ("POST", f"{topology.API_PREFIX}/run", "submit", None),
        ("GET", f"{topology.API_PREFIX}/status/", "status", f"{topology.API_PREFIX}/status/{{execution_id}}"),
        ("GET", f"{topology.API_PREFIX}/executions", "status", None),
        ("GET", f"{topology.API_PREFIX}/", "symbols", None),
        ("GET", "/health", "symbols", None),
    )

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw_body: str | None = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        user: str | None = "alice",
        iam_arn: str | None = None,
    ) -> ApiResponse:
        function, resource, params = self._route(method, path)
        hdrs = {"Content-Type": "application/json", **(headers or {})} if method == "POST" else dict(headers or {})
        text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
        event = api_gateway_event(
            method,
            path,
            body=text,
            headers=hdrs,
            query=query,
            user=user,
            iam_arn=iam_arn,
            resource=resource,
            path_parameters=params,
        )
        out = load_handler(function).lambda_handler(event, LambdaContext(function_name=f"backtest-{function}"))
        payload = out["body"]
        headers = dict(out.get("headers") or {})  # REST API (v1) answers put them in multiValueHeaders
        headers.update({k: ", ".join(v) for k, v in (out.get("multiValueHeaders") or {}).items()})
        content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        parsed = json.loads(payload) if "json" in content_type and payload else payload
        return ApiResponse(out["statusCode"], headers, parsed, event["requestContext"]["requestId"])

    def _route(self, method: str, path: str) -> tuple[str, str | None, dict[str, str] | None]:
        for m, prefix, function, resource in self.ROUTES:
            if method == m and path.startswith(prefix):
                if resource and "{execution_id}" in resource:
                    return function, resource, {"execution_id": path[len(prefix) :]}
                return function, resource, None
        raise AssertionError(f"no function serves {method} {path}")

    def submit(self, user: str = "alice", headers: Mapping[str, str] | None = None, **fields: Any) -> ApiResponse:
        body = {"strategy_code": SMA_CROSS, **SMALL_RUN, **fields}
        return self.call("POST", f"{topology.API_PREFIX}/run", body=body, user=user, headers=headers)

    def status(self, execution_id: str, user: str = "alice") -> ApiResponse:
        return self.call("GET", f"{topology.API_PREFIX}/status/{execution_id}", user=user)


@dataclass
class Stack:
    names: Any  # local.aws_resources.ResourceNames

    def client(self, service: str) -> Any:
        return boto3.session.Session(region_name=REGION).client(service)  # type: ignore[call-overload]

    def job_item(self, execution_id: str) -> dict[str, Any] | None:
        from backtest_service.job_store import JobStore

        record = JobStore(self.names.jobs_table, self.client("dynamodb")).get(execution_id)
        return record.model_dump() if record else None

    def count_jobs(self) -> int:
        return int(self.client("dynamodb").scan(TableName=self.names.jobs_table, Select="COUNT")["Count"])

    def result_keys(self) -> list[str]:
        out = self.client("s3").list_objects_v2(Bucket=self.names.results_bucket, Prefix=topology.RESULTS_PREFIX)
        return [o["Key"] for o in out.get("Contents", [])]

    def queue_depth(self, url: str) -> int:
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


@dataclass
class WorkerRun:
    event: dict[str, Any]
    response: dict[str, Any]

    @property
    def failed_ids(self) -> list[str]:
        return [f["itemIdentifier"] for f in self.response.get("batchItemFailures", [])]


class Worker:
    """Lambda's SQS event source mapping for run_backtest, one poll at a time."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.sqs = stack.client("sqs")

    def invoke(self, records: list[dict[str, Any]]) -> WorkerRun:
        event = {"Records": records}
        response = load_handler("run_backtest").lambda_handler(
            event,
            LambdaContext(function_name="backtest-run_backtest", memory_limit_in_mb=3008, timeout_seconds=300),
        )
        return WorkerRun(event, response)

    def poll(self) -> WorkerRun | None:
        """Receive one batch, run it, acknowledge what succeeded; None when the queue is empty."""
        out = self.sqs.receive_message(
            QueueUrl=self.stack.names.jobs_queue_url,
            MaxNumberOfMessages=topology.JOBS_QUEUE.batch_size,
            MessageSystemAttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        messages = out.get("Messages", [])
        if not messages:
            return None
        records = [
            {
                **sqs_record(
                    m["Body"],
                    receive_count=int(m["Attributes"]["ApproximateReceiveCount"]),
                    message_id=m["MessageId"],
                    queue_arn=self.stack.names.jobs_queue_arn,
                ),
                "receiptHandle": m["ReceiptHandle"],
            }
            for m in messages
        ]
        run = self.invoke(records)
        failed = set(run.failed_ids)
        for m in messages:
            if m["MessageId"] in failed:  # visible again at once instead of after the visibility timeout
                self.sqs.change_message_visibility(
                    QueueUrl=self.stack.names.jobs_queue_url,
                    ReceiptHandle=m["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            else:
                self.sqs.delete_message(QueueUrl=self.stack.names.jobs_queue_url, ReceiptHandle=m["ReceiptHandle"])
        return run

    def drain(self, max_polls: int = 20) -> list[WorkerRun]:
        runs = []
        for _ in range(max_polls):
            run = self.poll()
            if run is None:
                break
            runs.append(run)
        return runs
