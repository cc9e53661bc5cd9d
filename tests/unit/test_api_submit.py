"""POST /v1/messages through the API handler: 202 with ids, 400 naming each invalid request, 503 when nothing was
queued, and the producer taken from the API key, never from the body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from mailwright.api_services import ApiServices
from mailwright.handlers import api
from mailwright.status import StatusService
from mailwright_tools.fakes import FakeMessageLog, FakeProducerDirectory, FakeRecipientIndex, StaticAddressKeys
from mailwright_tools.local.api_server import rest_api_event
from tests.unit.submission_fakes import FakeSqs, submission_service
from tests.unit.test_api_handler import headers

WELCOME = {
    "recipient_email": "jane@example.com",
    "template_id": "welcome_email",
    "template_data": {"user_name": "Jane", "login_link": "https://x.test"},
}


@pytest.fixture
def sqs() -> FakeSqs:
    return FakeSqs()


@pytest.fixture
def services(sqs: FakeSqs) -> ApiServices:
    log = FakeMessageLog()
    producers = FakeProducerDirectory()
    producers.add("key-shop", "shop")
    return ApiServices(
        status=StatusService(log, FakeRecipientIndex(log), StaticAddressKeys()),
        submissions=submission_service(sqs),
        producers=producers,
    )


def submit(services: ApiServices, body: Any, *, key: str | None = "key-shop", **kwargs: Any) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    event = rest_api_event("POST", "/v1/messages", body=raw, caller_arn=None if key else "arn:aws:iam::1:user/ops")
    event["requestContext"]["identity"]["apiKeyId"] = key
    answer = api.handle(services, event, **kwargs)
    assert headers(answer)["Cache-Control"] == "no-store"
    return int(answer["statusCode"]), json.loads(answer["body"])


def test_a_valid_request_is_202_with_its_id(services: ApiServices, sqs: FakeSqs) -> None:
    status, answer = submit(services, WELCOME)

    assert status == 202
    assert [(a["index"], a["lane"]) for a in answer["accepted"]] == [(0, "standard")]
    assert len(answer["accepted"][0]["request_id"]) == 32
    assert (answer["rejected"], answer["failed"]) == ([], [])
    assert sqs.lane("standard")[0]["producer"] == "shop"


def test_an_invalid_request_is_400_naming_field_and_reason(services: ApiServices, sqs: FakeSqs) -> None:
    status, answer = submit(services, {**WELCOME, "recipient_email": "jane"})

    assert status == 400
    assert answer["error"]["code"] == "invalid_requests"
    (item,) = answer["error"]["items"]
    assert (item["index"], item["code"]) == (0, "invalid_address")
    assert item["reason"].startswith("recipient_email:")
    assert sqs.calls == []


def test_a_batch_with_one_bad_request_is_400_and_queues_nothing(services: ApiServices, sqs: FakeSqs) -> None:
    status, answer = submit(services, {"requests": [WELCOME, {**WELCOME, "template_id": "Bad Id"}, WELCOME]})

    assert status == 400
    assert [item["index"] for item in answer["error"]["items"]] == [1]
    assert sqs.calls == []


def test_a_partial_batch_is_202_with_accepted_and_rejected(services: ApiServices) -> None:
    batch = {"requests": [WELCOME, {**WELCOME, "locale": "not a locale"}], "partial": True}

    status, answer = submit(services, batch)

    assert status == 202
    assert [a["index"] for a in answer["accepted"]] == [0]
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [(1, "invalid_request")]


def test_refusals_after_retries_are_listed_in_a_202(sqs: FakeSqs, services: ApiServices) -> None:
    sqs.refuse = lambda call, entry: entry["Id"] == "0"

    status, answer = submit(services, {"requests": [{**WELCOME, "idempotency_key": f"k{n}"} for n in range(3)]})

    assert status == 202
    assert [a["index"] for a in answer["accepted"]] == [1, 2]
    assert [(f["index"], f["code"]) for f in answer["failed"]] == [(0, "InternalError")]


def test_nothing_queued_is_503_with_retry_after(sqs: FakeSqs, services: ApiServices) -> None:
    sqs.down = True
    event = rest_api_event("POST", "/v1/messages", body=json.dumps(WELCOME).encode(), caller_arn=None)
    event["requestContext"]["identity"]["apiKeyId"] = "key-shop"

    answer = api.handle(services, event)

    assert answer["statusCode"] == 503
    assert headers(answer)["Retry-After"] == "1"
    assert json.loads(answer["body"])["error"]["code"] == "unavailable"


@pytest.mark.parametrize(("raw", "code"), [(b"not json", "invalid_json"), (b"[]", "invalid_body")])
def test_unreadable_bodies_are_400(services: ApiServices, raw: bytes, code: str) -> None:
    status, answer = submit(services, raw)

    assert (status, answer["error"]["code"], answer["error"]["items"]) == (400, code, [])


def test_a_key_naming_no_producer_is_403_and_queues_nothing(services: ApiServices, sqs: FakeSqs) -> None:
    status, answer = submit(services, WELCOME, key="key-unknown")

    assert (status, answer["error"]["code"]) == (403, "forbidden")
    assert sqs.calls == []


def test_an_iam_caller_submits_as_the_producer_it_names(services: ApiServices, sqs: FakeSqs) -> None:
    status, _ = submit(services, {**WELCOME, "producer": "billing"}, key=None)

    assert status == 202
    assert sqs.lane("standard")[0]["producer"] == "billing"


def test_a_status_only_deployment_answers_503(services: ApiServices) -> None:
    status, answer = submit(ApiServices(status=services.status, producers=services.producers), WELCOME)

    assert (status, answer["error"]["code"]) == (503, "unavailable")


def test_submissions_are_counted_per_producer(services: ApiServices, sqs: FakeSqs) -> None:
    sqs.refuse = lambda call, entry: entry["Id"] == "1"
    metrics = Metrics(namespace="Test", service="test")
    batch = {"requests": [WELCOME, {**WELCOME, "idempotency_key": "b"}, {"bad": 1}], "partial": True}
    try:
        submit(services, batch, metrics=metrics)
        document = metrics.serialize_metric_set()
    finally:
        metrics.clear_metrics()

    assert document["producer"] == "shop"
    counted = [document[name] for name in ("ApiRequestsAccepted", "ApiRequestsRejected", "ApiRequestsRefused")]
    assert counted == [[1.0], [1.0], [1.0]]
