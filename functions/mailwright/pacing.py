"""Pacing: keep the account's SES calls under its send rate, critical mail first, and never pay for waiting.

Every worker of every lane takes its tokens from one shared token bucket, the
account's (`RateRegistry`; a DynamoDB item deployed). The bucket is a GCRA:
one theoretical arrival time (TAT) that each granted send pushes forward by
1/R. Priority is how far ahead of now a lane may push it (its reach): the
whole burst (one second of sends, as SES allows) for critical mail and for any
lane while no higher lane sends; while a higher lane sends, standard stops
0.15 s short of the burst and bulk 0.3 s short (`LANE_HEADROOM`), so critical
mail always finds tokens within reach and, once it sends, the lower lanes find
none. A lane that sends nothing holds nothing: every grant records the lane as
sending, and the headroom it needs is left free only while it has sent within
the last `ACTIVE_SECONDS`.

A worker never sleeps long for a token. `take` grants only the tokens free
now or within the lane's short `max_wait`, and standard and bulk take at
least `MIN_GRANT` at a time (a trickle is left to accumulate, so an
invocation sends a batch); any record, new or returning, may take a free
token (work-conserving). The rest of the batch is handed back to the queue
(`Deferrals`) with a delay booked in the lane's schedule, so a backlog waits
in SQS (free) instead of in a billed Lambda. Slots are booked so that a
record comes back about once, when there is a token for it: after the mail
the higher lanes have booked, at the account's current rate but no more
slots a second than one take can be granted (a second's slots come back
together), and while a higher lane's booked mail comes back the lower lanes
yield the bucket to it. Tokens are taken for when the batch's sends will
start (its `lead`, learnt per batch), so a batch whose sends start late
does not bunch them up with other workers'.

The rate itself (`AccountPacer.effective_rate`) follows the account:
SES's `MaxSendRate` (read with GetAccount by one worker every few minutes and
shared through the registry), the optional `ses_max_send_rate` ceiling, and
SES's throttling answers, which cut the rate and let it recover along a cubic
curve (as TCP CUBIC: quickly back to just under the rate that was throttled,
slowly past it). The daily quota is another limit: bulk mail is held at 90%
of `Max24HourSend`, standard at 97%, so critical mail keeps the rest.

`Pacer` is a worker-local token bucket with the same interface, for tests,
benchmarks and the fallback when the registry cannot be reached.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from mailwright.constants import LANES
from mailwright.ports import AccountReader, AccountState, RateRegistry, TakeResult

logger = logging.getLogger(__name__)

# SES accepts short bursts above its rate; the bucket holds this many seconds of sends.
BURST_SECONDS = 1.0
# How much of the burst (in bursts) a lane leaves free while a higher-priority lane is sending: the
# 0.3 s between critical and bulk is there for critical mail at once. A lane whose higher lanes have not
# sent for ACTIVE_SECONDS uses the whole burst, so an idle lane holds no share.
LANE_HEADROOM: dict[str, float] = {"critical": 0.0, "standard": 0.15, "bulk": 0.3}
ACTIVE_SECONDS = 1.0
# Tokens of SES's burst the pacer never uses: a send that starts late lets the next ones bunch up.
SLACK_TOKENS = 1
# A worker takes its tokens for when its sends will start: the time from pacing to the first send,
# learnt per batch, at most MAX_LEAD_SECONDS. A longer time is followed at once, a shorter one slowly
# (moving average with LEAD_WEIGHT): a late send risks a throttle, an early one only waits a little.
LEAD_WEIGHT = 0.2
MAX_LEAD_SECONDS = 0.5
# A new worker's guess until its first batch has been measured (a cold batch loads templates too).
DEFAULT_LEAD_SECONDS = 0.2
# The fewest tokens a take of standard or bulk mail accepts (critical: one). An invocation costs its
# fixed time (the round trips, SES's 50 ms) however few it sends: while a lane's tokens trickle in one
# at a time, a take that would get one or two leaves them to accumulate (within the lane's reach) for
# a batch that sends several together. Below the reach in tokens, so a whole grant still fits.
MIN_GRANT: dict[str, int] = {"critical": 1, "standard": 4, "bulk": 4}
# A lower lane yields the bucket while a higher lane has more than this much deferred mail booked ahead.
YIELD_MARGIN_SECONDS = 1.0
# A lane whose schedule was booked past the 15 minutes SQS can delay a message is not asked again for
# this long: its records come back after 15 minutes meanwhile, as they would from the schedule.
SCHEDULE_FULL_SECONDS = 10.0
# SQS DelaySeconds: whole seconds, at most 15 minutes.
MIN_DEFER_SECONDS = 1
MAX_DEFER_SECONDS = 900
# Adaptive rate: a throttle cuts the rate by BETA; the rate is back where it was throttled
# after RECOVER_SECONDS and probes above it after that. One cut per CONGESTION_GAP_SECONDS
# for the whole fleet (a burst of refusals is one congestion event), never below MIN_RATE_FRACTION.
CUBIC_BETA = 0.2
RECOVER_SECONDS = 10.0
CONGESTION_GAP_SECONDS = 1.0
MIN_RATE_FRACTION = 0.1
# How often one worker reads the quota from SES: every few minutes, sooner near a hold
# threshold, after a throttle (the rate may have changed) or while the daily quota is used up.
QUOTA_REFRESH_SECONDS = 300.0
QUOTA_REFRESH_NEAR_HOLD_SECONDS = 30.0
QUOTA_REFRESH_AFTER_THROTTLE_SECONDS = 10.0
QUOTA_REFRESH_EXHAUSTED_SECONDS = 60.0
# While no worker has read the quota yet, one may claim the read every this many seconds.
UNKNOWN_QUOTA_CLAIM_SECONDS = 1.0
# Within this share of a hold threshold, the quota is read at the faster pace.
NEAR_HOLD_MARGIN = 0.05
# A throttled send comes back after 1-3 s, when the rate has been cut.
THROTTLE_DEFER_SECONDS = (1, 3)
# The daily quota is tracked by default from these shares of Max24HourSend on (critical: never held).
DEFAULT_QUOTA_HOLDS: dict[str, float] = {"bulk": 0.90, "standard": 0.97}

# Why mail was handed back to its queue.
REASON_PACED = "paced"
REASON_DEADLINE = "deadline"
REASON_THROTTLED = "throttled"
REASON_QUOTA_HOLD = "quota_hold"
REASON_QUOTA_EXHAUSTED = "quota_exhausted"


@dataclass(frozen=True)
class Grant:
    """Tokens for a batch: when each granted send may start (monotonic clock); the delays of the rest."""

    starts: tuple[float, ...] = ()
    defer_seconds: tuple[int, ...] = ()
    reason: str = REASON_PACED

    @property
    def granted(self) -> int:
        """How many sends may go now."""
        return len(self.starts)


class SendPacer(Protocol):
    """What the send pipeline paces with."""

    def take(self, count: int, *, deadline: float | None = None) -> Grant:
        """Tokens for up to `count` sends, none usable after `deadline` (monotonic clock) or the pacer's wait."""
        ...

    def wait_for(self, start: float) -> None:
        """Sleep until a granted send's start (never long: grants are within the pacer's wait)."""
        ...

    def give_back(self, count: int) -> None:
        """Return tokens that were granted but not used (the request was suppressed, a duplicate...)."""
        ...

    def throttled(self) -> int:
        """SES refused a send for its rate: slow down; the delay to hand the refused record back with."""
        ...

    def quota_exceeded(self) -> int:
        """SES refused a send for the daily quota; the delay to hand the refused record back with."""
        ...

    def quota_report(self) -> float | None:
        """The share of the daily quota used, once after each time this worker read it from SES (else None)."""
        ...


def clamp_delay(seconds: float) -> int:
    """A delay SQS accepts (DelaySeconds): a whole number of seconds, 1 to 900."""
    return max(MIN_DEFER_SECONDS, min(MAX_DEFER_SECONDS, math.ceil(seconds)))


def gcra_grant(
    *, tat: float, now: float, count: int, interval: float, reach: float, max_wait: float, minimum: int = 1
) -> tuple[int, float, float]:
    """How many of `count` tokens a GCRA bucket grants at `now`; (granted, base, new arrival time).

    base = max(tat, now). Token j is usable once the arrival time before it is
    within `reach` of the clock, at max(now, base + j * interval - reach), and
    granted if that is at most `max_wait` away. Fewer than `minimum` (at most
    `count`) usable tokens are not granted at all: they are left to accumulate.
    """
    base = max(tat, now)
    # Differences first, and a thousandth of a token of tolerance: epoch seconds hold only about seven
    # decimals of a second.
    ahead = base - now
    if ahead - reach > max_wait + interval * 1e-3:
        return 0, base, tat
    # The last j with base + j * interval - reach <= now + max_wait.
    fits = math.floor((max_wait + reach - ahead) / interval + 1e-3) + 1
    if fits < min(count, max(1, minimum)):
        return 0, base, tat
    granted = max(1, min(count, fits))
    return granted, base, base + granted * interval


def per_take(interval: float, reach: float, max_wait: float) -> int:
    """The most tokens one take can be granted from an idle bucket: those within the reach and the wait."""
    return math.floor((reach + max_wait) / interval + 1e-3) + 1


def token_start(base: float, j: int, *, now: float, interval: float, reach: float) -> float:
    """When token j of a take is usable (wall clock)."""
    return max(now, base + j * interval - reach)


class Pacer:
    """A worker-local, thread-safe token bucket: `rate` sends per second, `burst` back to back after idling.

    With `max_wait`, `take` grants only tokens usable within that many seconds
    (the rest are deferred); without, it grants them all and the sends wait.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        max_wait: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.max_wait = max_wait
        self._capacity = max(1.0, burst)
        self._tokens = self._capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()
        self._rng = random.Random()

    def _refill(self, now: float) -> None:
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def set_rate(self, rate: float) -> None:
        """Change the rate from now on."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        with self._lock:
            self._refill(self._clock())
            self.rate = rate

    def reserve(self, *, deadline: float | None = None, max_wait: float | None = None) -> tuple[bool, float]:
        """Reserve the next token unless its wait passes `deadline` (clock time) or `max_wait`; (reserved, wait)."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
            if (deadline is not None and now + wait > deadline) or (max_wait is not None and wait > max_wait):
                return False, wait
            # Reserve the token now; the wait happens outside the lock so others can queue behind.
            self._tokens -= 1
            return True, wait

    def acquire(self, *, deadline: float | None = None) -> bool:
        """Wait for a token; False (and no token taken) if it would come after `deadline` (clock time)."""
        reserved, wait = self.reserve(deadline=deadline)
        if reserved and wait > 0:
            self._sleep(wait)
        return reserved

    def take(self, count: int, *, deadline: float | None = None) -> Grant:
        """Reserve tokens for up to `count` sends; the rest are deferred to when tokens come (in arrival order)."""
        starts: list[float] = []
        reason = REASON_PACED
        with self._lock:
            now = self._clock()
            self._refill(now)
            for _ in range(count):
                wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
                if deadline is not None and now + wait > deadline:
                    reason = REASON_DEADLINE
                    break
                if self.max_wait is not None and wait > self.max_wait:
                    break
                self._tokens -= 1
                starts.append(now + wait)
            next_wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
        rest = count - len(starts)
        delays = tuple(clamp_delay(next_wait + i / self.rate) for i in range(rest))
        return Grant(tuple(starts), delays, reason)

    def wait_for(self, start: float) -> None:
        """Sleep until `start` (clock time)."""
        wait = start - self._clock()
        if wait > 0:
            self._sleep(wait)

    def give_back(self, count: int) -> None:
        """Put unused tokens back (never above the burst)."""
        with self._lock:
            self._refill(self._clock())
            self._tokens = min(self._capacity, self._tokens + count)

    def throttled(self) -> int:
        """A fixed rate does not adapt: only the refused record's delay."""
        return self._rng.randint(*THROTTLE_DEFER_SECONDS)

    def quota_exceeded(self) -> int:
        """The daily quota is out: try again in a while."""
        return int(QUOTA_REFRESH_EXHAUSTED_SECONDS)

    def quota_report(self) -> float | None:
        """A local bucket knows nothing of the quota."""
        return None


def cubic_rate(congestion_rate: float, seconds_since: float) -> float:
    """The adaptive rate `seconds_since` a throttle at `congestion_rate`: cut by CUBIC_BETA, back after RECOVER."""
    x = (seconds_since - RECOVER_SECONDS) / RECOVER_SECONDS
    return congestion_rate * (1 + CUBIC_BETA * x**3)


def effective_rate(state: AccountState, *, now: float, ceiling: float | None, fallback: float) -> float:
    """The account rate every worker paces at now: SES's MaxSendRate (or `fallback`), the ceiling, the throttles."""
    quota = state.quota
    limit = quota.max_send_rate if quota is not None and quota.max_send_rate > 0 else fallback
    if ceiling is not None:
        limit = min(limit, ceiling)
    if state.congestion_at > 0 and state.congestion_rate > 0:
        adaptive = cubic_rate(state.congestion_rate, max(0.0, now - state.congestion_at))
        limit = min(limit, max(adaptive, limit * MIN_RATE_FRACTION))
    return max(limit, 1e-3)


def quota_used(state: AccountState) -> float | None:
    """The share of the daily quota used, as SES last reported it (None: not known)."""
    quota = state.quota
    if quota is None or quota.max_24_hour_send <= 0:
        return None
    return quota.sent_last_24_hours / quota.max_24_hour_send


class AccountPacer:
    """One worker's view of the account's shared bucket (`RateRegistry`), for one lane.

    The registry holds the bucket and the account state; this class turns them
    into grants for a batch, adapts the rate, holds the lane near the daily
    quota and, if the registry cannot be reached, falls back to a local bucket
    at `fallback_share` (the share that is safe with every worker busy).
    """

    def __init__(
        self,
        *,
        lane: str,
        registry: RateRegistry,
        account: AccountReader | None,
        ceiling: float | None,
        fallback_rate: float,
        fallback_share: float,
        max_wait: float,
        quota_holds: Mapping[str, float] | None = None,
        burst_seconds: float = BURST_SECONDS,
        refresh_seconds: float = QUOTA_REFRESH_SECONDS,
        lead: float = DEFAULT_LEAD_SECONDS,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if lane not in LANE_HEADROOM:
            raise ValueError(f"unknown lane {lane!r}")
        if fallback_rate <= 0 or fallback_share <= 0 or max_wait < 0:
            raise ValueError("fallback rates must be positive and max_wait not negative")
        self.lane = lane
        self._registry = registry
        self._account = account
        self._ceiling = ceiling
        self._fallback_rate = fallback_rate
        self._max_wait = max_wait
        self._holds = dict(DEFAULT_QUOTA_HOLDS if quota_holds is None else quota_holds)
        self._burst = burst_seconds
        self._higher = LANES[: LANES.index(lane)]
        self._refresh_seconds = refresh_seconds
        self._wall = wall_clock
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._local = Pacer(fallback_share, max_wait=max_wait, clock=clock, sleep=sleep)
        self._lock = threading.Lock()
        self._started = False
        self._fresh_quota = False
        self.state = AccountState()
        # The pipeline's time from a take to its first send (claims, lookups, rendering), learnt per batch.
        self._lead = lead
        self._taken_at: float | None = None
        self._schedule_full_until = 0.0

    # -- what the pipeline calls ------------------------------------------------------

    @property
    def rate(self) -> float:
        """The account rate this worker paces at now."""
        return self.effective_rate(self._wall())

    def effective_rate(self, now: float) -> float:
        """The account rate at `now`, from the state last seen."""
        return effective_rate(self.state, now=now, ceiling=self._ceiling, fallback=self._fallback_rate)

    def quota_used(self) -> float | None:
        """The share of the daily quota used, as last read from SES (None: unknown)."""
        return quota_used(self.state)

    def quota_report(self) -> float | None:
        """The share of the daily quota used, once after this worker read it from SES (one metric per read)."""
        with self._lock:
            fresh, self._fresh_quota = self._fresh_quota, False
        return quota_used(self.state) if fresh else None

    def reach(self, now: float, interval: float) -> float:
        """How far ahead of now this lane may push the bucket: the whole burst, less headroom while a higher lane sends.

        A GCRA whose arrival time may run `reach` ahead holds reach * R + 1
        tokens; the whole burst keeps SLACK_TOKENS fewer than SES's bucket of
        `burst_seconds` of sends, for sends that start a little late and bunch up.
        """
        full = max(0.0, self._burst - (1 + SLACK_TOKENS) * interval)
        active = self.state.lanes_active_at
        if any(now - active.get(lane, 0.0) < ACTIVE_SECONDS for lane in self._higher):
            return max(0.0, full - LANE_HEADROOM[self.lane] * self._burst)
        return full

    def yields(self, now: float) -> bool:
        """Whether a higher lane has more than a second of deferred mail booked to come back: this lane takes nothing.

        Its slots fill the bucket at the rate one of its takes can use, so mail returning to both lanes in
        the same second goes to the higher lane (this lane's own slots are booked after that mail).
        """
        booked = self.state.lanes_booked_until
        # In the higher lane's last second of booked mail, the usual headroom leaves it its tokens, and this
        # lane's mail returning in that second is not lost to the yield.
        return any(booked.get(lane, 0.0) > now + YIELD_MARGIN_SECONDS for lane in self._higher)

    @property
    def rate_known(self) -> bool:
        """Whether the account rate is known (SES's answer shared, or a configured ceiling), not a guess."""
        return self.state.quota is not None or self._ceiling is not None

    def minimum_grant(self, count: int, *, interval: float, reach: float, max_wait: float) -> int:
        """The fewest tokens worth a take of `count` records (fewer are left to accumulate), at most a take's worth."""
        return max(1, min(count, MIN_GRANT[self.lane], per_take(interval, reach, max_wait)))

    def take(self, count: int, *, deadline: float | None = None) -> Grant:
        """Tokens from the account's bucket for up to `count` sends; the rest get booked delays.

        Any record may take a token that is free now (work-conserving: new mail uses a share that nobody
        else is using); what is left is booked in the lane's schedule at the account's current rate.
        """
        if count <= 0:
            return Grant()
        now, mono = self._wall(), self._clock()
        self._refresh_if_due(now)
        hold = self.hold(now)
        if hold is not None:
            seconds = QUOTA_REFRESH_EXHAUSTED_SECONDS if hold == REASON_QUOTA_EXHAUSTED else MAX_DEFER_SECONDS
            return Grant((), (clamp_delay(seconds),) * count, hold)
        # Tokens are taken for when the sends will start, after the stages between pacing and sending: sends
        # that start later than their tokens would bunch up with other workers' (SES's bucket does not
        # fill beyond its burst while a worker is late).
        taken_at, lead = mono, self._lead
        wall, mono, now = now, mono + lead, now + lead
        max_wait = self._max_wait
        reason = REASON_PACED
        if deadline is not None and deadline - mono < max_wait:
            max_wait, reason = deadline - mono, REASON_DEADLINE
        if max_wait < 0:
            return Grant((), (MIN_DEFER_SECONDS,) * count, REASON_DEADLINE)
        known, interval = self.rate_known, 1.0 / self.effective_rate(now)
        reach = self.reach(now, interval)
        taking = 0.0 if self.yields(now) else reach
        try:
            result = (
                # Yielding to a higher lane's returning mail: no token, and no call to the registry.
                TakeResult(granted=0, base=now, state=self.state)
                if self.yields(now)
                else self._registry.take(
                    lane=self.lane,
                    count=count,
                    interval=interval,
                    reach=taking,
                    max_wait=max_wait,
                    now=now,
                    minimum=self.minimum_grant(count, interval=interval, reach=taking, max_wait=max_wait),
                )
            )
        except Exception as exc:
            logger.warning("send-rate registry unavailable: pacing at the fallback share", extra={"error": str(exc)})
            return self._local.take(count, deadline=deadline)
        with self._lock:
            self.state = result.state
        if result.granted and self.yields(now):
            # The answer says a higher lane booked mail since this worker last looked: its tokens go back.
            self.give_back(result.granted)
            result = TakeResult(granted=0, base=now, state=result.state)
        with self._lock:
            self._taken_at = taken_at if result.granted else None
        offset = mono - now  # wall-clock times to this worker's monotonic clock
        starts = tuple(
            token_start(result.base, j, now=now, interval=interval, reach=taking) + offset
            for j in range(result.granted)
        )
        rest = count - result.granted
        if not rest:
            return Grant(starts)
        if not known:
            # Booked at a guessed rate, the records could come back far too late: SES's answer is due
            # within a second, so they come back then and are paced at the real rate.
            return Grant(starts, (MIN_DEFER_SECONDS,) * rest, reason)
        # The first moment this lane could take again: after what it was just granted.
        earliest = token_start(result.base, result.granted, now=now, interval=interval, reach=taking)
        # The rest take slots in the lane's schedule and come back when theirs is due: a backlog waits in the
        # queue (free), not in a worker, and returns at the pace the lane can send at now.
        slots = self.booking_interval(interval, reach, max_wait)
        return Grant(starts, self._book(rest, max(wall + MIN_DEFER_SECONDS, earliest), slots, wall), reason)

    def booking_interval(self, interval: float, reach: float, max_wait: float) -> float:
        """Seconds between two booked slots: the account's current rate, or what one take can get if less.

        Slots in the same second come back together (SQS delays are whole seconds) and are taken at once:
        a second holds no more slots than a take at its start can be granted, the tokens within the lane's
        reach and wait (fewer while a higher lane sends: the headroom left to it is its share).
        """
        return max(interval, 1.0 / per_take(interval, reach, max_wait))

    def wait_for(self, start: float) -> None:
        """Sleep until a granted send's start; the batch's first call measures the pipeline's lead."""
        now = self._clock()
        with self._lock:
            if self._taken_at is not None:
                observed = min(max(0.0, now - self._taken_at), MAX_LEAD_SECONDS)
                self._lead = max(observed, (1 - LEAD_WEIGHT) * self._lead + LEAD_WEIGHT * observed)
                self._taken_at = None
        wait = start - now
        if wait > 0:
            self._sleep(wait)

    @property
    def lead(self) -> float:
        """How long this worker's batches take from pacing to their first send (seconds, learnt)."""
        return self._lead

    def give_back(self, count: int) -> None:
        """Return unused tokens to the account's bucket."""
        if count <= 0:
            return
        now = self._wall()
        try:
            self._registry.give_back(seconds=count / self.effective_rate(now), now=now)
        except Exception as exc:
            logger.warning("could not give tokens back", extra={"error": str(exc)})

    def throttled(self) -> int:
        """SES refused a send for its rate: cut the rate here at once and for every worker; the record's delay."""
        now = self._wall()
        rate = self.effective_rate(now)
        with self._lock:
            if now - self.state.congestion_at >= CONGESTION_GAP_SECONDS:
                self.state = replace(self.state, congestion_rate=rate, congestion_at=now)
                cut = True
            else:
                cut = False
        if cut:
            try:
                self._registry.congested(rate=rate, now=now, min_gap=CONGESTION_GAP_SECONDS)
            except Exception as exc:
                logger.warning("could not share a throttle", extra={"error": str(exc)})
        return self._rng.randint(*THROTTLE_DEFER_SECONDS)

    def quota_exceeded(self) -> int:
        """SES refused a send for the daily quota: hold every lane until SES reports room again."""
        now = self._wall()
        with self._lock:
            self.state = replace(self.state, quota_exhausted_at=now)
        try:
            self._registry.quota_exhausted(now=now)
        except Exception as exc:
            logger.warning("could not share an exhausted quota", extra={"error": str(exc)})
        return clamp_delay(QUOTA_REFRESH_EXHAUSTED_SECONDS)

    # -- the daily quota ----------------------------------------------------------------

    def hold(self, now: float) -> str | None:
        """Why this lane may not send now (the daily quota), or None."""
        state = self.state
        if state.quota_exhausted_at and state.quota_exhausted_at >= state.quota_read_at:
            return REASON_QUOTA_EXHAUSTED
        used = quota_used(state)
        threshold = self._holds.get(self.lane)
        if used is not None and threshold is not None and used >= threshold:
            return REASON_QUOTA_HOLD
        return None

    def refresh_interval(self, now: float) -> float:
        """How old the shared quota may be before a worker reads it from SES again."""
        state = self.state
        if state.quota_exhausted_at and state.quota_exhausted_at >= state.quota_read_at:
            return QUOTA_REFRESH_EXHAUSTED_SECONDS
        if state.congestion_at > state.quota_read_at:
            return QUOTA_REFRESH_AFTER_THROTTLE_SECONDS
        used = quota_used(state)
        if used is not None and self._holds and used >= min(self._holds.values()) - NEAR_HOLD_MARGIN:
            return min(self._refresh_seconds, QUOTA_REFRESH_NEAR_HOLD_SECONDS)
        return self._refresh_seconds

    def _refresh_if_due(self, now: float) -> None:
        if not self._started:
            # A new worker learns the shared state first, so its first take is at the account's rate.
            self._started = True
            try:
                self.state = self._registry.read_state()
            except Exception as exc:
                logger.warning("could not read the shared send-rate state", extra={"error": str(exc)})
        if self._account is None or now - self.state.quota_read_at < self.refresh_interval(now):
            return
        try:
            # One worker per interval asks SES; the others read its answer from the registry (a fleet that
            # has never read it retries the claim every second, and looks for the answer meanwhile).
            unknown = self.state.quota is None
            gap = UNKNOWN_QUOTA_CLAIM_SECONDS if unknown else min(self.refresh_interval(now), 10.0)
            if not self._registry.claim_refresh(now=now, min_gap=gap):
                if unknown:
                    self.state = self._registry.read_state()
                return
            quota = self._account.read()
            state = self._registry.store_quota(quota, now=now)
        except Exception as exc:
            logger.warning("could not refresh the SES sending quota", extra={"error": str(exc)})
            return
        with self._lock:
            self.state = state
            self._fresh_quota = True
        logger.info(
            "SES sending quota",
            extra={
                "max_send_rate": quota.max_send_rate,
                "max_24_hour_send": quota.max_24_hour_send,
                "sent_last_24_hours": quota.sent_last_24_hours,
            },
        )

    # -- deferrals ------------------------------------------------------------------------

    def _book(self, count: int, earliest: float, interval: float, now: float) -> tuple[int, ...]:
        """Delays for `count` deferred records: slots booked in the lane's schedule, one `interval` apart."""
        if now < self._schedule_full_until:
            return (MAX_DEFER_SECONDS,) * count
        try:
            # After the higher lanes' booked mail: this lane's comes back once theirs has been sent, instead
            # of meeting it at the same second and losing the tokens to it (a second deferral).
            first = self._registry.schedule(
                lane=self.lane,
                count=count,
                interval=interval,
                now=earliest,
                horizon=now + MAX_DEFER_SECONDS,
                after=self._higher,
            )
        except Exception as exc:
            logger.warning("could not book deferral slots", extra={"error": str(exc)})
            first = earliest
        if first is None:  # the schedule is full for the next 15 minutes: come back then and try again
            # A long backlog stays full for a while: the next batches need not ask.
            self._schedule_full_until = now + SCHEDULE_FULL_SECONDS
            return (MAX_DEFER_SECONDS,) * count
        # A slot in [k, k + 1) s from now comes back after k s: the records of one second of slots return
        # together at its start and are sent over it (SQS delays are whole seconds).
        return tuple(clamp_delay(math.floor(first - now + i * interval + 1e-6)) for i in range(count))
