"""Wiring and observability of the secondary providers: senders built from settings, secrets read once, metrics."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from mailwright.adapters.mailgun import MailgunEmailSender
from mailwright.adapters.sendgrid import SendGridEmailSender
from mailwright.adapters.ses import SesEmailSender
from mailwright.adapters.smtp import SmtpEmailSender
from mailwright.errors import ConfigurationError
from mailwright.failover import FailoverSender
from mailwright.handlers import provider_webhook
from mailwright.observability import AddressMaskingFormatter, ProviderMetrics
from mailwright.ports import BreakerChange
from mailwright.settings import FailoverSettings, parse_providers
from mailwright.wiring import SecretJson, build_failover_sender, build_provider_sender
from mailwright_tools.fakes import FakeEmailSender, FakeProviderBreakerStore

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:relay"


class CountingSecrets:
    """A Secrets Manager client that answers one secret and counts the reads."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.reads = 0
        self._lock = threading.Lock()

    def get_secret_value(self, SecretId: str) -> dict[str, str]:  # noqa: N803 - boto3's parameter name
        with self._lock:
            self.reads += 1
        return {"SecretString": self.value if isinstance(self.value, str) else json.dumps(self.value)}


PROVIDERS = parse_providers(
    json.dumps(
        [
            {"name": "relay", "kind": "smtp", "secret_arn": ARN, "settings": {"host": "smtp.example.com"}},
            {"name": "sg", "kind": "sendgrid", "secret_arn": ARN},
            {"name": "mg", "kind": "mailgun", "secret_arn": ARN, "settings": {"domain": "mg.example.com"}},
            {"name": "ses-eu", "kind": "ses_region", "settings": {"region": "eu-west-1", "configuration_set": "mw-eu"}},
        ]
    )
)


@pytest.mark.parametrize(
    ("name", "kind"),
    [("relay", SmtpEmailSender), ("sg", SendGridEmailSender), ("mg", MailgunEmailSender), ("ses-eu", SesEmailSender)],
)
def test_each_kind_gets_its_adapter_and_no_secret_is_read_at_cold_start(name: str, kind: type) -> None:
    secrets = CountingSecrets({"api_key": "k"})
    provider = next(p for p in PROVIDERS if p.name == name)

    sender = build_provider_sender(provider, session=boto3.session.Session(), secrets=secrets)

    assert isinstance(sender, kind) and secrets.reads == 0


def test_the_second_region_client_is_in_its_region() -> None:
    provider = next(p for p in PROVIDERS if p.name == "ses-eu")
    sender = build_provider_sender(provider, session=boto3.session.Session(), secrets=CountingSecrets({}))

    assert sender._client.meta.region_name == "eu-west-1"  # type: ignore[attr-defined]


def test_a_secret_is_read_once_however_many_threads_ask() -> None:
    secrets = CountingSecrets({"api_key": "SG.secret-value"})
    secret = SecretJson(secrets, ARN)

    with ThreadPoolExecutor(max_workers=8) as pool:
        values = list(pool.map(lambda _: secret.field("api_key"), range(50)))

    assert set(values) == {"SG.secret-value"} and secrets.reads == 1


def test_a_bad_secret_is_named_without_its_value() -> None:
    with pytest.raises(ConfigurationError, match="no 'api_key'") as missing:
        SecretJson(CountingSecrets({"apikey": "SG.secret-value"}), ARN).field("api_key")
    assert "SG.secret-value" not in str(missing.value)
    with pytest.raises(ConfigurationError, match="JSON object"):
        SecretJson(CountingSecrets('"just a string"'), ARN).get()


def test_the_failover_sender_pairs_ses_with_the_lanes_secondary() -> None:
    failover = FailoverSettings(enabled=False, provider="sg")
    sender = build_failover_sender(
        "bulk",
        failover,
        PROVIDERS,
        primary=FakeEmailSender(),
        store=FakeProviderBreakerStore(),
        session=boto3.session.Session(),
        secrets=CountingSecrets({}),
    )

    assert isinstance(sender, FailoverSender) and not sender.enabled
    assert sender.secondary_name == "sg" and sender.breaker.provider == "ses"
    assert sender.secondary_breaker is not None and sender.secondary_breaker.provider == "sg"


def test_provider_metrics_are_emf_documents_per_lane_and_provider(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = ProviderMetrics()

    metrics.breaker_changed(BreakerChange("critical", "ses", "closed", "open", reason="ses_paused: paused"))
    metrics.count("MaybeSent", lane="standard", provider="relay")

    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emf = [(d["_aws"]["CloudWatchMetrics"][0], d) for d in documents]
    assert [(m["Namespace"], m["Metrics"][0]["Name"]) for m, _ in emf] == [
        ("Mailwright", "ProviderBreakerOpened"),
        ("Mailwright", "MaybeSent"),
    ]
    assert [(d["lane"], d["provider"], d["service"]) for _, d in emf] == [
        ("critical", "ses", "mailwright"),
        ("standard", "relay", "mailwright"),
    ]
    assert all(set(m["Dimensions"][0]) == {"service", "lane", "provider"} for m, _ in emf)


def test_the_webhook_handler_logs_through_the_masking_formatter() -> None:
    assert isinstance(provider_webhook.logger.registered_formatter, AddressMaskingFormatter)
