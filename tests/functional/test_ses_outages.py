"""How the SES adapter reads SES failures, with a real botocore client against a loopback SES that misbehaves.

The breaker depends on telling an outage (5xx, unreachable, timeouts, sending
paused, daily quota used up) from rate throttling and from refusals, and a
request SES never got from one whose answer was lost.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from mailwright.adapters.aws import client_config
from mailwright.adapters.ses import SesEmailSender
from mailwright.errors import ProviderOutageError, RejectedError, ThrottledError, TransientError
from mailwright.ports import OutboundEmail
from tests.functional.relays import free_port

EMAIL = OutboundEmail(
    from_address="no-reply@example.com",
    to_address="jane@example.com",
    subject="Hi",
    html="<p>Hi</p>",
    text="Hi",
    configuration_set="mailwright-events",
    tags=(("request_id", "r1"),),
)
# (status, error type, message) or seconds to wait before answering; nothing scripted: 200 and a message id.
Answer = tuple[int, str, str] | float


class FakeSes:
    """SESv2 SendEmail on loopback, answering as scripted; it records each request it received."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.received: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.received.append(json.loads(body))
                answer = fake.answers.pop(0) if fake.answers else None
                if isinstance(answer, float):
                    time.sleep(answer)
                    answer = None
                status, headers, payload = 200, {}, json.dumps({"MessageId": f"ses-{len(fake.received)}"})
                if answer is not None:
                    status, error_type, message = answer
                    headers = {"x-amzn-ErrorType": error_type}
                    payload = json.dumps({"message": message})
                try:
                    self.send_response(status)
                    for name, value in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ses() -> Iterator[FakeSes]:
    fake = FakeSes()
    yield fake
    fake.close()


def sender(url: str, *, read_timeout: float = 5.0, max_attempts: int = 2) -> SesEmailSender:
    """The adapter on a client configured as the worker's (botocore's `max_attempts` counts retries)."""
    config = client_config(max_attempts=max_attempts, read_timeout=read_timeout)
    return SesEmailSender(boto3.session.Session().client("sesv2", endpoint_url=url, config=config))


def test_an_answer_is_a_message_id(ses: FakeSes) -> None:
    assert sender(ses.url).send(EMAIL) == "ses-1"
    assert ses.received[0]["ConfigurationSetName"] == "mailwright-events"


def test_another_region_sends_with_its_own_configuration_set(ses: FakeSes) -> None:
    client = boto3.session.Session().client("sesv2", region_name="eu-west-1", endpoint_url=ses.url)
    SesEmailSender(client, configuration_set="mailwright-eu", label="ses-eu").send(EMAIL)

    assert ses.received[0]["ConfigurationSetName"] == "mailwright-eu"


def test_server_errors_are_outages_ses_refused(ses: FakeSes) -> None:
    ses.answers += [(500, "InternalFailure", "boom"), (503, "ServiceUnavailable", "busy")] * 2

    with pytest.raises(ProviderOutageError) as raised:
        sender(ses.url).send(EMAIL)

    assert raised.value.code == "ses_failed" and not raised.value.maybe_sent and not raised.value.at_once
    assert len(ses.received) == 3  # botocore's own two retries, then the breaker's turn


def test_a_read_timeout_may_have_sent_it_even_when_the_retry_fails_otherwise(ses: FakeSes) -> None:
    ses.answers += [1.0, (500, "InternalFailure", "boom"), (500, "InternalFailure", "boom")]

    with pytest.raises(ProviderOutageError) as raised:
        sender(ses.url, read_timeout=0.3).send(EMAIL)

    assert raised.value.code == "ses_failed" and raised.value.maybe_sent
    # The next send starts clean: its own failure says nothing was lost.
    ses.answers.append((500, "InternalFailure", "boom"))
    with pytest.raises(ProviderOutageError) as clean:
        sender(ses.url, max_attempts=0).send(EMAIL)
    assert not clean.value.maybe_sent


def test_a_read_timeout_alone_may_have_sent_it(ses: FakeSes) -> None:
    ses.answers.append(1.0)

    with pytest.raises(ProviderOutageError) as raised:
        sender(ses.url, read_timeout=0.3, max_attempts=0).send(EMAIL)

    assert raised.value.code == "ses_unreachable" and raised.value.maybe_sent


def test_nothing_listening_was_never_received() -> None:
    with pytest.raises(ProviderOutageError) as raised:
        sender(f"http://127.0.0.1:{free_port()}").send(EMAIL)

    assert raised.value.code == "ses_unreachable" and not raised.value.maybe_sent


@pytest.mark.parametrize(
    ("status", "error_type", "message", "code"),
    [
        (400, "SendingPausedException", "Sending is paused for this account.", "ses_paused"),
        (400, "AccountSuspendedException", "The account is suspended.", "ses_paused"),
        (400, "LimitExceededException", "Daily message quota exceeded.", "ses_quota_exhausted"),
        (429, "TooManyRequestsException", "Daily message quota exceeded.", "ses_quota_exhausted"),
    ],
)
def test_account_level_refusals_open_the_breaker_at_once(
    ses: FakeSes, status: int, error_type: str, message: str, code: str
) -> None:
    ses.answers.append((status, error_type, message))

    with pytest.raises(ProviderOutageError) as raised:
        sender(ses.url, max_attempts=0).send(EMAIL)

    assert raised.value.code == code and raised.value.at_once and not raised.value.maybe_sent


def test_rate_throttling_is_not_an_outage(ses: FakeSes) -> None:
    ses.answers.append((429, "TooManyRequestsException", "Maximum sending rate exceeded."))

    with pytest.raises(ThrottledError) as raised:
        sender(ses.url, max_attempts=0).send(EMAIL)

    assert not isinstance(raised.value, ProviderOutageError)


def test_refusals_and_deployment_errors_are_neither(ses: FakeSes) -> None:
    ses.answers += [(400, "MessageRejected", "Email address is not verified."), (404, "NotFoundException", "no set")]

    with pytest.raises(RejectedError):
        sender(ses.url).send(EMAIL)
    with pytest.raises(TransientError) as deployment:
        sender(ses.url).send(EMAIL)

    assert deployment.value.code == "ses_failed" and not isinstance(deployment.value, ProviderOutageError)
