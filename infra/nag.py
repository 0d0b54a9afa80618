"""cdk-nag (v3) glue: register the AwsSolutions pack and acknowledge findings, each with its reason.

cdk-nag 3 runs as a CDK policy-validation plugin: a finding that is not acknowledged fails synthesis
(`cdk synth`, `python infra/app.py` and every `Template.from_stack` alike) and is listed in
`policy-validation-report.json`. Acknowledgments (`Validations.of(scope).acknowledge`) cover the scope
and its children, one finding id each: `AwsSolutions-IAM5[Resource::*]`, not `AwsSolutions-IAM5`.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def add_checks(scope: IConstruct) -> None:
    Validations.of(scope).add_plugins(
        AwsSolutionsChecks(scope, verbose=True, write_suppressions_to_cloud_formation=True)
    )


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def wildcard_resource(element: CfnElement, attribute: str, suffix: str) -> str:
    """The IAM5 finding for `Fn::Join [GetAtt element.attribute, suffix]`, as cdk-nag spells it."""
    return f"AwsSolutions-IAM5[Resource::<{Stack.of(element).get_logical_id(element)}.{attribute}>{suffix}]"
