"""`backtest local` end to end over real HTTP: submit → queue → runner → S3/DynamoDB → status → result link,
strategy faults, infrastructure faults through the DLQ and `backtest replay`, and concurrent submissions."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from backtest_service import topology
from backtest_service.result_store import artifact_keys
from local.http_server import LocalServer
from ops.replay import replay, target_from_local

# Fifty concurrent submissions from one caller: above the default fairness limit, which has its own tests.
LOCAL_SERVER_ENV = {"MAX_ACTIVE_JOBS": "100"}

pytestmark = [
    pytest.mark.xdist_group("e2e"),
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

RAISES_ON_LINE_4 = """\
def generate_signals(data, params):
    n = len(data.close)
    if n > 10:
        raise ValueError(f"boom after {n} bars")
    return [0.0] * n
"""


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _result_objects(server: LocalServer, execution_id: str) -> list[str]:
    s3 = server.stack.client("s3")
    out = s3.list_objects_v2(
        Bucket=server.stack.resources.results_bucket, Prefix=f"{topology.RESULTS_PREFIX}{execution_id}"
    )
    return [obj["Key"] for obj in out.get("Contents", [])]


def _owner_items(server: LocalServer, user: str) -> list[dict[str, Any]]:
    dynamodb = server.stack.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": server.stack.resources.jobs_table,
        "FilterExpression": "#o = :owner",
        "ExpressionAttributeNames": {"#o": "owner"},
        "ExpressionAttributeValues": {":owner": {"S": f"cognito:{user}"}},
    }
    return [item for page in dynamodb.get_paginator("scan").paginate(**kwargs) for item in page.get("Items", [])]


def test_submit_poll_and_fetch_the_full_result_through_its_link(client: Any, local_server: LocalServer) -> None:
    # Given a strategy submitted over HTTP
    execution_id = client.submit(name="e2e sma")

    # When the workers ran it
    job = client.wait(execution_id)

    # Then the status shows the summary and a presigned link that works over loopback (moto server)
    assert job["status"] == "SUCCEEDED", job
    assert job["attempts"] == 1
    assert job["name"] == "e2e sma"
    assert job["trade_summary"]["total_trades"] >= 1
    assert job["market_data_stats"]["data_points"] > 100
    assert job["results_url"].startswith(local_server.stack.endpoint_url)
    full = requests.get(job["results_url"], timeout=10)
    assert full.status_code == 200
    assert full.headers["Content-Encoding"] == "gzip"  # stored compressed; a plain HTTP client decompresses it
    result = full.json()
    assert result["performance_metrics"]["total_return_percent"] == pytest.approx(
        job["performance_metrics"]["total_return_percent"]
    )
    assert len(result["trades"]["pnl"]) == job["trade_summary"]["total_trades"]
    assert len(result["equity_curve"]["equity"]) == job["market_data_stats"]["data_points"]
    assert sorted(_result_objects(local_server, execution_id)) == artifact_keys(execution_id)


def test_a_retried_submit_with_the_same_idempotency_key_queues_one_job(
    client: Any, local_server: LocalServer, sma_code: str
) -> None:
    body = {"strategy_code": sma_code, "symbol": "MSFT", "timeframe": "1d", "start_date": "2024-01-01"}
    headers = {"Idempotency-Key": "e2e-retry-1"}

    first = client.request("POST", "/api/backtest/run", json=body, headers=headers)
    second = client.request("POST", "/api/backtest/run", json=body, headers=headers)

    assert first.status_code == second.status_code == 202
    assert first.json()["execution_id"] == second.json()["execution_id"]
    client.wait(first.json()["execution_id"])
    assert len(_owner_items(local_server, client.session.headers["X-Local-User"])) == 1


def test_a_strategy_that_raises_fails_with_its_line_and_is_not_retried(client: Any) -> None:
    execution_id = client.submit(code=RAISES_ON_LINE_4)

    job = client.wait(execution_id)

    assert job["status"] == "FAILED"
    assert job["error"]["type"] == "StrategyError"
    assert job["error"]["line"] == 4
    assert "boom after" in job["error"]["message"]
    assert job["attempts"] == 1  # a strategy's own fault is not retried
    assert job["results_url"] is None


def test_a_strategy_that_does_not_compile_is_refused_at_submit_with_its_line(client: Any) -> None:
    response = client.request(
        "POST", "/api/backtest/run", json={"strategy_code": "def generate_signals(data, params)\n    return 1\n"}
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "StrategyCompileError"
    assert error["line"] == 1


def test_an_infrastructure_fault_dead_letters_the_job_and_replay_runs_it_exactly_once(
    client: Any, local_server: LocalServer
) -> None:
    stack = local_server.stack
    max_receives = topology.JOBS_QUEUE.max_receive_count
    assert stack.queue_depth()["dlq"] == 0

    # Given a job whose result cannot be stored: every delivery fails (S3 PutObject unavailable)
    with stack.inject_fault("s3", "PutObject") as failed_puts:
        execution_id = client.submit()
        failed = client.wait(execution_id, until=("FAILED",))
        _wait_for(lambda: stack.queue_depth()["dlq"] == 1, "the message to reach the DLQ")

    # Then after the max receive count the job shows the failure and the message sits in the DLQ
    assert len(failed_puts) == max_receives
    assert failed["error"]["type"] == "InfrastructureError"
    assert failed["attempts"] == max_receives
    assert stack.job(execution_id)["dead_lettered"] is True  # type: ignore[index]
    assert _result_objects(local_server, execution_id) == []

    # When ops replay the DLQ once the fault is gone
    lines: list[str] = []
    summary = replay(target_from_local(str(stack.endpoint_url)), out=lines.append)

    # Then the job runs again and succeeds, with one result object, and the DLQ is empty
    assert summary.moved == [execution_id]
    assert summary.method == "receive → send → delete"  # moto has no message move task
    job = client.wait(execution_id, until=("SUCCEEDED",))
    assert job["attempts"] == max_receives + 1
    assert job["error"] is None
    assert sorted(_result_objects(local_server, execution_id)) == artifact_keys(execution_id)
    assert stack.queue_depth() == {"visible": 0, "in_flight": 0, "dlq": 0}

    # And replaying again, all of it or this job, runs nothing twice
    again = replay(target_from_local(str(stack.endpoint_url)), out=lines.append)
    assert again.moved == [] and again.requeued == []
    by_id = replay(target_from_local(str(stack.endpoint_url)), execution_ids=[execution_id], out=lines.append)
    assert by_id.moved == [] and by_id.already_succeeded == [execution_id]
    assert client.status(execution_id)["attempts"] == max_receives + 1


def test_fifty_concurrent_submissions_all_finish_none_lost_none_duplicated(
    make_client: Any, local_server: LocalServer
) -> None:
    user = "fifty-concurrent"
    n = 50

    # Given 50 submissions from 10 threads at once (each thread its own HTTP session)
    def submit(i: int) -> str:
        return str(make_client(user).submit(symbol=("AAPL", "MSFT", "BTCUSD")[i % 3], parameters={"fast": 3 + i % 5}))

    with ThreadPoolExecutor(max_workers=10) as pool:
        ids = list(pool.map(submit, range(n)))

    # When the two workers drained the queue
    watcher = make_client(user)
    jobs = [watcher.wait(execution_id, timeout=120) for execution_id in ids]

    # Then every job finished, once: 50 distinct ids, 50 items, 50 result objects, one attempt each
    assert len(set(ids)) == n
    assert [j["status"] for j in jobs] == ["SUCCEEDED"] * n
    assert all(j["attempts"] == 1 for j in jobs)
    items = _owner_items(local_server, user)
    assert sorted(item["execution_id"]["S"] for item in items) == sorted(ids)
    s3 = local_server.stack.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=local_server.stack.resources.results_bucket, Prefix=topology.RESULTS_PREFIX
    )
    keys = {obj["Key"] for page in pages for obj in page.get("Contents", [])}
    assert {f"{topology.RESULTS_PREFIX}{i}.json" for i in ids} <= keys

    # And the caller's job list pages through exactly these 50, newest first
    listed: list[str] = []
    token = None
    while True:
        params: dict[str, Any] = {"limit": 20, **({"next_token": token} if token else {})}
        page = watcher.request("GET", "/api/backtest/executions", params=params).json()
        listed += [e["execution_id"] for e in page["executions"]]
        token = page.get("next_token")
        if not token:
            break
    assert sorted(listed) == sorted(ids)


def test_cors_preflight_and_local_identity(base_url: str, make_client: Any, local_server: LocalServer) -> None:
    # Preflight is answered with the allowed methods and headers (X-Local-User and Idempotency-Key among them)
    preflight = requests.options(
        f"{base_url}/api/backtest/run",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"x-local-user", "idempotency-key", "content-type", "authorization"} <= allowed

    # A job belongs to its caller: another local user gets 404
    alice, bob = make_client("alice-e2e"), make_client("bob-e2e")
    execution_id = alice.submit()
    assert alice.request("GET", f"/api/backtest/status/{execution_id}").status_code == 200
    assert bob.request("GET", f"/api/backtest/status/{execution_id}").status_code == 404

    # Without any identity the caller is local-user, unless the server requires one
    anonymous = make_client(None)
    health = anonymous.request("GET", "/health", headers={"Origin": "http://localhost:5173"})
    assert health.status_code == 200 and health.headers["Access-Control-Allow-Origin"] == "*"
    assert anonymous.request("GET", "/api/backtest/executions").status_code == 200
    local_server.require_user = True
    try:
        refused = anonymous.request("GET", "/api/backtest/executions")
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "Unauthorized"
    finally:
        local_server.require_user = False
    alice.wait(execution_id)
