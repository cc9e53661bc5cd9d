"""The send pipeline (SendService) against the in-memory fakes: one outcome, or one retry, per record."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from mailwright.errors import DailyQuotaExceededError, RejectedError, ThrottledError, TransientError
from mailwright.pacing import Pacer
from mailwright.ports import SCOPE_NON_ESSENTIAL, ClaimRecord, OutboundEmail, Outcome, Preferences, Suppression
from mailwright.request import parse_request
from mailwright.sending import MAX_DEFERRALS, BatchReport, QueueRecord, SendService
from mailwright.settings import RateLimit
from mailwright.templates import LocaleParts, TemplateBundle, TemplateMetadata, load_template_tree
from mailwright_tools.fakes import FAKE_HASHER, TEMPLATES_DIR, FakeEmailSender, FakeMessageLog, FakeWorld, queue_record

from .conftest import FakeServiceFactory

SAMPLES = {tid: bundle.metadata.sample_data for tid, bundle in load_template_tree(TEMPLATES_DIR).items()}
BASE_URL = "https://example.com/unsubscribe"


def body(template_id: str = "welcome_email", to: str = "john.doe@example.com", **fields: Any) -> dict[str, Any]:
    """A request for a shipped template filled with its sample data; `fields` replace or add fields."""
    return {"recipient_email": to, "template_id": template_id, "template_data": dict(SAMPLES[template_id]), **fields}


def request_id(message: dict[str, Any]) -> str:
    """The request id the pipeline gives a request."""
    return parse_request(message).request_id


def run(service: SendService, *bodies: dict[str, Any] | str, **kwargs: Any) -> tuple[BatchReport, list[QueueRecord]]:
    """Process one batch of the given bodies (message ids m0, m1, ...)."""
    records = [queue_record(b, message_id=f"m{i}") for i, b in enumerate(bodies)]
    return service.process(records, **kwargs), records


def outcome_of(report: BatchReport, message: dict[str, Any]) -> Outcome:
    """The single outcome the batch recorded for a request."""
    rid = request_id(message)
    found = [o for o in report.outcomes if o.request_id == rid]
    assert len(found) == 1, f"expected one outcome for {rid}, got {found}"
    return found[0]


def assert_accounted(report: BatchReport, records: list[QueueRecord]) -> None:
    """Every record ends with exactly one outcome, one retry, one deferral, or as a counted duplicate."""
    assert len(set(report.failed)) == len(report.failed)
    assert set(report.failed) <= {r.message_id for r in records}
    assert not set(report.failed) & set(report.deferred)
    assert len(report.outcomes) + len(report.failed) + len(report.deferred) + report.duplicates == len(records)


def product_bundle() -> TemplateBundle:
    """A non-essential `product` template with an unsubscribe link (none ships)."""
    return TemplateBundle(
        template_id="product_update",
        metadata=TemplateMetadata(category="product", required_variables=("user_name",)),
        locales={
            "en": LocaleParts(
                subject="What's new, {{ user_name }}",
                html="<a href='{{ unsubscribe_url }}'>x</a>",
                text="{{ unsubscribe_url }}",
            )
        },
    )


@pytest.fixture
def service(service_and_world: tuple[SendService, FakeWorld]) -> SendService:
    """A standard-lane service without rate limits."""
    return service_and_world[0]


@pytest.fixture
def world(service_and_world: tuple[SendService, FakeWorld]) -> FakeWorld:
    """The fakes behind `service`."""
    return service_and_world[1]


# -- sent -----------------------------------------------------------------------


def test_seed_request_is_sent_and_logged(service: SendService, world: FakeWorld) -> None:
    # Given the seed article's welcome message
    message = body(to="John.Doe@Example.com", metadata={"campaign": "onboarding"})

    # When the worker processes it
    report, records = run(service, message)

    # Then one email goes out, addressed and rendered as the template says
    assert report.failed == [] and report.duplicates == 0
    (email,) = world.sender.sent
    assert email.to_address == "john.doe@example.com"
    assert email.from_address == "Example <no-reply@example.com>"
    assert email.subject == "Welcome aboard, John"
    assert "https://your-app.com/login" in email.text and "https://your-app.com/login" in email.html
    assert email.configuration_set == world.policy.configuration_set
    # And its terminal state is recorded, with the address masked and hashed, never in clear
    outcome = outcome_of(report, message)
    assert outcome.status == "sent"
    assert world.sender.by_message_id[outcome.ses_message_id or ""] is email
    assert (outcome.template_id, outcome.category, outcome.locale, outcome.lane) == (
        "welcome_email",
        "transactional",
        "en",
        "standard",
    )
    assert outcome.recipient_masked == "j***@example.com"
    assert outcome.template_version == world.templates.get("welcome_email").version
    assert outcome.metadata == {"campaign": "onboarding"}
    assert "john.doe@example.com" not in repr(outcome)
    assert world.message_log.statuses({outcome.request_id}) == {outcome.request_id: "sent"}
    # And the claim stays, so a redelivery is recognised
    assert world.claims.get(outcome.request_id) is not None
    assert report.partial_batch_response() == {"batchItemFailures": []}
    assert_accounted(report, records)


def test_both_seed_producer_messages_are_sent(service: SendService, world: FakeWorld) -> None:
    welcome = {
        "recipient_email": "john.doe@example.com",
        "template_id": "welcome_email",
        "template_data": {"user_name": "John", "login_link": "https://your-app.com/login"},
    }
    order = {
        "recipient_email": "jane.smith@example.com",
        "template_id": "order_confirmation",
        "template_data": {"order_id": "XYZ789", "total_amount": "$49.99"},
    }
    report, _ = run(service, welcome, order)
    assert [o.status for o in report.outcomes] == ["sent", "sent"]
    assert world.sender.sent_to("jane.smith@example.com")[0].subject == "Your order #XYZ789 is confirmed"


# -- suppressed, opted out, rate limited ---------------------------------------------


def test_suppressed_address_is_not_mailed(service: SendService, world: FakeWorld) -> None:
    world.suppressions.suppress("john.doe@example.com", "BOUNCE")
    message = body()

    report, _ = run(service, message)

    outcome = outcome_of(report, message)
    assert (outcome.status, outcome.reason_code) == ("suppressed", "suppressed")
    assert "BOUNCE" in (outcome.reason or "")
    assert world.sender.calls["send"] == 0
    assert report.failed == []


def test_opted_out_category_is_not_mailed(service: SendService, world: FakeWorld) -> None:
    world.preferences.put(Preferences("user-1", opted_out=frozenset({"marketing"})))
    message = body("newsletter", user_id="user-1")

    report, _ = run(service, message)

    outcome = outcome_of(report, message)
    assert (outcome.status, outcome.reason_code, outcome.user_id) == ("opted_out", "opted_out", "user-1")
    assert "marketing" in (outcome.reason or "")
    assert world.sender.sent == []


def test_rate_limited_beyond_the_users_allowance(fake_service: FakeServiceFactory) -> None:
    # Given at most one marketing email per user per day
    service, world = fake_service(rate_limits={"marketing": RateLimit(limit=1, window_seconds=86400)})
    first = body("newsletter", user_id="user-1")
    second = body("newsletter", user_id="user-1", template_data={**SAMPLES["newsletter"], "headline": "Second"})
    other_user = body("newsletter", to="jane@example.com", user_id="user-2")

    # When two newsletters for the same user (and one for another) arrive
    report, records = run(service, first, second, other_user)

    # Then one of the same user's two is sent, the other is rate limited; the other user is unaffected
    statuses = sorted(o.status for o in report.outcomes if o.user_id == "user-1")
    assert statuses == ["rate_limited", "sent"]
    assert outcome_of(report, other_user).status == "sent"
    limited = next(o for o in report.outcomes if o.status == "rate_limited")
    assert limited.reason_code == "rate_limited" and "1 marketing" in (limited.reason or "")
    assert len(world.sender.sent) == 2
    assert_accounted(report, records)


def test_rate_limit_holds_across_batches(fake_service: FakeServiceFactory) -> None:
    service, world = fake_service(rate_limits={"marketing": RateLimit(limit=1, window_seconds=86400)})
    run(service, body("newsletter", user_id="u"))
    report, _ = run(service, body("newsletter", user_id="u", idempotency_key="next-issue"))
    assert [o.status for o in report.outcomes] == ["rate_limited"]
    assert len(world.sender.sent) == 1


def test_a_taken_over_request_keeps_the_rate_limit_slot_its_first_attempt_used(
    fake_service: FakeServiceFactory,
) -> None:
    # Given a one-a-day limit, and a first attempt that counted the newsletter, sent it and died unrecorded
    service, world = fake_service(rate_limits={"marketing": RateLimit(limit=1, window_seconds=86400)})
    message = body("newsletter", user_id="u")
    parsed = parse_request(message)
    limit = RateLimit(limit=1, window_seconds=86400)
    assert world.rate_limiter.acquire("u", "marketing", limit, now=time.time(), request_id=parsed.request_id)
    world.claims.put(ClaimRecord(parsed.request_id, parsed.content_hash, "dead-worker", time.time() - 5))

    # When the redelivery takes the claim over
    report, _ = run(service, message)

    # Then it is sent (the crash-window resend), not recorded as rate limited, and counted once
    assert report.lease_takeovers == 1
    assert outcome_of(report, message).status == "sent"
    assert world.rate_limiter.count("u", "marketing", limit, now=time.time()) == 1


def test_categories_without_a_limit_are_not_counted(fake_service: FakeServiceFactory) -> None:
    service, world = fake_service(rate_limits={"marketing": RateLimit(limit=1, window_seconds=86400)})
    run(service, body(user_id="u"), body(user_id="u", idempotency_key="again"))
    assert len(world.sender.sent) == 2
    assert world.rate_limiter.calls["acquire"] == 0


@pytest.mark.parametrize(
    ("lane", "template_id", "category"),
    [("critical", "newsletter", "marketing"), ("standard", "password_reset", "security")],
    ids=["critical-lane", "critical-priority-template"],
)
def test_critical_mail_bypasses_rate_limits(
    fake_service: FakeServiceFactory, lane: str, template_id: str, category: str
) -> None:
    # Given a limit of one per day on the category
    service, world = fake_service(lane=lane, rate_limits={category: RateLimit(limit=1, window_seconds=86400)})

    # When three such emails for the same user arrive
    messages = [body(template_id, user_id="u", idempotency_key=f"k{i}") for i in range(3)]
    report, _ = run(service, *messages)

    # Then all are sent and the limiter is never asked
    assert [o.status for o in report.outcomes] == ["sent"] * 3
    assert world.rate_limiter.calls["acquire"] == 0


# -- rejected -------------------------------------------------------------------------


def _sandbox_template(world: FakeWorld) -> dict[str, Any]:
    world.templates.put(
        TemplateBundle(
            template_id="sneaky",
            metadata=TemplateMetadata(category="transactional"),
            locales={"en": LocaleParts(subject="Hi {{ user_name.__class__.__mro__ }}", html="x", text="x")},
        )
    )
    return {"recipient_email": "john.doe@example.com", "template_id": "sneaky", "template_data": {"user_name": "x"}}


def _ses_rejects(world: FakeWorld) -> dict[str, Any]:
    # SES refuses this recipient for good (the adapter maps MessageRejected to ses_rejected)
    def fail(email: OutboundEmail) -> Exception | None:
        if email.to_address == "refused@example.com":
            return RejectedError("ses_rejected", "MessageRejected: Email address is not verified.")
        return None

    world.sender.fail = fail
    return body(to="refused@example.com")


def _conflicting_key(world: FakeWorld) -> dict[str, Any]:
    # Another request with the same idempotency key holds the claim (still in flight)
    first = parse_request(body(idempotency_key="order-1"))
    world.claims.put(ClaimRecord(first.request_id, first.content_hash, "other-worker", time.time() + 600))
    return body(idempotency_key="order-1", template_data={"user_name": "Eve", "login_link": "https://x.example"})


Setup = Callable[[FakeWorld], dict[str, Any] | str]
REJECTIONS: list[tuple[str, Setup]] = [
    ("invalid_json", lambda w: "this is not json"),
    ("invalid_json", lambda w: '{"recipient_email": "a@example.com", '),
    ("invalid_request", lambda w: "[1, 2, 3]"),
    ("invalid_request", lambda w: json.dumps({"recipient_email": "a@example.com"})),
    ("invalid_request", lambda w: body(send_at="tomorrow")),
    ("invalid_address", lambda w: body(to="john.doe@@example.com")),
    ("invalid_address", lambda w: body(to="john@example.com\r\nBcc: victim@example.com")),
    ("unknown_template", lambda w: body(template_id="welcome_email", template_version="no-such-version")),
    ("unknown_template", lambda w: {"recipient_email": "a@example.com", "template_id": "no_such_template"}),
    ("missing_variable", lambda w: body(template_data={"user_name": "John"})),
    (
        "header_injection",
        lambda w: body(template_data={**SAMPLES["welcome_email"], "user_name": "J\r\nBcc: x@example.com"}),
    ),
    ("sandbox_violation", _sandbox_template),
    ("idempotency_conflict", _conflicting_key),
    ("ses_rejected", _ses_rejects),
]


@pytest.mark.parametrize(("code", "setup"), REJECTIONS, ids=[f"{code}-{i}" for i, (code, _) in enumerate(REJECTIONS)])
def test_rejections_are_recorded_with_their_reason_and_never_retried(
    service: SendService, world: FakeWorld, code: str, setup: Setup
) -> None:
    # Given one bad request beside a good one
    bad = setup(world)
    good = body(to="jane@example.com", template_id="order_confirmation")
    # When they are processed together
    report, records = run(service, bad, good)

    # Then the bad one is rejected with its reason code, recorded, not retried and not sent
    rejected = [o for o in report.outcomes if o.status == "rejected"]
    assert [o.reason_code for o in rejected] == [code]
    assert rejected[0].reason
    assert report.failed == [] and world.retries.delays == []
    assert world.message_log.statuses({rejected[0].request_id}) == {rejected[0].request_id: "rejected"}
    # And the good one is sent anyway
    assert [e.to_address for e in world.sender.sent] == ["jane@example.com"]
    assert_accounted(report, records)


def test_rejected_raw_bodies_collapse_on_redelivery(service: SendService, world: FakeWorld) -> None:
    first, _ = run(service, "garbage")
    second, _ = run(service, "garbage")
    assert first.outcomes[0].request_id == second.outcomes[0].request_id
    assert len(world.message_log.outcomes) == 1


# -- duplicates and claims ----------------------------------------------------------------


def test_same_request_twice_in_one_batch_is_sent_once(service: SendService, world: FakeWorld) -> None:
    message = body()
    report, records = run(service, message, json.dumps(message, indent=2), message)

    assert len(world.sender.sent) == 1
    assert report.duplicates == 2
    assert report.failed == []
    assert [o.status for o in report.outcomes] == ["sent"]
    assert world.claims.calls["claim"] == 1
    assert_accounted(report, records)


def test_duplicate_in_a_batch_is_retried_with_its_original_not_acked_alone(
    service: SendService, world: FakeWorld
) -> None:
    # Given another worker holds the request's claim, so the batch's first copy is retried
    message = body()
    parsed = parse_request(message)
    world.claims.put(ClaimRecord(parsed.request_id, parsed.content_hash, "other-worker", time.time() + 600))

    # When the batch holds two copies of the request (two messages: a redelivery, a deferred copy)
    report, records = run(service, message, message)

    # Then both are retried: acking the second is safe only once the first's fate is durable. An
    # invocation holding the same two messages in the other order would keep the other one and ack
    # this one, and neither copy would be left
    assert world.sender.sent == []
    assert report.failed == ["m0", "m1"] and report.duplicates == 0
    assert report.retry_reasons == {"m0": "in_flight_elsewhere", "m1": "in_flight_elsewhere"}
    assert all(world.retries.delay_for(r.receipt_handle) is not None for r in records)
    assert_accounted(report, records)


def test_same_message_twice_in_a_batch_is_retried_once(service: SendService, world: FakeWorld) -> None:
    # Given a message received twice while one batch was gathered (its visibility ran out meanwhile)
    message = body()
    parsed = parse_request(message)
    world.claims.put(ClaimRecord(parsed.request_id, parsed.content_hash, "other-worker", time.time() + 600))
    records = [queue_record(message, message_id="m0"), queue_record(message, message_id="m0")]

    report = service.process(records)

    # Then its message id is listed once (the partial batch response names each record once)
    assert report.failed == ["m0"] and report.duplicates == 1


def test_request_already_finished_is_not_resent(service: SendService, world: FakeWorld) -> None:
    # Given a request that was sent by an earlier batch
    message = body()
    run(service, message)
    writes = len(world.message_log.writes)

    # When SQS delivers it again
    report, _ = run(service, message)

    # Then it is acknowledged as a duplicate: no email, no new log entry, no retry
    assert len(world.sender.sent) == 1
    assert report.duplicates == 1 and report.failed == [] and report.outcomes == []
    assert len(world.message_log.writes) == writes


def test_request_claimed_by_a_live_lease_is_retried_not_sent(service: SendService, world: FakeWorld) -> None:
    # Given another worker holds the request's claim and is still within its lease
    message = body()
    parsed = parse_request(message)
    held = ClaimRecord(parsed.request_id, parsed.content_hash, "other-worker", time.time() + 600)
    world.claims.put(held)

    report, records = run(service, message)

    assert world.sender.sent == []
    assert report.failed == ["m0"] and report.retry_reasons == {"m0": "in_flight_elsewhere"}
    assert world.retries.delay_for(records[0].receipt_handle) is not None
    assert world.claims.get(parsed.request_id) == held  # not ours to release
    assert world.claims.calls["release"] == 0


def test_expired_lease_is_taken_over_and_sent(service: SendService, world: FakeWorld) -> None:
    # Given a claim left by a worker that died after claiming (its lease has run out)
    message = body()
    parsed = parse_request(message)
    world.claims.put(ClaimRecord(parsed.request_id, parsed.content_hash, "dead-worker", time.time() - 5))

    report, _ = run(service, message)

    assert report.lease_takeovers == 1
    assert outcome_of(report, message).status == "sent"
    assert len(world.sender.sent) == 1
    claim = world.claims.get(parsed.request_id)
    assert claim is not None and claim.lease_id != "dead-worker"


def test_reused_idempotency_key_with_expired_lease_is_a_conflict(service: SendService, world: FakeWorld) -> None:
    first = parse_request(body(idempotency_key="k"))
    world.claims.put(ClaimRecord(first.request_id, first.content_hash, "dead-worker", time.time() - 5))
    other = body(idempotency_key="k", to="eve@example.com")

    report, _ = run(service, other)

    assert [(o.status, o.reason_code) for o in report.outcomes] == [("rejected", "idempotency_conflict")]
    assert report.lease_takeovers == 0 and world.sender.sent == []


def test_reused_idempotency_key_after_the_first_request_finished_is_a_conflict(
    service: SendService, world: FakeWorld
) -> None:
    # Given a request with idempotency key K that was sent
    run(service, body(idempotency_key="order-1"))

    # When a different request reuses K
    other = body(idempotency_key="order-1", to="eve@example.com")
    report, records = run(service, other)

    # Then it is rejected as a conflict, not silently dropped as a duplicate
    assert [(o.status, o.reason_code) for o in report.outcomes] == [("rejected", "idempotency_conflict")]
    assert report.duplicates == 0
    assert world.sender.sent_to("eve@example.com") == []
    assert_accounted(report, records)


def test_reused_idempotency_key_within_one_batch_is_a_conflict(service: SendService, world: FakeWorld) -> None:
    # Given two different requests sharing an idempotency key in the same batch
    first = body(idempotency_key="order-1")
    other = body(idempotency_key="order-1", to="eve@example.com")

    report, records = run(service, first, other)

    # Then the first is sent and the other is rejected as a conflict, not silently dropped
    assert sorted((o.status, o.reason_code) for o in report.outcomes) == [
        ("rejected", "idempotency_conflict"),
        ("sent", None),
    ]
    assert report.duplicates == 0
    assert len(world.sender.sent) == 1
    assert_accounted(report, records)


# -- consent ---------------------------------------------------------------------------------


def test_complaint_scope_blocks_marketing_but_not_a_password_reset(service: SendService, world: FakeWorld) -> None:
    # Given the recipient complained: non-essential mail only is suppressed
    world.suppressions.suppress("jane@example.com", "COMPLAINT", scope=SCOPE_NON_ESSENTIAL)
    newsletter = body("newsletter", to="jane@example.com")
    reset = body("password_reset", to="jane@example.com")

    report, _ = run(service, newsletter, reset)

    assert outcome_of(report, newsletter).status == "suppressed"
    assert outcome_of(report, reset).status == "sent"
    assert [e.subject for e in world.sender.sent] == ["Reset your password"]


def test_full_suppression_blocks_even_security_mail(service: SendService, world: FakeWorld) -> None:
    world.suppressions.suppress("jane@example.com", "BOUNCE")
    report, _ = run(service, body("password_reset", to="jane@example.com"))
    assert [o.status for o in report.outcomes] == ["suppressed"]


@pytest.mark.parametrize(("expires_in", "status"), [(-1, "sent"), (0, "sent"), (3600, "suppressed")])
def test_soft_bounce_blocks_only_until_it_expires(
    service: SendService, world: FakeWorld, expires_in: int, status: str
) -> None:
    world.suppressions.put(
        Suppression(
            FAKE_HASHER.address_hash(parse_request(body()).recipient_email),
            "SOFT_BOUNCE",
            expires_at=int(time.time()) + expires_in,
        )
    )
    report, _ = run(service, body())
    assert [o.status for o in report.outcomes] == [status]


def test_unsubscribed_all_blocks_marketing_and_product_but_not_essential_mail(
    service: SendService, world: FakeWorld
) -> None:
    # Given a user who unsubscribed from everything (and even listed essential categories)
    world.templates.put(product_bundle())
    world.preferences.put(Preferences("u1", unsubscribed_all=True, opted_out=frozenset({"transactional", "security"})))
    messages = {
        "marketing": body("newsletter", user_id="u1"),
        "product": {
            "recipient_email": "john.doe@example.com",
            "template_id": "product_update",
            "user_id": "u1",
            "template_data": {"user_name": "John"},
        },
        "transactional": body("order_confirmation", user_id="u1"),
        "security": body("password_reset", user_id="u1"),
    }

    report, _ = run(service, *messages.values())

    statuses = {category: outcome_of(report, m).status for category, m in messages.items()}
    assert statuses == {"marketing": "opted_out", "product": "opted_out", "transactional": "sent", "security": "sent"}
    assert "unsubscribed from all" in (outcome_of(report, messages["product"]).reason or "")


def test_preferred_locale_is_used_when_the_request_has_none(service: SendService, world: FakeWorld) -> None:
    world.preferences.put(Preferences("u-fr", locale="fr"))
    plain = body(user_id="u-fr")
    explicit = body(user_id="u-fr", to="jane@example.com", locale="en-GB")

    report, _ = run(service, plain, explicit)

    assert outcome_of(report, plain).locale == "fr"
    assert world.sender.sent_to("john.doe@example.com")[0].subject == "Bienvenue parmi nous, John"
    assert outcome_of(report, explicit).locale == "en"
    assert world.sender.sent_to("jane@example.com")[0].subject == "Welcome aboard, John"


def test_request_locale_falls_back_to_the_language(service: SendService, world: FakeWorld) -> None:
    report, _ = run(service, body(locale="fr_CA"))
    assert report.outcomes[0].locale == "fr"
    assert world.sender.sent[0].subject.startswith("Bienvenue")


# -- transient failures -------------------------------------------------------------------------


def test_throttled_send_is_handed_back_without_using_a_receive(fake_service: FakeServiceFactory) -> None:
    # Given SES throttles one recipient
    service, world = fake_service(rng=random.Random(7), max_backoff_seconds=600)
    world.sender.fail = lambda e: (
        ThrottledError("throttled", "Maximum sending rate exceeded.") if e.to_address == "b@example.com" else None
    )
    messages = [body(to=f"{name}@example.com") for name in "abc"]
    records = [queue_record(m, message_id=f"m-{n}", receive_count=3) for n, m in zip("abc", messages, strict=True)]

    # When the batch runs
    report = service.process(records)

    # Then nothing is reported failed: b is handed back to the queue as a new message, a few seconds later
    assert report.failed == []
    assert report.deferred == {"m-b": "throttled"}
    assert report.partial_batch_response() == {"batchItemFailures": []}
    [deferral] = world.deferrals.deferred
    assert (deferral.message_id, deferral.reason, deferral.deferrals) == ("m-b", "throttled", 1)
    assert deferral.body == records[1].body
    assert 1 <= deferral.seconds <= 3
    assert world.retries.delays == []
    # And its claim is released so the new copy can claim it again
    assert world.claims.get(request_id(messages[1])) is None
    # And the others are sent and logged; b has no outcome yet
    assert sorted(e.to_address for e in world.sender.sent) == ["a@example.com", "c@example.com"]
    assert {o.request_id for o in report.outcomes} == {request_id(messages[0]), request_id(messages[2])}
    assert request_id(messages[1]) not in world.message_log.statuses([request_id(m) for m in messages])

    # When SES recovers and the message comes back
    world.sender.fail = None
    again = service.process([queue_record(messages[1], message_id="m-b", receive_count=4)])

    # Then it is sent once
    assert [o.status for o in again.outcomes] == ["sent"]
    assert len(world.sender.sent_to("b@example.com")) == 1


def test_transient_send_error_keeps_its_code(service: SendService, world: FakeWorld) -> None:
    world.sender.fail = lambda e: TransientError("ses_unreachable", "connection reset")
    report, _ = run(service, body())
    assert report.retry_reasons == {"m0": "ses_unreachable"}


def test_unexpected_send_error_retries_the_record(service: SendService, world: FakeWorld) -> None:
    world.sender.fail = lambda e: RuntimeError("bug in a client library")
    report, _ = run(service, body())
    assert report.retry_reasons == {"m0": "send_failed"}
    assert world.claims.get(request_id(body())) is None


@pytest.mark.parametrize("store", ["suppressions", "preferences"])
def test_lookup_failure_retries_the_batch_and_loses_nothing(service: SendService, world: FakeWorld, store: str) -> None:
    # Given a lookup table that fails
    failing = getattr(world, store)
    failing.failures["get_many"] = TransientError("dynamodb_failed", "injected")
    messages = [body(to=f"u{i}@example.com") for i in range(3)]

    # When a batch with three good records and one invalid one runs
    report, records = run(service, *messages, "not json")

    # Then the invalid one is rejected and the good ones are all retried, none sent, claims released
    assert [o.reason_code for o in report.outcomes] == ["invalid_json"]
    assert sorted(report.failed) == ["m0", "m1", "m2"]
    assert set(report.retry_reasons.values()) == {"dynamodb_failed"}
    assert world.sender.sent == []
    assert len(world.claims) == 0
    assert len(world.retries.delays) == 3
    assert_accounted(report, records)

    # When the table recovers and the retried records come back
    del failing.failures["get_many"]
    retried = service.process([r for r in records if r.message_id in report.failed])

    # Then each is sent exactly once
    assert [o.status for o in retried.outcomes] == ["sent"] * 3
    assert len(world.sender.sent) == 3


def test_message_log_write_failure_retries_and_sent_records_keep_their_claim(
    service: SendService, world: FakeWorld
) -> None:
    # Given the message log cannot be written
    world.message_log.failures["record"] = TransientError("dynamodb_failed", "injected")
    sent, rejected = body(), body(to="jane@example.com", template_data={"user_name": "Jane"})

    # When a batch with one sendable and one rejected request runs
    report, _ = run(service, sent, rejected)

    # Then both are retried (their outcomes are not recorded) and nothing is reported as an outcome
    assert sorted(report.failed) == ["m0", "m1"]
    assert set(report.retry_reasons.values()) == {"log_write_failed"}
    assert report.outcomes == []
    # And the sent one keeps its claim (so the retry does not send again at once); the other is released
    assert len(world.sender.sent) == 1
    assert world.claims.get(request_id(sent)) is not None
    assert world.claims.get(request_id(rejected)) is None

    # When the retry comes back while the lease is still live
    del world.message_log.failures["record"]
    again, _ = run(service, sent)

    # Then it is not sent a second time
    assert again.retry_reasons == {"m0": "in_flight_elsewhere"}
    assert len(world.sender.sent) == 1


def test_status_lookup_failure_retries_contested_records(service: SendService, world: FakeWorld) -> None:
    message = body()
    run(service, message)
    world.message_log.failures["states"] = TransientError("dynamodb_failed", "injected")

    report, _ = run(service, message, body(to="jane@example.com"))

    assert report.retry_reasons == {"m0": "dynamodb_failed"}
    assert len(world.sender.sent) == 2


@pytest.mark.parametrize(
    ("port", "method", "reason"),
    [
        ("claims", "claim", "dynamodb_failed"),
        ("templates", "get", "s3_failed"),
        ("rate_limiter", "acquire", "dynamodb_failed"),
    ],
)
def test_dependency_failures_retry_with_the_transient_code(
    fake_service: FakeServiceFactory, port: str, method: str, reason: str
) -> None:
    service, world = fake_service(rate_limits={"transactional": RateLimit(5, 3600)})
    getattr(world, port).failures[method] = TransientError(reason, "injected")

    report, _ = run(service, body(), body(to="jane@example.com"))

    assert report.retry_reasons == {"m0": reason, "m1": reason}
    assert world.sender.sent == [] and report.outcomes == []
    assert len(world.claims) == 0


def test_retry_scheduler_failure_still_reports_the_failures(service: SendService, world: FakeWorld) -> None:
    world.retries.failures["delay"] = TransientError("sqs_failed", "injected")
    world.sender.fail = lambda e: TransientError("ses_failed", "500")
    report, _ = run(service, body())
    assert report.failed == ["m0"]


# -- deadline ---------------------------------------------------------------------------------


def test_record_that_cannot_get_a_send_slot_before_the_deadline_is_deferred(fake_service: FakeServiceFactory) -> None:
    # Given a pacer allowing one send now and the next only in 1000 s, and 3.5 s left in the invocation
    service, world = fake_service(pacer=Pacer(0.001))
    messages = [body(to="a@example.com"), body(to="b@example.com")]

    # When the batch runs
    started = time.monotonic()
    report, records = run(service, *messages, remaining_seconds=lambda: 3.5)

    # Then one is sent and the other is handed back with reason `deadline`, without waiting for its slot
    # (a deferral: its receive count is not used up)
    assert time.monotonic() - started < 1.0
    assert len(world.sender.sent) == 1
    assert report.failed == []
    assert list(report.deferred.values()) == ["deadline"]
    (deferred,) = report.deferred
    later = next(m for r, m in zip(records, messages, strict=True) if r.message_id == deferred)
    assert world.claims.get(request_id(later)) is None
    assert_accounted(report, records)


def test_no_send_starts_inside_the_deadline_margin(fake_service: FakeServiceFactory) -> None:
    service, world = fake_service()
    report, _ = run(service, body(), remaining_seconds=lambda: 1.0)
    assert report.deferred == {"m0": "deadline"}
    assert world.sender.calls["send"] == 0
    # Nothing was claimed or looked up for it: pacing comes before the claims
    assert world.claims.calls["claim"] == 0


# -- batching ---------------------------------------------------------------------------------


def test_lookups_are_batched_per_store(service: SendService, world: FakeWorld) -> None:
    # Given ten requests for ten users across two templates
    messages = [body("welcome_email" if i % 2 else "newsletter", to=f"u{i}@example.com") for i in range(10)]

    report, _ = run(service, *messages)

    assert [o.status for o in report.outcomes] == ["sent"] * 10
    assert world.suppressions.calls["get_many"] == 1
    assert world.preferences.calls["get_many"] == 1
    assert world.templates.calls["get"] == 2
    # Each sent email's outcome written as soon as SES accepts it (here no write is ever in flight long enough
    # for others to join it: one each)
    assert world.message_log.calls["record"] == 10
    assert world.message_log.calls["statuses"] == 0  # every claim was won: nothing to look up
    assert world.claims.calls["claim"] == 10


class SlowLog(FakeMessageLog):
    """A message log whose writes take `seconds`; the groups written, in order."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.groups: list[list[str]] = []

    def record(self, outcomes: Sequence[Outcome]) -> None:
        time.sleep(self.seconds)
        self.groups.append([o.request_id for o in outcomes])
        super().record(outcomes)


def test_sent_outcomes_accepted_while_a_write_is_in_flight_join_the_next_write(
    fake_service: FakeServiceFactory,
) -> None:
    # Given ten sends that SES accepts at about the same time, and message-log writes that take 50 ms
    log = SlowLog(0.05)
    service, _ = fake_service(sender=FakeEmailSender(latency_seconds=0.05), message_log=log)
    messages = [body(to=f"u{i}@example.com") for i in range(10)]

    report, _ = run(service, *messages)

    # Then every email is recorded sent, in a few writes rather than ten: the first accepted is written at
    # once, the others gather while that write is in flight
    assert [o.status for o in report.outcomes] == ["sent"] * 10
    assert sorted(rid for group in log.groups for rid in group) == sorted(o.request_id for o in report.outcomes)
    assert 2 <= len(log.groups) <= 4
    assert len(log.groups[0]) == 1


def test_a_sent_outcome_whose_write_failed_is_written_with_the_batch(fake_service: FakeServiceFactory) -> None:
    # Given a message log that refuses the first write
    class FlakyLog(FakeMessageLog):
        refused = 0

        def record(self, outcomes: Sequence[Outcome]) -> None:
            if not self.refused:
                self.refused += 1
                raise TransientError("dynamodb_throttled", "slow down")
            super().record(outcomes)

    log = FlakyLog()
    service, _ = fake_service(message_log=log)
    report, _ = run(service, body())

    # Then the batch's own write records it: sent, and nothing retried
    assert [o.status for o in report.outcomes] == ["sent"]
    assert report.failed == [] and log.refused == 1
    assert log.outcomes[-1].status == "sent"


def test_sends_run_concurrently(fake_service: FakeServiceFactory) -> None:
    # Given SES taking 50 ms per call, and ten records
    latency = 0.05
    service, world = fake_service(sender=FakeEmailSender(latency_seconds=latency))
    messages = [body(to=f"u{i}@example.com") for i in range(10)]

    report, _ = run(service, *messages)

    # Then the calls overlap: counted by the sender itself, not timed, so a busy machine cannot fail it
    assert len(report.outcomes) == 10
    assert world.sender.max_in_flight >= 5


# -- headers and tags ---------------------------------------------------------------------------


def _unsubscribe_token(email: OutboundEmail) -> str:
    headers = dict(email.headers)
    url = headers["List-Unsubscribe"]
    assert url.startswith("<") and url.endswith(">")
    assert url[1:-1].startswith(BASE_URL)
    (token,) = parse_qs(urlsplit(url[1:-1]).query)["token"]
    return token


@pytest.mark.parametrize("user_id", [None, "user-42"])
def test_non_essential_mail_has_one_click_unsubscribe_for_the_effective_user(
    service: SendService, world: FakeWorld, user_id: str | None
) -> None:
    message = body("newsletter", **({"user_id": user_id} if user_id else {}))

    run(service, message)

    (email,) = world.sender.sent
    assert dict(email.headers)["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    claim = world.signer.verify(_unsubscribe_token(email))
    assert claim.user_id == (user_id or FAKE_HASHER.user_key(parse_request(message).recipient_email))
    assert claim.category == "marketing"
    # The link in the body is the same one
    assert dict(email.headers)["List-Unsubscribe"][1:-1] in email.text
    assert world.policy.postal_address in email.text


def test_product_mail_has_unsubscribe_headers_too(service: SendService, world: FakeWorld) -> None:
    world.templates.put(product_bundle())
    run(
        service,
        {"recipient_email": "a@example.com", "template_id": "product_update", "template_data": {"user_name": "A"}},
    )
    assert world.signer.verify(_unsubscribe_token(world.sender.sent[0])).category == "product"


@pytest.mark.parametrize("template_id", ["welcome_email", "order_confirmation", "password_reset"])
def test_essential_mail_has_no_unsubscribe_headers(service: SendService, world: FakeWorld, template_id: str) -> None:
    run(service, body(template_id))
    (email,) = world.sender.sent
    assert email.headers == ()


def test_tags_name_template_category_request_lane_and_metadata(fake_service: FakeServiceFactory) -> None:
    service, world = fake_service(lane="bulk")
    message = body("newsletter", metadata={"campaign": "spring", "batch": "b-7"})

    run(service, message)

    tags = dict(world.sender.sent[0].tags)
    assert tags == {
        "template": "newsletter",
        "category": "marketing",
        "request_id": request_id(message),
        "lane": "bulk",
        "campaign": "spring",
        "batch": "b-7",
    }


def test_no_header_or_address_holds_a_line_break(service: SendService, world: FakeWorld) -> None:
    run(service, *(body(tid, to=f"{tid}@example.com") for tid in SAMPLES))
    assert len(world.sender.sent) == len(SAMPLES)
    for email in world.sender.sent:
        values = [
            email.subject,
            email.from_address,
            email.to_address,
            *(v for _, v in email.headers),
            *(v for _, v in email.tags),
        ]
        assert not any("\r" in v or "\n" in v for v in values)


# -- the batch response ---------------------------------------------------------------------------


def test_partial_batch_response_lists_only_retried_records(service: SendService, world: FakeWorld) -> None:
    world.sender.fail = lambda e: TransientError("ses_failed", "x") if e.to_address.startswith("slow") else None
    report, _ = run(service, body(to="slow1@example.com"), body(), "not json", body(to="slow2@example.com"))
    assert report.partial_batch_response() == {
        "batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m3"}]
    }


def test_deferred_records_are_not_failures_and_keep_their_first_publish_time(
    fake_service: FakeServiceFactory,
) -> None:
    # Given a pacer with one token now and the next in 10 s, and a record already deferred twice
    service, world = fake_service(pacer=Pacer(0.1, max_wait=0.5))
    first = queue_record(body(to="a@example.com"), message_id="m-a", sent_at=1_000.0)
    again = queue_record(body(to="b@example.com"), message_id="m-b", receive_count=1, sent_at=900.0)
    again = dataclasses.replace(again, deferrals=2)

    report = service.process([first, again])

    # Then the older request is sent first, the other is handed back: not in batchItemFailures
    assert [e.to_address for e in world.sender.sent] == ["b@example.com"]
    assert report.partial_batch_response() == {"batchItemFailures": []}
    assert report.deferred == {"m-a": "paced"}
    [deferral] = world.deferrals.deferred
    # The new message carries the body, its deferral count and the producer's publish time
    assert (deferral.body, deferral.deferrals, deferral.published_at) == (first.body, 1, 1_000.0)
    assert 9 <= deferral.seconds <= 11
    # And nothing was claimed, read or rendered for it
    assert world.claims.calls["claim"] == 1


def test_a_deferral_that_cannot_be_enqueued_is_retried_instead(fake_service: FakeServiceFactory) -> None:
    service, world = fake_service(pacer=Pacer(0.1, max_wait=0.5))
    world.deferrals.refuse = {"m1"}
    report, _ = run(service, body(to="a@example.com"), body(to="b@example.com"))
    assert report.failed == ["m1"]
    assert report.retry_reasons == {"m1": "defer_failed"}
    assert report.deferred == {}


def test_a_request_deferred_too_often_is_retried_as_a_failure(fake_service: FakeServiceFactory) -> None:
    service, world = fake_service(pacer=Pacer(0.1, max_wait=0.5))
    late = queue_record(body(to="b@example.com"), message_id="late", sent_at=2.0)
    record = dataclasses.replace(late, deferrals=MAX_DEFERRALS)
    # (the older request, deferred once, goes first and takes the only token)
    first = dataclasses.replace(queue_record(body(), message_id="first", sent_at=1.0), deferrals=1)
    report = service.process([first, record])
    assert report.retry_reasons == {"late": "deferred_too_often"}
    assert world.deferrals.deferred == []


def test_the_daily_quota_is_not_a_throttle(fake_service: FakeServiceFactory) -> None:
    service, world = fake_service()
    world.sender.fail = lambda e: DailyQuotaExceededError("daily_quota", "Daily message quota exceeded")
    report, _ = run(service, body())
    assert report.deferred == {"m0": "quota_exhausted"}
    assert world.deferrals.deferred[0].seconds == 60


def test_another_providers_daily_quota_does_not_hold_the_lanes(fake_service: FakeServiceFactory) -> None:
    # A secondary provider's own quota (its breaker opens at once) says nothing of SES's: a plain retry.
    service, world = fake_service()
    world.sender.fail = lambda e: DailyQuotaExceededError("relay_quota_exhausted", "quota", provider="relay")
    report, _ = run(service, body())
    assert report.deferred == {} and report.retry_reasons == {"m0": "relay_quota_exhausted"}


def test_empty_batch_does_nothing(service: SendService, world: FakeWorld) -> None:
    report = service.process([])
    assert report.partial_batch_response() == {"batchItemFailures": []}
    assert sum(world.message_log.calls.values()) == 0 and sum(world.suppressions.calls.values()) == 0


# -- poison messages never fail their batch mates -------------------------------------------------


def test_deeply_nested_json_body_is_rejected_without_failing_the_batch(service: SendService, world: FakeWorld) -> None:
    # Given a body nested deeper than the JSON parser's recursion limit (well under SQS's 256 KiB)
    poison = "[" * 5000 + "]" * 5000

    # When it arrives with a good request
    report, records = run(service, poison, body())

    # Then it is rejected and the good one is sent
    assert sorted(o.status for o in report.outcomes) == ["rejected", "sent"]
    assert len(world.sender.sent) == 1
    assert_accounted(report, records)


def test_lone_surrogate_in_template_data_is_rejected_without_failing_the_batch(
    service: SendService, world: FakeWorld
) -> None:
    # Given valid JSON whose string holds an unpaired UTF-16 surrogate escape
    poison = json.dumps(body(to="eve@example.com", template_data={"user_name": "\ud800", "login_link": "x"}))

    report, records = run(service, poison, body())

    assert sorted(o.status for o in report.outcomes) == ["rejected", "sent"]
    rejected = next(o for o in report.outcomes if o.status == "rejected")
    assert rejected.reason_code in {"invalid_json", "invalid_request"}
    assert world.sender.sent_to("eve@example.com") == []
    assert_accounted(report, records)
