"""Pacing: keep a worker's SES calls under its share of the account's send rate."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


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

    def acquire(self, *, deadline: float | None = None) -> bool:
        """Wait for a token; False (and no token taken) if it would come after `deadline` (clock time)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
            if deadline is not None and now + wait > deadline:
                return False
            # Reserve the token now; the wait happens outside the lock so others can queue behind.
            self._tokens -= 1
        if wait > 0:
            self._sleep(wait)
        return True
