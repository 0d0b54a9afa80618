"""The client's tests: against `backtest local` over real HTTP (the `local_server` fixture), and against
httpx mock transports for what a real server cannot be made to do on demand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
from backtest_client import BacktestClient, LocalUser, RetryPolicy

if TYPE_CHECKING:
    from local.http_server import LocalServer

# Retries without waiting (the Retry-After of an injected answer is 0 or absent).
FAST_RETRY = RetryPolicy(attempts=4, backoff=0.0)


class Recorder(httpx.BaseTransport):
    """A real transport that records every request it forwards (and so what the client really sent)."""

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()

    def paths(self, method: str | None = None) -> list[str]:
        return [r.url.path for r in self.requests if method is None or r.method == method]


@pytest.fixture
def user(request: pytest.FixtureRequest) -> str:
    """One caller per test: its job list is its own."""
    return f"client-{request.node.name}"[:100]


@pytest.fixture
def make_client(local_server: LocalServer, user: str) -> Iterator[Callable[..., BacktestClient]]:
    made: list[BacktestClient] = []

    def make(transport: httpx.BaseTransport | None = None, name: str | None = None) -> BacktestClient:
        client = BacktestClient(
            local_server.url,
            auth=LocalUser(name or user),
            retry=FAST_RETRY,
            transport=transport,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
