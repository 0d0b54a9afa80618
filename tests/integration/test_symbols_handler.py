"""Reference routes of the symbols function: market data, metric definitions, health, OpenAPI, docs."""

from __future__ import annotations

import json

import pytest

from backtest_engine import __version__
from backtest_engine.metric_definitions import metric_definitions
from backtest_service import api_docs
from backtest_service.topology import API_PREFIX
from local.stack import LocalStack
from tests.support import Api
from tools import openapi

pytestmark = pytest.mark.xdist_group("integration")


def test_symbols_lists_the_catalog(api: Api, stack: LocalStack) -> None:
    res = api.call("GET", f"{API_PREFIX}/market-data/symbols")
    assert res.status == 200
    body = res.body
    assert [s["symbol"] for s in body["symbols"]] == [
        "AAPL",
        "GOOGL",
        "MSFT",
        "TSLA",
        "AMZN",
        "BTCUSD",
        "ETHUSD",
    ]
    aapl = body["symbols"][0]
    assert aapl == {
        "symbol": "AAPL",
        "name": "Apple Inc.",
        "asset_class": "equity",
        "calendar": "XNYS",
        "session": "09:30-16:00 America/New_York, weekdays",
        "lot_size": 1.0,
        "periods_per_year": 252,
    }
    btc = body["symbols"][5]
    assert (btc["asset_class"], btc["calendar"], btc["lot_size"], btc["periods_per_year"]) == (
        "crypto",
        "24/7",
        0.00001,
        365,
    )
    assert [t["timeframe"] for t in body["timeframes"]] == ["1m", "5m", "15m", "1h", "4h", "1d"]
    assert body["timeframes"][3]["minutes"] == 60
    assert body["timeframes"][5]["description"].startswith("1 day")
    assert body["date_range"] == {"start": "2018-01-01", "end": "2025-12-31"}
    assert body["max_bars"] == 2_000_000


def test_metric_definitions_come_from_the_engine_declaration(api: Api, stack: LocalStack) -> None:
    res = api.call("GET", f"{API_PREFIX}/performance-metrics/definitions")
    assert res.status == 200
    assert res.body["success"] is True
    assert res.body["metrics"] == metric_definitions()
    keys = {m["key"] for m in res.body["metrics"]}
    assert {
        "total_return_percent",
        "sharpe_ratio",
        "max_drawdown_percent",
        "win_rate",
        "final_capital",
    } <= keys


def test_health(api: Api, stack: LocalStack) -> None:
    res = api.call("GET", "/health", user=None)
    assert res.status == 200
    assert res.body == {"status": "ok", "service": "backtest-service", "version": __version__}


def test_the_openapi_document_is_served_and_covers_every_route(api: Api, stack: LocalStack) -> None:
    res = api.call("GET", f"{API_PREFIX}/openapi.json")
    assert res.status == 200
    doc = res.body
    assert doc == json.loads(api_docs.DOCUMENT.read_text())
    assert set(doc["paths"]) == {
        f"{API_PREFIX}/run",
        f"{API_PREFIX}/validate",
        f"{API_PREFIX}/status/{{execution_id}}",
        f"{API_PREFIX}/executions",
        f"{API_PREFIX}/executions/{{execution_id}}",
        f"{API_PREFIX}/executions/{{execution_id}}/cancel",
        f"{API_PREFIX}/executions/{{execution_id}}/equity",
        f"{API_PREFIX}/executions/{{execution_id}}/trades",
        f"{API_PREFIX}/market-data/symbols",
        f"{API_PREFIX}/performance-metrics/definitions",
        "/health",
        f"{API_PREFIX}/datasets",
        f"{API_PREFIX}/datasets/{{dataset_id}}",
        # Parameter optimizations (issue 14)
        f"{API_PREFIX}/optimizations",
        f"{API_PREFIX}/optimizations/estimate",
        f"{API_PREFIX}/optimizations/{{optimization_id}}",
        f"{API_PREFIX}/optimizations/{{optimization_id}}/cancel",
    }
    optimize = doc["paths"][f"{API_PREFIX}/optimizations"]["post"]
    assert optimize["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/OptimizationSubmitRequest"
    )
    assert {"202", "400", "413", "422", "503"} <= set(optimize["responses"])
    assert "table_csv_url" in doc["components"]["schemas"]["OptimizationStatus"]["properties"]
    submit = doc["paths"][f"{API_PREFIX}/run"]["post"]
    assert submit["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/SubmitRequest")
    assert {"200", "202", "400", "413", "415", "422", "503"} <= set(submit["responses"])
    assert submit["security"] == [{"cognito": []}, {"iam": []}]
    schemas = doc["components"]["schemas"]
    assert {"ErrorResponse", "BacktestResultDocument", "TradeColumnsDocument", "EquityCurveDocument"} <= set(schemas)
    error_types = schemas["ErrorDetail"]["properties"]["type"]
    assert {"ValidationError", "StrategyCompileError", "Cancelled", "RunnerKilled"} <= set(
        error_types.get("enum") or schemas[error_types["$ref"].split("/")[-1]]["enum"]
    )
    assert set(doc["components"]["securitySchemes"]) == {"cognito", "iam"}
    assert doc["info"]["version"] == api.call("GET", "/health", user=None).body["version"]


def test_the_documents_example_strategy_runs(api: Api, stack: LocalStack) -> None:
    doc = json.loads(api_docs.DOCUMENT.read_text())
    (example,) = doc["components"]["schemas"]["SubmitRequest"]["properties"]["strategy_code"]["examples"]
    res = api.validate(strategy_code=example)
    assert res.status == 200 and res.body["style"] == "vectorized", res.body


def test_swagger_ui_renders_the_whole_api(api: Api, stack: LocalStack) -> None:
    res = api.call("GET", f"{API_PREFIX}/docs", user=None)
    assert res.status == 200
    assert "text/html" in {k.lower(): v for k, v in res.headers.items()}["content-type"]
    page = res.body
    assert "SwaggerUIBundle" in page
    assert f"{API_PREFIX}/run" in page  # a route of the submit function, not only the symbols ones
    assert f"{API_PREFIX}/executions" in page


def test_swagger_ui_serves_its_document_and_oauth2_redirect(api: Api, stack: LocalStack) -> None:
    res = api.call("GET", f"{API_PREFIX}/docs", query={"format": "json"}, user=None)
    assert res.status == 200
    assert res.body == json.loads(api_docs.document_json())  # `<\/` in the body is JSON for `</`
    redirect = api.call("GET", f"{API_PREFIX}/docs", query={"format": "oauth2-redirect"}, user=None)
    assert redirect.status == 200 and "oauth2" in redirect.body.lower()


def test_the_committed_openapi_documents_match_the_code() -> None:
    # The document is generated from the three API functions' resolvers and their models.
    current = openapi.render_document()
    for committed in openapi.COPIES:
        assert committed.is_file(), f"{committed} is missing; run: {openapi.REGENERATE}"
        assert committed.read_text(encoding="utf-8") == current, (
            f"{committed} is stale: the API changed. Regenerate it with: {openapi.REGENERATE}"
        )
