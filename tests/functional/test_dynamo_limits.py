"""The DynamoDB adapters that meter sending, against moto: per-user rate limits and the send-rate pool."""

from __future__ import annotations

import boto3

from mailwright.adapters.dynamodb import DynamoRateLimiter, DynamoRateShares
from mailwright.constants import Keys
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


def test_rate_shares_count_live_leases_and_forget_dead_ones(stack: StackResources) -> None:
    now = [1_700_000_000.0]
    client = boto3.client("dynamodb", region_name=stack.region)
    shares = DynamoRateShares(client, stack.idempotency_table, clock=lambda: now[0])

    assert shares.join("a", until=now[0] + 5) == 1
    assert shares.join("b", until=now[0] + 5) == 2
    assert shares.join("a", until=now[0] + 5) == 2  # a renewal is not a second lease
    now[0] += 6  # b stopped renewing: its lease ran out
    assert shares.join("a", until=now[0] + 5) == 1

    # A worker that died keeps its attribute until long past its lease, then a join removes it.
    shares.join("dead", until=now[0] + 5)
    now[0] += 100
    assert shares.join("a", until=now[0] + 5) == 1
    shares.join("a", until=now[0] + 5)
    item = client.get_item(TableName=stack.idempotency_table, Key={Keys.IDEMPOTENCY_PK: {"S": DynamoRateShares.KEY}})
    assert sorted(name for name in item["Item"] if name.startswith("w_")) == ["w_a"]
