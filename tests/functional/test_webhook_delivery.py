"""Webhook attempts over real HTTP on loopback: signatures, and endpoints that misbehave cost one attempt each."""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import pytest

from mailwright.event_settings import RetryPolicy, WebhookEndpoint
from mailwright.webhooks.service import Delivery, WebhookService
from mailwright.webhooks.transport import HttpTransport
from mailwright_tools.fakes import FakeDeliveryArchive, FakeEndpointStates, FakeRetryScheduler, StaticSigningKeys
from tests.webhook_receiver import Receiver, free_port

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# Short timeouts, so a hanging endpoint costs the test half a second.
POLICY = RetryPolicy(connect_timeout_seconds=0.5, read_timeout_seconds=0.5)


def event(event_id: str, detail_type: str = "EmailBounced") -> str:
    detail = {"event_id": event_id, "request_id": "r", "status": "bounced", "occurred_at": "2026-01-01T00:00:00.000Z"}
    return json.dumps({"id": "eb", "detail-type": detail_type, "source": "mailwright", "detail": detail})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(secret=SECRET).start()
    yield found
    found.stop()


def service(
    *endpoints: WebhookEndpoint,
    resolver: Any = socket.getaddrinfo,
    allow_loopback: bool = True,
    executor: Executor | None = None,
) -> Any:
    states = FakeEndpointStates()
    archive = FakeDeliveryArchive()
    retries: dict[str, FakeRetryScheduler] = {}
    svc = WebhookService(
        endpoints={e.queue_arn: e for e in endpoints},
        states=states,
        archive=archive,
        keys=StaticSigningKeys({e.secret_arn: [SECRET] for e in endpoints}),
        transport=HttpTransport(allow_loopback=allow_loopback, resolver=resolver),
        retries=lambda url: retries.setdefault(url, FakeRetryScheduler()),
        policy=POLICY,
        executor=executor,
        rng=random.Random(3),
    )
    return svc, states, archive


def endpoint(name: str, url: str) -> WebhookEndpoint:
    return WebhookEndpoint(name=name, url=url, queue_arn=f"arn:{name}", queue_url=f"q:{name}", secret_arn=f"s:{name}")


def delivery(end: WebhookEndpoint, event_id: str) -> Delivery:
    return Delivery(
        message_id=event_id, receipt_handle=f"rh-{event_id}", body=event(event_id), source_arn=end.queue_arn,
        first_sent_at=time.time(),
    )  # fmt: skip


def test_a_delivery_arrives_signed_and_verifies_with_the_reference_library(receiver: Receiver) -> None:
    end = endpoint("shop", receiver.url("/hook"))
    svc, _, _ = service(end)
    report = svc.process([delivery(end, "a" * 32)])
    assert report.delivered == {"shop": 1}
    [got] = receiver.received
    assert got.verified is True
    assert got.headers["webhook-id"] == "a" * 32
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 5
    assert got.payload["type"] == "EmailBounced" and got.payload["data"]["request_id"] == "r"
    assert got.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [(500, "HTTP 500"), ("redirect", "HTTP 302"), ("garbage", "bad_response"), ("hang", "timeout")],
)
def test_a_misbehaving_endpoint_costs_one_attempt_and_is_retried(
    receiver: Receiver, behaviour: Any, error: str
) -> None:
    receiver.behaviour["/bad"] = behaviour
    end = endpoint("shop", receiver.url("/bad"))
    svc, states, archive = service(end)
    started = time.monotonic()
    report = svc.process([delivery(end, "b" * 32)])
    # One POST, bounded by the timeouts, and the delivery waits on its queue for the next attempt
    assert len(receiver.received) == 1 and receiver.received[0].path == "/bad"
    assert time.monotonic() - started < 3
    assert report.failed == ["b" * 32] and archive.records == {}
    assert states.get("shop").last_error.startswith(error)


def test_a_refused_connection_costs_one_attempt() -> None:
    end = endpoint("down", f"http://127.0.0.1:{free_port()}/hook")
    svc, states, _ = service(end)
    report = svc.process([delivery(end, "c" * 32)])
    assert report.failed == ["c" * 32]
    assert states.get("down").last_error.startswith("connection_refused")


def test_a_hanging_endpoint_does_not_hold_up_another(receiver: Receiver) -> None:
    receiver.behaviour["/hang"] = "hang"
    slow, fine = endpoint("slow", receiver.url("/hang")), endpoint("fine", receiver.url("/ok"))
    with ThreadPoolExecutor(2) as pool:  # as the sender runs a batch: attempts in parallel
        svc, _, _ = service(slow, fine, executor=pool)
        started = time.monotonic()
        report = svc.process([delivery(slow, "d" * 32), delivery(fine, "e" * 32)])
    assert report.delivered == {"fine": 1} and report.failed == ["d" * 32]
    assert time.monotonic() - started < 3


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    receiver.behaviour["/moved"] = "redirect"
    end = endpoint("shop", receiver.url("/moved"))
    svc, _, _ = service(end)
    svc.process([delivery(end, "f" * 32)])
    assert [r.path for r in receiver.received] == ["/moved"]


def test_a_host_that_resolves_to_a_private_address_is_never_called(receiver: Receiver) -> None:
    # A deployed stack's guard: https only, and the name resolves to loopback (DNS rebinding, say).
    def rebinding(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", receiver.port))]

    end = endpoint("shop", f"https://hooks.example.com:{receiver.port}/hook")
    svc, _, archive = service(end, resolver=rebinding, allow_loopback=False)
    report = svc.process([delivery(end, "9" * 32)])
    assert receiver.received == []
    assert report.failed == []  # not retried: archived, replayable once the endpoint is fixed
    assert archive.records[("shop", "9" * 32)]["reason"] == "refused"


def test_the_connection_goes_to_the_checked_address_with_the_host_name(receiver: Receiver) -> None:
    def pinned(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    end = endpoint("shop", f"http://hooks.localhost:{receiver.port}/hook")
    svc, _, _ = service(end, resolver=pinned)
    assert svc.process([delivery(end, "7" * 32)]).delivered == {"shop": 1}
    assert receiver.received[0].headers["Host"] == f"hooks.localhost:{receiver.port}"
