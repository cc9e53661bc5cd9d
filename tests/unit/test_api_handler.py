"""The API handler on API Gateway proxy events: routes, status codes, JSON error bodies, who may see what."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from mailwright.constants import STATUS_SENT
from mailwright.errors import TransientError
from mailwright.handlers import api
from mailwright.ports import Outcome
from mailwright.status import StatusService
from mailwright_tools.fakes import FAKE_HASHER, FakeMessageLog, FakeRecipientIndex, StaticAddressKeys
from mailwright_tools.local.api_server import rest_api_event

RID = "ab" * 16
JANE = "jane@example.com"


@pytest.fixture
def log() -> FakeMessageLog:
    log = FakeMessageLog()
    log.record(
        [
            Outcome(
                request_id=f"{n:032x}" if n else RID,
                status=STATUS_SENT,
                lane="standard",
                recipient_hash=FAKE_HASHER.address_hash(JANE),
                recipient_masked="j***@example.com",
                ses_message_id=f"ses-{n}",
                completed_at=1_700_000_000.0 + n,
            )
            for n in range(4)
        ]
    )
    return log


@pytest.fixture
def svc(log: FakeMessageLog) -> StatusService:
    return StatusService(log, FakeRecipientIndex(log), StaticAddressKeys())


def call(svc: StatusService, method: str, path: str, body: Any = None, **event: Any) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    answer = api.handle(svc, rest_api_event(method, path, body=raw, **event))
    assert headers(answer)["Content-Type"] == "application/json"
    assert headers(answer)["Cache-Control"] == "no-store"
    return int(answer["statusCode"]), json.loads(answer["body"])


def headers(answer: dict[str, Any]) -> dict[str, str]:
    """A proxy response's headers: API Gateway takes them single or multi-valued."""
    found = dict(answer.get("headers") or {})
    found.update({name: ", ".join(values) for name, values in (answer.get("multiValueHeaders") or {}).items()})
    return found


def test_get_answers_the_status(svc: StatusService) -> None:
    status, body = call(svc, "GET", f"/v1/messages/{RID}")

    assert status == 200
    assert (body["request_id"], body["status"], body["provider"]) == (RID, "sent", "ses")


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/messages/not-an-id", 400, "invalid_request_id"),
        (f"/v1/messages/{'cd' * 16}", 404, "not_found"),
        ("/v1/messages", 404, "unknown_route"),
        ("/v2/messages/" + RID, 404, "unknown_route"),
    ],
)
def test_get_errors_are_json_with_a_code(svc: StatusService, path: str, status: int, code: str) -> None:
    answered, body = call(svc, "GET", path)

    assert (answered, body["error"]["code"]) == (status, code)
    assert body["error"]["message"]


def test_search_pages_through_the_recipients_requests(svc: StatusService) -> None:
    status, first = call(svc, "POST", "/v1/messages/search", {"recipient": "JANE@example.com", "limit": 3})
    assert status == 200
    _, second = call(svc, "POST", "/v1/messages/search", {"recipient": JANE, "limit": 3, "next": first["next"]})

    listed = [item["request_id"] for item in first["items"] + second["items"]]
    assert listed == [f"{n:032x}" for n in (3, 2, 1)] + [RID]
    assert second["next"] is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "invalid_json"),
        (b"\xff\xfe{", "invalid_json"),
        ({"recipient": "nobody"}, "invalid_body"),
        ({"recipient": JANE, "limit": 1000}, "invalid_body"),
        ({"recipient": JANE, "next": "forged.cursor"}, "invalid_cursor"),
    ],
)
def test_bad_search_bodies_get_400(svc: StatusService, body: Any, code: str) -> None:
    status, answer = call(svc, "POST", "/v1/messages/search", body)

    assert (status, answer["error"]["code"]) == (400, code)


def test_a_base64_body_is_read_as_api_gateway_passes_it(svc: StatusService) -> None:
    event = rest_api_event("POST", "/v1/messages/search", body=json.dumps({"recipient": JANE}).encode())
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True

    answer = api.handle(svc, event)

    assert answer["statusCode"] == 200
    assert len(json.loads(answer["body"])["items"]) == 4


def test_an_unreadable_message_log_is_503_with_retry_after(log: FakeMessageLog, svc: StatusService) -> None:
    log.failures["get"] = TransientError("throttled", "dynamodb: ProvisionedThroughputExceededException")

    answer = api.handle(svc, rest_api_event("GET", f"/v1/messages/{RID}"))

    assert answer["statusCode"] == 503
    assert headers(answer)["Retry-After"] == "1"
    assert json.loads(answer["body"])["error"]["code"] == "unavailable"


def test_an_unexpected_failure_is_a_json_500_without_details(log: FakeMessageLog, svc: StatusService) -> None:
    log.failures["get"] = RuntimeError("secret detail jane@example.com")

    status, body = call(svc, "GET", f"/v1/messages/{RID}")

    assert status == 500
    assert body["error"]["code"] == "internal_error"
    assert "jane" not in json.dumps(body)


def test_a_caller_without_identity_is_refused(svc: StatusService) -> None:
    status, body = call(svc, "GET", f"/v1/messages/{RID}", caller_arn=None)

    assert (status, body["error"]["code"]) == (403, "forbidden")


def test_an_api_key_that_names_no_producer_never_gets_the_platform_view(svc: StatusService) -> None:
    event = rest_api_event("GET", f"/v1/messages/{RID}", caller_arn=None)
    event["requestContext"]["identity"]["apiKeyId"] = "k3y1d"

    answer = api.handle(svc, event)

    assert answer["statusCode"] == 403


def test_a_producer_named_by_the_authorizer_sees_only_its_own_requests(svc: StatusService) -> None:
    # What issue 15's key authorizer will put in the request context; requests logged before carry no producer.
    event = rest_api_event("GET", f"/v1/messages/{RID}", caller_arn=None)
    event["requestContext"]["authorizer"] = {"producer": "shop"}
    event["requestContext"]["identity"]["apiKeyId"] = "k3y1d"

    answer = api.handle(svc, event)

    assert answer["statusCode"] == 404
    search = rest_api_event("POST", "/v1/messages/search", body=json.dumps({"recipient": JANE}).encode())
    search["requestContext"]["authorizer"] = {"producer": "shop"}
    assert json.loads(api.handle(svc, search)["body"])["items"] == []


def test_the_lambda_handler_builds_its_service_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    api.service.cache_clear()
    monkeypatch.delenv("MAILWRIGHT_MESSAGES_TABLE", raising=False)
    try:
        from mailwright.errors import ConfigurationError

        with pytest.raises(ConfigurationError, match="MAILWRIGHT_MESSAGES_TABLE"):
            api.service()
    finally:
        api.service.cache_clear()
