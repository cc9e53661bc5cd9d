"""The ingest bridge's settings: the environment the CDK app (and the local stack) gives it, parsed once."""

from __future__ import annotations

import pytest

from infra.config import bridge_environment, parse_config
from mailwright.constants import LANES, Env
from mailwright.errors import ConfigurationError
from mailwright.settings import BridgeSettings
from tests.unit.test_infra_config_ingest import BASE


def environment() -> dict[str, str]:
    return bridge_environment(
        config=parse_config(BASE),
        queue_urls={lane: f"https://sqs/{lane}" for lane in LANES},
        templates_bucket="templates",
        messages_table="messages",
    )


def test_the_environment_infra_computes_parses() -> None:
    settings = BridgeSettings.from_env(environment())

    assert settings.queue_urls == {lane: f"https://sqs/{lane}" for lane in LANES}
    assert (settings.templates_bucket, settings.messages_table) == ("templates", "messages")
    assert settings.message_log_ttl_days == parse_config(BASE).message_log_ttl_days


def test_every_missing_variable_is_named() -> None:
    env = environment()
    del env[Env.lane_queue_url("bulk")], env[Env.MESSAGES_TABLE]

    with pytest.raises(ConfigurationError) as raised:
        BridgeSettings.from_env(env)

    assert str(raised.value) == "missing environment variables: MAILWRIGHT_BULK_QUEUE_URL, MAILWRIGHT_MESSAGES_TABLE"


def test_a_bad_number_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="MAILWRIGHT_MESSAGE_LOG_TTL_DAYS must be a whole number"):
        BridgeSettings.from_env({**environment(), Env.MESSAGE_LOG_TTL_DAYS: "ninety"})
