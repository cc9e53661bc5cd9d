"""The status API's bodies: what `GET /v1/messages/{request_id}` and `POST /v1/messages/search` take and return.

One pydantic model per body is the single source of truth: the handler
answers with them, the SDK's status client parses them, and the OpenAPI
document under `schemas/` is generated from them (`mailwright.openapi`).
Times are ISO 8601 in UTC; no model holds an address, only masked forms.
This module needs pydantic alone, so the producer SDK can import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from mailwright.addresses import InvalidAddressError, normalize_address
from mailwright.constants import REQUEST_ID_PATTERN, STATUS_SCHEDULED, Keys
from mailwright.iso_times import date_time_text

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 25
# A cursor holds a position per key version and a MAC: far below this.
MAX_CURSOR_LENGTH = 2048

_RESPONSE = ConfigDict(extra="ignore", frozen=True)


class ApiError(BaseModel):
    """What went wrong: a stable machine-readable `code` and a sentence for people."""

    model_config = _RESPONSE

    code: str = Field(description="e.g. invalid_request_id, not_found, invalid_body, invalid_cursor, throttled.")
    message: str


class ErrorBody(BaseModel):
    """Every error answer of the API, whatever its status."""

    model_config = _RESPONSE

    error: ApiError


class HistoryEntry(BaseModel):
    """One step of a request's life: an evaluation's outcome (`type` null) or a provider event (`type` set)."""

    model_config = _RESPONSE

    at: AwareDatetime
    status: str = Field(description="The outcome (sent, rejected...) or the event's delivery state (delivered...).")
    type: str | None = Field(default=None, description="The provider's event type: Send, Delivery, Bounce, Open...")
    evaluation: int | None = Field(default=None, description="Which evaluation of the request this outcome ended.")
    reason_code: str | None = None
    recipients: list[str] = Field(default_factory=list, description="Masked addresses the event concerns.")
    detail: dict[str, str] = Field(default_factory=dict, description="Address-free details, e.g. the bounce type.")


class MessageStatus(BaseModel):
    """Everything the message log knows of one request."""

    model_config = _RESPONSE

    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    status: str = Field(
        description="The terminal state of the latest evaluation: sent, suppressed, opted_out, rate_limited, "
        "rejected (and states later releases add)."
    )
    reason_code: str | None = Field(default=None, description="Why it was not sent, as a code (missing_variable...).")
    reason: str | None = None
    delivery: str | None = Field(
        default=None, description="How far a sent email got, from the provider's events: sent, delivered, bounced..."
    )
    provider: str | None = Field(default=None, description="Who took the email: ses.")
    provider_message_id: str | None = None
    producer: str | None = Field(default=None, description="The producer that published the request, when known.")
    lane: str | None = None
    template_id: str | None = None
    template_version: str | None = None
    category: str | None = None
    locale: str | None = None
    recipient_masked: str | None = None
    user_id: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    evaluation: int = Field(default=1, description="1, or more for a request evaluated again after a rejection.")
    attempts: int = 1
    received_at: AwareDatetime | None = None
    completed_at: AwareDatetime
    expires_at: AwareDatetime | None = Field(default=None, description="When the message log forgets the request.")
    send_at: AwareDatetime | None = Field(
        default=None, description="A `scheduled` request's send time (its `send_at`, or where a reschedule moved it)."
    )
    history: list[HistoryEntry] = Field(default_factory=list, description="Outcomes and provider events, by time.")
    digest_id: str | None = Field(
        default=None, description="`digested`: the request id of the digest email that carried this request."
    )
    resume_at: AwareDatetime | None = Field(
        default=None, description="`deferred` (not terminal): when it may go, e.g. when the quiet hours end."
    )

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> MessageStatus:
        """The status of a request item as `MessageLog.get` returns it (with `events` and `delivery`)."""
        return cls.model_validate({**_common(item), **_details(item)})


class MessageSummary(BaseModel):
    """One request found by a search: enough to pick it out; GET /v1/messages/{request_id} tells the rest."""

    model_config = _RESPONSE

    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    status: str
    reason_code: str | None = None
    delivery: str | None = None
    producer: str | None = None
    lane: str | None = None
    template_id: str | None = None
    category: str | None = None
    recipient_masked: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    evaluation: int = 1
    received_at: AwareDatetime | None = None
    completed_at: AwareDatetime

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> MessageSummary:
        """The summary of a request item as `MessageLog.get` returns it."""
        return cls.model_validate(_common(item))


class SearchRequest(BaseModel):
    """`POST /v1/messages/search`: the requests for one address, newest first, a page at a time."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    recipient: str = Field(
        max_length=320,
        description="The address the requests were sent to (trimmed and lower-cased, as the worker does).",
        examples=["jane@example.com"],
        json_schema_extra={"format": "email"},
    )
    since: AwareDatetime | None = Field(
        default=None, description="Only requests completed at or after this time (ISO 8601 with a time zone)."
    )
    limit: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="At most this many per page.")
    next: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CURSOR_LENGTH,
        description="The `next` of the previous page, with the same recipient and since.",
    )

    @field_validator("recipient")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        try:
            return normalize_address(value)
        except InvalidAddressError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("since", mode="before")
    @classmethod
    def _since_text(cls, value: Any) -> Any:
        # Pydantic would take "0" as epoch seconds; the OpenAPI document says date-time.
        return date_time_text(value)


class SearchPage(BaseModel):
    """One page of a search: `next` is null on the last one (a page may hold fewer than `limit` before it)."""

    model_config = _RESPONSE

    items: list[MessageSummary]
    next: str | None = None


def epoch_to_datetime(value: Any) -> datetime | None:
    """An epoch time (seconds) as an aware UTC datetime; None when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _common(item: Mapping[str, Any]) -> dict[str, Any]:
    """The fields summaries and full statuses share, from a message-log item."""
    return {
        "request_id": item.get(Keys.MESSAGES_PK),
        "status": item.get("status"),
        "reason_code": item.get("reason_code"),
        "delivery": item.get("delivery"),
        "producer": item.get("producer"),
        "lane": item.get("lane"),
        "template_id": item.get("template_id"),
        "category": item.get("category"),
        "recipient_masked": item.get("recipient_masked"),
        "metadata": {str(k): str(v) for k, v in (item.get("metadata") or {}).items()},
        "evaluation": int(item.get("evaluation") or 1),
        "received_at": epoch_to_datetime(item.get("received_at")),
        "completed_at": epoch_to_datetime(item.get(Keys.COMPLETED_AT)),
    }


def _details(item: Mapping[str, Any]) -> dict[str, Any]:
    provider_message_id = item.get("provider_message_id") or item.get(Keys.SES_MESSAGE_ID)
    return {
        "send_at": epoch_to_datetime(item.get(Keys.SEND_AT)) if item.get("status") == STATUS_SCHEDULED else None,
        "reason": item.get("reason"),
        # Items from before secondary providers name none: a message id on them is SES's.
        "provider": item.get("provider") or ("ses" if item.get(Keys.SES_MESSAGE_ID) else None),
        "provider_message_id": provider_message_id,
        "template_version": item.get("template_version"),
        "locale": item.get("locale"),
        "user_id": item.get("user_id"),
        "attempts": int(item.get("attempts") or 1),
        "expires_at": epoch_to_datetime(item.get(Keys.TTL)),
        "history": _history(item),
        "digest_id": item.get("digest_id"),
        "resume_at": epoch_to_datetime(item.get("resume_at")),
    }


def _history(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The evaluations' outcomes (history entries without an event) and the events, ordered by time."""
    outcomes = [entry for entry in item.get("history") or [] if isinstance(entry, Mapping) and "event" not in entry]
    events = [event for event in item.get("events") or [] if isinstance(event, Mapping)]
    entries = []
    for entry in [*outcomes, *events]:
        at = epoch_to_datetime(entry.get("at"))
        if at is None:
            continue
        detail = entry.get("detail") if isinstance(entry.get("detail"), Mapping) else {}
        entries.append(
            {
                "at": at,
                "status": str(entry.get("status", "")),
                "type": entry.get("type"),
                "evaluation": entry.get("evaluation"),
                "reason_code": entry.get("reason_code"),
                "recipients": [str(r) for r in entry.get("recipients") or []],
                "detail": {str(k): str(v) for k, v in (detail or {}).items()},
            }
        )
    return sorted(entries, key=lambda entry: entry["at"])


class CancelAnswer(BaseModel):
    """What `POST /v1/messages/{request_id}/cancel` answers when it cancelled the request (too late: a 409 error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str = Field(description="The request the cancel was for.")
    status: str = Field(description="Its status now: `cancelled`.")
    cancelled: bool = Field(description="True: this call cancelled it.")
