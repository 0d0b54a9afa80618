"""The client against `backtest local` over real HTTP (the `local_server` fixture: the real handlers, 2
workers, moto's server): a job's whole life, cancel, a retried submit that must not queue twice, the
typed errors, and the async client."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from backtest_client import (
    AsyncBacktestClient,
    BacktestClient,
    LocalUser,
    NotFound,
    NotReady,
    PayloadTooLarge,
    StrategyCompileError,
    ValidationFailed,
    models,
)

from local.http_server import LocalServer
from tests.client.conftest import FAST_RETRY, Recorder
from tests.support import DAILY_RUN, SMA_CROSS

pytestmark = [
    pytest.mark.xdist_group("client-http"),
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

INFINITE_LOOP = "def generate_signals(data, params):\n    while True:\n        pass\n"
MakeClient = Callable[..., BacktestClient]


def test_a_job_from_submit_to_its_trades(make_client: MakeClient, tmp_path: Path) -> None:
    recorder = Recorder()
    client = make_client(recorder)
    assert client.health().status == "ok"

    # Given a submitted strategy
    submitted = client.submit(SMA_CROSS, name="client e2e", parameters={"fast": 5, "slow": 20}, **DAILY_RUN)
    assert isinstance(submitted, models.SubmitResponse)
    assert submitted.status == "QUEUED"

    # When the client waits for it, reporting progress
    seen: list[models.JobStatus] = []
    job = client.wait(submitted.execution_id, timeout=60, on_progress=seen.append)

    # Then progress was reported on each change, ending with the finished job
    assert job.status == "SUCCEEDED", job.error
    assert seen[-1].status == "SUCCEEDED"
    assert seen[0].status in ("QUEUED", "RUNNING")
    order = ["QUEUED", "RUNNING", "SUCCEEDED"]
    assert [order.index(s.status) for s in seen] == sorted(order.index(s.status) for s in seen)
    assert len({(s.status, s.progress and s.progress.percent) for s in seen}) == len(seen)  # changes only
    assert job.name == "client e2e"
    assert job.parameters == {"fast": 5, "slow": 20}
    assert job.trade_summary is not None and job.trade_summary.total_trades >= 2
    assert job.performance_metrics is not None

    # The full result: followed from results_url (presigned, gzip-encoded) without the caller's identity
    result = client.result(job.execution_id)
    assert result["performance_metrics"]["total_return_percent"] == pytest.approx(
        job.performance_metrics["total_return_percent"]
    )
    assert len(result["trades"]["pnl"]) == job.trade_summary.total_trades
    download = next(r for r in recorder.requests if str(r.url).startswith(str(job.results_url).split("?")[0]))
    assert "X-Local-User" not in download.headers and "Authorization" not in download.headers

    # The HTML report, from report_url (presigned too)
    assert job.report_url
    saved = client.report(job.execution_id, tmp_path / "report.html")
    assert saved.read_bytes().lstrip().lower().startswith(b"<!doctype html")

    # Every trade, a page of 2 at a time, equal to the result's columns
    trades = list(client.trades(job.execution_id, page_size=2))
    assert [t.pnl for t in trades] == pytest.approx(result["trades"]["pnl"])
    pages = recorder.paths("GET").count(f"/api/backtest/executions/{job.execution_id}/trades")
    assert pages == math.ceil(len(trades) / 2)

    curve = client.equity(job.execution_id, points=16)
    assert 0 < curve.points <= 16
    assert curve.total_points == len(result["equity_curve"]["equity"])


def test_list_update_and_delete(make_client: MakeClient) -> None:
    client = make_client()
    ids = [
        client.submit(SMA_CROSS, name=f"batch {i}", symbol=symbol, timeframe="1d", start_date="2024-01-01")
        for i, symbol in enumerate(["AAPL", "MSFT", "AAPL"])
    ]
    for submitted in ids:
        client.wait(submitted.execution_id, timeout=60)

    everything = list(client.list(page_size=1))  # three pages
    assert [j.execution_id for j in everything] == [s.execution_id for s in reversed(ids)]  # newest first
    assert {j.execution_id for j in client.list(symbol="AAPL")} == {ids[0].execution_id, ids[2].execution_id}
    assert [j.execution_id for j in client.list(name="batch 1")] == [ids[1].execution_id]
    assert len(list(client.list(limit=2))) == 2
    assert len(list(client.list(status="FAILED"))) == 0

    renamed = client.update(ids[0].execution_id, name="renamed", notes="kept")
    assert (renamed.name, renamed.notes) == ("renamed", "kept")
    cleared = client.update(ids[0].execution_id, notes=None)
    assert (cleared.name, cleared.notes) == ("renamed", None)  # a field not given stays, None clears

    client.delete(ids[0].execution_id)
    with pytest.raises(NotFound):
        client.status(ids[0].execution_id)
    assert len(list(client.list())) == 2


def test_cancel_stops_an_infinite_loop(make_client: MakeClient) -> None:
    client = make_client()
    submitted = client.submit(INFINITE_LOOP, **DAILY_RUN)
    started = client.status(submitted.execution_id)
    for _ in range(100):  # a worker picks it up within a second or so
        if started.status == "RUNNING":
            break
        time.sleep(0.1)
        started = client.status(submitted.execution_id)
    assert started.status == "RUNNING", started

    answer = client.cancel(submitted.execution_id)
    assert answer.cancel_requested
    job = client.wait(submitted.execution_id, timeout=30)

    assert job.status == "CANCELLED"
    with pytest.raises(NotReady, match="CANCELLED") as refused:
        client.result(submitted.execution_id)
    assert refused.value.job is not None and refused.value.job.status == "CANCELLED"


class FirstAnswerLost(httpx.BaseTransport):
    """Forwards every request to the server, but replaces the server's answer to the first submit by a
    503: the submit really happened, and the client cannot know it."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.submits: list[httpx.Request] = []
        self.lost: httpx.Response | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path == "/api/backtest/run":
            self.submits.append(request)
            if self.lost is None:
                response.read()
                self.lost = response
                body = {"success": False, "error": {"type": "ServiceUnavailable", "message": "injected"}}
                return httpx.Response(503, headers={"Retry-After": "0"}, json=body)
        return response

    def close(self) -> None:
        self.inner.close()


def test_a_submit_retried_after_a_lost_answer_queues_one_job(make_client: MakeClient) -> None:
    transport = FirstAnswerLost()
    client = make_client(transport)

    submitted = client.submit(SMA_CROSS, **DAILY_RUN)

    # The first try reached the server and queued the job; its answer was replaced by a 503
    assert transport.lost is not None and transport.lost.status_code == 202
    first_id = transport.lost.json()["execution_id"]
    # The retry carried the same Idempotency-Key, so the server answered with the job it had queued
    assert len(transport.submits) == 2
    keys = {r.headers["Idempotency-Key"] for r in transport.submits}
    assert len(keys) == 1
    assert submitted.execution_id == first_id
    assert [j.execution_id for j in client.list()] == [first_id]  # exactly one job
    assert client.wait(first_id, timeout=60).status == "SUCCEEDED"

    # A second logical submit gets a key of its own, so a second job
    again = client.submit(SMA_CROSS, **DAILY_RUN)
    assert again.execution_id != first_id
    assert transport.submits[-1].headers["Idempotency-Key"] not in keys


def test_errors_are_typed(make_client: MakeClient) -> None:
    client = make_client()

    with pytest.raises(ValidationFailed) as invalid:
        client.submit(SMA_CROSS, timeframe="2h", commission=-1.0)  # type: ignore[arg-type]
    assert invalid.value.status == 422
    assert invalid.value.type == "ValidationError"
    assert {e.field for e in invalid.value.errors} == {"timeframe", "commission"}
    assert all(e.message for e in invalid.value.errors)

    with pytest.raises(StrategyCompileError) as compile_error:
        client.submit("def generate_signals(data, params)\n    return 1\n")
    assert compile_error.value.status == 400
    assert compile_error.value.line == 1
    assert "line 1" in str(compile_error.value)

    with pytest.raises(NotFound) as missing:
        client.status("no-such-job")
    assert missing.value.status == 404 and missing.value.type == "NotFound"

    with pytest.raises(PayloadTooLarge):
        client.validate(SMA_CROSS + "#" * (65 * 1024))

    checked = client.validate(SMA_CROSS, **DAILY_RUN)
    assert checked.valid and checked.style == "vectorized"
    assert checked.estimated_bars > 100


def test_another_callers_job_is_not_found(make_client: MakeClient) -> None:
    alice, bob = make_client(name="client-alice"), make_client(name="client-bob")
    submitted = alice.submit(SMA_CROSS, **DAILY_RUN)

    with pytest.raises(NotFound):
        bob.status(submitted.execution_id)
    with pytest.raises(NotFound):
        bob.cancel(submitted.execution_id)
    alice.wait(submitted.execution_id, timeout=60)


def test_the_async_client(local_server: LocalServer, user: str) -> None:
    async def scenario() -> tuple[models.JobStatus, list[str], list[models.Trade], list[str], dict[str, Any]]:
        progress: list[str] = []

        async def on_progress(job: models.JobStatus) -> None:  # a coroutine callback is awaited
            progress.append(job.status)

        async with AsyncBacktestClient(local_server.url, auth=LocalUser(user), retry=FAST_RETRY) as client:
            assert (await client.health()).status == "ok"
            job = await client.run(SMA_CROSS, timeout=60, on_progress=on_progress, **DAILY_RUN)
            trades = [t async for t in client.trades(job.execution_id, page_size=3)]
            listed = [j.execution_id async for j in client.list()]
            result = await client.result(job.execution_id)
            return job, progress, trades, listed, result

    job, progress, trades, listed, result = asyncio.run(scenario())

    assert job.status == "SUCCEEDED"
    assert progress[-1] == "SUCCEEDED"
    assert job.trade_summary is not None and len(trades) == job.trade_summary.total_trades
    assert listed == [job.execution_id]
    assert result["trade_summary"]["total_trades"] == job.trade_summary.total_trades


def test_submit_with_wait_answers_the_finished_job(make_client: MakeClient) -> None:
    client = make_client()

    answer = client.submit(SMA_CROSS, wait=20, **DAILY_RUN)

    assert isinstance(answer, models.RunResponse)
    assert answer.status == "SUCCEEDED" and answer.success is True
    assert answer.performance_metrics is not None


def test_a_cognito_token_is_taken_as_the_deployed_authorizer_takes_it(local_server: LocalServer) -> None:
    """The client sends the user pool's token raw (no Bearer), as API Gateway's Cognito authorizer takes it;
    the local server reads its `sub` the same way, so `--token` works against `backtest local` too."""
    from backtest_client import CognitoAuth

    def token(sub: str) -> str:
        import base64
        import json

        claims = base64.urlsafe_b64encode(json.dumps({"sub": sub}).encode()).rstrip(b"=").decode()
        return f"eyJhbGciOiJub25lIn0.{claims}.signature"

    with BacktestClient(local_server.url, auth=CognitoAuth(token("carol-token")), retry=FAST_RETRY) as carol:
        job = carol.submit(SMA_CROSS, **DAILY_RUN)
        assert carol.status(job.execution_id).execution_id == job.execution_id
    with BacktestClient(local_server.url, auth=LocalUser("carol-token"), retry=FAST_RETRY) as same:
        assert same.status(job.execution_id).execution_id == job.execution_id  # the same caller
    dave = BacktestClient(local_server.url, auth=CognitoAuth(token("dave-token")), retry=FAST_RETRY)
    with dave, pytest.raises(NotFound):
        dave.status(job.execution_id)
