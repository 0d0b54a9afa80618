"""End-to-end harness: `backtest local` (real HTTP server, 2 workers, moto server) in this process.

The server listens on a free loopback port; tests talk to it with `requests` only, as a frontend
would. `e2e_server.stack` is there for what a frontend cannot do: fault injection, looking into the
table, the queues and the bucket, and replaying the DLQ.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from local.http_server import LocalServer
from local.stack import LocalStack

TERMINAL = ("SUCCEEDED", "FAILED")

# Small, fast runs: daily bars over a few months.
SMA_CROSS = """\
import numpy as np
import talib


def generate_signals(data, params):
    fast = talib.SMA(data.close.values, timeperiod=params.get("fast", 5))
    slow = talib.SMA(data.close.values, timeperiod=params.get("slow", 20))
    return np.where(fast > slow, 1.0, 0.0)
"""
SMALL_RUN: dict[str, Any] = {
    "symbol": "AAPL",
    "timeframe": "1d",
    "start_date": "2024-01-01",
    "end_date": "2024-06-30",
}


class Client:
    """A frontend's view of the API: JSON over HTTP, one local identity per client."""

    def __init__(self, base_url: str, user: str | None) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        if user is not None:
            self.session.headers["X-Local-User"] = user

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.base_url}{path}", timeout=30, **kwargs)

    def submit(self, code: str = SMA_CROSS, **overrides: Any) -> str:
        response = self.request("POST", "/api/backtest/run", json={"strategy_code": code, **SMALL_RUN, **overrides})
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["status"] == "QUEUED"
        return str(body["execution_id"])

    def status(self, execution_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/api/backtest/status/{execution_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait(self, execution_id: str, *, until: tuple[str, ...] = TERMINAL, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.status(execution_id)
            if job["status"] in until:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {execution_id} still {job['status']} after {timeout} s: {job}")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def e2e_server() -> Iterator[LocalServer]:
    # Failed deliveries come back after 1 s (AWS waits out the 30 min visibility timeout), so a job
    # reaches the DLQ after its max receive count within seconds.
    stack = LocalStack(server=True, retry_delay_seconds=1)
    with LocalServer(host="127.0.0.1", port=0, workers=2, stack=stack, log=lambda _: None) as server:
        yield server


@pytest.fixture
def base_url(e2e_server: LocalServer) -> str:
    return e2e_server.url


@pytest.fixture
def sma_code() -> str:
    return SMA_CROSS


@pytest.fixture
def make_client(base_url: str) -> Any:
    def make(user: str | None) -> Client:
        return Client(base_url, user)

    return make


@pytest.fixture
def client(base_url: str, request: pytest.FixtureRequest) -> Client:
    # One caller per test: its job list and counts are its own.
    return Client(base_url, user=f"user-{request.node.name}"[:100])
