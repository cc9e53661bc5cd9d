"""Outcome events carry the request's producer, so a rule (or a webhook's pattern) can match one producer's mail."""

from __future__ import annotations

from typing import Any

from mailwright.outcome_events import OutcomeEvent, events_from_change

AT = 1767225600.123


def item(**overrides: Any) -> dict[str, Any]:
    """A sent request item as the worker writes it."""
    return {
        "pk": "req-1",
        "sk": "request",
        "status": "sent",
        "lane": "critical",
        "evaluation": 1,
        "completed_at": AT,
        "template_id": "password_reset",
        "history": [{"status": "sent", "at": AT, "evaluation": 1}],
        **overrides,
    }


def test_the_producer_of_the_request_is_on_its_events() -> None:
    [event] = events_from_change(None, item(producer="billing"))

    assert event.detail.producer == "billing"
    assert '"producer":"billing"' in event.detail.model_dump_json()


def test_a_request_without_a_producer_has_none() -> None:
    [event] = events_from_change(None, item())

    assert event.detail.producer is None


def test_the_published_schema_names_the_producer() -> None:
    assert "producer" in OutcomeEvent.model_json_schema()["properties"]
