"""The webhook sender's policy: what each answer does, retries with backoff, suspension, the archive."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from mailwright.event_settings import RetryPolicy, WebhookEndpoint
from mailwright.webhooks.errors import TransportError
from mailwright.webhooks.service import (
    WEBHOOK_TEST_TYPE,
    Delivery,
    WebhookService,
    backoff_seconds,
    classify,
    parse_message,
    retry_after_seconds,
)
from mailwright_tools.fakes import (
    FakeClock,
    FakeDeliveryArchive,
    FakeEndpointStates,
    FakeRetryScheduler,
    FakeTransport,
    StaticSigningKeys,
)

SHOP = WebhookEndpoint(
    name="shop", url="shop.example.com", queue_arn="arn:shop", queue_url="https://sqs/shop", secret_arn="arn:s:shop"
)
CRM = WebhookEndpoint(
    name="crm", url="crm.example.com", queue_arn="arn:crm", queue_url="https://sqs/crm", secret_arn="arn:s:crm"
)
POLICY = RetryPolicy()


class World:
    def __init__(self, answers: dict[str, list[Any]] | None = None, *, forbidden: tuple[str, ...] = ()) -> None:
        self.clock = FakeClock(start=time.time())
        self.states = FakeEndpointStates()
        self.archive = FakeDeliveryArchive()
        self.keys = StaticSigningKeys()
        self.transport = FakeTransport(answers, forbidden=forbidden)
        self.retries: dict[str, FakeRetryScheduler] = {}
        self.service = WebhookService(
            endpoints={SHOP.queue_arn: SHOP, CRM.queue_arn: CRM},
            states=self.states,
            archive=self.archive,
            keys=self.keys,
            transport=self.transport,
            retries=lambda url: self.retries.setdefault(url, FakeRetryScheduler()),
            policy=POLICY,
            clock=self.clock,
            rng=random.Random(7),
        )

    def delay_of(self, queue_url: str, receipt: str) -> int | None:
        scheduler = self.retries.get(queue_url)
        return scheduler.delay_for(receipt) if scheduler else None


def event(event_id: str = "a" * 32, detail_type: str = "EmailBounced") -> str:
    detail = {"event_id": event_id, "request_id": "r-1", "status": "bounced", "occurred_at": "2026-01-01T00:00:00.000Z"}
    return json.dumps(
        {"version": "0", "id": "eb-1", "detail-type": detail_type, "source": "mailwright", "detail": detail}
    )


def delivery(
    body: str | None = None,
    *,
    endpoint: WebhookEndpoint = SHOP,
    attempt: int = 1,
    first: float | None = None,
    mid: str = "m-1",
) -> Delivery:
    return Delivery(
        message_id=mid,
        receipt_handle=f"rh-{mid}",
        body=body or event(),
        source_arn=endpoint.queue_arn,
        receive_count=attempt,
        first_sent_at=first,
    )


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "delivered"), (204, "delivered"), (301, "retry"), (408, "retry"), (429, "retry"), (500, "retry"),
     (503, "retry"), (400, "rejected"), (401, "rejected"), (404, "rejected"), (410, "gone")],
)  # fmt: skip
def test_statuses_are_classified(status: int, outcome: str) -> None:
    assert classify(status) == outcome


def test_a_delivery_posts_the_signed_standard_webhooks_payload() -> None:
    world = World()
    report = world.service.process([delivery()])
    assert report.failed == [] and report.delivered == {"shop": 1}
    [post] = world.transport.posts
    secret = world.keys.secrets["arn:s:shop"][0]
    payload = Webhook(secret).verify(post.body, post.headers)
    assert payload["type"] == "EmailBounced"
    assert payload["timestamp"] == "2026-01-01T00:00:00.000Z"
    assert payload["data"]["request_id"] == "r-1"
    assert post.headers["webhook-id"] == "a" * 32


def test_a_failing_answer_is_retried_with_backoff_and_the_failure_counted() -> None:
    world = World({"shop.example.com": [503]})
    report = world.service.process([delivery(first=world.clock())])
    assert report.failed == ["m-1"]
    delay = world.delay_of("https://sqs/shop", "rh-m-1")
    assert delay is not None and 0.8 * POLICY.base_seconds <= delay <= 1.2 * POLICY.base_seconds
    state = world.states.get("shop")
    assert state.failures == 1 and state.last_error == "HTTP 503"
    assert world.archive.records == {}


@pytest.mark.parametrize(
    "error", [TransportError("timeout", "read timed out"), TransportError("connection_refused", "refused"),
              TransportError("bad_response", "BadStatusLine: garbage")],
)  # fmt: skip
def test_timeouts_refusals_and_garbage_cost_one_attempt_each(error: TransportError) -> None:
    world = World({"shop.example.com": [error]})
    report = world.service.process([delivery(first=world.clock())])
    assert report.failed == ["m-1"] and report.failed_attempts == {"shop": 1}
    assert world.states.get("shop").last_error.startswith(error.code)


def test_a_redirect_is_not_followed_and_is_retried() -> None:
    world = World({"shop.example.com": [302]})
    report = world.service.process([delivery(first=world.clock())])
    assert report.failed == ["m-1"] and len(world.transport.posts) == 1
    assert "redirects are not followed" in world.states.get("shop").last_error


def test_retry_after_is_honoured_within_the_cap() -> None:
    world = World({"shop.example.com": [429]})
    world.transport.headers_by_status[429] = {"retry-after": "600"}
    world.service.process([delivery(first=world.clock())])
    assert world.delay_of("https://sqs/shop", "rh-m-1") == 600


def test_backoff_grows_exponentially_up_to_the_sqs_maximum() -> None:
    policy = RetryPolicy(jitter=0.0)
    rng = random.Random(1)
    delays = [backoff_seconds(n, policy, rng) for n in range(1, 16)]
    assert delays[:4] == [30, 60, 120, 240]
    assert max(delays) == 43200 and delays == sorted(delays)
    # Attempts keep coming for at least the 24-hour window before a delivery is given up.
    assert sum(delays[:12]) >= 86400


def test_an_other_4xx_is_not_retried_and_the_delivery_is_archived() -> None:
    world = World({"shop.example.com": [422]})
    report = world.service.process([delivery()])
    assert report.failed == []
    record = world.archive.records[("shop", "a" * 32)]
    assert record["reason"] == "rejected" and record["error"] == "HTTP 422"
    assert json.loads(record["body"])["detail"]["request_id"] == "r-1"  # replayable as it was queued
    assert not world.states.get("shop").suspended


def test_410_gone_suspends_the_endpoint_and_keeps_the_delivery() -> None:
    world = World({"shop.example.com": [410]})
    report = world.service.process([delivery(mid="m-1")])
    assert report.suspensions == ["shop"] and report.suspended == {"shop": True}
    assert world.states.get("shop").suspended
    assert world.archive.records[("shop", "a" * 32)]["reason"] == "gone"
    # Later deliveries are archived without an attempt.
    world.service.process([delivery(event("b" * 32), mid="m-2")])
    assert len(world.transport.posts) == 1
    assert world.archive.records[("shop", "b" * 32)]["reason"] == "suspended"


def test_a_delivery_past_its_retry_window_is_archived() -> None:
    world = World({"shop.example.com": [500]})
    first = world.clock() - POLICY.window_seconds - 1
    report = world.service.process([delivery(attempt=13, first=first)])
    assert report.failed == []
    assert world.archive.records[("shop", "a" * 32)]["reason"] == "retries_exhausted"


def test_the_last_retry_falls_at_the_end_of_the_window() -> None:
    world = World({"shop.example.com": [500]})
    first = world.clock() - POLICY.window_seconds + 100
    world.service.process([delivery(attempt=12, first=first)])
    assert world.delay_of("https://sqs/shop", "rh-m-1") == 100


def test_an_endpoint_failing_for_the_whole_suspension_window_is_suspended() -> None:
    world = World({"shop.example.com": [500]})
    world.service.process([delivery(mid="m-1", first=world.clock())])
    world.clock.advance(POLICY.suspend_after_seconds)
    report = world.service.process([delivery(event("c" * 32), mid="m-2", first=world.clock())])
    assert report.suspensions == ["shop"]
    assert "no delivery succeeded for 24 h" in world.states.get("shop").suspended_reason
    assert world.archive.records[("shop", "c" * 32)]["reason"] == "suspended"


def test_a_success_clears_a_failing_endpoint() -> None:
    world = World({"shop.example.com": [500, 200]})
    world.service.process([delivery(mid="m-1", first=world.clock())])
    assert world.states.get("shop").failing
    world.service.process([delivery(mid="m-1", attempt=2, first=world.clock())])
    assert not world.states.get("shop").failing


def test_a_success_on_a_healthy_endpoint_writes_nothing() -> None:
    world = World()
    world.service.process([delivery()])
    assert world.states.calls["record_success"] == 0 and world.states.calls["record_failure"] == 0


def test_a_url_that_resolves_to_a_private_address_is_not_called() -> None:
    world = World(forbidden=("shop.example.com",))
    report = world.service.process([delivery()])
    assert world.transport.posts == [] and report.failed == []
    assert world.archive.records[("shop", "a" * 32)]["reason"] == "refused"


def test_one_endpoint_failing_does_not_touch_another() -> None:
    world = World({"shop.example.com": [TransportError("timeout", "hung")], "crm.example.com": [200]})
    report = world.service.process([delivery(mid="m-1"), delivery(endpoint=CRM, mid="m-2")])
    assert report.failed == ["m-1"] and report.delivered == {"crm": 1}
    assert not world.states.get("crm").failing


def test_an_unreadable_body_is_archived_not_retried() -> None:
    world = World()
    report = world.service.process([delivery("not json")])
    assert report.failed == [] and world.transport.posts == []
    assert world.archive.records[("shop", "m-1")]["reason"] == "unreadable"


def test_when_the_archive_fails_the_delivery_stays_queued() -> None:
    world = World({"shop.example.com": [404]})
    world.archive.failures["put"] = ConnectionError("s3 down")
    report = world.service.process([delivery()])
    assert report.failed == ["m-1"]


def test_a_test_delivery_records_its_result_and_is_never_retried() -> None:
    world = World({"shop.example.com": [500]})
    report = world.service.process([delivery(event("d" * 32, WEBHOOK_TEST_TYPE))])
    assert report.failed == [] and world.archive.records == {}
    assert world.states.tests["shop"]["result"] == "retry: HTTP 500"
    assert world.states.tests["shop"]["webhook_id"] == "d" * 32


def test_parse_message_needs_an_eventbridge_event() -> None:
    assert parse_message(event()) is not None
    assert parse_message("[]") is None
    assert parse_message(json.dumps({"detail-type": "X", "detail": "text"})) is None
    # An event without an event_id falls back to EventBridge's id.
    message = parse_message(json.dumps({"id": "eb-9", "detail-type": "X", "detail": {}}))
    assert message is not None and message.webhook_id == "eb-9"


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after_seconds("120", now=0) == 120
    assert retry_after_seconds("Thu, 01 Jan 1970 00:01:40 GMT", now=0) == 100
    assert retry_after_seconds("soon", now=0) is None
    assert retry_after_seconds(None, now=0) is None
