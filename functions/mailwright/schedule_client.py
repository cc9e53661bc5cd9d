"""The producer SDK's schedules client: cancel, reschedule and list scheduled sends with boto3.

It is the same domain service as `mailwright cancel`, `reschedule` and
`scheduled list` (mailwright.scheduling.ScheduleDesk), so the rules are the
same: only a `scheduled` request (or one not processed yet) is cancelled, a sent
one is left as it is and the result says so::

    from datetime import UTC, datetime, timedelta
    from mailwright.sdk import Schedules, send

    request_id = send({"recipient_email": "jane@example.com", "template_id": "welcome_email",
                       "send_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(), "cancel_key": "signup-42"})
    schedules = Schedules(messages_table="mailwright-messages", idempotency_table="mailwright-idempotency",
                          schedule_group="mailwright-schedules")
    schedules.reschedule(request_id, datetime.now(UTC) + timedelta(days=2))
    schedules.cancel(request_id).changed              # True: it was still scheduled
    schedules.cancel_key("signup-42").results         # every request published with that key before now

The caller needs dynamodb:BatchGetItem, UpdateItem and Query on the messages
table (and its by-schedule index), PutItem on the idempotency table (a cancel
takes the request's dedupe claim, in one TransactWriteItems), and for long
schedules scheduler:GetSchedule, UpdateSchedule and DeleteSchedule on the group
(with iam:PassRole on the scheduler role and the schedules' key, to move one).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime

import boto3

from mailwright.adapters.aws import client_config
from mailwright.adapters.dynamodb_schedules import DynamoScheduleStore
from mailwright.adapters.scheduler import EventBridgeScheduler
from mailwright.ports import CancelResult, ScheduledRequest
from mailwright.scheduling import InvalidSendAtError, KeyCancellation, ScheduleDesk, parse_send_at

__all__ = ["InvalidSendAtError", "SchedulesClient"]

# Where `SchedulesClient.from_env()` finds the stack.
ENV_MESSAGES_TABLE = "MAILWRIGHT_MESSAGES_TABLE"
ENV_IDEMPOTENCY_TABLE = "MAILWRIGHT_IDEMPOTENCY_TABLE"
ENV_SCHEDULE_GROUP = "MAILWRIGHT_SCHEDULE_GROUP"


class SchedulesClient:
    """Cancel, reschedule and list a stack's scheduled requests (the stack's outputs name the tables and group)."""

    def __init__(
        self,
        *,
        messages_table: str,
        idempotency_table: str,
        schedule_group: str | None = None,
        producer: str | None = None,
        session: boto3.session.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        session = session or boto3.session.Session()
        dynamodb = session.client("dynamodb", config=client_config(max_attempts=5, pool=4))
        store = DynamoScheduleStore(dynamodb, messages_table=messages_table, idempotency_table=idempotency_table)
        scheduler = (
            EventBridgeScheduler(
                lambda: session.client("scheduler", config=client_config(max_attempts=3, pool=4)), group=schedule_group
            )
            if schedule_group
            else None
        )
        self._desk = ScheduleDesk(store=store, scheduler=scheduler, clock=clock)
        self._producer = producer

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: object) -> SchedulesClient:
        """A client for the tables and group in MAILWRIGHT_MESSAGES_TABLE, _IDEMPOTENCY_TABLE, _SCHEDULE_GROUP."""
        env = os.environ if environ is None else environ
        missing = [key for key in (ENV_MESSAGES_TABLE, ENV_IDEMPOTENCY_TABLE) if not env.get(key)]
        if missing:
            raise ValueError(f"set {', '.join(missing)} (the stack's MessagesTableName and IdempotencyTableName)")
        return cls(
            messages_table=env[ENV_MESSAGES_TABLE],
            idempotency_table=env[ENV_IDEMPOTENCY_TABLE],
            schedule_group=env.get(ENV_SCHEDULE_GROUP) or None,
            **kwargs,  # type: ignore[arg-type]
        )

    def cancel(self, request_id: str) -> CancelResult:
        """Cancel a request still scheduled (or not processed yet); `changed` is False when it was too late."""
        return self._desk.cancel(request_id)

    def cancel_key(self, key: str) -> KeyCancellation:
        """Cancel every request this producer published with `key` as cancel_key before now."""
        return self._desk.cancel_key(key, producer=self._producer)

    def reschedule(self, request_id: str, send_at: datetime | str) -> CancelResult:
        """Move a scheduled request to `send_at` (an aware datetime, or ISO 8601 text with an offset)."""
        if isinstance(send_at, str):
            at = parse_send_at(send_at)
        elif send_at.tzinfo is None:
            raise InvalidSendAtError("send_at needs a UTC offset (an aware datetime)")
        else:
            at = send_at.timestamp()
        return self._desk.reschedule(request_id, at)

    def scheduled(self, *, user_id: str | None = None, limit: int = 100) -> list[ScheduledRequest]:
        """This producer's scheduled requests, soonest first (a user's only, with `user_id`)."""
        return self._desk.scheduled(producer=self._producer, user_id=user_id, limit=limit)
