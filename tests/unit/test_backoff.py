"""Retry backoff of failed records."""

from __future__ import annotations

import random
import statistics

import pytest

from mailwright.backoff import BASE_DELAY_SECONDS, retry_delay

CAP = 900


def step(receive_count: int, cap: int = CAP) -> int:
    """The documented exponential step: 5 s, 10 s, 20 s ... up to the cap."""
    return min(cap, BASE_DELAY_SECONDS * 2 ** (max(1, receive_count) - 1))


@pytest.mark.parametrize("receive_count", range(1, 12))
def test_delay_stays_in_the_upper_half_of_its_step(receive_count: int) -> None:
    rng = random.Random(receive_count)
    delays = [retry_delay(receive_count, cap_seconds=CAP, rng=rng) for _ in range(200)]
    band = step(receive_count)
    # Rounding to whole seconds may put a draw of exactly half the step half a second lower.
    assert min(delays) >= band / 2 - 0.5
    assert max(delays) <= band
    assert all(1 <= d <= CAP for d in delays)


def test_jitter_spreads_retries_out() -> None:
    rng = random.Random(1)
    assert len({retry_delay(6, cap_seconds=CAP, rng=rng) for _ in range(50)}) > 10


def test_delays_grow_with_receive_count() -> None:
    rng = random.Random(42)
    means = [statistics.mean(retry_delay(n, cap_seconds=CAP, rng=rng) for _ in range(100)) for n in range(1, 9)]
    assert means == sorted(means)
    assert all(later > earlier for earlier, later in zip(means[:6], means[1:7], strict=True))
    # Each step is at least the previous one's ceiling, so a single draw never goes backwards either.
    for n in range(1, 10):
        assert (
            retry_delay(n + 1, cap_seconds=CAP, rng=random.Random(n))
            >= retry_delay(n, cap_seconds=CAP, rng=random.Random(n)) - 1
        )


@pytest.mark.parametrize("receive_count", [0, -3])
def test_a_missing_receive_count_counts_as_the_first(receive_count: int) -> None:
    assert retry_delay(receive_count, cap_seconds=CAP, rng=random.Random(3)) == retry_delay(
        1, cap_seconds=CAP, rng=random.Random(3)
    )


@pytest.mark.parametrize("receive_count", [20, 100, 10_000])
def test_cap_is_respected_for_large_counts(receive_count: int) -> None:
    rng = random.Random(receive_count)
    delays = [retry_delay(receive_count, cap_seconds=CAP, rng=rng) for _ in range(100)]
    assert max(delays) <= CAP
    assert min(delays) >= CAP / 2


@pytest.mark.parametrize("cap", [1, 2, 3])
def test_delay_is_at_least_one_second_even_with_a_tiny_cap(cap: int) -> None:
    rng = random.Random(cap)
    assert {retry_delay(1, cap_seconds=cap, rng=rng) for _ in range(50)} <= set(range(1, cap + 1))
