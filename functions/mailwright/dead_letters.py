"""Requests that reached a dead-letter queue: recorded as `failed` (one EmailFailed each), then parked for redrive.

SQS moves a lane message to the lane's DLQ after `maxReceiveCount` receives,
whatever ended them: retries the worker asked for, or invocations that
crashed or timed out before answering. Each DLQ feeds this function through
an event source mapping; per message it

1. records the failure in the message log: one history entry
   (`status: failed`, `reason_code: dead_lettered`) on the request's item,
   created if the request never got one, and the item's status set to
   `failed` unless it already holds a final outcome. The write is conditional
   on the DLQ message's id (a digest kept in `event_keys`), so a redelivery
   records nothing again, and the stream publishes EmailFailed once;
2. parks the message, body and attributes unchanged, on the lane's parked
   queue, where `mailwright dlq list|redrive` finds it (and where SQS's
   retention starts again, 14 days);
3. acknowledges it (the mapping deletes it from the DLQ).

A failure at 1 or 2 leaves the message in the DLQ to be tried again. A crash
between 2 and 3 parks it twice; a redrive then sends the request twice and
the worker's dedupe absorbs it. `failed` is not terminal: a redriven request
is processed as usual, and its outcome replaces the failure (and is
published). Requests in the ingest DLQ (EventBridge could not deliver them to
a lane) are parked on the parked queue of the lane their priority names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mailwright.addresses import mask_address, scrub_addresses
from mailwright.constants import DEFAULT_LANE, EVENT_DETAIL_TYPE, LANES, STATUS_FAILED
from mailwright.event_settings import DeadLetterQueue
from mailwright.request import parse_request

logger = logging.getLogger(__name__)

REASON_CODE = "dead_lettered"
INGEST = "ingest"


@dataclass(frozen=True)
class DeadLetter:
    """One message from a dead-letter queue."""

    message_id: str
    body: str
    source_arn: str
    message_attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """What the message log records of a dead-lettered request."""

    request_id: str
    lane: str
    # A digest of the DLQ message's id: one failure per arrival in a DLQ.
    key: str
    at: float
    reason: str
    template_id: str | None = None
    recipient_masked: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


class FailureLog(Protocol):
    """Records dead-lettered requests in the message log."""

    def record_failure(self, failure: Failure) -> bool:
        """Append the failure to the request's history once per `failure.key`; False when it was there already."""
        ...


class ParkingLot(Protocol):
    """The parked queues: dead-lettered messages wait there for `mailwright dlq redrive`."""

    def park(self, queue_url: str, letter: DeadLetter, body: str) -> None: ...


@dataclass
class DeadLetterReport:
    """What a batch of dead letters did."""

    recorded: int = 0
    already_recorded: int = 0
    parked: int = 0
    failed: list[str] = field(default_factory=list)
    by_lane: dict[str, int] = field(default_factory=dict)

    def partial_batch_response(self) -> dict[str, list[dict[str, str]]]:
        """The `batchItemFailures` response Lambda's SQS event source expects."""
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in self.failed]}


@dataclass(frozen=True)
class _Parsed:
    request_id: str
    body: str
    template_id: str | None
    recipient_masked: str | None
    metadata: dict[str, str]
    priority: str | None


def body_request_id(body: str) -> str:
    """The request id the send worker logs a body under: the request's, else a digest of the body."""
    try:
        return parse_request(body).request_id
    except Exception:
        return hashlib.sha256(body.encode("utf-8", "replace")).hexdigest()[:32]


def _parse(body: str) -> _Parsed:
    """What a dead-lettered body says about its request; a body that is no request still has an id."""
    data: Any = None
    with contextlib.suppress(ValueError):
        data = json.loads(body)
    # The ingest DLQ may hold the whole EventBridge event rather than its detail.
    if isinstance(data, dict) and data.get("detail-type") == EVENT_DETAIL_TYPE and isinstance(data.get("detail"), dict):
        data = data["detail"]
        body = json.dumps(data, separators=(",", ":"))
    try:
        request = parse_request(body)
    except Exception:
        loose = data if isinstance(data, dict) else {}
        metadata = loose.get("metadata")
        recipient = loose.get("recipient_email")
        return _Parsed(
            request_id=body_request_id(body),
            body=body,
            template_id=scrub_addresses(loose["template_id"][:200])
            if isinstance(loose.get("template_id"), str)
            else None,
            recipient_masked=mask_address(recipient) if isinstance(recipient, str) and recipient else None,
            metadata={scrub_addresses(str(k)[:128]): scrub_addresses(str(v)[:256]) for k, v in metadata.items()}
            if isinstance(metadata, dict)
            else {},
            priority=loose.get("priority") if isinstance(loose.get("priority"), str) else None,
        )
    return _Parsed(
        request_id=request.request_id,
        body=body,
        template_id=request.template_id,
        recipient_masked=mask_address(request.recipient_email),
        metadata=dict(request.metadata),
        priority=request.priority,
    )


class DeadLetterService:
    """Records each dead-lettered request once (EmailFailed) and parks its message for redrive."""

    def __init__(
        self,
        *,
        queues: Mapping[str, DeadLetterQueue],
        parked_by_lane: Mapping[str, str],
        log: FailureLog,
        parking: ParkingLot,
        clock: Callable[[], float],
    ) -> None:
        self._queues = queues
        self._parked_by_lane = parked_by_lane
        self._log = log
        self._parking = parking
        self._clock = clock

    def process(self, letters: Sequence[DeadLetter]) -> DeadLetterReport:
        """Handle a batch; a message that could not be recorded or parked stays in its DLQ (a batch item failure)."""
        report = DeadLetterReport()
        for letter in letters:
            try:
                self._handle(letter, report)
            except Exception as exc:
                logger.exception(
                    "dead letter not handled; it stays in its queue",
                    extra={"message_id": letter.message_id, "error": str(exc)},
                )
                report.failed.append(letter.message_id)
        return report

    def _handle(self, letter: DeadLetter, report: DeadLetterReport) -> None:
        queue = self._queues.get(letter.source_arn)
        if queue is None:
            raise LookupError(f"no dead-letter queue {letter.source_arn!r} is configured")
        parsed = _parse(letter.body)
        lane, parked_url = queue.lane, queue.parked_url
        if lane == INGEST:
            # Never reached a lane: park it where its priority would have taken it, so a redrive delivers it.
            lane = parsed.priority if parsed.priority in LANES else DEFAULT_LANE
            parked_url = self._parked_by_lane.get(lane, parked_url)
        where = "could not be delivered to a lane queue" if queue.lane == INGEST else f"gave up in the {lane} lane"
        failure = Failure(
            request_id=parsed.request_id,
            lane=lane,
            key=hashlib.sha256(f"{letter.source_arn}\n{letter.message_id}".encode()).hexdigest()[:16],
            at=self._clock(),
            reason=f"{where}: the request reached a dead-letter queue and waits there for "
            f"`mailwright dlq redrive --lane {lane}`",
            template_id=parsed.template_id,
            recipient_masked=parsed.recipient_masked,
            metadata=parsed.metadata,
        )
        if self._log.record_failure(failure):
            report.recorded += 1
            logger.warning(
                "request dead-lettered",
                extra={"request_id": failure.request_id, "lane": lane, "status": STATUS_FAILED},
            )
        else:
            report.already_recorded += 1
        self._parking.park(parked_url, letter, parsed.body if queue.lane == INGEST else letter.body)
        report.parked += 1
        report.by_lane[lane] = report.by_lane.get(lane, 0) + 1
