"""The `providers`, `failover` and `provider_webhook` context values, and the environment they become.

infra/config.py checks the context as the runtime (mailwright.settings) will
check the environment at cold start: a context the app accepts must give
workers an environment the runtime accepts, and the faults the runtime would
stop on must stop the synth first, naming the key.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import (
    ConfigError,
    FeedbackResources,
    ProviderWebhookResources,
    WorkerResources,
    failover_environment,
    parse_config,
    provider_webhook_environment,
    worker_environment,
)
from mailwright.constants import LANES, Env
from mailwright.settings import ProviderWebhookSettings, WorkerSettings

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mailwright/relay-AbCdEf"
RELAY = {"name": "relay", "kind": "smtp", "secret": "mailwright/relay", "settings": {"host": "smtp.example.com"}}
SENDGRID = {"name": "sg", "kind": "sendgrid", "secret": ARN, "max_send_rate": 20}
MAILGUN = {
    "name": "mg",
    "kind": "mailgun",
    "secret": "mailwright/mailgun",
    "webhook_secret": "mailwright/mailgun-hook",
    "settings": {"domain": "mg.example.com", "region": "eu"},
}
SES_EU = {"name": "ses-eu", "kind": "ses_region", "settings": {"region": "eu-west-1", "configuration_set": "mw-eu"}}
SECRETS = {"relay": ARN, "sg": ARN, "mg": ARN}
RESOURCES = WorkerResources(
    templates_bucket="b",
    preferences_table="p",
    suppression_table="s",
    idempotency_table="i",
    messages_table="m",
    configuration_set="c",
    unsubscribe_secret_arn=ARN,
    address_key_secret_arn=ARN,
    unsubscribe_base_url="https://example.com/u",
    provider_secrets=SECRETS,
)


def context(**overrides: Any) -> dict[str, Any]:
    return {"sender": "no-reply@example.com", **overrides}


def test_no_providers_by_default_and_the_workers_environment_is_unchanged() -> None:
    config = parse_config(context())

    assert config.providers == ()
    assert {lane: f.enabled for lane, f in config.failover.items()} == {
        "critical": True,
        "standard": True,
        "bulk": False,
    }
    for lane in LANES:
        env = worker_environment(config=config, lane=config.lanes[lane], queue_url="q", resources=RESOURCES)
        assert Env.PROVIDERS not in env and Env.FAILOVER not in env
        assert WorkerSettings.from_env(env).failover is None


@pytest.mark.parametrize("lane", LANES)
def test_every_accepted_context_gives_workers_an_environment_the_runtime_accepts(lane: str) -> None:
    config = parse_config(
        context(
            providers=[RELAY, SENDGRID, MAILGUN, SES_EU],
            failover={"standard": {"provider": "sg", "cooldown_seconds": 10}, "bulk": True},
        )
    )

    env = worker_environment(config=config, lane=config.lanes[lane], queue_url="q", resources=RESOURCES)
    settings = WorkerSettings.from_env(env)

    assert [p.name for p in settings.providers] == ["relay", "sg", "mg", "ses-eu"]
    assert settings.failover is not None and settings.failover.enabled
    assert settings.failover.provider == ("sg" if lane == "standard" else "relay")
    assert settings.failover.cooldown_seconds == (10 if lane == "standard" else 30)
    by_name = {p.name: p for p in settings.providers}
    assert by_name["relay"].secret_arn == ARN and by_name["ses-eu"].secret_arn == ""
    assert by_name["mg"].options.base_url == "https://api.eu.mailgun.net"  # type: ignore[union-attr]


def test_a_providers_rate_is_split_among_the_workers_that_fail_over_to_it() -> None:
    # cdk.json-like lanes: critical 4 workers, standard 2, bulk 2 (max_concurrency).
    lanes = {"critical": {"max_concurrency": 4, "reserved_concurrency": 4}}
    config = parse_config(
        context(lanes=lanes, providers=[{**RELAY, "max_send_rate": 12}, SENDGRID], failover={"bulk": True})
    )

    providers = json.loads(failover_environment(config=config, lane="bulk", secrets=SECRETS)[Env.PROVIDERS])

    # critical (4), standard (2) and bulk (2) all fail over to the relay: 12 / 8 each.
    assert providers[0]["send_rate"] == 1.5
    # Nobody fails over to SendGrid: a worker may use all of it (it never does).
    assert providers[1]["send_rate"] == 20


def test_failover_takes_booleans_and_objects_per_lane() -> None:
    config = parse_config(
        context(providers=[RELAY, SENDGRID], failover={"critical": False, "bulk": {"enabled": True, "provider": "sg"}})
    )

    assert not config.failover["critical"].enabled
    assert config.failover["standard"].enabled and config.failover["standard"].provider == ""
    assert config.failover["bulk"].provider == "sg" and config.failover["bulk"].alarm_after_minutes == 15
    assert json.loads(failover_environment(config=config, lane="standard", secrets=SECRETS)[Env.FAILOVER]) == {
        "enabled": True,
        "provider": "relay",
        "failure_threshold": 5,
        "window_seconds": 30,
        "cooldown_seconds": 30,
        "account_cooldown_seconds": 300,
    }


@pytest.mark.parametrize(
    ("providers", "failover", "message"),
    [
        ({"relay": RELAY}, None, "providers must be a list"),
        ([{**RELAY, "name": "ses"}], None, "not 'ses'"),
        ([{**RELAY, "name": "a b"}], None, "letters, digits"),
        ([RELAY, RELAY], None, "unique"),
        ([{**RELAY, "kind": "postfix"}], None, "kind must be one of"),
        ([{**RELAY, "password": "hunter2"}], None, "unknown keys"),
        ([{k: v for k, v in RELAY.items() if k != "secret"}], None, "secret is required"),
        ([{**RELAY, "secret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:relay"}], None, "complete ARN"),
        ([{**RELAY, "secret": "mailwright/relay-AbCdEf"}], None, "ambiguous"),
        ([{**RELAY, "secret": "bad secret!"}], None, "name or complete ARN"),
        ([{**RELAY, "webhook_secret": "x/y"}], None, "only sendgrid, mailgun post webhooks"),
        ([{**SES_EU, "secret": "x/y"}], None, "needs no secret"),
        ([{**RELAY, "max_send_rate": 0}], None, "max_send_rate must be a positive number"),
        ([{**RELAY, "settings": {"host": "smtp.example.com", "tls": "none"}}], None, "loopback only"),
        ([{**RELAY, "settings": {"host": "smtp.example.com", "tls": "ssl"}}], None, "tls must be one of"),
        ([{**RELAY, "settings": {"host": "smtp.example.com", "port": 70000}}], None, "at most 65535"),
        ([{**RELAY, "settings": {}}], None, "host is required"),
        ([{**RELAY, "settings": {"host": "h.example.com", "user": "x"}}], None, "unknown settings"),
        ([{**SENDGRID, "settings": {"base_url": "http://api.example.com"}}], None, "https URL"),
        ([{**MAILGUN, "settings": {"domain": "mg.example.com", "region": "ap"}}], None, "region must be one of"),
        ([{**MAILGUN, "settings": {}}], None, "Mailgun sending domain"),
        ([{**SES_EU, "settings": {"region": "europe", "configuration_set": "c"}}], None, "AWS region"),
        ([{**SES_EU, "settings": {"region": "eu-west-1"}}], None, "configuration_set is required"),
        (
            [{**SES_EU, "settings": {**SES_EU["settings"], "feedback_topic_arn": "arn:aws:sns:us-east-1:1:t"}}],
            None,
            "SNS topic ARN in eu-west-1",
        ),
        ([RELAY], {"urgent": True}, "unknown lanes"),
        ([RELAY], {"bulk": "yes"}, "true, false or an object"),
        ([RELAY], {"bulk": {"enabled": "yes"}}, "enabled must be true or false"),
        ([RELAY], {"bulk": {"provider": "sg"}}, "not among"),
        ([RELAY], {"bulk": {"cooldown_seconds": 0}}, "cooldown_seconds must be a whole number"),
        ([RELAY], {"bulk": {"probe": 1}}, "unknown settings"),
    ],
)
def test_bad_provider_settings_are_refused_naming_the_key(providers: Any, failover: Any, message: str) -> None:
    raw = context(providers=providers, **({"failover": failover} if failover is not None else {}))

    with pytest.raises(ConfigError, match=message):
        parse_config(raw)


def test_the_provider_webhook_cap_defaults_to_five_and_can_be_lifted() -> None:
    assert parse_config(context()).provider_webhook.reserved_concurrency == 5
    assert (
        parse_config(context(provider_webhook={"reserved_concurrency": None})).provider_webhook.reserved_concurrency
        is None
    )
    with pytest.raises(ConfigError, match="provider_webhook: unknown settings"):
        parse_config(context(provider_webhook={"cap": 1}))
    with pytest.raises(ConfigError, match="reserved_concurrency"):
        parse_config(context(provider_webhook={"reserved_concurrency": 0}))


def test_the_webhooks_environment_names_only_webhook_providers_and_their_key_secrets() -> None:
    config = parse_config(context(providers=[RELAY, SENDGRID, MAILGUN]))
    webhook_secrets = {"sg": ARN, "mg": ARN.replace("relay", "mailgun-hook")}

    env = provider_webhook_environment(
        config=config,
        resources=ProviderWebhookResources(
            feedback=FeedbackResources(suppression_table="s", messages_table="m", address_key_secret_arn=ARN),
            idempotency_table="i",
            preferences_table="p",
            webhook_secrets=webhook_secrets,
        ),
    )
    settings = ProviderWebhookSettings.from_env(env)

    assert [(p.name, p.secret_arn) for p in settings.providers] == [("sg", ARN), ("mg", webhook_secrets["mg"])]
    assert (settings.idempotency_table, settings.preferences_table) == ("i", "p")
    assert settings.feedback.suppression_table == "s" and settings.feedback.address_key_secret_arn == ARN
