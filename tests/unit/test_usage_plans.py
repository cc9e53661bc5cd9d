"""The local usage-plan gate: API Gateway's key check, token bucket and quota periods, emulated."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mailwright.producers import ProducerKey
from mailwright_tools.local.usage_plans import (
    FORBIDDEN,
    QUOTA_EXCEEDED,
    THROTTLED,
    Admission,
    PlanLimits,
    UsagePlanGate,
    _period_start,
)


class _Pages:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self._pages = pages

    def paginate(self, **_: Any) -> list[dict[str, Any]]:
        return self._pages


class FakeApiGateway:
    """What the gate reads: keys with values, usage plans and their keys."""

    def __init__(self) -> None:
        self.keys = [
            {"id": "k1", "value": "secret-1", "enabled": True},
            {"id": "k2", "value": "secret-2", "enabled": False},
            {"id": "k3", "value": "secret-3", "enabled": True},  # on no plan
        ]
        self.plan = {"throttle": {"rateLimit": 1.0, "burstLimit": 2}, "quota": {"limit": 5, "period": "DAY"}}
        self.reads = 0

    def get_paginator(self, name: str) -> _Pages:
        if name == "get_api_keys":
            self.reads += 1
            return _Pages([{"items": self.keys}])
        return _Pages([{"items": [{"id": "k1"}, {"id": "k2"}]}])

    def get_usage_plan(self, usagePlanId: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        return self.plan


class Clocks:
    def __init__(self) -> None:
        self.wall = datetime(2026, 12, 1, 23, 59, 0, tzinfo=UTC).timestamp()
        self.mono = 100.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


class Directory:
    def __init__(self, retires_at: float | None) -> None:
        self.retires_at = retires_at

    def key(self, api_key_id: str) -> ProducerKey | None:
        return ProducerKey(api_key_id, "billing", retires_at=self.retires_at)


def gate(api: FakeApiGateway, clocks: Clocks, directory: Directory | None = None) -> UsagePlanGate:
    return UsagePlanGate(
        api,
        plan_ids=["plan"],
        directory=directory,
        cache_seconds=1.0,
        clock=lambda: clocks.wall,
        monotonic=lambda: clocks.mono,
    )


def test_missing_unknown_disabled_and_planless_keys_are_forbidden() -> None:
    admit = gate(FakeApiGateway(), Clocks()).admit

    assert [admit(key) for key in (None, "", "nope", "secret-2", "secret-3")] == [FORBIDDEN] * 5
    assert admit("secret-1") == Admission(api_key_id="k1", api_key="secret-1")


def test_the_burst_then_the_rate_then_429() -> None:
    clocks = Clocks()
    admit = gate(FakeApiGateway(), clocks).admit

    assert [admit("secret-1") for _ in range(3)][2] == THROTTLED
    clocks.advance(1.0)  # one token back at 1 a second
    assert isinstance(admit("secret-1"), Admission)
    assert admit("secret-1") == THROTTLED


def test_the_quota_counts_admitted_requests_per_utc_day() -> None:
    clocks = Clocks()
    admit = gate(FakeApiGateway(), clocks).admit
    admitted = 0
    for _ in range(5):
        clocks.advance(1.0)
        admitted += isinstance(admit("secret-1"), Admission)

    assert admitted == 5
    clocks.advance(1.0)
    assert admit("secret-1") == QUOTA_EXCEEDED
    clocks.advance(60.0)  # past midnight UTC: a new day
    assert isinstance(admit("secret-1"), Admission)


def test_a_key_past_its_retirement_is_forbidden() -> None:
    clocks = Clocks()
    admit = gate(FakeApiGateway(), clocks, Directory(retires_at=clocks.wall + 10)).admit

    assert isinstance(admit("secret-1"), Admission)
    clocks.advance(10.0)
    assert admit("secret-1") == FORBIDDEN


def test_keys_are_read_again_only_after_the_cache_time() -> None:
    api, clocks = FakeApiGateway(), Clocks()
    admit = gate(api, clocks).admit

    admit("secret-1")
    admit("nope")
    assert api.reads == 1
    clocks.advance(1.0)
    api.keys = []
    assert admit("secret-1") == FORBIDDEN
    assert api.reads == 2


def test_quota_periods_start_at_the_utc_day_week_and_month() -> None:
    now = datetime(2026, 12, 3, 15, 0, tzinfo=UTC).timestamp()  # a Thursday

    def start(period: str, offset: int = 0) -> datetime:
        limits = PlanLimits(1.0, 1, 10, quota_period=period, quota_offset=offset)
        return datetime.fromtimestamp(_period_start(now, limits), UTC)

    assert start("DAY") == datetime(2026, 12, 3, tzinfo=UTC)
    assert start("WEEK") == datetime(2026, 11, 30, tzinfo=UTC)
    assert start("WEEK", offset=4) == datetime(2026, 11, 27, tzinfo=UTC)
    assert start("MONTH") == datetime(2026, 12, 1, tzinfo=UTC)
    assert start("MONTH", offset=5) == datetime(2026, 11, 6, tzinfo=UTC)
