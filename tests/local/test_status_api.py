"""The status API on the local stack: the SDK's client, plain HTTP, the CLI's status --recipient, and a
property-based run of schemathesis against the committed OpenAPI document."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from mailwright.sdk import MessageNotFoundError, Publisher, StatusClient
from mailwright_tools.local.api_server import LOCAL_CALLER_ARN
from mailwright_tools.local.stack import LocalStack
from tests.local.conftest import Cli, wait_until

OPENAPI = Path(__file__).resolve().parents[2] / "schemas" / "openapi.json"
NORA = "nora@example.com"
RESET_DATA = {"user_name": "Nora", "reset_link": "https://example.com/reset?t=1", "expires_in_minutes": 30}


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """A plain, unsigned HTTP call: the status and the JSON body."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def sent(local_stack: LocalStack) -> list[str]:
    """Four password resets to Nora, published with the SDK and processed by the stack; their request ids."""
    publisher = Publisher(queue_urls=local_stack.state["queues"], session=local_stack.session())
    requests = [
        {
            "recipient_email": NORA,
            "template_id": "password_reset",
            "priority": "critical",
            "template_data": RESET_DATA,
            "idempotency_key": f"nora-{n}",
        }
        for n in range(4)
    ]
    ids = publisher.send_batch(requests)
    client = StatusClient(local_stack.state["status_api_url"])

    def logged() -> bool:
        try:
            return all(client.get(request_id).status == "sent" for request_id in ids)
        except MessageNotFoundError:
            return False

    wait_until(logged, timeout=60)
    return ids


def test_local_json_names_the_status_api_on_loopback(local_stack: LocalStack) -> None:
    recorded = json.loads(local_stack.options.state.local_json.read_text())

    assert recorded["status_api_url"].startswith("http://127.0.0.1:")
    assert not recorded["status_api_url"].endswith("/")


def test_the_sdk_client_gets_a_request_unsigned_on_loopback(local_stack: LocalStack, sent: list[str]) -> None:
    client = StatusClient(local_stack.state["status_api_url"])

    status = client.get(sent[0])

    assert not client.sign
    assert (status.request_id, status.status, status.provider) == (sent[0], "sent", "ses")
    assert status.template_id == "password_reset"
    assert status.recipient_masked == "n***@example.com"
    with pytest.raises(MessageNotFoundError):
        client.get("0" * 32)


def test_the_sdk_client_pages_through_a_recipients_requests(local_stack: LocalStack, sent: list[str]) -> None:
    client = StatusClient(local_stack.state["status_api_url"])

    found = list(client.search(NORA.upper(), page_size=3))

    assert sorted(item.request_id for item in found) == sorted(sent)
    times = [item.completed_at for item in found]
    assert times == sorted(times, reverse=True)
    assert client.search_page(NORA, limit=3).next is not None


def test_plain_http_gets_200_404_and_400(local_stack: LocalStack, sent: list[str]) -> None:
    base = local_stack.state["status_api_url"]

    ok, body = http("GET", f"{base}/v1/messages/{sent[1]}")
    missing, not_found = http("GET", f"{base}/v1/messages/{'f' * 32}")
    bad, malformed = http("GET", f"{base}/v1/messages/not-a-request-id")
    searched, page = http("POST", f"{base}/v1/messages/search", {"recipient": NORA, "limit": 2})
    refused, bad_body = http("POST", f"{base}/v1/messages/search", {"recipient": NORA, "limit": "all"})

    assert (ok, body["request_id"]) == (200, sent[1])
    assert (missing, not_found["error"]["code"]) == (404, "not_found")
    assert (bad, malformed["error"]["code"]) == (400, "invalid_request_id")
    assert (searched, len(page["items"])) == (200, 2)
    assert page["next"]
    assert (refused, bad_body["error"]["code"]) == (400, "invalid_body")


def test_the_cli_lists_a_recipients_requests_with_the_same_code(cli: Cli, sent: list[str]) -> None:
    listed = cli("status", "--recipient", NORA, "--json")
    limited = cli("status", "--recipient", NORA, "--limit", "2")
    nothing = cli("status", "--recipient", "nobody@example.com")

    assert listed.exit_code == 0, listed.stderr
    assert sorted(item["request_id"] for item in listed.json()["requests"]) == sorted(sent)
    assert listed.json()["recipient_masked"] == "n***@example.com"
    assert NORA not in listed.stdout
    assert limited.exit_code == 0
    assert limited.stdout.count("password_reset") == 2
    assert "raise --limit" in limited.stdout
    assert nothing.exit_code == 1


def test_preferences_over_https_are_the_clis_audited_with_the_caller(local_stack: LocalStack, cli: Cli) -> None:
    url = f"{local_stack.state['status_api_url']}/v1/users/user-https/preferences"

    changed, state = http("PATCH", url, {"timezone": "Europe/Paris", "quiet_hours": "21:00-08:00"})
    bad, refused = http("PATCH", url, {"timezone": "Paris"})

    assert (changed, state["timezone"], state["quiet_hours"]) == (200, "Europe/Paris", "21:00-08:00")
    assert http("GET", url) == (200, state)
    assert (bad, refused["error"]["code"]) == (400, "invalid_preferences")
    [audit] = cli("preferences", "get", "user-https", "--json").json()["history"]
    assert (audit["actor"], audit["source"]) == (LOCAL_CALLER_ARN, "api")


def test_the_cli_refuses_bad_recipient_lookups(cli: Cli) -> None:
    assert cli("status", "--recipient", "not-an-address").exit_code == 2
    assert cli("status", "--recipient", NORA, "--since", "2026-11-01T00:00:00").exit_code == 2  # no time zone
    assert cli("status", "ab" * 16, "--recipient", NORA).exit_code == 2
    assert cli("status").exit_code == 2


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_local_api_keeps_to_its_openapi_document(local_stack: LocalStack, sent: list[str], mode: Any) -> None:
    # Not positive_data_acceptance: a `next` or an address can match the schema and still be refused
    # (a cursor the API never gave out, an address that is not deliverable), as documented.
    base = local_stack.state["status_api_url"]
    # The committed document, less its SigV4 requirement: the local API takes unsigned requests on
    # loopback (documented), so a request without an Authorization header is not invalid here.
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    schema = schemathesis.openapi.from_dict({**document, "security": []})

    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def exchange(case: Any) -> None:
            case.call_and_validate(base_url=base, checks=CHECKS)

        exchange()
