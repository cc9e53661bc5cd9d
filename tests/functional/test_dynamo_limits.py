"""The DynamoDB adapters that meter sending, against moto: per-user rate limits and the account's shared bucket."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from mailwright.adapters.dynamodb import DynamoRateLimiter
from mailwright.adapters.dynamodb_pacing import DynamoRateRegistry
from mailwright.ports import SendQuota
from mailwright.settings import RateLimit
from mailwright_tools.provision import StackResources

WINDOW_START = 86400 * 20000


def test_rate_limiter_counts_each_request_once_and_refuses_others_past_the_limit(stack: StackResources) -> None:
    limiter = DynamoRateLimiter(boto3.client("dynamodb", region_name=stack.region), stack.idempotency_table)
    limit = RateLimit(limit=2, window_seconds=86400)

    def acquire(request_id: str, now: float = WINDOW_START + 10) -> bool:
        return limiter.acquire("user-1", "marketing", limit, now=now, request_id=request_id)

    assert acquire("r1") and acquire("r2")
    assert not acquire("r3")
    # A retried request (it sent, then crashed before recording) keeps its slot instead of being refused.
    assert acquire("r1")
    assert not acquire("r3")
    # The next window starts empty; other users and categories have their own sets.
    assert acquire("r3", now=WINDOW_START + 86400)
    assert limiter.acquire("user-2", "marketing", limit, now=WINDOW_START, request_id="r9")
    assert limiter.acquire("user-1", "product", limit, now=WINDOW_START, request_id="r9")


def registry(stack: StackResources, **kwargs: Any) -> DynamoRateRegistry:
    return DynamoRateRegistry(boto3.client("dynamodb", region_name=stack.region), stack.idempotency_table, **kwargs)


def test_the_shared_bucket_grants_the_burst_then_the_rate_across_workers(stack: StackResources) -> None:
    # Given two workers' registries on one table, an account at 10/s, critical reach (1 s)
    a, b = registry(stack), registry(stack)
    now = 1_700_000_000.0

    # When worker a takes a whole batch from the idle bucket, and b takes right after
    first = a.take(lane="critical", count=20, interval=0.1, reach=1.0, max_wait=0.0, now=now)
    second = b.take(lane="critical", count=20, interval=0.1, reach=1.0, max_wait=0.0, now=now)

    # Then a gets the burst (11 tokens usable now) and b, who had not seen the bucket, none
    assert (first.granted, first.base) == (11, now)
    assert second.granted == 0
    # Half a second later b finds five (its hint was corrected by the failed condition, no read needed)
    later = b.take(lane="critical", count=20, interval=0.1, reach=1.0, max_wait=0.0, now=now + 0.5)
    assert later.granted == 5
    assert later.base == pytest.approx(now + 1.1)
    # A lower lane's reach (bulk, 0.7 s) gets nothing while critical keeps the bucket 1 s ahead
    assert a.take(lane="bulk", count=5, interval=0.1, reach=0.7, max_wait=0.0, now=now + 0.5).granted == 0
    # Tokens given back are taken again (other workers trust the bucket they saw for up to two seconds)
    b.give_back(seconds=0.3, now=now + 0.5)
    assert b.take(lane="critical", count=5, interval=0.1, reach=1.0, max_wait=0.0, now=now + 0.5).granted == 3
    assert a.take(lane="critical", count=5, interval=0.1, reach=1.0, max_wait=0.0, now=now + 0.5).granted == 0


def test_each_grant_records_its_lane_as_sending_and_counts_its_tokens(stack: StackResources) -> None:
    a, b = registry(stack), registry(stack)
    now = 1_700_000_000.0
    a.take(lane="critical", count=3, interval=0.1, reach=1.0, max_wait=0.0, now=now)
    state = b.take(lane="bulk", count=2, interval=0.1, reach=0.7, max_wait=0.0, now=now + 0.5).state
    # Every worker sees when each lane last sent and how many tokens it was granted so far
    assert state.lanes_active_at == {"critical": pytest.approx(now), "bulk": pytest.approx(now + 0.5)}
    assert state.lanes_granted == {"critical": 3, "bulk": 2}
    item = boto3.client("dynamodb", region_name=stack.region).get_item(
        TableName=stack.idempotency_table, Key={"pk": {"S": "pace#bucket"}}
    )["Item"]
    assert (item["g_critical"], item["g_bulk"]) == ({"N": "3"}, {"N": "2"})
    # A denied take writes nothing
    assert b.take(lane="bulk", count=50, interval=0.1, reach=0.0, max_wait=0.0, now=now + 0.5).granted == 0
    assert b.read_state().lanes_granted == {"critical": 3, "bulk": 2}
    with pytest.raises(ValueError, match="unknown lane"):
        a.take(lane="express", count=1, interval=0.1, reach=1.0, max_wait=0.0, now=now)


def test_the_shared_state_carries_quota_throttles_and_refresh_claims(stack: StackResources) -> None:
    a, b = registry(stack), registry(stack)
    now = 1_700_000_000.0
    assert a.claim_refresh(now=now, min_gap=10) is True
    assert b.claim_refresh(now=now + 1, min_gap=10) is False  # one worker per interval asks SES
    state = a.store_quota(SendQuota(14.0, 50_000, 1_234), now=now)
    assert state.quota == SendQuota(14.0, 50_000, 1_234)
    # b learns it from its next take, with no extra read
    taken = b.take(lane="critical", count=1, interval=0.1, reach=1.0, max_wait=0.0, now=now + 2)
    assert taken.state.quota == state.quota
    # One congestion event per gap for the whole fleet
    assert a.congested(rate=12.0, now=now + 3, min_gap=1.0) is True
    assert b.congested(rate=11.0, now=now + 3.5, min_gap=1.0) is False
    assert b.read_state().congestion_rate == 12.0
    b.quota_exhausted(now=now + 4)
    assert a.read_state().quota_exhausted_at == pytest.approx(now + 4)


def test_deferral_slots_are_booked_one_after_another_up_to_the_horizon(stack: StackResources) -> None:
    a, b = registry(stack), registry(stack)
    now = 1_700_000_000.0
    assert a.schedule(lane="bulk", count=10, interval=0.5, now=now, horizon=now + 900) == now
    assert b.schedule(lane="bulk", count=10, interval=0.5, now=now, horizon=now + 900) == pytest.approx(now + 5)
    assert a.schedule(lane="standard", count=1, interval=0.5, now=now, horizon=now + 900) == now  # lanes apart
    assert a.schedule(lane="bulk", count=2000, interval=0.5, now=now, horizon=now + 900) == pytest.approx(now + 10)
    assert b.schedule(lane="bulk", count=1, interval=0.5, now=now, horizon=now + 900) is None  # booked past 15 min


def test_a_lower_lane_books_after_the_higher_lanes_booked_mail(stack: StackResources) -> None:
    a, b = registry(stack), registry(stack)
    now = 1_700_000_000.0
    # Critical mail booked for 5 s, standard's for 2 s after it: bulk's slots start when both have been sent
    assert a.schedule(lane="critical", count=10, interval=0.5, now=now, horizon=now + 900) == now
    assert b.schedule(lane="standard", count=4, interval=0.5, now=now, horizon=now + 900, after=("critical",)) == (
        pytest.approx(now + 5)
    )
    after = ("critical", "standard")
    assert b.schedule(lane="bulk", count=2, interval=0.5, now=now, horizon=now + 900, after=after) == pytest.approx(
        now + 7
    )
    # The lower lanes learn from the bucket item until when the higher lanes have mail booked (bulk has none)
    state = a.read_state()
    assert state.lanes_booked_until["critical"] == pytest.approx(now + 5)
    assert state.lanes_booked_until["standard"] == pytest.approx(now + 7)
    assert "bulk" not in state.lanes_booked_until
    # Later bulk bookings follow bulk's own schedule; a lane with nothing booked does not hold bulk back
    assert a.schedule(lane="bulk", count=1, interval=0.5, now=now, horizon=now + 900, after=after) == pytest.approx(
        now + 8
    )
    assert a.schedule(lane="standard", count=1, interval=0.5, now=now + 60, horizon=now + 960, after=("critical",)) == (
        pytest.approx(now + 60)
    )
    # And a fewest-tokens take is all or nothing: three are free, four are asked for
    assert a.take(lane="bulk", count=10, interval=0.1, reach=0.2, max_wait=0.0, now=now, minimum=4).granted == 0
    assert a.take(lane="bulk", count=10, interval=0.1, reach=0.2, max_wait=0.0, now=now, minimum=3).granted == 3


def test_a_sharded_bucket_splits_the_rate(stack: StackResources) -> None:
    sharded = registry(stack, shards=2)
    now = 1_700_000_000.0
    # Each shard has half the rate (tokens twice as far apart) and half the burst; a take tries two
    granted = sum(
        sharded.take(lane="critical", count=20, interval=0.1, reach=1.0, max_wait=0.0, now=now).granted
        for _ in range(3)
    )
    assert granted == 12  # 6 per shard (reach 1 s at 5/s, plus the first)
