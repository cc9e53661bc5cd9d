"""The events publisher: message-log changes in, the configured detail-types on the bus, refusals retried."""

from __future__ import annotations

from typing import Any

from mailwright.constants import DEFAULT_OUTCOME_EVENTS
from mailwright.outcome_events import DETAIL_TYPES
from mailwright.publishing import ChangeRecord, EventPublisher
from mailwright_tools.fakes import FakeEventBus

AT = 1_767_225_600.0


def item(request_id: str, status: str = "sent", *entries: dict[str, Any]) -> dict[str, Any]:
    return {
        "pk": request_id,
        "sk": "request",
        "status": status,
        "lane": "standard",
        "evaluation": 1,
        "metadata": {"tenant": "acme"},
        "history": [{"status": status, "at": AT, "evaluation": 1}, *entries],
    }


def insert(sequence: int, request_id: str, status: str = "sent") -> ChangeRecord:
    return ChangeRecord(str(sequence), None, item(request_id, status))


def test_only_configured_detail_types_go_on_the_bus() -> None:
    bus = FakeEventBus()
    publisher = EventPublisher(bus, detail_types=frozenset(DEFAULT_OUTCOME_EVENTS))
    report = publisher.process([insert(1, "a", "sent"), insert(2, "b", "suppressed"), insert(3, "c", "rejected")])
    assert bus.detail_types() == {"EmailSuppressed": 1, "EmailRejected": 1}
    assert report.not_configured == {"EmailSent": 1}
    assert report.failed == []


def test_events_go_out_ten_per_call_in_the_order_of_the_changes() -> None:
    bus = FakeEventBus()
    publisher = EventPublisher(bus, detail_types=frozenset(DETAIL_TYPES))
    report = publisher.process([insert(i, f"r{i:02}") for i in range(1, 24)])
    assert bus.calls["put"] == 3
    assert [e.detail.request_id for e in bus.events] == [f"r{i:02}" for i in range(1, 24)]
    assert report.published == {"EmailSent": 23}


def test_refused_entries_are_retried_and_published_once() -> None:
    refusals = {"r2": 1}

    def refuse(event: Any) -> str | None:
        left = refusals.get(event.detail.request_id, 0)
        if left:
            refusals[event.detail.request_id] = left - 1
            return "ThrottlingException"
        return None

    bus = FakeEventBus(refuse)
    report = EventPublisher(bus, detail_types=frozenset(DETAIL_TYPES)).process([insert(1, "r1"), insert(2, "r2")])
    assert sorted(e.detail.request_id for e in bus.events) == ["r1", "r2"]
    assert report.refused_entries == 1
    assert report.failed == []


def test_a_record_whose_event_keeps_being_refused_is_a_batch_item_failure() -> None:
    bus = FakeEventBus(lambda event: "InternalFailure" if event.detail.request_id == "r2" else None)
    report = EventPublisher(bus, detail_types=frozenset(DETAIL_TYPES)).process(
        [insert(7, "r1"), insert(8, "r2"), insert(9, "r3")]
    )
    assert report.failed == ["8"]
    assert report.partial_batch_response() == {"batchItemFailures": [{"itemIdentifier": "8"}]}
    assert report.refused_entries == 3  # three attempts


def test_a_bus_that_cannot_be_reached_fails_every_record_with_an_event() -> None:
    bus = FakeEventBus()
    bus.failures["put"] = ConnectionError("no route")
    publisher = EventPublisher(bus, detail_types=frozenset(DETAIL_TYPES))
    report = publisher.process([insert(1, "r1"), ChangeRecord("2", None, {"pk": "r2", "history": []})])
    assert report.failed == ["1"]


def test_deletions_and_writes_without_new_entries_publish_nothing() -> None:
    bus = FakeEventBus()
    before = item("r1")
    report = EventPublisher(bus, detail_types=frozenset(DETAIL_TYPES)).process(
        [ChangeRecord("1", before, None), ChangeRecord("2", before, {**before, "user_id": "x"})]
    )
    assert bus.events == [] and report.failed == [] and report.records == 2


def test_a_change_the_publisher_cannot_read_is_failed_not_skipped() -> None:
    broken = {"pk": "r1", "history": [{"status": "sent", "at": AT, "evaluation": "not a number"}]}
    report = EventPublisher(FakeEventBus(), detail_types=frozenset(DETAIL_TYPES)).process(
        [ChangeRecord("5", None, broken)]
    )
    assert report.failed == ["5"]
