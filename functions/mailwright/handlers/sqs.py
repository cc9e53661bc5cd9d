"""What the SQS-fed handlers share: turning the event into the services' queue records."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSMessageAttributes

from mailwright.constants import DEFERRALS_ATTRIBUTE, PUBLISHED_AT_ATTRIBUTE
from mailwright.sending import QueueRecord


def queue_records(event: SQSEvent) -> list[QueueRecord]:
    """The records of an SQS event, as the services take them."""
    records = []
    for r in event.records:
        # Attributes are read leniently: replayed or hand-made events may lack some of them.
        sent = r.attributes.get("SentTimestamp")
        sent_at = int(sent) / 1000 if sent else None
        # A deferred request's new message carries its first publish time and how often it was deferred.
        attributes = SQSMessageAttributes(r.raw_event.get("messageAttributes") or {})
        published = _number(attributes[PUBLISHED_AT_ATTRIBUTE])
        records.append(
            QueueRecord(
                message_id=r.message_id,
                receipt_handle=r.receipt_handle,
                body=r.body,
                receive_count=int(r.attributes.get("ApproximateReceiveCount") or 1),
                sent_at=published if published is not None else sent_at,
                deferrals=int(_number(attributes[DEFERRALS_ATTRIBUTE]) or 0),
            )
        )
    return records


def _number(attribute: Any) -> float | None:
    """A Number message attribute's value, or None when it is missing or garbled."""
    try:
        return float(attribute.string_value) if attribute is not None and attribute.string_value else None
    except (TypeError, ValueError):
        return None
