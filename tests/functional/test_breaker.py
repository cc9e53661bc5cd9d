"""The reputation circuit breaker's handler against moto: real event source mappings, real alarm states."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.config import MailwrightConfig, breaker_environment
from mailwright.constants import LANES
from mailwright.handlers import breaker as breaker_handler
from mailwright_tools.events import FakeLambdaContext
from tests.events import load_event

BOUNCE = "Mailwright-ses-bounce-rate"
COMPLAINT = "Mailwright-ses-complaint-rate"
ROLE_POLICY = {"Version": "2012-10-17", "Statement": []}


def alarm_change(alarm_name: str, state: str, previous: str = "OK") -> dict[str, Any]:
    """CloudWatch's state-change event, aimed at `alarm_name`."""
    event = load_event("cloudwatch-alarm-state-change")
    event["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm_name}"]
    event["detail"]["alarmName"] = alarm_name
    event["detail"]["state"]["value"] = state
    event["detail"]["previousState"]["value"] = previous
    return event


def emf(output: str) -> list[dict[str, Any]]:
    """The EMF documents among printed lines."""
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


@dataclass
class Lanes:
    """Each lane's worker and event source mapping in moto, and the two reputation alarms."""

    lambda_client: Any
    cloudwatch: Any
    mappings: dict[str, str]

    def state(self, lane: str) -> str:
        return str(self.lambda_client.get_event_source_mapping(UUID=self.mappings[lane])["State"])

    def states(self) -> dict[str, str]:
        return {lane: self.state(lane) for lane in LANES}

    def set_alarm(self, name: str, state: str) -> None:
        self.cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="set by the test")


@pytest.fixture
def lanes() -> Iterator[Lanes]:
    with mock_aws():
        role = boto3.client("iam").create_role(RoleName="worker", AssumeRolePolicyDocument=json.dumps(ROLE_POLICY))
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("index.py", "def handler(event, context):\n    return {}\n")
        lambda_client, sqs, cloudwatch = boto3.client("lambda"), boto3.client("sqs"), boto3.client("cloudwatch")
        mappings = {}
        for lane in LANES:
            name = f"mailwright-{lane}-worker"
            lambda_client.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role["Role"]["Arn"],
                Handler="index.handler",
                Code={"ZipFile": code.getvalue()},
            )
            queue = sqs.create_queue(QueueName=f"mailwright-{lane}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            mapping = lambda_client.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=10)
            mappings[lane] = mapping["UUID"]
        for name, metric in ((BOUNCE, "Reputation.BounceRate"), (COMPLAINT, "Reputation.ComplaintRate")):
            cloudwatch.put_metric_alarm(
                AlarmName=name,
                Namespace="AWS/SES",
                MetricName=metric,
                Statistic="Maximum",
                Period=3600,
                EvaluationPeriods=1,
                Threshold=0.04,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
            )
        yield Lanes(lambda_client=lambda_client, cloudwatch=cloudwatch, mappings=mappings)


Invoke = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture
def breaker(config: MailwrightConfig, lanes: Lanes, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Invoke]]:
    """Deploy the breaker's handler with the environment the stack gives it: `breaker(auto_resume=True)`."""

    def deploy(*, auto_resume: bool = False) -> Invoke:
        settings = replace(config, alarms=replace(config.alarms, auto_resume_bulk=auto_resume))
        env = breaker_environment(config=settings, mapping_id=lanes.mappings["bulk"], alarm_names=[BOUNCE, COMPLAINT])
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        breaker_handler.service.cache_clear()

        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            response: dict[str, Any] = breaker_handler.handler(event, FakeLambdaContext("mailwright-breaker"))
            return response

        return invoke

    yield deploy
    breaker_handler.service.cache_clear()


def test_a_bounce_rate_alarm_pauses_the_bulk_lane_only(
    lanes: Lanes, breaker: Callable[..., Invoke], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given every lane running and the breaker deployed with its defaults
    invoke = breaker()
    assert set(lanes.states().values()) == {"Enabled"}

    # When the bounce-rate alarm goes to ALARM
    response = invoke(alarm_change(BOUNCE, "ALARM"))

    # Then bulk mail waits in its queue while critical and standard mail keep flowing
    assert response["action"] == "paused" and response["lane"] == "bulk"
    assert lanes.states() == {"critical": "Enabled", "standard": "Enabled", "bulk": "Disabled"}
    (document,) = emf(capsys.readouterr().out)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Mailwright"
    assert [m["Name"] for m in directive["Metrics"]] == ["LanePaused"]
    assert set(directive["Dimensions"][0]) == {"lane", "service"}
    assert (document["lane"], document["LanePaused"]) == ("bulk", [1.0])


def test_a_complaint_alarm_while_paused_changes_nothing(lanes: Lanes, breaker: Callable[..., Invoke]) -> None:
    invoke = breaker()
    invoke(alarm_change(BOUNCE, "ALARM"))

    response = invoke(alarm_change(COMPLAINT, "ALARM"))

    assert response["action"] == "already_paused"
    assert lanes.state("bulk") == "Disabled"


def test_by_default_the_lane_stays_paused_when_the_alarm_clears(lanes: Lanes, breaker: Callable[..., Invoke]) -> None:
    # Given auto_resume_bulk off (the default) and a paused bulk lane
    invoke = breaker()
    invoke(alarm_change(BOUNCE, "ALARM"))
    lanes.set_alarm(BOUNCE, "OK")

    # When the alarm clears
    response = invoke(alarm_change(BOUNCE, "OK", previous="ALARM"))

    # Then an operator resumes it, after finding out what went wrong
    assert response["action"] == "held"
    assert "mailwright lanes resume bulk" in response["why"]
    assert lanes.states() == {"critical": "Enabled", "standard": "Enabled", "bulk": "Disabled"}


def test_with_auto_resume_the_lane_resumes_when_every_alarm_is_ok(lanes: Lanes, breaker: Callable[..., Invoke]) -> None:
    invoke = breaker(auto_resume=True)
    lanes.set_alarm(BOUNCE, "ALARM")
    invoke(alarm_change(BOUNCE, "ALARM"))
    assert lanes.state("bulk") == "Disabled"

    lanes.set_alarm(BOUNCE, "OK")
    response = invoke(alarm_change(BOUNCE, "OK", previous="ALARM"))

    assert response["action"] == "resumed"
    assert set(lanes.states().values()) == {"Enabled"}


def test_with_auto_resume_the_lane_waits_for_the_other_alarm(lanes: Lanes, breaker: Callable[..., Invoke]) -> None:
    # Given both reputation alarms fired
    invoke = breaker(auto_resume=True)
    for name in (BOUNCE, COMPLAINT):
        lanes.set_alarm(name, "ALARM")
        invoke(alarm_change(name, "ALARM"))

    # When only the bounce rate recovers, Then the lane stays paused
    lanes.set_alarm(BOUNCE, "OK")
    held = invoke(alarm_change(BOUNCE, "OK", previous="ALARM"))
    assert held["action"] == "held" and COMPLAINT in held["why"]
    assert lanes.state("bulk") == "Disabled"

    # ... until the complaint rate recovers too
    lanes.set_alarm(COMPLAINT, "OK")
    assert invoke(alarm_change(COMPLAINT, "OK", previous="ALARM"))["action"] == "resumed"
    assert lanes.state("bulk") == "Enabled"


@pytest.mark.parametrize(
    ("alarm", "state"), [("Mailwright-dlq-bulk", "ALARM"), (BOUNCE, "INSUFFICIENT_DATA")], ids=["other", "no-data"]
)
def test_other_alarms_and_missing_data_are_ignored(
    lanes: Lanes, breaker: Callable[..., Invoke], alarm: str, state: str
) -> None:
    invoke = breaker(auto_resume=True)

    response = invoke(alarm_change(alarm, state))

    assert response["action"] == "ignored"
    assert set(lanes.states().values()) == {"Enabled"}


def test_an_event_that_is_not_an_alarm_change_is_counted_and_changes_nothing(
    lanes: Lanes, breaker: Callable[..., Invoke], capsys: pytest.CaptureFixture[str]
) -> None:
    invoke = breaker()

    response = invoke({"detail-type": "Scheduled Event", "detail": {}})

    assert response == {"action": "invalid_event"}
    assert set(lanes.states().values()) == {"Enabled"}
    (document,) = emf(capsys.readouterr().out)
    assert document["BreakerInvalidEvents"] == [1.0]
