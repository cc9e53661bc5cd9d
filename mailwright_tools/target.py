"""Which stack a CLI command talks to: the running local stack, else a deployed one found by its outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from mailwright.constants import LANES, Env, Outputs
from mailwright_tools.project import Project, find_project
from mailwright_tools.state import StateDir, live_local_stack

# A lane's parked queue is listed beside its DLQ as `<lane>-parked` (`mailwright dlq --lane <lane>` takes both).
PARKED_SUFFIX = "-parked"


class TargetError(Exception):
    """No stack to talk to: none running locally, and the deployed one could not be read."""


@dataclass(frozen=True)
class Target:
    """Names and URLs of the stack a command works on."""

    kind: str  # "local" or "deployed"
    name: str
    region: str
    endpoint_url: str | None
    queues: dict[str, str]
    dlqs: dict[str, str]
    tables: dict[str, str]
    templates_bucket: str
    event_bus: str = ""
    ingest_dlq: str = ""
    feedback_queue: str = ""
    feedback_dlq: str = ""
    # Alarm state changes the reputation breaker never acted on (deployed stacks only).
    breaker_dlq: str = ""
    configuration_set: str = ""
    unsubscribe_url: str = ""
    # The address keyring: suppression commands and the migration hash addresses with it.
    address_key_secret: str = ""
    # Services served elsewhere than `endpoint_url` on the local stack ({"lambda": ...}: the lanes' mappings).
    service_endpoints: dict[str, str] = field(default_factory=dict)
    # Each lane's parked queue: its dead letters once recorded as failed (EmailFailed), waiting for redrive.
    parked_dlqs: dict[str, str] = field(default_factory=dict)
    # Webhook endpoints by name: url, detail_types, queue_url, dlq_url, secret_arn; their state table and archive.
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    webhook_state_table: str = ""
    webhook_archive_bucket: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # The EventBridge Scheduler group of scheduled sends (cancel and reschedule move or delete schedules there).
    schedule_group: str = ""
    # What EventBridge Scheduler could not put on a lane queue at a request's send_at (no source to redrive to).
    schedule_dlq: str = ""

    @property
    def local(self) -> bool:
        """Whether this is the local stack."""
        return self.kind == "local"

    def describe(self) -> str:
        """One line naming the target, for humans."""
        return f"local stack at {self.endpoint_url}" if self.local else f"stack {self.name} in {self.region}"

    def session(self) -> boto3.session.Session:
        """A boto3 session for this target (the local endpoint and throwaway credentials for the local stack)."""
        if self.local:
            from mailwright_tools.local.session import LocalSession

            return LocalSession(self.endpoint_url or "", self.region, service_endpoints=self.service_endpoints)
        return boto3.session.Session(region_name=self.region)

    def dead_letter_queues(self) -> dict[str, str]:
        """Every DLQ by name: the lanes', then `feedback`, `ingest` and `breaker` where the stack has them."""
        queues = dict(self.dlqs)
        for lane, url in self.parked_dlqs.items():
            queues[lane + PARKED_SUFFIX] = url
        if self.feedback_dlq:
            queues["feedback"] = self.feedback_dlq
        if self.ingest_dlq:
            queues["ingest"] = self.ingest_dlq
        if self.breaker_dlq:
            queues["breaker"] = self.breaker_dlq
        if self.schedule_dlq:
            queues["schedules"] = self.schedule_dlq
        return queues

    def source_queue(self, dlq_name: str) -> str | None:
        """The queue a DLQ's messages came from (None for the ingest DLQ: EventBridge delivery failures)."""
        dlq_name = dlq_name.removesuffix(PARKED_SUFFIX)
        if dlq_name == "feedback":
            return self.feedback_queue or None
        return self.queues.get(dlq_name)

    def feedback_environment(self) -> dict[str, str]:
        """What the feedback function reads from its environment, for running it here (feedback replay)."""
        return {
            Env.SUPPRESSION_TABLE: self.tables["suppression"],
            Env.MESSAGES_TABLE: self.tables["messages"],
            Env.ADDRESS_KEY_SECRET_ARN: self.address_key_secret,
        }


def default_stack_name(project: Project | None = None) -> str:
    """The stack name the project's cdk.json gives (`mailwright.stack_name`), else Mailwright.

    Without `project`, the one `find_project` finds (ProjectNotFoundError when there is none).
    """
    return (project or find_project()).stack_name()


def local_target(state: dict[str, Any]) -> Target:
    """The target described by a running local stack's `local.json`."""
    tables = state.get("tables", {})
    return Target(
        kind="local",
        name=str(state.get("stack_name", "local")),
        region=str(state.get("region", "us-east-1")),
        endpoint_url=str(state["endpoint_url"]),
        queues=dict(state.get("queues", {})),
        dlqs=dict(state.get("dlqs", {})),
        tables=dict(tables),
        templates_bucket=str(state.get("templates_bucket", "")),
        event_bus=str(state.get("event_bus", "")),
        ingest_dlq=str(state.get("ingest_dlq", "")),
        feedback_queue=str(state.get("feedback_queue", "")),
        feedback_dlq=str(state.get("feedback_dlq", "")),
        configuration_set=str(state.get("configuration_set", "")),
        unsubscribe_url=str(state.get("unsubscribe_url", "")),
        address_key_secret=str(state.get("address_key_secret_arn", "")),
        service_endpoints={"lambda": str(state["lambda_endpoint_url"])} if state.get("lambda_endpoint_url") else {},
        parked_dlqs=dict(state.get("parked_dlqs", {})),
        webhooks={str(name): dict(hook) for name, hook in (state.get("webhooks") or {}).items()},
        webhook_state_table=str(state.get("webhook_state_table", "")),
        webhook_archive_bucket=str(state.get("webhook_archive_bucket", "")),
        schedule_group=str(state.get("schedule_group", "")),
        schedule_dlq=str(state.get("schedule_dlq", "")),
        extra={
            "outbox": state.get("outbox", ""),
            "pid": state.get("pid"),
            "ses_rate": state.get("ses_max_send_rate"),
            "functions": dict(state.get("functions", {})),
            "reputation_alarms": list(state.get("reputation_alarms", [])),
            # Secondary providers and each lane's failover (`mailwright providers`), and the SES switch.
            "providers": list(state.get("providers", [])),
            "failover": dict(state.get("failover", {})),
            "ses_control_url": str(state.get("ses_control_url", "")),
            # The producers' API: its table, each producer's usage plan, the key-retirement role (`producers`).
            "producer_api": dict(state.get("producer_api", {})),
        },
    )


def deployed_target(stack_name: str, region: str | None = None) -> Target:
    """The target named by a deployed stack's CloudFormation outputs; TargetError when it cannot be read."""
    session = boto3.session.Session(region_name=region)
    try:
        client = session.client(
            "cloudformation", config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=3)
        )
        stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    except NoRegionError:
        raise TargetError(f"stack {stack_name!r}: no AWS region; pass --region or set AWS_DEFAULT_REGION") from None
    except (ClientError, BotoCoreError) as exc:
        raise TargetError(f"stack {stack_name!r} could not be read: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}

    def output(key: str | None) -> str:
        return outputs.get(key, "") if key else ""

    def optional(name: str) -> str:
        return output(getattr(Outputs, name, None))

    missing = [key for key in (Outputs.MESSAGES_TABLE, Outputs.queue_url("standard")) if key not in outputs]
    if missing:
        raise TargetError(f"stack {stack_name!r} has no outputs {', '.join(missing)}: is it a mailwright stack?")
    return Target(
        kind="deployed",
        name=stack_name,
        region=session.region_name or "us-east-1",
        endpoint_url=None,
        queues={lane: output(Outputs.queue_url(lane)) for lane in LANES if Outputs.queue_url(lane) in outputs},
        dlqs={lane: output(Outputs.dlq_url(lane)) for lane in LANES if Outputs.dlq_url(lane) in outputs},
        tables={
            "preferences": output(Outputs.PREFERENCES_TABLE),
            "suppression": output(Outputs.SUPPRESSION_TABLE),
            "idempotency": output(Outputs.IDEMPOTENCY_TABLE),
            "messages": output(Outputs.MESSAGES_TABLE),
        },
        templates_bucket=output(Outputs.TEMPLATES_BUCKET),
        event_bus=output(Outputs.EVENT_BUS_NAME),
        ingest_dlq=output(Outputs.INGEST_DLQ_URL),
        feedback_queue=optional("FEEDBACK_QUEUE_URL"),
        feedback_dlq=optional("FEEDBACK_DLQ_URL"),
        breaker_dlq=optional("BREAKER_DLQ_URL"),
        configuration_set=output(Outputs.CONFIGURATION_SET),
        unsubscribe_url=optional("UNSUBSCRIBE_URL"),
        address_key_secret=optional("ADDRESS_KEY_SECRET_ARN"),
        # Secondary providers (JSON outputs, only on stacks with `providers` in context).
        extra={
            "providers": optional("PROVIDERS"),
            "failover": optional("FAILOVER"),
            # The producers' API (stacks deployed before it have none).
            "producer_api": {
                "url": optional("PRODUCER_API_URL"),
                "api_id": optional("PRODUCER_API_ID"),
                "table": optional("PRODUCERS_TABLE"),
                "plans": optional("PRODUCER_PLANS"),
                "retirement_role_arn": optional("KEY_RETIREMENT_ROLE_ARN"),
                "partition": "aws-cn" if (session.region_name or "").startswith("cn-") else "aws",
            },
        },
        parked_dlqs={lane: url for lane in LANES if (url := output(Outputs.parked_dlq_url(lane)))},
        webhooks=_webhook_outputs(outputs),
        webhook_state_table=optional("WEBHOOK_STATE_TABLE"),
        webhook_archive_bucket=optional("WEBHOOK_ARCHIVE_BUCKET"),
        schedule_group=optional("SCHEDULE_GROUP"),
        schedule_dlq=optional("SCHEDULE_DLQ_URL"),
    )


def _webhook_outputs(outputs: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The webhook endpoints a deployed stack's outputs describe (one JSON output per endpoint)."""
    found: dict[str, dict[str, Any]] = {}
    for key, value in outputs.items():
        if not key.startswith(Outputs.WEBHOOK_ENDPOINT_PREFIX):
            continue
        try:
            endpoint = json.loads(value)
        except ValueError:
            continue
        if isinstance(endpoint, dict) and isinstance(endpoint.get("name"), str):
            found[endpoint["name"]] = endpoint
    return found


def resolve_target(
    state_dir: StateDir, *, stack_name: str | None = None, region: str | None = None, project_dir: Path | None = None
) -> Target:
    """The running local stack recorded in `state_dir`, else the deployed stack `stack_name` (default: cdk.json's).

    The default stack name is read from the project `project_dir` names or `find_project` finds
    (ProjectNotFoundError when there is none).
    """
    state = live_local_stack(state_dir)
    if state is not None and stack_name is None:
        return local_target(state)
    name = stack_name or default_stack_name(find_project(project_dir))
    try:
        return deployed_target(name, region)
    except TargetError as exc:
        hint = "" if stack_name else " No local stack is running either (start one with `mailwright local up`)."
        raise TargetError(f"{exc}.{hint}") from None
