"""`ingest.kafka` and `ingest.rabbitmq` settings: optional, validated, each error naming its key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import ConfigError, parse_config
from tests.unit.conftest import REPO

BASE = json.loads((REPO / "cdk.json").read_text(encoding="utf-8"))["context"]["mailwright"]
CLUSTER = "arn:aws:kafka:us-east-1:123456789012:cluster/events/0a1b2c3d-4e5f-6789-abcd-ef0123456789-3"
BROKER = "arn:aws:mq:us-east-1:123456789012:broker:requests:b-9bcfa592-423a-4942-879d-eb284b418fc8"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mailwright/mq-AbCdEf"


def parse(ingest: Any) -> Any:
    return parse_config({**BASE, "ingest": ingest}).ingest


def test_without_ingest_there_is_no_bridge() -> None:
    assert not parse_config(BASE).ingest.enabled


def test_msk_and_rabbitmq_get_their_defaults() -> None:
    ingest = parse(
        {
            "kafka": {"cluster_arn": CLUSTER, "topic": "email-requests"},
            "rabbitmq": {"broker_arn": BROKER, "secret_arn": SECRET},
        }
    )

    assert ingest.enabled and ingest.kafka is not None and ingest.rabbitmq is not None
    assert ingest.kafka.managed and ingest.kafka.auth == "iam" and ingest.kafka.consumer_group == "mailwright"
    assert (ingest.kafka.retry_attempts, ingest.kafka.max_record_age_seconds) == (3, 21600)
    assert (ingest.kafka.minimum_pollers, ingest.kafka.maximum_pollers) == (1, 2)
    assert (ingest.rabbitmq.queue, ingest.rabbitmq.virtual_host) == ("mailwright-requests", "/")


def test_self_managed_kafka_takes_comma_separated_servers() -> None:
    kafka = parse(
        {
            "kafka": {
                "bootstrap_servers": "a.internal:9096, b.internal:9096",
                "topic": "t",
                "auth": "mtls",
                "secret_arn": SECRET,
            }
        }
    ).kafka

    assert kafka.bootstrap_servers == ("a.internal:9096", "b.internal:9096")
    assert not kafka.managed


@pytest.mark.parametrize(
    ("ingest", "message"),
    [
        ("yes", "ingest must be an object"),
        ({"sqs": {}}, "unknown settings ['sqs']"),
        ({"kafka": {"cluster_arn": CLUSTER}}, "ingest.kafka.topic is required"),
        ({"kafka": {"topic": "t"}}, "give cluster_arn (Amazon MSK) or bootstrap_servers"),
        ({"kafka": {"topic": "t", "cluster_arn": CLUSTER, "bootstrap_servers": ["a:1"]}}, "not both"),
        ({"kafka": {"topic": "t", "cluster_arn": "arn:aws:kafka:nope"}}, "ingest.kafka.cluster_arn must be an MSK"),
        ({"kafka": {"topic": "t", "cluster_arn": CLUSTER, "auth": "sasl_scram_512"}}, "ingest.kafka.auth for an MSK"),
        ({"kafka": {"topic": "t", "cluster_arn": CLUSTER, "secret_arn": SECRET}}, "IAM authentication, no secret"),
        (
            {"kafka": {"topic": "t", "bootstrap_servers": ["a:1"], "auth": "plain"}},
            "auth for self-managed brokers is one of",
        ),
        ({"kafka": {"topic": "t", "bootstrap_servers": ["a:1"], "auth": "mtls"}}, "secret_arn is required"),
        ({"kafka": {"topic": "t", "bootstrap_servers": ["no port"]}}, "bootstrap_servers must be a list of host:port"),
        (
            {
                "kafka": {
                    "topic": "t",
                    "bootstrap_servers": ["a:1"],
                    "auth": "mtls",
                    "secret_arn": SECRET,
                    "subnet_ids": ["subnet-1"],
                }
            },
            "subnet_ids and security_group_ids go together",
        ),
        (
            {"kafka": {"topic": "t", "cluster_arn": CLUSTER, "retry_attempts": -1}},
            "retry_attempts must be a whole number >= 0",
        ),
        (
            {"kafka": {"topic": "t", "cluster_arn": CLUSTER, "max_record_age_seconds": 10}},
            "max_record_age_seconds must be",
        ),
        (
            {"kafka": {"topic": "t", "cluster_arn": CLUSTER, "minimum_pollers": 3, "maximum_pollers": 2}},
            "maximum_pollers (2)",
        ),
        (
            {"kafka": {"topic": "t", "cluster_arn": CLUSTER, "starting_position": "AT_TIMESTAMP"}},
            "starting_position is one of",
        ),
        ({"kafka": {"topic": "t", "cluster_arn": CLUSTER, "poll": 1}}, "ingest.kafka: unknown settings ['poll']"),
        ({"rabbitmq": {"broker_arn": BROKER}}, "broker_arn and secret_arn"),
        ({"rabbitmq": {"broker_arn": "arn:aws:mq:x", "secret_arn": SECRET}}, "ingest.rabbitmq.broker_arn must be"),
        (
            {"rabbitmq": {"broker_arn": BROKER, "secret_arn": SECRET, "queue": "two words"}},
            "ingest.rabbitmq.queue must be",
        ),
        (
            {"rabbitmq": {"broker_arn": BROKER, "secret_arn": SECRET, "batch_size": 20000}},
            "batch_size is at most 10000",
        ),
    ],
)
def test_bad_ingest_settings_name_their_key(ingest: Any, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(ingest)

    assert message in str(raised.value)
