"""EventBridge Scheduler on the local stack: schedules kept in moto, run in-process by one timer each.

moto stores one-time schedules (names unique per group, ConflictException on
a second create) but never runs them. `LocalScheduler` is the workers' Scheduler
port: it creates, moves and deletes schedules in moto like the real adapter,
and arms a timer per schedule. When a timer fires it reads the schedule from
moto: gone (a cancel deleted it, from this process or from the CLI), nothing
happens; moved later (a reschedule), the timer is armed again; otherwise the
target's Input goes on the target queue and the schedule is deleted, as
`ActionAfterCompletion: DELETE` does. No table is polled: one timer per schedule.

One difference: a schedule the CLI moved earlier runs at its old time (the
timer was armed in this process); a move later, or any move made through the
workers, is exact.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mailwright.adapters.scheduler import EventBridgeScheduler, ScheduleTarget

logger = logging.getLogger(__name__)


def expression_time(expression: str) -> float:
    """The epoch seconds of an `at(YYYY-MM-DDTHH:MM:SS)` expression (UTC)."""
    inner = expression.strip().removeprefix("at(").removesuffix(")")
    return datetime.strptime(inner, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()


class LocalScheduler:
    """The Scheduler port over moto, run in-process: one timer per schedule, which puts its Input on the queue."""

    def __init__(
        self,
        *,
        scheduler_client: Callable[[], Any],
        sqs_client: Callable[[], Any],
        group: str,
        target: ScheduleTarget,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._adapter = EventBridgeScheduler(scheduler_client, group=group, target=target)
        self._scheduler = scheduler_client
        self._sqs = sqs_client
        self._group = group
        self._clock = clock
        self._timers: dict[str, threading.Timer] = {}
        self._lock = threading.Lock()
        self._stopped = False
        self.fired: list[str] = []

    def create(self, name: str, *, at: float, body: str) -> bool:
        """Create in moto and arm the timer; False when the name is taken."""
        created = self._adapter.create(name, at=at, body=body)
        if created:
            self._arm(name, at)
        return created

    def update(self, name: str, *, at: float) -> bool:
        """Move in moto and arm the timer again; False when there is no such schedule."""
        moved = self._adapter.update(name, at=at)
        if moved:
            self._arm(name, at)
        return moved

    def delete(self, name: str) -> bool:
        """Delete in moto and disarm the timer."""
        with self._lock:
            timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        return self._adapter.delete(name)

    def stop(self) -> None:
        """Disarm every timer (the local stack is stopping)."""
        with self._lock:
            self._stopped = True
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()

    def _arm(self, name: str, at: float) -> None:
        with self._lock:
            if self._stopped:
                return
            old = self._timers.pop(name, None)
            timer = threading.Timer(max(0.0, at - self._clock()), self._fire, args=(name,))
            timer.daemon = True
            self._timers[name] = timer
        if old is not None:
            old.cancel()
        timer.start()

    def _fire(self, name: str) -> None:
        with self._lock:
            self._timers.pop(name, None)
        try:
            found = self._scheduler().get_schedule(Name=name, GroupName=self._group)
        except Exception:  # deleted (a cancel), or moto is stopping: nothing to run
            return
        at = expression_time(str(found["ScheduleExpression"]))
        if at > self._clock() + 0.5:  # moved later meanwhile
            self._arm(name, at)
            return
        target = found["Target"]
        try:
            queue_url = self._sqs().get_queue_url(QueueName=str(target["Arn"]).rsplit(":", 1)[-1])["QueueUrl"]
            self._sqs().send_message(QueueUrl=queue_url, MessageBody=target["Input"])
            self._scheduler().delete_schedule(Name=name, GroupName=self._group)
        except Exception:
            logger.exception("local schedule could not run", extra={"schedule": name})
            return
        self.fired.append(name)
