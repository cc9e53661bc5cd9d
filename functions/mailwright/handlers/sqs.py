"""What the SQS-fed handlers share: turning the event into the services' queue records."""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes import SQSEvent

from mailwright.sending import QueueRecord


def queue_records(event: SQSEvent) -> list[QueueRecord]:
    """The records of an SQS event, as the services take them."""
    records = []
    for r in event.records:
        # Attributes are read leniently: replayed or hand-made events may lack some of them.
        sent = r.attributes.get("SentTimestamp")
        records.append(
            QueueRecord(
                message_id=r.message_id,
                receipt_handle=r.receipt_handle,
                body=r.body,
                receive_count=int(r.attributes.get("ApproximateReceiveCount") or 1),
                sent_at=int(sent) / 1000 if sent else None,
            )
        )
    return records
