"""The API's OpenAPI document as the symbols function serves it: `GET /api/backtest/openapi.json` and the
Swagger UI at `GET /api/backtest/docs`.

Each API function has its own resolver (a function never imports another), so no single Lambda can build
the whole document at run time: it is generated at build time by `tools/openapi.py` (`python -m
tools.openapi --write`) from the three resolvers, and this copy in the layer is one of the files it
writes (the other is `openapi.json` at the repository root); a test fails when either is stale.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from aws_lambda_powertools.event_handler import Response, content_types

from backtest_engine import __version__ as ENGINE_VERSION
from backtest_service.rest import ServiceResolver
from backtest_service.routes import Route

TITLE = "Backtest service API"
API_VERSION = ENGINE_VERSION  # one version everywhere: the document's, /health's and the engine's
DOCUMENT = Path(__file__).with_name("openapi.json")


@cache
def document_json() -> str:
    """The generated document, as served by the symbols function."""
    return DOCUMENT.read_text(encoding="utf-8")


def serve_swagger_ui(app: ServiceResolver, route: Route) -> None:
    """Swagger UI at `route`, rendering the whole API's document (the committed copy).

    What powertools' `enable_swagger` serves: its page with the bundled JS and CSS inlined,
    `?format=json` for the document, `?format=oauth2-redirect` for OAuth2. Not `enable_swagger` itself:
    registering it imports powertools' OpenAPI models (about 50 ms of every cold start of the symbols
    function, for a page few requests ask for), and it would render the symbols resolver's own routes.
    """

    @app.serve(route)
    def swagger_ui(format: str | None = None) -> Response[str]:
        return swagger_page(format)


def swagger_page(fmt: str | None = None) -> Response[str]:
    from aws_lambda_powertools.event_handler.openapi import swagger_ui

    if fmt == "oauth2-redirect":
        return Response(200, content_types.TEXT_HTML, body=swagger_ui.generate_oauth2_redirect_html())
    # `</` escaped, as powertools does: the document goes inside a <script> element.
    spec = document_json().replace("</", "<\\/")
    if fmt == "json":
        return Response(200, content_types.APPLICATION_JSON, body=spec)
    assets = Path(swagger_ui.__file__).parent
    js = (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    css = (assets / "swagger-ui.min.css").read_text(encoding="utf-8")
    page = swagger_ui.generate_swagger_html(spec, js, css, swagger_base_url="", oauth2_config=None)
    return Response(200, content_types.TEXT_HTML, body=page)
