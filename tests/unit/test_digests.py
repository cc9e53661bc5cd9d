"""Digests with fakes: folding, the window's end and its maximum, redeliveries, late requests, bad items."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from mailwright.digests import (
    MAX_DIGEST_ITEM_BYTES,
    REASON_DIGEST_WINDOW,
    digest_email_id,
    flush_body,
    parse_flush,
)
from mailwright.errors import TransientError
from mailwright.request import EmailRequest, parse_request
from mailwright.sending import SendService
from mailwright.templates.model import DigestSpec, TemplateMetadata
from mailwright_tools.fakes import (
    FakeClock,
    FakeWorld,
    build_fake_service,
    queue_record,
)


def item(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "recipient_email": "jane@example.com",
        "template_id": "activity_digest",
        "user_id": "u1",
        "digest_key": "comments",
        "template_data": {"title": f"Comment {i}", "url": f"https://example.com/c/{i}"},
        **extra,
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def built(clock: FakeClock) -> Any:
    service, world = build_fake_service(clock=clock)
    yield service, world
    world.close()


def flush_due(service: SendService, world: FakeWorld, clock: FakeClock) -> Any:
    """Run every flush message enqueued so far, after its delay."""
    flushes = [d for d in world.deferrals.deferred if d.reason == REASON_DIGEST_WINDOW]
    world.deferrals.deferred.clear()
    clock.advance(max((d.seconds for d in flushes), default=0) + 1)
    return service.process([queue_record(d.body, message_id=f"m-{i}") for i, d in enumerate(flushes)])


def test_three_requests_become_one_email_with_three_items(built: Any, clock: FakeClock) -> None:
    service, world = built
    records = [queue_record(item(i)) for i in range(3)]

    report = service.process(records)

    # Each request is recorded digested, naming the one digest email; nothing is sent yet
    assert {o.status for o in report.outcomes} == {"digested"}
    (digest_id,) = {o.digest_id for o in report.outcomes}
    assert world.sender.sent == []
    (flush,) = world.deferrals.deferred
    assert (flush.reason, flush.seconds) == (REASON_DIGEST_WINDOW, 600)  # the template's window
    history = world.message_log.get(report.outcomes[0].request_id)["history"]
    assert history[-1]["detail"] == {"digest_id": digest_id}

    # When the window closes, one email lists the three, oldest first, and is logged under the digest id
    sent = flush_due(service, world, clock)
    (email,) = world.sender.sent
    assert email.subject == "3 new updates for you"
    assert [f"Comment {i}" in email.text for i in range(3)] == [True] * 3
    assert email.text.index("Comment 0") < email.text.index("Comment 2")
    assert 'href="https://example.com/c/1"' in email.html
    assert [(o.request_id, o.status) for o in sent.outcomes] == [(digest_id, "sent")]


def test_a_redelivered_request_is_listed_once_even_after_its_claim_is_gone(built: Any, clock: FakeClock) -> None:
    service, world = built
    first = item(1)
    service.process([queue_record(first), queue_record(item(2))])
    # A crash after the fold, before the outcome was written: the claim is gone, the message comes back
    rid = parse_request(json.dumps(first)).request_id
    world.claims.release(rid, world.claims.get(rid).lease_id)  # type: ignore[union-attr]

    again = service.process([queue_record(first)])

    assert [o.status for o in again.outcomes] == ["digested"]
    flush_due(service, world, clock)
    (email,) = world.sender.sent
    assert email.text.count("Comment 1") == 1 and email.subject == "2 new updates for you"


def test_max_items_flushes_at_once_and_the_next_request_opens_a_new_window(clock: FakeClock) -> None:
    service, world = build_fake_service(clock=clock)
    try:
        max_items = world.templates.get("activity_digest").metadata.digest.max_items  # type: ignore[union-attr]
        report = service.process([queue_record(item(i)) for i in range(max_items)])
        assert {o.status for o in report.outcomes} == {"digested"}
        # The full window's flush has no delay
        assert 0 in {d.seconds for d in world.deferrals.deferred}
        full = [d for d in world.deferrals.deferred if d.seconds == 0]
        world.deferrals.deferred[:] = [d for d in world.deferrals.deferred if d.seconds != 0]
        service.process([queue_record(d.body) for d in full])
        (email,) = world.sender.sent
        assert email.subject == f"{max_items} new updates for you"

        # A request after the window closed opens the next window: another digest email
        late = service.process([queue_record(item(99))])
        (late_outcome,) = late.outcomes
        assert late_outcome.digest_id not in {o.digest_id for o in report.outcomes}
        flush_due(service, world, clock)
        assert [e.subject for e in world.sender.sent][1:] == ["1 new update for you"]
    finally:
        world.close()


def test_a_flush_before_the_windows_end_waits_again(built: Any, clock: FakeClock) -> None:
    service, world = built
    service.process([queue_record(item(1))])
    (flush,) = world.deferrals.deferred
    world.deferrals.deferred.clear()

    clock.advance(100)
    report = service.process([queue_record(flush.body)])

    assert report.outcomes == [] and report.failed == [] and world.sender.sent == []
    (wait,) = world.deferrals.deferred
    assert (wait.body, wait.seconds, wait.deferrals) == (flush.body, 500, 1)


def test_the_local_window_override_applies_to_every_digest_template(clock: FakeClock) -> None:
    service, world = build_fake_service(clock=clock, digest_window_seconds=2)
    try:
        service.process([queue_record(item(1))])
        assert [d.seconds for d in world.deferrals.deferred] == [2]
    finally:
        world.close()


def test_consent_applies_to_the_digest_email_once(built: Any, clock: FakeClock) -> None:
    service, world = built
    from mailwright.ports import Preferences

    world.preferences.put(Preferences("u1", opted_out=frozenset({"product"})))
    service.process([queue_record(item(i)) for i in range(2)])
    report = flush_due(service, world, clock)
    assert world.sender.sent == [] and [o.status for o in report.outcomes] == ["opted_out"]


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (item(1, template_id="newsletter"), "not_a_digest"),
        (item(1, template_data={"title": "no url"}), "missing_variable"),
        (item(1, template_data={"title": "x" * MAX_DIGEST_ITEM_BYTES, "url": "u"}), "digest_item_too_large"),
    ],
)
def test_a_request_that_cannot_be_folded_is_rejected_with_a_reason(built: Any, request_: Any, code: str) -> None:
    service, world = built
    report = service.process([queue_record(request_)])
    assert [(o.status, o.reason_code) for o in report.outcomes] == [("rejected", code)]
    assert world.deferrals.deferred == []


def test_a_fold_the_store_cannot_write_is_retried(built: Any) -> None:
    service, world = built
    original = world.digests.fold

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise TransientError("dynamodb_failed", "down")

    world.digests.fold = failing  # type: ignore[method-assign]
    record = queue_record(item(1))
    report = service.process([record])
    assert report.failed == [record.message_id] and report.outcomes == []
    world.digests.fold = original  # type: ignore[method-assign]


def test_digest_key_is_validated_and_flush_bodies_are_no_requests() -> None:
    with pytest.raises(ValidationError):
        EmailRequest.model_validate(item(1, digest_key=" bad key!"))
    with pytest.raises(ValidationError):
        EmailRequest.model_validate(item(1, digest_key="k" * 129))
    body = flush_body("abc", 3)
    assert parse_flush(body) == ("abc", 3)
    assert parse_flush(json.dumps(item(1))) is None
    # The digest email's id is that of the request the flush builds (its idempotency key and producer)
    request = EmailRequest.model_validate({**item(1), "digest_key": None, "idempotency_key": "digest:abc:3"})
    assert digest_email_id("abc", 3, None) == request.request_id


def test_template_digest_settings_are_validated() -> None:
    base = {"category": "product", "required_variables": ["items"]}
    assert TemplateMetadata.model_validate({**base, "digest": {"window_seconds": 60, "max_items": 5}}).digest == (
        DigestSpec(window_seconds=60, max_items=5)
    )
    for bad in ({"window_seconds": 0, "max_items": 5}, {"window_seconds": 60, "max_items": 51}, {"window": 1}):
        with pytest.raises(ValidationError):
            TemplateMetadata.model_validate({**base, "digest": bad})
    with pytest.raises(ValidationError, match="items"):
        TemplateMetadata.model_validate({"category": "product", "digest": {"window_seconds": 60, "max_items": 5}})
    # Templates that are not digests serialise as before
    assert "digest" not in TemplateMetadata.model_validate(base).model_dump()
