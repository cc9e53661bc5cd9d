"""Amazon SQS adapters: RetryScheduler (a failed record is received again later) and Deferrals (a record is
handed back as a new message, its receive count untouched)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.constants import DEFERRALS_ATTRIBUTE, DEFERRED_REASON_ATTRIBUTE, PUBLISHED_AT_ATTRIBUTE
from mailwright.ports import Deferral

logger = logging.getLogger(__name__)


class SqsRetryScheduler:
    """Backs failed records off by raising their visibility timeout, ten per call."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def delay(self, receipts: Sequence[tuple[str, int]]) -> None:
        """Make each message visible again after its delay."""
        for start in range(0, len(receipts), 10):
            chunk = receipts[start : start + 10]
            response = self._client.change_message_visibility_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                    for i, (handle, seconds) in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                logger.warning("could not delay a retry", extra={"code": failure.get("Code")})


class SqsDeferrals:
    """Deferrals over the record's own queue: SendMessageBatch (ten per call) with DelaySeconds and attributes.

    The new message carries the same body, how many times the request was
    deferred and when it was first published (message attributes), so its
    latency is measured from the producer's publish. Its receive count starts
    again at zero: a deferral is not a failure and must never push mail toward
    the dead-letter queue.
    """

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def defer(self, deferrals: Sequence[Deferral]) -> set[str]:
        """Enqueue each again with its delay; the message ids SQS did not take."""
        failed: set[str] = set()
        for start in range(0, len(deferrals), 10):
            chunk = deferrals[start : start + 10]
            try:
                response = self._client.send_message_batch(
                    QueueUrl=self._queue_url, Entries=[_entry(str(i), d) for i, d in enumerate(chunk)]
                )
            except (ClientError, BotoCoreError) as exc:
                logger.warning("could not defer records", extra={"count": len(chunk), "error": str(exc)})
                failed.update(d.message_id for d in chunk)
                continue
            for failure in response.get("Failed", []):
                failed.add(chunk[int(failure["Id"])].message_id)
                logger.warning("could not defer a record", extra={"code": failure.get("Code")})
        return failed


def _entry(entry_id: str, deferral: Deferral) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        DEFERRALS_ATTRIBUTE: {"DataType": "Number", "StringValue": str(deferral.deferrals)},
        DEFERRED_REASON_ATTRIBUTE: {"DataType": "String", "StringValue": deferral.reason},
    }
    if deferral.published_at is not None:
        attributes[PUBLISHED_AT_ATTRIBUTE] = {"DataType": "Number", "StringValue": f"{deferral.published_at:.3f}"}
    return {
        "Id": entry_id,
        "MessageBody": deferral.body,
        "DelaySeconds": max(0, min(900, deferral.seconds)),
        "MessageAttributes": attributes,
    }
