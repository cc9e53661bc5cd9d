"""The SDK's status client against a scripted HTTP server on loopback: SigV4, retries, errors, pagination."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from mailwright.sdk import MessageNotFoundError, StatusApiError, StatusClient

RID = "ab" * 16
STATUS = {"request_id": RID, "status": "sent", "completed_at": "2026-11-01T10:00:00Z"}


class Stub(ThreadingHTTPServer):
    """Answers each request with the next scripted (status, headers, body), recording what it was sent."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _StubHandler)
        self.script: list[tuple[int, dict[str, str], Any]] = []
        self.seen: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _StubHandler(BaseHTTPRequestHandler):
    server: Stub

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body}
        )
        status, headers, answer = self.server.script.pop(0)
        payload = json.dumps(answer).encode() if not isinstance(answer, bytes) else answer
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = Stub()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def credentials() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="eu-west-1"
    )


def test_get_on_loopback_is_unsigned_and_parses_the_status(stub: Stub) -> None:
    stub.script.append((200, {}, STATUS))

    status = StatusClient(stub.url + "/").get(RID)

    assert (status.request_id, status.status) == (RID, "sent")
    (seen,) = stub.seen
    assert (seen["method"], seen["path"]) == ("GET", f"/v1/messages/{RID}")
    assert "Authorization" not in seen["headers"]


def test_a_signed_request_carries_a_sigv4_signature_for_execute_api(stub: Stub) -> None:
    stub.script.append((200, {}, STATUS))

    StatusClient(stub.url, sign=True, session=credentials()).get(RID)

    headers = stub.seen[0]["headers"]
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
    assert "SignedHeaders=" in headers["Authorization"]
    assert headers["X-Amz-Date"]


def test_a_deployed_url_is_signed_for_its_own_region() -> None:
    client = StatusClient("https://abc123.execute-api.ap-southeast-2.amazonaws.com/prod/", session=credentials())

    headers = client._headers("GET", f"{client.base_url}/v1/messages/{RID}", None)

    assert client.sign
    assert "/ap-southeast-2/execute-api/aws4_request" in headers["Authorization"]


def test_plain_http_is_refused_off_loopback() -> None:
    with pytest.raises(ValueError, match="HTTPS"):
        StatusClient("http://abc123.execute-api.eu-west-1.amazonaws.com/prod")
    with pytest.raises(ValueError, match="http"):
        StatusClient("ftp://127.0.0.1/")


def test_an_unknown_request_raises_not_found_and_other_errors_carry_their_code(stub: Stub) -> None:
    stub.script.append((404, {}, {"error": {"code": "not_found", "message": "no request"}}))
    stub.script.append((400, {}, {"error": {"code": "invalid_request_id", "message": "32 hex"}}))
    stub.script.append((403, {}, {"message": "Missing Authentication Token"}))
    client = StatusClient(stub.url)

    with pytest.raises(MessageNotFoundError):
        client.get(RID)
    with pytest.raises(StatusApiError) as bad:
        client.get("nope")
    with pytest.raises(StatusApiError) as refused:
        client.get(RID)

    assert (bad.value.status, bad.value.code) == (400, "invalid_request_id")
    assert (refused.value.status, refused.value.code) == (403, "http_403")


def test_throttling_and_unavailability_are_retried_after_the_servers_delay(stub: Stub) -> None:
    stub.script += [
        (429, {}, {"error": {"code": "throttled", "message": "Too Many Requests"}}),
        (503, {"Retry-After": "2"}, {"error": {"code": "unavailable", "message": "later"}}),
        (200, {}, STATUS),
    ]
    slept: list[float] = []

    status = StatusClient(stub.url, sleep=slept.append).get(RID)

    assert status.request_id == RID
    assert len(stub.seen) == 3
    assert slept[1] == 2.0
    assert 0 <= slept[0] <= 4


def test_retries_stop_after_the_last_attempt(stub: Stub) -> None:
    stub.script += [(503, {}, {"error": {"code": "unavailable", "message": "later"}})] * 2

    with pytest.raises(StatusApiError) as raised:
        StatusClient(stub.url, max_attempts=2, sleep=lambda _: None).get(RID)

    assert raised.value.status == 503
    assert len(stub.seen) == 2


def test_redirects_are_not_followed(stub: Stub) -> None:
    stub.script.append((307, {"Location": "http://127.0.0.1:9/elsewhere"}, {}))

    with pytest.raises(StatusApiError) as raised:
        StatusClient(stub.url, sign=True, session=credentials()).get(RID)

    assert raised.value.status == 307
    assert len(stub.seen) == 1


def test_search_follows_next_until_the_last_page(stub: Stub) -> None:
    summary = {"request_id": RID, "status": "sent", "completed_at": "2026-11-01T10:00:00Z"}
    stub.script += [
        (200, {}, {"items": [summary, summary], "next": "c1"}),
        (200, {}, {"items": [summary], "next": None}),
    ]
    since = datetime(2026, 11, 1, tzinfo=UTC)

    found = list(StatusClient(stub.url).search("jane@example.com", since=since, page_size=2))

    assert len(found) == 3
    bodies = [json.loads(seen["body"]) for seen in stub.seen]
    assert bodies == [
        {"recipient": "jane@example.com", "limit": 2, "since": "2026-11-01T00:00:00+00:00"},
        {"recipient": "jane@example.com", "limit": 2, "since": "2026-11-01T00:00:00+00:00", "next": "c1"},
    ]
    assert all(seen["path"] == "/v1/messages/search" and seen["method"] == "POST" for seen in stub.seen)


def test_a_naive_since_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        StatusClient("http://127.0.0.1:9").search_page("jane@example.com", since=datetime(2026, 11, 1))


def test_an_answer_that_is_not_the_model_is_an_error(stub: Stub) -> None:
    stub.script.append((200, {}, {"unexpected": True}))

    with pytest.raises(StatusApiError, match="unexpected_answer"):
        StatusClient(stub.url).get(RID)


def test_an_unreachable_api_is_an_error_after_the_retries() -> None:
    with pytest.raises(StatusApiError) as raised:
        StatusClient("http://127.0.0.1:9", max_attempts=2, sleep=lambda _: None, timeout=2).get(RID)

    assert (raised.value.status, raised.value.code) == (0, "unreachable")
