"""The REST API: routes to the three API functions, authorization, CORS, throttling, validation, logs.

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

from backtest_service.topology import API_PREFIX
from infra.config import StageConfig
from infra.nag import acknowledge
from infra.parts.auth import Auth
from infra.parts.functions import Functions

SUBMIT_PATH = f"{API_PREFIX}/run"
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
                allow_methods=["GET", "POST", "OPTIONS"],
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
                    f"{SUBMIT_PATH}/POST": apigw.MethodDeploymentOptions(
                        throttling_rate_limit=config.submit_throttle_rate,
                        throttling_burst_limit=config.submit_throttle_burst,
                    )
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
        secured = self._secured_options(authorizer)
        # One validator for both checks: a method without a model or declared parameters has nothing
        # for the other half to check.
        validator = self.rest_api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True
        )
        submit_body = self.rest_api.add_model(
            "SubmitBody",
            content_type="application/json",
            model_name="SubmitBody",
            description="A JSON object; its fields are validated by the submit function",
            schema=apigw.JsonSchema(
                schema=apigw.JsonSchemaVersion.DRAFT4, title="SubmitBody", type=apigw.JsonSchemaType.OBJECT
            ),
        )

        submit = self._integration(functions.submit)
        status = self._integration(functions.status)
        symbols = self._integration(functions.symbols)

        root = self.rest_api.root
        prefix = root.resource_for_path(API_PREFIX)
        prefix.add_resource("run").add_method(
            "POST",
            submit,
            request_validator=validator,
            request_models={"application/json": submit_body},
            **secured,
        )
        prefix.add_resource("status").add_resource("{execution_id}").add_method(
            "GET",
            status,
            request_validator=validator,
            request_parameters={"method.request.path.execution_id": True},
            **secured,
        )
        prefix.add_resource("executions").add_method("GET", status, **secured)
        prefix.resource_for_path("market-data/symbols").add_method("GET", symbols, **secured)
        prefix.resource_for_path("performance-metrics/definitions").add_method("GET", symbols, **secured)

        # Public: liveness and the API's own documentation (nothing about any caller or job).
        public = [
            root.add_resource("health").add_method("GET", symbols),
            prefix.add_resource("openapi.json").add_method("GET", symbols),
            prefix.add_resource("docs").add_method("GET", symbols),
        ]
        for method in public:
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
        acknowledge(
            rest.deployment_stage,
            "AwsSolutions-APIG3",
            "No WAF web ACL: callers are authenticated and throttled per stage and per route; a web ACL "
            "(about $6/month plus per-request fees) is the next step for a public launch (docs/DEPLOY.md).",
        )
        acknowledge(
            rest.node.find_child("CloudWatchRole"),
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "The account-level API Gateway logging role needs exactly this AWS-maintained policy (create "
            "and write log groups for API Gateway); it has no data access.",
        )
