"""Pacing: keep a worker's SES calls under its share of the account's send rate.

Two kinds of share. A fixed one (`Pacer`): the account's rate divided by every
worker that may run, so the lanes together never exceed it however busy they
are; the critical lane uses it, so its latency never waits on anyone. A pooled
one (`PooledPacer`): the standard and bulk lanes split what the critical lane's
fixed shares leave among the workers actually sending, found through a small
shared registry (`RateShares`). A bulk campaign drained alone then gets the
whole pool instead of the slice it would get if every lane were busy, which is
faster and, since a paced worker is billed while it waits, cheaper per email.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from mailwright.ports import RateShares

logger = logging.getLogger(__name__)

# The shortest wait between two looks at the bucket when a token is out of reach.
MIN_RECHECK_SECONDS = 0.05


class Pacer:
    """A thread-safe token bucket: `acquire` blocks until a send may start.

    `rate` is sends per second; `burst` is how many may start back to back
    after an idle spell (1 keeps the sends evenly spaced).
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._capacity = max(1.0, burst)
        self._tokens = self._capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def begin(self) -> None:
        """A batch starts sending (nothing to do for a fixed share)."""

    def end(self) -> None:
        """The batch has sent what it will (nothing to do for a fixed share)."""

    def _refill(self, now: float) -> None:
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def set_rate(self, rate: float, *, hold_seconds: float = 0.0) -> None:
        """Change the rate from now on; with `hold_seconds`, the next send waits at least that long."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        with self._lock:
            self._refill(self._clock())
            self.rate = rate
            if hold_seconds > 0:
                self._tokens = min(self._tokens, 1.0) - hold_seconds * rate

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


class PooledPacer:
    """A worker's share of a pooled send rate: `pool_rate` split evenly among the workers sending now.

    While it sends, the worker holds a short lease in the registry and renews
    it every `renew_seconds`; each renewal returns how many leases are live,
    and the rate follows. A lease is not given back when a batch ends: the next
    batch usually follows at once and keeps it, and an idle worker's lease runs
    out within `lease_seconds`. A worker whose lease had run out and who finds
    others sending waits one renewal period before its first send, the time
    they need to notice it and slow down, so together they stay under the pool.
    If the registry cannot be reached, the worker falls back to `floor_rate`,
    the share that is safe with every pooled worker busy.
    """

    def __init__(
        self,
        pool_rate: float,
        *,
        floor_rate: float,
        shares: RateShares,
        worker_id: str | None = None,
        renew_seconds: float = 1.0,
        lease_seconds: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 < floor_rate <= pool_rate:
            raise ValueError("floor_rate must be positive and at most pool_rate")
        self.pool_rate = pool_rate
        self.floor_rate = floor_rate
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self._shares = shares
        self._renew_seconds = renew_seconds
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._pacer = Pacer(floor_rate, clock=clock, sleep=sleep)
        self._renewing = threading.Lock()
        self._next_renewal = 0.0
        self._lease_until = 0.0
        self._active = False

    @property
    def rate(self) -> float:
        """The rate this worker paces at now."""
        return self._pacer.rate

    def begin(self) -> None:
        """Take a share for a batch; a newcomer among senders waits one period first."""
        newcomer = self._lease_until < self._wall_clock()
        live = self._renew()
        self._active = True
        if live is None:
            self._pacer.set_rate(self.floor_rate)
            return
        hold = self._renew_seconds if newcomer and live > 1 else 0.0
        self._pacer.set_rate(self.pool_rate / live, hold_seconds=hold)

    def end(self) -> None:
        """The batch is done: stop renewing (the lease runs out unless the next batch renews it)."""
        self._active = False

    def acquire(self, *, deadline: float | None = None) -> bool:
        """Wait for a token at the current share, renewing the lease (and the share) when it is due.

        Tokens are reserved at most one renewal period ahead, so a change of share
        applies to the sends after it instead of a batch's whole queue of waiters.
        """
        while True:
            if self._active and self._clock() >= self._next_renewal and self._renewing.acquire(blocking=False):
                try:
                    live = self._renew()
                    self._pacer.set_rate(self.floor_rate if live is None else self.pool_rate / live)
                finally:
                    self._renewing.release()
            reserved, wait = self._pacer.reserve(deadline=deadline, max_wait=self._renew_seconds)
            if reserved:
                if wait > 0:
                    self._sleep(wait)
                return True
            if deadline is not None and self._clock() + wait > deadline:
                return False
            # Come back when the token is within reach (or for the next renewal, whichever is sooner).
            self._sleep(min(max(wait - self._renew_seconds, MIN_RECHECK_SECONDS), self._renew_seconds))

    def _renew(self) -> int | None:
        """Renew the lease; the number of live leases (this one included), or None if the registry failed."""
        self._next_renewal = self._clock() + self._renew_seconds
        until = self._wall_clock() + self._lease_seconds
        try:
            live = self._shares.join(self.worker_id, until=until)
        except Exception as exc:
            logger.warning("send-rate pool unavailable: pacing at the floor rate", extra={"error": str(exc)})
            return None
        self._lease_until = until
        return max(1, live)


# What the send pipeline paces with: a fixed share or a pooled one.
SendPacer = Pacer | PooledPacer
