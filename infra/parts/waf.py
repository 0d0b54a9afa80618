"""The WAF web ACL in front of the API stage (context `waf`, on by default in prod; docs/DEPLOY.md).

Rules, in the order WAF evaluates them:

1. `RateLimitPerIp`: a client IP that sends more than `config.waf_rate_limit` requests in 5 minutes is
   blocked with the service's own JSON error (429) until its rate falls back. API Gateway's stage and
   route throttling still applies below it; this one is per address, which API Gateway cannot do.
2. AWS managed rule groups: the Amazon IP reputation list (addresses AWS threat intelligence saw attack,
   scan or bot), known bad inputs (Log4j, Java deserialization, localhost Host headers...), and the core
   rule set (XSS, LFI/RFI, SSRF to the metadata address, missing User-Agent...). The core set's
   `SizeRestrictions_BODY` only counts: it blocks bodies over 8 KB, and a strategy may be 64 KiB.

Everything else is allowed. Each rule has its CloudWatch metric and sampled requests; the ACL logs to
the `aws-waf-logs-<prefix>` log group with the Authorization header redacted (request bodies are never
in WAF logs).
"""

from __future__ import annotations

import json

from aws_cdk import ArnFormat, Aws, Fn, Stack
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.config import StageConfig
from infra.parts.api import Api

# (rule group, rules of it that only count): what a rule counts is still in the metrics and logs.
MANAGED_RULE_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("AWSManagedRulesAmazonIpReputationList", ()),
    ("AWSManagedRulesKnownBadInputsRuleSet", ()),
    # Strategy code travels in the body of POST /run (up to 64 KiB): the 8 KB body limit would refuse it.
    ("AWSManagedRulesCommonRuleSet", ("SizeRestrictions_BODY",)),
)
RATE_RULE = "RateLimitPerIp"
RATE_WINDOW_SECONDS = 300
RATE_LIMITED_BODY = "rate-limited"
RATE_LIMITED_MESSAGE = (
    "too many requests from this address: wait a few minutes before retrying "
    "(the limit is per client IP over 5 minutes)"
)


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=True
    )


class Waf(Construct):
    """A regional web ACL associated with the REST API's stage, and its log group."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, api: Api) -> None:
        super().__init__(scope, construct_id)
        prefix = config.resource_prefix
        origins = config.allowed_origins
        cors_origin = origins[0] if len(origins) == 1 else "*"  # as the gateway's own error responses
        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name=RATE_RULE,
                priority=0,
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=config.waf_rate_limit,
                        aggregate_key_type="IP",
                        evaluation_window_sec=RATE_WINDOW_SECONDS,
                    )
                ),
                action=wafv2.CfnWebACL.RuleActionProperty(
                    block=wafv2.CfnWebACL.BlockActionProperty(
                        custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                            response_code=429,
                            custom_response_body_key=RATE_LIMITED_BODY,
                            response_headers=[
                                wafv2.CfnWebACL.CustomHTTPHeaderProperty(
                                    name="Access-Control-Allow-Origin", value=cors_origin
                                ),
                                wafv2.CfnWebACL.CustomHTTPHeaderProperty(
                                    name="Retry-After", value=str(RATE_WINDOW_SECONDS)
                                ),
                            ],
                        )
                    )
                ),
                visibility_config=_visibility(f"{prefix}-{RATE_RULE}"),
            )
        ]
        for priority, (group, counted) in enumerate(MANAGED_RULE_GROUPS, start=1):
            rules.append(
                wafv2.CfnWebACL.RuleProperty(
                    name=group,
                    priority=priority,
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS",
                            name=group,
                            rule_action_overrides=[
                                wafv2.CfnWebACL.RuleActionOverrideProperty(
                                    name=rule,
                                    action_to_use=wafv2.CfnWebACL.RuleActionProperty(
                                        count=wafv2.CfnWebACL.CountActionProperty()
                                    ),
                                )
                                for rule in counted
                            ]
                            or None,
                        )
                    ),
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    visibility_config=_visibility(f"{prefix}-{group}"),
                )
            )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=prefix,
            description=f"{prefix}: per-IP rate limit and AWS managed rules in front of the API",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            rules=rules,
            custom_response_bodies={
                RATE_LIMITED_BODY: wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON",
                    content=json.dumps(
                        {"success": False, "error": {"type": "TooManyRequests", "message": RATE_LIMITED_MESSAGE}}
                    ),
                )
            },
            visibility_config=_visibility(prefix),
        )
        self.association = wafv2.CfnWebACLAssociation(
            self,
            "Association",
            resource_arn=api.rest_api.deployment_stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )
        # WAF requires the log group's name to start with aws-waf-logs-; the stack id's GUID keeps a retained
        # (prod) group of an earlier stack from blocking a new one.
        stack = Stack.of(self)
        stack_guid = Fn.select(2, Fn.split("/", Aws.STACK_ID))
        log_group_name = Fn.join("-", [f"aws-waf-logs-{prefix}", stack_guid])
        self.logs = logs.LogGroup(
            self,
            "Logs",
            log_group_name=log_group_name,
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        self.logging = wafv2.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.web_acl.attr_arn,
            # The group's ARN without the ":*" that LogGroup.log_group_arn ends with: WAF refuses that form.
            log_destination_configs=[
                stack.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=self.logs.log_group_name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
            # ID tokens travel in the Authorization header: keep them out of the logs.
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": "authorization"})
            ],
        )
