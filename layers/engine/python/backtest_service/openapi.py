"""The API's OpenAPI document: one document merged from the resolvers of the three API functions.

Each function has its own resolver (a function never imports another), so no single Lambda can build
the whole document at run time. It is generated here, committed twice, and checked by a test:

- `openapi.json` at the repository root, for people and the frontend;
- `backtest_service/openapi.json` in the layer, which the symbols function serves at
  `GET /api/backtest/openapi.json` and renders with Swagger UI at `/api/backtest/docs`.

Regenerate both with `python -m backtest_service.openapi --write` (`python -m backtest_service.openapi
> openapi.json` prints the root copy; `--check` exits 1 when a committed copy is stale).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

from backtest_service import settings as settings_module
from backtest_service.topology import Env

TITLE = "Backtest service API"
API_VERSION = "1.0.0"
DESCRIPTION = (
    "Submit trading strategies written in Python, backtest them in a sandbox against market data, "
    "and read performance metrics, trades and the equity curve. Callers are authenticated by API "
    "Gateway (Cognito user pool token in Authorization, or IAM SigV4); a job is visible only to its caller. "
    "Every error answers {success: false, error: {type, message, field?, line?}}."
)
API_FUNCTIONS = ("submit", "status", "symbols")
PACKAGED_COPY = Path(__file__).with_name("openapi.json")
ROOT_COPY = Path(__file__).resolve().parents[4] / "openapi.json"
REGENERATE = "python -m backtest_service.openapi --write"

# Stand-ins so the handler modules can be imported to read their routes (nothing is called).
_PLACEHOLDER_ENV = {
    Env.JOBS_TABLE: "openapi-jobs",
    Env.IDEMPOTENCY_TABLE: "openapi-idempotency",
    Env.JOBS_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/000000000000/openapi-jobs",
    Env.RESULTS_BUCKET: "openapi-results",
}


@contextmanager
def _importable_env() -> Iterator[None]:
    missing = {k: v for k, v in _PLACEHOLDER_ENV.items() if not os.environ.get(k)}
    if not missing:
        yield
        return
    os.environ.update(missing)
    settings_module.get_settings.cache_clear()
    try:
        yield
    finally:
        for key in missing:
            os.environ.pop(key, None)
        settings_module.get_settings.cache_clear()


def _load_resolver(handler: Path, name: str) -> APIGatewayRestResolver:
    spec = importlib.util.spec_from_file_location(f"_openapi_{name}_handler", handler)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {handler}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = getattr(module, "app", None)
    if not isinstance(app, APIGatewayRestResolver):
        raise TypeError(f"{handler} defines no APIGatewayRestResolver named app")
    return app


def render_document(functions_dir: Path | None = None) -> str:
    """The merged document as JSON text (what the committed copies must equal)."""
    functions_dir = functions_dir or ROOT_COPY.parent / "functions"
    merge = OpenAPIMerge(title=TITLE, version=API_VERSION, description=DESCRIPTION, on_conflict="error")
    with _importable_env():
        for name in API_FUNCTIONS:
            app = _load_resolver(functions_dir / name / "handler.py", name)
            merge.add_schema(app.get_openapi_schema(title=TITLE, version=API_VERSION))  # type: ignore[arg-type]
    document = json.loads(merge.get_openapi_json_schema())
    _drop_unreferenced_schemas(document)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _drop_unreferenced_schemas(document: dict[str, Any]) -> None:
    """Remove component schemas no route uses (powertools adds its own 422 shapes, replaced here)."""
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    prefix = "#/components/schemas/"

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix):
                yield ref[len(prefix) :]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    used: set[str] = set()
    pending = list(refs(document.get("paths", {})))
    while pending:
        name = pending.pop()
        if name not in used and name in schemas:
            used.add(name)
            pending.extend(refs(schemas[name]))
    for name in set(schemas) - used:
        del schemas[name]


@cache
def document_json() -> str:
    """The committed document, as served by the symbols function."""
    return PACKAGED_COPY.read_text(encoding="utf-8")


def serve_swagger_ui(app: APIGatewayRestResolver, *, path: str) -> None:
    """Swagger UI at `path`, rendering the whole API's document (the committed copy).

    What powertools' `enable_swagger` serves: its page with the bundled JS and CSS inlined,
    `?format=json` for the document, `?format=oauth2-redirect` for OAuth2. Not `enable_swagger` itself:
    registering it imports powertools' OpenAPI models (about 50 ms of every cold start of the symbols
    function, for a page few requests ask for), and it would render the symbols resolver's own routes.
    """

    @app.get(path, include_in_schema=False)
    def swagger_ui() -> Response[str]:
        query = app.current_event.query_string_parameters or {}
        return swagger_page(query.get("format"))


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="write both committed copies")
    group.add_argument("--check", action="store_true", help="exit 1 if a committed copy is stale")
    args = parser.parse_args(argv)
    text = render_document()
    if args.write:
        for path in (ROOT_COPY, PACKAGED_COPY):
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}", file=sys.stderr)
        return 0
    if args.check:
        stale = [str(p) for p in (ROOT_COPY, PACKAGED_COPY) if not p.is_file() or p.read_text("utf-8") != text]
        if stale:
            print(f"stale: {', '.join(stale)}; run: {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
