"""The security options (infra/config.py: waf, wafRateLimit, mfa, threatProtection, kms), asserted on the
synthesized templates of tests/infra/infra_harness.py: Dev (defaults: no WAF, MFA optional, no threat
protection, AWS-managed keys), Prod (defaults: WAF on) and Hardened (prod with every option on)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from backtest_service.topology import FUNCTIONS, QUEUES, RUN_BACKTEST, STATUS, SUBMIT, SYMBOLS, TABLES
from infra.config import ConfigError, stage_config
from infra.parts.waf import MANAGED_RULE_GROUPS, RATE_RULE
from tests.infra.infra_harness import Synthesized
from tests.infra.test_stack import function_id, mentions, resources, role_statements

pytestmark = pytest.mark.xdist_group("infra")

Template = dict[str, Any]
PROD = {"stage": "prod", "allowedOrigins": "https://app.example.com"}


def the_one(template: Template, type_: str) -> tuple[str, dict[str, Any]]:
    (found,) = resources(template, type_).items()
    return found[0], found[1]["Properties"]


def web_acl(template: Template) -> dict[str, Any]:
    return the_one(template, "AWS::WAFv2::WebACL")[1]


def rules(template: Template) -> dict[str, dict[str, Any]]:
    return {rule["Name"]: rule for rule in web_acl(template)["Rules"]}


# ----------------------------------------------------------------------------------------------- WAF
def test_prod_has_a_web_acl_by_default_and_dev_none(dev: Template, prod: Template) -> None:
    assert stage_config(PROD).waf is True
    assert stage_config({}).waf is False
    assert stage_config({**PROD, "waf": "false"}).waf is False
    assert stage_config({"waf": "true"}).waf is True
    assert resources(dev, "AWS::WAFv2::WebACL") == {}
    assert resources(dev, "AWS::WAFv2::WebACLAssociation") == {}
    acl = web_acl(prod)
    assert acl["Scope"] == "REGIONAL"
    assert acl["DefaultAction"] == {"Allow": {}}


def test_the_web_acl_is_associated_with_the_api_stage(prod: Template) -> None:
    acl_id, _ = the_one(prod, "AWS::WAFv2::WebACL")
    (stage_id,) = resources(prod, "AWS::ApiGateway::Stage")
    (api_id,) = resources(prod, "AWS::ApiGateway::RestApi")
    _, association = the_one(prod, "AWS::WAFv2::WebACLAssociation")
    assert association["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    arn = json.dumps(association["ResourceArn"])
    # arn:aws:apigateway:<region>::/restapis/<api id>/stages/<stage name>
    assert ":apigateway:" in arn and "/restapis/" in arn and "/stages/" in arn
    assert mentions(association["ResourceArn"], api_id) and mentions(association["ResourceArn"], stage_id)


def test_the_rate_rule_comes_first_and_answers_429_in_the_service_error_shape(
    prod: Template, hardened: Template
) -> None:
    acl = web_acl(prod)
    rate = rules(prod)[RATE_RULE]
    assert rate["Priority"] == min(rule["Priority"] for rule in acl["Rules"]) == 0
    statement = rate["Statement"]["RateBasedStatement"]
    assert statement == {"Limit": 2000, "AggregateKeyType": "IP", "EvaluationWindowSec": 300}
    response = rate["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 429
    body = json.loads(acl["CustomResponseBodies"][response["CustomResponseBodyKey"]]["Content"])
    assert body["success"] is False and body["error"]["type"] == "TooManyRequests"

    # CORS as the gateway's own error responses: one configured origin is echoed, several give "*".
    def cors_origin(template: Template) -> str:
        block = rules(template)[RATE_RULE]["Action"]["Block"]["CustomResponse"]
        return str({h["Name"]: h["Value"] for h in block["ResponseHeaders"]}["Access-Control-Allow-Origin"])

    assert cors_origin(prod) == "*"  # two origins
    assert cors_origin(hardened) == "https://app.example.com"


def test_the_rate_limit_is_configurable_per_stage() -> None:
    assert stage_config({}).waf_rate_limit == 500
    assert stage_config(PROD).waf_rate_limit == 2000
    assert stage_config({**PROD, "wafRateLimit": "300"}).waf_rate_limit == 300
    with pytest.raises(ConfigError, match="at least 100"):
        stage_config({"wafRateLimit": "50"})
    with pytest.raises(ConfigError, match="whole number"):
        stage_config({"wafRateLimit": "lots"})
    with pytest.raises(ConfigError, match="true or false"):
        stage_config({"waf": "maybe"})


def test_the_managed_rule_groups_block_but_let_strategy_sized_bodies_through(prod: Template) -> None:
    by_name = rules(prod)
    assert set(by_name) == {RATE_RULE, *(group for group, _ in MANAGED_RULE_GROUPS)}
    assert {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    } <= set(by_name)
    for group, _ in MANAGED_RULE_GROUPS:
        rule = by_name[group]
        assert rule["Statement"]["ManagedRuleGroupStatement"]["VendorName"] == "AWS"
        assert rule["OverrideAction"] == {"None": {}}  # the group's own actions: block
        assert rule["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True
    # A strategy may be 64 KiB; the core set's 8 KB body rule only counts.
    overrides = by_name["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert overrides["RuleActionOverrides"] == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]


def test_waf_logs_to_its_own_group_without_tokens(prod: Template) -> None:
    acl_id, _ = the_one(prod, "AWS::WAFv2::WebACL")
    _, logging = the_one(prod, "AWS::WAFv2::LoggingConfiguration")
    assert logging["ResourceArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    assert logging["RedactedFields"] == [{"SingleHeader": {"Name": "authorization"}}]
    (destination,) = logging["LogDestinationConfigs"]
    groups = {k: v for k, v in resources(prod, "AWS::Logs::LogGroup").items() if mentions(destination, k)}
    ((_, group),) = groups.items()
    assert "aws-waf-logs-" in json.dumps(group["Properties"]["LogGroupName"])
    assert group["Properties"]["RetentionInDays"] == 90
    assert not json.dumps(destination).endswith(':*"')  # WAF refuses the ":*" form of a log group ARN


# ----------------------------------------------------------------------------------------------- Cognito
def test_mfa_and_threat_protection_defaults(dev: Template, prod: Template) -> None:
    for template in (dev, prod):
        _, pool = the_one(template, "AWS::Cognito::UserPool")
        assert pool["MfaConfiguration"] == "OPTIONAL"
        assert pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
        assert pool["UserPoolTier"] == "ESSENTIALS"
        assert "UserPoolAddOns" not in pool


def test_mfa_required_and_threat_protection_enforced(hardened: Template) -> None:
    _, pool = the_one(hardened, "AWS::Cognito::UserPool")
    assert pool["MfaConfiguration"] == "ON"
    assert pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert pool["UserPoolTier"] == "PLUS"  # threat protection needs the Plus plan
    assert pool["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}


def test_mfa_and_threat_protection_settings_are_checked() -> None:
    assert stage_config({"mfa": "off"}).mfa == "off"
    assert stage_config({"mfa": "Required"}).mfa == "required"
    assert stage_config({"threatProtection": "audit"}).threat_protection == "audit"
    with pytest.raises(ConfigError, match="mfa must be one of off, optional, required"):
        stage_config({"mfa": "sms"})
    with pytest.raises(ConfigError, match="threatProtection"):
        stage_config({"threatProtection": "on"})


def test_the_nag_acknowledgements_follow_the_options(synthesized: Synthesized) -> None:
    # Given the options that fix them, the findings are not acknowledged (so cdk-nag checks them for real).
    def acknowledged(variant: str) -> set[str]:
        return {
            rule["id"]
            for res in synthesized.json(variant)["Resources"].values()
            for rule in res.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
        }

    assert {"AwsSolutions-APIG3", "AwsSolutions-COG2", "AwsSolutions-COG8", "AwsSolutions-SNS2"} <= acknowledged("Dev")
    assert "AwsSolutions-APIG3" not in acknowledged("Prod")
    assert not {"AwsSolutions-APIG3", "AwsSolutions-COG2", "AwsSolutions-COG8", "AwsSolutions-SNS2"} & acknowledged(
        "Hardened"
    )


# ----------------------------------------------------------------------------------------------- KMS
def test_no_customer_managed_key_by_default(dev: Template, prod: Template) -> None:
    for template in (dev, prod):
        assert resources(template, "AWS::KMS::Key") == {}
        for queue in resources(template, "AWS::SQS::Queue").values():
            assert queue["Properties"]["SqsManagedSseEnabled"] is True


def test_kms_encrypts_queues_tables_topic_and_every_log_group(hardened: Template) -> None:
    key_id, key = the_one(hardened, "AWS::KMS::Key")
    assert key["EnableKeyRotation"] is True
    key_arn = {"Fn::GetAtt": [key_id, "Arn"]}
    queues = resources(hardened, "AWS::SQS::Queue")
    assert len(queues) == 2 * len(QUEUES)  # each queue and its DLQ
    for queue in queues.values():
        assert queue["Properties"]["KmsMasterKeyId"] == key_arn
        assert "SqsManagedSseEnabled" not in queue["Properties"]
    tables = resources(hardened, "AWS::DynamoDB::Table")
    assert len(tables) == len(TABLES)  # jobs, idempotency, datasets
    for table in tables.values():
        sse = table["Properties"]["SSESpecification"]
        assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS" and sse["KMSMasterKeyId"] == key_arn
    (topic,) = resources(hardened, "AWS::SNS::Topic").values()
    assert topic["Properties"]["KmsMasterKeyId"] == key_arn
    groups = resources(hardened, "AWS::Logs::LogGroup")
    assert len(groups) == len(FUNCTIONS) + 2  # the functions', the API's access logs, WAF's
    for group in groups.values():
        assert group["Properties"]["KmsKeyId"] == key_arn
    # Its policy lets CloudWatch Logs (for this account's log groups) and CloudWatch alarms use it.
    statements = key["KeyPolicy"]["Statement"]
    services = {json.dumps(st["Principal"].get("Service")) for st in statements if "Service" in st["Principal"]}
    assert any("logs." in s for s in services) and '"cloudwatch.amazonaws.com"' in services


def test_kms_is_granted_to_the_functions_that_touch_data(hardened: Template) -> None:
    key_id, _ = the_one(hardened, "AWS::KMS::Key")
    for spec in (SUBMIT, STATUS, RUN_BACKTEST):
        statements = role_statements(hardened, function_id(hardened, spec))
        on_key = {
            action
            for st in statements
            if mentions(st["Resource"], key_id)
            for action in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
        }
        assert {"kms:Decrypt", "kms:GenerateDataKey"} <= on_key, spec.name
        assert not any("*" in action for action in on_key)
    symbols = role_statements(hardened, function_id(hardened, SYMBOLS))
    assert not any(mentions(st["Resource"], key_id) for st in symbols)
