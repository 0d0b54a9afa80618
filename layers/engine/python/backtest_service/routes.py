"""The HTTP API's routes, declared once (DESIGN.md "HTTP API"): method, path, the function serving it, who
may call it and the model of its body.

Everything that knows a route reads it here: the API functions' resolvers (`rest.ServiceResolver.serve`),
the API Gateway construct (`infra/parts/api.py`: resources, methods, authorizers, request validation),
the local API Gateway (`local/events.py`: routing, path parameters, 404/405, CORS preflight), the
OpenAPI tool (`tools/openapi.py`) and the tests. Adding a route is one entry in `ROUTES` plus its
handler function.

No numpy, no pandas: the API functions import this at cold start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from backtest_service.api_models import SubmitRequest, UpdateRequest
from backtest_service.dataset_models import CreateDatasetRequest
from backtest_service.optimization_models import OptimizationSubmitRequest
from backtest_service.topology import (
    API_PREFIX,
    DATASETS,
    OPTIMIZATIONS,
    RESULTS,
    STATUS,
    SUBMIT,
    SYMBOLS,
    FunctionSpec,
)

# caller: API Gateway authenticates the caller (the stack's Cognito authorizer, or IAM SigV4 in
# authMode=iam) and the function reads who it is; public: no authorization, nothing about any caller.
Auth = Literal["caller", "public"]
_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway's resource template, e.g. /api/backtest/status/{execution_id}
    function: FunctionSpec  # the function (folder of functions/) that serves it
    auth: Auth = "caller"
    body: type[BaseModel] | None = None  # the JSON object the body must be, validated by this model
    documented: bool = True  # listed in the OpenAPI document (the document and its UI are not)
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        object.__setattr__(self, "_pattern", re.compile(f"^{regex}$"))

    @property
    def path_parameters(self) -> tuple[str, ...]:
        return tuple(_PARAMETER.findall(self.path))

    @property
    def resolver_rule(self) -> str:
        """The path in powertools' resolver syntax (`<name>` for a path parameter)."""
        return _PARAMETER.sub(r"<\1>", self.path)

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters when `path` is an instance of this route's template, else None."""
        found = self._pattern.match(path)
        return found.groupdict() if found else None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, base: str, **parameters: str) -> str:
        """This route's absolute URL under `base` (the API's root, see `links`) with its path parameters."""
        path = self.path
        for name in self.path_parameters:
            path = path.replace(f"{{{name}}}", parameters[name])
        return f"{base}{path}"


SUBMIT_BACKTEST = Route("POST", f"{API_PREFIX}/run", SUBMIT, body=SubmitRequest)
VALIDATE_BACKTEST = Route("POST", f"{API_PREFIX}/validate", SUBMIT, body=SubmitRequest)
GET_STATUS = Route("GET", f"{API_PREFIX}/status/{{execution_id}}", STATUS)
LIST_EXECUTIONS = Route("GET", f"{API_PREFIX}/executions", STATUS)
CANCEL_EXECUTION = Route("POST", f"{API_PREFIX}/executions/{{execution_id}}/cancel", STATUS)
UPDATE_EXECUTION = Route("PATCH", f"{API_PREFIX}/executions/{{execution_id}}", STATUS, body=UpdateRequest)
DELETE_EXECUTION = Route("DELETE", f"{API_PREFIX}/executions/{{execution_id}}", STATUS)
GET_EQUITY = Route("GET", f"{API_PREFIX}/executions/{{execution_id}}/equity", RESULTS)
GET_TRADES = Route("GET", f"{API_PREFIX}/executions/{{execution_id}}/trades", RESULTS)
MARKET_DATA_SYMBOLS = Route("GET", f"{API_PREFIX}/market-data/symbols", SYMBOLS)
METRIC_DEFINITIONS = Route("GET", f"{API_PREFIX}/performance-metrics/definitions", SYMBOLS)
HEALTH = Route("GET", "/health", SYMBOLS, auth="public")
OPENAPI_DOCUMENT = Route("GET", f"{API_PREFIX}/openapi.json", SYMBOLS, auth="public", documented=False)
SWAGGER_UI = Route("GET", f"{API_PREFIX}/docs", SYMBOLS, auth="public", documented=False)
# The caller's own market data (datasets.py).
CREATE_DATASET = Route("POST", f"{API_PREFIX}/datasets", DATASETS, body=CreateDatasetRequest)
LIST_DATASETS = Route("GET", f"{API_PREFIX}/datasets", DATASETS)
GET_DATASET = Route("GET", f"{API_PREFIX}/datasets/{{dataset_id}}", DATASETS)
DELETE_DATASET = Route("DELETE", f"{API_PREFIX}/datasets/{{dataset_id}}", DATASETS)

# ---- parameter optimizations (issue 14) ----
SUBMIT_OPTIMIZATION = Route("POST", f"{API_PREFIX}/optimizations", OPTIMIZATIONS, body=OptimizationSubmitRequest)
ESTIMATE_OPTIMIZATION = Route(
    "POST", f"{API_PREFIX}/optimizations/estimate", OPTIMIZATIONS, body=OptimizationSubmitRequest
)
LIST_OPTIMIZATIONS = Route("GET", f"{API_PREFIX}/optimizations", OPTIMIZATIONS)
GET_OPTIMIZATION = Route("GET", f"{API_PREFIX}/optimizations/{{optimization_id}}", OPTIMIZATIONS)
CANCEL_OPTIMIZATION = Route("POST", f"{API_PREFIX}/optimizations/{{optimization_id}}/cancel", OPTIMIZATIONS)
OPTIMIZATION_ROUTES = (
    SUBMIT_OPTIMIZATION,
    ESTIMATE_OPTIMIZATION,
    LIST_OPTIMIZATIONS,
    GET_OPTIMIZATION,
    CANCEL_OPTIMIZATION,
)

ROUTES: tuple[Route, ...] = (
    SUBMIT_BACKTEST,
    VALIDATE_BACKTEST,
    GET_STATUS,
    LIST_EXECUTIONS,
    CANCEL_EXECUTION,
    UPDATE_EXECUTION,
    DELETE_EXECUTION,
    GET_EQUITY,
    GET_TRADES,
    MARKET_DATA_SYMBOLS,
    METRIC_DEFINITIONS,
    HEALTH,
    OPENAPI_DOCUMENT,
    SWAGGER_UI,
    CREATE_DATASET,
    LIST_DATASETS,
    GET_DATASET,
    DELETE_DATASET,
    *OPTIMIZATION_ROUTES,
)


def routes_of(function: FunctionSpec) -> tuple[Route, ...]:
    """The routes `function` serves."""
    return tuple(route for route in ROUTES if route.function == function)


def match_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route serving `method path` and its path parameters; None when no route does."""
    for route in ROUTES:
        if route.method == method.upper() and (parameters := route.match(path)) is not None:
            return route, parameters
    return None


def allowed_methods(path: str) -> list[str]:
    """The methods some route serves at `path` (what a CORS preflight and a 405 answer list)."""
    return sorted({route.method for route in ROUTES if route.match(path) is not None})
