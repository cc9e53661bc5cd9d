"""The token-bucket pacer that spaces SES calls."""

from __future__ import annotations

import math
import threading

import pytest

from mailwright.pacing import (
    CUBIC_BETA,
    MAX_DEFER_SECONDS,
    RECOVER_SECONDS,
    AccountPacer,
    Pacer,
    cubic_rate,
    gcra_grant,
)
from mailwright.ports import SendQuota
from mailwright_tools.fakes import FakeAccountReader, FakeClock, FakeRateRegistry


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


def test_take_without_a_wait_limit_grants_everything_spaced_at_the_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(4, clock=clock, sleep=clock.sleep)
    grant = pacer.take(5)
    assert [round(t - clock(), 3) for t in grant.starts] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert grant.defer_seconds == ()


def test_take_with_a_wait_limit_hands_back_what_would_wait_longer() -> None:
    # Given a worker-local bucket at 4/s that may wait at most half a second
    clock = FakeClock()
    pacer = Pacer(4, max_wait=0.5, clock=clock, sleep=clock.sleep)

    grant = pacer.take(10)

    # Then three sends go (at 0, 0.25 and 0.5 s) and seven are deferred, spread from when tokens come
    assert grant.granted == 3
    assert list(grant.defer_seconds) == sorted(grant.defer_seconds)
    assert grant.defer_seconds[0] == 1 and grant.defer_seconds[-1] == 3
    assert clock.sleeps == []  # taking never sleeps


# -- the account's shared bucket (GCRA) ----------------------------------------------------


def test_gcra_grants_a_burst_then_one_token_per_interval() -> None:
    # An idle bucket at 10/s with one second of reach grants 11 at once (the burst), no more
    granted, base, tat = gcra_grant(tat=0.0, now=100.0, count=20, interval=0.1, reach=1.0, max_wait=0.0)
    assert (granted, base, tat) == (11, 100.0, pytest.approx(101.1))
    # Right after, nothing is within reach; half a second later, five more
    assert gcra_grant(tat=tat, now=100.0, count=5, interval=0.1, reach=1.0, max_wait=0.0)[0] == 0
    assert gcra_grant(tat=tat, now=100.5, count=20, interval=0.1, reach=1.0, max_wait=0.0)[0] == 5
    # With a wait allowed, tokens up to that far away are granted too
    assert gcra_grant(tat=tat, now=100.5, count=20, interval=0.1, reach=1.0, max_wait=0.3)[0] == 8


Lane = str


class Fleet:
    """Workers of several lanes sharing one registry, on one fake clock (wall and monotonic)."""

    def __init__(self, rate: float = 10.0, *, ceiling: float | None = None, sent: float = 0.0) -> None:
        self.clock = FakeClock()
        self.registry = FakeRateRegistry()
        self.account = FakeAccountReader(rate, max_24_hour_send=10_000, sent_last_24_hours=sent)
        self.ceiling = ceiling

    def worker(self, lane: Lane, *, max_wait: float = 0.0) -> AccountPacer:
        return AccountPacer(
            lane=lane,
            registry=self.registry,
            account=self.account,
            ceiling=self.ceiling,
            fallback_rate=1.0,
            fallback_share=0.5,
            max_wait=max_wait,
            lead=0.0,  # sends start when their tokens do (tests of the learnt lead set it)
            wall_clock=self.clock,
            clock=self.clock,
            sleep=self.clock.sleep,
        )


def sustained(worker: AccountPacer, clock: FakeClock, *, seconds: float, batch: int = 5, step: float = 0.1) -> int:
    """Sends `worker` is granted taking a batch every `step` seconds for `seconds`."""
    granted, end = 0, clock() + seconds
    while clock() < end:
        granted += worker.take(batch).granted
        clock.advance(step)
    return granted


def test_a_lane_alone_uses_the_whole_account() -> None:
    # Given only bulk mail, at an account rate of 10/s read from SES
    fleet = Fleet(10.0)
    bulk_a, bulk_b = fleet.worker("bulk"), fleet.worker("bulk")

    # When two bulk workers take for 20 s
    granted = 0
    end = fleet.clock() + 20
    while fleet.clock() < end:
        granted += bulk_a.take(5).granted + bulk_b.take(5).granted
        fleet.clock.advance(0.1)

    # Then together they get the account's rate, plus the whole burst (one second less a token of slack)
    assert 0.97 * 200 <= granted <= 200 + 9
    assert fleet.account.calls["read"] == 1  # one worker asked SES; the other read its answer from the registry


def test_an_idle_lane_holds_no_headroom_and_a_sending_one_gets_it_back_within_a_second() -> None:
    fleet = Fleet(10.0)
    bulk, critical = fleet.worker("bulk"), fleet.worker("critical")
    # Alone, bulk takes the whole burst: nine tokens at once at 10/s
    assert bulk.take(20).granted == 9
    fleet.clock.advance(5)
    # Once critical mail is being sent (bulk learns it from the registry's answer to its next take),
    # bulk leaves 0.3 s of the burst to it: six at once
    critical.take(1)
    bulk.take(1)
    fleet.clock.advance(0.5)
    assert bulk.take(20).granted == 6
    fleet.clock.advance(5)
    assert bulk.take(20).granted == 9  # critical has been quiet for a second: the whole burst again
    # The lanes' last sends are shared through the registry
    assert set(fleet.registry.state.lanes_active_at) == {"bulk", "critical"}


def test_critical_mail_is_served_first_and_takes_what_bulk_was_using() -> None:
    fleet = Fleet(10.0)
    bulk, critical = fleet.worker("bulk"), fleet.worker("critical", max_wait=1.0)
    sustained(bulk, fleet.clock, seconds=5)  # bulk saturates the account

    # When critical mail arrives, it finds a token within one send interval, though bulk used everything
    grant = critical.take(3)
    assert grant.granted == 3 and grant.starts[0] - fleet.clock() <= 0.1 + 1e-6

    # And while critical keeps the account busy, bulk gets nothing
    bulk_granted = critical_granted = 0
    for _ in range(50):
        critical_granted += critical.take(2).granted
        bulk_granted += bulk.take(5).granted
        fleet.clock.advance(0.1)
    assert critical_granted >= 48
    assert bulk_granted == 0

    # And once critical stops, bulk has the whole account again within a second or so
    fleet.clock.advance(2.0)
    assert sustained(bulk, fleet.clock, seconds=5) >= 48


def test_standard_goes_before_bulk_and_what_it_leaves_goes_to_bulk() -> None:
    fleet = Fleet(10.0)
    standard, bulk = fleet.worker("standard"), fleet.worker("bulk")
    standard_granted = bulk_granted = 0
    for tick in range(200):
        # Standard mail comes at 4/s; bulk always has a backlog
        if tick % 5 == 0:
            standard_granted += standard.take(2).granted
        bulk_granted += bulk.take(5).granted
        fleet.clock.advance(0.1)
    assert standard_granted == 80  # all of it
    assert 115 <= bulk_granted <= 130  # the rest of 10/s over 20 s


def test_nothing_waits_longer_than_max_wait_and_the_rest_is_booked_one_token_apart() -> None:
    fleet = Fleet(10.0)
    bulk = fleet.worker("bulk", max_wait=0.2)
    now = fleet.clock()
    first = bulk.take(25)
    assert first.granted == 11  # the whole burst (0.8 s at 10/s) and the wait (0.2 s)
    assert max(first.starts) - now <= 0.2 + 1e-6
    # The rest take slots from a second on, one token apart: a slot in [k, k + 1) s comes back after k s
    assert first.defer_seconds == (1,) * 10 + (2,) * 4 and first.reason == "paced"
    assert fleet.registry.schedules["bulk"] == pytest.approx(now + 2.4)


def test_a_batch_that_finds_nothing_books_after_the_lane_and_new_mail_takes_free_tokens() -> None:
    fleet = Fleet(10.0)
    bulk = fleet.worker("bulk", max_wait=0.2)
    bulk.take(25)
    # A second batch at once finds nothing within reach: its records take the slots after the first's
    second = bulk.take(25)
    assert (second.granted, second.reason) == (0, "paced")
    assert second.defer_seconds[0] == 2 and second.defer_seconds[-1] == 4
    # Work-conserving: later, new mail takes tokens that are free now, though the lane has mail booked
    fleet.clock.advance(1.0)
    assert bulk.take(5).granted == 5


def test_a_lower_lane_takes_no_trickle_of_tokens_but_a_batch() -> None:
    fleet = Fleet(10.0)
    bulk, critical = fleet.worker("bulk"), fleet.worker("critical")
    assert bulk.take(20).granted == 9  # the whole burst at once
    # A tenth of a second later one token is free: critical mail takes it, bulk leaves it to accumulate
    fleet.clock.advance(0.1)
    reach = bulk.reach(fleet.clock(), 0.1)
    assert bulk.minimum_grant(20, interval=0.1, reach=reach, max_wait=0.0) == 4
    assert bulk.minimum_grant(2, interval=0.1, reach=reach, max_wait=0.0) == 2
    assert bulk.minimum_grant(20, interval=1.0, reach=0.0, max_wait=0.0) == 1  # at 1/s a take holds one
    trickle = bulk.take(20)
    assert trickle.granted == 0 and trickle.reason == "paced"
    assert critical.take(1).granted == 1
    # Once four or more are free at once, bulk takes them together
    fleet.clock.advance(1.0)
    assert bulk.take(20).granted >= 4


def test_deferred_mail_is_booked_after_the_higher_lanes_booked_mail() -> None:
    fleet = Fleet(10.0)
    critical, bulk = fleet.worker("critical"), fleet.worker("bulk")
    now = fleet.clock()
    # Critical mail books what the burst does not hold; bulk's deferred mail comes back after it
    critical.take(40)
    critical_end = fleet.registry.schedules["critical"]
    assert critical_end > now + 3
    late = bulk.take(10)
    assert late.granted == 0
    assert min(late.defer_seconds) >= math.floor(critical_end - now)
    assert fleet.registry.schedules["bulk"] >= critical_end + 1.0 - 1e-6


def test_deferred_mail_is_booked_at_what_one_take_can_get_at_the_current_rate() -> None:
    fleet = Fleet(10.0)
    critical, bulk = fleet.worker("critical"), fleet.worker("bulk")
    interval = 0.1
    # A lane alone: its reach holds the burst (one second less two tokens); a take gets that and its wait
    full = bulk.reach(fleet.clock(), interval)
    assert bulk.booking_interval(interval, full, 0.2) == pytest.approx(interval)  # 10 a take: the whole rate
    assert bulk.booking_interval(interval, full, 0.0) == pytest.approx(1 / 9)
    # While critical mail is sent, bulk leaves 0.3 s of the burst to it: six a take, six a second booked
    critical.take(1)
    bulk.take(1)
    reach = bulk.reach(fleet.clock(), interval)
    assert reach == pytest.approx(full - 0.3)
    assert bulk.booking_interval(interval, reach, 0.0) == pytest.approx(1 / 6)
    # And a rate cut (a throttle) books the next slots at the new rate at once
    bulk.throttled()
    cut = 1.0 / bulk.rate
    assert cut > interval
    assert bulk.booking_interval(cut, full, 0.2) == pytest.approx(cut)


def test_a_full_schedule_sends_mail_back_at_the_horizon() -> None:
    fleet = Fleet(1.0)
    bulk = fleet.worker("bulk")
    bulk.take(1)
    bulk.take(900)  # nothing within reach: books the next 15 minutes at 1/s
    late = bulk.take(10)
    assert late.defer_seconds == (MAX_DEFER_SECONDS,) * 10


def test_until_the_rate_is_known_mail_comes_back_in_a_second_unbooked() -> None:
    # Given a worker that cannot learn SES's rate yet (no answer shared, no ceiling configured)
    registry = FakeRateRegistry()
    clock = FakeClock()
    worker = AccountPacer(
        lane="bulk",
        registry=registry,
        account=None,
        ceiling=None,
        fallback_rate=1.0,
        fallback_share=0.5,
        max_wait=0.0,
        lead=0.0,
        wall_clock=clock,
        clock=clock,
        sleep=clock.sleep,
    )
    grant = worker.take(10)
    # Then it sends at the sandbox rate and books nothing at a guessed rate: the rest comes back in a second
    assert grant.granted == 1
    assert grant.defer_seconds == (1,) * 9
    assert registry.schedules == {}


def test_tokens_are_taken_for_when_the_sends_will_start() -> None:
    fleet = Fleet(10.0)
    worker = AccountPacer(
        lane="critical",
        registry=fleet.registry,
        account=fleet.account,
        ceiling=None,
        fallback_rate=1.0,
        fallback_share=0.5,
        max_wait=0.0,
        lead=0.3,
        wall_clock=fleet.clock,
        clock=fleet.clock,
        sleep=fleet.clock.sleep,
    )
    # A new worker's tokens start after its guess of the time from pacing to sending
    now = fleet.clock()
    grant = worker.take(2)
    assert min(grant.starts) == pytest.approx(now + 0.3)
    # A batch that reached its sends sooner lowers the guess slowly (a send that waits costs a little)
    fleet.clock.advance(0.05)
    worker.wait_for(grant.starts[0])
    assert worker.lead == pytest.approx(0.8 * 0.3 + 0.2 * 0.05)
    # One that took longer raises it at once (a late send would bunch up with others' and be throttled)
    fleet.clock.advance(5)
    worker.take(1)
    fleet.clock.advance(0.45)
    worker.wait_for(fleet.clock())
    assert worker.lead == pytest.approx(0.45)


def test_throttling_cuts_the_rate_for_every_worker_and_it_recovers() -> None:
    # Given two workers at an account rate of 10/s
    fleet = Fleet(10.0)
    a, b = fleet.worker("standard"), fleet.worker("bulk")
    a.take(1)
    b.take(1)

    # When SES throttles a send of worker a
    delay = a.throttled()
    assert 1 <= delay <= 3
    # Then a's rate is cut at once, and b's at its next take (through the registry)
    assert a.rate == pytest.approx(10 * (1 - CUBIC_BETA))
    b.take(1)
    assert b.rate == pytest.approx(10 * (1 - CUBIC_BETA))
    # And a burst of throttles from sends in flight is one cut, not one each
    a.throttled()
    assert a.rate == pytest.approx(10 * (1 - CUBIC_BETA))

    # And the rate comes back: close to 10/s after the recovery time, then past it only up to SES's rate
    fleet.clock.advance(RECOVER_SECONDS * 0.6)
    assert 9.5 < a.rate < 10
    fleet.clock.advance(RECOVER_SECONDS)
    a.take(1)
    assert a.rate == pytest.approx(10.0)


def test_the_cubic_curve_is_fast_to_recover_and_slow_to_probe() -> None:
    assert cubic_rate(10, 0) == pytest.approx(10 * (1 - CUBIC_BETA))
    assert cubic_rate(10, RECOVER_SECONDS) == pytest.approx(10)
    assert cubic_rate(10, RECOVER_SECONDS / 2) > 9.7  # most of the way back in half the time
    assert cubic_rate(10, 2 * RECOVER_SECONDS) == pytest.approx(10 * (1 + CUBIC_BETA))


def test_a_new_max_send_rate_is_followed_without_a_redeploy_and_the_ceiling_caps_it() -> None:
    fleet = Fleet(10.0, ceiling=20.0)
    worker = fleet.worker("bulk")
    worker.take(1)
    assert worker.rate == 10.0
    # SES raises the account to 30/s: read at the next refresh, capped by the ceiling
    fleet.account.quota = SendQuota(30.0, 10_000, 0)
    fleet.clock.advance(301)
    worker.take(1)
    assert worker.rate == 20.0
    # And a throttle makes a worker read SES again soon, so a lowered rate is followed within seconds
    fleet.account.quota = SendQuota(5.0, 10_000, 0)
    fleet.clock.advance(2)
    worker.throttled()
    fleet.clock.advance(11)
    worker.take(1)
    assert worker.rate == 5.0


def test_the_daily_quota_holds_bulk_then_standard_and_critical_keeps_the_rest() -> None:
    fleet = Fleet(10.0, sent=9_000)  # 90% of a 10,000 daily quota used
    bulk, standard, critical = fleet.worker("bulk"), fleet.worker("standard"), fleet.worker("critical")
    held = bulk.take(5)
    assert (held.granted, held.reason, held.defer_seconds) == (0, "quota_hold", (MAX_DEFER_SECONDS,) * 5)
    assert standard.take(2).granted == 2
    assert critical.take(2).granted == 2
    # Near a threshold the quota is read often (not every five minutes)
    fleet.account.quota = SendQuota(10.0, 10_000, 9_700)
    fleet.clock.advance(31)
    assert standard.take(2).reason == "quota_hold"
    assert critical.take(2).granted == 2
    # The daily quota is not the rate: being held does not slow the lanes that may send
    assert critical.rate == 10.0


def test_an_exhausted_daily_quota_holds_every_lane_until_ses_reports_room() -> None:
    fleet = Fleet(10.0)
    critical, bulk = fleet.worker("critical"), fleet.worker("bulk")
    critical.take(1)
    delay = critical.quota_exceeded()
    assert delay == 60
    assert critical.rate == 10.0  # not a rate problem: no cut
    bulk.take(1)
    assert bulk.take(1).reason == "quota_exhausted"
    # When SES reports room again (the 24 hours rolled), sending resumes
    fleet.account.quota = SendQuota(10.0, 10_000, 5_000)
    fleet.clock.advance(61)
    assert critical.take(1).granted == 1


def test_an_unreachable_registry_means_a_local_bucket_at_the_fallback_share() -> None:
    fleet = Fleet(10.0)
    fleet.registry.failures["take"] = RuntimeError("dynamodb down")
    worker = fleet.worker("bulk", max_wait=1.0)
    grant = worker.take(5)
    # 0.5/s with a burst of one: the first at once, the second after 2 s is beyond the wait
    assert grant.granted == 1
    assert len(grant.defer_seconds) == 4


def test_tokens_given_back_can_be_taken_again() -> None:
    fleet = Fleet(10.0)
    bulk = fleet.worker("bulk")
    assert bulk.take(20).granted == 9
    bulk.give_back(3)
    assert bulk.take(3).granted == 3


def test_a_lower_lane_yields_while_a_higher_lanes_deferred_mail_comes_back() -> None:
    fleet = Fleet(10.0)
    critical, standard = fleet.worker("critical"), fleet.worker("standard")
    now = fleet.clock()
    # Critical mail books 31 records for the next 3 s or so; the bucket item tells the other lanes
    assert critical.take(40).granted == 9
    booked_until = fleet.registry.state.lanes_booked_until["critical"]
    assert booked_until == pytest.approx(fleet.registry.schedules["critical"]) and booked_until > now + 3
    # Standard (which learns it from the registry's answers) takes nothing while that mail comes back,
    # though tokens are free between critical's returns
    standard.take(1)
    fleet.clock.advance(1.5)
    assert standard.yields(fleet.clock())
    assert standard.take(10).granted == 0
    # In critical's last second of booked mail the usual headroom is enough; once it is through, standard takes
    fleet.clock.advance(booked_until - fleet.clock() - 0.5)
    assert not standard.yields(fleet.clock())
    fleet.clock.advance(1.0)
    assert standard.take(10).granted >= 4
