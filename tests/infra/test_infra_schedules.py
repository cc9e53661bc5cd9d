"""Scheduled sends: the schedule group, its customer managed key, the execution role, the DLQ and the grants."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from mailwright.constants import LANES, SCHEDULE_INDEX, SCHEDULE_INDEX_ATTRIBUTES, Env, Keys, Outputs
from tests.infra.synth import Synthesized, as_list, render, role_statements

pytestmark = pytest.mark.slow

GROUP_SCHEDULES = ":schedule/{group}/*"


def group_name(synthesized: Synthesized) -> str:
    return str(synthesized.json["Outputs"][Outputs.SCHEDULE_GROUP]["Value"])


def key_id(synthesized: Synthesized) -> str:
    (found,) = [
        logical_id
        for logical_id, resource in synthesized.resources("AWS::KMS::Key").items()
        if "scheduled-send" in resource["Properties"].get("Description", "")
    ]
    return found


def scheduler_role(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, resource)
        for logical_id, resource in synthesized.resources("AWS::IAM::Role").items()
        if "scheduled email requests" in resource["Properties"].get("Description", "")
    ]
    return found


def statements_of_role(synthesized: Synthesized, role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_group_and_key_with_rotation(synthesized: Synthesized) -> None:
    synthesized.template.has_resource_properties("AWS::Scheduler::ScheduleGroup", {"Name": group_name(synthesized)})
    key = synthesized.resources("AWS::KMS::Key")[key_id(synthesized)]
    assert key["Properties"]["EnableKeyRotation"] is True
    # The key policy gives the account (IAM) the key, and nobody else: grants name the users.
    principals = [s["Principal"] for s in key["Properties"]["KeyPolicy"]["Statement"]]
    assert all(set(p) == {"AWS"} for p in principals)


def test_execution_role_sends_to_lane_queues_and_dlq_only(synthesized: Synthesized) -> None:
    role_id, role = scheduler_role(synthesized)
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    assert render(trust["Condition"]["ArnLike"]["aws:SourceArn"]).endswith(
        GROUP_SCHEDULES.format(group=group_name(synthesized))
    )
    statements = statements_of_role(synthesized, role_id)
    sends = [s for s in statements if "sqs:SendMessage" in as_list(s["Action"])]
    targets = sorted(render(r) for s in sends for r in as_list(s["Resource"]))
    lane_queues = sorted(f"${{{synthesized.queue_of(lane)[0]}.Arn}}" for lane in LANES)
    dlq_arn = render(
        synthesized.workers()["standard"][1]["Properties"]["Environment"]["Variables"][Env.SCHEDULE_DLQ_ARN]
    )
    assert targets == sorted([*lane_queues, dlq_arn])
    kms = [s for s in statements if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert [as_list(s["Action"]) for s in kms] == [["kms:Decrypt"]]
    assert render(kms[0]["Resource"]) == f"${{{key_id(synthesized)}.Arn}}"
    allowed = {a for s in statements for a in as_list(s["Action"])}
    assert allowed <= {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "kms:Decrypt"}


@pytest.mark.parametrize("lane", LANES)
def test_worker_schedules_in_its_group_with_its_queue_as_target(synthesized: Synthesized, lane: str) -> None:
    _, worker = synthesized.workers()[lane]
    env = worker["Properties"]["Environment"]["Variables"]
    role_id, _ = scheduler_role(synthesized)
    assert env[Env.SCHEDULE_GROUP] == group_name(synthesized)
    assert render(env[Env.QUEUE_ARN]) == f"${{{synthesized.queue_of(lane)[0]}.Arn}}"
    assert render(env[Env.SCHEDULER_ROLE_ARN]) == f"${{{role_id}.Arn}}"
    assert render(env[Env.SCHEDULE_KEY_ARN]) == f"${{{key_id(synthesized)}.Arn}}"

    statements = role_statements(synthesized, worker)
    (schedules,) = [s for s in statements if any(a.startswith("scheduler:") for a in as_list(s["Action"]))]
    assert sorted(as_list(schedules["Action"])) == [
        "scheduler:CreateSchedule",
        "scheduler:DeleteSchedule",
        "scheduler:GetSchedule",
        "scheduler:UpdateSchedule",
    ]
    assert render(schedules["Resource"]).endswith(GROUP_SCHEDULES.format(group=group_name(synthesized)))
    (pass_role,) = [s for s in statements if "iam:PassRole" in as_list(s["Action"])]
    assert render(pass_role["Resource"]) == f"${{{role_id}.Arn}}"
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    (kms,) = [s for s in statements if render(s["Resource"]) == f"${{{key_id(synthesized)}.Arn}}"]
    assert sorted(as_list(kms["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert kms["Condition"] == {"StringLike": {"kms:ViaService": "scheduler.*.amazonaws.com"}}


def test_schedule_dlq_is_encrypted_and_alarmed(synthesized: Synthesized) -> None:
    dlq_ref = synthesized.workers()["standard"][1]["Properties"]["Environment"]["Variables"][Env.SCHEDULE_DLQ_ARN]
    dlq_id = dlq_ref["Fn::GetAtt"][0]
    dlq = synthesized.resources("AWS::SQS::Queue")[dlq_id]
    assert dlq["Properties"]["SqsManagedSseEnabled"] is True
    synthesized.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": Match.string_like_regexp("dlq-schedules"),
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}],
        },
    )


def test_messages_table_has_the_sparse_schedule_index(synthesized: Synthesized) -> None:
    synthesized.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "GlobalSecondaryIndexes": Match.array_with(
                [
                    {
                        "IndexName": SCHEDULE_INDEX,
                        "KeySchema": [
                            {"AttributeName": Keys.SCHEDULE_OWNER, "KeyType": "HASH"},
                            {"AttributeName": Keys.SEND_AT, "KeyType": "RANGE"},
                        ],
                        "Projection": {
                            "ProjectionType": "INCLUDE",
                            "NonKeyAttributes": list(SCHEDULE_INDEX_ATTRIBUTES),
                        },
                    }
                ]
            )
        },
    )


def test_api_may_only_delete_schedules(synthesized: Synthesized) -> None:
    (api,) = [
        resource
        for resource in synthesized.resources("AWS::Lambda::Function").values()
        if resource["Properties"].get("Handler") == "mailwright.handlers.api.handler"
    ]
    actions = {a for s in role_statements(synthesized, api) for a in as_list(s["Action"]) if a.startswith("scheduler:")}
    assert actions == {"scheduler:DeleteSchedule"}
