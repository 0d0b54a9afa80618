"""The AWS events the local stack hands to the real handlers, shaped as AWS sends them.

- `api_event`: an API Gateway REST API (v1) Lambda proxy event, with the caller put where the Cognito
  authorizer puts it (`requestContext.authorizer.claims.sub`).
- `sqs_event`: the batch Lambda's SQS event source mapping passes to a function.
- `ROUTES` / `match_route`: which function serves which method and path (DESIGN.md "HTTP API"), with the
  API Gateway resource template and its path parameters.
- `LambdaContext`: the context object a handler receives.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from backtest_service.topology import API_PREFIX

ACCOUNT_ID = "123456789012"  # moto's default account
API_ID = "local"
STAGE = "local"


@dataclass(frozen=True)
class Route:
    method: str
    resource: str  # the API Gateway resource template, e.g. /api/backtest/status/{execution_id}
    function: str  # folder under functions/

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.resource))
        return re.compile(f"^{regex}$")


ROUTES: tuple[Route, ...] = (
    Route("POST", f"{API_PREFIX}/run", "submit"),
    Route("GET", f"{API_PREFIX}/status/{{execution_id}}", "status"),
    Route("GET", f"{API_PREFIX}/executions", "status"),
    Route("GET", f"{API_PREFIX}/market-data/symbols", "symbols"),
    Route("GET", f"{API_PREFIX}/performance-metrics/definitions", "symbols"),
    Route("GET", f"{API_PREFIX}/openapi.json", "symbols"),
    Route("GET", f"{API_PREFIX}/docs", "symbols"),
    Route("GET", "/health", "symbols"),
)


def match_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route serving `method path` and its path parameters; None when no route does."""
    for route in ROUTES:
        if route.method != method.upper():
            continue
        m = route.pattern.match(path)
        if m:
            return route, m.groupdict()
    return None


def allowed_methods(path: str) -> list[str]:
    """The methods some route serves at `path` (for CORS preflight and 405 answers)."""
    return sorted({r.method for r in ROUTES if r.pattern.match(path)})


def api_event(
    method: str,
    path: str,
    *,
    query: str | Mapping[str, str | list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
    user: str | None = "local-user",
    source_ip: str = "127.0.0.1",
    resource: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event; `user` is the caller's Cognito `sub` (None: no caller)."""
    found = match_route(method, path)
    if found is not None and resource is None:
        resource = found[0].resource
        path_parameters = path_parameters if path_parameters is not None else found[1]
    resource = resource or path

    multi_query: dict[str, list[str]] = {}
    if isinstance(query, str):
        multi_query = parse_qs(query, keep_blank_values=True)
    elif query:
        multi_query = {k: list(v) if isinstance(v, list) else [v] for k, v in query.items()}

    hdrs = {"Host": "127.0.0.1", "User-Agent": "backtest-local", **(headers or {})}
    multi_headers = {k: [v] for k, v in hdrs.items()}
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    authorizer: dict[str, Any] | None = None
    if user is not None:
        authorizer = {"claims": {"sub": user, "cognito:username": user, "token_use": "id"}}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method.upper(),
        "headers": hdrs,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "authorizer": authorizer,
            "domainName": hdrs.get("Host", "127.0.0.1"),
            "domainPrefix": API_ID,
            "extendedRequestId": request_id,
            "httpMethod": method.upper(),
            "identity": {
                "sourceIp": source_ip,
                "userAgent": hdrs.get("User-Agent"),
                "accountId": None,
                "caller": None,
                "user": None,
                "userArn": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "accessKey": None,
                "apiKey": None,
                "apiKeyId": None,
                "principalOrgId": None,
            },
            "path": f"/{STAGE}{path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "resourceId": hashlib.sha1(resource.encode()).hexdigest()[:6],
            "resourcePath": resource,
            "stage": STAGE,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def sqs_record(message: Mapping[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """One record of a Lambda SQS event from a `receive_message` message (with its system attributes)."""
    attrs = dict(message.get("Attributes", {}))
    body = message["Body"]
    msg_attrs: dict[str, Any] = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        msg_attrs[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType", "String"),
        }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": attrs.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attrs.get("SentTimestamp", str(int(time.time() * 1000))),
            "SenderId": attrs.get("SenderId", ACCOUNT_ID),
            "ApproximateFirstReceiveTimestamp": attrs.get(
                "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
            ),
        },
        "messageAttributes": msg_attrs,
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def sqs_event(messages: list[Mapping[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    return {"Records": [sqs_record(m, queue_arn=queue_arn, region=region) for m in messages]}


@dataclass
class LambdaContext:
    """What Lambda passes as `context` (the attributes powertools and handlers read)."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    region: str = "us-east-1"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
