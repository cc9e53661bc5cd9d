"""Scheduled sends and cancellation: requests with `send_at` are held until then, and may be taken back.

A request whose `send_at` is still ahead when the worker first parses it is
recorded `scheduled` in the message log (with its send_at), then held:

- up to `SHORT_SCHEDULE_SECONDS` (15 minutes) ahead, it goes back to its lane
  queue as a new message with the remaining delay (the deferral port, so its
  receive count stays unused);
- further ahead, an EventBridge Scheduler one-time schedule named after the
  request id puts its body on the lane queue at the time (a retry finds the
  name taken and creates nothing).

When it comes back, the record says what to do: it is the truth. A request
rescheduled meanwhile is held again until its new send_at; one cancelled is
dropped; one due goes through the normal pipeline, dedupe claim first.

Cancellation is a conditional state change (`ScheduleStore.cancel`): only a
`scheduled` request, or one not seen yet, becomes `cancelled`, and the cancel
takes the request's dedupe claim, so a copy still in a queue (an SQS delay
cannot be taken back) finds the request taken and final, at no extra I/O for
requests without send_at or cancel_key. A cancel_key cancels the requests
published with it before the cancel, for `CANCEL_KEY_TTL_SECONDS` (the longest
a request can wait for its send_at, and a day more).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from mailwright.addresses import mask_address
from mailwright.constants import (
    CANCEL_KEY_TTL_SECONDS,
    MAX_SCHEDULE_AHEAD_SECONDS,
    SCHEDULE_OWNER_NONE,
    SHORT_SCHEDULE_SECONDS,
    STATUS_CANCELLED,
    STATUS_SCHEDULED,
)
from mailwright.ports import CancelResult, ScheduledRequest, ScheduleEntry, Scheduler, ScheduleStore
from mailwright.request import EmailRequest

logger = logging.getLogger(__name__)

# A send_at this close is due: holding a request for less is not worth a round trip through the queue.
DUE_TOLERANCE_SECONDS = 1.0
# EventBridge Scheduler refuses an `at()` in the past: a long schedule moved to "now" fires this much later.
MIN_SCHEDULE_LEAD_SECONDS = 60
SCHEDULE_NAME_PREFIX = "mailwright-"

Timing = Literal["due", "short", "long"]
PlanKind = Literal["send", "defer", "held", "done", "retry"]


class InvalidSendAtError(ValueError):
    """A send_at that is not an ISO 8601 time with an offset, or is more than a year ahead."""


def schedule_name(request_id: str) -> str:
    """The EventBridge Scheduler name of a request's schedule: derived from its id, so a retry finds it."""
    return SCHEDULE_NAME_PREFIX + request_id


def hold_in_schedule(scheduler: Scheduler, name: str, *, at: float, body: str) -> bool:
    """Hold `body` in the one-time schedule `name` until `at`; True when created, False when one existed (moved)."""
    created = scheduler.create(name, at=at, body=body)
    # Taken (a retry): the existing schedule is set to `at`; gone meanwhile (it ran, or was deleted), made again.
    if not created and not scheduler.update(name, at=at):
        scheduler.create(name, at=at, body=body)
    return created


def scoped_cancel_key(producer: str | None, key: str) -> str:
    """A cancel_key within its producer's namespace (producer names hold no `|`), so producers never collide."""
    return f"{producer or SCHEDULE_OWNER_NONE}|{key}"


def timing(send_at: float | None, now: float) -> tuple[Timing, int]:
    """Whether a request is due now, held by an SQS delay (seconds to wait) or by a schedule."""
    if send_at is None or send_at - now <= DUE_TOLERANCE_SECONDS:
        return "due", 0
    ahead = send_at - now
    if ahead <= SHORT_SCHEDULE_SECONDS:
        return "short", max(1, math.ceil(ahead))
    return "long", math.ceil(ahead)


def parse_send_at(text: str, *, now: float | None = None) -> float:
    """An ISO 8601 time with offset as epoch seconds; raise InvalidSendAtError naming what is wrong."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidSendAtError(f"send_at {text!r} is not an ISO 8601 time, e.g. 2026-12-24T09:00:00+01:00") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidSendAtError("send_at needs a UTC offset, e.g. 2026-12-24T09:00:00+01:00 or ...T08:00:00Z")
    epoch = value.timestamp()
    current = time.time() if now is None else now
    if epoch - current > MAX_SCHEDULE_AHEAD_SECONDS:
        raise InvalidSendAtError(f"send_at is at most {MAX_SCHEDULE_AHEAD_SECONDS // 86400} days ahead")
    return epoch


def iso(epoch: float) -> str:
    """Epoch seconds as ISO 8601 UTC (seconds)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Candidate:
    """A parsed request on its way through the worker, as much of it as scheduling needs."""

    request: EmailRequest
    request_id: str
    body: str
    # When the producer first published it (the queue message's, kept across deferrals), epoch seconds.
    published_at: float | None
    user_id: str | None
    recipient_hash: str | None


@dataclass(frozen=True)
class Plan:
    """What the worker does with a request: send it now, defer it `seconds`, ack it (held or done), or retry."""

    kind: PlanKind
    seconds: int = 0
    reason: str = ""


SEND = Plan("send")


class Scheduling:
    """The worker's scheduling stage: holds requests until their send_at, drops cancelled ones.

    Only requests carrying send_at or cancel_key are looked at (one batched
    read of their records, one of their cancel keys); others pass untouched.
    """

    def __init__(
        self,
        *,
        store: ScheduleStore,
        scheduler: Scheduler | None,
        lane: str,
        log_ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        self._lane = lane
        self._log_ttl_seconds = log_ttl_seconds
        self._clock = clock

    @property
    def scheduler(self) -> Scheduler | None:
        """The lane's one-time schedules (None: none configured); quiet hours hold a night's mail in them too."""
        return self._scheduler

    def plan(self, candidates: Sequence[Candidate]) -> list[Plan]:
        """One plan per candidate, in order; a failed read plans a retry of every request that needed it."""
        plans = [SEND] * len(candidates)
        wanted = [i for i, c in enumerate(candidates) if c.request.send_at is not None or c.request.cancel_key]
        if not wanted:
            return plans
        keys = {
            scoped_cancel_key(c.request.producer, c.request.cancel_key)
            for c in (candidates[i] for i in wanted)
            if c.request.cancel_key
        }
        try:
            records = self._store.read({candidates[i].request_id for i in wanted})
            cancelled = self._store.cancelled_keys(keys) if keys else {}
        except Exception as exc:
            logger.warning("could not read scheduled records", extra={"count": len(wanted), "error": str(exc)})
            for i in wanted:
                plans[i] = Plan("retry", reason="schedule_store_unavailable")
            return plans
        for i in wanted:
            candidate = candidates[i]
            try:
                plans[i] = self._plan_one(candidate, records.get(candidate.request_id), cancelled)
            except Exception as exc:
                logger.warning(
                    "could not schedule request", extra={"request_id": candidate.request_id, "error": str(exc)}
                )
                plans[i] = Plan("retry", reason="scheduling_failed")
        return plans

    def _plan_one(self, candidate: Candidate, record: ScheduledRequest | None, cancelled: dict[str, float]) -> Plan:
        request = candidate.request
        if record is not None and record.status != STATUS_SCHEDULED:
            # Cancelled: the cancel recorded the outcome. Sent or otherwise final: the dedupe claim says so.
            return Plan("done") if record.status == STATUS_CANCELLED else SEND
        if request.cancel_key:
            at = cancelled.get(scoped_cancel_key(request.producer, request.cancel_key))
            published = (record.published_at if record else None) or candidate.published_at
            if at is not None and (published is None or published <= at):
                return self._cancel(candidate, record)
        now = self._clock()
        if record is None:
            send_at = request.send_at.timestamp() if request.send_at is not None else None
            when, _ = timing(send_at, now)
            if when == "due":
                return SEND
            assert send_at is not None
            existing = self._store.add(self._entry(candidate, send_at, now))
            if existing is not None:  # another delivery recorded it first: follow its record
                return self._plan_one(candidate, existing, cancelled)
        else:
            send_at = record.send_at
        return self._hold(candidate, send_at, now)

    def _hold(self, candidate: Candidate, send_at: float | None, now: float) -> Plan:
        when, seconds = timing(send_at, now)
        if when == "due":
            return SEND
        if when == "short":
            return Plan("defer", seconds=seconds, reason="scheduled")
        if self._scheduler is None:
            return Plan("retry", reason="scheduler_not_configured")
        assert send_at is not None
        # A schedule of that name may exist (a redelivery, or the record was rescheduled and moving the schedule
        # failed): the record is the truth, so the schedule is set to its send_at.
        created = hold_in_schedule(
            self._scheduler, schedule_name(candidate.request_id), at=send_at, body=candidate.body
        )
        logger.info(
            "request scheduled" if created else "request was scheduled already",
            extra={"request_id": candidate.request_id, "send_at": iso(send_at)},
        )
        return Plan("held")

    def _cancel(self, candidate: Candidate, record: ScheduledRequest | None) -> Plan:
        now = self._clock()
        send_at = record.send_at if record is not None else None
        result = self._store.cancel(
            candidate.request_id,
            at=now,
            reason="cancel_key",
            expires_at=int(max(send_at or now, now) + self._log_ttl_seconds),
        )
        if result.status == STATUS_CANCELLED:
            logger.info("request cancelled by its cancel_key", extra={"request_id": candidate.request_id})
            return Plan("done")
        return SEND  # sent or in flight meanwhile: the dedupe claim decides

    def _entry(self, candidate: Candidate, send_at: float, now: float) -> ScheduleEntry:
        request = candidate.request
        return ScheduleEntry(
            request=ScheduledRequest(
                request_id=candidate.request_id,
                status=STATUS_SCHEDULED,
                send_at=send_at,
                published_at=candidate.published_at or now,
                lane=self._lane,
                producer=request.producer,
                user_id=candidate.user_id,
                template_id=request.template_id,
                recipient_masked=mask_address(request.recipient_email),
                cancel_key=request.cancel_key,
            ),
            recipient_hash=candidate.recipient_hash,
            recorded_at=now,
            expires_at=int(send_at + self._log_ttl_seconds),
        )


@dataclass(frozen=True)
class KeyCancellation:
    """What `cancel --key` did: when the key was cancelled, and each scheduled request it found."""

    key: str
    at: float
    results: tuple[CancelResult, ...]


class ScheduleDesk:
    """Cancel, reschedule and list scheduled requests: what the CLI, the SDK and the API call."""

    def __init__(
        self,
        *,
        store: ScheduleStore,
        scheduler: Scheduler | None,
        log_ttl_seconds: int = 90 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        self._log_ttl_seconds = log_ttl_seconds
        self._clock = clock

    def cancel(self, request_id: str) -> CancelResult:
        """Cancel a request that is scheduled or not seen yet; a sent (or otherwise final) one is left as it is."""
        now = self._clock()
        records = self._store.read([request_id])
        record = records.get(request_id)
        send_at = record.send_at if record is not None else None
        result = self._store.cancel(
            request_id,
            at=now,
            reason="cancelled",
            expires_at=int(max(send_at or now, now) + self._log_ttl_seconds),
        )
        if result.changed:
            self._drop_schedule(request_id)
        return result

    def cancel_key(self, key: str, *, producer: str | None = None) -> KeyCancellation:
        """Cancel every request with this cancel_key published before now: those recorded and those still queued."""
        now = self._clock()
        self._store.cancel_key(scoped_cancel_key(producer, key), at=now, expires_at=int(now + CANCEL_KEY_TTL_SECONDS))
        found = self._store.scheduled(producer or SCHEDULE_OWNER_NONE, cancel_key=key, limit=1000)
        return KeyCancellation(key, now, tuple(self.cancel(item.request_id) for item in found))

    def reschedule(self, request_id: str, send_at: float) -> CancelResult:
        """Move a scheduled request's send_at (a time past means now); a request no longer scheduled is left."""
        now = self._clock()
        if send_at - now > MAX_SCHEDULE_AHEAD_SECONDS:
            raise InvalidSendAtError(f"send_at is at most {MAX_SCHEDULE_AHEAD_SECONDS // 86400} days ahead")
        result = self._store.reschedule(
            request_id, send_at=send_at, expires_at=int(max(send_at, now) + self._log_ttl_seconds)
        )
        if result.changed and self._scheduler is not None:
            # A long schedule moves with the record; a short one (an SQS delay) is held again by the worker
            # when it arrives, by the record's new send_at.
            try:
                self._scheduler.update(schedule_name(request_id), at=max(send_at, now + MIN_SCHEDULE_LEAD_SECONDS))
            except Exception:
                logger.warning("could not move the schedule; the worker holds it by the record", exc_info=True)
        return result

    def scheduled(
        self, *, producer: str | None = None, user_id: str | None = None, limit: int = 100
    ) -> list[ScheduledRequest]:
        """The scheduled requests of a producer (default: those naming none), soonest first."""
        return self._store.scheduled(producer or SCHEDULE_OWNER_NONE, user_id=user_id, limit=limit)

    def _drop_schedule(self, request_id: str) -> None:
        # Best effort: the record's state is the guarantee, a schedule left behind fires into a dropped request.
        if self._scheduler is None:
            return
        try:
            self._scheduler.delete(schedule_name(request_id))
        except Exception:
            logger.warning("could not delete the schedule of a cancelled request", exc_info=True)
