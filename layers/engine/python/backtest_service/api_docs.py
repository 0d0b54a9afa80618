"""The API's OpenAPI document as the symbols function serves it: `GET /api/backtest/openapi.json` and the
Swagger UI at `GET /api/backtest/docs`.

Each API function has its own resolver (a function never imports another), so no single Lambda can build
the whole document at run time: it is generated at build time by `tools/openapi.py` (`python -m
tools.openapi --write`) from the three resolvers, and this copy in the layer is one of the files it
writes (the other is `openapi.json` at the repository root); a test fails when either is stale.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

from backtest_service.rest import ServiceResolver
from backtest_service.routes import Route

TITLE = "Backtest service API"
API_VERSION = "1.0.0"
DOCUMENT = Path(__file__).with_name("openapi.json")


@cache
def document_json() -> str:
    """The generated document, as served by the symbols function."""
    return DOCUMENT.read_text(encoding="utf-8")


class _CommittedDocument(OpenAPIMerge):
    """Makes powertools' Swagger UI show the merged document instead of the symbols resolver's own."""

    def get_openapi_json_schema(self) -> str:
        return document_json()

    def get_openapi_schema(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(document_json())
        return data


def serve_swagger_ui(app: ServiceResolver, route: Route) -> None:
    """Swagger UI (powertools `enable_swagger`) at `route`, rendering the whole API's document."""
    app.claim(route)
    app.enable_swagger(path=route.path, title=TITLE, version=API_VERSION)
    # enable_swagger renders `app._openapi_merge` when set (what configure_openapi_merge sets);
    # that discovery needs every handler file on disk, which one Lambda does not have.
    app._openapi_merge = _CommittedDocument(title=TITLE, version=API_VERSION)
