"""Fixtures of the integration suite; the helpers they hand out are in integration_harness.py."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError
from integration_harness import _BASE_ENV, REGION, Api, Stack, Worker, clear_service_caches
from moto import mock_aws


def pytest_configure(config: pytest.Config) -> None:
    # The API functions add no metric on reads and 4xx answers; powertools warns about each of those.
    config.addinivalue_line("filterwarnings", "ignore:No application metrics to publish:UserWarning")


@pytest.fixture(scope="session", autouse=True)
def _aws_environment() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in _BASE_ENV}
    os.environ.update(_BASE_ENV)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    from backtest_service.observability import logger

    logger.setLevel(_BASE_ENV["POWERTOOLS_LOG_LEVEL"])  # it may have been created before this fixture
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    from local.aws_resources import create_resources

    with mock_aws():
        names = create_resources(REGION, prefix="backtest")
        for key, value in names.env().items():
            monkeypatch.setenv(key, value)
        clear_service_caches()
        yield Stack(names)
        clear_service_caches()


@pytest.fixture
def api(stack: Stack) -> Api:
    return Api()


@pytest.fixture
def worker(stack: Stack) -> Worker:
    return Worker(stack)


@pytest.fixture
def log_records() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Returns the JSON lines the functions' powertools logger wrote so far in the test, parsed."""
    from backtest_service.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    underlying = logging.getLogger(logger.name)  # the stdlib logger powertools writes through
    underlying.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    finally:
        underlying.removeHandler(handler)


@pytest.fixture
def inject_fault(stack: Stack) -> Callable[..., Any]:
    """`with inject_fault("s3", "PutObject", times=1, code="SlowDown"):` on the functions' own clients."""
    from backtest_service import clients

    @contextmanager
    def inject(
        service: str, operation: str, *, times: int | None = None, code: str = "ServiceUnavailable"
    ) -> Iterator[list[str]]:
        client = {"s3": clients.s3, "sqs": clients.sqs, "dynamodb": clients.dynamodb}[service]()
        calls: list[str] = []

        def fail(**_: Any) -> None:
            if times is not None and len(calls) >= times:
                return
            calls.append(operation)
            raise ClientError({"Error": {"Code": code, "Message": f"injected: {service}.{operation}"}}, operation)

        event_name = f"before-call.{client.meta.service_model.endpoint_prefix}.{operation}"
        client.meta.events.register(event_name, fail, unique_id=f"test-fault-{operation}")
        try:
            yield calls
        finally:
            client.meta.events.unregister(event_name, unique_id=f"test-fault-{operation}")

    return inject
