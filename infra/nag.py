"""cdk-nag acknowledgements: each names a rule (or one exact finding) and a specific reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct


def ack(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag rule (or one `Rule[finding]`) on scope and its children."""
    if len(reason) < 20:
        raise ValueError(f"acknowledgement of {rule} needs a specific reason, got {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def ack_all(scope: IConstruct, rules: dict[str, str]) -> None:
    for rule, reason in rules.items():
        ack(scope, rule, reason)


def managed_policy_finding(policy: str) -> str:
    """IAM4 finding id of an AWS managed policy ('service-role/AWSLambdaBasicExecutionRole')."""
    return f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{policy}]"


def wildcard_finding(resource: str) -> str:
    """The IAM5 finding id of a wildcard resource as cdk-nag renders it."""
    return f"AwsSolutions-IAM5[Resource::{resource}]"


def arn_of(construct: IConstruct) -> str:
    """How cdk-nag renders `Fn::GetAtt [<logical id>, Arn]` of construct's resource."""
    return f"<{logical_id(construct)}.Arn>"


def logical_id(construct: IConstruct) -> str:
    default = construct.node.default_child
    assert isinstance(default, CfnElement), f"{construct.node.path} has no CloudFormation resource"
    return Stack.of(construct).get_logical_id(default)
