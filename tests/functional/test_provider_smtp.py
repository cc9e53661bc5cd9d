"""The SMTP relay adapter against a real SMTP server on loopback (aiosmtpd): TLS, AUTH, pooling, replies."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mailwright.adapters import smtp as smtp_adapter
from mailwright.adapters.smtp import SmtpCredentials, SmtpEmailSender
from mailwright.errors import ProviderOutageError, RejectedError, TransientError
from mailwright.ports import OutboundEmail
from mailwright.settings import SmtpSettings
from tests.functional.relays import PASSWORD, USERNAME, Certificate, Relay, free_port


def email(
    to: str = "jane@example.com", *, subject: str = "Reset your password", request_id: str = "req-1"
) -> OutboundEmail:
    return OutboundEmail(
        from_address="Example <no-reply@mail.example.com>",
        to_address=to,
        subject=subject,
        html="<p>Hello <b>Jane</b> \u2014 caf\u00e9</p>",
        text="Hello Jane \u2014 caf\u00e9",
        configuration_set="cs",
        headers=(
            ("List-Unsubscribe", "<https://example.com/u?token=abc>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
        tags=(
            ("template", "newsletter"),
            ("category", "marketing"),
            ("request_id", request_id),
            ("lane", "bulk"),
            ("tenant", "acme"),
        ),
    )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return Certificate.create(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def starttls_relay(certificate: Certificate) -> Iterator[Relay]:
    with Relay("starttls", certificate) as relay:
        yield relay


def sender(
    relay: Relay, certificate: Certificate | None = None, *, password: str = PASSWORD, pool_size: int = 2
) -> SmtpEmailSender:
    tls = relay.mode if relay.mode != "plain" else "none"
    settings = SmtpSettings(host="127.0.0.1", port=relay.port, tls=tls, timeout_seconds=5, pool_size=pool_size)
    credentials = None if relay.mode == "plain" else SmtpCredentials(USERNAME, password)
    context = certificate.client_context() if certificate else None
    return SmtpEmailSender(settings, lambda: credentials, name="relay", ssl_context=context)


def test_starttls_with_auth_delivers_the_message_ses_would_send(
    starttls_relay: Relay, certificate: Certificate
) -> None:
    relay_sender = sender(starttls_relay, certificate)

    message_id = relay_sender.send(email())

    (message,) = starttls_relay.handler.parsed()
    (envelope,) = starttls_relay.handler.messages
    assert envelope.mail_from == "no-reply@mail.example.com" and envelope.rcpt_tos == ["jane@example.com"]
    assert message["Message-ID"] == f"<{message_id}>" and message_id.endswith("@mail.example.com")
    assert message["Subject"] == "Reset your password"
    assert message["List-Unsubscribe"] == "<https://example.com/u?token=abc>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-Mailwright-Request-Id"] == "req-1" and message["X-Mailwright-Lane"] == "bulk"
    assert message["X-Mailwright-Category"] == "marketing" and message["X-Mailwright-Template"] == "newsletter"
    assert message["X-Mailwright-Tenant"] is None  # producer metadata is not shown to the recipient
    assert message.get_content_type() == "multipart/alternative"
    plain, html = (part.get_content() for part in message.iter_parts())
    assert plain.strip() == "Hello Jane \u2014 caf\u00e9" and "<b>Jane</b>" in html
    relay_sender.close()


def test_implicit_tls_on_its_own_port(certificate: Certificate) -> None:
    with Relay("tls", certificate) as relay:
        relay_sender = sender(relay, certificate)
        relay_sender.send(email())
        with pytest.raises(ProviderOutageError, match="login refused"):
            sender(relay, certificate, password="wrong").send(email())

        assert len(relay.handler.messages) == 1
        relay_sender.close()


def test_one_connection_carries_a_batch_and_the_pool_caps_connections(
    starttls_relay: Relay, certificate: Certificate
) -> None:
    relay_sender = sender(starttls_relay, certificate, pool_size=2)

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda i: relay_sender.send(email(f"user{i}@example.com", request_id=f"r{i}")), range(40)))

    assert len(set(ids)) == 40 and len(starttls_relay.handler.messages) == 40
    assert relay_sender.connections_opened <= 2 and starttls_relay.handler.sessions <= 4  # EHLO again after STARTTLS
    relay_sender.close()


def test_a_connection_the_relay_closed_while_idle_is_replaced(certificate: Certificate) -> None:
    with Relay("starttls", certificate, timeout=0.5) as relay:
        relay_sender = sender(relay, certificate)
        relay_sender.send(email(request_id="r1"))
        time.sleep(1.0)  # the relay times the idle session out (421) and closes it

        relay_sender.send(email(request_id="r2"))

        assert len(relay.handler.messages) == 2 and relay_sender.connections_opened == 2
        relay_sender.close()


def test_a_long_idle_connection_is_checked_with_noop_first(
    starttls_relay: Relay, certificate: Certificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay_sender = sender(starttls_relay, certificate)
    relay_sender.send(email(request_id="r1"))
    monkeypatch.setattr(smtp_adapter, "IDLE_CHECK_SECONDS", 0.0)

    relay_sender.send(email(request_id="r2"))

    assert relay_sender.connections_opened == 1 and len(starttls_relay.handler.messages) == 2
    relay_sender.close()


def test_refusals_are_permanent_deferrals_transient(starttls_relay: Relay, certificate: Certificate) -> None:
    relay_sender = sender(starttls_relay, certificate)

    with pytest.raises(RejectedError, match="550"):
        relay_sender.send(email("nobody@refused.example"))
    with pytest.raises(RejectedError, match="554"):
        relay_sender.send(email(subject="spam"))
    with pytest.raises(TransientError, match="450") as deferred:
        relay_sender.send(email("jane@busy.example"))
    assert not isinstance(deferred.value, ProviderOutageError)  # the mailbox, not the relay

    # The session survives refusals: the next email reuses it.
    relay_sender.send(email())
    assert relay_sender.connections_opened == 1 and len(starttls_relay.handler.messages) == 1
    relay_sender.close()


def test_refused_credentials_are_an_outage_at_once(starttls_relay: Relay, certificate: Certificate) -> None:
    with pytest.raises(ProviderOutageError) as raised:
        sender(starttls_relay, certificate, password="wrong").send(email())

    assert raised.value.code == "relay_auth_failed" and raised.value.at_once and not raised.value.maybe_sent
    assert PASSWORD not in str(raised.value) and "wrong" not in str(raised.value)
    assert not starttls_relay.handler.messages


def test_a_relay_without_starttls_is_refused_rather_than_used_in_clear(certificate: Certificate) -> None:
    with Relay("plain") as relay:
        settings = SmtpSettings(host="127.0.0.1", port=relay.port, tls="starttls", timeout_seconds=5)
        insecure = SmtpEmailSender(settings, lambda: None, name="relay", ssl_context=certificate.client_context())

        with pytest.raises(ProviderOutageError, match="STARTTLS") as raised:
            insecure.send(email())

        assert raised.value.at_once and not relay.handler.messages


def test_an_untrusted_certificate_is_an_outage(starttls_relay: Relay) -> None:
    settings = SmtpSettings(host="127.0.0.1", port=starttls_relay.port, tls="starttls", timeout_seconds=5)
    default_trust = SmtpEmailSender(settings, lambda: SmtpCredentials(USERNAME, PASSWORD), name="relay")

    with pytest.raises(ProviderOutageError) as raised:
        default_trust.send(email())

    assert raised.value.code == "relay_unreachable" and not starttls_relay.handler.messages


def test_nothing_listening_is_an_outage_the_relay_never_saw() -> None:
    settings = SmtpSettings(host="127.0.0.1", port=free_port(), tls="starttls", timeout_seconds=2)

    with pytest.raises(ProviderOutageError) as raised:
        SmtpEmailSender(settings, lambda: None, name="relay").send(email())

    assert raised.value.code == "relay_unreachable" and not raised.value.maybe_sent


def test_a_connection_lost_after_the_message_was_handed_over_may_have_sent_it() -> None:
    with Relay("plain") as relay:
        relay.handler.drop_during_data = True

        with pytest.raises(ProviderOutageError) as raised:
            sender(relay).send(email())

        assert raised.value.maybe_sent


def test_the_secret_is_read_when_the_first_connection_opens(starttls_relay: Relay, certificate: Certificate) -> None:
    reads = []
    lock = threading.Lock()

    def credentials() -> SmtpCredentials:
        with lock:
            reads.append(1)
        return SmtpCredentials(USERNAME, PASSWORD)

    settings = SmtpSettings(host="127.0.0.1", port=starttls_relay.port, tls="starttls", timeout_seconds=5, pool_size=1)
    relay_sender = SmtpEmailSender(settings, credentials, name="relay", ssl_context=certificate.client_context())
    assert reads == []
    for i in range(3):
        relay_sender.send(email(request_id=f"r{i}"))

    assert len(reads) == 1
    relay_sender.close()
