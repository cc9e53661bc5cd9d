"""Outcome events and webhooks as deployed: the stream, the publisher, dead letters, rules, queues, IAM, alarms."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from mailwright.constants import (
    DEAD_LETTERS_HANDLER,
    DEFAULT_OUTCOME_EVENTS,
    EVENTS_PUBLISHER_HANDLER,
    LANES,
    WEBHOOK_SENDER_HANDLER,
    Env,
    Outputs,
)
from tests.infra.synth import (
    REPO_ROOT,
    Resource,
    Synthesized,
    as_list,
    render,
    role_statements,
    synthesize,
    without_tracing,
)

pytestmark = pytest.mark.slow

SHOP = {
    "name": "shop",
    "url": "https://hooks.shop.example/mailwright",
    "detail_types": ["EmailBounced", "EmailFailed"],
    "metadata": {"tenant": ["acme", "acme-eu"]},
    "max_concurrency": 3,
}
CRM = {"name": "crm-sync", "url": "https://crm.example.org/in", "detail_types": ["EmailComplained"]}
CFN_LINT = "import sys; from cfnlint.runner import main; sys.argv[0] = 'cfn-lint'; sys.exit(main())"


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The stack with two webhook endpoints, two consumer accounts and every detail-type published."""
    return synthesize(
        tmp_path_factory.mktemp("cdk.out-webhooks"),
        outcome_events="all",
        event_consumers=["111122223333", "444455556666"],
        webhooks=[SHOP, CRM],
    )


def function(synth: Synthesized, handler: str) -> tuple[str, Resource]:
    (found,) = [
        (logical_id, resource)
        for logical_id, resource in synth.resources("AWS::Lambda::Function").items()
        if resource["Properties"].get("Handler") == handler
    ]
    return found


def mappings(synth: Synthesized, function_id: str) -> list[dict[str, Any]]:
    return [
        resource["Properties"]
        for resource in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if resource["Properties"]["FunctionName"] == {"Ref": function_id}
    ]


def logical_id_of(value: Any) -> str:
    """The logical id a Ref or Fn::GetAtt names."""
    return str(value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0])


def statements_with(statements: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [s for s in statements if any(a.startswith(prefix) for a in as_list(s["Action"]))]


# -- the stream and the publisher ------------------------------------------------------------------------------


def test_the_message_log_streams_both_images(synthesized: Synthesized) -> None:
    messages_id = synthesized.output_ref(Outputs.MESSAGES_TABLE)
    table = synthesized.resources("AWS::DynamoDB::Table")[messages_id]
    assert table["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_the_publisher_reads_request_writes_from_the_stream_with_retries_and_a_dlq(synthesized: Synthesized) -> None:
    publisher_id, publisher = function(synthesized, EVENTS_PUBLISHER_HANDLER)
    (mapping,) = mappings(synthesized, publisher_id)
    messages_id = synthesized.output_ref(Outputs.MESSAGES_TABLE)
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [messages_id, "StreamArn"]}
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ParallelizationFactor"] == 1
    assert mapping["MaximumRecordAgeInSeconds"] == 86400
    assert mapping["MaximumRetryAttempts"] >= 10
    dlq_id = synthesized.output_ref(Outputs.EVENTS_DLQ_URL)
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    [pattern] = [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]]
    assert pattern == {"eventName": ["INSERT", "MODIFY"], "dynamodb": {"Keys": {"sk": {"S": ["request"]}}}}
    variables = publisher["Properties"]["Environment"]["Variables"]
    assert variables[Env.OUTCOME_EVENTS].split(",") == list(DEFAULT_OUTCOME_EVENTS)
    assert logical_id_of(variables[Env.EVENT_BUS_NAME]) == synthesized.output_ref(Outputs.EVENT_BUS_NAME)


def test_outcome_events_all_publishes_every_type(hooked: Synthesized) -> None:
    _, publisher = function(hooked, EVENTS_PUBLISHER_HANDLER)
    published = publisher["Properties"]["Environment"]["Variables"][Env.OUTCOME_EVENTS].split(",")
    assert {"EmailSent", "EmailDelivered", "EmailOpened", "EmailClicked", "EmailFailed"} <= set(published)


def test_only_the_publisher_may_put_events_and_only_on_the_bus(synthesized: Synthesized) -> None:
    bus_id = synthesized.output_ref(Outputs.EVENT_BUS_NAME)
    putters = []
    for logical_id, resource in synthesized.resources("AWS::Lambda::Function").items():
        for statement in statements_with(role_statements(synthesized, resource), "events:"):
            putters.append(logical_id)
            assert as_list(statement["Action"]) == ["events:PutEvents"]
            assert as_list(statement["Resource"]) == [{"Fn::GetAtt": [bus_id, "Arn"]}]
    publisher_id, _ = function(synthesized, EVENTS_PUBLISHER_HANDLER)
    assert putters == [publisher_id]


def test_the_publisher_touches_nothing_but_the_bus_its_stream_its_dlq_and_its_logs(synthesized: Synthesized) -> None:
    _, publisher = function(synthesized, EVENTS_PUBLISHER_HANDLER)
    statements = role_statements(synthesized, publisher)
    # The stream mapping's dynamodb:ListStreams has no resource-level permissions: the only "*" (untraced by default).
    wildcard = [s for s in statements if as_list(s["Resource"]) == ["*"]]
    assert [sorted(as_list(s["Action"])) for s in wildcard] == [["dynamodb:ListStreams"]]
    scoped = {a for s in statements if s not in wildcard for a in as_list(s["Action"])}
    assert scoped == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:SendMessage",
        "events:PutEvents",
    }


# -- dead letters ----------------------------------------------------------------------------------------------


def test_every_dlq_feeds_the_dead_letter_function(synthesized: Synthesized) -> None:
    function_id, resource = function(synthesized, DEAD_LETTERS_HANDLER)
    sources = {logical_id_of(m["EventSourceArn"]) for m in mappings(synthesized, function_id)}
    expected = {synthesized.output_ref(Outputs.dlq_url(lane)) for lane in LANES}
    expected.add(synthesized.output_ref(Outputs.INGEST_DLQ_URL))
    assert sources == expected
    for mapping in mappings(synthesized, function_id):
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queues = json.loads(json.dumps(render(resource["Properties"]["Environment"]["Variables"][Env.DEAD_LETTER_QUEUES])))
    assert "ingest" in queues and all(lane in queues for lane in LANES)


def test_the_dead_letter_function_may_update_the_log_and_send_to_parked_queues_only(synthesized: Synthesized) -> None:
    _, resource = function(synthesized, DEAD_LETTERS_HANDLER)
    statements = without_tracing(role_statements(synthesized, resource))
    [dynamo] = statements_with(statements, "dynamodb:")
    assert as_list(dynamo["Action"]) == ["dynamodb:UpdateItem"]
    assert as_list(dynamo["Resource"]) == [{"Fn::GetAtt": [synthesized.output_ref(Outputs.MESSAGES_TABLE), "Arn"]}]
    send = [s for s in statements if "sqs:SendMessage" in as_list(s["Action"])]
    targets = {logical_id_of(r) for s in send for r in as_list(s["Resource"])}
    assert targets == {synthesized.output_ref(Outputs.parked_dlq_url(lane)) for lane in LANES}


def test_parked_queues_are_encrypted_keep_messages_14_days_and_back_their_dlq(synthesized: Synthesized) -> None:
    for lane in LANES:
        parked_id = synthesized.output_ref(Outputs.parked_dlq_url(lane))
        queue = synthesized.resources("AWS::SQS::Queue")[parked_id]
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
        assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 86400
        # The DLQ's own dead-letter queue: a backstop, and a source SQS's message move task (redrive) accepts
        dlq = synthesized.resources("AWS::SQS::Queue")[synthesized.output_ref(Outputs.dlq_url(lane))]
        redrive = dlq["Properties"]["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [parked_id, "Arn"]}
        assert redrive["maxReceiveCount"] >= 50


def test_lane_dlq_alarms_watch_the_parked_queues_and_the_dlqs_age(synthesized: Synthesized) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"] for a in synthesized.resources("AWS::CloudWatch::Alarm").values()
    }
    stack = synthesized.config.stack_name
    for lane in LANES:
        parked = synthesized.output_ref(Outputs.parked_dlq_url(lane))
        dlq_alarm = alarms[f"{stack}-dlq-{lane}"]
        assert dlq_alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [parked, "QueueName"]}}]
        age = alarms[f"{stack}-age-{lane}-dlq"]
        dlq = synthesized.output_ref(Outputs.dlq_url(lane))
        assert age["MetricName"] == "ApproximateAgeOfOldestMessage"
        assert age["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]
    assert f"{stack}-dlq-events-publisher" in alarms
    assert f"{stack}-errors-events-publisher" in alarms and f"{stack}-errors-dead-letters" in alarms


# -- consumers -------------------------------------------------------------------------------------------------


def test_consumer_accounts_may_manage_only_their_own_rules(hooked: Synthesized) -> None:
    policies = [p["Properties"] for p in hooked.resources("AWS::Events::EventBusPolicy").values()]
    assert sorted(p["StatementId"] for p in policies) == ["ConsumerRules111122223333", "ConsumerRules444455556666"]
    for policy in policies:
        account = policy["StatementId"].removeprefix("ConsumerRules")
        statement = policy["Statement"]
        assert render(statement["Principal"]["AWS"]) == f"arn:${{AWS::Partition}}:iam::{account}:root"
        assert statement["Condition"] == {"StringEqualsIfExists": {"events:creatorAccount": account}}
        assert "events:PutRule" in statement["Action"] and "events:PutEvents" not in statement["Action"]
        assert render(statement["Resource"]).endswith(f":rule/${{{hooked.output_ref(Outputs.EVENT_BUS_NAME)}}}/*")


def test_no_consumers_no_bus_policy(synthesized: Synthesized) -> None:
    assert synthesized.resources("AWS::Events::EventBusPolicy") == {}


# -- webhooks --------------------------------------------------------------------------------------------------


def endpoint_output(synth: Synthesized, name: str) -> dict[str, Any]:
    return dict(synth.json["Outputs"][Outputs.webhook_endpoint(name)]["Value"])


def test_no_webhooks_no_sender(synthesized: Synthesized) -> None:
    assert [
        r for r in synthesized.resources("AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == WEBHOOK_SENDER_HANDLER
    ] == []  # fmt: skip
    assert Outputs.WEBHOOK_STATE_TABLE in synthesized.json["Outputs"]


def test_each_endpoint_has_a_rule_matching_its_types_and_metadata(hooked: Synthesized) -> None:
    rules = {r["Properties"].get("Name"): r["Properties"] for r in hooked.resources("AWS::Events::Rule").values()}
    shop = rules[f"{hooked.config.stack_name}-webhook-shop"]
    assert shop["EventPattern"] == {
        "source": ["mailwright"],
        "detail-type": ["EmailBounced", "EmailFailed"],
        "detail": {"metadata": {"tenant": ["acme", "acme-eu"]}},
    }
    assert logical_id_of(shop["EventBusName"]) == hooked.output_ref(Outputs.EVENT_BUS_NAME)
    [target] = shop["Targets"]
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    assert "DeadLetterConfig" in target and "InputPath" not in target and "Input" not in target
    crm = rules[f"{hooked.config.stack_name}-webhook-crm-sync"]
    assert crm["EventPattern"] == {"source": ["mailwright"], "detail-type": ["EmailComplained"]}


def test_each_endpoint_has_an_encrypted_queue_with_a_dlq_and_its_own_concurrency(hooked: Synthesized) -> None:
    sender_id, sender = function(hooked, WEBHOOK_SENDER_HANDLER)
    by_queue = {logical_id_of(m["EventSourceArn"]): m for m in mappings(hooked, sender_id)}
    for name, concurrency in (("shop", 3), ("crm-sync", 2)):
        outputs = render(hooked.json["Outputs"][Outputs.webhook_endpoint(name)]["Value"])
        queue_id = next(q for q in hooked.resources("AWS::SQS::Queue") if f"${{{q}}}" in outputs and "Dlq" not in q)
        queue = hooked.resources("AWS::SQS::Queue")[queue_id]["Properties"]
        assert queue["SqsManagedSseEnabled"] is True
        assert queue["MessageRetentionPeriod"] == 14 * 86400
        assert queue["RedrivePolicy"]["maxReceiveCount"] == 50
        assert queue["VisibilityTimeout"] >= 6 * sender["Properties"]["Timeout"]
        mapping = by_queue[queue_id]
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": concurrency}
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_each_endpoint_has_a_generated_whsec_compatible_secret(hooked: Synthesized) -> None:
    secrets = [
        s["Properties"] for s in hooked.resources("AWS::SecretsManager::Secret").values()
        if "webhook signing secret" in s["Properties"].get("Description", "")
    ]  # fmt: skip
    assert len(secrets) == 2
    for secret in secrets:
        generated = secret["GenerateSecretString"]
        assert generated["GenerateStringKey"] == "key"
        assert generated["PasswordLength"] % 4 == 0 and generated["PasswordLength"] >= 24
        assert generated["ExcludePunctuation"] is True and generated["IncludeSpace"] is False


def test_only_the_sender_reads_webhook_secrets(hooked: Synthesized) -> None:
    secret_ids = {
        logical_id for logical_id, s in hooked.resources("AWS::SecretsManager::Secret").items()
        if "webhook signing secret" in s["Properties"].get("Description", "")
    }  # fmt: skip
    sender_id, _ = function(hooked, WEBHOOK_SENDER_HANDLER)
    readers = set()
    for logical_id, resource in hooked.resources("AWS::Lambda::Function").items():
        for statement in statements_with(role_statements(hooked, resource), "secretsmanager:"):
            if {logical_id_of(r) for r in as_list(statement["Resource"])} & secret_ids:
                readers.add(logical_id)
    assert readers == {sender_id}


def test_the_sender_may_do_only_what_it_needs(hooked: Synthesized) -> None:
    _, sender = function(hooked, WEBHOOK_SENDER_HANDLER)
    statements = without_tracing(role_statements(hooked, sender))
    [dynamo] = statements_with(statements, "dynamodb:")
    assert sorted(as_list(dynamo["Action"])) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    [s3] = statements_with(statements, "s3:")
    assert as_list(s3["Action"]) == ["s3:PutObject"]
    bucket = hooked.output_ref(Outputs.WEBHOOK_ARCHIVE_BUCKET)
    assert render(as_list(s3["Resource"])) == [f"${{{bucket}.Arn}}/deliveries/*"]
    assert not statements_with(statements, "events:")
    for statement in statements_with(statements, "secretsmanager:"):
        assert set(as_list(statement["Action"])) <= {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}


def test_the_sender_knows_each_endpoint_by_its_queue(hooked: Synthesized) -> None:
    _, sender = function(hooked, WEBHOOK_SENDER_HANDLER)
    variables = sender["Properties"]["Environment"]["Variables"]
    endpoints = json.dumps(render(variables[Env.WEBHOOK_ENDPOINTS]))
    assert "hooks.shop.example/mailwright" in endpoints and '\\"name\\":\\"crm-sync\\"' in endpoints
    assert Env.WEBHOOK_ALLOW_LOOPBACK not in variables and Env.WEBHOOK_RETRY not in variables


def test_the_archive_is_private_encrypted_ssl_only_and_expires(hooked: Synthesized) -> None:
    bucket = hooked.resources("AWS::S3::Bucket")[hooked.output_ref(Outputs.WEBHOOK_ARCHIVE_BUCKET)]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    [lifecycle] = bucket["LifecycleConfiguration"]["Rules"]
    assert lifecycle["ExpirationInDays"] == hooked.config.events.webhook_archive_days
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"] for p in hooked.resources("AWS::S3::BucketPolicy").values()
        if logical_id_of(p["Properties"]["Bucket"]) == hooked.output_ref(Outputs.WEBHOOK_ARCHIVE_BUCKET)
    ]  # fmt: skip
    [statements] = policies
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )


def test_each_endpoint_has_a_suspension_alarm_and_a_dlq_alarm(hooked: Synthesized) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"] for a in hooked.resources("AWS::CloudWatch::Alarm").values()
    }
    stack = hooked.config.stack_name
    for name in ("shop", "crm-sync"):
        suspended = alarms[f"{stack}-webhook-{name}-suspended"]
        assert suspended["MetricName"] == "WebhookSuspended" and suspended["Namespace"] == "Mailwright"
        assert {"Name": "endpoint", "Value": name} in suspended["Dimensions"]
        assert suspended["TreatMissingData"] == "ignore"
        assert f"mailwright webhooks resume {name}" in suspended["AlarmDescription"]
        assert f"{stack}-dlq-webhook-{name}" in alarms
    assert f"{stack}-errors-webhook-sender" in alarms


def test_outputs_name_each_endpoint_for_the_cli(hooked: Synthesized) -> None:
    value = render(endpoint_output(hooked, "shop"))
    assert "hooks.shop.example/mailwright" in json.dumps(value)
    for key in ("queue_url", "dlq_url", "secret_arn", "detail_types"):
        assert key in json.dumps(value)


def test_cfn_lint_finds_nothing_with_webhooks(hooked: Synthesized) -> None:
    template = hooked.outdir / f"{hooked.stack.artifact_id}.template.json"
    result = subprocess.run(  # noqa: S603 - our own interpreter, our own file
        [sys.executable, "-c", CFN_LINT, "--", str(template)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
