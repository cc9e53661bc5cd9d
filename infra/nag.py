"""cdk-nag (AwsSolutions pack) wiring, and the one way this app acknowledges a finding: with its reason.

cdk-nag 3 runs as a CDK policy-validation plugin: a finding that is not
acknowledged fails the synth (`cdk synth`, `python3 app.py` and the infra
tests' synth alike). Acknowledgements sit beside the resource they are about,
each with the reason written out; `X-Ray` and CDK's own resources are the
usual ones. A wildcard finding is acknowledged one by one
(`AwsSolutions-IAM5[Resource::...]`), never for the whole rule.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

# Tracing needs these on "*": X-Ray has no resource-level permissions.
XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
XRAY_REASON = (
    "X-Ray tracing (Tracing.ACTIVE): xray:PutTraceSegments and xray:PutTelemetryRecords support no "
    "resource-level permissions, so their only resource is '*'; the statement grants nothing else."
)
LATEST_RUNTIME_REASON = (
    "Pinned to Python 3.12 on purpose: dependencies are installed for cp312/manylinux2014_aarch64 "
    "(infra/bundling.py); move the runtime and LAMBDA_PYTHON_VERSION together when upgrading."
)


def add_checks(app: App) -> None:
    """Run the AwsSolutions pack on every stack of `app`; any finding not acknowledged fails the synth."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on `scope` and everything under it, with the reason it is acceptable."""
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledging {rule} needs a real reason, got {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def acknowledge_tracing(role_scope: IConstruct) -> None:
    """Acknowledge the `Resource::*` of the X-Ray statement CDK adds to a traced function's role."""
    acknowledge(role_scope, "AwsSolutions-IAM5[Resource::*]", XRAY_REASON)


def acknowledged_rules(stack: Stack) -> list[tuple[str, str, str]]:
    """Every acknowledgement in `stack` as (construct path, rule, reason)."""
    found = []
    for construct in stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                continue
            # CDK keeps them as {"Annotation::<rule id>": reason}.
            for key, reason in dict(entry.data).items():
                found.append((construct.node.path, str(key).split("::", 1)[-1], str(reason)))
    return found
