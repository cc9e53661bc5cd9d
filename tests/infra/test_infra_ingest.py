"""EventBridge ingest: a custom bus routing requests to the lane queues by priority."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from mailwright.constants import EVENT_DETAIL_TYPE, LANES, Outputs
from tests.infra.synth import Synthesized

# Each module shares the session's synthesized stack (see conftest.py).
pytestmark = pytest.mark.slow

PRIORITY_PATTERNS: dict[str, list[Any]] = {
    "critical": ["critical"],
    "bulk": ["bulk"],
    # A missing or unknown priority still lands in a lane; the worker rejects it with a reason.
    "standard": [{"anything-but": ["critical", "bulk"]}, {"exists": False}],
}


def test_bus_is_named_after_the_stack(synthesized: Synthesized) -> None:
    bus_id = synthesized.output_ref(Outputs.EVENT_BUS_NAME)

    assert synthesized.resources("AWS::Events::EventBus")[bus_id]["Properties"]["Name"] == synthesized.config.stack_name


@pytest.mark.parametrize("lane", LANES)
def test_rule_routes_its_priority_to_its_lane_queue(synthesized: Synthesized, lane: str) -> None:
    queue_id, _ = synthesized.queue_of(lane)

    synthesized.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventBusName": {"Ref": synthesized.output_ref(Outputs.EVENT_BUS_NAME)},
            "EventPattern": {"detail-type": [EVENT_DETAIL_TYPE], "detail": {"priority": PRIORITY_PATTERNS[lane]}},
            "State": "ENABLED",
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [queue_id, "Arn"]},
                        "InputPath": "$.detail",
                        "DeadLetterConfig": {
                            "Arn": {"Fn::GetAtt": [synthesized.output_ref(Outputs.INGEST_DLQ_URL), "Arn"]}
                        },
                        "RetryPolicy": {
                            "MaximumRetryAttempts": Match.any_value(),
                            "MaximumEventAgeInSeconds": Match.any_value(),
                        },
                    }
                )
            ],
        },
    )


@pytest.mark.parametrize("lane", LANES)
def test_lane_queue_accepts_events_from_its_rule_only(synthesized: Synthesized, lane: str) -> None:
    queue_id, _ = synthesized.queue_of(lane)

    synthesized.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": queue_id}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Action": Match.array_with(["sqs:SendMessage"]),
                                "Condition": {
                                    "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [Match.any_value(), "Arn"]}}
                                },
                            }
                        )
                    ]
                )
            },
        },
    )


def test_ingest_dlq_is_encrypted_and_accepts_events(synthesized: Synthesized) -> None:
    dlq_id = synthesized.output_ref(Outputs.INGEST_DLQ_URL)
    props = synthesized.resources("AWS::SQS::Queue")[dlq_id]["Properties"]

    assert props["SqsManagedSseEnabled"] is True
    assert props["MessageRetentionPeriod"] == 14 * 24 * 3600
    synthesized.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": dlq_id}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage"})]
                )
            },
        },
    )
