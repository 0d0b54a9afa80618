"""Security: callers are kept apart, unauthenticated requests are refused, the strategy process holds no
credentials and reaches neither the network nor files, and result links expire.

The API runs as `backtest local --require-user` (real HTTP on loopback, moto server, 2 workers): a
request without `X-Local-User` reaches the handlers with no authorizer claims, as behind a misconfigured
API Gateway. The sandbox checks run the engine and its isolation layer directly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from backtest_engine.engine import run_backtest
from backtest_engine.errors import EngineError
from backtest_engine.models import BacktestRequest
from backtest_engine.sandbox import SandboxLimits
from backtest_service.errors import ReplayRefused
from backtest_service.job_store import JobStore
from backtest_service.result_store import ResultStore
from backtest_service.settings import Settings
from backtest_service.topology import API_PREFIX
from local.http_server import LocalServer
from local.stack import LocalStack
from tests.support import Client

pytestmark = pytest.mark.xdist_group("hardening-security")

RUN: dict[str, Any] = {"symbol": "MSFT", "timeframe": "1d", "start_date": "2024-03-01", "end_date": "2024-03-31"}
FLAT = "import numpy as np\n\n\ndef generate_signals(data, params):\n    return np.zeros(len(data))\n"
RAISES = "def generate_signals(data, params):\n    raise ValueError('no')\n"
SECRET = "hardening-secret-0123456789"
LIMITS = SandboxLimits(cpu_seconds=5, wall_seconds=10, memory_mb=256)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    stack = LocalStack(server=True, retry_delay_seconds=1)
    with LocalServer(host="127.0.0.1", port=0, workers=2, require_user=True, stack=stack, log=lambda _: None) as s:
        yield s


@pytest.fixture(scope="module")
def alice(server: LocalServer) -> Client:
    return Client(server.url, "alice")


@pytest.fixture(scope="module")
def bob(server: LocalServer) -> Client:
    return Client(server.url, "bob")


@pytest.fixture(scope="module")
def alices_jobs(alice: Client) -> dict[str, str]:
    """Alice's finished jobs: one SUCCEEDED, one FAILED by its strategy."""
    succeeded, failed = alice.submit(FLAT, **RUN), alice.submit(RAISES, **RUN)
    assert alice.wait(succeeded)["status"] == "SUCCEEDED"
    assert alice.wait(failed)["status"] == "FAILED"
    return {"succeeded": succeeded, "failed": failed}


def _jobs_in_table(server: LocalServer) -> int:
    table = server.stack.resources.jobs_table
    return int(server.stack.client("dynamodb").scan(TableName=table, Select="COUNT")["Count"])


# ---- callers are kept apart -------------------------------------------------------------------------


def test_another_callers_job_is_a_404_like_an_unknown_id(
    alice: Client, bob: Client, alices_jobs: dict[str, str]
) -> None:
    for execution_id in alices_jobs.values():
        # Given alice's job, when bob asks for it
        foreign = bob.request("GET", f"{API_PREFIX}/status/{execution_id}")
        unknown = bob.request("GET", f"{API_PREFIX}/status/00000000-0000-4000-8000-000000000000")
        # Then bob gets the answer an unknown id gets: nothing about the job, not even that it exists
        assert foreign.status_code == unknown.status_code == 404
        assert foreign.json()["error"]["type"] == unknown.json()["error"]["type"] == "NotFound"
        assert foreign.json()["error"]["message"].replace(execution_id, "ID") == unknown.json()["error"][
            "message"
        ].replace("00000000-0000-4000-8000-000000000000", "ID")
        assert "results_url" not in foreign.text and "alice" not in foreign.text
        # And alice still sees it
        assert alice.request("GET", f"{API_PREFIX}/status/{execution_id}").status_code == 200


def test_a_caller_lists_only_their_own_jobs(
    server: LocalServer, alice: Client, bob: Client, alices_jobs: dict[str, str]
) -> None:
    bobs = bob.submit(FLAT, **RUN)
    mine = alice.request("GET", f"{API_PREFIX}/executions", params={"limit": 100}).json()["executions"]
    theirs = bob.request("GET", f"{API_PREFIX}/executions", params={"limit": 100}).json()["executions"]
    assert {job["execution_id"] for job in mine} == set(alices_jobs.values())
    assert [job["execution_id"] for job in theirs] == [bobs]
    # And alice's page token, replayed by bob, pages through bob's jobs only
    page = alice.request("GET", f"{API_PREFIX}/executions", params={"limit": 1}).json()
    assert page["next_token"]
    stolen = bob.request("GET", f"{API_PREFIX}/executions", params={"next_token": page["next_token"]})
    assert stolen.status_code in (200, 400)
    if stolen.status_code == 200:
        assert set(alices_jobs.values()).isdisjoint(job["execution_id"] for job in stolen.json()["executions"])


def test_the_api_offers_no_replay_route(server: LocalServer, bob: Client, alices_jobs: dict[str, str]) -> None:
    execution_id = alices_jobs["failed"]
    # Replay is an ops tool on the DLQ (`backtest replay`, with AWS credentials), never an API route
    for method, path in [
        ("POST", f"{API_PREFIX}/replay"),
        ("POST", f"{API_PREFIX}/replay/{execution_id}"),
        ("POST", f"{API_PREFIX}/status/{execution_id}/replay"),
        ("POST", f"{API_PREFIX}/executions/{execution_id}/replay"),
        ("PUT", f"{API_PREFIX}/status/{execution_id}"),
        ("POST", f"{API_PREFIX}/status/{execution_id}"),
        ("DELETE", f"{API_PREFIX}/status/{execution_id}"),
    ]:
        response = bob.request(method, path, json={})
        assert response.status_code in (404, 405), (method, path, response.status_code)
    document = requests.get(f"{server.url}{API_PREFIX}/openapi.json", timeout=10).json()
    assert not [path for path in document["paths"] if "replay" in path.lower()]
    # (PATCH and DELETE exist for the owner's own run management: rename, delete; never a replay)
    assert {m for item in document["paths"].values() for m in item} == {"get", "post", "patch", "delete"}
    # And the job did not change
    assert Client(server.url, "alice").status(execution_id)["status"] == "FAILED"


def test_reset_for_replay_never_touches_a_succeeded_or_strategy_failed_job(
    server: LocalServer, alice: Client, alices_jobs: dict[str, str]
) -> None:
    jobs = JobStore(server.stack.resources.jobs_table, server.stack.client("dynamodb"))
    for kind, execution_id in alices_jobs.items():
        before = jobs.get(execution_id)
        with pytest.raises(ReplayRefused, match="only a dead-lettered FAILED job can be replayed"):
            jobs.reset_for_replay(execution_id, allow_running=True)
        assert jobs.get(execution_id) == before, kind


# ---- unauthenticated requests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Local-User": ""}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic YWxpY2U6cHc="}],
    ids=["no_identity", "empty_user", "malformed_bearer", "basic_auth"],
)
def test_requests_without_an_authenticated_caller_are_401_and_store_nothing(
    server: LocalServer, alices_jobs: dict[str, str], headers: dict[str, str]
) -> None:
    before = _jobs_in_table(server)
    calls = [
        ("POST", f"{API_PREFIX}/run", {"strategy_code": FLAT, **RUN}),
        ("GET", f"{API_PREFIX}/status/{alices_jobs['succeeded']}", None),
        ("GET", f"{API_PREFIX}/executions", None),
    ]
    for method, path, body in calls:
        response = requests.request(method, f"{server.url}{path}", json=body, headers=headers, timeout=30)
        # Then the handler (no authorizer claims in the event) refuses it
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["type"] == "Unauthorized"
        assert "sign in" in response.json()["error"]["message"]
    assert _jobs_in_table(server) == before


# ---- the strategy process: no credentials, no network, no files -----------------------------------------


# The strategy process's environment, descriptors and files: see tests/unit/test_sandbox_isolation.py, where
# plain Python (an escape past the language layer) runs inside the confined child and reaches nothing.


def _attempt(reach: str) -> str:
    """A strategy that tries `reach`, catches whatever refuses it, and prints what it got."""
    return f"""\
import math
import statistics

import numpy as np
import pandas as pd
import talib


def attempt(reach):
    try:
        found = reach()
    except Exception as exc:
        print('refused', str(exc)[:200])
        return
    print('REACHED', str(found)[:500])


def generate_signals(data, params):
    attempt(lambda: {reach})
    return np.zeros(len(data))
"""


REACHES = {
    # the environment
    "numpy_os_environ": "getattr(getattr(np, 'o' + 's'), 'environ')",
    "pandas_io_common_os": "getattr(getattr(getattr(pd, 'io'), 'common'), 'o' + 's')",
    "talib_os": "getattr(talib, 'o' + 's')",
    "statistics_sys": "getattr(statistics, 's' + 'ys')",
    "math_sys": "getattr(math, 's' + 'ys')",
    "function_globals": "getattr(attempt, '_' + '_globals__')",
    "numpy_builtins": "getattr(np, '_' + '_builtins__')",
    "exception_frame_globals": "getattr(getattr(ValueError('x'), '_' + '_traceback__'), 'tb_frame')",
    "subclasses_walk": "getattr(type, '_' + '_subclasses__')(object)",
    "proc_environ_with_pandas": "getattr(pd, 'read_' + 'csv')('/proc/self/environ')",
    "proc_environ_with_numpy": "getattr(np, 'from' + 'file')('/proc/self/environ')",
    # the network
    "pandas_reads_a_url": "getattr(pd, 'read_' + 'json')('http://127.0.0.1:9/exfiltrate')",
    "numpy_datasource": "getattr(np, 'Data' + 'Source')",
    "numpy_ctypeslib": "getattr(np, 'ctypes' + 'lib')",
    # files
    "pickle_reader": "getattr(pd, 'read_' + 'pickle')('/etc/hostname')",
    "numpy_text_loader": "getattr(np, 'load' + 'txt')('/etc/hostname')",
    "frame_writer": "getattr(data, 'to_' + 'csv')('/tmp/stolen.csv')",
    "numpy_writer": "getattr(np, 'sa' + 've')('/tmp/stolen.npy', np.zeros(3))",
    "print_to_a_file": "print('x', file=data)",
}


@pytest.mark.parametrize("reach", REACHES.values(), ids=REACHES.keys())
def test_a_strategy_cannot_reach_the_environment_the_network_or_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, reach: str
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.chdir(tmp_path)
    # When a strategy tries, catching whatever refuses it
    try:
        result = run_backtest(BacktestRequest(strategy_code=_attempt(reach), **RUN), limits=LIMITS)
    except EngineError as refused:  # or the sandbox ends the run with the refusal
        assert refused.code in ("StrategyCompileError", "StrategyPolicyViolation"), refused.to_dict()
        assert SECRET not in refused.message
        return
    # Then every attempt was refused, nothing leaked into the logs, and no file appeared
    assert result.logs and all(line.startswith("refused ") for line in result.logs), result.logs
    assert "not allowed" in result.logs[0] or "has no attribute" in result.logs[0], result.logs
    assert SECRET not in "\n".join(result.logs)
    assert list(tmp_path.iterdir()) == []
    assert not os.path.exists("/tmp/stolen.csv") and not os.path.exists("/tmp/stolen.npy")


@pytest.mark.parametrize("module", ["socket", "urllib.request", "http.client", "ssl", "os", "subprocess"])
def test_network_and_system_modules_are_refused_at_submit_with_the_line(
    server: LocalServer, alice: Client, module: str
) -> None:
    before = _jobs_in_table(server)
    code = f"import numpy as np\nimport {module}\n\n\n" + FLAT.split("\n\n\n", 1)[1]
    response = alice.request("POST", f"{API_PREFIX}/run", json={"strategy_code": code, **RUN})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["line"]) == ("StrategyCompileError", 2)
    assert f"import of '{module}' is not allowed" in error["message"] and "allowed: numpy" in error["message"]
    assert _jobs_in_table(server) == before


# ---- result links -----------------------------------------------------------------------------------------


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_the_results_link_lasts_the_configured_ttl_and_is_only_given_to_the_owner(
    server: LocalServer, alice: Client, bob: Client, alices_jobs: dict[str, str]
) -> None:
    ttl = Settings.from_env().results_url_ttl_seconds
    job = alice.status(alices_jobs["succeeded"])
    query = _query(job["results_url"])
    # Then the link is SigV4-signed, only for GET of that object, valid for the configured TTL
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == str(ttl) and job["results_url_expires_in"] == ttl
    assert query["X-Amz-SignedHeaders"] == "host"
    assert urlsplit(job["results_url"]).path.endswith(f"{alices_jobs['succeeded']}.json")
    assert requests.get(job["results_url"], timeout=10).status_code == 200
    # And a failed job, or another caller, gets no link
    assert alice.status(alices_jobs["failed"])["results_url"] is None
    assert bob.request("GET", f"{API_PREFIX}/status/{alices_jobs['succeeded']}").status_code == 404


def test_the_link_expiry_is_signed_and_lapses(server: LocalServer, alices_jobs: dict[str, str]) -> None:
    """moto (5.x) does not enforce presigned expiry: it serves an expired link, so the 403 itself is AWS's
    to give. What the service controls is checked here: the TTL it asks for is in the signed terms (a
    holder cannot extend it without the secret key) and the link's own terms lapse after the TTL."""
    bucket = server.stack.resources.results_bucket  # the stores below use the service's own S3 client
    key = f"results/{alices_jobs['succeeded']}.json"
    for _ in range(5):  # two links signed within the same second
        short = ResultStore(bucket, url_ttl_seconds=1).presigned_url(key)
        long = ResultStore(bucket, url_ttl_seconds=3600).presigned_url(key)
        if _query(short)["X-Amz-Date"] == _query(long)["X-Amz-Date"]:
            break
    short_q, long_q = _query(short), _query(long)
    assert short_q["X-Amz-Date"] == long_q["X-Amz-Date"]
    assert (short_q["X-Amz-Expires"], long_q["X-Amz-Expires"]) == ("1", "3600")
    # Then the expiry is part of what is signed: same request, same second, different signatures
    assert short_q["X-Amz-Signature"] != long_q["X-Amz-Signature"]
    same = {k: v for k, v in short_q.items() if k not in ("X-Amz-Expires", "X-Amz-Signature")}
    assert same == {k: v for k, v in long_q.items() if k not in ("X-Amz-Expires", "X-Amz-Signature")}
    # And two seconds later the short link is past its signed validity (X-Amz-Date + X-Amz-Expires)
    time.sleep(2)
    signed_at = time.mktime(time.strptime(short_q["X-Amz-Date"], "%Y%m%dT%H%M%SZ")) - time.timezone
    assert signed_at + int(short_q["X-Amz-Expires"]) < time.time()
