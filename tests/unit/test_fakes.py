"""The in-memory fakes keep the semantics of the adapters they stand in for."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from mailwright.constants import MESSAGE_LOG_REQUEST_SK, Keys
from mailwright.errors import TemplateNotFoundError, ThrottledError, TransientError
from mailwright.ports import (
    APPEND_DUPLICATE,
    APPEND_OK,
    SCOPE_NON_ESSENTIAL,
    ClaimRecord,
    FeedbackRecord,
    OutboundEmail,
    Outcome,
    Preferences,
    Suppression,
)
from mailwright.settings import RateLimit
from mailwright_tools.fakes import (
    FAKE_HASHER,
    FakeClaimStore,
    FakeClock,
    FakeEmailSender,
    FakeFeedbackLog,
    FakeMessageLog,
    FakePreferenceStore,
    FakeRateLimiter,
    FakeRetryScheduler,
    FakeSuppressionStore,
    FakeTemplateSource,
    build_fake_service,
    queue_record,
)


def email(to: str = "jane@example.com") -> OutboundEmail:
    """A minimal outbound email."""
    return OutboundEmail(
        from_address="no-reply@example.com", to_address=to, subject="s", html="h", text="t", configuration_set="c"
    )


# -- EmailSender --------------------------------------------------------------


def test_sender_records_emails_and_returns_unique_ids() -> None:
    sender = FakeEmailSender()
    ids = [sender.send(email(f"u{i}@example.com")) for i in range(20)]
    assert len(set(ids)) == 20
    assert [e.to_address for e in sender.sent] == [f"u{i}@example.com" for i in range(20)]
    assert sender.by_message_id[ids[3]].to_address == "u3@example.com"
    assert sender.calls["send"] == 20


def test_sender_fails_as_scripted_for_one_recipient() -> None:
    sender = FakeEmailSender(
        fail=lambda e: ThrottledError("throttled", "slow") if e.to_address == "b@example.com" else None
    )
    sender.send(email("a@example.com"))
    with pytest.raises(ThrottledError):
        sender.send(email("b@example.com"))
    assert sender.sent_to("a@example.com") and not sender.sent_to("b@example.com")
    assert len(sender.attempts) == 2 and sender.calls["send"] == 2


def test_sender_latency_overlaps_across_threads() -> None:
    sender = FakeEmailSender(latency_seconds=0.05)
    with ThreadPoolExecutor(max_workers=5) as pool:
        list(pool.map(sender.send, [email(f"u{i}@example.com") for i in range(5)]))
    assert sender.max_in_flight > 1
    assert sender.in_flight == 0


def test_injected_failures_are_raised_and_counted() -> None:
    store = FakeSuppressionStore()
    store.failures["get_many"] = TransientError("dynamodb_failed", "injected")
    for _ in range(2):
        with pytest.raises(TransientError):
            store.get_many({"x"})
    del store.failures["get_many"]
    assert store.get_many({"x"}) == {}
    assert store.calls["get_many"] == 3
    store.reset_calls()
    assert store.calls["get_many"] == 0


# -- stores -------------------------------------------------------------------


def test_suppression_store_returns_only_existing_hashes_even_expired() -> None:
    store = FakeSuppressionStore()
    bounce = store.suppress(" Jane@Example.com ", "BOUNCE")
    soft = store.suppress("soft@example.com", "SOFT_BOUNCE", expires_at=1)
    found = store.get_many(
        {FAKE_HASHER.address_hash("jane@example.com"), FAKE_HASHER.address_hash("soft@example.com"), "unknown"}
    )
    assert found == {bounce.address_hash: bounce, soft.address_hash: soft}
    assert store.remove(bounce.address_hash) and not store.remove(bounce.address_hash)


def test_suppression_scope_lets_essential_mail_through() -> None:
    complaint = Suppression("h", "COMPLAINT", scope=SCOPE_NON_ESSENTIAL)
    assert complaint.blocks("marketing", now=0) and not complaint.blocks("security", now=0)
    assert not Suppression("h", "SOFT_BOUNCE", expires_at=10).blocks("security", now=10)


def test_preference_store_round_trip() -> None:
    prefs = Preferences("u1", opted_out=frozenset({"marketing"}), locale="fr")
    store = FakePreferenceStore([prefs])
    assert store.get_many({"u1", "u2"}) == {"u1": prefs}
    store.put(Preferences("u2", unsubscribed_all=True))
    assert set(store.get_many({"u1", "u2"})) == {"u1", "u2"}
    assert store.calls["get_many"] == 2


# -- ClaimStore ---------------------------------------------------------------


def test_claim_is_won_once_and_then_returns_the_existing_record() -> None:
    clock = FakeClock()
    claims = FakeClaimStore(clock=clock)

    first = claims.claim("r1", "hash-a", lease_seconds=60, ttl_seconds=3600)
    second = claims.claim("r1", "hash-b", lease_seconds=60, ttl_seconds=3600)

    assert first.won and first.lease_id
    assert not second.won and second.lease_id == ""
    assert second.existing == ClaimRecord("r1", "hash-a", first.lease_id, float(int(clock() + 60)))


def test_concurrent_claims_have_exactly_one_winner() -> None:
    claims = FakeClaimStore()
    barrier = threading.Barrier(8)

    def claim(_: int) -> bool:
        barrier.wait()
        return claims.claim("r1", "h", lease_seconds=60, ttl_seconds=60).won

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(claim, range(8)))
    assert results.count(True) == 1


def test_take_over_needs_the_lease_id_it_was_shown() -> None:
    clock = FakeClock()
    claims = FakeClaimStore(clock=clock)
    won = claims.claim("r1", "h", lease_seconds=10, ttl_seconds=3600)
    clock.advance(20)
    seen = claims.claim("r1", "h", lease_seconds=10, ttl_seconds=3600).existing
    assert seen is not None

    # Two workers saw the same expired lease; only the first takes it over
    new_lease = claims.take_over(seen, lease_seconds=30)
    assert new_lease is not None and new_lease != won.lease_id
    assert claims.take_over(seen, lease_seconds=30) is None

    current = claims.get("r1")
    assert current is not None
    assert (current.lease_id, current.lease_until) == (new_lease, float(int(clock() + 30)))


def test_take_over_of_a_vanished_claim_fails() -> None:
    claims = FakeClaimStore()
    assert claims.take_over(ClaimRecord("gone", "h", "lease", 0.0), lease_seconds=10) is None


def test_release_only_by_the_lease_holder() -> None:
    claims = FakeClaimStore()
    won = claims.claim("r1", "h", lease_seconds=60, ttl_seconds=60)
    claims.release("r1", "someone-else")
    assert claims.get("r1") is not None
    claims.release("r1", won.lease_id)
    assert claims.get("r1") is None
    assert claims.claim("r1", "h", lease_seconds=60, ttl_seconds=60).won
    assert claims.calls == {"claim": 2, "release": 2}


def test_claims_expire_with_their_ttl() -> None:
    clock = FakeClock()
    claims = FakeClaimStore(clock=clock)
    claims.claim("r1", "h", lease_seconds=60, ttl_seconds=3600)
    clock.advance(3599)
    assert not claims.claim("r1", "h", lease_seconds=60, ttl_seconds=3600).won
    clock.advance(2)
    assert claims.claim("r1", "h", lease_seconds=60, ttl_seconds=3600).won


# -- RateLimiter --------------------------------------------------------------


def test_rate_limiter_counts_in_fixed_windows_and_never_exceeds_the_limit() -> None:
    limiter = FakeRateLimiter()
    limit = RateLimit(limit=2, window_seconds=3600)
    start = 3600 * 1000

    results = [limiter.acquire("u1", "marketing", limit, now=start + i, request_id=f"r{i}") for i in range(5)]

    assert results == [True, True, False, False, False]
    assert limiter.count("u1", "marketing", limit, now=start) == 2
    # Other users, other categories and the next window have their own counters
    # A request already counted keeps its slot (a retry after a crash), without a second one.
    assert limiter.acquire("u1", "marketing", limit, now=start + 9, request_id="r0")
    assert limiter.count("u1", "marketing", limit, now=start) == 2
    assert limiter.acquire("u2", "marketing", limit, now=start, request_id="r0")
    assert limiter.acquire("u1", "product", limit, now=start, request_id="r0")
    assert limiter.acquire("u1", "marketing", limit, now=start + 3600, request_id="r4")
    assert limiter.calls["acquire"] == 9


def test_rate_limiter_is_exact_under_concurrency() -> None:
    limiter = FakeRateLimiter()
    limit = RateLimit(limit=7, window_seconds=60)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: limiter.acquire("u", "c", limit, now=120.0, request_id=f"r{i}"), range(50)))
    assert results.count(True) == 7
    assert limiter.count("u", "c", limit, now=120.0) == 7


# -- MessageLog ---------------------------------------------------------------


def test_message_log_keeps_the_latest_status_and_shapes_items_like_the_adapter() -> None:
    log = FakeMessageLog(ttl_days=1)
    log.record([Outcome("r1", "rejected", "standard", reason_code="invalid_json", completed_at=100.5)])
    log.record(
        [
            Outcome(
                "r1",
                "sent",
                "standard",
                ses_message_id="m-1",
                metadata={"campaign": "x"},
                completed_at=200.25,
                received_at=199.0,
            ),
            Outcome("r2", "suppressed", "bulk", completed_at=1.0),
        ]
    )

    assert log.statuses({"r1", "r2", "r3"}) == {"r1": "sent", "r2": "suppressed"}
    item = log.get("r1")
    assert item is not None
    assert item[Keys.MESSAGES_SK] == MESSAGE_LOG_REQUEST_SK
    assert item["status"] == "sent" and item[Keys.SES_MESSAGE_ID] == "m-1"
    assert "reason_code" not in item
    assert item[Keys.TTL] == int(200.25 + 86400)
    assert item["received_at"] == 199 and item["completed_at"] == 200.25
    assert item["metadata"] == {"campaign": "x"} and item["events"] == []
    assert log.get("missing") is None
    assert len(log.writes) == 3


def test_message_log_derives_events_and_delivery_from_the_feedback_history() -> None:
    # Given a sent request, and SES events out of order: an Open before its Delivery
    log = FakeMessageLog()
    log.record([Outcome("r1", "sent", "standard", ses_message_id="m-1", completed_at=100.0)])
    assert log.get("r1")["delivery"] == "sent"  # type: ignore[index]
    feedback = FakeFeedbackLog(log)
    opened = FeedbackRecord("k-open", "Open", "opened", 3, 130.0, "m-1", recipients=("j***@example.com",))
    delivered = FeedbackRecord("k-delivery", "Delivery", "delivered", 2, 120.0, "m-1", detail={"smtp_response": "250"})
    subscription = FeedbackRecord("k-subscription", "Subscription", "subscription_changed", None, 140.0, "m-1")

    # When they are appended, the Open twice
    outcomes = [feedback.append("r1", record) for record in (opened, delivered, subscription, opened)]

    # Then each is appended once to the history, and the read derives the rest from it
    assert outcomes == [APPEND_OK, APPEND_OK, APPEND_OK, APPEND_DUPLICATE]
    item = log.get("r1")
    assert item is not None and item["status"] == "sent" and item["delivery"] == "opened"
    assert [h["status"] for h in item["history"]] == ["sent", "opened", "delivered", "subscription_changed"]
    assert [(e["type"], e["at"]) for e in item["events"]] == [("Delivery", 120), ("Open", 130), ("Subscription", 140)]
    assert item["events"][0]["detail"] == {"smtp_response": "250"} and item["events"][0]["recipients"] == []
    assert item["events"][1]["recipients"] == ["j***@example.com"] and item["events"][1]["detail"] == {}


def test_message_log_lists_events_kept_beside_a_request_that_was_missing() -> None:
    log = FakeMessageLog()
    bounce = FeedbackRecord("k-bounce", "Bounce", "bounced", 6, 50.0, "m-1")
    FakeFeedbackLog(log).append("r1", bounce, require_request=False)
    assert log.get("r1") is None

    log.record([Outcome("r1", "sent", "standard", ses_message_id="m-1", completed_at=60.0)])

    item = log.get("r1")
    assert item is not None and item["delivery"] == "bounced"
    (event,) = item["events"]
    assert (event["sk"], event["type"], event["detail"], event["recipients"]) == ("event#k-bounce", "Bounce", {}, [])


def test_message_log_has_no_delivery_state_for_a_request_that_was_not_sent() -> None:
    log = FakeMessageLog()
    log.record([Outcome("r1", "suppressed", "bulk", completed_at=1.0)])
    item = log.get("r1")
    assert item is not None and "delivery" not in item and item["events"] == []


# -- TemplateSource -----------------------------------------------------------


def test_template_source_serves_the_shipped_templates_with_versions() -> None:
    source = FakeTemplateSource.from_directory()
    bundle = source.get("welcome_email")
    assert bundle.version
    assert source.get("welcome_email", bundle.version) == bundle
    assert {"welcome_email", "order_confirmation", "password_reset", "newsletter"} <= set(source.template_ids)


def test_template_source_new_version_becomes_latest_and_old_stays_pinnable() -> None:
    source = FakeTemplateSource.from_directory()
    old = source.get("welcome_email")
    new_version = source.put(old.model_copy(update={"version": None}), version="v2")
    assert source.get("welcome_email").version == new_version == "v2"
    assert source.get("welcome_email", old.version).version == old.version
    assert source.versions("welcome_email") == [old.version, "v2"]


@pytest.mark.parametrize(("template_id", "version"), [("nope", None), ("welcome_email", "no-such-version")])
def test_template_source_raises_not_found(template_id: str, version: str | None) -> None:
    source = FakeTemplateSource.from_directory()
    with pytest.raises(TemplateNotFoundError) as caught:
        source.get(template_id, version)
    assert caught.value.code == "unknown_template"
    assert source.calls["get"] == 1


# -- RetryScheduler and builders -------------------------------------------------


def test_retry_scheduler_records_delays_and_counts_sqs_requests() -> None:
    retries = FakeRetryScheduler()
    retries.delay([(f"h{i}", i) for i in range(12)])
    assert retries.delay_for("h11") == 11 and retries.delay_for("unknown") is None
    assert retries.requests == 2 and retries.calls["delay"] == 1


def test_queue_record_serialises_mappings() -> None:
    record = queue_record({"a": 1}, message_id="m1", receive_count=3)
    assert (record.body, record.receipt_handle, record.receive_count) == ('{"a": 1}', "receipt-m1", 3)
    assert queue_record("raw").body == "raw"


def test_build_fake_service_wires_a_lane() -> None:
    service, world = build_fake_service(lane="bulk", rate_limits={"marketing": RateLimit(1, 60)})
    try:
        assert service.policy.lane == world.policy.lane == "bulk"
        assert world.policy.rate_limits == {"marketing": RateLimit(1, 60)}
    finally:
        world.close()
