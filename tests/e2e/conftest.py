"""End-to-end: `backtest local` (real HTTP server, 2 workers, moto server) in this process, as the
`local_server` fixture of local/pytest_plugin.py.

The server listens on a free loopback port; tests talk to it with `requests` only, as a frontend
would. `local_server.stack` is there for what a frontend cannot do: fault injection, looking into the
table, the queues and the bucket, and replaying the DLQ.
"""

from __future__ import annotations

from typing import Any

import pytest

from local.http_server import LocalServer
from tests.support import SMA_CROSS, Client


@pytest.fixture
def base_url(local_server: LocalServer) -> str:
    return local_server.url


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
