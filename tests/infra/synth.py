"""Build the stack for the infra tests and find resources through the template, never by hashed id."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from aws_cdk import App
from aws_cdk.assertions import Template

from infra.config import CONTEXT_KEY, MailwrightConfig
from infra.context import ALLOW_PLACEHOLDERS_KEY, deployment_config
from infra.nag import add_checks
from infra.stack import MailwrightStack
from mailwright.constants import SEND_WORKER_HANDLER, Env, Outputs

REPO_ROOT = Path(__file__).resolve().parents[2]

Resource = dict[str, Any]


@dataclass(frozen=True)
class Synthesized:
    """One synthesized stack, with lookups that go through the template, never through hashed ids."""

    config: MailwrightConfig
    stack: MailwrightStack
    template: Template
    outdir: Path

    @property
    def json(self) -> dict[str, Any]:
        """The template as a dict."""
        return cast(dict[str, Any], self.template.to_json())

    def resources(self, resource_type: str) -> dict[str, Resource]:
        """All resources of one type, by logical id."""
        return cast(dict[str, Resource], self.template.find_resources(resource_type))

    def output_ref(self, key: str) -> str:
        """The logical id an output refers to (by Ref or Fn::GetAtt)."""
        value = self.json["Outputs"][key]["Value"]
        return str(value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0])

    def workers(self) -> dict[str, tuple[str, Resource]]:
        """Each lane's worker function as (logical id, resource), found by its lane variable."""
        found = {}
        for logical_id, resource in self.resources("AWS::Lambda::Function").items():
            props = resource["Properties"]
            if props.get("Handler") == SEND_WORKER_HANDLER:
                found[props["Environment"]["Variables"][Env.LANE]] = (logical_id, resource)
        return found

    def secret_id(self, described_as: str) -> str:
        """The logical id of the one secret whose description mentions `described_as`."""
        (found,) = [
            logical_id
            for logical_id, resource in self.resources("AWS::SecretsManager::Secret").items()
            if described_as in resource["Properties"].get("Description", "")
        ]
        return found

    def queue_of(self, lane: str) -> tuple[str, Resource]:
        """A lane's main queue, found through its output."""
        logical_id = self.output_ref(Outputs.queue_url(lane))
        return logical_id, self.resources("AWS::SQS::Queue")[logical_id]


def synthesize(outdir: Path, **overrides: Any) -> Synthesized:
    """Build the stack from cdk.json's context, with `mailwright` settings overridden (merged as `-c` merges).

    As app.py does: the settings go through `deployment_config` (cdk.json's placeholders allowed, as
    `make synth` allows them), and cdk-nag runs, so a finding nobody acknowledged fails this synth,
    and with it every infra test.
    """
    context = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    app = App(context=context, outdir=str(outdir))
    add_checks(app)
    # Straight to the merge, not through the App: jsii drops the None of an override such as
    # {"reserved_concurrency": None} from context objects (a -c value is a string, and keeps it).
    config = deployment_config(context[CONTEXT_KEY], {CONTEXT_KEY: overrides, ALLOW_PLACEHOLDERS_KEY: True})
    stack = MailwrightStack(app, config.stack_name, config=config)
    return Synthesized(config=config, stack=stack, template=Template.from_stack(stack), outdir=outdir)


# What Tracing.ACTIVE adds to a function's role, on "*": X-Ray has no resource-level permissions.
XRAY_ACTIONS = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})


def as_list(value: Any) -> list[Any]:
    """A statement's Action or Resource as a list."""
    return value if isinstance(value, list) else [value]


def role_statements(synthesized: Synthesized, function: Resource) -> list[dict[str, Any]]:
    """Every statement of every IAM policy attached to a function's role."""
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def is_tracing_statement(statement: dict[str, Any]) -> bool:
    """Whether a statement is exactly the X-Ray grant: both actions, nothing else, on "*"."""
    return (
        statement.get("Effect") == "Allow"
        and set(as_list(statement["Action"])) == XRAY_ACTIONS
        and as_list(statement["Resource"]) == ["*"]
        and "Condition" not in statement
    )


def without_tracing(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The statements other than the X-Ray grant, after checking the role has at most one X-Ray grant.

    One when the stack traces its functions (the `tracing` setting), none when not: test_infra_tracing checks which.
    """
    tracing = [s for s in statements if is_tracing_statement(s)]
    assert len(tracing) <= 1, f"expected at most one X-Ray statement, got {tracing}"
    others = [s for s in statements if not is_tracing_statement(s)]
    assert not any(a.startswith("xray:") for s in others for a in as_list(s["Action"])), others
    return others


def render(value: Any) -> Any:
    """Flatten Fn::Join, Ref and Fn::GetAtt into `${...}` strings so ARNs compare as text."""
    if isinstance(value, list):
        return [render(item) for item in value]
    if isinstance(value, dict):
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(render(part)) for part in parts)
        if "Ref" in value:
            return "${" + value["Ref"] + "}"
        if "Fn::GetAtt" in value:
            return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    return value
