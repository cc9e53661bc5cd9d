"""Pause, resume and inspect the lanes of a stack, deployed or local.

A lane is paused by disabling its worker's SQS event source mapping: its
queue keeps accepting requests, nothing consumes them, and they are sent once
the mapping is enabled again (within the queue's retention, 4 days). The
reputation circuit breaker pauses the bulk lane this way by itself; this
module is how an operator looks and resumes:

    control = LaneControl.for_stack("Mailwright", session=boto3.session.Session())
    [lane.state for lane in control.status()]   # ['Enabled', 'Enabled', 'Disabled']
    control.set_enabled("bulk", True)

Each lane's mapping is found through its worker, whose name the stack outputs
(`BulkWorkerName`...). The local stack's emulated mappings answer the same
Lambda calls on their own loopback endpoint (`mailwright_tools.local.lane_api`,
`lambda_endpoint_url` in local.json), so `LaneControl.for_target` works on both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from mailwright.constants import LANES, Outputs

if TYPE_CHECKING:
    from mailwright_tools.target import Target

# Mapping states in which a lane consumes nothing, or soon will not.
PAUSED_STATES = frozenset({"Disabled", "Disabling"})
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3)


class LanesError(Exception):
    """A lane could not be found, read or switched."""


class UnknownLaneError(LanesError):
    """The lane named is not one of the stack's lanes."""


@dataclass(frozen=True)
class LaneState:
    """One lane's consumption: its worker, the mapping that feeds it, and the mapping's state."""

    lane: str
    function_name: str
    mapping_id: str
    state: str
    batch_size: int | None = None
    maximum_concurrency: int | None = None

    @property
    def paused(self) -> bool:
        """Whether the lane consumes nothing (or is about to)."""
        return self.state in PAUSED_STATES

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for `--json`."""
        return {**asdict(self), "paused": self.paused}


def worker_functions(outputs: Mapping[str, str]) -> dict[str, str]:
    """Each lane's worker function name, from a stack's outputs; LanesError when one is missing."""
    missing = [Outputs.worker_name(lane) for lane in LANES if not outputs.get(Outputs.worker_name(lane))]
    if missing:
        raise LanesError(f"the stack has no outputs {', '.join(missing)}: is it a mailwright stack?")
    return {lane: outputs[Outputs.worker_name(lane)] for lane in LANES}


def reputation_alarm_names(outputs: Mapping[str, str]) -> list[str]:
    """The alarms that pause the bulk lane, from a stack's outputs (none on stacks older than the breaker)."""
    return [name for name in outputs.get(Outputs.REPUTATION_ALARMS, "").split(",") if name]


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """A deployed stack's outputs by key."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as exc:
        raise LanesError(f"stack {stack_name!r} could not be read: {exc}") from None
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


class LaneControl:
    """Reads and switches each lane's event source mapping."""

    def __init__(
        self,
        lambda_client: Any,
        functions: Mapping[str, str],
        *,
        cloudwatch: Any = None,
        reputation_alarms: list[str] | None = None,
    ) -> None:
        self._lambda = lambda_client
        self._cloudwatch = cloudwatch
        self.functions = dict(functions)
        self.reputation_alarms = list(reputation_alarms or [])

    @classmethod
    def for_stack(cls, stack_name: str, *, session: boto3.session.Session) -> LaneControl:
        """The lanes of the deployed stack `stack_name`, found through its outputs."""
        try:
            cloudformation = session.client("cloudformation", config=_CONFIG)
        except NoRegionError:
            raise LanesError(f"stack {stack_name!r}: no AWS region; pass --region or set AWS_DEFAULT_REGION") from None
        outputs = stack_outputs(cloudformation, stack_name)
        return cls(
            session.client("lambda", config=_CONFIG),
            worker_functions(outputs),
            cloudwatch=session.client("cloudwatch", config=_CONFIG),
            reputation_alarms=reputation_alarm_names(outputs),
        )

    @classmethod
    def for_target(cls, target: Target) -> LaneControl:
        """The lanes of a resolved target: a deployed stack by its outputs, the local stack by its local.json."""
        if not target.local:
            return cls.for_stack(target.name, session=target.session())
        functions = target.extra.get("functions") or {}
        if "lambda" not in target.service_endpoints or set(functions) != set(LANES):
            raise LanesError("the running local stack records no event source mappings: restart it with this version")
        session = target.session()
        return cls(
            session.client("lambda", config=_CONFIG),
            {lane: str(functions[lane]) for lane in LANES},
            cloudwatch=session.client("cloudwatch", config=_CONFIG),
            reputation_alarms=list(target.extra.get("reputation_alarms") or []),
        )

    def _lane(self, lane: str) -> str:
        if lane not in self.functions:
            raise UnknownLaneError(f"unknown lane {lane!r}; lanes are {', '.join(self.functions)}")
        return self.functions[lane]

    def _mapping(self, lane: str) -> dict[str, Any]:
        function_name = self._lane(lane)
        try:
            mappings = self._lambda.list_event_source_mappings(FunctionName=function_name)["EventSourceMappings"]
        except (ClientError, BotoCoreError) as exc:
            raise LanesError(f"{lane}: the mappings of {function_name} could not be read: {exc}") from None
        queues = [m for m in mappings if ":sqs:" in str(m.get("EventSourceArn", ""))]
        if len(queues) != 1:
            raise LanesError(f"{lane}: expected one SQS event source mapping on {function_name}, found {len(queues)}")
        mapping: dict[str, Any] = queues[0]
        return mapping

    def _state(self, lane: str, mapping: Mapping[str, Any]) -> LaneState:
        scaling = mapping.get("ScalingConfig") or {}
        return LaneState(
            lane=lane,
            function_name=self.functions[lane],
            mapping_id=str(mapping["UUID"]),
            state=str(mapping.get("State", "")),
            batch_size=mapping.get("BatchSize"),
            maximum_concurrency=scaling.get("MaximumConcurrency"),
        )

    def status(self) -> list[LaneState]:
        """Every lane's state, in lane order."""
        return [self._state(lane, self._mapping(lane)) for lane in self.functions]

    def set_enabled(self, lane: str, enabled: bool) -> LaneState:
        """Resume (`enabled`) or pause one lane; returns its state as Lambda reports it right after."""
        mapping = self._mapping(lane)
        try:
            updated = self._lambda.update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)
        except (ClientError, BotoCoreError) as exc:
            action = "resumed" if enabled else "paused"
            raise LanesError(f"{lane} could not be {action}: {exc}") from None
        return self._state(lane, {**mapping, **updated})

    def alarm_states(self) -> dict[str, str]:
        """The state of each reputation alarm (empty when they cannot be read: they only inform)."""
        if self._cloudwatch is None or not self.reputation_alarms:
            return {}
        try:
            alarms = self._cloudwatch.describe_alarms(AlarmNames=self.reputation_alarms)["MetricAlarms"]
        except (ClientError, BotoCoreError):
            return {}
        return {alarm["AlarmName"]: alarm["StateValue"] for alarm in alarms}
