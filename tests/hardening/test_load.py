"""Load: 300 submissions (`LOAD_SUBMISSIONS=1000 pytest tests/hardening/test_load.py -s` for more) from 16
concurrent clients over real HTTP (loopback) against `backtest local` with 2 workers draining the queue.
Every job reaches a terminal state; none is lost, none duplicated.

Throughput and submit latency are printed (run with -s to see them), never asserted: performance is
measured here, judged in benchmarks.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from backtest_service.result_store import artifact_keys
from backtest_service.topology import RESULTS_PREFIX
from local.http_server import LocalServer

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hardening-load")]

SUBMISSIONS = int(os.environ.get("LOAD_SUBMISSIONS", "300"))  # make test: about 2 minutes here
CLIENTS = 16
# The fairness limit above what one load client has in flight (the limit has its own tests; this one is about
# losing and duplicating nothing).
LOCAL_SERVER_ENV = {"MAX_ACTIVE_JOBS": str(SUBMISSIONS)}
# Tiny backtests: daily bars over one month.
CODE = """\
import numpy as np
import talib


def generate_signals(data, params):
    fast = talib.SMA(data.close.values, timeperiod=params.get("fast", 3))
    slow = talib.SMA(data.close.values, timeperiod=params.get("slow", 8))
    return np.where(fast > slow, 1.0, 0.0)
"""
RUN = {"symbol": "MSFT", "timeframe": "1d", "start_date": "2024-03-01", "end_date": "2024-03-31"}
TERMINAL = {"SUCCEEDED", "FAILED"}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _scan(server: LocalServer) -> list[dict[str, Any]]:
    dynamodb = server.stack.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": server.stack.resources.jobs_table,
        "ProjectionExpression": "execution_id, #s, #o, #n, attempts",
        "ExpressionAttributeNames": {"#s": "status", "#o": "owner", "#n": "name"},
    }
    return [item for page in dynamodb.get_paginator("scan").paginate(**kwargs) for item in page.get("Items", [])]


def _result_keys(server: LocalServer) -> list[str]:
    pages = (
        server.stack.client("s3")
        .get_paginator("list_objects_v2")
        .paginate(Bucket=server.stack.resources.results_bucket, Prefix=RESULTS_PREFIX)
    )
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def test_concurrent_submissions_all_finish_none_lost_none_duplicated(local_server: LocalServer) -> None:
    url = f"{local_server.url}/api/backtest/run"
    local = threading.local()  # one HTTP session (keep-alive connection) per client thread
    sessions: list[requests.Session] = []

    def submit(i: int) -> tuple[int, str, float]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            sessions.append(local.session)
        client = i % CLIENTS  # 16 callers, each submitting a sixteenth of them
        body = {"strategy_code": CODE, **RUN, "name": f"load {i}", "parameters": {"fast": 3 + i % 3, "slow": 8}}
        started = time.perf_counter()
        response = local.session.post(url, json=body, headers={"X-Local-User": f"load-client-{client}"}, timeout=60)
        latency = time.perf_counter() - started
        assert response.status_code == 202, response.text
        return i, response.json()["execution_id"], latency

    # When 16 clients submit them all at once while 2 workers drain the queue
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        submitted = list(pool.map(submit, range(SUBMISSIONS)))
    submit_seconds = time.perf_counter() - started
    for session in sessions:
        session.close()

    # Then every submission got its own id
    ids = [execution_id for _, execution_id, _ in submitted]
    assert len(set(ids)) == SUBMISSIONS

    # And every job reaches a terminal state (bounded wait: a lost job would hang here, not pass)
    deadline = time.monotonic() + 600
    while True:
        items = _scan(local_server)
        statuses = Counter(item["status"]["S"] for item in items)
        if sum(statuses[s] for s in TERMINAL) >= SUBMISSIONS or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    drain_seconds = time.perf_counter() - started

    latencies = [latency for _, _, latency in submitted]
    print(
        f"\nload: {SUBMISSIONS} submissions from {CLIENTS} clients, {local_server.workers} workers\n"
        f"  submit: {SUBMISSIONS / submit_seconds:.1f} submissions/s over {submit_seconds:.1f} s; latency "
        f"p50 {1000 * statistics.median(latencies):.0f} ms, p95 {1000 * _percentile(latencies, 0.95):.0f} ms, "
        f"max {1000 * max(latencies):.0f} ms\n"
        f"  run:    all {SUBMISSIONS} terminal after {drain_seconds:.1f} s = "
        f"{60 * SUBMISSIONS / drain_seconds:.0f} jobs/min"
    )

    # Then none was lost and none duplicated: the table holds exactly the submitted ids, each once
    table_ids = [item["execution_id"]["S"] for item in items]
    assert len(table_ids) == SUBMISSIONS and set(table_ids) == set(ids)
    assert statuses == {"SUCCEEDED": SUBMISSIONS}, statuses
    # And each ran once, and belongs to the caller who submitted it, with the body it sent
    assert {item["attempts"]["N"] for item in items} == {"1"}
    stored = {item["execution_id"]["S"]: (item["owner"]["S"], item["name"]["S"]) for item in items}
    sent = {execution_id: (f"cognito:load-client-{i % CLIENTS}", f"load {i}") for i, execution_id, _ in submitted}
    assert stored == sent
    # And S3 holds one result per succeeded job, and nothing else
    assert sorted(_result_keys(local_server)) == sorted(key for i in ids for key in artifact_keys(i))
    # And no message is left on the jobs queue or the DLQ
    assert local_server.stack.queue_depth() == {"visible": 0, "in_flight": 0, "dlq": 0}
