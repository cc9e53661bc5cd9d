"""The reputation circuit breaker: which events reach it, and that it may switch the bulk lane and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from mailwright.constants import BREAKER_HANDLER, LANES, Env, Outputs
from mailwright.settings import BreakerSettings
from tests.infra.synth import Resource, Synthesized, as_list, render, role_statements, without_tracing

# Each module shares the session's synthesized stacks (see conftest.py).
pytestmark = pytest.mark.slow

ESM_ARN = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:event-source-mapping:${%s}"


def _breaker(synthesized: Synthesized) -> tuple[str, Resource]:
    (found,) = [
        (logical_id, resource)
        for logical_id, resource in synthesized.resources("AWS::Lambda::Function").items()
        if resource["Properties"].get("Handler") == BREAKER_HANDLER
    ]
    return found


def _mapping_of(synthesized: Synthesized, lane: str) -> str:
    queue_id, _ = synthesized.queue_of(lane)
    (found,) = [
        logical_id
        for logical_id, mapping in synthesized.resources("AWS::Lambda::EventSourceMapping").items()
        if mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]
    return found


def _reputation_alarms(synthesized: Synthesized) -> list[str]:
    prefix = synthesized.config.stack_name
    names = {f"{prefix}-ses-bounce-rate", f"{prefix}-ses-complaint-rate"}
    return sorted(
        logical_id
        for logical_id, alarm in synthesized.resources("AWS::CloudWatch::Alarm").items()
        if alarm["Properties"]["AlarmName"] in names
    )


def _rule(synthesized: Synthesized) -> dict[str, Any]:
    function_id, _ = _breaker(synthesized)
    (found,) = [
        rule["Properties"]
        for rule in synthesized.resources("AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]} for t in rule["Properties"].get("Targets", []))
    ]
    return found


def test_the_rule_matches_state_changes_of_exactly_the_two_reputation_alarms(synthesized: Synthesized) -> None:
    rule = _rule(synthesized)

    # The default bus: CloudWatch publishes alarm state changes nowhere else.
    assert "EventBusName" not in rule
    assert rule["State"] == "ENABLED"
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.cloudwatch"]
    assert pattern["detail-type"] == ["CloudWatch Alarm State Change"]
    assert sorted(r["Fn::GetAtt"][0] for r in pattern["resources"]) == _reputation_alarms(synthesized)
    assert all(r["Fn::GetAtt"][1] == "Arn" for r in pattern["resources"])
    assert pattern["detail"] == {"state": {"value": ["ALARM", "OK"]}}


def _rule_id(synthesized: Synthesized) -> str:
    return next(
        logical_id
        for logical_id, rule in synthesized.resources("AWS::Events::Rule").items()
        if rule["Properties"] == _rule(synthesized)
    )


def _dlq_arn(synthesized: Synthesized) -> dict[str, Any]:
    return {"Fn::GetAtt": [synthesized.output_ref(Outputs.BREAKER_DLQ_URL), "Arn"]}


def test_the_rule_invokes_the_breaker_retries_and_dead_letters(synthesized: Synthesized) -> None:
    function_id, _ = _breaker(synthesized)
    (target,) = _rule(synthesized)["Targets"]

    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 20}
    # A state change EventBridge could not deliver waits in the breaker's DLQ instead of vanishing.
    assert target["DeadLetterConfig"] == {"Arn": _dlq_arn(synthesized)}
    rule_id = _rule_id(synthesized)
    synthesized.template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [function_id, "Arn"]},
            "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]},
        },
    )


def test_failed_invocations_go_to_the_same_dlq(synthesized: Synthesized) -> None:
    function_id, _ = _breaker(synthesized)

    # EventBridge invokes Lambda asynchronously: the function's own failures are Lambda's to retry and park.
    synthesized.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": function_id},
            "Qualifier": "$LATEST",
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 6 * 3600,
            "DestinationConfig": {"OnFailure": {"Destination": _dlq_arn(synthesized)}},
        },
    )


def test_the_dlq_is_encrypted_and_only_the_rule_may_send_to_it(synthesized: Synthesized) -> None:
    dlq_id = synthesized.output_ref(Outputs.BREAKER_DLQ_URL)
    dlq_arn = _dlq_arn(synthesized)

    synthesized.template.has_resource_properties(
        "AWS::SQS::Queue", {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 14 * 86400}
    )
    assert synthesized.resources("AWS::SQS::Queue")[dlq_id]["Properties"] == {
        "MessageRetentionPeriod": 14 * 86400,
        "SqsManagedSseEnabled": True,
    }
    (statements,) = [
        policy["Properties"]["PolicyDocument"]["Statement"]
        for policy in synthesized.resources("AWS::SQS::QueuePolicy").values()
        if policy["Properties"]["Queues"] == [{"Ref": dlq_id}]
    ]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert [(s["Principal"], s["Action"], s["Resource"]) for s in allows] == [
        ({"Service": "events.amazonaws.com"}, "sqs:SendMessage", dlq_arn)
    ]
    assert allows[0]["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [_rule_id(synthesized), "Arn"]}}}
    plain_http = {"Bool": {"aws:SecureTransport": "false"}}
    assert any(s["Effect"] == "Deny" and s["Condition"] == plain_http for s in statements)


def test_the_dlq_is_a_stack_output(synthesized: Synthesized) -> None:
    dlq_id = synthesized.output_ref(Outputs.BREAKER_DLQ_URL)

    assert synthesized.json["Outputs"][Outputs.BREAKER_DLQ_URL]["Value"] == {"Ref": dlq_id}
    assert synthesized.resources("AWS::SQS::Queue")[dlq_id]


def test_the_breaker_may_switch_only_the_bulk_lanes_mapping(synthesized: Synthesized) -> None:
    _, function = _breaker(synthesized)
    statements = without_tracing(role_statements(synthesized, function))
    by_service = {
        service: [s for s in statements if any(a.startswith(f"{service}:") for a in as_list(s["Action"]))]
        for service in ("lambda", "cloudwatch", "logs", "sqs")
    }

    assert sum(len(found) for found in by_service.values()) == len(statements)
    (switch,) = by_service["lambda"]
    assert sorted(as_list(switch["Action"])) == ["lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"]
    assert render(switch["Resource"]) == ESM_ARN % _mapping_of(synthesized, "bulk")
    for lane in LANES:
        if lane != "bulk":
            assert _mapping_of(synthesized, lane) not in str(statements)
    (describe,) = by_service["cloudwatch"]
    assert as_list(describe["Action"]) == ["cloudwatch:DescribeAlarms"]
    assert sorted(r["Fn::GetAtt"][0] for r in as_list(describe["Resource"])) == _reputation_alarms(synthesized)
    # Its on-failure destination: sending to its own DLQ, nothing else.
    (dead_letter,) = by_service["sqs"]
    assert "sqs:SendMessage" in as_list(dead_letter["Action"])
    assert not any(a in as_list(dead_letter["Action"]) for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:*"))
    assert as_list(dead_letter["Resource"]) == [_dlq_arn(synthesized)]


def _alarm_names(synthesized: Synthesized, value: Any) -> list[str]:
    """The names of the alarms a comma-separated list of alarm references points at."""
    alarms = synthesized.resources("AWS::CloudWatch::Alarm")
    return [
        alarms[ref.removeprefix("${").removesuffix("}")]["Properties"]["AlarmName"] for ref in render(value).split(",")
    ]


def test_the_breaker_is_told_its_mapping_alarms_and_resume_policy(
    synthesized: Synthesized, domain_synthesized: Synthesized
) -> None:
    prefix = synthesized.config.stack_name
    alarm_names = [f"{prefix}-ses-bounce-rate", f"{prefix}-ses-complaint-rate"]
    for stack, auto_resume in ((synthesized, "false"), (domain_synthesized, "true")):
        _, function = _breaker(stack)
        env = function["Properties"]["Environment"]["Variables"]

        assert env[Env.LANE] == "bulk"
        assert env[Env.BREAKER_MAPPING_ID] == {"Ref": _mapping_of(stack, "bulk")}
        assert _alarm_names(stack, env[Env.BREAKER_ALARMS]) == alarm_names
        assert env[Env.BREAKER_AUTO_RESUME] == auto_resume
        # The runtime's own parser is the contract: deploy-time values stand in for the tokens.
        resolved = {**env, Env.BREAKER_MAPPING_ID: "uuid", Env.BREAKER_ALARMS: ",".join(alarm_names)}
        settings = BreakerSettings.from_env(resolved)
        assert settings.alarm_names == frozenset(alarm_names)
        assert settings.auto_resume is (auto_resume == "true")
    output = synthesized.json["Outputs"][Outputs.REPUTATION_ALARMS]["Value"]
    assert _alarm_names(synthesized, output) == alarm_names
