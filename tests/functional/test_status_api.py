"""The API function's Lambda handler in-process against moto: requests logged by the real worker, found by id and by
recipient through the recipient index, under both address-key versions, a page at a time."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from infra.config import api_environment
from mailwright.constants import RECIPIENT_INDEX, Keys
from mailwright.handlers import api
from mailwright.request import parse_request
from mailwright_tools.events import FakeLambdaContext
from mailwright_tools.local.api_server import rest_api_event
from mailwright_tools.provision import StackResources
from tests.functional.harness import WorkerHarness, address_hasher

JANE = "jane@example.com"
RESET_DATA = {"user_name": "Jane", "reset_link": "https://example.com/reset?t=1", "expires_in_minutes": 30}
Make = Callable[[str], WorkerHarness]


def password_reset(n: int, to: str = JANE) -> dict[str, Any]:
    return {
        "recipient_email": to,
        "template_id": "password_reset",
        "template_data": RESET_DATA,
        "idempotency_key": f"reset-{to}-{n}",
    }


def request_id(request: dict[str, Any]) -> str:
    return parse_request(json.dumps(request)).request_id


@pytest.fixture
def call(stack: StackResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., tuple[int, Any]]]:
    """Invoke the deployed handler with a proxy event; its service is built from the function's environment."""
    for key, value in api_environment(
        messages_table=stack.messages_table,
        address_key_secret_arn=stack.address_key_secret_arn,
        suppression_table=stack.suppression_table,
    ).items():
        monkeypatch.setenv(key, value)
    api.service.cache_clear()

    def invoke(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        raw = json.dumps(body).encode() if body is not None else b""
        answer = api.handler(rest_api_event(method, path, body=raw), FakeLambdaContext())
        return int(answer["statusCode"]), json.loads(answer["body"])

    yield invoke
    api.service.cache_clear()


def search_all(call: Callable[..., tuple[int, Any]], body: dict[str, Any]) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        status, page = call("POST", "/v1/messages/search", {**body, **({"next": cursor} if cursor else {})})
        assert status == 200, page
        pages.append(page["items"])
        cursor = page["next"]
        if cursor is None:
            return pages
        assert len(pages) < 20


def rotate_address_key(stack: StackResources) -> None:
    """Add key version 2 and make it current, as the README's rotation does (older items keep version 1)."""
    client = boto3.client("secretsmanager")
    keyring = json.loads(client.get_secret_value(SecretId=stack.address_key_secret_arn)["SecretString"])
    keyring.update({"2": secrets.token_urlsafe(48), "current": "2"})
    client.put_secret_value(SecretId=stack.address_key_secret_arn, SecretString=json.dumps(keyring))


def test_a_request_is_found_by_id_with_its_history(worker: Make, call: Callable[..., tuple[int, Any]]) -> None:
    harness = worker("critical")
    harness.publish(password_reset(1))
    harness.run_batch()
    wanted = request_id(password_reset(1))

    status, body = call("GET", f"/v1/messages/{wanted}")

    assert status == 200
    assert (body["request_id"], body["status"], body["provider"]) == (wanted, "sent", "ses")
    assert body["provider_message_id"] == harness.logged(wanted)["ses_message_id"]  # type: ignore[index]
    assert body["recipient_masked"] == "j***@example.com"
    assert [entry["status"] for entry in body["history"]] == ["sent"]
    assert "jane@example.com" not in json.dumps(body)


def test_unknown_and_malformed_ids(call: Callable[..., tuple[int, Any]]) -> None:
    assert call("GET", f"/v1/messages/{'0' * 32}")[0] == 404
    status, body = call("GET", "/v1/messages/jane@example.com")
    assert (status, body["error"]["code"]) == (400, "invalid_request_id")


def test_search_finds_the_requests_of_both_key_versions_newest_first(
    worker: Make, call: Callable[..., tuple[int, Any]], stack: StackResources
) -> None:
    # Three requests logged under key version 1, then the key rotates and two more are logged under version 2.
    before = worker("critical")
    before.publish(*(password_reset(n) for n in range(3)), password_reset(9, to="john@example.com"))
    before.run_batch()
    rotate_address_key(stack)
    after = worker("critical")
    after.publish(*(password_reset(n) for n in range(3, 5)))
    after.run_batch()
    items = {item["pk"]: item for item in after.all_logged()}
    versions = {request_id(password_reset(n)): items[request_id(password_reset(n))]["recipient_hash"] for n in range(5)}
    hasher = address_hasher(stack.address_key_secret_arn, stack.suppression_table)
    assert {h.split("-")[0] for h in versions.values()} == {"k1", "k2"}
    assert set(versions.values()) == set(hasher.address_hashes(JANE))

    pages = search_all(call, {"recipient": JANE, "limit": 2})

    found = [item["request_id"] for page in pages for item in page]
    assert sorted(found) == sorted(versions)
    times = [item["completed_at"] for page in pages for item in page]
    assert times == sorted(times, reverse=True)
    assert [len(page) for page in pages[:2]] == [2, 2]


def test_search_pages_follow_the_index_and_since_cuts_off_older_requests(
    worker: Make, call: Callable[..., tuple[int, Any]]
) -> None:
    harness = worker("critical")
    for n in range(5):  # one batch each: five distinct completion times
        harness.publish(password_reset(n))
        harness.run_batch()
    logged = sorted(harness.all_logged(), key=lambda item: float(item["completed_at"]), reverse=True)

    pages = search_all(call, {"recipient": JANE, "limit": 2})
    cutoff = logged[2]["completed_at"]
    status, recent = call("POST", "/v1/messages/search", {"recipient": JANE, "since": _iso(float(cutoff) - 0.0005)})

    assert [[item["request_id"] for item in page] for page in pages] == [
        [logged[0]["pk"], logged[1]["pk"]],
        [logged[2]["pk"], logged[3]["pk"]],
        [logged[4]["pk"]],
    ]
    assert status == 200
    assert [item["request_id"] for item in recent["items"]] == [item["pk"] for item in logged[:3]]


def test_the_index_holds_request_items_only_keys_only(worker: Make, stack: StackResources) -> None:
    harness = worker("critical")
    harness.publish(password_reset(1))
    harness.run_batch()

    description = boto3.client("dynamodb").describe_table(TableName=stack.messages_table)["Table"]
    (index,) = [i for i in description["GlobalSecondaryIndexes"] if i["IndexName"] == RECIPIENT_INDEX]
    entries = boto3.client("dynamodb").scan(TableName=stack.messages_table, IndexName=RECIPIENT_INDEX)["Items"]

    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert [set(entry) for entry in entries] == [
        {Keys.MESSAGES_PK, Keys.MESSAGES_SK, Keys.RECIPIENT_HASH, Keys.COMPLETED_AT}
    ]


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat()
