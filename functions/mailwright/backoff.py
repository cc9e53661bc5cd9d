"""How long a failed record waits before its next attempt."""

from __future__ import annotations

import random

BASE_DELAY_SECONDS = 5


def retry_delay(receive_count: int, *, cap_seconds: int, rng: random.Random | None = None) -> int:
    """Exponential backoff with jitter for the n-th failed receive: about 5 s, 10 s, 20 s ... up to the cap.

    The delay is drawn from the upper half of the exponential step so retries
    spread out (no thundering herd) yet never come back sooner than half the step.
    """
    attempt = max(1, receive_count)
    step = min(cap_seconds, BASE_DELAY_SECONDS * 2 ** min(attempt - 1, 20))
    draw = (rng or random).uniform(step / 2, step)
    return max(1, min(cap_seconds, round(draw)))
