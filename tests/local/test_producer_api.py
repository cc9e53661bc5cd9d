"""The producers' API on the local stack: POST /v1/messages with an x-api-key, keys refused (missing, wrong,
revoked, rotated out), usage plans' throttle and quota (429), the producer filter of the status API, and
`mailwright producers add|list|rotate|revoke` end to end, and a property-based run against the OpenAPI document."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from infra.config import ProducerPlanConfig, load_config
from mailwright.sdk import MessageNotFoundError, StatusClient
from mailwright_tools.local.stack import LocalStack, LocalStackOptions
from mailwright_tools.local.usage_plans import DEFAULT_CACHE_SECONDS as GATE_CACHE_SECONDS
from mailwright_tools.state import StateDir
from tests.local.conftest import REPO, TEST_SES_RATE, Cli, wait_until

OPENAPI = REPO / "schemas" / "openapi.json"
RESET = {
    "recipient_email": "olga@example.com",
    "template_id": "password_reset",
    "template_data": {"user_name": "Olga", "reset_link": "https://example.com/reset?t=2", "expires_in_minutes": 30},
}
# Producers besides `local`: one to issue and rotate keys for, one with a tiny quota, one with a tiny rate.
PRODUCERS = {
    "billing": ProducerPlanConfig(rate_limit=100.0, burst_limit=100, quota_per_day=None),
    "capped": ProducerPlanConfig(rate_limit=100.0, burst_limit=100, quota_per_day=3),
    "slow": ProducerPlanConfig(rate_limit=0.01, burst_limit=2, quota_per_day=None),
}


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The local stack with three declared producers (and the `local` one it always has)."""
    config = load_config(REPO / "cdk.json")
    config = dataclasses.replace(config, api=dataclasses.replace(config.api, producers=PRODUCERS))
    state = StateDir(tmp_path_factory.mktemp("state"))
    stack = LocalStack(LocalStackOptions(state=state, config=config, ses_rate=TEST_SES_RATE))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def call(method: str, url: str, body: Any = None, *, key: str | None = None) -> tuple[int, Any]:
    """An HTTP call with an optional x-api-key: the status and the JSON body."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **({"x-api-key": key} if key is not None else {})}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def submit(stack: LocalStack, body: Any, *, key: str | None) -> tuple[int, Any]:
    """POST /v1/messages on the producers' API."""
    return call("POST", f"{stack.state['api_url']}/v1/messages", body, key=key)


def issue(cli: Cli, producer: str) -> str:
    """A producer's only key: `mailwright producers revoke` (whatever it has), then `add --json`; its value."""
    cli("producers", "revoke", producer)
    added = cli("producers", "add", producer, "--json")
    assert added.exit_code == 0, added.stderr
    value: str = added.json()["value"]
    # The local gate reads keys again after its cache time, as API Gateway takes a moment to know a new key.
    time.sleep(GATE_CACHE_SECONDS + 0.2)
    return value


def test_local_json_names_the_producers_api_and_the_local_key(local_stack: LocalStack) -> None:
    recorded = json.loads(local_stack.options.state.local_json.read_text())

    assert recorded["api_url"].startswith("http://127.0.0.1:")
    assert recorded["api_url"] != recorded["status_api_url"]
    assert len(recorded["api_key"]) >= 20
    assert recorded["api_producer"] == "local"


def test_a_request_is_accepted_sent_and_recorded_with_its_producer(local_stack: LocalStack) -> None:
    key = local_stack.state["api_key"]

    status, accepted = submit(local_stack, RESET, key=key)

    assert status == 202, accepted
    ((item,), rejected, failed) = (accepted["accepted"], accepted["rejected"], accepted["failed"])
    assert (item["index"], item["lane"], rejected, failed) == (0, "critical", [], [])
    client = StatusClient(local_stack.state["status_api_url"])

    def sent() -> Any:
        try:
            found = client.get(item["request_id"])
        except MessageNotFoundError:
            return None
        return found if found.status == "sent" else None

    assert wait_until(sent, timeout=60).producer == "local"
    # The producer follows its own request on its API with its key.
    seen, own = call("GET", f"{local_stack.state['api_url']}/v1/messages/{item['request_id']}", key=key)
    assert (seen, own["request_id"], own["producer"]) == (200, item["request_id"], "local")


def test_a_producer_sees_only_its_own_requests(local_stack: LocalStack, cli: Cli) -> None:
    billing = issue(cli, "billing")
    status, body = submit(local_stack, {**RESET, "idempotency_key": "billing-1"}, key=billing)
    assert status == 202, body
    (item,) = body["accepted"]
    client = StatusClient(local_stack.state["status_api_url"])
    wait_until(lambda: _logged(client, item["request_id"]), timeout=60)

    mine, _ = call("GET", f"{local_stack.state['api_url']}/v1/messages/{item['request_id']}", key=billing)
    theirs, refused = call(
        "GET", f"{local_stack.state['api_url']}/v1/messages/{item['request_id']}", key=local_stack.state["api_key"]
    )
    searched, page = call(
        "POST",
        f"{local_stack.state['api_url']}/v1/messages/search",
        {"recipient": RESET["recipient_email"]},
        key=local_stack.state["api_key"],
    )

    assert mine == 200
    # Another producer's request does not exist for `local`; its search skips it.
    assert (theirs, refused["error"]["code"]) == (404, "not_found")
    assert searched == 200
    assert item["request_id"] not in [found["request_id"] for found in page["items"]]
    assert {found["producer"] for found in page["items"]} <= {"local"}


def _logged(client: StatusClient, request_id: str) -> bool:
    try:
        client.get(request_id)
    except MessageNotFoundError:
        return False
    return True


def test_a_batch_with_an_invalid_request_is_refused_whole_unless_partial(local_stack: LocalStack) -> None:
    key = local_stack.state["api_key"]
    bad = {**RESET, "recipient_email": "not-an-address"}

    refused_status, refused = submit(local_stack, {"requests": [RESET, bad]}, key=key)
    partial_status, partial = submit(local_stack, {"requests": [RESET, bad], "partial": True}, key=key)

    assert refused_status == 400
    (item,) = refused["error"]["items"]
    assert item["index"] == 1
    assert "recipient_email" in json.dumps(item)
    assert partial_status == 202
    assert [a["index"] for a in partial["accepted"]] == [0]
    assert [r["index"] for r in partial["rejected"]] == [1]


def test_missing_and_wrong_keys_get_403_before_the_function(local_stack: LocalStack) -> None:
    for key in (None, "", "not-a-key-anyone-issued"):
        status, body = submit(local_stack, RESET, key=key)
        assert (status, body["error"]["code"]) == (403, "invalid_api_key"), key
    # The IAM-authorized API takes no key; its POST is the route for AWS callers (unsigned on loopback).
    iam, accepted = call("POST", f"{local_stack.state['status_api_url']}/v1/messages", RESET)
    assert iam == 202, accepted


def test_a_revoked_key_gets_403(local_stack: LocalStack, cli: Cli) -> None:
    key = issue(cli, "billing")
    assert submit(local_stack, RESET, key=key)[0] == 202

    revoked = cli("producers", "revoke", "billing", "--json")

    assert revoked.exit_code == 0, revoked.stderr
    assert len(revoked.json()["revoked"]) == 1
    wait_until(lambda: submit(local_stack, RESET, key=key)[0] == 403, timeout=10)
    assert cli("producers", "revoke", "billing").exit_code == 1  # nothing left to revoke


def test_a_rotation_keeps_the_old_key_for_the_overlap_then_only_the_new_one(local_stack: LocalStack, cli: Cli) -> None:
    old = issue(cli, "billing")

    overlapping = cli("producers", "rotate", "billing", "--overlap-hours", "2", "--json")
    assert overlapping.exit_code == 0, overlapping.stderr
    new = overlapping.json()["value"]
    (retiring,) = overlapping.json()["retiring"]
    assert time.time() + 3600 < retiring["retires_at"] <= time.time() + 7200
    for key in (old, new):
        assert submit(local_stack, RESET, key=key)[0] == 202

    at_once = cli("producers", "rotate", "billing", "--overlap-hours", "0", "--json")
    assert at_once.exit_code == 0, at_once.stderr
    newest = at_once.json()["value"]
    wait_until(lambda: submit(local_stack, RESET, key=old)[0] == 403, timeout=10)
    wait_until(lambda: submit(local_stack, RESET, key=new)[0] == 403, timeout=10)
    assert submit(local_stack, RESET, key=newest)[0] == 202


def test_a_producer_over_its_quota_gets_429(local_stack: LocalStack, cli: Cli) -> None:
    key = issue(cli, "capped")
    url = f"{local_stack.state['api_url']}/v1/messages/{'0' * 32}"

    answers = [call("GET", url, key=key) for _ in range(4)]

    assert [status for status, _ in answers] == [404, 404, 404, 429]
    assert answers[-1][1]["error"]["code"] == "quota_exceeded"


def test_a_producer_over_its_rate_gets_429(local_stack: LocalStack, cli: Cli) -> None:
    key = issue(cli, "slow")
    url = f"{local_stack.state['api_url']}/v1/messages/{'0' * 32}"

    answers = [call("GET", url, key=key) for _ in range(3)]

    # A burst of 2, then the bucket refills at 0.01 a second.
    assert [status for status, _ in answers] == [404, 404, 429]
    assert answers[-1][1]["error"]["code"] == "throttled"


def test_the_cli_lists_producers_plans_and_keys_but_never_a_value(local_stack: LocalStack, cli: Cli) -> None:
    listed = cli("producers", "list", "--json")
    table = cli("producers", "list")

    assert listed.exit_code == 0, listed.stderr
    producers = {p["name"]: p for p in listed.json()["producers"]}
    assert set(producers) == {"local", "billing", "capped", "slow"}
    assert (producers["capped"]["quota_limit"], producers["capped"]["quota_period"]) == (3, "DAY")
    assert (producers["slow"]["rate_limit"], producers["slow"]["burst_limit"]) == (0.01, 2)
    assert len(producers["local"]["keys"]) == 1
    assert local_stack.state["api_key"] not in listed.stdout + table.stdout
    assert table.exit_code == 0
    assert "capped" in table.stdout


def test_the_cli_refuses_undeclared_producers_and_a_second_first_key(cli: Cli) -> None:
    undeclared = cli("producers", "add", "nobody")
    again = cli("producers", "add", "local")

    assert undeclared.exit_code == 2
    assert "not a declared producer" in undeclared.stderr
    assert again.exit_code == 2
    assert "rotate" in again.stderr


def test_the_producers_api_keeps_to_its_openapi_document_with_a_key(local_stack: LocalStack) -> None:
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    # Only the API-key scheme applies on this API.
    schema = schemathesis.openapi.from_dict({**document, "security": [{"api_key": []}]})
    headers = {"x-api-key": local_stack.state["api_key"]}

    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        def exchange(case: Any) -> None:
            case.call_and_validate(
                base_url=local_stack.state["api_url"],
                headers=headers,
                checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
            )

        exchange()
