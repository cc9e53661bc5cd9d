"""The ingest bridge: Kafka and RabbitMQ events as Lambda delivers them, validated and routed as the SDK does."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from typing import Any

import pytest

from mailwright.constants import LANES
from mailwright.errors import IngestDeliveryError, IngestEventError, TransientError
from mailwright.handlers.bridge import handle_event
from mailwright.handlers.bridge import metrics as bridge_metrics
from mailwright.ingest_bridge import (
    MAX_BODY_BYTES,
    BridgeService,
    TemplatePriorities,
    ingest_records,
    kafka_records,
    rabbitmq_records,
)
from mailwright.request import EmailRequest
from mailwright.sdk import Publisher, template_priorities
from mailwright_tools.events import kafka_event, rabbitmq_event
from mailwright_tools.fakes import FakeLanePublisher, FakeMessageLog, FakeTemplateSource, queue_record
from tests.events import load_event
from tests.unit.conftest import REPO, FakeServiceFactory

WELCOME = {
    "recipient_email": "jane@example.com",
    "template_id": "welcome_email",
    "template_data": {"user_name": "Jane", "login_link": "https://example.com/login"},
}
RESET = {
    "recipient_email": "bob@example.com",
    "template_id": "password_reset",
    "template_data": {"user_name": "Bob", "reset_link": "https://example.com/r", "expires_in_minutes": 30},
}
NEWSLETTER = {
    "recipient_email": "ann@example.com",
    "template_id": "newsletter",
    "template_data": {"user_name": "Ann", "headline": "Hi", "articles": []},
}


def encoded(request: dict[str, Any]) -> bytes:
    return json.dumps(request).encode("utf-8")


class Bridge:
    """A BridgeService on fakes, and what it published and logged."""

    def __init__(self) -> None:
        self.templates = FakeTemplateSource.from_directory()
        self.publisher = FakeLanePublisher()
        self.log = FakeMessageLog()
        self.service = BridgeService(
            publisher=self.publisher,
            message_log=self.log,
            template_priority=TemplatePriorities(self.templates),
            clock=lambda: 1_700_000_100.0,
        )

    def forward(self, event: dict[str, Any]) -> Any:
        source, records = ingest_records(event)
        return self.service.forward(source, records)


@pytest.fixture
def bridge() -> Bridge:
    return Bridge()


# -- the documented event shapes ------------------------------------------------


@pytest.mark.parametrize("name", ["kafka-msk", "kafka-self-managed"])
def test_documented_kafka_events_are_read_record_by_record(name: str) -> None:
    source, records = ingest_records(load_event(name))

    assert source == "kafka"
    [record] = records
    assert record.body == b"Hello, this is a test."
    assert record.position == "mytopic-0@15"
    assert record.headers == {"headerkey": "headerValue"}
    assert record.received_at == pytest.approx(1545084650.987)


def test_documented_rabbitmq_event_is_read_with_its_headers_and_time() -> None:
    source, records = ingest_records(load_event("rabbitmq"))

    assert source == "rabbitmq"
    [record] = records
    assert json.loads(record.body or b"") == {"timeout": 0, "data": "CZrmf0Gw8Ov4bqLQxD4E"}
    assert record.position == "pizzaQueue::/#0"
    # String headers arrive as {"bytes": [...]}, numbers as numbers.
    assert record.headers == {"header1": "value1", "header2": "value2", "numberinheader": "10"}
    assert record.received_at == 2021.0  # "Jan 1, 1970, 12:33:41 AM"


def test_an_event_of_another_source_is_refused_whole() -> None:
    with pytest.raises(IngestEventError, match="neither Kafka nor RabbitMQ"):
        ingest_records({"Records": [{"eventSource": "aws:sqs"}]})
    with pytest.raises(IngestEventError, match="without its records"):
        ingest_records({"eventSource": "aws:rmq"})


# -- valid records are routed as the SDK routes them -------------------------------


def test_valid_kafka_records_go_to_their_lanes_as_the_sdk_would_route_them(bridge: Bridge) -> None:
    event = kafka_event(
        [
            (encoded(WELCOME), {}),
            (encoded(RESET), {}),
            (encoded(NEWSLETTER), {}),
            (encoded({**WELCOME, "recipient_email": "x@example.com", "priority": "critical"}), {}),
        ]
    )

    report = bridge.forward(event)

    assert report.forwarded == {"standard": 1, "critical": 2, "bulk": 1}
    assert report.rejected == []
    assert [r["recipient_email"] for r in bridge.publisher.bodies("critical")] == ["bob@example.com", "x@example.com"]
    assert bridge.publisher.bodies("bulk")[0]["template_id"] == "newsletter"
    # What the worker will parse: the request itself, as the SDK publishes it.
    assert bridge.publisher.bodies("standard") == [WELCOME]


def test_routing_matches_the_producer_sdk_for_every_template_and_priority(bridge: Bridge) -> None:
    publisher = Publisher(
        queue_urls={lane: f"https://q/{lane}" for lane in LANES},
        template_priorities=template_priorities(REPO / "templates"),
        sqs_client=object(),
    )
    requests = [
        {"recipient_email": f"u{i}@example.com", "template_id": template, **({"priority": p} if p else {})}
        for i, (template, p) in enumerate(
            (t, p) for t in (*bridge.templates.template_ids, "no_such_template") for p in (None, *LANES)
        )
    ]

    bridge.forward(kafka_event([(encoded(r), {}) for r in requests]))

    routed = {body["recipient_email"]: lane for lane in LANES for body in bridge.publisher.bodies(lane)}
    expected = {r["recipient_email"]: publisher.lane_of(EmailRequest.model_validate(r)) for r in requests}
    assert routed == expected
    assert set(routed.values()) == set(LANES)


def test_templates_are_looked_up_once_per_batch(bridge: Bridge) -> None:
    bridge.forward(kafka_event([(encoded({**WELCOME, "recipient_email": f"u{i}@example.com"}), {}) for i in range(5)]))

    assert bridge.templates.calls["get"] == 1


# -- invalid records are rejected, logged and never block the batch -----------------


def test_a_mixed_batch_forwards_the_valid_and_logs_each_invalid_record_under_the_workers_id(
    bridge: Bridge, fake_service: FakeServiceFactory
) -> None:
    not_json = b"{not json"
    no_template = encoded({"recipient_email": "a@example.com"})
    bad_address = encoded({**WELCOME, "recipient_email": "not-an-address"})
    event = kafka_event([(encoded(WELCOME), {}), (not_json, {}), (no_template, {}), (bad_address, {})])

    report = bridge.forward(event)

    assert report.forwarded == {"standard": 1}
    assert [(r.reason_code, r.position) for r in report.rejected] == [
        ("invalid_json", "mailwright-requests-0@1"),
        ("invalid_request", "mailwright-requests-0@2"),
        ("invalid_address", "mailwright-requests-0@3"),
    ]
    # The worker, given the same bodies on a lane queue, records them under the same ids and reasons.
    service, world = fake_service()
    service.process([queue_record(body.decode()) for body in (not_json, no_template, bad_address)])
    for rejection in report.rejected:
        logged = bridge.log.outcome(rejection.request_id)
        assert logged is not None and logged.status == "rejected"
        worker = world.message_log.outcome(rejection.request_id)
        assert worker is not None
        assert (logged.reason_code, logged.reason) == (worker.reason_code, worker.reason)
    assert report.rejected[0].request_id == hashlib.sha256(not_json).hexdigest()[:32]


def test_base64_garbage_and_tombstones_are_rejected_without_failing_the_batch(bridge: Bridge) -> None:
    event = kafka_event([(encoded(WELCOME), {}), (None, {}), (encoded(RESET), {})])
    event["records"]["mailwright-requests-0"][2]["value"] = "%%% not base64 %%%"

    report = bridge.forward(event)

    assert report.forwarded == {"standard": 1}
    tombstone, garbage = report.rejected
    assert garbage.reason_code == tombstone.reason_code == "invalid_encoding"
    assert tombstone.reason == "the record has no value (a tombstone)"
    assert garbage.reason == "the value is not valid base64"
    assert garbage.request_id == hashlib.sha256(b"%%% not base64 %%%").hexdigest()[:32]
    assert bridge.log.outcome(garbage.request_id) is not None


def test_a_record_too_large_for_a_lane_message_is_rejected_under_its_own_id(bridge: Bridge) -> None:
    big = {**WELCOME, "template_data": {**WELCOME["template_data"], "padding": "x" * MAX_BODY_BYTES}}

    report = bridge.forward(kafka_event([(encoded(big), {})]))

    [rejection] = report.rejected
    assert rejection.reason_code == "too_large"
    assert rejection.request_id == EmailRequest.model_validate(big).request_id
    logged = bridge.log.outcome(rejection.request_id)
    assert logged is not None and logged.template_id == "welcome_email"
    assert logged.recipient_masked is not None and "jane@" not in logged.recipient_masked
    assert bridge.publisher.queues == {}


def test_kafka_headers_give_a_correlation_id_and_malformed_ones_are_skipped(bridge: Bridge) -> None:
    event = kafka_event([(b"[]", {"Correlation-Id": b"order-42", "content-type": b"application/json"})])
    record_headers = event["records"]["mailwright-requests-0"][0]["headers"]
    record_headers.extend([{"broken": [300, -1]}, {"also": "not bytes"}, "not an object", {"flag": True}])

    [record] = kafka_records(event)
    report = bridge.forward(event)

    assert record.headers == {"correlation-id": "order-42", "content-type": "application/json", "also": "not bytes"}
    assert report.rejected[0].correlation_id == "order-42"


def test_rabbitmq_messages_are_forwarded_and_rejected_alike(bridge: Bridge) -> None:
    event = rabbitmq_event(
        [
            (encoded(RESET), {"correlation_id": "c-1", "timestamp": 1_700_000_000}),
            (b"\xff\xfe not utf-8", {"headers": {"tenant": "acme", "attempt": 2}, "message_id": "m-2"}),
        ],
        queue="mailwright-requests",
        virtual_host="prod",
    )

    records = rabbitmq_records(event)
    report = bridge.forward(event)

    assert [r.position for r in records] == ["mailwright-requests::prod#0", "mailwright-requests::prod#1"]
    assert records[0].received_at == 1_700_000_000.0
    assert records[1].headers == {"tenant": "acme", "attempt": "2"}
    assert report.forwarded == {"critical": 1}
    [rejection] = report.rejected
    assert (rejection.reason_code, rejection.correlation_id) == ("invalid_json", "m-2")
    assert rejection.request_id == hashlib.sha256(b"\xff\xfe not utf-8").hexdigest()[:32]


# -- failures of the bridge itself retry the batch ---------------------------------


def test_a_lane_queue_that_keeps_refusing_fails_the_batch_after_retries_and_rejections_are_still_logged(
    bridge: Bridge,
) -> None:
    bridge.publisher.refuse(10)

    with pytest.raises(IngestDeliveryError, match="1 of 1 request"):
        bridge.forward(kafka_event([(encoded(WELCOME), {}), (b"nope", {})]))

    assert bridge.publisher.refused_sends == 4
    assert bridge.log.outcome(hashlib.sha256(b"nope").hexdigest()[:32]) is not None


def test_a_refusal_that_passes_within_the_retries_is_not_a_failure(bridge: Bridge) -> None:
    bridge.publisher.refuse(2)

    report = bridge.forward(kafka_event([(encoded(WELCOME), {})]))

    assert report.forwarded == {"standard": 1}
    assert bridge.publisher.refused_sends == 2


def test_an_unreachable_message_log_or_templates_bucket_fails_the_batch(bridge: Bridge) -> None:
    bridge.log.failures["record"] = TransientError("dynamodb_failed", "injected")
    with pytest.raises(IngestDeliveryError, match="rejections not recorded"):
        bridge.forward(kafka_event([(b"nope", {})]))

    bridge.templates.failures["get"] = TransientError("s3_failed", "injected")
    with pytest.raises(IngestDeliveryError, match="template welcome_email"):
        bridge.forward(kafka_event([(encoded(WELCOME), {})]))


def test_the_handler_answers_an_unreadable_event_without_raising_and_counts_a_batch(
    bridge: Bridge, request: pytest.FixtureRequest
) -> None:
    # handle_event counts into the handler's Powertools metrics, which only the handler's decorator flushes:
    # cleared after the test, so no later test in this process flushes them with its own.
    request.addfinalizer(bridge_metrics.clear_metrics)
    assert handle_event(bridge.service, {"eventSource": "aws:sqs"})["source"] is None

    event = copy.deepcopy(load_event("rabbitmq"))
    event["rmqMessagesByQueue"]["pizzaQueue::/"][0]["data"] = base64.b64encode(encoded(WELCOME)).decode()
    assert handle_event(bridge.service, event) == {
        "source": "rabbitmq",
        "records": 1,
        "forwarded": {"standard": 1},
        "rejected": 0,
    }
