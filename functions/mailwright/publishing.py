"""The events publisher: writes to the message log in, outcome events on the bus out.

The send worker, the feedback function and the dead-letter function only
write the message log; its DynamoDB stream carries each write (the item
before and after) to this service, which puts one event per new history entry
(`mailwright.outcome_events`) on the bus. That is the outbox pattern with the
stream as the outbox:

* an event never announces what the log does not hold: it is derived from a
  write that happened;
* a failure to publish loses nothing and never slows sending: the stream keeps
  the write for 24 hours and the event source mapping retries it (bisecting a
  batch to isolate a record that keeps failing), then names it in the
  publisher's DLQ; the outcome itself is in the log all along;
* delivery is at least once: a retried batch may publish an event again, with
  the same `event_id` (consumers deduplicate on it). Per request, events go
  out in the order of the writes (the stream orders by item).

PutEvents takes ten entries per call; entries EventBridge refuses are retried
at once, twice, and a record with an event still refused is reported as a
batch item failure (by its sequence number), so the mapping retries from it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mailwright.outcome_events import PublishedEvent, events_from_change

logger = logging.getLogger(__name__)

PUT_EVENTS_LIMIT = 10
DEFAULT_ATTEMPTS = 3


class EventBus(Protocol):
    """Puts events on the bus (EventBridge PutEvents)."""

    def put(self, events: Sequence[PublishedEvent]) -> list[str | None]:
        """Put up to ten events; for each, None when accepted or the error code it was refused with."""
        ...


@dataclass(frozen=True)
class ChangeRecord:
    """One write to the message log, from its stream: the item before (None: new) and after."""

    sequence_number: str
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None


@dataclass
class PublishReport:
    """What a batch of changes published, left out (not configured) and failed."""

    records: int = 0
    published: Counter[str] = field(default_factory=Counter)
    not_configured: Counter[str] = field(default_factory=Counter)
    refused_entries: int = 0
    failed: list[str] = field(default_factory=list)

    def partial_batch_response(self) -> dict[str, list[dict[str, str]]]:
        """The `batchItemFailures` a DynamoDB stream event source expects: sequence numbers."""
        return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in self.failed]}


class EventPublisher:
    """Derives outcome events from message-log changes and puts the configured detail-types on the bus."""

    def __init__(self, bus: EventBus, *, detail_types: frozenset[str], attempts: int = DEFAULT_ATTEMPTS) -> None:
        self._bus = bus
        self.detail_types = detail_types
        self._attempts = attempts

    def process(self, records: Sequence[ChangeRecord]) -> PublishReport:
        """Publish what a batch of changes announces; never raises for one record's fault."""
        report = PublishReport(records=len(records))
        pending: list[tuple[ChangeRecord, PublishedEvent]] = []
        for record in records:
            if record.new is None:  # a deleted item (TTL) announces nothing
                continue
            try:
                events = events_from_change(record.old, record.new)
            except Exception:
                # Failed, not skipped: the mapping retries it, bisects around it, and at last names it in its DLQ.
                logger.exception("could not derive events", extra={"sequence_number": record.sequence_number})
                report.failed.append(record.sequence_number)
                continue
            for event in events:
                if event.detail_type in self.detail_types:
                    pending.append((record, event))
                else:
                    report.not_configured[event.detail_type] += 1
        refused = self._put(pending, report)
        failed = {record.sequence_number for record, _ in refused}
        report.failed.extend(sorted(failed - set(report.failed), key=_sequence_order))
        return report

    def _put(
        self, pending: list[tuple[ChangeRecord, PublishedEvent]], report: PublishReport
    ) -> list[tuple[ChangeRecord, PublishedEvent]]:
        """Put every event, retrying refused entries; the ones still refused after the last attempt."""
        for attempt in range(self._attempts):
            if not pending:
                break
            refused: list[tuple[ChangeRecord, PublishedEvent]] = []
            for start in range(0, len(pending), PUT_EVENTS_LIMIT):
                chunk = pending[start : start + PUT_EVENTS_LIMIT]
                try:
                    codes: list[str | None] = self._bus.put([event for _, event in chunk])
                except Exception as exc:
                    logger.warning("PutEvents failed", extra={"entries": len(chunk), "error": str(exc)})
                    codes = [type(exc).__name__] * len(chunk)
                for item, code in zip(chunk, codes, strict=True):
                    if code is None:
                        report.published[item[1].detail_type] += 1
                    else:
                        refused.append(item)
                        report.refused_entries += 1
            if refused:
                logger.warning("events refused", extra={"entries": len(refused), "attempt": attempt + 1})
            pending = refused
        return pending


def _sequence_order(sequence: str) -> tuple[int, str]:
    return (int(sequence), sequence) if sequence.isdigit() else (0, sequence)
