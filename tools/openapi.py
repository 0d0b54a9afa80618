"""Generate the API's OpenAPI document (a build-time tool: nothing here ships in the Lambda layer).

The document is merged from the resolvers of the three API functions (each has its own: a function
never imports another) and checked against the route table: every documented route of
`backtest_service.routes` is in it, nothing else is. It is written twice, both copies generated here and
checked by a test (tests/integration/test_symbols_handler.py):

- `openapi.json` at the repository root, for people, the frontend and the fuzzing tests;
- `layers/engine/python/backtest_service/openapi.json`, the copy the symbols function serves at
  `GET /api/backtest/openapi.json` and renders with Swagger UI at `/api/backtest/docs`.

    python -m tools.openapi            # print the document
    python -m tools.openapi --write    # write both copies
    python -m tools.openapi --check    # exit 1 when a committed copy is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

from backtest_service import api_docs, routes, topology
from backtest_service.api_models import BacktestResultDocument
from local.embedded_aws import EnvironmentPatch
from local.lambda_runtime import FUNCTIONS_DIR, REPO_ROOT, STAND_IN_RESOURCES, clear_service_caches, load_handler_module

DESCRIPTION = (
    "Submit trading strategies written in Python, backtest them in a sandbox against market data, "
    "and read performance metrics, trades and the equity curve. Callers are authenticated by API "
    "Gateway (Cognito user pool token in Authorization, or IAM SigV4); a job is visible only to its caller. "
    "Every error answers {success: false, error: {type, message, field?, line?}, errors?: [{field, message}]} "
    "(a 422 lists every bad field in errors). A SUCCEEDED job's full result (schema BacktestResultDocument) is "
    "behind its presigned results_url; its curve and trades are also served a page at a time."
)
API_FUNCTIONS = tuple(dict.fromkeys(route.function for route in routes.ROUTES))
ROOT_COPY = REPO_ROOT / "openapi.json"
PACKAGED_COPY = api_docs.DOCUMENT
COPIES = (ROOT_COPY, PACKAGED_COPY)
REGENERATE = "python -m tools.openapi --write"


def _load_resolver(function: topology.FunctionSpec, functions_dir: Path) -> APIGatewayRestResolver:
    module = load_handler_module(function.name, functions_dir)
    try:
        app = getattr(module, "app", None)
        if not isinstance(app, APIGatewayRestResolver):
            raise TypeError(f"functions/{function.name} defines no APIGatewayRestResolver named app")
        return app
    finally:
        sys.modules.pop(module.__name__, None)


def render_document(functions_dir: Path = FUNCTIONS_DIR) -> str:
    """The merged document as JSON text (what the committed copies must equal)."""
    merge = OpenAPIMerge(
        title=api_docs.TITLE, version=api_docs.API_VERSION, description=DESCRIPTION, on_conflict="error"
    )
    env = EnvironmentPatch()  # the handler modules read their settings at import; nothing is called
    env.set(topology.resource_environment(**STAND_IN_RESOURCES))
    clear_service_caches()
    try:
        for function in API_FUNCTIONS:
            app = _load_resolver(function, functions_dir)
            merge.add_schema(app.get_openapi_schema(title=api_docs.TITLE, version=api_docs.API_VERSION))  # type: ignore[arg-type]
    finally:
        env.restore()
        clear_service_caches()
    document = json.loads(merge.get_openapi_json_schema())
    _drop_unreferenced_schemas(document)
    _add_result_document(document)
    _add_security(document)
    _no_content_on_204(document)
    _check_routes(document)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _check_routes(document: dict[str, Any]) -> None:
    """The document lists exactly the documented routes of the route table."""
    listed = {(method.upper(), path) for path, item in document.get("paths", {}).items() for method in item}
    declared = {(route.method, route.path) for route in routes.ROUTES if route.documented}
    if listed != declared:
        raise ValueError(
            f"the resolvers document {sorted(listed - declared)} beyond backtest_service.routes and miss "
            f"{sorted(declared - listed)}"
        )


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


def _no_content_on_204(document: dict[str, Any]) -> None:
    """A 204 has no body (powertools documents its `Response[None]` return as a JSON null)."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            operation.get("responses", {}).get("204", {}).pop("content", None)


def _add_result_document(document: dict[str, Any]) -> None:
    """The schema of what `results_url` downloads (no route returns it: it comes from S3)."""
    schema = BacktestResultDocument.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas[BacktestResultDocument.__name__] = schema


# How API Gateway authenticates callers (the stack's authMode): a Cognito user pool token, or IAM SigV4.
SECURITY_SCHEMES = {
    "cognito": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "A Cognito user pool ID or access token (the stack's default authMode=cognito).",
        "x-amazon-apigateway-authtype": "cognito_user_pools",
    },
    "iam": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "An AWS SigV4 signature for service execute-api (authMode=iam, for service callers).",
        "x-amazon-apigateway-authtype": "awsSigv4",
    },
}


def _add_security(document: dict[str, Any]) -> None:
    """Security schemes, and on every operation that needs a caller, either of them (`backtest local` takes
    an X-Local-User header instead: see its docs)."""
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for route in routes.ROUTES:
        if route.documented and route.auth == "caller":
            operation = document["paths"][route.path][route.method.lower()]
            operation["security"] = [{"cognito": []}, {"iam": []}]


def stale_copies(text: str) -> list[Path]:
    """The committed copies that differ from `text` (or are missing)."""
    return [path for path in COPIES if not path.is_file() or path.read_text("utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="write both committed copies")
    group.add_argument("--check", action="store_true", help="exit 1 if a committed copy is stale")
    args = parser.parse_args(argv)
    text = render_document()
    if args.write:
        for path in COPIES:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}", file=sys.stderr)
        return 0
    if args.check:
        if stale := stale_copies(text):
            print(f"stale: {', '.join(map(str, stale))}; run: {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
