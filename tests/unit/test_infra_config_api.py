"""The `api` context value (the HTTPS API's stage throttle and logging role) and the API function's environment."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import (
    DEFAULT_API_BURST_LIMIT,
    DEFAULT_API_RATE_LIMIT,
    ApiConfig,
    ConfigError,
    api_environment,
    parse_config,
)
from mailwright.constants import Env
from mailwright.settings import ApiSettings

REPO = Path(__file__).resolve().parents[2]
CONTEXT: dict[str, Any] = json.loads((REPO / "cdk.json").read_text(encoding="utf-8"))["context"]["mailwright"]


def context(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(CONTEXT)
    raw.update(changes)
    return raw


def test_cdk_json_sets_the_documented_defaults() -> None:
    assert parse_config(context()).api == ApiConfig(
        throttling_rate_limit=DEFAULT_API_RATE_LIMIT, throttling_burst_limit=DEFAULT_API_BURST_LIMIT
    )
    without = context()
    without.pop("api", None)
    assert parse_config(without).api == ApiConfig()


def test_the_api_settings_are_read() -> None:
    api = parse_config(
        context(api={"throttling_rate_limit": 2.5, "throttling_burst_limit": 5, "cloudwatch_role": False})
    ).api

    assert api == ApiConfig(throttling_rate_limit=2.5, throttling_burst_limit=5, cloudwatch_role=False)


@pytest.mark.parametrize(
    ("api", "names"),
    [
        ([], "mailwright.api must be an object"),
        ({"rate": 5}, "mailwright.api: unknown settings ['rate']"),
        ({"throttling_rate_limit": 0}, "mailwright.api.throttling_rate_limit"),
        ({"throttling_rate_limit": "50"}, "mailwright.api.throttling_rate_limit"),
        ({"throttling_rate_limit": True}, "mailwright.api.throttling_rate_limit"),
        ({"throttling_rate_limit": 20000}, "mailwright.api.throttling_rate_limit"),
        ({"throttling_burst_limit": 0}, "mailwright.api.throttling_burst_limit"),
        ({"throttling_burst_limit": 2.5}, "mailwright.api.throttling_burst_limit"),
        ({"throttling_burst_limit": 6000}, "mailwright.api.throttling_burst_limit"),
        ({"cloudwatch_role": "yes"}, "mailwright.api.cloudwatch_role"),
    ],
)
def test_bad_api_settings_are_refused_naming_the_key(api: Any, names: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(context(api=api))

    assert names in str(raised.value)


def test_the_function_environment_is_what_its_settings_read() -> None:
    environment = api_environment(
        messages_table="messages", address_key_secret_arn="arn:keyring", suppression_table="suppression"
    )

    assert ApiSettings.from_env(environment) == ApiSettings(
        messages_table="messages", address_key_secret_arn="arn:keyring", suppression_table="suppression"
    )
    assert environment[Env.MESSAGES_TABLE] == "messages"


def test_the_function_settings_name_every_missing_variable() -> None:
    from mailwright.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as raised:
        ApiSettings.from_env({Env.MESSAGES_TABLE: "messages"})

    assert Env.ADDRESS_KEY_SECRET_ARN in str(raised.value)
    assert Env.SUPPRESSION_TABLE in str(raised.value)
