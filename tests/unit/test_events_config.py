"""The outcome_events, event_consumers and webhooks settings: defaults, validation with the key named, patterns."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, parse_config
from infra.events_config import WebhookTarget, check_endpoint_url, event_pattern, webhook_environment
from mailwright.constants import DEFAULT_OUTCOME_EVENTS, OUTCOME_DETAIL_TYPES, Env
from mailwright.event_settings import RetryPolicy, WebhookSettings

BASE = {"sender": "no-reply@example.com"}
HOOK = {"name": "shop", "url": "https://hooks.shop.example/in", "detail_types": ["EmailBounced"]}


def parse(**overrides: Any) -> Any:
    return parse_config({**BASE, **overrides}).events


def test_defaults_publish_what_went_wrong_with_no_consumers_or_webhooks() -> None:
    events = parse()
    assert events.outcome_events == DEFAULT_OUTCOME_EVENTS
    assert events.event_consumers == () and events.webhooks == ()
    assert events.webhook_archive_days == 365


def test_all_publishes_every_detail_type() -> None:
    assert parse(outcome_events="all").outcome_events == OUTCOME_DETAIL_TYPES


def test_a_webhook_gets_a_pattern_of_its_types_and_metadata() -> None:
    [hook] = parse(webhooks=[{**HOOK, "metadata": {"tenant": "acme", "region": ["eu", "us"]}}]).webhooks
    assert hook.event_pattern() == {
        "source": ["mailwright"],
        "detail-type": ["EmailBounced"],
        "detail": {"metadata": {"region": ["eu", "us"], "tenant": ["acme"]}},
    }
    assert event_pattern(("EmailSent",), {}) == {"source": ["mailwright"], "detail-type": ["EmailSent"]}


def test_a_webhook_may_take_only_some_producers_mail() -> None:
    [hook] = parse(webhooks=[{**HOOK, "producers": ["billing", "crm"], "metadata": {"tenant": "acme"}}]).webhooks
    assert hook.producers == ("billing", "crm")
    assert hook.event_pattern()["detail"] == {"producer": ["billing", "crm"], "metadata": {"tenant": ["acme"]}}


def test_a_webhook_without_types_takes_every_published_one() -> None:
    [hook] = parse(webhooks=[{"name": "all", "url": "https://a.example/in"}]).webhooks
    assert hook.detail_types == DEFAULT_OUTCOME_EVENTS


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"outcome_events": ["EmailSnet"]}, "outcome_events: unknown detail-types ['EmailSnet']"),
        ({"outcome_events": "some"}, "outcome_events must be a list"),
        ({"event_consumers": ["12345"]}, "event_consumers must be a list of 12-digit"),
        ({"webhook_archive_days": 0}, "webhook_archive_days"),
        ({"webhooks": {"shop": HOOK}}, "webhooks must be a list"),
        ({"webhooks": [{**HOOK, "name": "Shop!"}]}, "webhooks[0].name"),
        ({"webhooks": [HOOK, HOOK]}, "endpoint names must be unique (shop)"),
        ({"webhooks": [{**HOOK, "url": "http://hooks.shop.example/in"}]}, "webhooks[shop].url must start with https"),
        ({"webhooks": [{**HOOK, "url": "https://192.168.0.10/in"}]}, "192.168.0.10 is not a public address"),
        ({"webhooks": [{**HOOK, "url": "https://169.254.169.254/"}]}, "not a public address"),
        ({"webhooks": [{**HOOK, "url": "https://localhost/in"}]}, "loopback"),
        ({"webhooks": [{**HOOK, "url": "https://u:p@a.example/"}]}, "may not carry credentials"),
        ({"webhooks": [{**HOOK, "detail_types": ["EmailSent"]}]}, "EmailSent not published; add to"),
        ({"webhooks": [{**HOOK, "metadata": {"tenant": "a b"}}]}, "webhooks[shop].metadata.tenant"),
        ({"webhooks": [{**HOOK, "producers": "billing"}]}, "webhooks[shop].producers must be a list"),
        ({"webhooks": [{**HOOK, "producers": ["Billing Team"]}]}, "webhooks[shop].producers must be a list"),
        ({"webhooks": [{**HOOK, "max_concurrency": 1}]}, "max_concurrency is 2 to 20"),
        ({"webhooks": [{**HOOK, "retries": 3}]}, "unknown settings ['retries']"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**BASE, **settings})
    assert message in str(caught.value)


def test_the_local_stack_may_name_loopback_http() -> None:
    check_endpoint_url("http://127.0.0.1:8080/hook", where="--webhook", allow_loopback=True)
    check_endpoint_url("http://localhost:8080/hook", where="--webhook", allow_loopback=True)
    with pytest.raises(ValueError, match="https"):
        check_endpoint_url("http://10.0.0.1/hook", where="--webhook", allow_loopback=True)
    with pytest.raises(ValueError, match="public"):
        check_endpoint_url("https://10.0.0.1/hook", where="--webhook", allow_loopback=True)


def test_the_sender_reads_the_environment_the_infra_writes() -> None:
    environment = webhook_environment(
        targets=[
            WebhookTarget(name="shop", url="https://a.example/", queue_arn="arn:q", queue_url="u", secret_arn="s")
        ],
        state_table="t",
        archive_bucket="b",
        retry_json=RetryPolicy(base_seconds=1, window_seconds=60).to_json(),
        allow_loopback=True,
    )
    settings = WebhookSettings.from_env(environment)
    assert settings.endpoints["arn:q"].name == "shop" and settings.endpoints["arn:q"].queue_url == "u"
    assert settings.retry.base_seconds == 1 and settings.retry.window_seconds == 60
    assert settings.allow_loopback is True
    assert Env.WEBHOOK_RETRY in environment
