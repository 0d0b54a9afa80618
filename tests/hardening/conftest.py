"""Fixtures of the hardening suite, reused from the other suites rather than rebuilt:

- tests/integration (`integration_harness` + its conftest): the fake AWS environment, and the pieces
  of its `stack` fixture, assembled here as `module_stack` (one embedded AWS per module, clients made
  once) for modules that send many requests;
- tests/e2e (its conftest, importable as `hardening_e2e_fixtures`): `e2e_server`, `backtest local` over
  real HTTP on loopback with 2 workers, and its `Client`.

A module uses one of the two worlds, never both: the HTTP stack's moto server and the in-process
`mock_aws` would share the process environment.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
# tests/integration's conftest imports its harness as a top-level module, as pytest's rootdir-less
# conftest import does when that suite is collected too.
if str(TESTS / "integration") not in sys.path:
    sys.path.insert(0, str(TESTS / "integration"))


def _load(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


from integration_harness import REGION, Stack, clear_service_caches  # noqa: E402

_integration = _load("hardening_integration_fixtures", TESTS / "integration" / "conftest.py")
_e2e = _load("hardening_e2e_fixtures", TESTS / "e2e" / "conftest.py")

# Re-exported fixtures (pytest finds fixtures by the names a conftest module holds).
_aws_environment = _integration._aws_environment
e2e_server = _e2e.e2e_server


@dataclasses.dataclass
class SharedStack(Stack):
    """A `Stack` whose boto3 clients are made once (making one costs about 0.1 s)."""

    _clients: dict[str, Any] = dataclasses.field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = super().client(service)
        return self._clients[service]


@pytest.fixture(scope="module")
def module_stack() -> Iterator[SharedStack]:
    """`stack` shared by a module: the same embedded AWS, resources and environment, created once."""
    from moto import mock_aws

    from local.aws_resources import create_resources

    with pytest.MonkeyPatch.context() as env, mock_aws():
        names = create_resources(REGION, prefix="backtest")
        for key, value in names.env().items():
            env.setenv(key, value)
        clear_service_caches()
        yield SharedStack(names)
        clear_service_caches()


def pytest_configure(config: pytest.Config) -> None:
    _integration.pytest_configure(config)


@pytest.fixture(scope="module", autouse=True)
def _no_metrics_left_behind() -> Iterator[None]:
    """The local stack disables metrics, and powertools then never clears what it collected: drop it, or
    the next in-process test in this worker flushes another module's metrics as its own."""
    yield
    from backtest_service.observability import metrics

    metrics.clear_metrics()
