"""The token-bucket pacer that spaces SES calls."""

from __future__ import annotations

import threading

import pytest

from mailwright.pacing import Pacer, PooledPacer
from mailwright_tools.fakes import FakeClock, FakeRateShares


def test_acquisitions_are_spaced_at_the_rate() -> None:
    # Given a pacer at 10 sends per second with no burst, on a clock that sleeping moves
    clock = FakeClock()
    pacer = Pacer(10, clock=clock, sleep=clock.sleep)

    # When 21 sends start back to back
    for _ in range(21):
        assert pacer.acquire()

    # Then the first goes at once and each of the others waits a tenth of a second
    assert sum(clock.sleeps) == pytest.approx(20 / 10)
    assert all(s == pytest.approx(0.1) for s in clock.sleeps)


def test_burst_lets_sends_start_back_to_back_after_idling() -> None:
    clock = FakeClock()
    pacer = Pacer(2, burst=5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        pacer.acquire()
    assert clock.sleeps == []
    pacer.acquire()
    assert clock.sleeps == [pytest.approx(0.5)]


def test_idle_time_refills_but_never_beyond_the_burst() -> None:
    clock = FakeClock()
    pacer = Pacer(1, clock=clock, sleep=clock.sleep)
    pacer.acquire()
    clock.advance(100)
    pacer.acquire()
    pacer.acquire()
    assert clock.sleeps == [pytest.approx(1.0)]


def test_waiters_queue_behind_each_other() -> None:
    # Given a clock that sleeping does not move (many threads reserved tokens at the same instant)
    clock = FakeClock()
    slept: list[float] = []
    pacer = Pacer(4, clock=clock, sleep=slept.append)

    for _ in range(4):
        pacer.acquire()

    # Then each waits one interval longer than the one before it
    assert slept == [pytest.approx(0.25), pytest.approx(0.5), pytest.approx(0.75)]


def test_deadline_refuses_without_taking_a_token() -> None:
    # Given a pacer at 1 send per second whose only token is taken
    clock = FakeClock()
    pacer = Pacer(1, clock=clock, sleep=clock.sleep)
    assert pacer.acquire()

    # When the next token would come after the deadline
    assert pacer.acquire(deadline=clock() + 0.5) is False

    # Then nothing was slept and no token was taken: the next caller waits one interval, not two
    assert clock.sleeps == []
    assert pacer.acquire(deadline=clock() + 1.0) is True
    assert clock.sleeps == [pytest.approx(1.0)]


def test_deadline_already_passed_refuses_even_a_free_token() -> None:
    clock = FakeClock()
    pacer = Pacer(1, clock=clock, sleep=clock.sleep)
    assert pacer.acquire(deadline=clock() - 1) is False
    assert pacer.acquire(deadline=clock()) is True
    assert clock.sleeps == []


@pytest.mark.parametrize("rate", [0, -1])
def test_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(rate)


def test_threads_share_the_bucket_safely() -> None:
    # Given a fast real pacer and 8 threads taking 50 tokens each
    pacer = Pacer(20_000, burst=50)
    errors: list[BaseException] = []
    granted: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            results = [pacer.acquire() for _ in range(50)]
            with lock:
                granted.extend(results)
        except BaseException as exc:  # any exception is a failure of the test
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert errors == []
    assert granted == [True] * 400


# -- the pooled share ------------------------------------------------------------


def pooled(clock: FakeClock, shares: FakeRateShares, worker_id: str) -> PooledPacer:
    return PooledPacer(
        8.0,
        floor_rate=2.0,
        shares=shares,
        worker_id=worker_id,
        clock=clock,
        wall_clock=clock,
        sleep=clock.sleep,
    )


def test_a_worker_alone_in_the_pool_takes_all_of_it_at_once() -> None:
    clock = FakeClock()
    pacer = pooled(clock, FakeRateShares(clock), "a")
    pacer.begin()
    for _ in range(9):
        pacer.acquire()
    assert pacer.rate == 8.0
    assert sum(clock.sleeps) == pytest.approx(8 / 8.0)  # the first at once, then every 1/8 s


def test_workers_split_the_pool_and_a_newcomer_waits_for_the_others_to_notice() -> None:
    # Given worker a sending alone
    clock = FakeClock()
    shares = FakeRateShares(clock)
    a, b = pooled(clock, shares, "a"), pooled(clock, shares, "b")
    a.begin()
    a.acquire()

    # When b joins
    b.begin()
    before = clock()
    b.acquire()

    # Then b's first send waits one renewal period (a learns of b within it), at half the pool
    assert clock() - before == pytest.approx(1.0)
    assert b.rate == 4.0
    a.acquire()  # a's lease renewal is due: it sees two leases
    assert a.rate == 4.0

    # And when b stops sending, its lease runs out and a takes the whole pool again
    b.end()
    clock.advance(5.0)
    a.acquire()
    assert a.rate == 8.0


def test_a_worker_starting_its_next_batch_at_once_keeps_its_lease_and_does_not_wait() -> None:
    clock = FakeClock()
    shares = FakeRateShares(clock)
    a, b = pooled(clock, shares, "a"), pooled(clock, shares, "b")
    a.begin()
    b.begin()
    b.acquire()
    b.end()
    clock.advance(0.5)

    b.begin()
    before = clock()
    b.acquire()

    assert clock() == before  # no newcomer's wait: its lease never lapsed
    assert b.rate == 4.0


def test_leases_of_workers_that_died_run_out() -> None:
    clock = FakeClock()
    shares = FakeRateShares(clock)
    dead = pooled(clock, shares, "dead")
    dead.begin()  # and never ends
    clock.advance(10)
    alive = pooled(clock, shares, "alive")
    alive.begin()
    assert alive.rate == 8.0


def test_an_unreachable_registry_means_the_floor_rate() -> None:
    clock = FakeClock()
    shares = FakeRateShares(clock)
    shares.failures["join"] = RuntimeError("dynamodb down")
    pacer = pooled(clock, shares, "a")
    pacer.begin()
    pacer.acquire()
    assert pacer.rate == 2.0


def test_pool_rate_must_cover_the_floor() -> None:
    with pytest.raises(ValueError, match="floor_rate"):
        PooledPacer(1.0, floor_rate=2.0, shares=FakeRateShares())
