"""The local Lambda runtime as pytest fixtures: the tests' one emulator (registered in pyproject's
`addopts = "-p local.pytest_plugin"`).

- `stack`: a `LocalStack` per test (in-process moto, the four handlers, the topology's resources and
  environment); failed deliveries come back at once (`retry_delay_seconds=0`) and the functions print
  their EMF metrics to stdout, as in Lambda.
- `module_stack`: the same, shared by a module (for modules that send many requests).
- `worker`: the stack's SQS event source mapping (`poll`, `deliver`, `drain`).
- `inject_fault`: `with inject_fault("s3", "PutObject", times=1):` on the functions' clients.
- `log_records`: the JSON lines the functions' powertools logger wrote during the test.
- `local_server`: `backtest local` in this process (HTTP on a free loopback port, 2 workers, moto's
  server), shared by a module; failed deliveries come back after 1 s.

A module uses the in-process stacks or the server, never both: the server's moto and the in-process
`mock_aws` would share the process environment. Nothing of the service is imported until a fixture is
used (pytest loads this plugin for every test, the engine's unit tests too).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from local.event_source import EventSourceMapping
    from local.http_server import LocalServer
    from local.stack import LocalStack


def pytest_configure(config: pytest.Config) -> None:
    # The API functions add no metric on reads and 4xx answers; powertools warns about each of those.
    config.addinivalue_line("filterwarnings", "ignore:No application metrics to publish:UserWarning")


def _test_stack() -> LocalStack:
    from local.stack import LocalStack

    return LocalStack(retry_delay_seconds=0, emit_metrics=True)


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    with _test_stack() as local_stack:
        yield local_stack


@pytest.fixture(scope="module")
def module_stack() -> Iterator[LocalStack]:
    with _test_stack() as local_stack:
        yield local_stack


@pytest.fixture
def worker(request: pytest.FixtureRequest) -> EventSourceMapping:
    """The event source mapping of the test's stack (`module_stack` when the test uses that one)."""
    name = "module_stack" if "module_stack" in request.fixturenames else "stack"
    local_stack: LocalStack = request.getfixturevalue(name)
    return local_stack.event_source


@pytest.fixture
def inject_fault() -> Callable[..., Any]:
    from local import faults

    return faults.inject_fault


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


@pytest.fixture(scope="module")
def local_server(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    from local.http_server import LocalServer
    from local.stack import LocalStack

    # Failed deliveries come back after 1 s (AWS waits out the 30 min visibility timeout), so a job
    # reaches the DLQ after its max receive count within seconds. A module may set LOCAL_SERVER_ENV, the
    # functions' settings it needs (e.g. a higher MAX_ACTIVE_JOBS for a load test).
    env = dict(getattr(request.module, "LOCAL_SERVER_ENV", {}))
    server_stack = LocalStack(server=True, retry_delay_seconds=1, env=env)
    with LocalServer(host="127.0.0.1", port=0, workers=2, stack=server_stack, log=lambda _: None) as server:
        yield server
