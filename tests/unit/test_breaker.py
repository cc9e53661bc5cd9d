"""The reputation circuit breaker's decisions, against in-memory fakes of the lane switch and the alarms."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pytest

from mailwright.breaker import (
    ACTION_ALREADY_PAUSED,
    ACTION_ALREADY_RUNNING,
    ACTION_HELD,
    ACTION_IGNORED,
    ACTION_PAUSED,
    ACTION_RESUMED,
    AlarmChange,
    CircuitBreaker,
)
from mailwright.constants import Env
from mailwright.errors import BreakerEventError, ConfigurationError, TransientError
from mailwright.settings import BreakerSettings
from tests.events import load_event

BOUNCE, COMPLAINT = "bounce-rate", "complaint-rate"


class FakeSwitch:
    """A lane's event source mapping, in memory."""

    def __init__(self, state: str = "Enabled", *, fail: bool = False) -> None:
        self._state = state
        self.fail = fail
        self.calls: list[bool] = []

    def state(self) -> str:
        return self._state

    def set_enabled(self, enabled: bool) -> str:
        if self.fail:
            raise TransientError("update_event_source_mapping_failed", "ResourceInUseException")
        self.calls.append(enabled)
        self._state = "Enabling" if enabled else "Disabling"
        return self._state


class FakeAlarms:
    """Alarm states by name."""

    def __init__(self, **states: str) -> None:
        self._states = {name.replace("_", "-"): state for name, state in states.items()}
        self.asked: list[set[str]] = []

    def states(self, names: Collection[str]) -> dict[str, str]:
        self.asked.append(set(names))
        return {name: state for name, state in self._states.items() if name in names}


def change(name: str, state: str) -> AlarmChange:
    return AlarmChange(alarm_name=name, state=state)


def breaker(switch: FakeSwitch, alarms: FakeAlarms | None = None, *, auto_resume: bool = False) -> CircuitBreaker:
    return CircuitBreaker(
        switch=switch, alarms=alarms or FakeAlarms(), watched={BOUNCE, COMPLAINT}, auto_resume=auto_resume
    )


def test_alarm_pauses_a_running_lane() -> None:
    switch = FakeSwitch("Enabled")

    outcome = breaker(switch).handle(change(BOUNCE, "ALARM"))

    assert (outcome.action, outcome.lane, outcome.mapping_state) == (ACTION_PAUSED, "bulk", "Disabling")
    assert switch.calls == [False]
    assert outcome.changed


@pytest.mark.parametrize("state", ["Disabled", "Disabling"])
def test_alarm_on_a_paused_lane_calls_nothing(state: str) -> None:
    switch = FakeSwitch(state)

    outcome = breaker(switch).handle(change(COMPLAINT, "ALARM"))

    assert outcome.action == ACTION_ALREADY_PAUSED and not outcome.changed
    assert switch.calls == []


def test_ok_without_auto_resume_leaves_it_to_an_operator() -> None:
    switch, alarms = FakeSwitch("Disabled"), FakeAlarms(complaint_rate="OK")

    outcome = breaker(switch, alarms).handle(change(BOUNCE, "OK"))

    assert outcome.action == ACTION_HELD
    assert "mailwright lanes resume bulk" in outcome.why
    assert switch.calls == [] and alarms.asked == []


def test_ok_with_auto_resume_resumes_when_the_other_alarm_is_ok() -> None:
    switch, alarms = FakeSwitch("Disabled"), FakeAlarms(complaint_rate="OK")

    outcome = breaker(switch, alarms, auto_resume=True).handle(change(BOUNCE, "OK"))

    assert outcome.action == ACTION_RESUMED
    assert switch.calls == [True]
    assert alarms.asked == [{COMPLAINT}]


def test_ok_with_auto_resume_holds_while_another_alarm_fires() -> None:
    switch = FakeSwitch("Disabled")

    outcome = breaker(switch, FakeAlarms(complaint_rate="ALARM"), auto_resume=True).handle(change(BOUNCE, "OK"))

    assert outcome.action == ACTION_HELD and COMPLAINT in outcome.why
    assert switch.calls == []


@pytest.mark.parametrize("other", ["OK", "INSUFFICIENT_DATA"])
def test_only_alarm_holds_the_lane(other: str) -> None:
    # No data on the other alarm is not a reason to keep bulk mail waiting.
    switch = FakeSwitch("Disabled")

    outcome = breaker(switch, FakeAlarms(complaint_rate=other), auto_resume=True).handle(change(BOUNCE, "OK"))

    assert outcome.action == ACTION_RESUMED


def test_ok_on_a_running_lane_calls_nothing() -> None:
    switch = FakeSwitch("Enabled")

    outcome = breaker(switch, FakeAlarms(complaint_rate="OK"), auto_resume=True).handle(change(BOUNCE, "OK"))

    assert outcome.action == ACTION_ALREADY_RUNNING
    assert switch.calls == []


@pytest.mark.parametrize(
    ("name", "state"), [("Mailwright-dlq-bulk", "ALARM"), (BOUNCE, "INSUFFICIENT_DATA"), (BOUNCE, "SOMETHING_NEW")]
)
def test_unwatched_alarms_and_other_states_are_ignored(name: str, state: str) -> None:
    switch = FakeSwitch("Enabled")

    outcome = breaker(switch, auto_resume=True).handle(change(name, state))

    assert outcome.action == ACTION_IGNORED
    assert switch.calls == []


def test_a_failed_switch_is_raised_for_lambda_to_retry() -> None:
    with pytest.raises(TransientError):
        breaker(FakeSwitch("Enabled", fail=True)).handle(change(BOUNCE, "ALARM"))


def test_a_breaker_watches_at_least_one_alarm() -> None:
    with pytest.raises(ValueError, match="at least one alarm"):
        CircuitBreaker(switch=FakeSwitch(), alarms=FakeAlarms(), watched=set(), auto_resume=False)


def test_alarm_change_reads_cloudwatchs_event() -> None:
    parsed = AlarmChange.from_event(load_event("cloudwatch-alarm-state-change"))

    assert (parsed.alarm_name, parsed.state, parsed.previous_state) == ("ServerCpuTooHigh", "ALARM", "OK")
    assert parsed.reason.startswith("Threshold Crossed")


@pytest.mark.parametrize(
    "event",
    [
        None,
        {},
        {"detail-type": "Scheduled Event", "detail": {}},
        {"detail-type": "CloudWatch Alarm State Change"},
        {"detail-type": "CloudWatch Alarm State Change", "detail": {"alarmName": "a"}},
        {"detail-type": "CloudWatch Alarm State Change", "detail": {"alarmName": "a", "state": {}}},
        {"detail-type": "CloudWatch Alarm State Change", "detail": {"alarmName": "", "state": {"value": "OK"}}},
    ],
)
def test_anything_else_is_refused(event: Any) -> None:
    with pytest.raises(BreakerEventError):
        AlarmChange.from_event(event)


def test_settings_parse_the_environment() -> None:
    settings = BreakerSettings.from_env(
        {
            Env.LANE: "bulk",
            Env.BREAKER_MAPPING_ID: " 3af37560-277a ",
            Env.BREAKER_ALARMS: "a, b,,",
            Env.BREAKER_AUTO_RESUME: "True",
        }
    )

    assert settings == BreakerSettings(
        lane="bulk", mapping_id="3af37560-277a", alarm_names=frozenset({"a", "b"}), auto_resume=True
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "missing environment variables"),
        ({Env.LANE: "bulk", Env.BREAKER_MAPPING_ID: "u", Env.BREAKER_ALARMS: ","}, "names no alarm"),
        ({Env.LANE: "fast", Env.BREAKER_MAPPING_ID: "u", Env.BREAKER_ALARMS: "a"}, "must be one of"),
        (
            {Env.LANE: "bulk", Env.BREAKER_MAPPING_ID: "u", Env.BREAKER_ALARMS: "a", Env.BREAKER_AUTO_RESUME: "maybe"},
            "true or false",
        ),
    ],
)
def test_bad_settings_fail_fast(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        BreakerSettings.from_env(env)
