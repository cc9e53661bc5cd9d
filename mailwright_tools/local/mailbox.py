"""What happens after SES accepts an email, emulated: the outbox, and SES's events on the feedback topic.

`LocalMailbox.wrap` is the `wrap_sender` the local stack hands to
`build_send_service`: every email still goes through the real SES adapter
(moto checks the identity and keeps the message), then lands in the outbox,
and its SES events are published to the feedback SNS topic in the
background, as SES publishes them after the call returns.
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Collection
from typing import Any

from mailwright.ports import EmailSender, OutboundEmail
from mailwright_tools.local.outbox import Outbox
from mailwright_tools.local.ses_events import EVENT_TYPE_NAMES, events_for

logger = logging.getLogger(__name__)
PUBLISH_BATCH = 10  # SNS PublishBatch takes ten entries


class SesEventPublisher:
    """Publishes SES events to an SNS topic from a background thread, each when it is due, ten per call.

    SES publishes events asynchronously, a little after SendEmail returns:
    `delays` gives the seconds after the send at which each event type goes out.
    """

    def __init__(self, sns: Any, topic_arn: str, *, delays: dict[str, float] | None = None) -> None:
        self._sns = sns
        self._topic_arn = topic_arn
        self._delays = delays or {}
        self._heap: list[tuple[float, int, dict[str, Any]]] = []
        self._sequence = 0
        self._condition = threading.Condition()
        self._closing = False
        self._in_flight = 0
        self._thread = threading.Thread(target=self._run, name="ses-events", daemon=True)
        self.published: Counter[str] = Counter()
        self.failed = 0

    def start(self) -> None:
        """Start publishing."""
        self._thread.start()

    def publish(self, events: list[dict[str, Any]], *, sent_at: float | None = None) -> None:
        """Queue events; each goes out at `sent_at` plus its type's delay (in order for equal times)."""
        base = time.monotonic() - (time.time() - sent_at if sent_at is not None else 0.0)
        with self._condition:
            for event in events:
                due = base + self._delays.get(str(event.get("eventType")), 0.0)
                heapq.heappush(self._heap, (due, self._sequence, event))
                self._sequence += 1
            self._condition.notify()

    @property
    def idle(self) -> bool:
        """Whether every queued event was published (or given up on)."""
        with self._condition:
            return not self._heap and self._in_flight == 0

    def close(self, timeout: float = 10.0) -> None:
        """Publish everything still queued (due or not), then stop."""
        with self._condition:
            self._closing = True
            self._condition.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _next_batch(self) -> list[dict[str, Any]] | None:
        with self._condition:
            while True:
                now = time.monotonic()
                if self._heap and (self._closing or self._heap[0][0] <= now):
                    batch: list[dict[str, Any]] = []
                    while self._heap and len(batch) < PUBLISH_BATCH and (self._closing or self._heap[0][0] <= now):
                        batch.append(heapq.heappop(self._heap)[2])
                    self._in_flight += len(batch)
                    return batch
                if self._closing:
                    return None
                self._condition.wait(timeout=(self._heap[0][0] - now) if self._heap else None)

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._send(batch)

    def _send(self, batch: list[dict[str, Any]]) -> None:
        entries = [{"Id": str(i), "Message": json.dumps(event)} for i, event in enumerate(batch)]
        try:
            response = self._sns.publish_batch(TopicArn=self._topic_arn, PublishBatchRequestEntries=entries)
            failed = len(response.get("Failed", []))
        except Exception:
            logger.exception("could not publish SES events")
            failed = len(batch)
        with self._condition:
            self._in_flight -= len(batch)
            self.failed += failed
            self.published.update(str(event["eventType"]) for event in batch)


class LocalMailbox:
    """Shared by every local worker: stores sent mail in the outbox and raises its SES events."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        events: SesEventPublisher | None,
        identity: str,
        region: str,
        event_types: Collection[str] | None = None,
    ) -> None:
        self.outbox = outbox
        self.events = events
        self._identity = identity
        self._region = region
        # The configuration set's event types (SESv2 names); None: every type SES makes.
        self._published = None if event_types is None else {EVENT_TYPE_NAMES[t] for t in event_types}
        self._lock = threading.Lock()
        self.sent: Counter[str] = Counter()

    def wrap(self, sender: EmailSender) -> EmailSender:
        """The `wrap_sender` for `build_send_service`."""
        return _LocalSender(sender, self)

    def accepted(self, email: OutboundEmail, message_id: str) -> None:
        """SES accepted `email`: file it and queue its events."""
        sent_at = time.time()
        self.outbox.add(email, message_id, sent_at=sent_at)
        with self._lock:
            self.sent[dict(email.tags).get("lane", "")] += 1
        if self.events is not None:
            events = events_for(email, message_id, sent_at=sent_at, identity=self._identity, region=self._region)
            if self._published is not None:
                events = [e for e in events if e["eventType"] in self._published]
            self.events.publish(events, sent_at=sent_at)

    @property
    def idle(self) -> bool:
        """Whether every SES event was published."""
        return self.events is None or self.events.idle


class _LocalSender:
    """An EmailSender that sends through the real adapter, then tells the mailbox."""

    def __init__(self, inner: EmailSender, mailbox: LocalMailbox) -> None:
        self._inner = inner
        self._mailbox = mailbox

    def send(self, email: OutboundEmail) -> str:
        message_id = self._inner.send(email)
        try:
            self._mailbox.accepted(email, message_id)
        except Exception:
            # The email was sent; a local side effect failing must not make the worker send it again.
            logger.exception("could not file a sent email in the outbox")
        return message_id
