"""X-Ray tracing is a deployment setting, off by default: untraced functions never load the X-Ray SDK."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools import Tracer

from infra.config import ConfigError, parse_config
from infra.functions import UNTRACED_ENVIRONMENT, runtime_environment
from mailwright.observability import TRACE_DISABLED_ENV, UntracedHandlers, service_tracer, tracing_disabled
from tests.unit.test_cold_start_imports import imported_by_the_send_worker

BASE: dict[str, Any] = {"sender": "no-reply@example.com"}


def test_tracing_is_off_unless_the_deployment_turns_it_on() -> None:
    assert parse_config(BASE).tracing is False
    assert parse_config({**BASE, "tracing": True}).tracing is True
    assert parse_config({**BASE, "tracing": False}).tracing is False


@pytest.mark.parametrize("value", ["true", 1, None, "off"])
def test_a_tracing_setting_that_is_not_a_boolean_is_refused(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"mailwright\.tracing must be true or false"):
        parse_config({**BASE, "tracing": value})


def test_untraced_functions_are_told_to_leave_the_tracer_off() -> None:
    assert runtime_environment(tracing=False)[TRACE_DISABLED_ENV] == "true"
    assert UNTRACED_ENVIRONMENT.keys() <= runtime_environment(tracing=False).keys()
    assert TRACE_DISABLED_ENV not in runtime_environment(tracing=True)
    # Both keep the variables every function gets.
    assert runtime_environment(tracing=True).items() <= runtime_environment(tracing=False).items()


@pytest.mark.parametrize(
    ("value", "disabled"), [("true", True), ("1", True), ("TRUE", True), ("false", False), ("0", False)]
)
def test_tracing_disabled_reads_the_variable_as_powertools_does(value: str, disabled: bool) -> None:
    assert tracing_disabled({TRACE_DISABLED_ENV: value}) is disabled


def test_without_the_variable_tracing_is_left_to_the_tracer() -> None:
    assert tracing_disabled({}) is False


def test_the_tracer_is_powertools_unless_tracing_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRACE_DISABLED_ENV, "true")
    assert isinstance(service_tracer(), UntracedHandlers)

    monkeypatch.setenv(TRACE_DISABLED_ENV, "false")
    assert isinstance(service_tracer(), Tracer)


def test_the_untraced_decorator_hands_the_handler_back_in_both_forms() -> None:
    tracer = UntracedHandlers()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"echo": event}

    called = tracer.capture_lambda_handler(capture_response=False)(handler)
    bare = tracer.capture_lambda_handler(handler)

    assert called is handler
    assert bare is handler
    assert bare({"a": 1}, None) == {"echo": {"a": 1}}


def test_an_untraced_send_worker_never_loads_the_x_ray_sdk() -> None:
    # As deployed with tracing off: inside Lambda, POWERTOOLS_TRACE_DISABLED set by the stack.
    modules = imported_by_the_send_worker(**UNTRACED_ENVIRONMENT)

    assert not {m for m in modules if m.split(".")[0] in ("aws_xray_sdk", "wrapt")}
    assert "mailwright.handlers.send_worker" in modules
