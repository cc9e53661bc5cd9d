"""SES feedback (mailwright.feedback): parsing both formats in every shape, and the policy, on in-memory fakes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailwright.errors import FeedbackFormatError, TransientError
from mailwright.feedback import (
    EVENT_TYPES,
    FORMAT_EVENT,
    FORMAT_NOTIFICATION,
    HISTORY_STATUS,
    FeedbackService,
    IgnoredMessage,
    SesEvent,
    parse_message,
)
from mailwright.ports import SCOPE_NON_ESSENTIAL, Outcome, with_feedback
from mailwright.suppression import SuppressionService
from mailwright_tools.fakes import (
    FAKE_HASHER,
    FakeClock,
    FakeFeedbackLog,
    FakeRetryScheduler,
    FakeSuppressionLedger,
    StaticAddressKeys,
    queue_record,
)
from tests.events import aimed, event_names, load_event, sns_envelope

# The fixture of each event type in the configuration-set format.
EVENT_FIXTURES = {
    "Send": "event-send",
    "Delivery": "event-delivery",
    "Bounce": "event-bounce-permanent",
    "Complaint": "event-complaint",
    "Reject": "event-reject",
    "Open": "event-open",
    "Click": "event-click",
    "DeliveryDelay": "event-delivery-delay",
    "Rendering Failure": "event-rendering-failure",
    "Subscription": "event-subscription",
}
NOTIFICATION_FIXTURES = {
    "Bounce": "notification-bounce-dsn",
    "Complaint": "notification-complaint-feedback-report",
    "Delivery": "notification-delivery",
}
REQUEST_ID = "0123456789abcdef0123456789abcdef"
SES_ID = "010001234567abcd-feedface-0000-0000-0000-000000000000-000000"


# -- parsing --------------------------------------------------------------------


def test_there_is_a_fixture_of_every_event_type() -> None:
    assert set(EVENT_FIXTURES) == set(EVENT_TYPES)
    assert set(EVENT_FIXTURES.values()) | set(NOTIFICATION_FIXTURES.values()) <= set(event_names())


@pytest.mark.parametrize(("event_type", "name"), sorted(EVENT_FIXTURES.items()))
def test_configuration_set_events_parse(event_type: str, name: str) -> None:
    event = parse_message(load_event(name))

    assert isinstance(event, SesEvent)
    assert event.event_type == event_type and event.source_format == FORMAT_EVENT
    assert event.ses_message_id == load_event(name)["mail"]["messageId"]
    assert event.recipients and event.at > 1_400_000_000


@pytest.mark.parametrize(("event_type", "name"), sorted(NOTIFICATION_FIXTURES.items()))
def test_identity_notifications_parse(event_type: str, name: str) -> None:
    event = parse_message(load_event(name))

    assert isinstance(event, SesEvent)
    assert event.event_type == event_type and event.source_format == FORMAT_NOTIFICATION
    assert event.request_id is None  # identity notifications carry no tags


@pytest.mark.parametrize("name", sorted([*EVENT_FIXTURES.values(), *NOTIFICATION_FIXTURES.values()]))
def test_every_shape_of_the_same_event_parses_alike(name: str) -> None:
    event = load_event(name)
    envelope = sns_envelope(event)
    shapes = [
        event,  # raw delivery, as a dict (a replay)
        json.dumps(event),  # raw delivery: the SQS body is the event
        json.dumps(envelope),  # SNS envelope in the SQS body
        {"body": json.dumps(envelope)},  # an SQS message holding the envelope
        json.dumps(envelope).encode(),
    ]
    parsed = [parse_message(shape) for shape in shapes]

    assert all(p == parsed[0] for p in parsed)


@pytest.mark.parametrize("name", ["sns-event-complaint", "sns-event-delivery", "sns-notification-bounce-dsn"])
def test_sns_envelope_fixtures_hold_their_event(name: str) -> None:
    envelope = load_event(name)

    assert parse_message(envelope) == parse_message(json.loads(envelope["Message"]))


def test_only_the_bounced_recipients_of_a_bounce_are_named() -> None:
    event = parse_message(load_event("notification-bounce-dsn"))

    assert isinstance(event, SesEvent)
    assert load_event("notification-bounce-dsn")["mail"]["destination"] == [
        "jane@example.com",
        "mary@example.com",
        "richard@example.com",
    ]
    assert event.recipients == ("jane@example.com",)
    assert event.bounce_type == "Permanent" and event.feedback_id


def test_the_request_id_tag_is_read() -> None:
    event = parse_message(aimed(load_event("event-delivery"), request_id=REQUEST_ID))

    assert isinstance(event, SesEvent) and event.request_id == REQUEST_ID


def test_details_for_the_log_keep_no_address_and_no_link_parameters() -> None:
    bounce = parse_message(load_event("notification-bounce-dsn"))
    click = parse_message(
        aimed(load_event("event-click"), recipients=["jane@example.com"])
        | {"click": {**load_event("event-click")["click"], "link": "https://x.example/u?e=jane@example.com&t=1"}}
    )

    assert isinstance(bounce, SesEvent) and isinstance(click, SesEvent)
    assert bounce.detail["diagnostic"] == "smtp; 550 5.1.1 <j***@example.com>... User"
    assert click.detail == {"link": "https://x.example/u"}
    assert "jane@example.com" not in json.dumps([bounce.detail, click.detail])


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ("not json at all", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"mail": {"messageId": "x"}}', "neither eventType nor notificationType"),
        ('{"eventType": 42, "mail": {"messageId": "x"}}', "not a string"),
        ('{"eventType": "Delivery", "mail": {}}', "mail.messageId"),
        ('{"eventType": "Bounce", "mail": {"messageId": "x", "timestamp": "2020-01-01T00:00:00Z"}}', "missing"),
        (
            '{"eventType": "Bounce", "bounce": {"bouncedRecipients": "x"}, "mail": {"messageId": "x",'
            ' "timestamp": "2020-01-01T00:00:00Z"}}',
            "not a list",
        ),
        ('{"eventType": "Send", "mail": {"messageId": "x"}}', "no timestamp"),
        (
            json.dumps(sns_envelope({}) | {"Message": "{oops", "MessageId": "5f1c1a45-0000-4000-8000-000000000001"}),
            "not JSON",
        ),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(payload: str, why: str) -> None:
    with pytest.raises(FeedbackFormatError, match=why):
        parse_message(payload)


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"eventType": "Teleport", "mail": {"messageId": "m-1"}}, "unknown:Teleport"),
        (
            {"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "ok"},
            "setup:AmazonSnsSubscriptionSucceeded",
        ),
        (load_event("sns-subscription-confirmation"), "sns:SubscriptionConfirmation"),
    ],
)
def test_messages_that_are_not_events_are_ignored(payload: dict[str, Any], kind: str) -> None:
    ignored = parse_message(payload)

    assert isinstance(ignored, IgnoredMessage) and ignored.kind == kind


# -- the service ----------------------------------------------------------------


class World:
    """A FeedbackService on fakes, with one request already sent (REQUEST_ID, SES id SES_ID)."""

    def __init__(self) -> None:
        self.clock = FakeClock(start=1_700_000_000.0)
        self.ledger = FakeSuppressionLedger()
        self.suppressions = SuppressionService(self.ledger, address_keys=StaticAddressKeys(), clock=self.clock)
        self.log = FakeFeedbackLog()
        self.retries = FakeRetryScheduler()
        self.service = FeedbackService(suppressions=self.suppressions, log=self.log, retries=self.retries)
        self.log.message_log.record(
            [Outcome(request_id=REQUEST_ID, status="sent", lane="standard", ses_message_id=SES_ID, completed_at=1.0)]
        )

    def event(self, name: str, **aim: Any) -> dict[str, Any]:
        """A fixture about our request (its SES id), optionally with recipients or tags changed."""
        return aimed(load_event(name), ses_message_id=aim.pop("ses_message_id", SES_ID), **aim)

    def suppressed(self, address: str) -> str | None:
        entry = self.suppressions.check(address)
        return entry.reason if entry else None


@pytest.fixture
def world() -> World:
    return World()


def test_permanent_bounce_suppresses_only_the_bounced_recipients(world: World) -> None:
    report = world.service.process_events([world.event("event-bounce-some-recipients")])

    assert (report.processed, report.suppressed, report.failed) == (1, 2, [])
    assert world.suppressed("jane@example.com") == "BOUNCE"
    assert world.suppressed("richard@example.com") == "BOUNCE"
    assert world.suppressed("mary@example.com") is None  # a destination that did not bounce


def test_identity_notification_bounce_in_an_sns_envelope_suppresses(world: World) -> None:
    report = world.service.process([queue_record(json.dumps(sns_envelope(world.event("notification-bounce-dsn"))))])

    assert report.processed == 1 and report.failed == []
    assert world.suppressed("jane@example.com") == "BOUNCE"
    assert world.suppressed("mary@example.com") is None
    # No tags in this format: the request was found by its SES message id.
    assert [h["status"] for h in world.log.history[REQUEST_ID]] == ["bounced"]


def test_transient_bounces_suppress_at_the_threshold(world: World) -> None:
    def transient(n: int) -> dict[str, Any]:
        event = world.event("event-bounce-transient")
        event["bounce"]["feedbackId"] = f"feedback-{n}"
        event["bounce"]["timestamp"] = f"2017-08-0{n + 1}T00:00:00.000Z"
        return event

    first = world.service.process_events([transient(1), transient(2)])
    assert first.soft_bounces == 2 and first.suppressed == 0
    assert world.suppressed("recipient@example.com") is None

    third = world.service.process_events([transient(3)])

    assert third.suppressed == 1
    entry = world.suppressions.check("recipient@example.com")
    assert entry is not None and entry.reason == "SOFT_BOUNCE"
    assert entry.expires_at == int(world.clock() + 14 * 86400)


def test_undetermined_bounce_is_recorded_but_suppresses_nothing(world: World) -> None:
    report = world.service.process_events([world.event("event-bounce-undetermined")])

    assert report.processed == 1 and report.suppressed == 0
    assert world.suppressed("recipient@example.com") is None
    assert world.ledger.soft_bounces == {}
    assert world.log.history[REQUEST_ID][-1]["status"] == "bounced"


@pytest.mark.parametrize("name", ["event-complaint", "notification-complaint-no-feedback-report"])
def test_complaint_suppresses_non_essential_mail(world: World, name: str) -> None:
    world.service.process_events([world.event(name)])

    complainer = load_event(name)["complaint"]["complainedRecipients"][0]["emailAddress"]
    entry = world.suppressions.check(complainer)
    assert entry is not None and entry.reason == "COMPLAINT" and entry.scope == SCOPE_NON_ESSENTIAL


@pytest.mark.parametrize(
    ("event_type", "name"), sorted({**EVENT_FIXTURES, **NOTIFICATION_FIXTURES}.items() - {("Send", "event-send")})
)
def test_every_event_type_but_send_is_appended_to_the_request_history(world: World, event_type: str, name: str) -> None:
    report = world.service.process_events([world.event(name)])

    assert report.processed == 1 and report.by_type[event_type] == 1
    (entry,) = world.log.history[REQUEST_ID]
    assert entry["status"] == HISTORY_STATUS[event_type] and entry["event"] == event_type
    # The send worker's terminal status is untouched.
    assert world.log.message_log.outcome(REQUEST_ID).status == "sent"  # type: ignore[union-attr]


@pytest.mark.parametrize("request_id", [REQUEST_ID, "not-logged-yet", None])
def test_a_send_event_is_counted_but_never_looked_up_written_or_deferred(world: World, request_id: str | None) -> None:
    # The send worker logged `sent` with the SES message id when SES accepted the message: Send adds nothing.
    send = world.event("event-send", ses_message_id="unknown-ses-id", request_id=request_id)

    report = world.service.process([queue_record(json.dumps(send), receive_count=1)])

    assert (report.processed, report.by_type["Send"], report.deferred, report.failed) == (1, 1, 0, [])
    assert world.log.calls == {}
    assert world.log.history == {} and world.log.unattributed == {}


def test_the_request_id_tag_finds_the_request_without_the_index(world: World) -> None:
    world.service.process_events([world.event("event-open", ses_message_id="unknown-ses-id", request_id=REQUEST_ID)])

    assert world.log.history[REQUEST_ID][0]["status"] == "opened"
    assert world.log.calls["find_request_id"] == 0


def test_delivery_state_only_moves_forward(world: World) -> None:
    world.service.process_events([world.event("event-open"), world.event("event-delivery"), world.event("event-send")])

    assert [h["status"] for h in world.log.history[REQUEST_ID]] == ["opened", "delivered"]
    logged = world.log.message_log.get(REQUEST_ID)
    assert logged is not None and logged["delivery"] == "opened"


def test_a_request_logged_before_events_lived_in_its_history_reads_as_it_did() -> None:
    # Given a request item of the earlier layout: bare history entries, each event also an item beside it,
    # and the furthest state stored in `delivery`
    old = {
        "status": "sent",
        "history": [
            {"status": "sent", "at": 1},
            {"status": "bounced", "at": 5, "event": "Bounce"},
            {"status": "opened", "at": 3, "event": "Open"},
        ],
        "delivery": "bounced",
        "delivery_rank": 6,
        "delivery_at": 5,
    }
    beside = [{"sk": "event#b", "type": "Bounce", "status": "bounced", "at": 5, "detail": {"bounce_type": "Permanent"}}]
    # ... and an Open appended since, in the current layout
    old["history"].append({"status": "opened", "at": 7, "event": "Open", "rank": 3})

    view = with_feedback(old, beside)

    assert view["delivery"] == "bounced"
    assert [(e["type"], e["at"]) for e in view["events"]] == [("Open", 3), ("Bounce", 5), ("Open", 7)]
    assert view["events"][1]["detail"] == {"bounce_type": "Permanent"}


def test_a_redelivered_event_is_applied_once(world: World) -> None:
    event = world.event("event-bounce-transient")
    world.service.process_events([event, event, json.dumps(sns_envelope(event))])

    assert len(world.log.history[REQUEST_ID]) == 1
    assert len(world.ledger.soft_bounces[FAKE_HASHER.address_hash("recipient@example.com")]) == 1


def test_unknown_event_types_are_ignored_and_counted_without_failing(world: World) -> None:
    records = [
        queue_record({"eventType": "Teleport", "mail": {"messageId": SES_ID}}, message_id="m-unknown"),
        queue_record(json.dumps(world.event("event-delivery")), message_id="m-ok"),
    ]

    report = world.service.process(records)

    assert (report.ignored, report.processed, report.errors, report.failed) == (1, 1, 0, [])
    assert report.by_type["unknown:Teleport"] == 1


def test_malformed_messages_fail_alone_so_they_reach_the_dlq(world: World) -> None:
    records = [
        queue_record("this is not json", message_id="m-garbage"),
        queue_record(json.dumps(world.event("event-bounce-permanent")), message_id="m-bounce"),
        queue_record({"eventType": "Bounce", "mail": {"messageId": "x"}}, message_id="m-no-bounce-object"),
    ]

    report = world.service.process(records)

    assert report.partial_batch_response() == {
        "batchItemFailures": [{"itemIdentifier": "m-garbage"}, {"itemIdentifier": "m-no-bounce-object"}]
    }
    assert report.errors == 2 and report.processed == 1
    assert world.suppressed("recipient@example.com") == "BOUNCE"


def test_an_event_before_its_request_is_logged_is_retried_then_kept(world: World) -> None:
    early = world.event("event-delivery", ses_message_id="not-logged-yet")

    first = world.service.process([queue_record(json.dumps(early), message_id="m-1", receive_count=1)])
    assert first.failed == ["m-1"] and first.deferred == 1 and first.errors == 0

    # On the last attempt it is kept under its SES message id instead of being retried again.
    last = world.service.process([queue_record(json.dumps(early), message_id="m-1", receive_count=3)])
    assert last.failed == [] and last.unmatched == 1
    assert [r.ses_message_id for r in world.log.unattributed.values()] == ["not-logged-yet"]


def test_a_deferred_event_comes_back_in_seconds_not_after_the_visibility_timeout(world: World) -> None:
    # Given an event that beat its request's log entry, beside one that did not
    early = world.event("event-delivery", ses_message_id="not-logged-yet")
    on_time = world.event("event-delivery")

    world.service.process(
        [
            queue_record(json.dumps(early), message_id="m-early", receive_count=2),
            queue_record(json.dumps(on_time), message_id="m-on-time"),
        ]
    )

    # Then only the deferred one is delayed, by the policy's step times its delivery count
    assert world.retries.delays == [("receipt-m-early", 2 * world.service.policy.defer_seconds)]


def test_a_tagged_event_whose_request_never_got_logged_is_kept_under_it(world: World) -> None:
    tagged = world.event("event-delivery", ses_message_id="x", request_id="never-logged")

    deferred = world.service.process([queue_record(json.dumps(tagged), receive_count=1)])
    kept = world.service.process([queue_record(json.dumps(tagged), receive_count=3)])

    assert deferred.deferred == 1 and kept.unmatched == 1 and kept.failed == []
    (event,) = world.log.events["never-logged"].values()
    assert event.status == "delivered"


def test_suppression_happens_even_when_the_log_must_wait(world: World) -> None:
    early = world.event("event-bounce-permanent", ses_message_id="not-logged-yet")

    report = world.service.process([queue_record(json.dumps(early), receive_count=1)])

    assert report.deferred == 1
    assert world.suppressed("recipient@example.com") == "BOUNCE"


def test_a_transient_dependency_failure_retries_the_record_without_counting_an_error(world: World) -> None:
    world.ledger.failures["get"] = TransientError("throttled", "slow down")

    report = world.service.process([queue_record(json.dumps(world.event("event-complaint")), message_id="m-1")])

    assert report.failed == ["m-1"] and report.errors == 0 and report.processed == 0


def test_an_unexpected_failure_is_an_error_and_a_retry(world: World) -> None:
    world.log.failures["append"] = RuntimeError("bug")

    report = world.service.process([queue_record(json.dumps(world.event("event-delivery")), message_id="m-1")])

    assert report.failed == ["m-1"] and report.errors == 1


def test_replayed_items_that_are_not_messages_are_errors(world: World) -> None:
    report = world.service.process_events([42, world.event("event-send")])  # type: ignore[list-item]

    assert report.failed == ["event-0"] and report.errors == 1 and report.processed == 1


def test_a_pathologically_nested_message_is_malformed_not_a_crash(world: World) -> None:
    nested: dict[str, Any] = {"eventType": "Send", "mail": {"messageId": "m", "timestamp": "2020-01-01T00:00:00Z"}}
    deep = nested["mail"]
    for _ in range(5000):
        deep["x"] = {}
        deep = deep["x"]

    report = world.service.process_events([nested])

    assert report.errors == 1 and report.failed == ["event-0"]
