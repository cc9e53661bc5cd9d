"""Settings of the publisher, the dead-letter function and the webhook sender: parsed once, bad ones named."""

from __future__ import annotations

import json

import pytest

from mailwright.constants import Env
from mailwright.errors import ConfigurationError
from mailwright.event_settings import DeadLetterSettings, PublisherSettings, RetryPolicy, WebhookSettings


def test_the_publisher_needs_a_bus_and_known_detail_types() -> None:
    settings = PublisherSettings.from_env(
        {Env.EVENT_BUS_NAME: "Mailwright", Env.OUTCOME_EVENTS: "EmailSent, EmailFailed"}
    )
    assert settings.detail_types == frozenset({"EmailSent", "EmailFailed"})
    assert PublisherSettings.from_env({Env.EVENT_BUS_NAME: "b"}).detail_types == frozenset()
    with pytest.raises(ConfigurationError, match=Env.EVENT_BUS_NAME):
        PublisherSettings.from_env({})
    with pytest.raises(ConfigurationError, match="EmailSnet"):
        PublisherSettings.from_env({Env.EVENT_BUS_NAME: "b", Env.OUTCOME_EVENTS: "EmailSnet"})


def test_the_dead_letter_function_knows_each_queue_by_arn() -> None:
    queues = [
        {"arn": "arn:critical-dlq", "lane": "critical", "parked_url": "u:critical"},
        {"arn": "arn:ingest-dlq", "lane": "ingest", "parked_url": "u:standard"},
    ]
    settings = DeadLetterSettings.from_env({Env.MESSAGES_TABLE: "m", Env.DEAD_LETTER_QUEUES: json.dumps(queues)})
    assert settings.queues["arn:critical-dlq"].parked_url == "u:critical"
    assert settings.parked_by_lane == {"critical": "u:critical"}
    with pytest.raises(ConfigurationError, match="not JSON"):
        DeadLetterSettings.from_env({Env.MESSAGES_TABLE: "m", Env.DEAD_LETTER_QUEUES: "{"})
    with pytest.raises(ConfigurationError, match="parked_url"):
        DeadLetterSettings.from_env({Env.MESSAGES_TABLE: "m", Env.DEAD_LETTER_QUEUES: '[{"arn": "a"}]'})
    with pytest.raises(ConfigurationError, match=Env.MESSAGE_LOG_TTL_DAYS):
        DeadLetterSettings.from_env(
            {Env.MESSAGES_TABLE: "m", Env.DEAD_LETTER_QUEUES: "[]", Env.MESSAGE_LOG_TTL_DAYS: "0"}
        )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"base_seconds": -1}', "positive"),
        ('{"cap_seconds": 50000}', "43200"),
        ('{"jitter": 1.5}', "jitter"),
        ('{"nonsense": 1}', "not valid"),
        ("[", "not valid"),
    ],
)
def test_a_bad_retry_policy_is_refused(raw: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RetryPolicy.from_json(raw)


def test_the_retry_policy_round_trips_and_defaults_to_a_day_of_retries() -> None:
    policy = RetryPolicy(base_seconds=2, window_seconds=90)
    assert RetryPolicy.from_json(policy.to_json()) == policy
    assert RetryPolicy.from_json("") == RetryPolicy()
    assert RetryPolicy().window_seconds >= 86400 and RetryPolicy().cap_seconds == 43200


def test_the_webhook_sender_names_what_is_missing() -> None:
    with pytest.raises(ConfigurationError, match=Env.WEBHOOK_ENDPOINTS):
        WebhookSettings.from_env({Env.WEBHOOK_STATE_TABLE: "t", Env.WEBHOOK_ARCHIVE_BUCKET: "b"})
    with pytest.raises(ConfigurationError, match="queue_url"):
        WebhookSettings.from_env(
            {Env.WEBHOOK_ENDPOINTS: '[{"name": "x"}]', Env.WEBHOOK_STATE_TABLE: "t", Env.WEBHOOK_ARCHIVE_BUCKET: "b"}
        )
    with pytest.raises(ConfigurationError, match=Env.WEBHOOK_ALLOW_LOOPBACK):
        WebhookSettings.from_env(
            {
                Env.WEBHOOK_ENDPOINTS: "[]",
                Env.WEBHOOK_STATE_TABLE: "t",
                Env.WEBHOOK_ARCHIVE_BUCKET: "b",
                Env.WEBHOOK_ALLOW_LOOPBACK: "maybe",
            }
        )
