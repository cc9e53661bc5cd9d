"""Outcome events: derived from message-log changes, one per new history entry, and the committed schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mailwright.constants import DEFAULT_OUTCOME_EVENTS, OUTCOME_EVENT_SOURCE
from mailwright.outcome_events import (
    DETAIL_TYPES,
    RESERVED_DETAIL_TYPES,
    STATUS_BY_DETAIL_TYPE,
    OutcomeEvent,
    PublishedEvent,
    detail_json_schema,
    event_id,
    events_from_change,
    iso_time,
    schema_files,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "events"
AT = 1_767_225_600.123  # 2026-01-01T00:00:00.123Z


def sent_item(**overrides: Any) -> dict[str, Any]:
    """A request item as the send worker writes it (plain values, as the stream's images decode)."""
    item: dict[str, Any] = {
        "pk": "req-1",
        "sk": "request",
        "status": "sent",
        "lane": "critical",
        "evaluation": 1,
        "completed_at": AT,
        "ses_message_id": "0100-ses-id",
        "template_id": "password_reset",
        "template_version": "v3",
        "category": "security",
        "recipient_masked": "j***@example.com",
        "recipient_hash": "hash-never-published",
        "user_id": "user-key-never-published",
        "metadata": {"tenant": "acme", "order": "o-42"},
        "history": [{"status": "sent", "at": AT, "evaluation": 1}],
    }
    item.update(overrides)
    return item


def with_entry(item: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    return {**item, "history": [*item["history"], entry]}


def test_a_recorded_outcome_announces_one_event_with_the_request_fields() -> None:
    # Given a new request item (the stream's INSERT: no old image)
    [event] = events_from_change(None, sent_item())
    # Then one EmailSent carrying what a producer matches and shows, and nothing that identifies the recipient
    assert event.detail_type == "EmailSent"
    detail = event.detail
    assert detail.request_id == "req-1"
    assert detail.status == "sent"
    assert detail.lane == "critical"
    assert detail.template_id == "password_reset"
    assert detail.category == "security"
    assert detail.metadata == {"tenant": "acme", "order": "o-42"}
    assert detail.ses_message_id == "0100-ses-id"
    assert detail.provider == "ses"
    assert detail.recipient_masked == "j***@example.com"
    assert detail.evaluation == 1
    assert detail.occurred_at == "2026-01-01T00:00:00.123Z"
    dumped = detail.model_dump_json()
    assert "hash-never-published" not in dumped and "user-key-never-published" not in dumped


def test_an_appended_ses_event_announces_only_itself() -> None:
    before = sent_item()
    delivery = {"event": "Delivery", "status": "delivered", "at": AT + 2, "rank": 2, "detail": {"smtp_response": "250"}}
    events = events_from_change(before, with_entry(before, delivery))
    assert [e.detail_type for e in events] == ["EmailDelivered"]
    assert events[0].detail.status == "delivered"
    assert events[0].detail.details == {"smtp_response": "250"}
    assert events[0].detail.template_id == "password_reset"


def test_the_event_id_is_stable_for_the_same_entry_and_differs_between_entries() -> None:
    item = sent_item()
    first = events_from_change(None, item)[0].detail.event_id
    again = events_from_change(None, json.loads(json.dumps(item)))[0].detail.event_id
    assert first == again == event_id("req-1", item["history"][0])
    other = events_from_change(None, sent_item(pk="req-2"))[0].detail.event_id
    assert other != first


@pytest.mark.parametrize(
    ("entry", "detail_type", "expected"),
    [
        (
            {
                "event": "Bounce",
                "status": "bounced",
                "detail": {"bounce_type": "Permanent", "bounce_sub_type": "General"},
            },
            "EmailBounced",
            {"bounce_type": "Permanent", "bounce_sub_type": "General", "reason_code": "bounce_permanent"},
        ),
        (
            {"event": "Complaint", "status": "complained", "detail": {"feedback_type": "abuse"}},
            "EmailComplained",
            {"reason_code": "complaint", "reason": "complaint (abuse)"},
        ),
        (
            {"event": "DeliveryDelay", "status": "delayed", "detail": {"delay_type": "MailboxFull"}},
            "EmailDeliveryDelayed",
            {"reason_code": "delivery_delay", "reason": "delivery delayed (MailboxFull)"},
        ),
        ({"event": "Open", "status": "opened"}, "EmailOpened", {"status": "opened"}),
        ({"event": "Click", "status": "clicked", "detail": {"link": "https://x.io/a"}}, "EmailClicked", {}),
        ({"event": "Reject", "status": "rejected", "detail": {"reason": "Bad content"}}, "EmailRejected", {}),
        ({"event": "Rendering Failure", "status": "rendering_failed"}, "EmailRejected", {}),
    ],
)
def test_each_ses_event_type_maps_to_its_detail_type(
    entry: dict[str, Any], detail_type: str, expected: dict[str, Any]
) -> None:
    before = sent_item()
    [event] = events_from_change(before, with_entry(before, {"at": AT + 5, **entry}))
    assert event.detail_type == detail_type
    assert event.detail.status == STATUS_BY_DETAIL_TYPE[detail_type]
    for name, value in expected.items():
        assert getattr(event.detail, name) == value


@pytest.mark.parametrize("ses_type", ["Send", "Subscription", "SomethingNew"])
def test_events_that_change_nothing_known_announce_nothing(ses_type: str) -> None:
    before = sent_item()
    assert events_from_change(before, with_entry(before, {"event": ses_type, "status": "x", "at": AT})) == []


@pytest.mark.parametrize(
    ("status", "detail_type"),
    [
        ("suppressed", "EmailSuppressed"),
        ("opted_out", "EmailOptedOut"),
        ("rate_limited", "EmailRateLimited"),
        ("rejected", "EmailRejected"),
    ],
)
def test_each_terminal_status_maps_to_its_detail_type(status: str, detail_type: str) -> None:
    item = sent_item(
        status=status,
        reason_code="why_code",
        reason="why in words",
        history=[{"status": status, "at": AT, "evaluation": 1, "reason_code": "why_code"}],
    )
    item.pop("ses_message_id")
    [event] = events_from_change(None, item)
    assert event.detail_type == detail_type
    assert (event.detail.reason_code, event.detail.reason) == ("why_code", "why in words")
    assert event.detail.ses_message_id is None and event.detail.provider is None


def test_a_request_evaluated_again_announces_the_new_evaluation_only() -> None:
    rejected = sent_item(
        status="rejected",
        reason_code="unknown_template",
        history=[{"status": "rejected", "at": AT, "evaluation": 1, "reason_code": "unknown_template"}],
    )
    again = {
        **rejected,
        "status": "sent",
        "evaluation": 2,
        "history": [*rejected["history"], {"status": "sent", "at": AT + 60, "evaluation": 2}],
    }
    [event] = events_from_change(rejected, again)
    assert (event.detail_type, event.detail.evaluation) == ("EmailSent", 2)


def test_a_dead_lettered_request_announces_email_failed() -> None:
    failure = {
        "status": "failed",
        "at": AT,
        "reason_code": "dead_lettered",
        "reason": "gave up in the bulk lane",
        "dead_letter": "0123456789abcdef",
    }
    item = {"pk": "req-9", "sk": "request", "status": "failed", "lane": "bulk", "history": [failure]}
    [event] = events_from_change(None, item)
    assert event.detail_type == "EmailFailed"
    assert (event.detail.status, event.detail.reason_code) == ("failed", "dead_lettered")
    assert event.detail.reason == "gave up in the bulk lane"


def test_an_outcome_written_over_a_failure_announces_the_outcome() -> None:
    # A redriven request that succeeds: the worker's Put replaces the failed item (its history too).
    failed = {
        "pk": "req-1",
        "sk": "request",
        "status": "failed",
        "history": [{"status": "failed", "at": AT - 100, "reason_code": "dead_lettered", "dead_letter": "k"}],
    }
    assert [e.detail_type for e in events_from_change(failed, sent_item())] == ["EmailSent"]


def test_a_write_that_adds_no_history_announces_nothing() -> None:
    item = sent_item()
    assert events_from_change(item, {**item, "recipient_hash": "rehashed"}) == []


def test_an_item_that_is_not_a_request_announces_nothing() -> None:
    assert events_from_change(None, {"sk": "request", "history": [{"status": "sent", "at": AT}]}) == []


def test_the_put_events_entry_names_the_bus_source_and_time() -> None:
    [event] = events_from_change(None, sent_item())
    entry = event.entry("Mailwright")
    assert entry["Source"] == OUTCOME_EVENT_SOURCE
    assert (entry["DetailType"], entry["EventBusName"]) == ("EmailSent", "Mailwright")
    assert json.loads(entry["Detail"])["event_id"] == event.detail.event_id
    assert entry["Time"].timestamp() == pytest.approx(AT, abs=0.001)


def test_the_default_publishes_what_went_wrong_and_no_per_email_type() -> None:
    assert set(DEFAULT_OUTCOME_EVENTS) <= set(DETAIL_TYPES)
    assert not {"EmailSent", "EmailDelivered", "EmailOpened", "EmailClicked"} & set(DEFAULT_OUTCOME_EVENTS)
    assert "EmailFailed" in DEFAULT_OUTCOME_EVENTS and "EmailBounced" in DEFAULT_OUTCOME_EVENTS


def test_iso_time_is_utc_with_milliseconds() -> None:
    assert iso_time(0) == "1970-01-01T00:00:00.000Z"


# -- schemas ------------------------------------------------------------------


def test_committed_schemas_match_the_model() -> None:
    committed = {path.name: path.read_text(encoding="utf-8") for path in SCHEMAS.glob("*.schema.json")}
    assert committed == schema_files(), "schemas/events/ is stale: run `make schema`"


def test_there_is_one_schema_per_detail_type() -> None:
    assert sorted(schema_files()) == sorted(f"{t}.schema.json" for t in DETAIL_TYPES)
    assert set(DETAIL_TYPES) > RESERVED_DETAIL_TYPES


def test_every_derived_event_validates_against_its_detail_types_schema() -> None:
    before = sent_item()
    changes = [
        (None, sent_item()),
        (
            before,
            with_entry(
                before, {"event": "Bounce", "status": "bounced", "at": AT, "detail": {"bounce_type": "Transient"}}
            ),
        ),
        (before, with_entry(before, {"event": "Open", "status": "opened", "at": AT})),
    ]
    events: list[PublishedEvent] = [e for old, new in changes for e in events_from_change(old, new)]
    assert len(events) == 3
    for event in events:
        schema = detail_json_schema(event.detail_type)
        jsonschema.validate(json.loads(event.detail.model_dump_json()), schema)


def test_a_schema_rejects_the_wrong_status_and_an_unknown_field() -> None:
    detail = json.loads(events_from_change(None, sent_item())[0].detail.model_dump_json())
    schema = detail_json_schema("EmailSent")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**detail, "status": "bounced"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**detail, "recipient_email": "jane@example.com"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**detail, "status": "bounced"}, detail_json_schema("EmailBounced"))


def test_the_model_forbids_unknown_fields() -> None:
    detail = json.loads(events_from_change(None, sent_item())[0].detail.model_dump_json())
    with pytest.raises(ValueError, match="recipient_email"):
        OutcomeEvent(**{**detail, "recipient_email": "jane@example.com"})
