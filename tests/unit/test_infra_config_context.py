"""The `mailwright` settings as the CDK app receives them (infra/context.py), and the unsubscribe settings."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import ConfigError, UnsubscribeConfig, load_config, parse_config
from infra.context import (
    ALLOW_PLACEHOLDERS_KEY,
    check_deployable,
    deep_merge,
    deployment_config,
    placeholders_allowed,
    settings_from_context,
)

REPO = Path(__file__).resolve().parents[2]
CDK_JSON: dict[str, Any] = json.loads((REPO / "cdk.json").read_text(encoding="utf-8"))["context"]
DEFAULTS: dict[str, Any] = CDK_JSON["mailwright"]
# What a real deployment sets on top of cdk.json's placeholders.
REAL = {
    "sender": "no-reply@mail.acme-widgets.io",
    "domain": "mail.acme-widgets.io",
    "postal_address": "Acme Widgets Ltd, 42 Harbour Road, Bristol BS1 5TY, UK",
}


def merged(**context: Any) -> dict[str, Any]:
    """cdk.json's settings with `context` (as the CDK CLI passes it) merged on top."""
    return settings_from_context(DEFAULTS, context)


# -- the -c mailwright=... value ---------------------------------------------


def test_without_context_the_settings_are_cdk_jsons() -> None:
    assert merged() == DEFAULTS
    # The CLI passes cdk.json's own object back: merging it changes nothing.
    assert merged(mailwright=copy.deepcopy(DEFAULTS)) == DEFAULTS


def test_the_readme_command_a_json_string_is_merged_over_cdk_json() -> None:
    # Given the README's deploy command, as the CDK CLI hands it over: a string
    value = '{"sender": "no-reply@mail.acme-widgets.io", "domain": "mail.acme-widgets.io"}'

    # When it is merged
    settings = merged(mailwright=value)

    # Then the two keys change and everything else is still cdk.json's
    assert settings["sender"] == "no-reply@mail.acme-widgets.io"
    assert settings["domain"] == "mail.acme-widgets.io"
    assert settings["lanes"] == DEFAULTS["lanes"]
    assert settings["rate_limits"] == DEFAULTS["rate_limits"]
    assert parse_config(settings).identity == "mail.acme-widgets.io"


def test_nested_objects_merge_key_by_key() -> None:
    settings = merged(mailwright={"lanes": {"bulk": {"batch_size": 50}}, "max_message_age_seconds": {"critical": 90}})

    assert settings["lanes"]["bulk"] == {**DEFAULTS["lanes"]["bulk"], "batch_size": 50}
    assert settings["lanes"]["critical"] == DEFAULTS["lanes"]["critical"]
    assert settings["max_message_age_seconds"] == {**DEFAULTS["max_message_age_seconds"], "critical": 90}


def test_a_nested_json_string_is_parsed_too() -> None:
    settings = merged(
        mailwright='{"lanes": "{\\"standard\\": {\\"memory_mb\\": 1024}}", "sandbox_recipients": "[\\"a.io\\"]"}'
    )

    assert settings["lanes"]["standard"]["memory_mb"] == 1024
    assert settings["lanes"]["bulk"] == DEFAULTS["lanes"]["bulk"]
    assert settings["sandbox_recipients"] == ["a.io"]


def test_lists_and_nulls_replace() -> None:
    settings = merged(mailwright={"sandbox_recipients": ["b.io"], "lanes": {"bulk": {"reserved_concurrency": None}}})

    assert settings["sandbox_recipients"] == ["b.io"]
    assert parse_config(settings).lanes["bulk"].reserved_concurrency is None


@pytest.mark.parametrize(
    ("context", "where"),
    [
        ({"mailwright": '{"sender": "a@b.io",}'}, "context value mailwright is not valid JSON: Expecting"),
        ({"mailwright": '{"lanes": "{bulk: 1}"}'}, "context value mailwright.lanes is not valid JSON"),
        ({"mailwright.lanes": "{not json"}, "context value mailwright.lanes is not valid JSON"),
        ({"mailwright": "[1, 2]"}, "context value mailwright must be an object"),
        ({"mailwright": "no-reply@acme.io"}, "context value mailwright is not valid JSON"),
        ({"mailwright": '{"ses_max_send_rate": NaN}'}, "not valid JSON: NaN is not a JSON number"),
    ],
)
def test_malformed_json_names_the_key_and_the_error(context: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError, match=where.replace(".", r"\.").replace("[", r"\[")):
        merged(**context)


# -- dotted keys: -c mailwright.lanes.bulk.max_concurrency=4 ----------------


def test_dotted_keys_set_one_setting() -> None:
    settings = merged(
        **{
            "mailwright.sender": "x@y.org",
            "mailwright.lanes.bulk.max_concurrency": "4",
            "mailwright.lanes.bulk.reserved_concurrency": "null",
            "mailwright.auto_resume_bulk": "true",
            "mailwright.ses_max_send_rate": "40.5",
        }
    )

    assert settings["sender"] == "x@y.org"
    assert settings["lanes"]["bulk"] == {
        **DEFAULTS["lanes"]["bulk"],
        "max_concurrency": 4,
        "reserved_concurrency": None,
    }
    assert settings["auto_resume_bulk"] is True
    assert settings["ses_max_send_rate"] == 40.5
    config = parse_config(settings)
    assert (config.lanes["bulk"].max_concurrency, config.lanes["bulk"].reserved_concurrency) == (4, None)


def test_a_dotted_value_that_is_not_json_stays_a_string() -> None:
    settings = merged(
        **{
            "mailwright.postal_address": "Acme, 1 Main St, Springfield",
            "mailwright.domain": "",
            "mailwright.stack_name": "Mail-Prod",
        }
    )

    assert settings["postal_address"] == "Acme, 1 Main St, Springfield"
    assert settings["domain"] == ""
    assert settings["stack_name"] == "Mail-Prod"


def test_dotted_objects_merge_and_deeper_keys_win() -> None:
    settings = merged(
        **{
            "mailwright.lanes.bulk.batch_size": "40",
            "mailwright.lanes": '{"bulk": {"batch_size": 30, "memory_mb": 1024}}',
            "mailwright.rate_limits.product": '{"limit": 9, "window_seconds": 3600}',
        }
    )

    # The shallower key applies first, whatever order the CLI gave them in.
    assert settings["lanes"]["bulk"]["batch_size"] == 40
    assert settings["lanes"]["bulk"]["memory_mb"] == 1024
    assert settings["lanes"]["standard"] == DEFAULTS["lanes"]["standard"]
    assert settings["rate_limits"] == {**DEFAULTS["rate_limits"], "product": {"limit": 9, "window_seconds": 3600}}


def test_dotted_keys_apply_over_the_json_value() -> None:
    settings = merged(mailwright='{"sender": "a@acme.io", "domain": "acme.io"}', **{"mailwright.sender": "b@acme.io"})

    assert (settings["sender"], settings["domain"]) == ("b@acme.io", "acme.io")


def test_dotted_keys_create_missing_objects() -> None:
    settings = merged(**{"mailwright.unsubscribe.reserved_concurrency": "12"})

    assert settings["unsubscribe"] == {"reserved_concurrency": 12}
    assert settings_from_context({"sender": "a@b.io"}, {"mailwright.unsubscribe.reserved_concurrency": "3"}) == {
        "sender": "a@b.io",
        "unsubscribe": {"reserved_concurrency": 3},
    }


def test_a_dotted_key_through_a_plain_value_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"'mailwright\.sender\.name': 'sender' is 'no-reply@example.com'"):
        merged(**{"mailwright.sender.name": "x"})
    with pytest.raises(ConfigError, match="empty part"):
        merged(**{"mailwright..sender": "x"})


def test_other_context_keys_are_left_alone() -> None:
    settings = merged(
        **{"mailwrightish": "x", "@aws-cdk/core:target-partitions": ["aws"], ALLOW_PLACEHOLDERS_KEY: "true"}
    )

    assert settings == DEFAULTS


def test_deep_merge_copies_rather_than_changes() -> None:
    base = {"a": {"b": 1, "c": [1]}}
    result = deep_merge(base, {"a": {"b": 2}})

    assert result == {"a": {"b": 2, "c": [1]}}
    assert base == {"a": {"b": 1, "c": [1]}}


# -- placeholders -------------------------------------------------------------


def test_cdk_jsons_placeholders_are_not_deployable_and_every_key_is_named() -> None:
    with pytest.raises(ConfigError) as raised:
        check_deployable(parse_config(DEFAULTS))

    message = str(raised.value)
    assert "mailwright.sender (no-reply@example.com)" in message
    assert "mailwright.postal_address ('Example Co., 1 Example Street, Springfield, USA')" in message
    assert "mailwright.domain" not in message  # empty in cdk.json: the sender address is the identity
    assert f"-c {ALLOW_PLACEHOLDERS_KEY}=true" in message


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"sender": "no-reply@example.org"}, "mailwright.sender"),
        ({"sender": "no-reply@mail.example.net", "domain": "mail.example.net"}, "mailwright.domain"),
        ({"sender": "no-reply@Example.COM"}, "mailwright.sender"),
        ({"sender": "ops@acme.test"}, "mailwright.sender"),
        ({"postal_address": ""}, "mailwright.postal_address"),
        ({"postal_address": "Example Co., 1 Example Street, Springfield"}, "mailwright.postal_address"),
        ({"alarm_email": "ops@example.com"}, "mailwright.alarm_email"),
    ],
)
def test_each_placeholder_is_refused(settings: dict[str, Any], key: str) -> None:
    config = parse_config({**DEFAULTS, **REAL, "domain": "", **settings})

    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_deployable(config)


@pytest.mark.parametrize(
    "settings",
    [
        REAL,
        {**REAL, "domain": "", "sender": "alerts@examples.com"},  # near misses are real domains
        {**REAL, "alarm_email": "ops@acme-widgets.io"},
        {**REAL, "sender": "no-reply@myexample.com", "domain": "myexample.com"},
    ],
)
def test_real_settings_are_deployable(settings: dict[str, Any]) -> None:
    check_deployable(parse_config({**DEFAULTS, **settings}))


@pytest.mark.parametrize(
    ("value", "allowed"),
    [(None, False), (True, True), ("true", True), ("TRUE", True), (False, False), ("false", False)],
)
def test_the_placeholder_flag(value: object, allowed: bool) -> None:
    context = {} if value is None else {ALLOW_PLACEHOLDERS_KEY: value}

    assert placeholders_allowed(context) is allowed


@pytest.mark.parametrize("value", ["yes", "1", 1, "tru"])
def test_a_bad_placeholder_flag_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match=ALLOW_PLACEHOLDERS_KEY):
        placeholders_allowed({ALLOW_PLACEHOLDERS_KEY: value})


def test_deployment_config_refuses_placeholders_unless_the_flag_allows_them() -> None:
    with pytest.raises(ConfigError, match="refusing to deploy"):
        deployment_config(DEFAULTS, {"mailwright": copy.deepcopy(DEFAULTS)})
    assert deployment_config(DEFAULTS, {ALLOW_PLACEHOLDERS_KEY: "true"}).sender == "no-reply@example.com"
    # With real values on the command line, no flag is needed.
    config = deployment_config(DEFAULTS, {"mailwright": json.dumps(REAL)})
    assert (config.sender, config.domain, config.postal_address) == tuple(REAL.values())


def test_the_local_stack_reads_the_placeholders_without_any_flag() -> None:
    # parse_config and load_config (the local stack, benches, demo) never apply the deploy guard.
    assert load_config(REPO / "cdk.json").sender == "no-reply@example.com"


# -- unsubscribe.reserved_concurrency ----------------------------------------


def test_the_unsubscribe_endpoint_is_capped_by_default() -> None:
    assert parse_config(DEFAULTS).unsubscribe == UnsubscribeConfig(reserved_concurrency=5)
    assert parse_config({"sender": "a@acme.io"}).unsubscribe.reserved_concurrency == 5


@pytest.mark.parametrize(("value", "expected"), [(None, None), (1, 1), (50, 50)])
def test_the_unsubscribe_cap_is_configurable_and_nullable(value: int | None, expected: int | None) -> None:
    config = parse_config({**DEFAULTS, "unsubscribe": {"reserved_concurrency": value}})

    assert config.unsubscribe.reserved_concurrency == expected


@pytest.mark.parametrize(
    ("unsubscribe", "match"),
    [
        ({"reserved_concurrency": 0}, r"unsubscribe\.reserved_concurrency must be a whole number >= 1"),
        ({"reserved_concurrency": "5"}, r"unsubscribe\.reserved_concurrency must be a whole number"),
        ({"reserved_concurrency": True}, r"unsubscribe\.reserved_concurrency must be a whole number"),
        ({"reserved": 5}, r"unsubscribe: unknown settings \['reserved'\]"),
        (5, r"unsubscribe must be an object"),
    ],
)
def test_bad_unsubscribe_settings_are_refused(unsubscribe: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config({**DEFAULTS, "unsubscribe": unsubscribe})
