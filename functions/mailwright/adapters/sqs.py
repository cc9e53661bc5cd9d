"""Amazon SQS adapters: RetryScheduler (a failed record is received again later), Deferrals (a record is
handed back as a new message, its receive count untouched) and LanePublisher (the ingest bridge)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import error_code
from mailwright.constants import DEFERRALS_ATTRIBUTE, DEFERRED_REASON_ATTRIBUTE, PUBLISHED_AT_ATTRIBUTE
from mailwright.ports import Deferral, LaneMessage, RefusedMessage

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


# SendMessageBatch takes at most ten entries and 256 KiB per call.
SEND_BATCH_ENTRIES = 10
SEND_BATCH_BYTES = 256 * 1024
# Entries SQS refused (or a call that failed after botocore's own retries) are sent again this many times in all.
PUBLISH_ATTEMPTS = 4
PUBLISH_BACKOFF_SECONDS = 0.1


class SqsLanePublisher:
    """LanePublisher over SendMessageBatch: ten entries per call, refused entries retried with backoff.

    An entry SQS refused as the sender's fault (`SenderFault`: too large, bad
    characters) will be refused again: it is reported at once. Others (an
    internal error, throttling) are sent again up to PUBLISH_ATTEMPTS times.
    """

    def __init__(
        self,
        client: Any,
        queue_urls: Mapping[str, str],
        *,
        attempts: int = PUBLISH_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._queue_urls = dict(queue_urls)
        self._attempts = attempts
        self._sleep = sleep
        self._rng = rng or random.Random()

    def publish(self, messages: Sequence[LaneMessage]) -> list[RefusedMessage]:
        """Publish every message to its lane's queue; return those still refused after the retries."""
        refused: list[RefusedMessage] = []
        by_lane: dict[str, list[LaneMessage]] = {}
        for message in messages:
            if message.lane not in self._queue_urls:
                refused.append(RefusedMessage(message.key, "NoQueue", f"no queue URL for the {message.lane} lane"))
            else:
                by_lane.setdefault(message.lane, []).append(message)
        for lane, pending in by_lane.items():
            refused.extend(self._publish_lane(self._queue_urls[lane], pending))
        return refused

    def _publish_lane(self, queue_url: str, messages: list[LaneMessage]) -> list[RefusedMessage]:
        pending = messages
        final: list[RefusedMessage] = []
        last: dict[str, tuple[str, str, bool]] = {}
        for attempt in range(self._attempts):
            if attempt:
                # Full jitter: concurrent bridges that were refused together do not retry together.
                self._sleep(self._rng.uniform(0, PUBLISH_BACKOFF_SECONDS * 2**attempt))
            failures: dict[str, tuple[str, str, bool]] = {}
            for chunk in _send_chunks(pending):
                failures.update(self._send(queue_url, chunk))
            retry = [m for m in pending if m.key in failures and not failures[m.key][2]]
            final.extend(RefusedMessage(k, code, text) for k, (code, text, sender) in failures.items() if sender)
            if not retry:
                return final
            pending = retry
            last = failures
        final.extend(RefusedMessage(m.key, last[m.key][0], last[m.key][1]) for m in pending)
        return final

    def _send(self, queue_url: str, chunk: list[LaneMessage]) -> dict[str, tuple[str, str, bool]]:
        """Failures of one call by key: (code, message, the sender's fault)."""
        entries = [{"Id": str(index), "MessageBody": m.body} for index, m in enumerate(chunk)]
        try:
            response = self._client.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except ClientError as exc:
            return {m.key: (error_code(exc) or "ClientError", str(exc), False) for m in chunk}
        except BotoCoreError as exc:
            return {m.key: (type(exc).__name__, str(exc), False) for m in chunk}
        return {
            chunk[int(failure["Id"])].key: (
                str(failure.get("Code", "Failed")),
                str(failure.get("Message", "")),
                bool(failure.get("SenderFault", False)),
            )
            for failure in response.get("Failed", [])
        }


def _send_chunks(messages: list[LaneMessage]) -> list[list[LaneMessage]]:
    """Calls of at most ten entries and 256 KiB."""
    chunks: list[list[LaneMessage]] = []
    current: list[LaneMessage] = []
    size = 0
    for message in messages:
        item = len(message.body.encode("utf-8"))
        if current and (len(current) == SEND_BATCH_ENTRIES or size + item > SEND_BATCH_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(message)
        size += item
    if current:
        chunks.append(current)
    return chunks
