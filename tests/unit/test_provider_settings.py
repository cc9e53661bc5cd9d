"""Secondary providers and failover in the worker's settings: parsed once, every fault named."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailwright.constants import Env
from mailwright.errors import ConfigurationError
from mailwright.settings import (
    MAILGUN_BASE_URLS,
    FailoverSettings,
    MailgunSettings,
    ProviderWebhookSettings,
    SendGridSettings,
    SesRegionSettings,
    SmtpSettings,
    WorkerSettings,
    parse_failover,
    parse_providers,
)

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mailwright/relay-AbCdEf"
RELAY = {"name": "relay", "kind": "smtp", "secret_arn": ARN, "settings": {"host": "smtp.example.com"}}
WORKER_ENV = {
    Env.LANE: "critical",
    Env.QUEUE_URL: "https://sqs.example/q",
    Env.TEMPLATES_BUCKET: "templates",
    Env.PREFERENCES_TABLE: "prefs",
    Env.SUPPRESSION_TABLE: "supp",
    Env.IDEMPOTENCY_TABLE: "idem",
    Env.MESSAGES_TABLE: "msgs",
    Env.CONFIGURATION_SET: "cs",
    Env.FROM_ADDRESS: "no-reply@example.com",
    Env.UNSUBSCRIBE_BASE_URL: "https://example.com/u",
    Env.UNSUBSCRIBE_SECRET_ARN: ARN,
    Env.ADDRESS_KEY_SECRET_ARN: ARN,
}


def providers(*entries: dict[str, Any]) -> str:
    return json.dumps(list(entries))


def test_no_providers_means_ses_alone() -> None:
    settings = WorkerSettings.from_env(WORKER_ENV)

    assert settings.providers == () and settings.failover is None


def test_every_kind_parses_into_its_own_settings() -> None:
    parsed = parse_providers(
        providers(
            RELAY,
            {"name": "relay465", "kind": "smtp", "secret_arn": ARN, "settings": {"host": "h.example", "tls": "tls"}},
            {"name": "sg", "kind": "sendgrid", "secret_arn": ARN, "send_rate": 20},
            {
                "name": "mg",
                "kind": "mailgun",
                "secret_arn": ARN,
                "settings": {"domain": "mg.example.com", "region": "eu"},
            },
            {"name": "ses-eu", "kind": "ses_region", "settings": {"region": "eu-west-1", "configuration_set": "mw-eu"}},
        )
    )

    by_name = {p.name: p for p in parsed}
    assert by_name["relay"].options == SmtpSettings(host="smtp.example.com", port=587, tls="starttls")
    assert by_name["relay465"].options == SmtpSettings(host="h.example", port=465, tls="tls")
    assert by_name["sg"].options == SendGridSettings() and by_name["sg"].send_rate == 20
    assert by_name["mg"].options == MailgunSettings(domain="mg.example.com", base_url=MAILGUN_BASE_URLS["eu"])
    assert by_name["ses-eu"].options == SesRegionSettings(region="eu-west-1", configuration_set="mw-eu")
    assert by_name["ses-eu"].secret_arn == ""


@pytest.mark.parametrize(
    ("entry", "fault"),
    [
        ({**RELAY, "kind": "postmark"}, "kind must be one of"),
        ({**RELAY, "name": "ses"}, "not 'ses'"),
        ({**RELAY, "name": "a b"}, "a name is up to 40"),
        ({**RELAY, "secret_arn": "hunter2"}, "secret_arn must be the ARN"),
        ({**RELAY, "settings": {"host": "smtp.example.com", "tls": "none"}}, "loopback only"),
        ({**RELAY, "settings": {"host": "smtp.example.com", "tls": "ssl"}}, "tls must be one of"),
        ({**RELAY, "settings": {"host": "smtp.example.com", "port": 70000}}, "port must be at most"),
        ({**RELAY, "settings": {}}, "host must be a non-empty string"),
        ({**RELAY, "send_rate": 0}, "send_rate must be a number above 0"),
        (
            {"name": "sg", "kind": "sendgrid", "secret_arn": ARN, "settings": {"base_url": "http://api.example"}},
            "https",
        ),
        ({"name": "mg", "kind": "mailgun", "secret_arn": ARN, "settings": {"domain": "a/b"}}, "bare domain"),
        ({"name": "mg", "kind": "mailgun", "secret_arn": ARN, "settings": {"domain": "d", "region": "ap"}}, "region"),
        ({"name": "eu", "kind": "ses_region", "settings": {"region": "eu-west-1"}}, "configuration_set"),
    ],
)
def test_bad_providers_are_refused_with_the_fault_named(entry: dict[str, Any], fault: str) -> None:
    with pytest.raises(ConfigurationError, match=fault):
        parse_providers(providers(entry))


def test_provider_names_are_unique_and_the_value_is_a_list() -> None:
    with pytest.raises(ConfigurationError, match="unique"):
        parse_providers(providers(RELAY, RELAY))
    with pytest.raises(ConfigurationError, match="JSON list"):
        parse_providers(json.dumps(RELAY))
    with pytest.raises(ConfigurationError, match="not JSON"):
        parse_providers("[{")


def test_plain_text_relays_and_apis_are_allowed_on_loopback_only() -> None:
    local = parse_providers(
        providers(
            {**RELAY, "settings": {"host": "127.0.0.1", "port": 2525, "tls": "none"}},
            {"name": "sg", "kind": "sendgrid", "secret_arn": ARN, "settings": {"base_url": "http://127.0.0.1:8080/"}},
        )
    )

    assert local[0].options == SmtpSettings(host="127.0.0.1", port=2525, tls="none")
    assert local[1].options == SendGridSettings(base_url="http://127.0.0.1:8080")


@pytest.mark.parametrize(("lane", "enabled"), [("critical", True), ("standard", True), ("bulk", False)])
def test_failover_defaults_on_for_critical_and_standard_off_for_bulk(lane: str, enabled: bool) -> None:
    failover = parse_failover("", lane=lane, providers=parse_providers(providers(RELAY)))

    assert failover == FailoverSettings(enabled=enabled, provider="relay")


def test_failover_settings_override_the_defaults_and_name_a_configured_provider() -> None:
    configured = parse_providers(providers(RELAY, {**RELAY, "name": "backup"}))
    raw = json.dumps({"enabled": True, "provider": "backup", "failure_threshold": 3, "cooldown_seconds": 10})

    failover = parse_failover(raw, lane="bulk", providers=configured)

    assert failover is not None and failover.enabled and failover.provider == "backup"
    assert (failover.failure_threshold, failover.cooldown_seconds, failover.window_seconds) == (3, 10, 30)
    with pytest.raises(ConfigurationError, match="not among"):
        parse_failover(json.dumps({"provider": "nope"}), lane="bulk", providers=configured)
    with pytest.raises(ConfigurationError, match="enabled must be true or false"):
        parse_failover(json.dumps({"enabled": "yes"}), lane="bulk", providers=configured)
    with pytest.raises(ConfigurationError, match="failure_threshold"):
        parse_failover(json.dumps({"failure_threshold": 0}), lane="bulk", providers=configured)


def test_the_worker_reads_providers_and_its_lanes_failover_from_its_environment() -> None:
    env = {**WORKER_ENV, Env.PROVIDERS: providers(RELAY), Env.FAILOVER: json.dumps({"window_seconds": 60})}

    settings = WorkerSettings.from_env(env)

    assert [p.name for p in settings.providers] == ["relay"]
    assert settings.failover == FailoverSettings(enabled=True, provider="relay", window_seconds=60)


def test_the_webhook_needs_a_provider_that_posts_webhooks() -> None:
    env = {
        Env.SUPPRESSION_TABLE: "supp",
        Env.MESSAGES_TABLE: "msgs",
        Env.IDEMPOTENCY_TABLE: "idem",
        Env.PREFERENCES_TABLE: "prefs",
        Env.ADDRESS_KEY_SECRET_ARN: ARN,
        Env.PROVIDERS: providers(RELAY),
    }
    with pytest.raises(ConfigurationError, match="names no provider that posts webhooks"):
        ProviderWebhookSettings.from_env(env)

    env[Env.PROVIDERS] = providers({"name": "sg", "kind": "sendgrid", "secret_arn": ARN})
    settings = ProviderWebhookSettings.from_env(env)
    assert settings.idempotency_table == "idem" and settings.feedback.messages_table == "msgs"
    with pytest.raises(ConfigurationError, match=Env.PREFERENCES_TABLE):
        ProviderWebhookSettings.from_env({k: v for k, v in env.items() if k != Env.PREFERENCES_TABLE})
