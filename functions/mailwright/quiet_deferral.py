"""Quiet hours in the send worker: whether a request waits for the end of its recipient's night, and how long.

The worker asks `quiet_hours_deferral` once the recipient's preferences are
loaded. Mail of a category that respects quiet hours (marketing and product
unless context says otherwise), for a recipient whose clock is inside their
quiet window, waits without using up the receive count that leads to the DLQ,
and is never dropped:

- a wait longer than SQS's longest delay (900 s) on a lane with a scheduler
  is one EventBridge Scheduler one-time schedule that puts the record's body
  back on its lane queue at the resume time (`quiet_schedule_name`: a
  redelivery finds the schedule taken, the next night gets its own), and the
  record is acked;
- a shorter wait, or any wait on a worker without a scheduler (benchmarks,
  fakes built without one), is handed back through the deferral port: a new
  message with a delay of at most 900 s, so a night is then several hops.

Either way the request comes back through the whole pipeline, quiet check
included (a preference changed meanwhile counts). Essential mail (security,
transactional) and the critical lane never wait.

The mail goes at the window's end plus a jitter of up to
`QUIET_HOURS_JITTER_SECONDS`, drawn from the request id and the window's
end: the same for every hop of one request, different between requests, so
a night's backlog spreads over minutes instead of all arriving at 08:00:00.
The hops are spaced evenly so the last one lands on that instant.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from mailwright.constants import ESSENTIAL_CATEGORIES
from mailwright.ports import Preferences
from mailwright.quiet_hours import in_quiet_hours
from mailwright.scheduling import SCHEDULE_NAME_PREFIX

# The deferral reason on the message, in the message log and in the QuietHoursDeferred metric.
REASON_QUIET_HOURS = "quiet_hours"
# SQS's longest message delay: a longer wait is several hops.
MAX_HOP_SECONDS = 900
# Mail held overnight goes within this many seconds after the window ends. At most half a hop, so
# every hop but the last lands before the window's end (see `quiet_hours_deferral`).
QUIET_HOURS_JITTER_SECONDS = 300
assert QUIET_HOURS_JITTER_SECONDS <= MAX_HOP_SECONDS // 2


@dataclass(frozen=True)
class QuietDeferral:
    """Hand the request back for `seconds`; it may go at `resume_at` (epoch seconds), after `hops` more hops."""

    seconds: int
    resume_at: float
    hops: int


def quiet_schedule_name(request_id: str, resume_at: float) -> str:
    """The schedule holding a request until `resume_at`: the same for every delivery of one night, at most 64 chars."""
    # `mailwright-quiet-` + a 32-character request id + epoch seconds (10 digits until 2286): 60 characters.
    return f"{SCHEDULE_NAME_PREFIX}quiet-{request_id}-{math.ceil(resume_at)}"


def respects_quiet_hours(category: str, *, lane: str, priority: str, categories: Collection[str]) -> bool:
    """Whether mail of `category` on `lane` (template priority `priority`) waits for quiet hours to end."""
    if category in ESSENTIAL_CATEGORIES or lane == "critical" or priority == "critical":
        return False
    return category in categories


def jitter_seconds(request_id: str, window_end: datetime, spread: int = QUIET_HOURS_JITTER_SECONDS) -> float:
    """A request's delay past its window's end, in [0, spread): stable for one request and one night."""
    digest = hashlib.sha256(f"{request_id}|{window_end.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * spread


def quiet_hours_deferral(
    *,
    request_id: str,
    category: str,
    lane: str,
    priority: str,
    preferences: Preferences,
    request_timezone: str | None,
    now: float,
    categories: Collection[str],
) -> QuietDeferral | None:
    """The deferral a request needs because of its recipient's quiet hours, or None when it may go now."""
    if not respects_quiet_hours(category, lane=lane, priority=priority, categories=categories):
        return None
    end = in_quiet_hours(preferences, request_timezone, datetime.fromtimestamp(now, UTC))
    if end is None:
        return None
    resume_at = end.timestamp() + jitter_seconds(request_id, end)
    wait = max(1.0, resume_at - now)
    # Evenly spaced hops of at most 900 s: with n >= 2 hops each is over 450 s, longer than the jitter,
    # so every hop before the last lands inside the window and checks it again.
    hops = math.ceil(wait / MAX_HOP_SECONDS)
    seconds = min(MAX_HOP_SECONDS, max(1, math.ceil(wait / hops)))
    return QuietDeferral(seconds=seconds, resume_at=resume_at, hops=hops)
