"""Lane queues: one queue and DLQ per lane, encrypted, TLS-only, tolerant of throttling."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from infra.config import MailwrightConfig
from mailwright.constants import LANES, Outputs
from tests.infra.synth import Synthesized

# Each module shares the session's synthesized stack (see conftest.py).
pytestmark = pytest.mark.slow

FOURTEEN_DAYS = 14 * 24 * 3600


@pytest.mark.parametrize("lane", LANES)
def test_lane_queue_redrives_to_its_own_dlq(synthesized: Synthesized, config: MailwrightConfig, lane: str) -> None:
    settings = config.lanes[lane]
    _, queue = synthesized.queue_of(lane)
    props = queue["Properties"]

    assert props["RedrivePolicy"]["maxReceiveCount"] == settings.max_receive_count >= 5
    assert props["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": [synthesized.output_ref(Outputs.dlq_url(lane)), "Arn"]
    }
    assert props["SqsManagedSseEnabled"] is True
    assert props["VisibilityTimeout"] == settings.visibility_timeout_seconds
    assert props["MessageRetentionPeriod"] >= 4 * 24 * 3600


@pytest.mark.parametrize("lane", LANES)
def test_lane_dlq_keeps_messages_for_fourteen_days(synthesized: Synthesized, lane: str) -> None:
    dlq = synthesized.resources("AWS::SQS::Queue")[synthesized.output_ref(Outputs.dlq_url(lane))]

    assert dlq["Properties"]["MessageRetentionPeriod"] == FOURTEEN_DAYS
    assert dlq["Properties"]["SqsManagedSseEnabled"] is True
    # Its only redrive is to the lane's parked queue (test_infra_outcome_events.py), never back to a lane.
    parked = synthesized.output_ref(Outputs.parked_dlq_url(lane))
    assert dlq["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [parked, "Arn"]}


def test_lane_queues_share_the_expected_shape(template: Template) -> None:
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {"maxReceiveCount": Match.any_value(), "deadLetterTargetArn": Match.any_value()},
        },
    )


def test_every_queue_refuses_plain_http(synthesized: Synthesized) -> None:
    for logical_id in synthesized.resources("AWS::SQS::Queue"):
        synthesized.template.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": Match.array_with([{"Ref": logical_id}]),
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Action": "sqs:*",
                                    "Principal": {"AWS": "*"},
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                },
            },
        )


@pytest.mark.parametrize("lane", LANES)
def test_visibility_timeout_is_at_least_six_worker_timeouts(synthesized: Synthesized, lane: str) -> None:
    queue_id, queue = synthesized.queue_of(lane)
    mappings = [
        m["Properties"]
        for m in synthesized.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]
    assert len(mappings) == 1
    function_id = mappings[0]["FunctionName"]["Ref"]
    timeout = synthesized.resources("AWS::Lambda::Function")[function_id]["Properties"]["Timeout"]

    assert queue["Properties"]["VisibilityTimeout"] >= 6 * timeout
