"""The REST API: the routes of `backtest_service.routes` to the three API functions, authorization, CORS,
throttling, validation, logs.

What is enforced where:
- API Gateway: the caller's identity (Cognito ID token or IAM SigV4), CORS preflight against the
  configured origins, rate limits (stage-wide and tighter on submit), a body that is a JSON object on
  submit (400 otherwise), a path parameter on status, and its own 10 MB payload maximum.
- The functions: every field of the request (422), the 64 KiB strategy-code limit (413), dates and bar
  counts (422), ownership of jobs (404 for someone else's), idempotency keys.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from backtest_service.routes import ROUTES, SUBMIT_BACKTEST, SUBMIT_OPTIMIZATION, Route
from infra.config import StageConfig
from infra.nag import acknowledge
from infra.parts.auth import Auth
from infra.parts.functions import Functions

ALLOW_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Amz-Date",
    "X-Amz-Security-Token",
    "X-Amz-Content-Sha256",
]
# One JSON line per request; values are strings so an absent value ("-") still parses.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "caller": "$context.identity.userArn",
    "user": "$context.authorizer.claims.sub",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "path": "$context.path",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatencyMs": "$context.responseLatency",
    "integrationStatus": "$context.integration.status",
    "integrationLatencyMs": "$context.integration.latency",
    "errorType": "$context.error.responseType",
    "errorMessage": "$context.error.message",
    "xrayTraceId": "$context.xrayTraceId",
}
# Gateway-generated errors use the service's error body ({success: false, error: {type, message}}).
_ERROR_TEMPLATE = '{"success":false,"error":{"type":"$context.error.responseType","message":%s}}'
BAD_BODY_MESSAGE = (
    "the request body must be a JSON object sent with Content-Type: application/json, "
    'e.g. {"strategy_code": "def generate_signals(data, params): ..."}'
)


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        functions: Functions,
        auth: Auth | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config

        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=config.log_retention, removal_policy=config.removal_policy
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=config.resource_prefix,
            description="Backtest service: submit strategies, poll jobs, list symbols and metrics",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # API Gateway writes access and execution logs through one role per account and region.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=list(config.allowed_origins),
                allow_methods=[*sorted({route.method for route in ROUTES}), "OPTIONS"],
                allow_headers=ALLOW_HEADERS,
            ),
            deploy_options=apigw.StageOptions(
                stage_name=config.stage,
                tracing_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
                # Execution logs for errors only, and never request bodies (they hold strategy code).
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                throttling_rate_limit=config.throttle_rate,
                throttling_burst_limit=config.throttle_burst,
                method_options={
                    f"{route.path}/{route.method}": apigw.MethodDeploymentOptions(
                        throttling_rate_limit=config.submit_throttle_rate,
                        throttling_burst_limit=config.submit_throttle_burst,
                    )
                    # Submitting an optimization (issue 14) queues up to hours of compute: the submit's limits.
                    for route in (SUBMIT_BACKTEST, SUBMIT_OPTIMIZATION)
                },
            ),
        )
        # The stack publishes the URL as its stable `ApiUrl` output; drop CDK's duplicate `Endpoint` one.
        self.rest_api.node.try_remove_child("Endpoint")
        self._acknowledge_shared()
        self._gateway_responses()

        self.usage_plan = self.rest_api.add_usage_plan(
            "UsagePlan",
            name=config.resource_prefix,
            description="Limits for callers given an API key (none are issued by default)",
            throttle=apigw.ThrottleSettings(rate_limit=config.throttle_rate, burst_limit=config.throttle_burst),
            quota=apigw.QuotaSettings(limit=config.monthly_quota, period=apigw.Period.MONTH),
        )
        self.usage_plan.add_api_stage(stage=self.rest_api.deployment_stage)

        authorizer = (
            apigw.CognitoUserPoolsAuthorizer(
                self,
                "Authorizer",
                cognito_user_pools=[auth.user_pool],
                identity_source=apigw.IdentitySource.header("Authorization"),
            )
            if auth is not None
            else None
        )
        self._secured = self._secured_options(authorizer)
        # One validator for both checks: a method without a model or declared parameters has nothing
        # for the other half to check.
        self._validator = self.rest_api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True
        )
        self._models: dict[type, apigw.Model] = {}
        integrations = {spec: self._integration(function) for spec, function in functions.by_spec.items()}
        for route in ROUTES:
            method = self._method(route, integrations[route.function])
            if route.auth == "public":
                # Liveness and the API's own documentation: nothing about any caller or job.
                for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
                    acknowledge(
                        method,
                        rule,
                        "Deliberately public: GET /health (liveness for probes) and the OpenAPI document and "
                        "Swagger UI, which describe the API and return nothing about callers or jobs.",
                    )
        for method in self.rest_api.methods:
            if method.http_method == "OPTIONS":
                # CDK adds a preflight method under every resource; browsers send it without credentials.
                for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
                    acknowledge(method, rule, "CORS preflight (OPTIONS): browsers send it without credentials.")
            elif auth is None:
                acknowledge(
                    method,
                    "AwsSolutions-COG4",
                    "authMode=iam: service callers sign requests with SigV4 (AWS_IAM authorization) "
                    "instead of presenting a Cognito token.",
                )

    def _method(self, route: Route, integration: apigw.LambdaIntegration) -> apigw.Method:
        """The route's method: its authorization, and API Gateway's checks of its body and path."""
        options: dict[str, Any] = dict(self._secured) if route.auth == "caller" else {}
        if route.body is not None:
            options["request_validator"] = self._validator
            options["request_models"] = {"application/json": self._body_model(route)}
        if route.path_parameters:
            options["request_validator"] = self._validator
            options["request_parameters"] = {f"method.request.path.{name}": True for name in route.path_parameters}
        resource = self.rest_api.root.resource_for_path(route.path)
        return resource.add_method(route.method, integration, **options)

    def _body_model(self, route: Route) -> apigw.Model:
        """API Gateway's check of a route's body: a JSON object (its fields are the function's to validate)."""
        assert route.body is not None
        if route.body not in self._models:
            name = route.body.__name__.removesuffix("Request") + "Body"  # SubmitRequest → SubmitBody
            self._models[route.body] = self.rest_api.add_model(
                name,
                content_type="application/json",
                model_name=name,
                description=f"A JSON object; its fields are validated by the {route.function.name} function",
                schema=apigw.JsonSchema(
                    schema=apigw.JsonSchemaVersion.DRAFT4, title=name, type=apigw.JsonSchemaType.OBJECT
                ),
            )
        return self._models[route.body]

    def _secured_options(self, authorizer: apigw.IAuthorizer | None) -> dict[str, Any]:
        if authorizer is None:
            return {"authorization_type": apigw.AuthorizationType.IAM}
        return {"authorization_type": apigw.AuthorizationType.COGNITO, "authorizer": authorizer}

    @staticmethod
    def _integration(function: lambda_.IFunction) -> apigw.LambdaIntegration:
        # No extra permission for the console's test-invoke; proxy: the function shapes the response.
        return apigw.LambdaIntegration(function, proxy=True, allow_test_invoke=False)

    def _gateway_responses(self) -> None:
        origins = self._config.allowed_origins
        # The functions answer with "*" (tokens travel in a header, not cookies); the origin allowlist
        # is enforced by the preflight every authenticated call needs. A single configured origin is
        # echoed exactly.
        headers = {
            "Access-Control-Allow-Origin": f"'{origins[0]}'" if len(origins) == 1 else "'*'",
            "Access-Control-Allow-Headers": "'{}'".format(",".join(ALLOW_HEADERS)),
        }
        for response_type, message in (
            (apigw.ResponseType.BAD_REQUEST_BODY, json.dumps(BAD_BODY_MESSAGE)),
            (apigw.ResponseType.DEFAULT_4_XX, "$context.error.messageString"),
            (apigw.ResponseType.DEFAULT_5_XX, "$context.error.messageString"),
        ):
            self.rest_api.add_gateway_response(
                f"{response_type.response_type.title().replace('_', '')}Response",
                type=response_type,
                response_headers=headers,
                templates={"application/json": _ERROR_TEMPLATE % message},
            )

    def _acknowledge_shared(self) -> None:
        rest = self.rest_api
        if not self._config.waf:
            acknowledge(
                rest.deployment_stage,
                "AwsSolutions-APIG3",
                "No WAF web ACL in this stage (context waf=false; prod has one by default): callers are "
                "authenticated and throttled per stage and per route, and the web ACL costs about $9/month plus "
                "per-request fees (docs/DEPLOY.md).",
            )
        acknowledge(
            rest.node.find_child("CloudWatchRole"),
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "The account-level API Gateway logging role needs exactly this AWS-maintained policy (create "
            "and write log groups for API Gateway); it has no data access.",
        )
