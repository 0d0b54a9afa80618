"""What a handler is called with, shaped as AWS sends it, and what an API function answers.

- `api_event`: an API Gateway REST API (v1) Lambda proxy event for a route of `backtest_service.routes`
  (resource template, path parameters, query string, headers, body), with the caller where API Gateway
  puts it: a Cognito user's `sub` in `requestContext.authorizer.claims`, or an IAM (SigV4) caller's ARN in
  `requestContext.identity.userArn`. A public route carries no caller, as behind API Gateway.
- `sqs_record` / `sqs_event`: the batch Lambda's SQS event source mapping passes to a function.
- `LambdaContext`: the context object a handler receives.
- `ApiResponse` and `route_not_found`: a proxy response read back, and API Gateway's own 404/405.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from backtest_service import topology
from backtest_service.routes import OPENAPI_DOCUMENT, allowed_methods, match_route
from local.aws_resources import queue_names
from local.embedded_aws import ACCOUNT_ID, DEFAULT_REGION

API_ID = "local"
STAGE = "local"
DEFAULT_USER = "local-user"
# The local jobs queue's ARN (what a hand-made record says it came from, as moto names it).
DEFAULT_QUEUE_ARN = f"arn:aws:sqs:{DEFAULT_REGION}:{ACCOUNT_ID}:{queue_names(topology.JOBS_QUEUE)[0]}"
_IAM_CALLER_ID = "AIDAJQABLZS4A3QDU576Q"


def api_event(
    method: str,
    path: str,
    *,
    query: str | Mapping[str, str | list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
    user: str | None = DEFAULT_USER,
    iam_arn: str | None = None,
    source_ip: str = "127.0.0.1",
    base_path: str = "",
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event. The caller: `user`, a Cognito `sub`; or `iam_arn`, a SigV4
    principal (give `user=None` with it); neither, an unauthenticated request.

    `base_path`: what the URL the caller used has before the API's own path. API Gateway's own domain puts
    the stage there (`/prod`: `requestContext.path` is `/prod/api/...`); the local server, like a custom
    domain mapped at its root, puts nothing."""
    method = method.upper()
    found = match_route(method, path)
    resource, path_parameters = (found[0].path, found[1]) if found else (path, {})
    if found is not None and found[0].auth == "public":
        user = iam_arn = None  # API Gateway authorizes nobody on a public method

    multi_query: dict[str, list[str]] = {}
    if isinstance(query, str):
        multi_query = parse_qs(query, keep_blank_values=True)
    elif query:
        multi_query = {k: list(v) if isinstance(v, list) else [v] for k, v in query.items()}

    hdrs = {"Host": "127.0.0.1", "User-Agent": "backtest-local", **(headers or {})}
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    authorizer: dict[str, Any] | None = None
    if user is not None:
        authorizer = {"claims": {"sub": user, "cognito:username": user, "token_use": "id"}}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": hdrs,
        "multiValueHeaders": {k: [v] for k, v in hdrs.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "authorizer": authorizer,
            "domainName": hdrs.get("Host", "127.0.0.1"),
            "domainPrefix": API_ID,
            "extendedRequestId": request_id,
            "httpMethod": method,
            "identity": {
                "sourceIp": source_ip,
                "userAgent": hdrs.get("User-Agent"),
                "accountId": ACCOUNT_ID if iam_arn else None,
                "caller": _IAM_CALLER_ID if iam_arn else None,
                "user": _IAM_CALLER_ID if iam_arn else None,
                "userArn": iam_arn,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "accessKey": None,
                "apiKey": None,
                "apiKeyId": None,
                "principalOrgId": None,
            },
            "path": f"{base_path}{path}",
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


def sqs_record(
    body: str,
    *,
    message_id: str | None = None,
    receipt_handle: str | None = None,
    receive_count: int = 1,
    attributes: Mapping[str, str] | None = None,
    message_attributes: Mapping[str, Mapping[str, Any]] | None = None,
    md5_of_body: str | None = None,
    queue_arn: str = DEFAULT_QUEUE_ARN,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """One record of a Lambda SQS event. `attributes`: the message's system attributes as
    `receive_message` returns them (they win over `receive_count`); `message_attributes` likewise."""
    now = str(int(time.time() * 1000))
    attrs = dict(attributes or {})
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": receipt_handle or f"handle-{uuid.uuid4()}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": attrs.get("ApproximateReceiveCount", str(receive_count)),
            "SentTimestamp": attrs.get("SentTimestamp", now),
            "SenderId": attrs.get("SenderId", ACCOUNT_ID),
            "ApproximateFirstReceiveTimestamp": attrs.get("ApproximateFirstReceiveTimestamp", now),
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": value.get("BinaryListValues", []),
                "dataType": value.get("DataType", "String"),
            }
            for name, value in (message_attributes or {}).items()
        },
        "md5OfBody": md5_of_body or hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def sqs_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}


@dataclass
class LambdaContext:
    """What Lambda passes as `context` (the attributes powertools and handlers read)."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    region: str = DEFAULT_REGION
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


@dataclass
class ApiResponse:
    """An API answer read back from its proxy response: the body parsed when it is JSON."""

    status: int
    headers: dict[str, str]
    body: Any
    request_id: str = ""  # API Gateway's request id: the functions' log correlation id

    @property
    def error(self) -> dict[str, Any]:
        """The `error` of an error answer (`{"success": false, "error": {...}}`)."""
        assert isinstance(self.body, dict) and self.body.get("success") is False, self.body
        return dict(self.body["error"])

    @classmethod
    def from_proxy(cls, response: Mapping[str, Any], request_id: str = "") -> ApiResponse:
        headers = response_headers(response)
        text = response.get("body") or ""
        content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        body: Any = json.loads(text) if text and "json" in content_type else (text or None)
        return cls(int(response["statusCode"]), headers, body, request_id)


def response_headers(response: Mapping[str, Any]) -> dict[str, str]:
    """A proxy response's headers: `multiValueHeaders` joined, then `headers` (which win)."""
    out: dict[str, str] = {}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        out[str(key)] = ", ".join(str(v) for v in values)
    out.update({str(k): str(v) for k, v in (response.get("headers") or {}).items()})
    return out


def route_not_found(method: str, path: str) -> dict[str, Any]:
    """API Gateway's answer when no route serves `method path`: 405 on a known path, else 404."""
    methods = allowed_methods(path)
    headers = {"Content-Type": "application/json"}
    if methods:
        status, kind, message = 405, "MethodNotAllowed", f"{path} answers {', '.join(methods)}, not {method}"
        headers["Allow"] = ", ".join([*methods, "OPTIONS"])
    else:
        status, kind = 404, "RouteNotFound"
        message = f"no route {method} {path}; see {OPENAPI_DOCUMENT.path}"
    return {
        "statusCode": status,
        "headers": headers,
        "body": json.dumps({"success": False, "error": {"type": kind, "message": message}}),
        "isBase64Encoded": False,
    }
