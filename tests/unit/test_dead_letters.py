"""Dead letters: each arrival in a DLQ recorded once (EmailFailed), and parked unchanged for redrive."""

from __future__ import annotations

import hashlib
import json

import pytest

from mailwright.dead_letters import DeadLetter, DeadLetterService
from mailwright.errors import TransientError
from mailwright.event_settings import DeadLetterQueue
from mailwright.request import parse_request
from mailwright_tools.fakes import FakeClock, FakeFailureLog, FakeParkingLot

BULK_DLQ = "arn:aws:sqs:us-east-1:123456789012:bulk-dlq"
INGEST_DLQ = "arn:aws:sqs:us-east-1:123456789012:ingest-dlq"
QUEUES = {
    BULK_DLQ: DeadLetterQueue(arn=BULK_DLQ, lane="bulk", parked_url="https://sqs/bulk-parked"),
    INGEST_DLQ: DeadLetterQueue(arn=INGEST_DLQ, lane="ingest", parked_url="https://sqs/standard-parked"),
}
PARKED_BY_LANE = {
    "critical": "https://sqs/critical-parked",
    "standard": "https://sqs/standard-parked",
    "bulk": "https://sqs/bulk-parked",
}
REQUEST = {
    "recipient_email": "jane.doe@example.com",
    "template_id": "newsletter",
    "metadata": {"tenant": "acme"},
    "idempotency_key": "news-1",
}


def service() -> tuple[DeadLetterService, FakeFailureLog, FakeParkingLot]:
    log, parking = FakeFailureLog(), FakeParkingLot()
    svc = DeadLetterService(queues=QUEUES, parked_by_lane=PARKED_BY_LANE, log=log, parking=parking, clock=FakeClock())
    return svc, log, parking


def letter(body: str, *, message_id: str = "m-1", source: str = BULK_DLQ) -> DeadLetter:
    attributes = {"trace": {"dataType": "String", "stringValue": "t-1"}}
    return DeadLetter(message_id=message_id, body=body, source_arn=source, message_attributes=attributes)


def test_a_dead_letter_is_recorded_as_failed_and_parked_unchanged() -> None:
    svc, log, parking = service()
    body = json.dumps(REQUEST)
    report = svc.process([letter(body)])
    request_id = parse_request(body).request_id
    [failure] = log.failures_by_request[request_id]
    assert (failure.lane, failure.template_id, failure.metadata) == ("bulk", "newsletter", {"tenant": "acme"})
    assert failure.recipient_masked == "j***@example.com"
    assert "jane.doe" not in failure.reason and "dlq redrive --lane bulk" in failure.reason
    assert parking.parked == [
        ("https://sqs/bulk-parked", body, {"trace": {"dataType": "String", "stringValue": "t-1"}})
    ]
    assert (report.recorded, report.parked, report.failed) == (1, 1, [])


def test_a_redelivered_dead_letter_is_not_recorded_twice() -> None:
    svc, log, _parking = service()
    body = json.dumps(REQUEST)
    svc.process([letter(body)])
    report = svc.process([letter(body)])
    assert (report.recorded, report.already_recorded) == (0, 1)
    assert sum(len(f) for f in log.failures_by_request.values()) == 1


def test_a_second_arrival_of_the_same_request_is_a_second_failure() -> None:
    svc, log, _ = service()
    body = json.dumps(REQUEST)
    svc.process([letter(body, message_id="m-1")])
    svc.process([letter(body, message_id="m-2")])  # redriven, failed again: a new message in the DLQ
    assert len(log.failures_by_request[parse_request(body).request_id]) == 2


def test_a_body_that_is_no_request_gets_the_id_the_worker_gives_it() -> None:
    svc, log, parking = service()
    body = '{"template_id": "x", "recipient_email": "not an address", "metadata": {"k": "mail jo@example.com"}}'
    svc.process([letter(body)])
    [(request_id, [failure])] = log.failures_by_request.items()
    assert request_id == hashlib.sha256(body.encode()).hexdigest()[:32]
    assert "jo@" not in failure.metadata["k"] and failure.metadata["k"].endswith("@example.com")
    assert failure.template_id == "x" and failure.recipient_masked is not None
    assert parking.parked[0][1] == body


def test_an_ingest_dead_letter_is_parked_on_the_lane_its_priority_names() -> None:
    svc, log, parking = service()
    request = {**REQUEST, "priority": "critical"}
    event = {"version": "0", "detail-type": "EmailRequested", "source": "shop", "detail": request}
    svc.process([letter(json.dumps(event), source=INGEST_DLQ)])
    [(queue_url, body, _)] = parking.parked
    assert queue_url == "https://sqs/critical-parked"
    assert json.loads(body) == request  # the request itself, as the lane queue would have received it
    [failures] = log.failures_by_request.values()
    assert failures[0].lane == "critical" and "could not be delivered" in failures[0].reason


def test_a_message_from_an_unknown_queue_or_a_failed_park_stays_in_the_dlq() -> None:
    svc, _log, parking = service()
    parking.failures["park"] = TransientError("sqs_failed", "injected")
    body = json.dumps(REQUEST)
    report = svc.process([letter(body, message_id="m-1"), letter(body, message_id="m-9", source="arn:other")])
    assert report.failed == ["m-1", "m-9"]
    # Retried once SQS answers: parked now, and the failure (recorded at the first try) is not recorded again.
    parking.failures.clear()
    report = svc.process([letter(body, message_id="m-1")])
    assert (report.recorded, report.already_recorded, report.parked) == (0, 1, 1)


@pytest.mark.parametrize("priority", [None, "bulk", "nonsense"])
def test_ingest_priorities_pick_their_lane_or_the_default(priority: str | None) -> None:
    svc, _, parking = service()
    request = dict(REQUEST) if priority is None else {**REQUEST, "priority": priority}
    svc.process([letter(json.dumps(request), source=INGEST_DLQ)])
    expected = "https://sqs/bulk-parked" if priority == "bulk" else "https://sqs/standard-parked"
    assert parking.parked[0][0] == expected
