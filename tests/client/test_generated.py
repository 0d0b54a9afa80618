"""The client follows openapi.json: its generated models and TypeScript types are what the pinned
generators make of the committed document (regenerate: python clients/generate.py --write), and the
limits and stack output keys it spells out are the service's."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from backtest_client import _core, aws

from backtest_service.topology import MAX_WAIT_SECONDS, Output

REPO_ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("clients_generate", REPO_ROOT / "clients" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _generator()


def _openapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((REPO_ROOT / "openapi.json").read_text("utf-8"))
    return document


def test_the_python_models_are_generated_from_the_committed_openapi_document() -> None:
    expected = generate.python_models(generate.OPENAPI)
    committed = generate.PYTHON_MODELS.read_text("utf-8")
    assert committed == expected, f"clients/python/backtest_client/models.py is stale: run {generate.WRITE}"


def test_the_typescript_types_are_generated_from_the_committed_openapi_document() -> None:
    try:
        expected = generate.typescript_types(generate.OPENAPI)
    except generate.GeneratorMissing as exc:
        pytest.skip(f"TypeScript types not checked: {exc}")
    committed = generate.TYPESCRIPT_TYPES.read_text("utf-8")
    assert committed == expected, f"clients/typescript/api.d.ts is stale: run {generate.WRITE}"


def test_a_changed_document_makes_the_models_stale(tmp_path: Path) -> None:
    document = _openapi()
    document["components"]["schemas"]["HealthResponse"]["properties"]["uptime_s"] = {"type": "integer"}
    changed = tmp_path / "openapi.json"
    changed.write_text(json.dumps(document), encoding="utf-8")
    assert "uptime_s" in generate.python_models(changed)


def test_every_response_model_the_client_parses_is_a_schema_of_the_document() -> None:
    schemas = set(_openapi()["components"]["schemas"])
    parsed = {
        "HealthResponse", "SymbolsResponse", "MetricDefinitionsResponse", "SubmitResponse", "RunResponse",
        "ValidateResponse", "JobStatus", "JobList", "JobSummary", "EquityResponse", "TradesResponse", "Trade",
        "FieldError", "SubmitRequest",
    }  # fmt: skip
    assert parsed <= schemas, sorted(parsed - schemas)


def _query_maximum(path: str, name: str) -> int:
    parameters = _openapi()["paths"][path]["get" if "executions" in path else "post"]["parameters"]
    schema = next(p["schema"] for p in parameters if p["name"] == name)
    return int(next(s["maximum"] for s in schema.get("anyOf", [schema]) if "maximum" in s))


def test_the_limits_the_client_spells_out_are_the_apis() -> None:
    assert _core.MAX_WAIT_SECONDS == MAX_WAIT_SECONDS
    assert _query_maximum("/api/backtest/executions", "limit") == _core.MAX_LIST_PAGE
    assert _core.IDEMPOTENCY_HEADER == "Idempotency-Key"


def test_the_stack_outputs_the_client_reads_are_the_stacks() -> None:
    assert aws.API_URL_OUTPUT == Output.API_URL
    assert aws.AUTH_MODE_OUTPUT == Output.AUTH_MODE
    assert aws.USER_POOL_CLIENT_ID_OUTPUT == Output.USER_POOL_CLIENT_ID
