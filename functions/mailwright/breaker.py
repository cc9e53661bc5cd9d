"""The reputation circuit breaker: the bulk lane pauses while an SES reputation alarm fires.

CloudWatch publishes every alarm state change on the default EventBridge bus;
a rule sends the changes of the bounce-rate and complaint-rate alarms here.

| change           | what happens                                                                  |
|------------------|-------------------------------------------------------------------------------|
| -> ALARM         | the bulk lane's event source mapping is disabled: bulk mail waits in its queue |
| -> OK            | with `auto_resume`, and no other watched alarm in ALARM, it is enabled again;  |
|                  | otherwise the lane stays paused until `mailwright lanes resume bulk`           |
| INSUFFICIENT_DATA, or an alarm not watched | nothing                                             |

Critical and standard mail keep flowing throughout: only bulk (newsletters,
digests) can wait, and bulk is what usually drives bounces and complaints up.

Example::

    breaker = CircuitBreaker(switch=switch, alarms=alarms, watched={"bounce", "complaint"}, auto_resume=False)
    breaker.handle(AlarmChange.from_event(event)).action  # 'paused'
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from mailwright.constants import BREAKER_LANE
from mailwright.errors import BreakerEventError
from mailwright.ports import AlarmStates, LaneSwitch

ALARM = "ALARM"
OK = "OK"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"

# What the breaker did.
ACTION_PAUSED = "paused"
ACTION_RESUMED = "resumed"
ACTION_ALREADY_PAUSED = "already_paused"
ACTION_ALREADY_RUNNING = "already_running"
ACTION_HELD = "held"  # the alarm cleared, but the lane stays paused until an operator (or the last alarm) says so
ACTION_IGNORED = "ignored"

# Mapping states in which the lane consumes nothing, or is on its way there.
PAUSED_STATES = frozenset({"Disabled", "Disabling"})
RUNNING_STATES = frozenset({"Enabled", "Enabling"})


@dataclass(frozen=True)
class AlarmChange:
    """One CloudWatch alarm state change, as EventBridge delivers it."""

    alarm_name: str
    state: str
    previous_state: str | None = None
    reason: str = ""

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> AlarmChange:
        """Read an EventBridge `CloudWatch Alarm State Change` event; raise BreakerEventError otherwise."""
        if not isinstance(event, Mapping) or event.get("detail-type") != ALARM_STATE_CHANGE:
            raise BreakerEventError(f"not a {ALARM_STATE_CHANGE!r} event")
        detail = event.get("detail")
        if not isinstance(detail, Mapping):
            raise BreakerEventError("the event has no detail object")
        name = detail.get("alarmName")
        state = detail.get("state")
        if not isinstance(name, str) or not name or not isinstance(state, Mapping):
            raise BreakerEventError("the event names no alarm or no state")
        value = state.get("value")
        if not isinstance(value, str) or not value:
            raise BreakerEventError(f"alarm {name!r}: the new state has no value")
        previous = detail.get("previousState")
        previous_value = previous.get("value") if isinstance(previous, Mapping) else None
        reason = state.get("reason")
        return cls(
            alarm_name=name,
            state=value,
            previous_state=previous_value if isinstance(previous_value, str) else None,
            reason=reason[:500] if isinstance(reason, str) else "",
        )


@dataclass(frozen=True)
class BreakerOutcome:
    """What the breaker did about one alarm change, and why."""

    lane: str
    action: str
    alarm_name: str
    alarm_state: str
    why: str
    mapping_state: str | None = None

    @property
    def changed(self) -> bool:
        """Whether the lane was paused or resumed."""
        return self.action in (ACTION_PAUSED, ACTION_RESUMED)

    def as_dict(self) -> dict[str, Any]:
        """The outcome as plain values (logged, and the function's response)."""
        return asdict(self)


class CircuitBreaker:
    """Pauses a lane while any watched alarm is in ALARM; resumes it on OK only when told to (`auto_resume`)."""

    def __init__(
        self,
        *,
        switch: LaneSwitch,
        alarms: AlarmStates,
        watched: Collection[str],
        auto_resume: bool,
        lane: str = BREAKER_LANE,
    ) -> None:
        if not watched:
            raise ValueError("the breaker needs at least one alarm to watch")
        self._switch = switch
        self._alarms = alarms
        self.watched = frozenset(watched)
        self.auto_resume = auto_resume
        self.lane = lane

    def handle(self, change: AlarmChange) -> BreakerOutcome:
        """Act on one alarm state change."""
        if change.alarm_name not in self.watched:
            return self._outcome(change, ACTION_IGNORED, "not an alarm this breaker watches")
        if change.state == ALARM:
            return self._pause(change)
        if change.state == OK:
            return self._maybe_resume(change)
        return self._outcome(change, ACTION_IGNORED, f"{change.state} neither pauses nor resumes the lane")

    def _pause(self, change: AlarmChange) -> BreakerOutcome:
        before = self._switch.state()
        if before in PAUSED_STATES:
            return self._outcome(change, ACTION_ALREADY_PAUSED, "the lane was already paused", before)
        after = self._switch.set_enabled(False)
        return self._outcome(change, ACTION_PAUSED, f"{change.alarm_name} is in ALARM", after)

    def _maybe_resume(self, change: AlarmChange) -> BreakerOutcome:
        if not self.auto_resume:
            why = f"auto_resume_bulk is off: resume with `mailwright lanes resume {self.lane}`"
            return self._outcome(change, ACTION_HELD, why)
        others = self.watched - {change.alarm_name}
        firing = sorted(name for name, state in self._alarms.states(others).items() if state == ALARM) if others else []
        if firing:
            return self._outcome(change, ACTION_HELD, f"still in ALARM: {', '.join(firing)}")
        before = self._switch.state()
        if before in RUNNING_STATES:
            return self._outcome(change, ACTION_ALREADY_RUNNING, "the lane was already running", before)
        after = self._switch.set_enabled(True)
        return self._outcome(change, ACTION_RESUMED, "every watched alarm is OK", after)

    def _outcome(self, change: AlarmChange, action: str, why: str, mapping_state: str | None = None) -> BreakerOutcome:
        return BreakerOutcome(
            lane=self.lane,
            action=action,
            alarm_name=change.alarm_name,
            alarm_state=change.state,
            why=why,
            mapping_state=mapping_state,
        )
