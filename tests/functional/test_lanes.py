"""`mailwright lanes`: find each lane's mapping through the stack's outputs, show, pause and resume it (moto)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from mailwright.constants import LANES, Outputs
from mailwright_tools.cli import app
from mailwright_tools.lanes import LaneControl, LanesError, worker_functions

STACK = "Mailwright"
BOUNCE, COMPLAINT = "Mailwright-ses-bounce-rate", "Mailwright-ses-complaint-rate"


@dataclass
class Deployed:
    """A deployed stack as far as lanes go: outputs, workers, their mappings, the reputation alarms."""

    session: boto3.session.Session
    mappings: dict[str, str]

    def state(self, lane: str) -> str:
        return str(self.session.client("lambda").get_event_source_mapping(UUID=self.mappings[lane])["State"])

    def set_alarm(self, name: str, state: str) -> None:
        self.session.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


@pytest.fixture
def deployed() -> Iterator[Deployed]:
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        role = session.client("iam").create_role(
            RoleName="worker", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
        )
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("index.py", "def handler(event, context):\n    return {}\n")
        lambda_client, sqs = session.client("lambda"), session.client("sqs")
        outputs = {Outputs.REPUTATION_ALARMS: f"{BOUNCE},{COMPLAINT}"}
        mappings = {}
        for lane in LANES:
            function = f"Mailwright-{lane.capitalize()}Worker-ABC123"
            lambda_client.create_function(
                FunctionName=function,
                Runtime="python3.12",
                Role=role["Role"]["Arn"],
                Handler="index.handler",
                Code={"ZipFile": code.getvalue()},
            )
            queue = sqs.create_queue(QueueName=f"{lane}-queue")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            mapping = lambda_client.create_event_source_mapping(
                EventSourceArn=arn, FunctionName=function, BatchSize=10, ScalingConfig={"MaximumConcurrency": 2}
            )
            mappings[lane] = mapping["UUID"]
            outputs[Outputs.worker_name(lane)] = function
        for name in (BOUNCE, COMPLAINT):
            session.client("cloudwatch").put_metric_alarm(
                AlarmName=name,
                Namespace="AWS/SES",
                MetricName="Reputation.BounceRate",
                Statistic="Maximum",
                Period=3600,
                EvaluationPeriods=1,
                Threshold=0.04,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
            )
        template = {
            "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "stack-marker"}}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
        session.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
        yield Deployed(session=session, mappings=mappings)


def test_status_finds_every_lanes_mapping_through_the_stack_outputs(deployed: Deployed) -> None:
    control = LaneControl.for_stack(STACK, session=deployed.session)

    lanes = control.status()

    assert [(lane.lane, lane.state, lane.paused) for lane in lanes] == [
        ("critical", "Enabled", False),
        ("standard", "Enabled", False),
        ("bulk", "Enabled", False),
    ]
    assert [lane.mapping_id for lane in lanes] == [deployed.mappings[lane] for lane in LANES]
    assert lanes[0].function_name == "Mailwright-CriticalWorker-ABC123"
    assert set(control.alarm_states()) == {BOUNCE, COMPLAINT}


def test_pause_and_resume_switch_one_lane(deployed: Deployed) -> None:
    control = LaneControl.for_stack(STACK, session=deployed.session)

    paused = control.set_enabled("bulk", False)

    assert paused.paused and deployed.state("bulk") == "Disabled"
    assert deployed.state("critical") == deployed.state("standard") == "Enabled"
    assert control.set_enabled("bulk", True).state == "Enabled"
    assert deployed.state("bulk") == "Enabled"


def test_unknown_lanes_and_foreign_stacks_are_refused(deployed: Deployed) -> None:
    control = LaneControl.for_stack(STACK, session=deployed.session)

    with pytest.raises(LanesError, match="unknown lane 'express'"):
        control.set_enabled("express", False)
    with pytest.raises(LanesError, match="could not be read"):
        LaneControl.for_stack("NotMailwright", session=deployed.session)
    with pytest.raises(LanesError, match="BulkWorkerName"):
        worker_functions({Outputs.worker_name("critical"): "a", Outputs.worker_name("standard"): "b"})


def invoke(tmp_path: Path, *args: str) -> Any:
    # An empty state directory: no local stack, so the deployed stack named by --stack-name is used.
    return CliRunner().invoke(
        app, ["--state-dir", str(tmp_path), "--stack-name", STACK, "--region", "us-east-1", "lanes", *args]
    )


def test_cli_status_json(deployed: Deployed, tmp_path: Path) -> None:
    deployed.session.client("lambda").update_event_source_mapping(UUID=deployed.mappings["bulk"], Enabled=False)
    deployed.set_alarm(BOUNCE, "ALARM")

    result = invoke(tmp_path, "status", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {lane["lane"]: (lane["state"], lane["paused"]) for lane in report["lanes"]} == {
        "critical": ("Enabled", False),
        "standard": ("Enabled", False),
        "bulk": ("Disabled", True),
    }
    assert report["lanes"][2]["maximum_concurrency"] == 2
    assert report["reputation_alarms"][BOUNCE] == "ALARM"


def test_cli_status_for_people(deployed: Deployed, tmp_path: Path) -> None:
    result = invoke(tmp_path, "status")

    assert result.exit_code == 0, result.output
    assert "bulk" in result.stdout and "Enabled" in result.stdout
    assert f"reputation alarm {BOUNCE}" in result.stdout


def test_cli_resume_after_the_breaker_paused_bulk(deployed: Deployed, tmp_path: Path) -> None:
    # Given the breaker paused bulk and the complaint alarm still fires
    deployed.session.client("lambda").update_event_source_mapping(UUID=deployed.mappings["bulk"], Enabled=False)
    deployed.set_alarm(COMPLAINT, "ALARM")

    # When an operator resumes it
    result = invoke(tmp_path, "resume", "bulk")

    # Then bulk flows again, and the operator is told the breaker will not pause it again by itself yet
    assert result.exit_code == 0, result.output
    assert deployed.state("bulk") == "Enabled"
    assert "bulk lane resumed" in result.stdout
    assert COMPLAINT in result.stdout and "still in ALARM" in result.stdout


def test_cli_pause_json(deployed: Deployed, tmp_path: Path) -> None:
    result = invoke(tmp_path, "pause", "standard", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["lane"]["state"] == "Disabled"
    assert deployed.state("standard") == "Disabled"


def test_cli_refuses_an_unknown_lane(deployed: Deployed, tmp_path: Path) -> None:
    result = invoke(tmp_path, "pause", "express")

    assert result.exit_code == 2
    assert "unknown lane" in result.stderr


def test_cli_asks_for_a_restart_when_the_local_stack_predates_its_lanes_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A local.json written by a release whose local stack had no event source mapping API.
    monkeypatch.setattr("mailwright_tools.state.live_local_stack", lambda state: {"endpoint_url": "http://127.0.0.1:1"})

    result = CliRunner().invoke(app, ["--state-dir", str(tmp_path), "lanes", "status"])

    assert result.exit_code == 3
    assert "records no event source mappings" in result.stderr and "restart it" in result.stderr
