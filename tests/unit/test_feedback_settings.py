"""The feedback function's settings: context keys (infra/config.py), its environment, and parsing it back."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import ConfigError, FeedbackResources, feedback_environment, load_config, parse_config
from mailwright.constants import Env
from mailwright.errors import ConfigurationError
from mailwright.settings import FeedbackSettings

REPO = Path(__file__).resolve().parents[2]
CONTEXT: dict[str, Any] = json.loads((REPO / "cdk.json").read_text(encoding="utf-8"))["context"]["mailwright"]
RESOURCES = FeedbackResources(
    suppression_table="mailwright-suppression",
    messages_table="mailwright-messages",
    address_key_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:mailwright/address-keyring",
)


def context(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(CONTEXT)
    raw.update(changes)
    return raw


def test_defaults_are_three_soft_bounces_in_seven_days_for_fourteen_days_without_mirroring() -> None:
    config = parse_config(context())

    assert (config.soft_bounce_threshold, config.soft_bounce_window_days, config.soft_bounce_suppression_days) == (
        3,
        7,
        14,
    )
    assert config.mirror_ses_suppression_list is False
    assert "soft_bounce_threshold" not in config.extra


def test_the_environment_round_trips_into_the_function_settings() -> None:
    config = parse_config(
        context(
            soft_bounce_threshold=5,
            soft_bounce_window_days=3,
            soft_bounce_suppression_days=30,
            mirror_ses_suppression_list=True,
            message_log_ttl_days=30,
        )
    )

    settings = FeedbackSettings.from_env(feedback_environment(config=config, resources=RESOURCES))

    assert settings == FeedbackSettings(
        suppression_table="mailwright-suppression",
        messages_table="mailwright-messages",
        address_key_secret_arn=RESOURCES.address_key_secret_arn,
        message_log_ttl_days=30,
        soft_bounce_threshold=5,
        soft_bounce_window_days=3,
        soft_bounce_suppression_days=30,
        mirror_ses_suppression=True,
    )


def test_the_repository_settings_give_the_defaults() -> None:
    env = feedback_environment(config=load_config(REPO / "cdk.json"), resources=RESOURCES)

    assert env[Env.MIRROR_SES_SUPPRESSION] == "false"
    assert FeedbackSettings.from_env(env).soft_bounce_threshold == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"soft_bounce_threshold": 0}, "soft_bounce_threshold"),
        ({"soft_bounce_threshold": 101}, "at most 100"),
        ({"soft_bounce_threshold": "3"}, "soft_bounce_threshold"),
        ({"soft_bounce_window_days": 0}, "soft_bounce_window_days"),
        ({"soft_bounce_suppression_days": 366}, "at most 365"),
        ({"mirror_ses_suppression_list": "yes"}, "true or false"),
    ],
)
def test_bad_context_values_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(context(**changes))


def test_only_the_tables_and_the_address_keyring_are_required() -> None:
    required = {Env.SUPPRESSION_TABLE: "s", Env.MESSAGES_TABLE: "m", Env.ADDRESS_KEY_SECRET_ARN: "arn:keys"}
    settings = FeedbackSettings.from_env(required)

    assert settings == FeedbackSettings(suppression_table="s", messages_table="m", address_key_secret_arn="arn:keys")
    with pytest.raises(ConfigurationError, match=Env.MESSAGES_TABLE):
        FeedbackSettings.from_env({Env.SUPPRESSION_TABLE: "s", Env.ADDRESS_KEY_SECRET_ARN: "arn:keys"})
    with pytest.raises(ConfigurationError, match=Env.ADDRESS_KEY_SECRET_ARN):
        FeedbackSettings.from_env({Env.SUPPRESSION_TABLE: "s", Env.MESSAGES_TABLE: "m"})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (Env.SOFT_BOUNCE_THRESHOLD, "three", "whole number"),
        (Env.SOFT_BOUNCE_WINDOW_DAYS, "0", "at least 1"),
        (Env.MIRROR_SES_SUPPRESSION, "maybe", "true or false"),
    ],
)
def test_bad_environment_values_are_refused(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        FeedbackSettings.from_env(
            {Env.SUPPRESSION_TABLE: "s", Env.MESSAGES_TABLE: "m", Env.ADDRESS_KEY_SECRET_ARN: "arn:keys", key: value}
        )
