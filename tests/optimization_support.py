"""What the optimization tests share (issue 14): a small search, a stack that cuts it into several chunks,
and the optimizations API through the local stack's API Gateway events."""

from __future__ import annotations

import gzip
import json
import urllib.request
from typing import Any

from backtest_service.optimization_results import OptimizationResults
from backtest_service.optimization_store import OptimizationStore
from backtest_service.optimizations import ChunkRecord, OptimizationRecord
from backtest_service.routes import (
    CANCEL_OPTIMIZATION,
    ESTIMATE_OPTIMIZATION,
    GET_OPTIMIZATION,
    LIST_OPTIMIZATIONS,
    SUBMIT_OPTIMIZATION,
)
from backtest_service.topology import Env
from local.events import ApiResponse
from local.stack import LocalStack
from tests.support import SMA_CROSS

# A quarter of hourly AAPL bars (455): about 1.5 ms a combination, so a chunk target of 5 ms gives chunks of 3.
RUN: dict[str, Any] = {"symbol": "AAPL", "timeframe": "1h", "start_date": "2024-01-01", "end_date": "2024-03-31"}
GRID: dict[str, Any] = {"fast": {"min": 3, "max": 12, "step": 3}, "slow": {"values": [20, 30, 40]}}  # 12 points
CHUNKED_ENV = {Env.OPTIMIZATION_CHUNK_SECONDS: "0.005"}


def chunked_stack(**overrides: Any) -> LocalStack:
    """The local stack with chunks of about 5 ms of work (a small search becomes several chunks); failed
    deliveries come back at once."""
    return LocalStack(**{"retry_delay_seconds": 0, "env": CHUNKED_ENV, **overrides})


def search(**fields: Any) -> dict[str, Any]:
    """An optimization body: the SMA crossover over `GRID` on `RUN`, with `fields` on top."""
    return {"strategy_code": SMA_CROSS, **RUN, "parameters": GRID, "top_k": 5, **fields}


def path(route: Any, optimization_id: str) -> str:
    return str(route.path).replace("{optimization_id}", optimization_id)


class Optimizations:
    """The optimizations API through the local stack, as alice unless a call names another caller."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack

    def submit(self, body: dict[str, Any] | None = None, user: str = "alice", **kwargs: Any) -> ApiResponse:
        route = SUBMIT_OPTIMIZATION
        return self.stack.invoke_api(
            route.method, route.path, body if body is not None else search(), user=user, **kwargs
        )

    def estimate(self, body: dict[str, Any] | None = None, user: str = "alice") -> ApiResponse:
        route = ESTIMATE_OPTIMIZATION
        return self.stack.invoke_api(route.method, route.path, body if body is not None else search(), user=user)

    def get(self, optimization_id: str, user: str = "alice") -> ApiResponse:
        return self.stack.invoke_api(GET_OPTIMIZATION.method, path(GET_OPTIMIZATION, optimization_id), user=user)

    def cancel(self, optimization_id: str, user: str = "alice") -> ApiResponse:
        route = CANCEL_OPTIMIZATION
        return self.stack.invoke_api(route.method, path(route, optimization_id), user=user)

    def list(self, user: str = "alice", **query: str) -> ApiResponse:
        route = LIST_OPTIMIZATIONS
        return self.stack.invoke_api(route.method, route.path, query=query or None, user=user)

    def started(self, body: dict[str, Any] | None = None, user: str = "alice") -> str:
        res = self.submit(body, user=user)
        assert res.status == 202, res.body
        return str(res.body["optimization_id"])

    # ---- looking inside ------------------------------------------------------------------------------

    @property
    def store(self) -> OptimizationStore:
        return OptimizationStore(self.stack.resources.optimizations_table, self.stack.client("dynamodb"))

    @property
    def results(self) -> OptimizationResults:
        return OptimizationResults(self.stack.resources.results_bucket, self.stack.client("s3"))

    def record(self, optimization_id: str) -> OptimizationRecord:
        record = self.store.get(optimization_id)
        assert record is not None
        return record

    def chunk(self, optimization_id: str, chunk: int) -> ChunkRecord | None:
        return self.store.get_chunk(optimization_id, chunk)

    def table(self, optimization_id: str) -> dict[str, Any]:
        return self.results.get_table(optimization_id)


def download(url: str) -> bytes:
    """A presigned link's body (the local moto server), decompressed when it is gzip-encoded."""
    with urllib.request.urlopen(url, timeout=30) as answer:
        body: bytes = answer.read()
        if answer.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
    return body


def table_of(body: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(body)
    return data
