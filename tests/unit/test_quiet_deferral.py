"""Quiet hours in the worker: who waits, how long, where the jitter lands; a night held by one schedule or hops."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import pytest

from mailwright.constants import DEFAULT_QUIET_HOURS_CATEGORIES
from mailwright.errors import TransientError
from mailwright.observability import batch_metrics
from mailwright.ports import Preferences
from mailwright.quiet_deferral import (
    MAX_HOP_SECONDS,
    QUIET_HOURS_JITTER_SECONDS,
    REASON_QUIET_HOURS,
    jitter_seconds,
    quiet_hours_deferral,
    quiet_schedule_name,
    respects_quiet_hours,
)
from mailwright.quiet_hours import QuietHours, in_quiet_hours
from mailwright.request import parse_request
from mailwright.sending import BatchReport
from mailwright_tools.fakes import FakeClock, FakePreferenceStore, build_fake_service, queue_record

CATEGORIES = frozenset(DEFAULT_QUIET_HOURS_CATEGORIES)
PARIS_NIGHTS = Preferences("u1", timezone="Europe/Paris", quiet_hours=QuietHours.parse("21:00-08:00"))
NEWSLETTER = {
    "recipient_email": "jane@example.com",
    "template_id": "newsletter",
    "user_id": "u1",
    "template_data": {
        "user_name": "Jane",
        "headline": "News",
        "articles": [{"title": "A", "url": "https://example.com/a", "summary": "S"}],
    },
}
RESET = {
    "recipient_email": "jane@example.com",
    "template_id": "password_reset",
    "user_id": "u1",
    "template_data": {"user_name": "Jane", "reset_link": "https://example.com/r", "expires_in_minutes": 30},
}


def epoch(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


def decide(now: float, *, category: str = "marketing", lane: str = "bulk", priority: str = "bulk", **kw: object):  # type: ignore[no-untyped-def]
    return quiet_hours_deferral(
        request_id=str(kw.get("request_id", "r1")),
        category=category,
        lane=lane,
        priority=priority,
        preferences=kw.get("preferences", PARIS_NIGHTS),  # type: ignore[arg-type]
        request_timezone=kw.get("request_timezone"),  # type: ignore[arg-type]
        now=now,
        categories=kw.get("categories", CATEGORIES),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("category", "lane", "priority", "held"),
    [
        ("marketing", "bulk", "bulk", True),
        ("product", "standard", "standard", True),
        ("transactional", "standard", "standard", False),
        ("security", "standard", "standard", False),
        ("marketing", "critical", "bulk", False),  # the critical lane never waits
        ("product", "standard", "critical", False),  # nor does a critical template on another lane
    ],
)
def test_only_non_urgent_categories_from_context_wait(category: str, lane: str, priority: str, held: bool) -> None:
    assert respects_quiet_hours(category, lane=lane, priority=priority, categories=CATEGORIES) is held
    # Paris, 23:00 local (22:00 UTC in winter): inside 21:00-08:00
    assert (decide(epoch(2026, 1, 10, 22), category=category, lane=lane, priority=priority) is not None) is held


def test_context_may_hold_other_categories_or_none() -> None:
    night = epoch(2026, 1, 10, 22)
    assert decide(night, category="product", categories=frozenset({"marketing"})) is None
    assert decide(night, categories=frozenset()) is None


def test_outside_quiet_hours_or_without_a_time_zone_nothing_waits() -> None:
    assert decide(epoch(2026, 1, 10, 12)) is None  # 13:00 in Paris
    no_zone = Preferences("u1", quiet_hours=QuietHours.parse("21:00-08:00"))
    assert decide(epoch(2026, 1, 10, 22), preferences=no_zone) is None
    # The request's own time zone serves when the preferences hold none
    held = decide(epoch(2026, 1, 10, 22), preferences=no_zone, request_timezone="Europe/Paris")
    assert held is not None


def test_a_night_is_many_evenly_spaced_hops_of_at_most_900_seconds_each_landing_before_the_end() -> None:
    # Given 22:00 in Paris; the window ends at 08:00 (07:00 UTC), nine hours away
    now = epoch(2026, 1, 10, 21)
    end = epoch(2026, 1, 11, 7)
    first = decide(now)
    assert first is not None
    assert end <= first.resume_at < end + QUIET_HOURS_JITTER_SECONDS
    assert first.hops == math.ceil((first.resume_at - now) / MAX_HOP_SECONDS) >= 36
    # When every hop is taken as told, each lands inside the window until the last lands on the resume time
    at, hops = now, 0
    while (step := decide(at)) is not None:
        assert 450 < step.seconds <= MAX_HOP_SECONDS or step.hops == 1
        assert step.resume_at == first.resume_at  # the jitter is the same at every hop
        at += step.seconds
        hops += 1
    assert hops == first.hops
    assert first.resume_at <= at < first.resume_at + hops  # rounding up to whole seconds, at most 1 s a hop


def test_jitter_spreads_requests_over_the_spread_and_is_stable() -> None:
    end = datetime(2026, 1, 11, 7, tzinfo=UTC)
    values = [jitter_seconds(f"request-{i}", end) for i in range(500)]
    assert all(0 <= v < QUIET_HOURS_JITTER_SECONDS for v in values)
    # Spread, not bunched: every minute of the five has some
    assert {int(v // 60) for v in values} == set(range(QUIET_HOURS_JITTER_SECONDS // 60))
    assert jitter_seconds("request-1", end) == values[1]
    assert jitter_seconds("request-1", datetime(2026, 1, 12, 7, tzinfo=UTC)) != values[1]


def test_dst_night_in_new_york_ends_at_the_local_morning_after_spring_forward() -> None:
    # Given 22:00-07:00 in New York on the night clocks spring forward (2026-03-08, 02:00 -> 03:00)
    prefs = Preferences("u1", timezone="America/New_York", quiet_hours=QuietHours.parse("22:00-07:00"))
    now = epoch(2026, 3, 8, 4)  # 23:00 EST on the 7th
    decision = decide(now, preferences=prefs)
    assert decision is not None
    # The night ends at 07:00 EDT = 11:00 UTC: 7 hours later, though the wall clock moves 8 (it lost an hour)
    end = epoch(2026, 3, 8, 11)
    assert in_quiet_hours(prefs, None, datetime.fromtimestamp(now, UTC)) == datetime.fromtimestamp(end, UTC)
    assert end <= decision.resume_at < end + QUIET_HOURS_JITTER_SECONDS
    assert decision.hops == math.ceil((decision.resume_at - now) / MAX_HOP_SECONDS)
    assert decision.hops == 7 * 3600 // MAX_HOP_SECONDS + 1  # 28 hops for 7 hours, one more for the jitter


def metric(report: BatchReport, name: str, **dimensions: str) -> float:
    """One metric of a batch's report (0 when absent)."""
    groups = batch_metrics(report, lane="standard", now=0).groups()
    return sum(
        v.value
        for dims, values in groups
        if dims == {"lane": "standard", **dimensions}
        for v in values
        if v.name == name
    )


def test_a_night_is_one_schedule_at_the_resume_time_and_the_record_is_acked() -> None:
    clock = FakeClock(epoch(2026, 1, 10, 22))  # 23:00 in Paris
    service, world = build_fake_service(lane="standard", preferences=FakePreferenceStore([PARIS_NIGHTS]), clock=clock)
    assert world.scheduler is not None
    try:
        news, reset = queue_record(NEWSLETTER, sent_at=clock()), queue_record(RESET)
        report = service.process([news, reset])

        # The reset goes at once; the newsletter is acked, held by one schedule, neither retried nor hopped
        assert [e.subject for e in world.sender.sent] == ["Reset your password"]
        assert report.failed == [] and world.deferrals.deferred == []
        assert report.deferred == {news.message_id: REASON_QUIET_HOURS}
        assert metric(report, "QuietHoursDeferred", category="marketing") == 1
        rid = parse_request(news.body).request_id
        logged = world.message_log.get(rid)
        assert logged is not None and logged["status"] == "deferred" and logged["reason_code"] == REASON_QUIET_HOURS
        resume_at = logged["resume_at"]
        assert epoch(2026, 1, 11, 7) <= resume_at < epoch(2026, 1, 11, 7) + QUIET_HOURS_JITTER_SECONDS
        ((name, (at, body)),) = world.scheduler.schedules.items()
        assert (at, body) == (pytest.approx(resume_at, abs=1e-3), news.body)
        assert name == quiet_schedule_name(rid, at)
        assert len(name) <= 64 and re.fullmatch(r"[0-9a-zA-Z_.-]+", name)
        assert world.claims.get(rid) is None  # released: the schedule's copy claims it

        # A redelivery of the record finds the schedule taken: still one, and acked again
        redelivered = queue_record(news.body, sent_at=news.sent_at)
        again = service.process([redelivered])
        assert again.failed == [] and again.deferred == {redelivered.message_id: REASON_QUIET_HOURS}
        assert world.scheduler.created == [name] and world.deferrals.deferred == []

        # When it fires, the body goes through the whole pipeline again, and is sent
        clock.advance(at - clock() + 1)
        (fired,) = world.scheduler.fire(clock())
        morning = service.process([queue_record(fired)])
        assert [o.status for o in morning.outcomes] == ["sent"] and len(world.sender.sent) == 2
        assert world.message_log.get(rid)["status"] == "sent"  # type: ignore[index]
    finally:
        world.close()


def test_a_wait_within_one_sqs_delay_hops_even_with_a_scheduler() -> None:
    clock = FakeClock(epoch(2026, 1, 11, 6, 50))  # 07:50 in Paris: ten minutes (and the jitter) left
    service, world = build_fake_service(lane="standard", preferences=FakePreferenceStore([PARIS_NIGHTS]), clock=clock)
    try:
        news = queue_record(NEWSLETTER)
        report = service.process([news])
        (hop,) = world.deferrals.deferred
        assert report.deferred == {news.message_id: REASON_QUIET_HOURS} and hop.seconds <= MAX_HOP_SECONDS
        assert world.scheduler is not None and world.scheduler.created == []
    finally:
        world.close()


def test_a_schedule_that_cannot_be_made_is_a_retry_not_a_drop() -> None:
    clock = FakeClock(epoch(2026, 1, 10, 22))
    service, world = build_fake_service(lane="standard", preferences=FakePreferenceStore([PARIS_NIGHTS]), clock=clock)
    assert world.scheduler is not None
    try:
        news = queue_record(NEWSLETTER)
        world.scheduler.failures["create"] = TransientError("scheduler_unavailable", "EventBridge Scheduler is down")
        report = service.process([news])
        assert report.failed == [news.message_id] and report.retry_reasons[news.message_id] == "scheduler_unavailable"
        assert report.deferred == {} and world.deferrals.deferred == [] and not world.sender.sent
        rid = parse_request(news.body).request_id
        assert world.claims.get(rid) is None and world.message_log.get(rid) is None

        # Its retry, once the scheduler answers, is held
        world.scheduler.failures.clear()
        assert service.process([queue_record(news.body, receive_count=2)]).failed == []
        assert len(world.scheduler.schedules) == 1
    finally:
        world.close()


def test_without_a_scheduler_a_night_is_hops_and_the_morning_copy_is_sent() -> None:
    clock = FakeClock(epoch(2026, 1, 10, 22))
    service, world = build_fake_service(
        lane="standard", preferences=FakePreferenceStore([PARIS_NIGHTS]), clock=clock, with_scheduler=False
    )
    try:
        news, reset = queue_record(NEWSLETTER, sent_at=clock()), queue_record(RESET)
        report = service.process([news, reset])

        # The reset goes at once; the newsletter is handed back as a new delayed message, not retried
        (sent,) = world.sender.sent
        assert sent.subject == "Reset your password"
        assert report.failed == [] and report.deferred == {news.message_id: REASON_QUIET_HOURS}
        (hop,) = world.deferrals.deferred
        assert (hop.reason, hop.body, hop.deferrals) == (REASON_QUIET_HOURS, news.body, 1)
        assert 450 < hop.seconds <= MAX_HOP_SECONDS
        # Its state says so, with the time it may go; it is not terminal, and its claim is released
        rid = parse_request(news.body).request_id
        logged = world.message_log.get(rid)
        assert logged is not None and logged["status"] == "deferred" and logged["reason_code"] == REASON_QUIET_HOURS
        assert logged["resume_at"] >= epoch(2026, 1, 11, 7)
        assert [entry["status"] for entry in logged["history"]] == ["deferred"]
        assert world.claims.get(rid) is None

        # When the morning comes, the hop's copy is sent, and the log holds the sent outcome
        clock.advance(logged["resume_at"] - clock() + 1)
        again = service.process([queue_record(hop.body)])
        assert [o.status for o in again.outcomes] == ["sent"]
        assert world.message_log.get(rid)["status"] == "sent"  # type: ignore[index]
    finally:
        world.close()
