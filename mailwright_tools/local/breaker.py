"""The reputation circuit breaker on the local stack: alarm state changes pause and resume the bulk lane.

Deployed, CloudWatch puts every alarm state change on the default
EventBridge bus and a rule invokes the breaker function with it. moto
evaluates no alarms and publishes no state changes, so locally:

* the two reputation alarms are created in moto's CloudWatch under their
  deployed names (`<stack>-ses-bounce-rate`, `<stack>-ses-complaint-rate`,
  as infra/alarms.py names them), on the same metrics and thresholds;
* a watcher reads their states every second; each change becomes the
  `CloudWatch Alarm State Change` event EventBridge would deliver, and goes
  to the breaker, built from its deployed environment (`breaker_environment`)
  and switching the bulk lane's mapping through the local Lambda API
  (`mailwright_tools.local.lane_api`), as the function does deployed.

Nothing sets those alarms by itself locally (moto computes no SES
reputation); set one to try the breaker:

    aws --endpoint-url http://127.0.0.1:PORT cloudwatch set-alarm-state \\
        --alarm-name Mailwright-ses-bounce-rate --state-value ALARM --state-reason "trying the breaker"
    mailwright lanes status        # bulk: Disabled
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from infra.config import BOUNCE_RATE_ALARM, COMPLAINT_RATE_ALARM, MailwrightConfig, breaker_environment
from mailwright.breaker import ALARM_STATE_CHANGE, AlarmChange, BreakerOutcome, CircuitBreaker
from mailwright.settings import BreakerSettings
from mailwright.wiring import build_breaker
from mailwright_tools.local.lane_api import LOCAL_ACCOUNT

logger = logging.getLogger(__name__)

SES_NAMESPACE = "AWS/SES"
# Short name -> (metric, threshold), as infra/alarms.py defines the deployed alarms.
REPUTATION_ALARMS: dict[str, tuple[str, float]] = {
    "ses-bounce-rate": ("Reputation.BounceRate", BOUNCE_RATE_ALARM),
    "ses-complaint-rate": ("Reputation.ComplaintRate", COMPLAINT_RATE_ALARM),
}
WATCH_SECONDS = 1.0


def reputation_alarm_names(stack_name: str) -> list[str]:
    """The reputation alarms' names, as deployed."""
    return [f"{stack_name}-{short}" for short in REPUTATION_ALARMS]


def create_reputation_alarms(cloudwatch: Any, stack_name: str) -> list[str]:
    """Create the reputation alarms in (moto's) CloudWatch; their names."""
    for short, (metric, threshold) in REPUTATION_ALARMS.items():
        cloudwatch.put_metric_alarm(
            AlarmName=f"{stack_name}-{short}",
            AlarmDescription=f"{metric} >= {threshold:g}: pauses the bulk lane (local stack: set its state by hand)",
            Namespace=SES_NAMESPACE,
            MetricName=metric,
            Statistic="Maximum",
            Period=3600,
            EvaluationPeriods=1,
            Threshold=threshold,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="ignore",
        )
    return reputation_alarm_names(stack_name)


def alarm_change_event(
    *, name: str, state: str, previous: str | None, reason: str, region: str, at: float | None = None
) -> dict[str, Any]:
    """The event EventBridge delivers for an alarm state change (the fields the breaker and its logs read)."""
    when = datetime.fromtimestamp(at if at is not None else time.time(), UTC).isoformat(timespec="seconds")
    detail: dict[str, Any] = {"alarmName": name, "state": {"value": state, "reason": reason, "timestamp": when}}
    if previous is not None:
        detail["previousState"] = {"value": previous}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": ALARM_STATE_CHANGE,
        "source": "aws.cloudwatch",
        "account": LOCAL_ACCOUNT,
        "time": when.replace("+00:00", "Z"),
        "region": region,
        "resources": [f"arn:aws:cloudwatch:{region}:{LOCAL_ACCOUNT}:alarm:{name}"],
        "detail": detail,
    }


class LocalBreaker:
    """Watches the reputation alarms and runs the breaker on each state change, as EventBridge would invoke it."""

    def __init__(
        self,
        *,
        config: MailwrightConfig,
        session: Any,
        mapping_id: str,
        alarm_names: list[str],
        region: str,
        publish: Any = None,
        interval: float = WATCH_SECONDS,
    ) -> None:
        settings = BreakerSettings.from_env(
            breaker_environment(config=config, mapping_id=mapping_id, alarm_names=alarm_names)
        )
        self.breaker: CircuitBreaker = build_breaker(settings, session=session)
        self.alarm_names = list(alarm_names)
        self.outcomes: list[BreakerOutcome] = []
        self._cloudwatch = session.client("cloudwatch")
        self._region = region
        self._publish = publish  # the handler's `publish`: logs the outcome and counts it
        self._interval = interval
        self._states: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self) -> dict[str, tuple[str, str]]:
        alarms = self._cloudwatch.describe_alarms(AlarmNames=self.alarm_names)["MetricAlarms"]
        return {a["AlarmName"]: (str(a["StateValue"]), str(a.get("StateReason", ""))) for a in alarms}

    def start(self) -> None:
        """Note the alarms' current states, then watch for changes on a background thread."""
        self._states = {name: state for name, (state, _) in self._read().items()}
        self._thread = threading.Thread(target=self._run, name="breaker-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.check()
            except Exception:  # the watcher must survive anything: log it and look again
                logger.exception("the local reputation breaker could not read or act on the alarms")

    def check(self) -> list[BreakerOutcome]:
        """Run the breaker once for every alarm whose state changed since the last look."""
        outcomes = []
        for name, (state, reason) in self._read().items():
            previous = self._states.get(name)
            if state == previous:
                continue
            event = alarm_change_event(name=name, state=state, previous=previous, reason=reason, region=self._region)
            outcome = self.breaker.handle(AlarmChange.from_event(event))
            self._states[name] = state  # after handling: a failed switch is tried again on the next look
            if self._publish is not None:
                self._publish(outcome)
            logger.info("breaker: %s -> %s: %s lane %s", name, state, outcome.lane, outcome.action)
            self.outcomes.append(outcome)
            outcomes.append(outcome)
        return outcomes
