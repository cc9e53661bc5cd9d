"""The SendGrid and Mailgun adapters against loopback stand-ins that check each request against the documented API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailwright.adapters.http import ProviderApi
from mailwright.adapters.mailgun import MailgunEmailSender
from mailwright.adapters.sendgrid import SendGridEmailSender
from mailwright.errors import ProviderOutageError, RejectedError, ThrottledError
from mailwright.ports import OutboundEmail
from mailwright.settings import MailgunSettings, SendGridSettings
from tests.functional.provider_apis import MailgunApi, SendGridApi
from tests.functional.relays import free_port

EMAIL = OutboundEmail(
    from_address="Example Shop <no-reply@mail.example.com>",
    to_address="jane@example.com",
    subject="Your order XYZ789",
    html="<p>Thanks, Jane \u2014 caf\u00e9</p>",
    text="Thanks, Jane \u2014 caf\u00e9",
    configuration_set="cs",
    headers=(
        ("List-Unsubscribe", "<https://example.com/u?token=abc>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ),
    tags=(
        ("template", "order_confirmation"),
        ("category", "transactional"),
        ("request_id", "0123456789abcdef"),
        ("lane", "standard"),
        ("tenant", "acme"),
    ),
)


@pytest.fixture
def sendgrid() -> Iterator[SendGridApi]:
    with SendGridApi() as api:
        yield api  # type: ignore[misc]


@pytest.fixture
def mailgun() -> Iterator[MailgunApi]:
    with MailgunApi() as api:
        yield api  # type: ignore[misc]


def sendgrid_sender(api: SendGridApi, *, timeout: float = 5.0) -> SendGridEmailSender:
    settings = SendGridSettings(base_url=api.base_url, timeout_seconds=timeout)
    return SendGridEmailSender(settings, lambda: api.key, name="sendgrid")


def mailgun_sender(api: MailgunApi, *, timeout: float = 5.0) -> MailgunEmailSender:
    settings = MailgunSettings(domain="mg.example.com", base_url=api.base_url, timeout_seconds=timeout)
    return MailgunEmailSender(settings, lambda: api.key, name="mailgun")


def test_sendgrid_gets_the_documented_request_and_its_message_id_is_returned(sendgrid: SendGridApi) -> None:
    message_id = sendgrid_sender(sendgrid).send(EMAIL)

    assert sendgrid.violations == []
    assert message_id == sendgrid.message_ids[0]
    body = sendgrid.requests[0].json
    assert body["personalizations"] == [
        {
            "to": [{"email": "jane@example.com"}],
            "custom_args": {
                "request_id": "0123456789abcdef",
                "lane": "standard",
                "category": "transactional",
                "template": "order_confirmation",
            },
        }
    ]
    assert body["from"] == {"email": "no-reply@mail.example.com", "name": "Example Shop"}
    assert body["content"] == [
        {"type": "text/plain", "value": EMAIL.text},
        {"type": "text/html", "value": EMAIL.html},
    ]
    assert body["headers"] == {
        "List-Unsubscribe": "<https://example.com/u?token=abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "X-Mailwright-Request-Id": "0123456789abcdef",
    }
    assert body["categories"] == ["transactional"]
    assert body["tracking_settings"] == {"subscription_tracking": {"enable": False}}
    assert "acme" not in sendgrid.requests[0].body.decode()  # producer metadata stays with mailwright


def test_mailgun_gets_the_documented_form_and_its_message_id_is_returned(mailgun: MailgunApi) -> None:
    message_id = mailgun_sender(mailgun).send(EMAIL)

    assert mailgun.violations == []
    request = mailgun.requests[0]
    assert request.path == "/v3/mg.example.com/messages"
    assert "@mg.example.com" in message_id and not message_id.startswith("<")
    form = {name: values[0] for name, values in request.form.items()}
    assert form["from"] == "Example Shop <no-reply@mail.example.com>" and form["to"] == "jane@example.com"
    assert form["subject"] == "Your order XYZ789"
    assert form["text"] == EMAIL.text and form["html"] == EMAIL.html
    assert form["h:List-Unsubscribe"] == "<https://example.com/u?token=abc>"
    assert form["h:List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert form["h:X-Mailwright-Request-Id"] == "0123456789abcdef"
    assert form["v:request_id"] == "0123456789abcdef" and form["v:lane"] == "standard"
    assert form["v:category"] == "transactional" and form["o:tag"] == "transactional"
    assert "v:tenant" not in form


# Statuses both providers' send APIs answer, and what each means for the email and the breaker.
STATUSES = [
    (400, RejectedError, False, False),
    (413, RejectedError, False, False),
    (401, ProviderOutageError, True, False),
    (403, ProviderOutageError, True, False),
    (404, ProviderOutageError, True, False),
    (429, ThrottledError, False, False),
    (500, ProviderOutageError, False, False),
    (503, ProviderOutageError, False, False),
    (504, ProviderOutageError, False, True),
]


@pytest.mark.parametrize(("status", "error", "at_once", "maybe_sent"), STATUSES)
@pytest.mark.parametrize("provider", ["sendgrid", "mailgun"])
def test_answers_map_to_what_they_mean(
    provider: str, status: int, error: type[Exception], at_once: bool, maybe_sent: bool
) -> None:
    api = SendGridApi() if provider == "sendgrid" else MailgunApi()
    with api:
        api.answers.append(status)
        sender = sendgrid_sender(api) if isinstance(api, SendGridApi) else mailgun_sender(api)

        with pytest.raises(error) as raised:
            sender.send(EMAIL)

    assert api.violations == []
    assert getattr(raised.value, "at_once", False) == at_once
    assert getattr(raised.value, "maybe_sent", False) == maybe_sent
    assert api.key not in str(raised.value)


@pytest.mark.parametrize("provider", ["sendgrid", "mailgun"])
def test_no_answer_in_time_may_have_sent_it_and_no_server_did_not(provider: str) -> None:
    api = SendGridApi() if provider == "sendgrid" else MailgunApi()
    with api:
        api.answers.append(1.5)  # seconds before answering
        sender = sendgrid_sender(api, timeout=0.3) if isinstance(api, SendGridApi) else mailgun_sender(api, timeout=0.3)
        with pytest.raises(ProviderOutageError) as timed_out:
            sender.send(EMAIL)
    assert timed_out.value.maybe_sent

    nowhere = ProviderApi(f"http://127.0.0.1:{free_port()}", name=provider, timeout_seconds=1)
    settings_url = nowhere.base_url
    down = (
        SendGridEmailSender(SendGridSettings(base_url=settings_url), lambda: "k", name=provider)
        if provider == "sendgrid"
        else MailgunEmailSender(
            MailgunSettings(domain="mg.example.com", base_url=settings_url), lambda: "k", name=provider
        )
    )
    with pytest.raises(ProviderOutageError) as refused:
        down.send(EMAIL)
    assert refused.value.code == f"{provider}_unreachable" and not refused.value.maybe_sent


def test_mailgun_answering_with_something_else_than_a_queued_message_is_an_outage(mailgun: MailgunApi) -> None:
    mailgun._queued = lambda: (200, {"Content-Type": "text/plain"}, b"Mailgun Magnificent API")  # type: ignore[method-assign]

    with pytest.raises(ProviderOutageError, match="not a queued message") as raised:
        mailgun_sender(mailgun).send(EMAIL)

    assert raised.value.at_once


def test_an_unreadable_secret_is_transient_and_sends_nothing(sendgrid: SendGridApi) -> None:
    def broken() -> str:
        raise RuntimeError("AccessDeniedException")

    sender = SendGridEmailSender(SendGridSettings(base_url=sendgrid.base_url), broken, name="sendgrid")

    with pytest.raises(Exception, match="secret unavailable") as raised:
        sender.send(EMAIL)

    assert type(raised.value).__name__ == "TransientError" and sendgrid.requests == []
