"""X-Ray tracing with the lazy tracer: nothing is loaded at cold start, and once a traced function runs in
Lambda the segments reach the X-Ray daemon as before (a fake daemon on a local UDP port here)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools import Tracer

from backtest_service.observability import tracing_enabled
from backtest_service.topology import SERVICE_NAME
from local.cold_start import lambda_like_env
from local.stack import FUNCTIONS_DIR

pytestmark = pytest.mark.xdist_group("integration")

TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
TRACE_PARENT = "53995c3f42cd8ad8"
TRACE_HEADER = f"Root={TRACE_ROOT};Parent={TRACE_PARENT};Sampled=1"

# In a fresh interpreter (the X-Ray SDK patches botocore process-wide): import the symbols function, call
# GET /health through its lambda_handler, then one more traced function, then make one AWS call (to a
# closed local port: it fails, and its subsegment records that); report what was loaded and patched when.
SCRIPT = r"""
import importlib.util, json, sys
from local.events import LambdaContext, api_event


def patched_modules():
    if "aws_xray_sdk" not in sys.modules:
        return []
    from aws_xray_sdk.core import patcher
    return sorted(patcher._PATCHED_MODULES)


spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
handler = importlib.util.module_from_spec(spec)
spec.loader.exec_module(handler)
loaded_at_import = "aws_xray_sdk" in sys.modules

from backtest_service.observability import tracer

@tracer.capture_method
def traced_step(x):
    return x + 1

context = LambdaContext(function_name="symbols", memory_limit_in_mb=512, timeout_seconds=10)
response = handler.lambda_handler(api_event("GET", "/health", user=None), context)
step = traced_step(41)
patched = patched_modules()
botocore_loaded = "botocore.client" in sys.modules

import boto3
from botocore.config import Config

s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:9", config=Config(retries={"max_attempts": 1}))
try:
    s3.list_buckets()
except Exception as exc:
    aws_error = type(exc).__name__
print(json.dumps({
    "loaded_at_import": loaded_at_import,
    "loaded": "aws_xray_sdk" in sys.modules,
    "created": tracer.created,
    "status": response["statusCode"],
    "step": step,
    "patched": patched,
    "botocore_loaded": botocore_loaded,
    "patched_after_boto3": patched_modules(),
    "aws_error": aws_error,
}))
"""


@pytest.fixture
def xray_daemon() -> Iterator[socket.socket]:
    """A UDP socket where the X-Ray SDK sends its segments (AWS_XRAY_DAEMON_ADDRESS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.5)
        yield sock


def received(sock: socket.socket) -> list[dict[str, Any]]:
    """Every segment document sent so far: each datagram is a JSON header line, then the document."""
    documents: list[dict[str, Any]] = []
    while True:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return documents
        header, _, body = data.decode().partition("\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        documents.append(json.loads(body))


def run_symbols(**env: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(FUNCTIONS_DIR / "symbols" / "handler.py")],
        env=lambda_like_env(None, **env),
        cwd=FUNCTIONS_DIR.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 200 and result["step"] == 42
    return result


def test_in_lambda_the_first_traced_call_creates_the_tracer_and_segments_reach_the_daemon(
    xray_daemon: socket.socket,
) -> None:
    host, port = xray_daemon.getsockname()
    result = run_symbols(_X_AMZN_TRACE_ID=TRACE_HEADER, AWS_XRAY_DAEMON_ADDRESS=f"{host}:{port}")
    assert result["loaded_at_import"] is False  # the cold start does not pay for X-Ray
    assert result["loaded"] is True and result["created"] is True
    # symbols never calls AWS: botocore is neither imported nor patched for it ...
    assert result["botocore_loaded"] is False and result["patched"] == []
    # ... until a client is created; then botocore, and nothing else, is patched.
    assert result["patched_after_boto3"] == ["botocore"]
    assert result["aws_error"] == "EndpointConnectionError"

    by_name = {doc["name"]: doc for doc in received(xray_daemon)}
    handler = by_name["## lambda_handler"]
    assert handler["type"] == "subsegment"
    assert handler["trace_id"] == TRACE_ROOT and handler["parent_id"] == TRACE_PARENT
    assert handler["annotations"] == {"ColdStart": True, "Service": SERVICE_NAME}
    step = by_name["## __main__.traced_step"]
    assert step["trace_id"] == TRACE_ROOT
    assert step["metadata"][SERVICE_NAME]["__main__.traced_step response"] == 42
    s3 = by_name["s3"]  # the AWS call, traced by the botocore patch
    assert s3["namespace"] == "aws" and s3["aws"]["operation"] == "ListBuckets"
    assert s3["trace_id"] == TRACE_ROOT and s3["parent_id"] == TRACE_PARENT


def test_with_tracing_disabled_x_ray_is_never_loaded(xray_daemon: socket.socket) -> None:
    host, port = xray_daemon.getsockname()
    result = run_symbols(
        POWERTOOLS_TRACE_DISABLED="true", _X_AMZN_TRACE_ID=TRACE_HEADER, AWS_XRAY_DAEMON_ADDRESS=f"{host}:{port}"
    )
    assert result == {
        **result,
        "loaded_at_import": False,
        "loaded": False,
        "created": False,
        "patched": [],
        "patched_after_boto3": [],
    }
    assert received(xray_daemon) == []


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"LAMBDA_TASK_ROOT": "/var/task"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"},
        {"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"},
        {"LAMBDA_TASK_ROOT": "/var/task", "AWS_CHALICE_CLI_MODE": "true"},
        {"POWERTOOLS_TRACE_DISABLED": "false"},
    ],
)
def test_tracing_enabled_follows_powertools_rule(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tracing_enabled() is tracing_enabled(env)
    assert tracing_enabled(env) is not bool(Tracer._is_tracer_disabled())
