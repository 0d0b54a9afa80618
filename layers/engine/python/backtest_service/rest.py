"""The API functions' resolver: powertools `APIGatewayRestResolver` with validation on, and one error
shape for every failure: `{"success": false, "error": {"type", "message", "field"?, "line"?}}`.

| raised                                   | status | error.type                      |
|------------------------------------------|--------|---------------------------------|
| body is not JSON                         | 400    | InvalidJSON                     |
| pydantic validation (body, query, path)  | 422    | ValidationError (names field)   |
| unsupported Content-Type                 | 415    | UnsupportedContentType          |
| body not UTF-8                           | 400    | InvalidJSON                     |
| `backtest_engine` UserInputError         | 400    | its code (StrategyCompileError…) |
| `errors.ServiceError` subclasses         | their `status` (401, 404, 400, 413, 422, 503) |
| Idempotency-Key reused with another body | 422    | IdempotencyKeyReused            |
| same Idempotency-Key still in progress   | 409    | IdempotencyKeyInProgress        |
| AWS throttled or unavailable             | 503    | ServiceUnavailable              |
| unknown route                            | 404    | RouteNotFound                   |
| anything else (a bug)                    | 500    | InternalError (with request id) |

The two idempotency answers are registered by `create_resolver(idempotency=True)` (the submit function).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Annotated, Any, TypeVar, get_args, get_origin, get_type_hints

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError as PtValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from botocore.exceptions import BotoCoreError, ClientError

from backtest_engine.errors import EngineError
from backtest_service.api_models import ErrorResponse, error_body
from backtest_service.errors import RequestInvalid, ServiceError, UnsupportedContentType, invalid_from_errors
from backtest_service.identity import Caller, caller_from_event
from backtest_service.observability import logger
from backtest_service.routes import OPENAPI_DOCUMENT, Route
from backtest_service.topology import FunctionSpec

F = TypeVar("F", bound=Callable[..., Any])
IDEMPOTENCY_HEADER = "Idempotency-Key"
CORS = CORSConfig(allow_origin="*", allow_headers=["Authorization", "Content-Type", IDEMPOTENCY_HEADER], max_age=600)

# OpenAPI `responses=` entries for the error statuses a route may answer.
_ERROR_DESCRIPTIONS = {
    400: "Bad request: not JSON, a strategy that does not compile (names the line), a bad next_token",
    401: "No authenticated caller",
    404: "Unknown execution id or dataset id (or one owned by another caller)",
    409: "Conflict: the job has no results yet (not SUCCEEDED), or the same Idempotency-Key is still being processed",
    410: "The job's results have expired",
    413: "strategy_code is larger than 64 KiB",
    415: "Content-Type is not application/json",
    429: "Too many of the caller's jobs are queued or running: retry after Retry-After seconds",
    422: "A field is invalid (names the field)",
    503: "A dependency (queue, table) is unavailable: retry",
}


def responses(status: int, description: str, *errors: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI `responses=` of a route: its success (model from the return type) and its error statuses.

    422 is always listed: powertools documents one for every route, in a shape this API does not use.
    """
    out: dict[int, OpenAPIResponse] = {status: {"description": description}}
    for code in sorted({*errors, 422}):
        out[code] = {
            "description": _ERROR_DESCRIPTIONS[code],
            "content": {content_types.APPLICATION_JSON: {"model": ErrorResponse}},
        }
    return out


def json_error(
    status: int,
    type_: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
    **detail: Any,
) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=error_body(type_, message, errors=errors, **detail),
        headers=headers,
    )


def validation_error(errors: Sequence[dict[str, Any]]) -> Response:
    """422 naming the first field at fault; the message lists every problem."""
    if not errors:
        return json_error(422, "ValidationError", "the request is invalid")
    first = errors[0]
    loc = list(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "")
        return json_error(
            400,
            "InvalidJSON",
            f"the request body is not valid JSON ({reason} at character {loc[-1] if len(loc) > 1 else 0}); "
            'send a JSON object such as {"strategy_code": "...", "symbol": "AAPL"}',
        )
    if first.get("type") == "missing" and loc == ["body"]:
        return json_error(
            422,
            "ValidationError",
            "the request body is missing; send a JSON object with strategy_code",
            field="body",
        )
    invalid = invalid_from_errors(errors)
    return json_error(invalid.status, invalid.code, invalid.message, field=invalid.field, errors=invalid.errors)


class ServiceResolver(APIGatewayRestResolver):
    """The resolver of one API function: it serves that function's routes of `routes.ROUTES`, taking
    method and path from the table, so the handler names a route instead of spelling it again."""

    def __init__(self, function: FunctionSpec) -> None:
        super().__init__(enable_validation=True, cors=CORS)
        self.function = function

    def serve(self, route: Route, **docs: Any) -> Callable[[F], F]:
        """`@app.serve(routes.X, summary=..., responses=...)`: the decorated function answers `route`.

        Refuses, at cold start, a route of another function and a route with a body model the
        function does not take (its body parameter must be annotated with that model).
        """
        self.claim(route)

        def register(fn: F) -> F:
            if route.body is not None and not _takes(fn, route.body):
                raise TypeError(f"{fn.__name__} serves {route}, so it must take a {route.body.__name__} body")
            allowed = _query_names(fn, route)

            @functools.wraps(fn)
            def checked(*args: Any, **kwargs: Any) -> Any:
                self._check_request(route, allowed)
                return fn(*args, **kwargs)

            decorate = self.route(route.resolver_rule, route.method, include_in_schema=route.documented, **docs)
            decorate(checked)
            return fn

        return register

    def _check_request(self, route: Route, allowed: frozenset[str]) -> None:
        """What powertools' validation lets through: a body that is not a JSON object (it unwraps a list),
        a form or multipart body it parsed as one, query parameters the route does not take."""
        event = self.current_event
        unknown = sorted(set(event.query_string_parameters or {}) - allowed)
        if unknown:
            names = ", ".join(unknown)
            known = ", ".join(sorted(allowed)) or "none"
            raise RequestInvalid(
                f"unknown query parameter(s) {names}; {route} takes: {known}",
                field=unknown[0],
                errors=[{"field": name, "message": f"{route} has no query parameter {name}"} for name in unknown],
            )
        if route.body is None:
            return
        if not _is_json(event.headers.get("content-type")):
            raise UnsupportedContentType(_SEND_JSON)
        if not isinstance(event.json_body, dict):
            raise RequestInvalid(
                f"the request body must be a JSON object, not {type(event.json_body).__name__}; "
                'send {"strategy_code": "...", ...}',
                field="body",
            )

    def claim(self, route: Route) -> None:
        """Refuse a route the table gives another function (also for routes powertools registers itself)."""
        if route.function != self.function:
            raise ValueError(f"{route} is served by {route.function.name}, not by {self.function.name}")

    def registered(self) -> set[tuple[str, str]]:
        """(method, path template) of every route this resolver answers, however it was registered."""
        return {(route.method, route.openapi_path) for route in [*self._static_routes, *self._dynamic_routes]}


def _is_json(content_type: str | None) -> bool:
    """No Content-Type (taken as JSON), application/json, or a JSON type such as application/vnd.x+json."""
    if not content_type or not content_type.strip():
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == content_types.APPLICATION_JSON or media.endswith("+json")


_SEND_JSON = "send the body as JSON with Content-Type: application/json"


def _query_names(fn: Callable[..., Any], route: Route) -> frozenset[str]:
    """The query parameters `fn` takes (its parameters that are not path parameters, the body or headers),
    under the names a request uses (a Query's alias)."""
    names = set()
    for name, hint in get_type_hints(fn, include_extras=True).items():
        if name == "return" or name in route.path_parameters:
            continue
        extras = get_args(hint)[1:] if get_origin(hint) is Annotated else ()
        if any(isinstance(x, Header | Body) for x in extras):
            continue
        if route.body is not None and (hint is route.body or (extras and get_args(hint)[0] is route.body)):
            continue
        alias = next((x.alias for x in extras if isinstance(x, Query) and x.alias), None)
        names.add(alias or name)
    return frozenset(names)


def _takes(fn: Callable[..., Any], model: type) -> bool:
    for hint in get_type_hints(fn, include_extras=True).values():
        if hint is model or (get_origin(hint) is Annotated and get_args(hint)[0] is model):
            return True
    return False


def create_resolver(function: FunctionSpec, *, idempotency: bool = False) -> ServiceResolver:
    """The resolver of `function`: REST API (v1 proxy) events, request validation, the service's errors;
    `idempotency`: also the answers to powertools idempotency's errors (the submit function)."""
    app = ServiceResolver(function)

    @app.exception_handler(PtValidationError)
    def _invalid(exc: PtValidationError) -> Response:
        if app.current_event.body is not None and not _is_json(app.current_event.headers.get("content-type")):
            return _content_type(RequestUnsupportedContentType(_SEND_JSON, errors=[]))
        return validation_error(list(exc.errors()))

    @app.exception_handler(RequestUnsupportedContentType)
    def _content_type(exc: RequestUnsupportedContentType) -> Response:
        return json_error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "UnsupportedContentType", _SEND_JSON)

    @app.exception_handler(ValueError)
    def _unreadable_body(exc: ValueError) -> Response:
        # Raised by powertools while it reads the body, before any route code: a form or multipart body
        # it cannot parse (no boundary), or bytes that are not UTF-8. Anything else is a bug.
        content_type = (app.current_event.headers.get("content-type") or "").strip().lower()
        if content_type and not content_type.startswith(content_types.APPLICATION_JSON):
            return _content_type(RequestUnsupportedContentType(str(exc), errors=[]))
        if isinstance(exc, UnicodeDecodeError):
            return json_error(400, "InvalidJSON", "the request body is not UTF-8 text; send it as JSON in UTF-8")
        return _bug(exc)

    @app.exception_handler(ServiceError)
    def _service_error(exc: ServiceError) -> Response:
        if exc.status >= 500:
            logger.warning("dependency unavailable", extra={"error_type": exc.code, "reason": exc.message})
        headers = {"Retry-After": "5"} if exc.status == 503 else None
        headers = {**(headers or {}), **exc.headers} or None
        errors = exc.errors if exc.status == 422 else None
        return json_error(exc.status, exc.code, exc.message, field=exc.field, headers=headers, errors=errors)

    @app.exception_handler(EngineError)
    def _engine_error(exc: EngineError) -> Response:
        return json_error(400, exc.code, exc.message, line=exc.line)

    @app.exception_handler([ClientError, BotoCoreError])
    def _aws_unavailable(exc: Exception) -> Response:
        logger.exception("AWS call failed")
        return json_error(
            503,
            "ServiceUnavailable",
            "the service could not reach its storage (throttled or unavailable); retry in a few seconds",
            headers={"Retry-After": "5"},
        )

    @app.not_found
    def _no_route(exc: NotFoundError) -> Response:
        event = app.current_event
        return json_error(
            404, "RouteNotFound", f"no route {event.http_method} {event.path}; see {OPENAPI_DOCUMENT.path}"
        )

    @app.exception_handler(Exception)
    def _bug(exc: Exception) -> Response:
        logger.exception("unhandled error")
        request_id = app.current_event.request_context.request_id
        return json_error(
            500,
            "InternalError",
            f"the service failed unexpectedly; report request id {request_id} if it persists",
        )

    if idempotency:
        _answer_idempotency_errors(app)
    return app


def _answer_idempotency_errors(app: APIGatewayRestResolver) -> None:
    # Imported here: `aws_lambda_powertools.utilities.idempotency` loads its DynamoDB layer and with it
    # boto3 (about 0.1 s of cold start), which only the submit function needs.
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    @app.exception_handler(IdempotencyValidationError)
    def _idempotency_reused(exc: IdempotencyValidationError) -> Response:
        return json_error(
            422,
            "IdempotencyKeyReused",
            f"this {IDEMPOTENCY_HEADER} was already used with a different request body; "
            "use a new key for a different backtest",
            field=IDEMPOTENCY_HEADER,
        )

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def _idempotency_busy(exc: IdempotencyAlreadyInProgressError) -> Response:
        return json_error(
            409,
            "IdempotencyKeyInProgress",
            f"a request with this {IDEMPOTENCY_HEADER} is still being processed; retry in a few seconds",
            headers={"Retry-After": "2"},
        )


def current_caller(app: APIGatewayRestResolver) -> Caller:
    """The authenticated caller of the request being handled (401 when there is none)."""
    return caller_from_event(app.current_event.raw_event)
