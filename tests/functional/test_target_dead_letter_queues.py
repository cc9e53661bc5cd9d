"""The breaker's DLQ, found through the deployed stack's outputs: `mailwright dlq list --lane breaker` (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner, Result

from mailwright.constants import LANES, Outputs
from mailwright_tools.cli import app
from mailwright_tools.target import deployed_target

STACK = "Mailwright"
# What EventBridge dead-letters: the alarm state change itself.
STATE_CHANGE = {
    "source": "aws.cloudwatch",
    "detail-type": "CloudWatch Alarm State Change",
    "detail": {"alarmName": "Mailwright-ses-bounce-rate", "state": {"value": "ALARM"}},
}


@pytest.fixture
def outputs() -> Iterator[dict[str, str]]:
    """A deployed stack's outputs as far as dead-letter queues go, with one state change in the breaker's DLQ."""
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        sqs = session.client("sqs")
        outputs = {Outputs.MESSAGES_TABLE: "messages"}
        for lane in LANES:
            outputs[Outputs.queue_url(lane)] = sqs.create_queue(QueueName=f"{lane}-queue")["QueueUrl"]
            outputs[Outputs.dlq_url(lane)] = sqs.create_queue(QueueName=f"{lane}-dlq")["QueueUrl"]
        outputs[Outputs.INGEST_DLQ_URL] = sqs.create_queue(QueueName="ingest-dlq")["QueueUrl"]
        outputs[Outputs.BREAKER_DLQ_URL] = sqs.create_queue(QueueName="breaker-dlq")["QueueUrl"]
        sqs.send_message(QueueUrl=outputs[Outputs.BREAKER_DLQ_URL], MessageBody=json.dumps(STATE_CHANGE))
        template = {
            "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "stack-marker"}}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
        session.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
        yield outputs


def _dlq(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(
        app, ["--state-dir", str(tmp_path), "--stack-name", STACK, "--region", "us-east-1", "dlq", *args]
    )


def test_the_target_lists_the_breakers_dlq(outputs: dict[str, str]) -> None:
    queues = deployed_target(STACK, "us-east-1").dead_letter_queues()

    assert queues["breaker"] == outputs[Outputs.BREAKER_DLQ_URL]
    assert set(queues) == {*LANES, "ingest", "breaker"}


def test_dlq_list_shows_what_waits_in_the_breakers_dlq(outputs: dict[str, str], tmp_path: Path) -> None:
    result = _dlq(tmp_path, "list", "--lane", "breaker", "--json")

    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed["total"] == 1
    (message,) = listed["queues"]["breaker"]["messages"]
    assert "CloudWatch Alarm State Change" in message["body_preview"]


def test_the_breakers_dlq_is_not_redriven(outputs: dict[str, str], tmp_path: Path) -> None:
    # Its messages are alarm state changes, with no queue to go back to.
    result = _dlq(tmp_path, "redrive", "--lane", "breaker")

    assert result.exit_code == 2
    assert "no source queue" in result.stderr
    sqs = boto3.client("sqs", region_name="us-east-1")
    attributes = sqs.get_queue_attributes(
        QueueUrl=outputs[Outputs.BREAKER_DLQ_URL], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"
