"""What the test suites share besides the local runtime's fixtures (local/pytest_plugin.py): a small
strategy, small runs, and two callers of the API: `Api` through the local stack's API Gateway events,
`Client` over HTTP as a frontend."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import requests

from backtest_service.routes import (
    CANCEL_EXECUTION,
    DELETE_EXECUTION,
    GET_EQUITY,
    GET_STATUS,
    GET_TRADES,
    SUBMIT_BACKTEST,
    UPDATE_EXECUTION,
    VALIDATE_BACKTEST,
    Route,
)
from local.events import ApiResponse
from local.stack import LocalStack

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")

# A small, fast strategy: SMA crossover.
SMA_CROSS = """\
import numpy as np
import talib


def generate_signals(data, params):
    fast = talib.SMA(data.close.values, timeperiod=params.get("fast", 5))
    slow = talib.SMA(data.close.values, timeperiod=params.get("slow", 20))
    return np.where(fast > slow, 1.0, 0.0)
"""
# Never returns: for cancel and timeout tests.
FOREVER = """\
def generate_signals(data, params):
    while True:
        pass
"""
# Flips long/short every bar: one trade a bar, the worst legal request for the result's size.
FLIP = """\
import numpy as np


def generate_signals(data, params):
    return np.where(np.arange(len(data)) % 2 == 0, 1.0, -1.0)
"""
# One month of hourly bars (the handlers' tests) and half a year of daily bars (over HTTP).
SMALL_RUN: dict[str, Any] = {"symbol": "AAPL", "timeframe": "1h", "start_date": "2024-01-01", "end_date": "2024-01-31"}
DAILY_RUN: dict[str, Any] = {"symbol": "AAPL", "timeframe": "1d", "start_date": "2024-01-01", "end_date": "2024-06-30"}


def status_path(execution_id: str) -> str:
    return GET_STATUS.path.replace("{execution_id}", execution_id)


def job_path(route: Route, execution_id: str) -> str:
    """`route`'s path for one execution (e.g. `GET_EQUITY`)."""
    return route.path.replace("{execution_id}", execution_id)


class Api:
    """The API through the local stack's API Gateway events, as the Cognito user alice unless a call
    names another caller (`user=None`: nobody, or an IAM caller with `iam_arn=`)."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack

    def call(self, method: str, path: str, *, user: str | None = "alice", **kwargs: Any) -> ApiResponse:
        """`LocalStack.invoke_api` (body=, raw_body=, headers=, query=, iam_arn=)."""
        return self.stack.invoke_api(method, path, user=user, **kwargs)

    def submit(self, user: str = "alice", headers: Mapping[str, str] | None = None, **fields: Any) -> ApiResponse:
        body = {"strategy_code": SMA_CROSS, **SMALL_RUN, **fields}
        return self.call(SUBMIT_BACKTEST.method, SUBMIT_BACKTEST.path, body=body, user=user, headers=headers)

    def status(self, execution_id: str, user: str | None = "alice") -> ApiResponse:
        return self.call(GET_STATUS.method, status_path(execution_id), user=user)

    def validate(self, user: str = "alice", **fields: Any) -> ApiResponse:
        body = {"strategy_code": SMA_CROSS, **SMALL_RUN, **fields}
        return self.call(VALIDATE_BACKTEST.method, VALIDATE_BACKTEST.path, body=body, user=user)

    def cancel(self, execution_id: str, user: str = "alice") -> ApiResponse:
        return self.call(CANCEL_EXECUTION.method, job_path(CANCEL_EXECUTION, execution_id), user=user)

    def delete(self, execution_id: str, user: str = "alice") -> ApiResponse:
        return self.call(DELETE_EXECUTION.method, job_path(DELETE_EXECUTION, execution_id), user=user)

    def update(self, execution_id: str, user: str = "alice", **fields: Any) -> ApiResponse:
        return self.call(UPDATE_EXECUTION.method, job_path(UPDATE_EXECUTION, execution_id), body=fields, user=user)

    def equity(self, execution_id: str, user: str = "alice", **query: str) -> ApiResponse:
        return self.call(GET_EQUITY.method, job_path(GET_EQUITY, execution_id), query=query or None, user=user)

    def trades(self, execution_id: str, user: str = "alice", **query: str) -> ApiResponse:
        return self.call(GET_TRADES.method, job_path(GET_TRADES, execution_id), query=query or None, user=user)


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
        response = self.request(
            SUBMIT_BACKTEST.method, SUBMIT_BACKTEST.path, json={"strategy_code": code, **DAILY_RUN, **overrides}
        )
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["status"] == "QUEUED"
        return str(body["execution_id"])

    def status(self, execution_id: str) -> dict[str, Any]:
        response = self.request(GET_STATUS.method, status_path(execution_id))
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


def in_jobs_queue(stack: LocalStack) -> int:
    """Messages in the jobs queue, visible or in flight."""
    depth = stack.queue_depth()
    return depth["visible"] + depth["in_flight"]
