"""A request's producer: validated, part of its id, recorded in the message log, tagged on the email."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from pydantic import ValidationError

from mailwright.request import EmailRequest
from mailwright_tools.fakes import FakeWorld, queue_record
from tests.unit.conftest import FakeServiceFactory

WELCOME: dict[str, Any] = {
    "recipient_email": "jane@example.com",
    "template_id": "welcome_email",
    "template_data": {"user_name": "Jane", "login_link": "https://x.test"},
}


def test_without_a_producer_ids_are_as_before() -> None:
    # The ids producers already hold (logged before producers existed) must not change.
    keyed = EmailRequest.model_validate({**WELCOME, "idempotency_key": "order-1"})

    assert keyed.request_id == hashlib.sha256(b"key:order-1").hexdigest()[:32]


@pytest.mark.parametrize("extra", [{"idempotency_key": "order-1"}, {}])
def test_the_producer_scopes_the_request_id(extra: dict[str, str]) -> None:
    ids = {
        producer: EmailRequest.model_validate({**WELCOME, **extra, "producer": producer}).request_id
        for producer in ("shop", "billing")
    }

    assert ids["shop"] != ids["billing"]
    assert EmailRequest.model_validate({**WELCOME, **extra}).request_id not in ids.values()


@pytest.mark.parametrize("name", ["Shop", "-shop", "sh op", "a" * 65, "shop:1", ""])
def test_a_producer_name_is_a_tag_value(name: str) -> None:
    with pytest.raises(ValidationError, match="producer"):
        EmailRequest.model_validate({**WELCOME, "producer": name})


def test_metadata_may_not_take_the_producer_tag() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        EmailRequest.model_validate({**WELCOME, "metadata": {"producer": "shop"}})


def test_the_worker_logs_and_tags_the_producer(fake_service: FakeServiceFactory) -> None:
    service, world = fake_service()
    assert isinstance(world, FakeWorld)

    report = service.process([queue_record({**WELCOME, "producer": "shop"}, message_id="m0")])

    (outcome,) = report.outcomes
    assert (outcome.status, outcome.producer) == ("sent", "shop")
    item = world.message_log.get(outcome.request_id)
    assert item is not None and item["producer"] == "shop"
    (email,) = world.sender.sent
    assert ("producer", "shop") in email.tags


def test_a_request_without_a_producer_carries_no_producer_tag(fake_service: FakeServiceFactory) -> None:
    service, world = fake_service()

    report = service.process([queue_record(WELCOME, message_id="m0")])

    assert report.outcomes[0].producer is None
    assert "producer" not in dict(world.sender.sent[0].tags)
    assert "producer" not in (world.message_log.get(report.outcomes[0].request_id) or {})
