"""The hardening suite runs on the local runtime's fixtures (local/pytest_plugin.py): `module_stack`
(one in-process stack per module, for modules that send many requests) or `local_server` (`backtest
local` over real HTTP on loopback with 2 workers). A module uses one of the two, never both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module", autouse=True)
def _no_metrics_left_behind() -> Iterator[None]:
    """The local stack disables metrics, and powertools then never clears what it collected: drop it, or
    the next in-process test in this worker flushes another module's metrics as its own."""
    yield
    from backtest_service.observability import metrics

    metrics.clear_metrics()
