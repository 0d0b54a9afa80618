"""Synthesize the service once per test session (jsii starts Node and synthesis takes seconds), so
every infra test shares one cloud assembly; see infra_harness.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.infra_harness import Synthesized, synthesize


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def dev(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.json("Dev")


@pytest.fixture(scope="session")
def prod(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.json("Prod")


@pytest.fixture(scope="session")
def hardened(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.json("Hardened")
