"""The critical lane's ordering: the token take overlaps the dedupe claims and consent reads (one round trip)."""

from __future__ import annotations

import threading
from typing import Any

from mailwright.errors import TransientError
from mailwright.pacing import Grant, Pacer
from mailwright.ports import ClaimResult
from mailwright_tools.fakes import FakeClaimStore, queue_record

from .conftest import FakeServiceFactory
from .test_sending import body, request_id

# Long enough for a thread pool to start the claims, short enough not to slow a failing test much.
OVERLAP_TIMEOUT_SECONDS = 2.0


class RecordingPacer(Pacer):
    """A fast local pacer that records its calls; `take` can wait until a claim has started."""

    def __init__(self, *, wait_for_claim: threading.Event | None = None, grant: int | None = None) -> None:
        super().__init__(1000.0)
        self.events: list[str] = []
        self.given_back = 0
        self.saw_claim_in_flight: bool | None = None
        self._wait_for_claim = wait_for_claim
        self._grant = grant

    def take(self, count: int, *, deadline: float | None = None) -> Grant:
        if self._wait_for_claim is not None:
            self.saw_claim_in_flight = self._wait_for_claim.wait(OVERLAP_TIMEOUT_SECONDS)
        self.events.append("take")
        grant = super().take(count, deadline=deadline)
        if self._grant is None or self._grant >= grant.granted:
            return grant
        # The first `grant` records get tokens, the others are handed back after 5 s.
        return Grant(grant.starts[: self._grant], (5,) * (count - self._grant))

    def give_back(self, count: int) -> None:
        self.given_back += count
        super().give_back(count)


class SignallingClaims(FakeClaimStore):
    """Sets `started` when a claim begins; refuses the request ids in `refuse` with a transient error."""

    def __init__(self, events: list[str], refuse: set[str] | None = None) -> None:
        super().__init__()
        self.started = threading.Event()
        self._events = events
        self._refuse = refuse or set()

    def claim(self, request_id: str, content_hash: str, *, lease_seconds: int, ttl_seconds: int) -> ClaimResult:
        self.started.set()
        self._events.append("claim")
        if request_id in self._refuse:
            raise TransientError("claim_throttled", "the idempotency table is throttling")
        return super().claim(request_id, content_hash, lease_seconds=lease_seconds, ttl_seconds=ttl_seconds)


def _service(fake_service: FakeServiceFactory, *, lane: str, refuse: set[str] | None = None, **pacer: Any) -> Any:
    events: list[str] = []
    claims = SignallingClaims(events, refuse)
    recording = RecordingPacer(wait_for_claim=claims.started if lane == "critical" else None, **pacer)
    recording.events = events
    service, world = fake_service(lane=lane, claims=claims, pacer=recording)
    return service, world, recording, claims


def test_critical_lane_takes_its_tokens_while_the_claims_are_in_flight(fake_service: FakeServiceFactory) -> None:
    service, world, pacer, _ = _service(fake_service, lane="critical")
    report = service.process([queue_record(body("password_reset"), message_id="m0")])
    # The take waited for a claim to start: the two round trips overlap
    assert pacer.saw_claim_in_flight is True
    assert [o.status for o in report.outcomes] == ["sent"]
    assert len(world.sender.sent) == 1
    assert pacer.given_back == 0


def test_other_lanes_pace_before_they_claim(fake_service: FakeServiceFactory) -> None:
    # Bulk mail is often handed back: a claim paid for before its token is known would be wasted
    service, _, pacer, _ = _service(fake_service, lane="bulk")
    service.process([queue_record(body(to=f"u{i}@example.com"), message_id=f"m{i}") for i in range(3)])
    assert pacer.events[0] == "take"
    assert pacer.events.count("claim") == 3


def test_a_token_whose_claim_then_fails_is_given_back(fake_service: FakeServiceFactory) -> None:
    failing = body("password_reset", to="a@example.com")
    fine = body("password_reset", to="b@example.com")
    service, world, pacer, _ = _service(fake_service, lane="critical", refuse={request_id(failing)})
    report = service.process([queue_record(failing, message_id="m0"), queue_record(fine, message_id="m1")])
    # Both records were granted tokens while their claims were in flight; the failed claim is retried
    assert report.failed == ["m0"]
    assert report.retry_reasons == {"m0": "claim_throttled"}
    assert [e.to_address for e in world.sender.sent] == ["b@example.com"]
    # And its unused token goes back to the bucket
    assert pacer.given_back == 1


def test_a_duplicate_found_by_its_claim_gives_its_token_back(fake_service: FakeServiceFactory) -> None:
    message = body("password_reset")
    service, world, pacer, _ = _service(fake_service, lane="critical")
    service.process([queue_record(message, message_id="m0")])
    report = service.process([queue_record(message, message_id="m1")])
    # The second delivery is a duplicate: not sent again, acked, its token returned
    assert report.duplicates == 1
    assert report.failed == []
    assert len(world.sender.sent) == 1
    assert pacer.given_back == 1


def test_a_critical_record_handed_back_after_its_claim_releases_it(fake_service: FakeServiceFactory) -> None:
    first = body("password_reset", to="a@example.com")
    second = body("password_reset", to="b@example.com")
    service, world, _, claims = _service(fake_service, lane="critical", grant=1)
    report = service.process([queue_record(first, message_id="m0"), queue_record(second, message_id="m1")])
    # One token: the other record is handed back, not failed, not sent
    assert report.deferred == {"m1": "paced"}
    assert report.failed == []
    assert [e.to_address for e in world.sender.sent] == ["a@example.com"]
    # Its claim was released, so the copy handed back can claim the request at once
    assert claims.calls["release"] == 1
    [deferral] = world.deferrals.deferred
    again = service.process([queue_record(deferral.body, message_id="m2")])
    assert [o.status for o in again.outcomes] == ["sent"]
    assert [e.to_address for e in world.sender.sent] == ["a@example.com", "b@example.com"]


def test_a_critical_lane_with_a_backlog_paces_before_it_claims(fake_service: FakeServiceFactory) -> None:
    service, _, pacer, _ = _service(fake_service, lane="critical", grant=1)
    mail = [body("password_reset", to=f"u{i}@example.com") for i in range(4)]
    service.process([queue_record(mail[0], message_id="m0"), queue_record(mail[1], message_id="m1")])
    # The take left a record over: the next batch takes its tokens first and claims only what may go
    pacer.events.clear()
    pacer._wait_for_claim = None
    report = service.process([queue_record(mail[2], message_id="m2"), queue_record(mail[3], message_id="m3")])
    assert pacer.events == ["take", "claim"]
    assert report.deferred == {"m3": "paced"}
