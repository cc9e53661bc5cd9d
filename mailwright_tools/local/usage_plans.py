"""API Gateway's API key check and usage plans, emulated for the producers' API on loopback.

moto stores API keys and usage plans but executes nothing, so the local
producers' API asks it what API Gateway would know, and does what API
Gateway does before its integration runs:

- a request without an `x-api-key` header, or whose key does not exist, is
  disabled, or is on none of the producer API's usage plans: 403
  (`invalid_api_key`, "Forbidden"); a key a rotation retired is taken as
  deleted from its `retires_at` on, as its EventBridge Scheduler schedule
  would delete it (moto does not run schedules);
- a key over its plan's quota for the period (DAY, WEEK or MONTH, from the
  period's start in UTC plus the plan's offset): 429 (`quota_exceeded`,
  "Limit Exceeded"), not counted;
- a key over its plan's rate (a token bucket of `burstLimit` tokens filled at
  `rateLimit` per second): 429 (`throttled`, "Too Many Requests").

As on AWS, throttles and quotas apply per API key (a producer holding two keys
during a rotation has both keys' allowance). What the gate reads is cached for
`cache_seconds` (a second by default): a revoked key is refused within that,
as API Gateway too takes a few seconds to see a deleted key. The stage's own
throttle (`api.throttling_*`) is not emulated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mailwright.producers import ProducerDirectory

DEFAULT_CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class PlanLimits:
    """A usage plan's throttle and quota (quota None: unlimited)."""

    rate_limit: float
    burst_limit: int
    quota_limit: int | None = None
    quota_period: str = "DAY"
    quota_offset: int = 0

    @classmethod
    def of(cls, plan: dict[str, Any]) -> PlanLimits:
        """The limits of a usage plan as GetUsagePlan returns it."""
        throttle, quota = plan.get("throttle") or {}, plan.get("quota") or {}
        return cls(
            rate_limit=float(throttle.get("rateLimit", 0.0) or 0.0),
            burst_limit=int(throttle.get("burstLimit", 0) or 0),
            quota_limit=int(quota["limit"]) if quota.get("limit") else None,
            quota_period=str(quota.get("period") or "DAY"),
            quota_offset=int(quota.get("offset") or 0),
        )


@dataclass(frozen=True)
class Admission:
    """The request may pass: the caller's key (API Gateway puts both in the request context)."""

    api_key_id: str
    api_key: str


@dataclass(frozen=True)
class Refusal:
    """API Gateway's own answer: its status, gateway response code and message."""

    status: int
    code: str
    message: str


FORBIDDEN = Refusal(403, "invalid_api_key", "Forbidden")
THROTTLED = Refusal(429, "throttled", "Too Many Requests")
QUOTA_EXCEEDED = Refusal(429, "quota_exceeded", "Limit Exceeded")


@dataclass
class _Bucket:
    tokens: float
    at: float


class UsagePlanGate:
    """Admits or refuses a request by its API key, as API Gateway does for a method that requires one."""

    def __init__(
        self,
        apigateway: Any,
        *,
        plan_ids: Collection[str],
        directory: ProducerDirectory | None = None,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = apigateway
        self._plan_ids = tuple(plan_ids)
        self._directory = directory
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._view: tuple[float, dict[str, tuple[str, bool]], dict[str, PlanLimits]] | None = None
        self._buckets: dict[str, _Bucket] = {}
        self._used: dict[tuple[str, float], int] = {}

    def admit(self, api_key: str | None) -> Admission | Refusal:
        """Whether a request carrying `api_key` reaches the integration, and if not, API Gateway's answer."""
        if not api_key:
            return FORBIDDEN
        keys, limits_by_key = self._current()
        found = keys.get(api_key)
        if found is None or not found[1] or found[0] not in limits_by_key:
            return FORBIDDEN
        key_id = found[0]
        if self._directory is not None:
            entry = self._directory.key(key_id)
            if entry is not None and not entry.active(self._clock()):
                return FORBIDDEN
        limits = limits_by_key[key_id]
        with self._lock:
            period = _period_start(self._clock(), limits)
            used = self._used.get((key_id, period), 0)
            if limits.quota_limit is not None and used >= limits.quota_limit:
                return QUOTA_EXCEEDED
            if not self._take_token(key_id, limits):
                return THROTTLED
            self._used[(key_id, period)] = used + 1
        return Admission(api_key_id=key_id, api_key=api_key)

    def _take_token(self, key_id: str, limits: PlanLimits) -> bool:
        now = self._monotonic()
        bucket = self._buckets.setdefault(key_id, _Bucket(tokens=float(limits.burst_limit), at=now))
        bucket.tokens = min(float(limits.burst_limit), bucket.tokens + (now - bucket.at) * limits.rate_limit)
        bucket.at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _current(self) -> tuple[dict[str, tuple[str, bool]], dict[str, PlanLimits]]:
        """Key value -> (id, enabled), and key id -> its plan's limits; read again once `cache_seconds` passed."""
        now = self._monotonic()
        with self._lock:
            view = self._view
        if view is not None and now - view[0] < self._cache_seconds:
            return view[1], view[2]
        keys: dict[str, tuple[str, bool]] = {}
        for page in self._client.get_paginator("get_api_keys").paginate(includeValues=True):
            for item in page.get("items", []):
                keys[str(item["value"])] = (str(item["id"]), bool(item.get("enabled")))
        limits: dict[str, PlanLimits] = {}
        for plan_id in self._plan_ids:
            plan_limits = PlanLimits.of(self._client.get_usage_plan(usagePlanId=plan_id))
            for page in self._client.get_paginator("get_usage_plan_keys").paginate(usagePlanId=plan_id):
                for item in page.get("items", []):
                    limits[str(item["id"])] = plan_limits
        with self._lock:
            self._view = (now, keys, limits)
        return keys, limits


def _period_start(now: float, limits: PlanLimits) -> float:
    """The start (epoch seconds) of the quota period `now` falls in: UTC day, week (Monday) or month, plus offset."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if limits.quota_period == "WEEK":
        start = day - timedelta(days=day.weekday()) + timedelta(days=limits.quota_offset)
        if start > moment:
            start -= timedelta(weeks=1)
    elif limits.quota_period == "MONTH":
        start = day.replace(day=1) + timedelta(days=limits.quota_offset)
        if start > moment:
            previous = (day.replace(day=1) - timedelta(days=1)).replace(day=1)
            start = previous + timedelta(days=limits.quota_offset)
    else:
        start = day
    return start.timestamp()
