"""End to end over HTTP against `backtest local` (issue 14): submit an optimization, poll it to SUCCEEDED, download
its table (JSON and CSV) through the presigned links, as a frontend would; and a single backtest submitted
behind a big optimization is not kept waiting (the chunks may use all workers but one).

The module runs its own `backtest local` (2 workers, chunks of about 5 ms of work, at most one chunk at a time),
so a small search is several chunks."""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from backtest_service.routes import GET_OPTIMIZATION, SUBMIT_OPTIMIZATION
from local.http_server import LocalServer, chunk_concurrency
from local.stack import LocalStack
from tests.optimization_support import CHUNKED_ENV, search
from tests.support import Client

pytestmark = pytest.mark.xdist_group("e2e-optimizations")

SLOW = """\
def on_bar(ctx, bar):
    total = 0
    for i in range(ctx.params.get("steps", 1500)):
        total += i
    if total < 0:
        ctx.buy()
"""


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    stack = LocalStack(server=True, retry_delay_seconds=1, env=CHUNKED_ENV, chunk_concurrency=chunk_concurrency(2))
    with LocalServer(host="127.0.0.1", port=0, workers=2, stack=stack, log=lambda _: None) as running:
        yield running


@pytest.fixture
def client(server: LocalServer, request: pytest.FixtureRequest) -> Client:
    return Client(server.url, user=f"user-{request.node.name}"[:100])


def _submit(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.request(SUBMIT_OPTIMIZATION.method, SUBMIT_OPTIMIZATION.path, json=body)
    assert response.status_code == 202, response.text
    answer = dict(response.json())
    assert response.headers["Location"] == answer["status_url"]
    return answer


def _poll(client: Client, status_url: str, *, until: tuple[str, ...], timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.session.get(status_url, timeout=30)
        assert response.status_code == 200, response.text
        body = dict(response.json())
        if body["status"] in until:
            return body
        assert time.monotonic() < deadline, f"still {body['status']}: {body['progress']}"
        time.sleep(0.1)


def test_submit_poll_and_download_the_table(client: Client, server: LocalServer) -> None:
    # Given an optimization submitted over HTTP
    answer = _submit(client, search(constraints=[{"metric": "total_trades", "op": ">=", "value": 1}]))
    assert answer["chunks"] == 4 and answer["status_url"].startswith(server.url)
    # When the frontend polls its status_url, Then it sees progress, then SUCCEEDED
    seen: set[str] = set()
    deadline = time.monotonic() + 120
    while (body := client.session.get(answer["status_url"], timeout=30).json())["status"] != "SUCCEEDED":
        seen.add(body["status"])
        assert body["status"] in ("QUEUED", "RUNNING") and time.monotonic() < deadline, body
        time.sleep(0.05)
    assert body["progress"]["percent"] == 100.0 and body["progress"]["chunks_done"] == 4
    assert len(body["top"]) == 5 and body["best"]["params"] == body["top"][0]["params"]
    # And the table downloads through the presigned links: JSON and CSV, gzip-encoded, every combination once
    table = requests.get(body["table_json_url"], timeout=30)
    assert table.status_code == 200 and table.headers["Content-Encoding"] == "gzip"
    data = table.json()  # requests decompresses it
    assert [c["index"] for c in data["combinations"]] == list(range(12))
    assert data["parameters"] == ["fast", "slow"] and data["target"] == "sharpe_ratio"
    best = next(c for c in data["combinations"] if c["index"] == body["best"]["index"])
    assert best["metrics"] == body["best"]["metrics"]
    raw = requests.get(body["table_csv_url"], timeout=30, headers={"Accept-Encoding": "identity"}, stream=True)
    assert raw.headers["Content-Type"].startswith("text/csv")
    text = gzip.decompress(raw.raw.read()).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["index"]) for r in rows] == list(range(12))
    assert {r["fast"] for r in rows} == {"3", "6", "9", "12"} and "sharpe_ratio" in rows[0]
    # And the caller's list has it; another caller gets 404
    listed = client.request("GET", "/api/backtest/optimizations").json()["optimizations"]
    assert [o["optimization_id"] for o in listed] == [answer["optimization_id"]]
    other = Client(server.url, user="someone-else")
    assert (
        other.request("GET", GET_OPTIMIZATION.path.replace("{optimization_id}", answer["optimization_id"])).status_code
        == 404
    )


def test_a_single_backtest_is_not_kept_waiting_behind_an_optimization(client: Client, server: LocalServer) -> None:
    # Given an optimization of 6 slow chunks (about a second each) running on the local workers
    body = {
        "strategy_code": SLOW,
        "symbol": "BTCUSD",
        "timeframe": "1h",
        "start_date": "2024-01-01",
        "end_date": "2024-01-31",
        "parameters": {"steps": {"values": [2000 + i for i in range(12)]}},
        "target": "total_return_percent",
    }
    answer = _submit(client, body)
    assert answer["chunks"] >= 4
    _poll(client, answer["status_url"], until=("RUNNING",))
    # When a single backtest is submitted behind it
    started = time.monotonic()
    execution_id = client.submit()
    job = client.wait(execution_id, timeout=120)
    took = time.monotonic() - started
    # Then it finishes while the optimization still runs: a worker was always free for it
    assert job["status"] == "SUCCEEDED", job
    optimization = client.session.get(answer["status_url"], timeout=30).json()
    assert optimization["status"] == "RUNNING", f"the optimization ended first ({took:.1f} s)"
    assert optimization["progress"]["chunks_running"] <= 1
    # And the optimization completes too
    done = _poll(client, answer["status_url"], until=("SUCCEEDED", "FAILED", "CANCELLED"))
    assert done["status"] == "SUCCEEDED" and done["progress"]["combinations_done"] == 12
    assert json.dumps(done["top"])  # serializable as the frontend reads it


def test_the_cli_submits_to_the_service_and_prints_the_same_ranking(
    server: LocalServer, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from local.cli import main

    strategy = tmp_path / "sma.py"
    strategy.write_text(search()["strategy_code"], encoding="utf-8")
    flags = [
        "optimize",
        str(strategy),
        "--symbol",
        "AAPL",
        "--timeframe",
        "1h",
        "--start",
        "2024-01-01",
        "--end",
        "2024-03-31",
        "--param",
        "fast=3:12:3",
        "--param",
        "slow=20,30,40",
        "--top",
        "3",
        "--no-progress",
    ]
    # Given the same search in this process and through the service
    assert main(flags) == 0
    local_table = capsys.readouterr().out
    assert main([*flags, "--api-url", server.url, "--user", "cli-user"]) == 0
    captured = capsys.readouterr()
    # Then the service prints the same ranked table, and said where it was
    assert captured.out == local_table
    assert "12 combinations in 4 chunk(s)" in captured.err
    assert main([*flags, "--api-url", server.url, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "SUCCEEDED" and len(printed["combinations_table"]) == 12
    # And a search the service refuses (10,100 combinations: over its cap) exits 2, naming the field
    assert main([*flags, "--param", "a=1:100", "--param", "b=0:100", "--api-url", server.url]) == 2
    assert "error: parameters: " in capsys.readouterr().err
