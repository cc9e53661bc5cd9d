"""SES feedback infrastructure: event destination, topic (policy, key), queue + DLQ, feedback function and its IAM."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra.config import (
    FEEDBACK_MAX_RECEIVE_COUNT,
    FEEDBACK_TIMEOUT_SECONDS,
    MailwrightConfig,
)
from mailwright.constants import FEEDBACK_HANDLER, SES_MESSAGE_ID_INDEX, VARIANTS_KEY_PREFIX, Env, Outputs
from tests.infra.synth import Resource, Synthesized, render, without_tracing

# Each module shares the session's synthesized stacks (see conftest.py).
pytestmark = pytest.mark.slow

CONFIG_SET_ARN = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/${%s}"
# CloudFormation's names: what suppresses or rejects, and deliveries (cdk.json); opens and clicks opt-in.
SUPPRESSION_EVENT_TYPES = ["bounce", "complaint", "reject", "renderingFailure"]
DELIVERY_EVENT_TYPES = ["delivery", "deliveryDelay", "subscription"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _function(synthesized: Synthesized) -> tuple[str, Resource]:
    (found,) = [
        (logical_id, resource)
        for logical_id, resource in synthesized.resources("AWS::Lambda::Function").items()
        if resource["Properties"].get("Handler") == FEEDBACK_HANDLER
    ]
    return found


def _statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    _, function = _function(synthesized)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _configuration_set_id(synthesized: Synthesized) -> str:
    (logical_id,) = synthesized.resources("AWS::SES::ConfigurationSet")
    return logical_id


def test_the_configuration_set_publishes_suppressing_and_delivery_events_to_the_topic(
    synthesized: Synthesized,
) -> None:
    (destination,) = synthesized.resources("AWS::SES::ConfigurationSetEventDestination").values()
    props = destination["Properties"]

    assert props["ConfigurationSetName"] == {"Ref": _configuration_set_id(synthesized)}
    assert props["EventDestination"]["Enabled"] is True
    # Never Send (the worker logs the send itself), opens and clicks only when opted in
    assert sorted(props["EventDestination"]["MatchingEventTypes"]) == sorted(
        SUPPRESSION_EVENT_TYPES + DELIVERY_EVENT_TYPES
    )
    assert props["EventDestination"]["SnsDestination"] == {
        "TopicARN": {"Ref": synthesized.output_ref(Outputs.FEEDBACK_TOPIC_ARN)}
    }


def test_opens_and_clicks_are_published_once_opted_in(domain_synthesized: Synthesized) -> None:
    (destination,) = domain_synthesized.resources("AWS::SES::ConfigurationSetEventDestination").values()
    assert sorted(destination["Properties"]["EventDestination"]["MatchingEventTypes"]) == sorted(
        [*SUPPRESSION_EVENT_TYPES, "open", "click"]
    )


def test_only_ses_of_this_account_and_configuration_set_may_publish(synthesized: Synthesized) -> None:
    topic_id = synthesized.output_ref(Outputs.FEEDBACK_TOPIC_ARN)
    (policy,) = [
        p["Properties"]
        for p in synthesized.resources("AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_id} in p["Properties"]["Topics"]
    ]
    statements = policy["PolicyDocument"]["Statement"]

    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "ses.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    conditions = {key.lower(): value for key, value in allow["Condition"]["StringEquals"].items()}
    assert conditions["aws:sourceaccount"] == {"Ref": "AWS::AccountId"}
    assert render(conditions["aws:sourcearn"]) == CONFIG_SET_ARN % _configuration_set_id(synthesized)
    # ... and nobody over plain HTTP.
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )


def test_the_topic_is_encrypted_with_a_key_ses_may_use(synthesized: Synthesized) -> None:
    topic = synthesized.resources("AWS::SNS::Topic")[synthesized.output_ref(Outputs.FEEDBACK_TOPIC_ARN)]
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = synthesized.resources("AWS::KMS::Key")[key_id]["Properties"]

    assert key["EnableKeyRotation"] is True
    (ses,) = [s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "ses.amazonaws.com"}]
    assert sorted(_as_list(ses["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert ses["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert render(ses["Condition"]["ArnLike"]["aws:SourceArn"]) == CONFIG_SET_ARN % _configuration_set_id(synthesized)


def test_the_topic_feeds_the_feedback_queue(synthesized: Synthesized) -> None:
    queue_id = synthesized.output_ref(Outputs.FEEDBACK_QUEUE_URL)
    dlq_id = synthesized.output_ref(Outputs.FEEDBACK_DLQ_URL)
    topic_id = synthesized.output_ref(Outputs.FEEDBACK_TOPIC_ARN)

    synthesized.template.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "sqs",
            "TopicArn": {"Ref": topic_id},
            "Endpoint": {"Fn::GetAtt": [queue_id, "Arn"]},
            # What SNS cannot deliver waits in the DLQ too.
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}},
        },
    )
    synthesized.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": Match.array_with([{"Ref": queue_id}]),
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Action": "sqs:SendMessage",
                                "Principal": {"Service": "sns.amazonaws.com"},
                                "Condition": {"ArnEquals": {"aws:SourceArn": {"Ref": topic_id}}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_the_feedback_queue_redrives_to_a_fourteen_day_dlq(synthesized: Synthesized) -> None:
    queues = synthesized.resources("AWS::SQS::Queue")
    queue = queues[synthesized.output_ref(Outputs.FEEDBACK_QUEUE_URL)]["Properties"]
    dlq_id = synthesized.output_ref(Outputs.FEEDBACK_DLQ_URL)
    dlq = queues[dlq_id]["Properties"]

    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": FEEDBACK_MAX_RECEIVE_COUNT,
    }
    assert FEEDBACK_MAX_RECEIVE_COUNT >= 5
    assert queue["VisibilityTimeout"] >= 6 * FEEDBACK_TIMEOUT_SECONDS
    # SQS-managed encryption: SNS can deliver to it (a queue under alias/aws/sqs could not).
    assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    assert dlq["MessageRetentionPeriod"] == 14 * 86400


def test_the_feedback_function_runs_like_the_workers(synthesized: Synthesized) -> None:
    function_id, function = _function(synthesized)
    props = function["Properties"]
    (_, worker), *_ = synthesized.workers().values()

    assert synthesized.output_ref(Outputs.FEEDBACK_WORKER_NAME) == function_id
    assert props["Runtime"] == "python3.12" and props["Architectures"] == ["arm64"]
    assert props["Timeout"] == FEEDBACK_TIMEOUT_SECONDS
    # One code asset for every function.
    assert props["Code"] == worker["Properties"]["Code"]
    log_group = synthesized.resources("AWS::Logs::LogGroup")[props["LoggingConfig"]["LogGroup"]["Ref"]]
    assert log_group["Properties"]["RetentionInDays"] == 30


def test_the_feedback_function_consumes_its_queue_with_partial_batch_responses(synthesized: Synthesized) -> None:
    function_id, _ = _function(synthesized)
    queue_id = synthesized.output_ref(Outputs.FEEDBACK_QUEUE_URL)

    synthesized.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
            "FunctionName": {"Ref": function_id},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": Match.any_value()},
        },
    )


def test_the_feedback_function_is_told_its_tables_and_policy(
    synthesized: Synthesized, config: MailwrightConfig
) -> None:
    _, function = _function(synthesized)
    env = function["Properties"]["Environment"]["Variables"]
    outputs = synthesized.json["Outputs"]

    assert env[Env.SUPPRESSION_TABLE] == outputs[Outputs.SUPPRESSION_TABLE]["Value"]
    assert env[Env.MESSAGES_TABLE] == outputs[Outputs.MESSAGES_TABLE]["Value"]
    assert env[Env.MESSAGE_LOG_TTL_DAYS] == str(config.message_log_ttl_days)
    assert (
        env[Env.SOFT_BOUNCE_THRESHOLD],
        env[Env.SOFT_BOUNCE_WINDOW_DAYS],
        env[Env.SOFT_BOUNCE_SUPPRESSION_DAYS],
    ) == (
        "3",
        "7",
        "14",
    )
    assert env[Env.MIRROR_SES_SUPPRESSION] == "false"
    # Nothing a send worker needs: no sending, no templates, no secret.
    assert Env.CONFIGURATION_SET not in env and Env.UNSUBSCRIBE_SECRET_ARN not in env


def test_the_feedback_function_has_least_privilege(synthesized: Synthesized) -> None:
    statements = _statements(synthesized)
    suppression = {"Fn::GetAtt": [synthesized.output_ref(Outputs.SUPPRESSION_TABLE), "Arn"]}
    messages = {"Fn::GetAtt": [synthesized.output_ref(Outputs.MESSAGES_TABLE), "Arn"]}
    queue = {"Fn::GetAtt": [synthesized.output_ref(Outputs.FEEDBACK_QUEUE_URL), "Arn"]}

    # Exactly one statement may name "*": X-Ray's two actions, which have no resource type.
    statements = without_tracing(statements)
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "*" not in _as_list(statement["Resource"]), statement
        assert not any("*" in a for a in _as_list(statement["Action"])), statement
        assert not {"dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} & set(
            _as_list(statement["Action"])
        )
    # A/B variants: GetItem and UpdateItem of the idempotency table's variants items only (their own statement)
    idempotency = {"Fn::GetAtt": [synthesized.output_ref(Outputs.IDEMPOTENCY_TABLE), "Arn"]}
    (variants,) = [s for s in statements if idempotency in _as_list(s["Resource"])]
    assert sorted(_as_list(variants["Action"])) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert _as_list(variants["Resource"]) == [idempotency]
    assert variants["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{VARIANTS_KEY_PREFIX}*"]}}
    statements = [s for s in statements if s is not variants]
    dynamodb = {
        action: [render(r) for r in _as_list(s["Resource"])]
        for s in statements
        for action in _as_list(s["Action"])
        if action.startswith("dynamodb:")
    }
    table_name = synthesized.output_ref(Outputs.MESSAGES_TABLE)
    assert dynamodb["dynamodb:Query"] == [f"${{{table_name}.Arn}}/index/{SES_MESSAGE_ID_INDEX}"]
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"):
        assert sorted(dynamodb[action]) == sorted(render([suppression, messages]))
    sqs = [s for s in statements if any(a.startswith("sqs:") for a in _as_list(s["Action"]))]
    assert [_as_list(s["Resource"]) for s in sqs] == [[queue]]
    assert not [s for s in statements if any(a.startswith("ses:") for a in _as_list(s["Action"]))]


def test_mirroring_grants_only_put_suppressed_destination(domain_synthesized: Synthesized) -> None:
    _, function = _function(domain_synthesized)
    statements = without_tracing(_statements(domain_synthesized))
    ses = [s for s in statements if any(a.startswith("ses:") for a in _as_list(s["Action"]))]

    assert function["Properties"]["Environment"]["Variables"][Env.MIRROR_SES_SUPPRESSION] == "true"
    # The account-level suppression list has no resource type: "*" is the only resource there is.
    assert ses == [
        {
            "Action": "ses:PutSuppressedDestination",
            "Effect": "Allow",
            "Resource": "*",
            "Sid": "MirrorSuppressionsToSes",
        }
    ]
    assert [s for s in statements if "*" in _as_list(s["Resource"])] == ses


def test_the_send_workers_get_nothing_of_the_feedback_path(domain_synthesized: Synthesized) -> None:
    for _, worker in domain_synthesized.workers().values():
        role_id = worker["Properties"]["Role"]["Fn::GetAtt"][0]
        actions = {
            action
            for policy in domain_synthesized.resources("AWS::IAM::Policy").values()
            if {"Ref": role_id} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            for action in _as_list(statement["Action"])
        }
        assert "ses:PutSuppressedDestination" not in actions
