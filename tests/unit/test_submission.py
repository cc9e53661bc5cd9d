"""Submissions (POST /v1/messages): one or a batch, validated whole, routed as the SDK routes, never accepted in part
without saying so."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailwright.errors import TransientError
from mailwright.request import EmailRequest
from mailwright.submission import (
    InvalidRequestsError,
    QueueUnavailableError,
    SubmissionError,
    TemplateLanes,
    parse_submission,
)
from mailwright_tools.fakes import FakeClock, FakeTemplateSource
from tests.unit.submission_fakes import FakeSqs, submission_service

RESET = {"user_name": "Nora", "reset_link": "https://x.test/r", "expires_in_minutes": 30}


def request(n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "recipient_email": f"user{n}@example.com",
        "template_id": "welcome_email",
        "template_data": {"user_name": f"U{n}", "login_link": "https://x.test"},
        **extra,
    }


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_one_request_is_queued_on_its_templates_lane_with_the_producer() -> None:
    sqs = FakeSqs()

    result = submission_service(sqs).submit(
        body(request(template_id="password_reset", template_data=RESET)), producer="billing"
    )

    (accepted,) = result.accepted
    queued = sqs.lane("critical")
    assert (accepted.index, accepted.lane) == (0, "critical")
    assert [item["producer"] for item in queued] == ["billing"]
    # The id returned is the id the worker logs: the request as queued, parsed as the worker parses it.
    assert accepted.request_id == EmailRequest.model_validate(queued[0]).request_id
    assert result.rejected == [] and result.failed == []


def test_a_batch_is_routed_per_request_priority_first() -> None:
    sqs = FakeSqs()
    requests = [
        request(0),
        request(1, template_id="newsletter", template_data={"user_name": "x", "headline": "h", "articles": []}),
        request(2, priority="critical"),
    ]

    result = submission_service(sqs).submit(body({"requests": requests}), producer="shop")

    assert [(a.index, a.lane) for a in result.accepted] == [(0, "standard"), (1, "bulk"), (2, "critical")]
    assert len(sqs.lane("standard")) == len(sqs.lane("bulk")) == len(sqs.lane("critical")) == 1


def test_a_producers_ids_are_its_own() -> None:
    keyed = request(idempotency_key="order-1")
    shop = submission_service(FakeSqs()).submit(body(keyed), producer="shop").accepted[0].request_id
    again = submission_service(FakeSqs()).submit(body(keyed), producer="shop").accepted[0].request_id
    billing = submission_service(FakeSqs()).submit(body(keyed), producer="billing").accepted[0].request_id

    assert shop == again
    assert shop != billing
    assert shop != EmailRequest.model_validate(keyed).request_id  # not the id of the same key with no producer


def test_an_invalid_request_in_a_batch_queues_nothing_and_is_named() -> None:
    sqs = FakeSqs()
    requests = [request(0), request(1, recipient_email="not-an-address"), request(2, template_dat={}), "text"]

    with pytest.raises(InvalidRequestsError) as caught:
        submission_service(sqs).submit(body({"requests": requests}), producer="shop")

    assert sqs.calls == []
    assert [(item.index, item.code) for item in caught.value.items] == [
        (1, "invalid_address"),
        (2, "invalid_request"),
        (3, "invalid_request"),
    ]
    assert caught.value.items[1].reason.startswith("template_dat:")
    assert caught.value.message == "3 of 4 requests are invalid; nothing was queued"


def test_partial_acceptance_queues_the_valid_and_lists_the_rest() -> None:
    sqs = FakeSqs()
    requests = [request(0), request(1, recipient_email="nobody"), request(2)]

    result = submission_service(sqs).submit(body({"requests": requests, "partial": True}), producer="shop")

    assert [a.index for a in result.accepted] == [0, 2]
    assert [(r.index, r.code) for r in result.rejected] == [(1, "invalid_address")]
    assert len(sqs.lane("standard")) == 2


def test_partial_acceptance_with_nothing_valid_is_still_invalid() -> None:
    with pytest.raises(InvalidRequestsError):
        submission_service(FakeSqs()).submit(body({"requests": [{"x": 1}], "partial": True}), producer=None)


def test_a_request_may_name_only_its_own_producer() -> None:
    sqs = FakeSqs()
    service = submission_service(sqs)

    with pytest.raises(InvalidRequestsError) as caught:
        service.submit(body(request(producer="billing")), producer="shop")
    named = service.submit(body(request(producer="shop")), producer="shop")
    iam = service.submit(body(request(producer="billing")), producer=None)

    assert [item.code for item in caught.value.items] == ["producer_mismatch"]
    assert len(named.accepted) == 1
    # An IAM caller is trusted like any queue publisher: the producer it names is kept.
    assert sqs.lane("standard")[-1]["producer"] == "billing"
    assert len(iam.accepted) == 1


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "invalid_json"),
        (b"{", "invalid_json"),
        (b"[1, 2]", "invalid_body"),
        (body({"requests": []}), "invalid_body"),
        (body({"requests": [request(n) for n in range(101)]}), "invalid_body"),
        (body({"requests": [request()], "partial": "yes"}), "invalid_body"),
        (body({"requests": [request()], "extra": 1}), "invalid_body"),
    ],
)
def test_unreadable_bodies_are_refused_before_any_request(raw: bytes, code: str) -> None:
    with pytest.raises(SubmissionError) as caught:
        parse_submission(raw)

    assert caught.value.code == code
    assert not isinstance(caught.value, InvalidRequestsError)


def test_a_hundred_requests_fit_one_batch() -> None:
    sqs = FakeSqs()

    result = submission_service(sqs).submit(body({"requests": [request(n) for n in range(100)]}), producer="shop")

    assert len(result.accepted) == 100
    assert len(sqs.calls) == 10  # ten SendMessageBatch calls of ten


def test_refused_entries_are_retried_and_then_accepted() -> None:
    # The first call refuses two entries; the retry takes them.
    sqs = FakeSqs(refuse=lambda call, entry: call == 1 and entry["Id"] in ("1", "3"))

    result = submission_service(sqs).submit(body({"requests": [request(n) for n in range(5)]}), producer="shop")

    assert [a.index for a in result.accepted] == [0, 1, 2, 3, 4]
    assert result.failed == []
    assert [len(entries) for _, entries in sqs.calls] == [5, 2]
    assert len(sqs.lane("standard")) == 5


def test_entries_still_refused_after_retries_are_reported_not_accepted() -> None:
    sqs = FakeSqs(refuse=lambda call, entry: entry["Id"] == "2")

    result = submission_service(sqs).submit(body({"requests": [request(n) for n in range(4)]}), producer="shop")

    assert [a.index for a in result.accepted] == [0, 1, 3]
    assert [(f.index, f.code) for f in result.failed] == [(2, "InternalError")]
    assert result.failed[0].request_id not in {a.request_id for a in result.accepted}
    assert len(sqs.calls) == 3  # the first send and two retries
    assert len(sqs.lane("standard")) == 3


def test_nothing_queued_is_an_error_not_an_acceptance() -> None:
    sqs = FakeSqs()
    sqs.down = True

    with pytest.raises(QueueUnavailableError) as caught:
        submission_service(sqs).submit(body({"requests": [request(0), request(1)]}), producer="shop")

    assert [f.index for f in caught.value.failed] == [0, 1]
    assert len(sqs.calls) == 3


def test_unknown_templates_go_to_the_default_lane_and_are_asked_for_once_a_minute() -> None:
    templates = FakeTemplateSource.from_directory()
    clock = FakeClock()
    lanes = TemplateLanes(templates, clock=clock)

    assert lanes("no_such_template") is None
    assert lanes("no_such_template") is None
    clock.advance(61)
    assert lanes("no_such_template") is None
    assert lanes("password_reset") == "critical"
    assert templates.calls["get"] == 3


def test_an_unreadable_bucket_routes_by_default_instead_of_refusing() -> None:
    templates = FakeTemplateSource.from_directory()
    templates.failures["get"] = TransientError("s3_unreachable", "s3: down")
    sqs = FakeSqs()

    result = submission_service(sqs, templates).submit(
        body(request(template_id="password_reset", template_data=RESET)), producer="shop"
    )

    assert result.accepted[0].lane == "standard"
