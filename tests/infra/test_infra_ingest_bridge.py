"""The optional ingest bridge: Kafka (MSK, self-managed) and RabbitMQ (Amazon MQ) mappings, IAM, alarms, outputs."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from aws_cdk.assertions import Match

from mailwright.constants import BRIDGE_HANDLER, LANES, Env, Outputs
from tests.infra.synth import REPO_ROOT, Resource, Synthesized, as_list, render, role_statements, synthesize
from tests.infra.test_infra_cfn_lint import CFN_LINT

pytestmark = pytest.mark.slow

ACCOUNT = "123456789012"
CLUSTER = f"arn:aws:kafka:us-east-1:{ACCOUNT}:cluster/events/0a1b2c3d-4e5f-6789-abcd-ef0123456789-3"
BROKER = f"arn:aws:mq:us-east-1:{ACCOUNT}:broker:requests:b-9bcfa592-423a-4942-879d-eb284b418fc8"
RABBIT_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:mailwright/rabbitmq-AbCdEf"
SCRAM_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:mailwright/kafka-scram-AbCdEf"
SECRET_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
NETWORK_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
}


@pytest.fixture(scope="module")
def msk_and_rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """MSK (IAM authentication) and Amazon MQ for RabbitMQ, both into the bridge."""
    return synthesize(
        tmp_path_factory.mktemp("cdk.out-ingest"),
        ingest={
            "kafka": {"cluster_arn": CLUSTER, "topic": "email-requests", "consumer_group": "mailwright-prod"},
            "rabbitmq": {"broker_arn": BROKER, "secret_arn": RABBIT_SECRET, "queue": "email-requests"},
        },
    )


@pytest.fixture(scope="module")
def self_managed(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Self-managed Kafka in a VPC with SASL/SCRAM credentials under a customer managed key."""
    return synthesize(
        tmp_path_factory.mktemp("cdk.out-ingest-self-managed"),
        ingest={
            "kafka": {
                "bootstrap_servers": ["kafka-1.internal:9096", "kafka-2.internal:9096"],
                "topic": "email-requests",
                "auth": "sasl_scram_512",
                "secret_arn": SCRAM_SECRET,
                "secret_kms_key_arn": SECRET_KEY,
                "subnet_ids": ["subnet-0abc", "subnet-0def"],
                "security_group_ids": ["sg-0123"],
                "retry_attempts": 5,
                "max_record_age_seconds": 3600,
                "minimum_pollers": 2,
                "maximum_pollers": 4,
            }
        },
    )


def bridge(synth: Synthesized) -> Resource:
    (function,) = [
        resource
        for resource in synth.resources("AWS::Lambda::Function").values()
        if resource["Properties"].get("Handler") == BRIDGE_HANDLER
    ]
    return function


def mapping(synth: Synthesized, key: str, value: Any) -> Resource:
    (found,) = [
        resource
        for resource in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if render(resource["Properties"].get(key)) == value
    ]
    return found["Properties"]


def grants(synth: Synthesized) -> dict[str, set[str]]:
    """The bridge role's allowed actions by resource (statements are merged by minimizePolicies)."""
    found: dict[str, set[str]] = {}
    for statement in role_statements(synth, bridge(synth)):
        for resource in render(as_list(statement["Resource"])):
            found.setdefault(resource, set()).update(as_list(statement["Action"]))
    return found


def test_without_ingest_settings_there_is_no_bridge(synthesized: Synthesized) -> None:
    handlers = {r["Properties"].get("Handler") for r in synthesized.resources("AWS::Lambda::Function").values()}

    assert BRIDGE_HANDLER not in handlers
    assert Outputs.BRIDGE_FUNCTION_NAME not in synthesized.json["Outputs"]
    assert "dlq-kafka" not in {a.split("-", 1)[1] for a in synthesized.stack.alarms.alarms}


def test_the_bridge_is_told_every_lane_queue_the_templates_and_the_message_log(msk_and_rabbitmq: Synthesized) -> None:
    variables = bridge(msk_and_rabbitmq)["Properties"]["Environment"]["Variables"]

    for lane in LANES:
        queue_id, _ = msk_and_rabbitmq.queue_of(lane)
        assert variables[Env.lane_queue_url(lane)] == {"Ref": queue_id}
    assert set(variables) >= {Env.TEMPLATES_BUCKET, Env.MESSAGES_TABLE, Env.MESSAGE_LOG_TTL_DAYS}


def test_the_msk_mapping_has_bounded_retries_bisection_an_on_failure_queue_and_provisioned_pollers(
    msk_and_rabbitmq: Synthesized,
) -> None:
    props = mapping(msk_and_rabbitmq, "EventSourceArn", CLUSTER)
    failure_queue = msk_and_rabbitmq.output_ref(Outputs.KAFKA_FAILURE_QUEUE_URL)

    assert props["Topics"] == ["email-requests"]
    assert props["AmazonManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": "mailwright-prod"}
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["MaximumRetryAttempts"] == 3
    assert props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRecordAgeInSeconds"] == 21600
    assert props["ProvisionedPollerConfig"] == {"MinimumPollers": 1, "MaximumPollers": 2}
    assert render(props["DestinationConfig"]["OnFailure"]["Destination"]) == "${" + failure_queue + ".Arn}"
    assert "SourceAccessConfigurations" not in props  # IAM authentication: the function's role


def test_the_kafka_failure_queue_is_encrypted_and_alarmed(msk_and_rabbitmq: Synthesized) -> None:
    queue_id = msk_and_rabbitmq.output_ref(Outputs.KAFKA_FAILURE_QUEUE_URL)
    queue = msk_and_rabbitmq.resources("AWS::SQS::Queue")[queue_id]["Properties"]

    assert queue["SqsManagedSseEnabled"] is True
    msk_and_rabbitmq.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "Mailwright-dlq-kafka",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}],
            "Threshold": 1,
        },
    )
    for name in ("errors-bridge", "throttles-bridge"):
        msk_and_rabbitmq.template.has_resource_properties(
            "AWS::CloudWatch::Alarm", {"AlarmName": f"Mailwright-{name}", "AlarmActions": Match.any_value()}
        )


def test_the_rabbitmq_mapping_reads_one_queue_with_the_brokers_credentials(msk_and_rabbitmq: Synthesized) -> None:
    props = mapping(msk_and_rabbitmq, "EventSourceArn", BROKER)

    assert props["Queues"] == ["email-requests"]
    assert props["SourceAccessConfigurations"] == [
        {"Type": "BASIC_AUTH", "URI": RABBIT_SECRET},
        {"Type": "VIRTUAL_HOST", "URI": "/"},
    ]
    assert props["BatchSize"] == 100
    # No retry controls exist for Amazon MQ mappings: a failed batch goes back to the broker.
    assert "MaximumRetryAttempts" not in props


def test_the_bridge_role_holds_exactly_what_the_mappings_and_the_bridge_need(msk_and_rabbitmq: Synthesized) -> None:
    found = grants(msk_and_rabbitmq)
    topic = CLUSTER.replace(":cluster/", ":topic/") + "/email-requests"
    group = CLUSTER.replace(":cluster/", ":group/") + "/mailwright-prod"
    arn = "${{{}.Arn}}".format
    lanes = {arn(msk_and_rabbitmq.queue_of(lane)[0]) for lane in LANES}
    failures = arn(msk_and_rabbitmq.output_ref(Outputs.KAFKA_FAILURE_QUEUE_URL))
    messages = arn(msk_and_rabbitmq.output_ref(Outputs.MESSAGES_TABLE))

    assert found[CLUSTER] == {
        "kafka:DescribeClusterV2",
        "kafka:GetBootstrapBrokers",
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeClusterDynamicConfiguration",
    }
    assert found[topic] == {"kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"}
    assert found[group] == {"kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"}
    assert found[BROKER] == {"mq:DescribeBroker"}
    assert found[RABBIT_SECRET] == {"secretsmanager:GetSecretValue"}
    assert found["*"] == NETWORK_ACTIONS  # no X-Ray grant: tracing is off by default
    # The bridge's own work: send to the lanes, read template bundles, write rejections. Nothing broader.
    for queue in lanes:
        assert found[queue] <= {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
        assert "sqs:SendMessage" in found[queue]
    assert found[failures] == {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
    assert found[messages] == {"dynamodb:BatchWriteItem", "dynamodb:PutItem"}
    every_action = set().union(*found.values())
    assert not {a for a in every_action if a.endswith("*") or a in {"dynamodb:Scan", "dynamodb:DeleteItem"}}
    assert not any(a.startswith(("sqs:Receive", "sqs:Delete", "s3:Put", "s3:Delete")) for a in every_action)


def test_self_managed_kafka_uses_its_secret_key_and_vpc(self_managed: Synthesized) -> None:
    (props,) = [
        m["Properties"]
        for m in self_managed.resources("AWS::Lambda::EventSourceMapping").values()
        if "SelfManagedEventSource" in m["Properties"]
    ]
    found = grants(self_managed)

    assert props["SelfManagedEventSource"]["Endpoints"]["KafkaBootstrapServers"] == [
        "kafka-1.internal:9096",
        "kafka-2.internal:9096",
    ]
    assert props["SourceAccessConfigurations"] == [
        {"Type": "SASL_SCRAM_512_AUTH", "URI": SCRAM_SECRET},
        {"Type": "VPC_SUBNET", "URI": "subnet:subnet-0abc"},
        {"Type": "VPC_SUBNET", "URI": "subnet:subnet-0def"},
        {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-0123"},
    ]
    assert props["SelfManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": "mailwright"}
    assert (props["MaximumRetryAttempts"], props["MaximumRecordAgeInSeconds"]) == (5, 3600)
    assert props["ProvisionedPollerConfig"] == {"MinimumPollers": 2, "MaximumPollers": 4}
    assert found[SCRAM_SECRET] == {"secretsmanager:GetSecretValue"}
    (decrypt,) = [s for s in role_statements(self_managed, bridge(self_managed)) if s["Action"] == "kms:Decrypt"]
    assert render(decrypt["Resource"]) == SECRET_KEY
    assert "kms:ViaService" in decrypt["Condition"]["StringEquals"]
    assert found["*"] >= NETWORK_ACTIONS
    assert not any(action.startswith(("kafka", "mq:")) for actions in found.values() for action in actions)


@pytest.mark.parametrize("variant", ["msk_and_rabbitmq", "self_managed"])
def test_cfn_lint_finds_nothing_with_ingest(variant: str, request: pytest.FixtureRequest) -> None:
    synth: Synthesized = request.getfixturevalue(variant)
    template = synth.outdir / f"{synth.stack.artifact_id}.template.json"

    result = subprocess.run(  # noqa: S603 - our own interpreter, our own file
        [sys.executable, "-c", CFN_LINT, "--", str(template)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
