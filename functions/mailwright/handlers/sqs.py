"""What the SQS-fed handlers share: turning the event into the services' queue records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mailwright.constants import DEFERRALS_ATTRIBUTE, PUBLISHED_AT_ATTRIBUTE
from mailwright.sending import QueueRecord

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes import SQSEvent


def queue_records(event: SQSEvent | Mapping[str, Any]) -> list[QueueRecord]:
    """The records of an SQS event (as Lambda delivers it, or wrapped in Powertools' SQSEvent), as services take them.

    Read from the raw event: the send worker does not load Powertools' event classes (all of them come
    with one), which its cold start would pay for.
    """
    raw: Mapping[str, Any] = getattr(event, "raw_event", event)
    records = []
    for r in raw.get("Records") or []:
        # Attributes are read leniently: replayed or hand-made events may lack some of them.
        attributes = r.get("attributes") or {}
        sent = attributes.get("SentTimestamp")
        sent_at = int(sent) / 1000 if sent else None
        # A deferred request's new message carries its first publish time and how often it was deferred.
        message_attributes = r.get("messageAttributes") or {}
        published = _number(message_attributes.get(PUBLISHED_AT_ATTRIBUTE))
        records.append(
            QueueRecord(
                message_id=r["messageId"],
                receipt_handle=r["receiptHandle"],
                body=r["body"],
                receive_count=int(attributes.get("ApproximateReceiveCount") or 1),
                sent_at=published if published is not None else sent_at,
                deferrals=int(_number(message_attributes.get(DEFERRALS_ATTRIBUTE)) or 0),
            )
        )
    return records


def _number(attribute: Any) -> float | None:
    """A Number message attribute's value (Lambda's shape: `stringValue`), or None when missing or garbled."""
    try:
        value = attribute.get("stringValue") if isinstance(attribute, Mapping) else None
        return float(value) if value else None
    except (TypeError, ValueError):
        return None
