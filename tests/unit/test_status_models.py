"""The status API's bodies: a message-log item shaped into MessageStatus and MessageSummary."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mailwright.constants import MESSAGE_LOG_REQUEST_SK, Keys
from mailwright.ports import with_feedback
from mailwright.status_models import MessageStatus, MessageSummary

T0 = 1_700_000_000.0
RID = "ab" * 16


def _item(**extra: Any) -> dict[str, Any]:
    """A request item as `MessageLog.get` returns it."""
    return with_feedback(_stored(**extra))


def _stored(**extra: Any) -> dict[str, Any]:
    """A request item as the messages table holds it: evaluations and events in its history."""
    return {
        Keys.MESSAGES_PK: RID,
        Keys.MESSAGES_SK: MESSAGE_LOG_REQUEST_SK,
        "status": "sent",
        "lane": "critical",
        "template_id": "password_reset",
        "category": "security",
        Keys.SES_MESSAGE_ID: "0100018c-ses",
        Keys.RECIPIENT_HASH: "k1-" + "0" * 64,
        "recipient_masked": "j***@example.com",
        "metadata": {"tenant": "acme"},
        "received_at": T0 - 2,
        Keys.COMPLETED_AT: T0,
        Keys.TTL: int(T0) + 86400,
        "attempts": 2,
        "evaluation": 2,
        "event_keys": ["0123456789abcdef"],
        "history": [
            {"status": "rejected", "at": T0 - 100, "evaluation": 1, "reason_code": "unknown_template"},
            {"status": "sent", "at": T0, "evaluation": 2},
            {
                "event": "Bounce",
                "status": "bounced",
                "rank": 3,
                "at": T0 + 9,
                "recipients": ["j***@example.com"],
                "detail": {"bounce_type": "Permanent"},
            },
            {"event": "Delivery", "status": "delivered", "rank": 2, "at": T0 + 4},
        ],
        **extra,
    }


def test_a_message_log_item_becomes_the_status_with_its_history_by_time() -> None:
    status = MessageStatus.from_item(_item())

    assert (status.request_id, status.status, status.delivery) == (RID, "sent", "bounced")
    assert (status.provider, status.provider_message_id) == ("ses", "0100018c-ses")
    assert (status.evaluation, status.attempts) == (2, 2)
    assert status.completed_at == datetime.fromtimestamp(T0, UTC)
    assert status.expires_at == datetime.fromtimestamp(int(T0) + 86400, UTC)
    assert [(e.type, e.status, e.evaluation, e.reason_code) for e in status.history] == [
        (None, "rejected", 1, "unknown_template"),
        (None, "sent", 2, None),
        ("Delivery", "delivered", None, None),
        ("Bounce", "bounced", None, None),
    ]
    assert status.history[-1].detail == {"bounce_type": "Permanent"}
    assert status.history[-1].recipients == ["j***@example.com"]


def test_the_answer_keeps_internal_fields_and_hashes_out() -> None:
    body = json.loads(MessageStatus.from_item(_item()).model_dump_json())

    assert Keys.RECIPIENT_HASH not in body
    assert "event_keys" not in body
    assert "rank" not in json.dumps(body["history"])
    # Times are ISO 8601 in UTC.
    assert body["completed_at"].endswith("Z")


def test_a_request_not_sent_has_no_provider_and_says_why() -> None:
    item = _stored(status="suppressed", reason_code="suppressed", reason="address is suppressed (BOUNCE)")
    del item[Keys.SES_MESSAGE_ID]
    item["history"] = [{"status": "suppressed", "at": T0, "evaluation": 1, "reason_code": "suppressed"}]

    status = MessageStatus.from_item(with_feedback(item))

    assert (status.provider, status.provider_message_id, status.delivery) == (None, None, None)
    assert (status.reason_code, status.reason) == ("suppressed", "address is suppressed (BOUNCE)")


def test_a_secondary_provider_named_on_the_item_is_reported() -> None:
    status = MessageStatus.from_item(_item(provider="sendgrid", provider_message_id="sg-1"))

    assert (status.provider, status.provider_message_id) == ("sendgrid", "sg-1")


def test_a_summary_holds_what_picks_a_request_out() -> None:
    summary = MessageSummary.from_item(_item(producer="shop"))

    assert summary.model_dump(mode="json") == {
        "request_id": RID,
        "status": "sent",
        "reason_code": None,
        "delivery": "bounced",
        "producer": "shop",
        "lane": "critical",
        "template_id": "password_reset",
        "category": "security",
        "recipient_masked": "j***@example.com",
        "metadata": {"tenant": "acme"},
        "evaluation": 2,
        "received_at": "2023-11-14T22:13:18Z",
        "completed_at": "2023-11-14T22:13:20Z",
    }
