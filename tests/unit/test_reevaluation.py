"""Dedupe keeps an email from going out twice; it never keeps a rejected request from being fixed.

Also: lookups in every readable address-key version (before `mailwright migrate address-hashes`).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from mailwright.address_keys import AddressHasher, legacy_address_hash, legacy_user_key
from mailwright.errors import TransientError
from mailwright.ports import Preferences, Suppression
from mailwright.request import parse_request
from mailwright.sending import SendService
from mailwright.settings import RateLimit
from mailwright.templates import load_template_tree
from mailwright_tools.fakes import (
    FAKE_ADDRESS_KEYRING,
    TEMPLATES_DIR,
    FakeTemplateSource,
    FakeWorld,
    StaticAddressKeys,
    queue_record,
)

from .conftest import FakeServiceFactory

SHIPPED = load_template_tree(TEMPLATES_DIR)
WELCOME = {
    "recipient_email": "jane@example.com",
    "template_id": "welcome_email",
    "template_data": dict(SHIPPED["welcome_email"].metadata.sample_data),
}


def deliver(service: SendService, message: dict[str, Any], message_id: str = "m1") -> Any:
    """One delivery of `message` in a batch of its own."""
    return service.process([queue_record(message, message_id=message_id)])


@pytest.fixture
def without_templates(fake_service: FakeServiceFactory) -> tuple[SendService, FakeWorld]:
    """A service whose bucket holds no template yet."""
    return fake_service(templates=FakeTemplateSource())


def test_a_rejected_request_is_evaluated_again_once_its_template_exists(
    without_templates: tuple[SendService, FakeWorld],
) -> None:
    service, world = without_templates
    rid = parse_request(WELCOME).request_id

    # Given a request rejected because its template was not uploaded yet
    first = deliver(service, WELCOME)
    assert [(o.status, o.reason_code, o.evaluation) for o in first.outcomes] == [("rejected", "unknown_template", 1)]

    # When the template is uploaded and the same request is published again
    world.templates.put(SHIPPED["welcome_email"])
    second = deliver(service, WELCOME, "m2")

    # Then it is sent, as the request's second evaluation, and the history keeps both
    assert [(o.status, o.evaluation) for o in second.outcomes] == [("sent", 2)]
    assert second.reevaluations == 1 and second.duplicates == 0
    assert len(world.sender.sent) == 1
    item = world.message_log.get(rid)
    assert item is not None and (item["status"], item["evaluation"]) == ("sent", 2)
    assert [(h["status"], h["evaluation"], h.get("reason_code")) for h in item["history"]] == [
        ("rejected", 1, "unknown_template"),
        ("sent", 2, None),
    ]
    claim = world.claims.get(rid)
    assert claim is not None and claim.evaluation == 2

    # And once sent, another delivery is a duplicate: nothing goes out twice
    third = deliver(service, WELCOME, "m3")
    assert third.duplicates == 1 and third.outcomes == []
    assert len(world.sender.sent) == 1


def test_a_request_rejected_again_keeps_counting_evaluations(without_templates: tuple[SendService, FakeWorld]) -> None:
    service, world = without_templates
    for attempt in range(3):
        report = deliver(service, WELCOME, f"m{attempt}")
        assert [(o.status, o.evaluation) for o in report.outcomes] == [("rejected", attempt + 1)]
    item = world.message_log.get(parse_request(WELCOME).request_id)
    assert item is not None and [h["evaluation"] for h in item["history"]] == [1, 2, 3]


def test_an_evaluation_in_flight_elsewhere_is_not_started_twice(
    without_templates: tuple[SendService, FakeWorld],
) -> None:
    service, world = without_templates
    rid = parse_request(WELCOME).request_id
    deliver(service, WELCOME)
    world.templates.put(SHIPPED["welcome_email"])
    # Another worker has just claimed the second evaluation and not recorded it yet
    existing = world.claims.get(rid)
    assert existing is not None
    assert world.claims.reclaim(existing, evaluation=2, lease_seconds=300, ttl_seconds=86400) is not None

    report = deliver(service, WELCOME, "m2")

    assert report.outcomes == [] and report.retry_reasons == {"m2": "in_flight_elsewhere"}
    assert world.sender.sent == []


def test_of_two_deliveries_racing_to_re_evaluate_one_wins(without_templates: tuple[SendService, FakeWorld]) -> None:
    service, world = without_templates
    rid = parse_request(WELCOME).request_id
    deliver(service, WELCOME)
    stale = world.claims.get(rid)
    assert stale is not None
    world.templates.put(SHIPPED["welcome_email"])

    # One delivery re-claims the request...
    assert deliver(service, WELCOME, "m2").outcomes[0].status == "sent"
    # ...and the other, holding the claim as it read it before, is refused by the condition
    assert world.claims.reclaim(stale, evaluation=2, lease_seconds=300, ttl_seconds=86400) is None
    assert len(world.sender.sent) == 1


@pytest.mark.parametrize(
    ("setup", "status"),
    [
        (lambda w: w.suppressions.suppress("jane@example.com", "BOUNCE"), "suppressed"),
        (lambda w: w.preferences.put(Preferences("u1", unsubscribed_all=True)), "opted_out"),
    ],
)
def test_final_outcomes_other_than_rejected_stay_final(
    fake_service: FakeServiceFactory, setup: Any, status: str
) -> None:
    service, world = fake_service()
    newsletter = {
        "recipient_email": "jane@example.com",
        "user_id": "u1",
        "template_id": "newsletter",
        "template_data": dict(SHIPPED["newsletter"].metadata.sample_data),
    }
    setup(world)
    assert [o.status for o in deliver(service, newsletter).outcomes] == [status]
    # Lifting the block does not resend a request already decided
    world.suppressions.items.clear()
    world.preferences.items.clear()
    again = deliver(service, newsletter, "m2")
    assert again.duplicates == 1 and world.sender.sent == []


def test_rate_limited_stays_final(fake_service: FakeServiceFactory) -> None:
    service, world = fake_service(rate_limits={"marketing": RateLimit(limit=1, window_seconds=86400)})
    data = dict(SHIPPED["newsletter"].metadata.sample_data)
    first = {"recipient_email": "jane@example.com", "user_id": "u1", "template_id": "newsletter", "template_data": data}
    second = {**first, "idempotency_key": "issue-2"}
    deliver(service, first)
    assert [o.status for o in deliver(service, second, "m2").outcomes] == ["rate_limited"]
    assert deliver(service, second, "m3").duplicates == 1
    assert len(world.sender.sent) == 1


# -- lookups before the stored hashes are migrated to the current key ----------------

LEGACY_READABLE = AddressHasher(FAKE_ADDRESS_KEYRING, readable_from=0)
NEWSLETTER = {
    "recipient_email": "jane@example.com",
    "template_id": "newsletter",
    "template_data": dict(SHIPPED["newsletter"].metadata.sample_data),
}


@pytest.fixture
def upgraded(fake_service: FakeServiceFactory) -> tuple[SendService, FakeWorld]:
    """A worker whose current key is version 1 while legacy items may still be stored."""
    return fake_service(address_keys=StaticAddressKeys(LEGACY_READABLE), rate_limits={"marketing": RateLimit(1, 86400)})


def test_a_legacy_suppression_still_blocks_and_the_outcome_carries_the_keyed_hash(
    upgraded: tuple[SendService, FakeWorld],
) -> None:
    service, world = upgraded
    world.suppressions.put(Suppression(legacy_address_hash("jane@example.com"), "BOUNCE"))

    report = deliver(service, WELCOME)

    assert [o.status for o in report.outcomes] == ["suppressed"]
    assert report.outcomes[0].recipient_hash == LEGACY_READABLE.address_hash("jane@example.com")
    assert report.outcomes[0].recipient_hash != legacy_address_hash("jane@example.com")


def test_a_legacy_opt_out_still_counts(upgraded: tuple[SendService, FakeWorld]) -> None:
    service, world = upgraded
    world.preferences.put(Preferences(legacy_user_key("jane@example.com"), opted_out=frozenset({"marketing"})))

    report = deliver(service, NEWSLETTER)

    assert [(o.status, o.user_id) for o in report.outcomes] == [
        ("opted_out", LEGACY_READABLE.user_key("jane@example.com"))
    ]


def test_a_legacy_rate_limit_count_still_counts(upgraded: tuple[SendService, FakeWorld]) -> None:
    service, world = upgraded
    window = world.rate_limiter.window_start(RateLimit(1, 86400), time.time())
    world.rate_limiter.counted[(legacy_user_key("jane@example.com"), "marketing", window)] = {"an-earlier-request"}

    report = deliver(service, NEWSLETTER)

    assert [o.status for o in report.outcomes] == ["rate_limited"]


def test_without_the_keyring_the_batch_is_retried(fake_service: FakeServiceFactory) -> None:
    service, world = fake_service()
    world.address_keys.failures["hasher"] = TransientError("secretsmanager_unreachable", "injected")

    report = deliver(service, WELCOME)

    assert report.outcomes == [] and report.retry_reasons == {"m1": "secretsmanager_unreachable"}
    assert world.sender.sent == []
