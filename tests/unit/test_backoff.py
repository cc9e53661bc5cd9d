"""Retry backoff of failed records."""

from __future__ import annotations

import itertools
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
    # Counts 1..8 have steps 5 s .. 640 s, all under the cap: the average delay doubles each time.
    rng = random.Random(42)
    means = [statistics.mean(retry_delay(n, cap_seconds=CAP, rng=rng) for _ in range(100)) for n in range(1, 9)]
    assert all(later > 1.5 * earlier for earlier, later in itertools.pairwise(means))


def test_one_steps_ceiling_is_the_next_steps_floor() -> None:
    # So even single draws never go backwards (up to rounding) while under the cap.
    for n in range(1, 8):
        assert step(n + 1) / 2 == step(n)


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
