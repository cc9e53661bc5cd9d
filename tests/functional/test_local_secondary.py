"""The local stack's SES outage switch and loopback relay, on their own: against moto and a real SMTP session."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mailwright.adapters.aws import client_config
from mailwright.adapters.ses import SesEmailSender
from mailwright.errors import ProviderOutageError
from mailwright.ports import OutboundEmail
from mailwright_tools.local import ses_outage
from mailwright_tools.local.outbox import Outbox
from mailwright_tools.local.relay import PROVIDER_HEADER, LocalRelay, local_relay_provider

EMAIL = OutboundEmail(
    from_address="no-reply@example.com",
    to_address="jane@example.com",
    subject="Hi",
    html="<p>Hi</p>",
    text="Hi",
    configuration_set="cs",
    tags=(("request_id", "r1"), ("lane", "critical")),
)


@pytest.fixture
def ses() -> Iterator[tuple[ses_outage.SesOutage, SesEmailSender]]:
    """SES in moto, through a session that obeys a fresh outage switch."""
    with mock_aws():
        switch = ses_outage.SesOutage()
        session = boto3.session.Session(region_name="us-east-1")
        switch.install(session)
        client = session.client("sesv2", config=client_config(max_attempts=2))  # as the worker's
        client.create_configuration_set(ConfigurationSetName="cs")
        client.create_email_identity(EmailIdentity="no-reply@example.com")
        yield switch, SesEmailSender(client)


@pytest.mark.parametrize(("mode", "code"), [("5xx", "ses_failed"), ("connection", "ses_unreachable")])
def test_a_local_ses_outage_fails_every_call_as_an_outage_and_nothing_reaches_ses(
    ses: tuple[ses_outage.SesOutage, SesEmailSender], mode: str, code: str
) -> None:
    switch, sender = ses
    assert sender.send(EMAIL)  # up: SES accepts

    switch.down(mode)
    with pytest.raises(ProviderOutageError) as caught:
        sender.send(EMAIL)

    # The adapter sees what a real outage looks like: an outage SES never accepted (no lost answer).
    assert caught.value.code == code and not caught.value.maybe_sent
    state = switch.status()
    assert (state.state, state.mode) == ("down", mode)
    assert state.failed_attempts == 3  # the first attempt and botocore's two retries (retries max_attempts=2)
    switch.up()
    assert sender.send(EMAIL)


def test_the_switch_answers_another_process_on_loopback_only() -> None:
    switch = ses_outage.SesOutage()
    server, url = ses_outage.start(switch)
    try:
        assert ses_outage.remote(url)["state"] == "up"
        assert ses_outage.remote(url, {"state": "down", "mode": "connection"})["mode"] == "connection"
        assert switch.status().state == "down"
        with pytest.raises(ses_outage.SesSwitchError, match="mode must be one of"):
            ses_outage.remote(url, {"state": "down", "mode": "flaky"})
        with pytest.raises(ses_outage.SesSwitchError, match='"down" or "up"'):
            ses_outage.remote(url, {"state": "sideways"})
        assert ses_outage.remote(url, {"state": "up"})["state"] == "up"
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ses_outage.SesSwitchError, match="not a local stack"):
        ses_outage.remote("http://example.com/ses")
    with pytest.raises(ses_outage.SesSwitchError, match="did not answer"):
        ses_outage.remote(url)


def test_the_relay_checks_its_credentials_and_files_what_it_takes(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    relay = LocalRelay(outbox)
    relay.start()
    try:
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=5) as smtp, pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login(relay.credentials["username"], "wrong password")
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "no-reply@example.com", "ada@example.com", "Reset"
        message["X-Mailwright-Request-Id"], message["X-Mailwright-Lane"] = "r2", "critical"
        message[PROVIDER_HEADER] = "forged"  # a sender cannot say who delivered it
        message.set_content("text")
        message.add_alternative("<p>html</p>", subtype="html")
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=5) as smtp:
            smtp.login(relay.credentials["username"], relay.credentials["password"])
            smtp.send_message(message)
    finally:
        relay.stop()
        outbox.close()

    (entry,) = outbox.entries
    assert (entry.provider, entry.lane, entry.request_id, entry.to) == (
        "local-relay",
        "critical",
        "r2",
        "ada@example.com",
    )
    stored = (outbox.directory / f"{entry.stem}.eml").read_text()
    assert stored.count(f"{PROVIDER_HEADER}:") == 1 and f"{PROVIDER_HEADER}: local-relay" in stored
    assert (outbox.directory / f"{entry.stem}.html").read_text() == "<p>html</p>\n"
    assert relay.received_count == 1


def test_the_local_relay_is_a_providers_entry_like_a_deployed_relay() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mailwright/providers/local-relay-AbCdEf"
    provider = local_relay_provider(host="127.0.0.1", port=2525, secret_arn=arn)

    assert (provider.name, provider.kind, provider.secret) == ("local-relay", "smtp", arn)
    assert provider.settings == {"host": "127.0.0.1", "port": 2525, "tls": "none", "timeout_seconds": 5}
