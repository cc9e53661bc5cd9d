"""Reputation circuit breaker: a CloudWatch alarm state change (via EventBridge) pauses or resumes the bulk lane."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailwright.breaker import ACTION_PAUSED, ACTION_RESUMED, AlarmChange, BreakerOutcome, CircuitBreaker
from mailwright.errors import BreakerEventError
from mailwright.observability import service_logger, service_metrics, service_tracer
from mailwright.settings import BreakerSettings
from mailwright.wiring import build_breaker

logger = service_logger()
metrics = service_metrics()
tracer = service_tracer()

METRIC_BY_ACTION = {ACTION_PAUSED: "LanePaused", ACTION_RESUMED: "LaneResumed"}


@cache
def service() -> CircuitBreaker:
    """The container's breaker, built (and its settings checked) on the first invocation."""
    return build_breaker(BreakerSettings.from_env())


@tracer.capture_lambda_handler
@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Pause or resume the lane for one alarm state change; a failed call is retried by Lambda's async invocation."""
    try:
        change = AlarmChange.from_event(event)
    except BreakerEventError:  # the rule only sends alarm changes: retrying something else cannot help
        logger.exception("not an alarm state change; nothing done")
        metrics.add_metric(name="BreakerInvalidEvents", unit=MetricUnit.Count, value=1)
        return {"action": "invalid_event"}
    outcome = service().handle(change)
    publish(outcome)
    return outcome.as_dict()


def publish(outcome: BreakerOutcome) -> None:
    """Log the outcome (a warning when the lane changed) and count it: LanePaused, LaneResumed or BreakerNoChange."""
    log = logger.warning if outcome.changed else logger.info
    log(f"{outcome.lane} lane {outcome.action}", **outcome.as_dict())
    metrics.add_dimension(name="lane", value=outcome.lane)
    metrics.add_metric(name=METRIC_BY_ACTION.get(outcome.action, "BreakerNoChange"), unit=MetricUnit.Count, value=1)
