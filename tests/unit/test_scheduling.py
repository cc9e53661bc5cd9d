"""Scheduled sends and cancellation: the request contract, the due/short/long decision, and the worker's stage.

The worker runs against the in-memory fakes with a fake clock: a short schedule
is deferred by the remaining delay, a long one creates one EventBridge schedule
however often it is delivered, a cancel before the send wins and one after it
changes nothing, a cancel_key cancels every request published with it, and a
reschedule is followed by whichever copy of the request arrives.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from mailwright.constants import MAX_SCHEDULE_AHEAD_SECONDS, STATUS_CANCELLED, STATUS_SCHEDULED, STATUS_SENT
from mailwright.errors import RejectedError
from mailwright.request import parse_request
from mailwright.scheduling import (
    InvalidSendAtError,
    ScheduleDesk,
    parse_send_at,
    schedule_name,
    timing,
)
from mailwright.sending import SendService
from mailwright_tools.fakes import FakeClock, FakeWorld, build_fake_service, queue_record

# Whole minutes near the wall clock: the contract's "at most a year ahead" is checked against it.
NOW = float(int(time.time()) // 60 * 60)
TTL_DAYS = 90


def iso_in(seconds: float) -> str:
    """The ISO time `seconds` after NOW, with an offset other than UTC (the same instant)."""
    return datetime.fromtimestamp(NOW + seconds, UTC).astimezone(timezone(timedelta(hours=1))).isoformat()


def request(key: str, *, ahead: float | None = None, **fields: Any) -> dict[str, Any]:
    """An order confirmation with idempotency key `key`, `ahead` seconds from NOW when given."""
    body: dict[str, Any] = {
        "recipient_email": "jane@example.com",
        "template_id": "order_confirmation",
        "template_data": {"order_id": "XYZ789", "total_amount": "$49.99", "customer_name": "Jane"},
        "idempotency_key": key,
        **fields,
    }
    if ahead is not None:
        body["send_at"] = iso_in(ahead)
    return body


def rid(body: dict[str, Any]) -> str:
    return parse_request(body).request_id


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=NOW)


@pytest.fixture
def service(clock: FakeClock) -> Iterator[tuple[SendService, FakeWorld]]:
    built = build_fake_service(clock=clock, message_log_ttl_days=TTL_DAYS)
    yield built
    built[1].close()


def desk(world: FakeWorld, clock: FakeClock) -> ScheduleDesk:
    assert world.schedules is not None
    return ScheduleDesk(store=world.schedules, scheduler=world.scheduler, log_ttl_seconds=TTL_DAYS * 86400, clock=clock)


# -- the contract -------------------------------------------------------------


def test_send_at_needs_an_offset_and_at_most_a_year(clock: FakeClock) -> None:
    with pytest.raises(RejectedError, match="send_at needs a UTC offset"):
        parse_request(request("a") | {"send_at": "2026-12-24T09:00:00"})
    with pytest.raises(RejectedError, match=r"send_at: .*at most 366 days ahead"):
        parse_request(request("a", ahead=MAX_SCHEDULE_AHEAD_SECONDS + 3600))
    with pytest.raises(RejectedError, match=r"send_at: .*expected ISO 8601 text"):
        parse_request(request("a") | {"send_at": 1_800_000_000})
    with pytest.raises(RejectedError, match=r"send_at: .*expected ISO 8601 text"):
        parse_request(request("a") | {"send_at": "1800000000"})  # pydantic alone would read epoch seconds
    # A time past is valid: it means now.
    assert parse_request(request("a", ahead=-3600)).send_at is not None
    zulu = datetime.fromtimestamp(NOW + 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert parse_request(request("a") | {"send_at": zulu}).send_at == datetime.fromtimestamp(NOW + 60, UTC)


def test_cancel_key_is_bounded(clock: FakeClock) -> None:
    assert parse_request(request("a", cancel_key="order-1234:reminders")).cancel_key == "order-1234:reminders"
    for bad in ("", "has space", "x" * 129, "-leading"):
        with pytest.raises(RejectedError, match="cancel_key"):
            parse_request(request("a", cancel_key=bad))


def test_request_without_the_new_fields_keeps_its_id() -> None:
    # send_at and cancel_key are left out of the content hash when absent: existing ids do not change.
    plain = {"recipient_email": "a@example.com", "template_id": "welcome_email"}
    assert parse_request(plain).request_id == parse_request(plain | {"cancel_key": None}).request_id


def test_timing_boundaries() -> None:
    assert timing(None, NOW) == ("due", 0)
    assert timing(NOW - 50, NOW) == ("due", 0)
    assert timing(NOW + 0.5, NOW) == ("due", 0)
    assert timing(NOW + 10.2, NOW) == ("short", 11)
    assert timing(NOW + 900, NOW) == ("short", 900)
    assert timing(NOW + 901, NOW) == ("long", 901)


def test_parse_send_at() -> None:
    at = datetime(2026, 12, 1, 18, tzinfo=UTC).timestamp()
    assert parse_send_at("2026-12-01T19:00:00+01:00", now=at) == at
    assert parse_send_at("2026-12-01T18:00:00Z", now=at) == at
    with pytest.raises(InvalidSendAtError, match="UTC offset"):
        parse_send_at("2026-12-01T18:00:00", now=at)
    with pytest.raises(InvalidSendAtError, match="not an ISO 8601 time"):
        parse_send_at("tomorrow", now=at)
    with pytest.raises(InvalidSendAtError, match="at most"):
        parse_send_at("2028-12-01T18:00:00Z", now=at)


# -- the worker -----------------------------------------------------------------


def test_short_schedule_is_deferred_by_the_remaining_delay_then_sent(
    service: tuple[SendService, FakeWorld], clock: FakeClock
) -> None:
    send, world = service
    body = request("short", ahead=300)
    report = send.process([queue_record(body, message_id="m1", sent_at=NOW)])
    assert report.deferred == {"m1": "scheduled"}
    assert [(d.seconds, d.reason) for d in world.deferrals.deferred] == [(300, "scheduled")]
    assert not world.sender.sent and not world.scheduler.schedules  # type: ignore[union-attr]
    assert world.schedules is not None
    record = world.schedules.read([rid(body)])[rid(body)]
    assert (record.status, record.send_at) == (STATUS_SCHEDULED, NOW + 300)
    # Dedupe and the log outlive the send: the record expires counted from send_at, not from publication.
    entry = world.schedules.entry(rid(body))
    assert entry is not None and entry.expires_at == int(NOW + 300 + TTL_DAYS * 86400)

    clock.advance(300)
    report = send.process([queue_record(world.deferrals.deferred[0].body, message_id="m2", sent_at=NOW)])
    assert [o.status for o in report.outcomes] == [STATUS_SENT]
    assert len(world.sender.sent) == 1


def test_long_schedule_creates_one_schedule_even_when_delivered_again(
    service: tuple[SendService, FakeWorld], clock: FakeClock
) -> None:
    send, world = service
    scheduler = world.scheduler
    assert scheduler is not None
    body = request("long", ahead=3 * 86400)
    first = send.process([queue_record(body, message_id="m1", sent_at=NOW)])
    again = send.process([queue_record(body, message_id="m1", sent_at=NOW)])  # a redelivery
    assert first.held == again.held == 1 and not first.failed and not again.failed
    assert scheduler.created == [schedule_name(rid(body))]
    at, stored = scheduler.schedules[schedule_name(rid(body))]
    assert at == NOW + 3 * 86400 and stored == queue_record(body).body
    assert not world.sender.sent and not world.deferrals.deferred

    # EventBridge puts the body on the lane queue at the time: the worker sends it, once.
    clock.advance(3 * 86400)
    (fired,) = scheduler.fire(clock())
    report = send.process([queue_record(fired, message_id="m3", sent_at=clock())])
    assert [o.status for o in report.outcomes] == [STATUS_SENT]
    assert send.process([queue_record(fired, message_id="m4", sent_at=clock())]).duplicates == 1
    assert len(world.sender.sent) == 1


def test_cancel_before_the_send_wins_and_deletes_the_schedule(
    service: tuple[SendService, FakeWorld], clock: FakeClock
) -> None:
    send, world = service
    body = request("cancel-me", ahead=7200)
    send.process([queue_record(body, sent_at=NOW)])
    result = desk(world, clock).cancel(rid(body))
    assert (result.status, result.changed) == (STATUS_CANCELLED, True)
    assert world.scheduler is not None and not world.scheduler.schedules
    # A copy that fires anyway (the delete is best effort) is dropped, never sent.
    clock.advance(7200)
    report = send.process([queue_record(body, sent_at=NOW)])
    assert not report.outcomes and not report.failed and not world.sender.sent
    assert world.message_log.statuses([rid(body)]) == {rid(body): STATUS_CANCELLED}


def test_cancel_of_a_request_not_seen_yet_stops_it_at_no_extra_read(
    service: tuple[SendService, FakeWorld], clock: FakeClock
) -> None:
    send, world = service
    body = request("plain")  # no send_at, no cancel_key: scheduling reads nothing for it
    assert desk(world, clock).cancel(rid(body)).changed
    assert world.schedules is not None
    world.schedules.reset_calls()
    report = send.process([queue_record(body, sent_at=NOW)])
    assert report.duplicates == 1 and not world.sender.sent
    assert world.schedules.calls["read"] == 0


def test_cancel_after_the_send_says_so_and_changes_nothing(
    service: tuple[SendService, FakeWorld], clock: FakeClock
) -> None:
    send, world = service
    body = request("sent-already", ahead=60)
    send.process([queue_record(body, sent_at=NOW)])
    clock.advance(60)
    send.process([queue_record(body, sent_at=NOW)])
    assert len(world.sender.sent) == 1
    result = desk(world, clock).cancel(rid(body))
    assert (result.status, result.changed) == (STATUS_SENT, False)
    assert world.message_log.statuses([rid(body)]) == {rid(body): STATUS_SENT}


def test_cancel_key_cancels_every_request_published_with_it_before(
    service: tuple[SendService, FakeWorld], clock: FakeClock
) -> None:
    send, world = service
    held = [request(f"k{i}", ahead=600 + i * 86400, cancel_key="order-7") for i in range(3)]
    queued = request("k-queued", cancel_key="order-7")  # still in a queue when the key is cancelled
    other = request("other-key", ahead=600, cancel_key="order-8")
    send.process([queue_record(b, sent_at=NOW) for b in [*held, other]])
    clock.advance(1)
    cancelled = desk(world, clock).cancel_key("order-7")
    assert sorted(r.request_id for r in cancelled.results if r.changed) == sorted(map(rid, held))
    # Published after the cancel: the key no longer stops it.
    later = request("k-later", cancel_key="order-7")
    clock.advance(1)
    report = send.process(
        [queue_record(queued, sent_at=NOW), queue_record(later, sent_at=clock()), queue_record(held[0], sent_at=NOW)]
    )
    assert [o.request_id for o in report.outcomes if o.status == STATUS_SENT] == [rid(later)]
    statuses = world.message_log.statuses([rid(b) for b in [*held, queued]])
    assert set(statuses.values()) == {STATUS_CANCELLED} and len(statuses) == 4
    assert world.schedules is not None
    assert [r.request_id for r in world.schedules.scheduled("-")] == [rid(other)]


def test_reschedule_is_followed_by_the_copy_that_arrives(
    service: tuple[SendService, FakeWorld], clock: FakeClock
) -> None:
    send, world = service
    body = request("move-me", ahead=120)
    send.process([queue_record(body, sent_at=NOW)])
    desk(world, clock).reschedule(rid(body), NOW + 600)
    # The old delayed message arrives at the old time: held again for the rest, by the record.
    clock.advance(120)
    report = send.process([queue_record(body, message_id="early", sent_at=NOW)])
    assert report.deferred == {"early": "scheduled"} and world.deferrals.deferred[-1].seconds == 480
    # Moved beyond 15 minutes: an EventBridge schedule takes over at the record's time.
    desk(world, clock).reschedule(rid(body), NOW + 7200)
    clock.advance(480)
    assert send.process([queue_record(body, sent_at=NOW)]).held == 1
    assert world.scheduler is not None
    assert world.scheduler.schedules[schedule_name(rid(body))][0] == NOW + 7200
    # A long schedule moves with the record.
    assert desk(world, clock).reschedule(rid(body), NOW + 9000).changed
    assert world.scheduler.schedules[schedule_name(rid(body))][0] == NOW + 9000
    assert not world.sender.sent


def test_reschedule_of_a_sent_request_changes_nothing(service: tuple[SendService, FakeWorld], clock: FakeClock) -> None:
    send, world = service
    body = request("done")
    send.process([queue_record(body, sent_at=NOW)])
    result = desk(world, clock).reschedule(rid(body), NOW + 600)
    assert (result.status, result.changed) == (STATUS_SENT, False)


def test_a_store_failure_retries_only_the_scheduled_requests(
    service: tuple[SendService, FakeWorld], clock: FakeClock
) -> None:
    send, world = service
    assert world.schedules is not None
    world.schedules.failures["read"] = RuntimeError("dynamodb down")
    report = send.process(
        [queue_record(request("s", ahead=600), message_id="s"), queue_record(request("p"), message_id="p")]
    )
    assert report.failed == ["s"] and report.retry_reasons["s"] == "schedule_store_unavailable"
    assert [o.status for o in report.outcomes] == [STATUS_SENT]


# -- the producers' API ------------------------------------------------------------


def test_api_cancel_answers_200_then_409_and_keeps_producers_apart(
    service: tuple[SendService, FakeWorld], clock: FakeClock
) -> None:
    import json

    from mailwright.api_services import ApiServices
    from mailwright.handlers import api
    from mailwright.status import StatusService
    from mailwright_tools.fakes import FakeProducerDirectory, FakeRecipientIndex, StaticAddressKeys
    from mailwright_tools.local.api_server import rest_api_event

    send, world = service
    held, sent = request("api-held", ahead=7200), request("api-sent", producer="other")
    send.process([queue_record(held, sent_at=NOW), queue_record(sent, sent_at=NOW)])
    producers = FakeProducerDirectory()
    producers.add("k3y", "shop")
    services = ApiServices(
        status=StatusService(world.message_log, FakeRecipientIndex(world.message_log), StaticAddressKeys()),
        producers=producers,
        schedules=desk(world, clock),
    )

    def cancel(request_id: str, *, key: str | None = None) -> tuple[int, dict[str, Any]]:
        event = rest_api_event("POST", f"/v1/messages/{request_id}/cancel", caller_arn=None if key else "arn:x")
        if key:
            event["requestContext"]["identity"]["apiKeyId"] = key
        answer = api.handle(services, event)
        return int(answer["statusCode"]), json.loads(answer["body"])

    assert cancel(rid(held)) == (200, {"request_id": rid(held), "status": "cancelled", "cancelled": True})
    assert cancel(rid(held))[1]["error"]["code"] == "not_cancellable"
    assert cancel(rid(sent)) == (
        409,
        {"error": {"code": "already_sent", "message": cancel(rid(sent))[1]["error"]["message"]}},
    )
    # A producer's key cancels only its own requests: another's is not found, and stays as it is.
    assert cancel(rid(sent), key="k3y")[0] == 404
    assert cancel("not-an-id")[0] == 400
    assert world.message_log.statuses([rid(sent)]) == {rid(sent): STATUS_SENT}


def test_schedule_settings_are_all_or_nothing() -> None:
    from mailwright.constants import Env
    from mailwright.errors import ConfigurationError
    from mailwright.settings import ScheduleSettings

    assert ScheduleSettings.from_env({}) is None
    with pytest.raises(ConfigurationError, match=Env.SCHEDULE_KEY_ARN):
        ScheduleSettings.from_env({Env.SCHEDULE_GROUP: "g", Env.SCHEDULER_ROLE_ARN: "r", Env.QUEUE_ARN: "q",
                                   Env.SCHEDULE_DLQ_ARN: "d"})  # fmt: skip


def test_status_api_shows_a_scheduled_requests_send_at() -> None:
    from mailwright.status_models import MessageStatus

    item = {"pk": "ab" * 16, "status": STATUS_SCHEDULED, "send_at": NOW + 60, "completed_at": NOW}
    assert MessageStatus.from_item(item).send_at == datetime.fromtimestamp(NOW + 60, UTC)
    # Once sent, the send_at of the schedule is history, not the state.
    assert MessageStatus.from_item({**item, "status": STATUS_SENT}).send_at is None


def test_scheduled_and_cancelled_entries_are_announced() -> None:
    from mailwright.outcome_events import events_from_change

    scheduled_entry = {"status": STATUS_SCHEDULED, "at": NOW, "evaluation": 1}
    cancelled_entry = {"status": STATUS_CANCELLED, "at": NOW + 5, "evaluation": 1}
    item = {"pk": "ab" * 16, "sk": "request", "status": STATUS_SCHEDULED, "lane": "standard", "completed_at": NOW}
    item["history"] = [scheduled_entry]
    cancelled = {**item, "status": STATUS_CANCELLED, "history": [scheduled_entry, cancelled_entry]}
    assert [e.detail_type for e in events_from_change(None, item)] == ["EmailScheduled"]
    assert [e.detail_type for e in events_from_change(item, cancelled)] == ["EmailCancelled"]
