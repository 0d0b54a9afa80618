"""The route table (`backtest_service.routes`) is the one declaration of the HTTP API: each API function
answers exactly its routes, refuses at cold start to serve another's, and the local API Gateway routes
every one to its function (the CDK side: tests/infra/test_stack.py; the OpenAPI side: tools/openapi.py)."""

from __future__ import annotations

from typing import Annotated

import pytest
from aws_lambda_powertools.event_handler.openapi.params import Body

from backtest_service import routes, topology
from backtest_service.api_models import SubmitRequest
from backtest_service.rest import create_resolver
from local.events import api_event
from local.lambda_runtime import load_handler_module
from local.stack import LocalStack
from tests.support import Api

pytestmark = pytest.mark.xdist_group("integration")

API_FUNCTIONS = sorted({route.function for route in routes.ROUTES}, key=lambda spec: spec.name)


@pytest.mark.parametrize("function", API_FUNCTIONS, ids=lambda spec: spec.name)
def test_each_api_function_answers_exactly_its_routes(stack: LocalStack, function: topology.FunctionSpec) -> None:
    app = load_handler_module(function.name).app
    assert app.function == function
    assert app.registered() == {(route.method, route.path) for route in routes.routes_of(function)}


def test_a_function_refuses_at_cold_start_to_serve_another_functions_route() -> None:
    app = create_resolver(topology.STATUS)
    with pytest.raises(ValueError, match="served by submit, not by status"):
        app.serve(routes.SUBMIT_BACKTEST)


def test_a_route_with_a_body_needs_a_handler_taking_its_model() -> None:
    app = create_resolver(topology.SUBMIT)

    def no_body() -> None: ...

    def with_body(request: Annotated[SubmitRequest, Body()]) -> None: ...

    with pytest.raises(TypeError, match="must take a SubmitRequest body"):
        app.serve(routes.SUBMIT_BACKTEST)(no_body)
    assert app.serve(routes.SUBMIT_BACKTEST)(with_body) is with_body


@pytest.mark.parametrize("route", routes.ROUTES, ids=str)
def test_the_local_api_gateway_routes_every_route_to_its_function(stack: LocalStack, route: routes.Route) -> None:
    path = route.path.replace("{execution_id}", "no-such-job")
    body = {"strategy_code": "x"} if route.body else None
    res = Api(stack).call(route.method, path, body=body)
    if res.status in (404, 405):
        assert res.error["type"] not in ("RouteNotFound", "MethodNotAllowed"), res.body
    event = api_event(route.method, path)
    assert (event["resource"], event["pathParameters"]) == (route.path, route.match(path) or None)
    # API Gateway authorizes nobody on a public route: the event carries no caller there.
    assert (event["requestContext"]["authorizer"] is None) == (route.auth == "public")


def test_unknown_paths_are_404_and_known_paths_with_another_method_405(stack: LocalStack) -> None:
    api = Api(stack)
    assert api.call("GET", "/api/backtest/nope").error["type"] == "RouteNotFound"
    wrong = api.call("DELETE", routes.SUBMIT_BACKTEST.path)
    assert (wrong.status, wrong.error["type"]) == (405, "MethodNotAllowed")
    assert wrong.headers["Allow"] == "POST, OPTIONS"
