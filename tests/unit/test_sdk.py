"""The producer SDK: validate everything first, publish ten at a time, retry refused entries once, say what failed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailwright.request import parse_request
from mailwright.sdk import InvalidRequestError, PartialBatchError, Publisher, send, send_batch, template_priorities
from tests.unit.conftest import REPO

QUEUES = {lane: f"https://sqs.test/{lane}" for lane in ("critical", "standard", "bulk")}
PRIORITIES = {"password_reset": "critical", "newsletter": "bulk", "welcome_email": "standard"}


def request(n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "recipient_email": f"User{n}@Example.com",
        "template_id": "welcome_email",
        "template_data": {"user_name": f"U{n}", "login_link": "https://x.test"},
        **extra,
    }


class FakeSqs:
    """SendMessageBatch that refuses the entries `refuse` picks (per call)."""

    def __init__(self, refuse: Any = None) -> None:
        self.calls: list[tuple[str, list[dict[str, Any]]]] = []
        self.refuse = refuse or (lambda call, entry: False)

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append((QueueUrl, Entries))
        call = len(self.calls)
        failed = [e for e in Entries if self.refuse(call, e)]
        return {
            "Successful": [{"Id": e["Id"]} for e in Entries if e not in failed],
            "Failed": [
                {"Id": e["Id"], "Code": "InternalError", "Message": "try again", "SenderFault": False} for e in failed
            ],
        }


class FakeEvents:
    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(i)} for i in range(len(Entries))]}


def test_ids_are_what_the_worker_logs_and_lanes_follow_priority_or_template() -> None:
    sqs = FakeSqs()
    publisher = Publisher(queue_urls=QUEUES, template_priorities=PRIORITIES, sqs_client=sqs)
    requests = [
        request(1),
        request(2, template_id="newsletter"),
        request(3, priority="critical"),
        request(4, template_id="unknown_to_the_producer"),
    ]

    ids = publisher.send_batch(requests)

    by_queue = {url: entries for url, entries in sqs.calls}
    assert [len(by_queue[QUEUES[lane]]) for lane in ("standard", "bulk", "critical")] == [2, 1, 1]
    bodies = {e["Id"]: e["MessageBody"] for entries in by_queue.values() for e in entries}
    # The id returned is the id the worker derives from the body it receives
    assert [parse_request(bodies[str(i)]).request_id for i in range(4)] == ids
    assert json.loads(bodies["0"])["recipient_email"] == "user1@example.com"


def test_an_invalid_request_is_named_and_nothing_is_published() -> None:
    sqs = FakeSqs()
    publisher = Publisher(queue_urls=QUEUES, sqs_client=sqs)

    with pytest.raises(InvalidRequestError) as caught:
        publisher.send_batch([request(1), request(2, template_dat={}), request(3, recipient_email="nope")])

    assert sqs.calls == []
    assert [index for index, _ in caught.value.problems] == [1, 2]
    assert caught.value.index == 1
    assert "template_dat: Extra inputs are not permitted" in caught.value.reason
    assert "request 2: recipient_email" in str(caught.value)


def test_a_lane_without_a_queue_is_an_invalid_request() -> None:
    publisher = Publisher(
        queue_urls={"standard": QUEUES["standard"]}, template_priorities=PRIORITIES, sqs_client=FakeSqs()
    )

    with pytest.raises(InvalidRequestError, match="request 0: no queue URL for the bulk lane"):
        publisher.send(request(template_id="newsletter"))


def test_batches_hold_ten_entries() -> None:
    sqs = FakeSqs()

    ids = Publisher(queue_url=QUEUES["standard"], sqs_client=sqs).send_batch([request(n) for n in range(23)])

    assert [len(entries) for _, entries in sqs.calls] == [10, 10, 3]
    assert len(set(ids)) == 23


def test_refused_entries_are_retried_once() -> None:
    # The first call refuses entry 1; its retry goes through
    sqs = FakeSqs(refuse=lambda call, entry: call == 1 and entry["Id"] == "1")

    ids = Publisher(queue_url=QUEUES["standard"], sqs_client=sqs).send_batch([request(n) for n in range(3)])

    assert len(ids) == 3
    assert [[e["Id"] for e in entries] for _, entries in sqs.calls] == [["0", "1", "2"], ["1"]]


def test_entries_refused_twice_are_reported_with_the_accepted_ones() -> None:
    sqs = FakeSqs(refuse=lambda call, entry: entry["Id"] in ("1", "12"))

    with pytest.raises(PartialBatchError) as caught:
        Publisher(queue_url=QUEUES["standard"], sqs_client=sqs).send_batch([request(n) for n in range(13)])

    error = caught.value
    assert [(f.index, f.code) for f in error.failed] == [(1, "InternalError"), (12, "InternalError")]
    assert len(error.request_ids) == 13
    assert len(error.accepted) == 11
    assert "2 of 13 request(s) were not accepted after a retry" in str(error)


def test_eventbridge_carries_the_lane_as_priority() -> None:
    events = FakeEvents()
    publisher = Publisher(event_bus="Mailwright", template_priorities=PRIORITIES, events_client=events)

    ids = publisher.send_batch([request(1, template_id="password_reset"), request(2)])

    (entries,) = events.calls
    assert {e["DetailType"] for e in entries} == {"EmailRequested"}
    assert {e["EventBusName"] for e in entries} == {"Mailwright"}
    details = [json.loads(e["Detail"]) for e in entries]
    assert [d["priority"] for d in details] == ["critical", "standard"]
    assert [parse_request(e["Detail"]).request_id for e in entries] == ids


def test_module_functions_take_the_target_from_arguments_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    sqs = FakeSqs()
    assert send(request(), queue_url=QUEUES["standard"], sqs_client=sqs)
    monkeypatch.setenv("MAILWRIGHT_STANDARD_QUEUE_URL", QUEUES["standard"])
    assert len(send_batch([request(1), request(2)], sqs_client=sqs)) == 2
    assert [url for url, _ in sqs.calls] == [QUEUES["standard"]] * 2
    monkeypatch.delenv("MAILWRIGHT_STANDARD_QUEUE_URL")
    with pytest.raises(ValueError, match="no mailwright target"):
        send(request(), sqs_client=sqs)


def test_one_target_only() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Publisher(queue_url="a", event_bus="b", sqs_client=FakeSqs(), events_client=FakeEvents())


def test_template_priorities_come_from_the_templates_directory() -> None:
    priorities = template_priorities(REPO / "templates")

    assert priorities["password_reset"] == "critical"
    assert priorities["newsletter"] == "bulk"
    assert priorities["order_confirmation"] == "standard"
