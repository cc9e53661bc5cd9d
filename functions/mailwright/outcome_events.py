"""Outcome events: what mailwright tells producers about their requests, on the stack's EventBridge bus.

Every event has `source` `mailwright`, a detail-type from `DETAIL_TYPES` and
one `OutcomeEvent` as its `detail`; the JSON Schemas under `schemas/events/`
are generated from that model (`python -m mailwright.outcome_events schemas/events`).

Events are derived from the message log and from nothing else. Each new entry
in a request item's `history` becomes at most one event:

| history entry                                   | detail-type                                |
|-------------------------------------------------|--------------------------------------------|
| the send worker's outcome (`status`)            | EmailSent, EmailSuppressed, EmailOptedOut, |
|                                                 | EmailRateLimited, EmailRejected            |
| a request that reached a dead-letter queue      | EmailFailed                                |
| a request folded into a digest (`digested`)     | EmailDigested (details: digest_id)         |
| SES Delivery, Bounce, Complaint, DeliveryDelay  | EmailDelivered, EmailBounced,              |
|                                                 | EmailComplained, EmailDeliveryDelayed      |
| SES Open, Click                                 | EmailOpened, EmailClicked                  |
| SES Reject, Rendering Failure                   | EmailRejected                              |
| a request held until its send_at, or cancelled  | EmailScheduled, EmailCancelled             |

`DEFAULT_OUTCOME_EVENTS` (mailwright.constants) is what a stack publishes
unless `outcome_events` in context says otherwise.

`events_from_change` compares a request item before and after a write (the
message log's stream carries both images), so an event never announces what
the log does not hold. An event's `event_id` is a digest of the request id
and the history entry as stored: every redelivery of the same entry carries
the same id, so consumers deduplicate on it (delivery is at least once).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mailwright.constants import (
    DEFAULT_OUTCOME_EVENTS,
    OUTCOME_DETAIL_TYPES,
    OUTCOME_EVENT_SOURCE,
    STATUS_FAILED,
    STATUS_OPTED_OUT,
    STATUS_RATE_LIMITED,
    STATUS_REJECTED,
    STATUS_SENT,
    STATUS_SUPPRESSED,
    Keys,
)

EMAIL_SENT = "EmailSent"
EMAIL_DELIVERED = "EmailDelivered"
EMAIL_BOUNCED = "EmailBounced"
EMAIL_COMPLAINED = "EmailComplained"
EMAIL_DELIVERY_DELAYED = "EmailDeliveryDelayed"
EMAIL_OPENED = "EmailOpened"
EMAIL_CLICKED = "EmailClicked"
EMAIL_REJECTED = "EmailRejected"
EMAIL_SUPPRESSED = "EmailSuppressed"
EMAIL_OPTED_OUT = "EmailOptedOut"
EMAIL_RATE_LIMITED = "EmailRateLimited"
EMAIL_FAILED = "EmailFailed"
# Reserved for the timing issue's states (send_at, cancel_key): nothing records them yet.
EMAIL_SCHEDULED = "EmailScheduled"
EMAIL_CANCELLED = "EmailCancelled"
# A request folded into a digest email; its `details` name the digest email's request id (`digest_id`).
EMAIL_DIGESTED = "EmailDigested"

# Every detail-type, and the `status` its events carry.
STATUS_BY_DETAIL_TYPE: dict[str, str] = {
    EMAIL_SENT: STATUS_SENT,
    EMAIL_DELIVERED: "delivered",
    EMAIL_BOUNCED: "bounced",
    EMAIL_COMPLAINED: "complained",
    EMAIL_DELIVERY_DELAYED: "delayed",
    EMAIL_OPENED: "opened",
    EMAIL_CLICKED: "clicked",
    EMAIL_REJECTED: STATUS_REJECTED,
    EMAIL_SUPPRESSED: STATUS_SUPPRESSED,
    EMAIL_OPTED_OUT: STATUS_OPTED_OUT,
    EMAIL_RATE_LIMITED: STATUS_RATE_LIMITED,
    EMAIL_FAILED: STATUS_FAILED,
    EMAIL_SCHEDULED: "scheduled",
    EMAIL_CANCELLED: "cancelled",
    EMAIL_DIGESTED: "digested",
}
DETAIL_TYPES: tuple[str, ...] = OUTCOME_DETAIL_TYPES
assert set(STATUS_BY_DETAIL_TYPE) == set(DETAIL_TYPES) and set(DEFAULT_OUTCOME_EVENTS) <= set(DETAIL_TYPES)
# EmailScheduled, EmailCancelled and EmailDigested are all published now: no detail-type is reserved.
RESERVED_DETAIL_TYPES: frozenset[str] = frozenset()

# The send worker's (and the dead-letter function's) history entries, by their status.
_OUTCOME_TYPES: dict[str, str] = {
    status: detail_type
    for detail_type, status in STATUS_BY_DETAIL_TYPE.items()
    if detail_type in (EMAIL_SENT, EMAIL_REJECTED, EMAIL_SUPPRESSED, EMAIL_OPTED_OUT, EMAIL_RATE_LIMITED, EMAIL_FAILED)
    or detail_type in (EMAIL_SCHEDULED, EMAIL_CANCELLED)  # mailwright.scheduling's entries
    or detail_type in RESERVED_DETAIL_TYPES
    or detail_type == EMAIL_DIGESTED
}
# The feedback function's history entries, by their SES event type. Send and Subscription announce nothing.
_FEEDBACK_TYPES: dict[str, str] = {
    "Delivery": EMAIL_DELIVERED,
    "Bounce": EMAIL_BOUNCED,
    "Complaint": EMAIL_COMPLAINED,
    "DeliveryDelay": EMAIL_DELIVERY_DELAYED,
    "Open": EMAIL_OPENED,
    "Click": EMAIL_CLICKED,
    "Reject": EMAIL_REJECTED,
    "Rendering Failure": EMAIL_REJECTED,
}
SCHEMA_BASE_URL = "https://github.com/mailwright/mailwright/schemas/events/"


class OutcomeEvent(BaseModel):
    """The `detail` of every mailwright outcome event. Never holds an email address."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal["1"] = Field(default="1", description="Version of this detail format.")
    event_id: str = Field(
        description="Stable across redeliveries of the same event: deduplicate on it (delivery is at least once).",
        pattern=r"^[0-9a-f]{32}$",
    )
    request_id: str = Field(description="The request's id (its idempotency_key, or the digest of its content).")
    status: str = Field(description="What happened: the request's terminal state, or what SES reported since.")
    evaluation: int = Field(
        ge=1,
        description="1, or higher for a request evaluated again after a rejection: order events by it, then "
        "by occurred_at.",
    )
    occurred_at: str = Field(description="When it happened, ISO 8601 in UTC with milliseconds.")
    lane: str | None = Field(default=None, description="critical, standard or bulk (ingest: never reached a lane).")
    template_id: str | None = None
    template_version: str | None = None
    variant: str | None = Field(
        default=None, description="The template's A/B variant the recipient got (none: the template has no variants)."
    )
    category: str | None = Field(default=None, description="The template's category (unknown without a template).")
    metadata: dict[str, str] = Field(
        default_factory=dict, description="The producer's metadata from the request: match your own events on it."
    )
    producer: str | None = Field(
        default=None,
        description="The producer that published the request (an HTTPS API key's, or the one the request named), "
        "when known: a rule may match it.",
    )
    recipient_masked: str | None = Field(default=None, description="The recipient, masked (j***@example.com).")
    ses_message_id: str | None = Field(default=None, description="The provider's message id, once sent.")
    provider: str | None = Field(default=None, description="Who sent it (ses), when it was sent.")
    reason_code: str | None = Field(default=None, description="Why, as a code (missing_template, bounce_permanent...).")
    reason: str | None = Field(default=None, description="Why, in words.")
    bounce_type: str | None = Field(default=None, description="EmailBounced: Permanent, Transient or Undetermined.")
    bounce_sub_type: str | None = Field(default=None, description="EmailBounced: SES's bounce subtype.")
    details: dict[str, str] = Field(
        default_factory=dict,
        description="Address-free details of the provider's event (SMTP response, link host and path, delay type).",
    )


@dataclass(frozen=True)
class PublishedEvent:
    """One event as it goes on the bus: its detail-type and detail."""

    detail_type: str
    detail: OutcomeEvent

    def entry(self, bus_name: str) -> dict[str, Any]:
        """The PutEvents entry."""
        return {
            "Source": OUTCOME_EVENT_SOURCE,
            "DetailType": self.detail_type,
            "Detail": self.detail.model_dump_json(),
            "EventBusName": bus_name,
            "Time": datetime.fromisoformat(self.detail.occurred_at.replace("Z", "+00:00")),
        }


def iso_time(epoch: float) -> str:
    """Epoch seconds as ISO 8601 in UTC with milliseconds (`2026-01-02T03:04:05.678Z`)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _canonical(entry: Mapping[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str)


def event_id(request_id: str, entry: Mapping[str, Any]) -> str:
    """The id of the event a history entry announces: the same entry always gives the same id."""
    return hashlib.sha256(f"{request_id}\n{_canonical(entry)}".encode()).hexdigest()[:32]


def new_entries(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The history entries `new` holds that `old` did not (a Put over an item may drop older ones)."""
    before = Counter(_canonical(entry) for entry in (old or {}).get("history", []) if isinstance(entry, Mapping))
    added = []
    for entry in new.get("history", []):
        if not isinstance(entry, Mapping):
            continue
        key = _canonical(entry)
        if before[key]:
            before[key] -= 1
        else:
            added.append(entry)
    return added


def events_from_change(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[PublishedEvent]:
    """The events a write to a request item announces: one per new history entry that maps to a detail-type.

    `old` and `new` are the item before and after the write, as plain values
    (numbers as int or float); `old` is None for a new item.
    """
    request_id = new.get(Keys.MESSAGES_PK)
    if not isinstance(request_id, str) or not request_id:
        return []
    events = []
    for entry in new_entries(old, new):
        event = _event(request_id, entry, new)
        if event is not None:
            events.append(event)
    return events


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _event(request_id: str, entry: Mapping[str, Any], item: Mapping[str, Any]) -> PublishedEvent | None:
    ses_type = entry.get("event")
    if ses_type is not None:
        detail_type = _FEEDBACK_TYPES.get(str(ses_type))
    else:
        detail_type = _OUTCOME_TYPES.get(str(entry.get("status")))
    if detail_type is None:
        return None
    at = entry.get("at", item.get("completed_at"))
    try:
        occurred = iso_time(float(at))
    except (TypeError, ValueError):
        return None
    details = entry.get("detail") if isinstance(entry.get("detail"), Mapping) else {}
    assert isinstance(details, Mapping)
    metadata = item.get("metadata") if isinstance(item.get("metadata"), Mapping) else {}
    assert isinstance(metadata, Mapping)
    ses_message_id = _text(item.get(Keys.SES_MESSAGE_ID))
    fields: dict[str, Any] = {
        "event_id": event_id(request_id, entry),
        "request_id": request_id,
        "status": STATUS_BY_DETAIL_TYPE[detail_type],
        "occurred_at": occurred,
        "lane": _text(item.get("lane")),
        "template_id": _text(item.get("template_id")),
        "template_version": _text(item.get("template_version")),
        "variant": _text(item.get("variant")),
        "category": _text(item.get("category")),
        "metadata": {str(k): str(v) for k, v in metadata.items()},
        "producer": _text(item.get("producer")),
        "recipient_masked": _text(item.get("recipient_masked")),
        "ses_message_id": ses_message_id,
        "details": {str(k): str(v) for k, v in details.items()},
    }
    if ses_type is None:
        evaluation = int(entry.get("evaluation", item.get("evaluation", 1)) or 1)
        current = evaluation == int(item.get("evaluation", 1) or 1) and entry.get("status") == item.get("status")
        fields["reason_code"] = _text(entry.get("reason_code"))
        fields["reason"] = _text(entry.get("reason")) or (_text(item.get("reason")) if current else None)
        if detail_type == EMAIL_SENT:
            fields["provider"] = _text(item.get("provider")) or ("ses" if ses_message_id else None)
    else:
        evaluation = int(item.get("evaluation", 1) or 1)
        fields["provider"] = _text(entry.get("provider")) or _text(item.get("provider")) or "ses"
        fields.update(_feedback_reason(str(ses_type), details))
    fields["evaluation"] = max(1, evaluation)
    return PublishedEvent(detail_type, OutcomeEvent(**fields))


def _feedback_reason(ses_type: str, details: Mapping[str, Any]) -> dict[str, str | None]:
    """reason_code, reason and the bounce fields of a provider event, from its address-free details."""
    if ses_type == "Bounce":
        kind = str(details.get("bounce_type") or "Undetermined")
        sub = _text(details.get("bounce_sub_type"))
        return {
            "reason_code": f"bounce_{kind.lower()}",
            "reason": f"{kind} bounce" + (f" ({sub})" if sub else ""),
            "bounce_type": kind,
            "bounce_sub_type": sub,
        }
    if ses_type == "Complaint":
        feedback = _text(details.get("feedback_type"))
        return {"reason_code": "complaint", "reason": "complaint" + (f" ({feedback})" if feedback else "")}
    if ses_type == "DeliveryDelay":
        delay = _text(details.get("delay_type"))
        return {"reason_code": "delivery_delay", "reason": "delivery delayed" + (f" ({delay})" if delay else "")}
    if ses_type == "Reject":
        return {"reason_code": "provider_reject", "reason": _text(details.get("reason")) or "rejected by SES"}
    if ses_type == "Rendering Failure":
        return {"reason_code": "rendering_failure", "reason": _text(details.get("error")) or "SES could not render it"}
    return {}


# -- JSON Schemas -------------------------------------------------------------


def detail_json_schema(detail_type: str) -> dict[str, Any]:
    """The JSON Schema of the `detail` of one detail-type, as committed under schemas/events/."""
    status = STATUS_BY_DETAIL_TYPE[detail_type]
    schema = OutcomeEvent.model_json_schema()
    schema["title"] = detail_type
    reserved = " Reserved: nothing publishes it yet." if detail_type in RESERVED_DETAIL_TYPES else ""
    schema["description"] = (
        f"The detail of a mailwright `{detail_type}` event (source `{OUTCOME_EVENT_SOURCE}`).{reserved} "
        "Never holds an email address."
    )
    schema["properties"]["status"] = {**schema["properties"]["status"], "const": status}
    if detail_type == EMAIL_BOUNCED:
        schema["required"] = sorted({*schema["required"], "bounce_type"})
        schema["properties"]["bounce_type"] = {
            "enum": ["Permanent", "Transient", "Undetermined"],
            "description": schema["properties"]["bounce_type"]["description"],
            "title": "Bounce Type",
        }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{SCHEMA_BASE_URL}{detail_type}.schema.json"
    return schema


def schema_files() -> dict[str, str]:
    """Every detail-type's schema file, by file name, as `make schema` writes them."""
    return {
        f"{detail_type}.schema.json": json.dumps(detail_json_schema(detail_type), indent=2, sort_keys=True) + "\n"
        for detail_type in DETAIL_TYPES
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Write one JSON Schema per detail-type (`python -m mailwright.outcome_events schemas/events`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.stderr.write("usage: python -m mailwright.outcome_events DIRECTORY\n")
        raise SystemExit(2)
    directory = Path(args[0])
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in schema_files().items():
        (directory / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
