"""The unsubscribe endpoint against moto: the DynamoDB adapter, and the handler with the worker's real links."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from infra.config import unsubscribe_environment
from mailwright.adapters.dynamodb import DynamoPreferenceStore, DynamoPreferenceWriter
from mailwright.handlers import unsubscribe
from mailwright.handlers.unsubscribe import handle
from mailwright.settings import UnsubscribeSettings
from mailwright.tokens import TokenSigner
from mailwright.wiring import build_unsubscribe_service
from mailwright_tools.events import FakeLambdaContext
from mailwright_tools.provision import StackResources
from mailwright_tools.unsubscribe_server import function_url_event
from tests.functional.harness import WorkerHarness
from tests.functional.test_send_worker import newsletter, password_reset, request_id

Make = Callable[[str], WorkerHarness]


@pytest.fixture
def writer(stack: StackResources) -> DynamoPreferenceWriter:
    """The adapter on the provisioned preferences table."""
    return DynamoPreferenceWriter(boto3.client("dynamodb"), stack.preferences_table)


def item(stack: StackResources, user_id: str) -> dict[str, Any]:
    """The raw DynamoDB item of a user."""
    return dict(
        boto3.client("dynamodb").get_item(TableName=stack.preferences_table, Key={"user_id": {"S": user_id}})["Item"]
    )


def test_opt_out_keeps_other_attributes_and_accumulates(stack: StackResources, writer: DynamoPreferenceWriter) -> None:
    boto3.client("dynamodb").put_item(
        TableName=stack.preferences_table,
        Item={"user_id": {"S": "u1"}, "email": {"S": "jane@example.com"}, "locale": {"S": "fr"}},
    )

    writer.add_opt_out("u1", "product", source="one_click", updated_at=1.5)
    stored = writer.add_opt_out("u1", "marketing", source="one_click", updated_at=2.25)

    raw = item(stack, "u1")
    assert sorted(raw["opted_out"]["SS"]) == ["marketing", "product"]
    assert (raw["email"], raw["locale"]) == ({"S": "jane@example.com"}, {"S": "fr"})
    assert (raw["updated_at"], raw["source"]) == ({"N": "2.250"}, {"S": "one_click"})
    assert stored.opted_out == {"product", "marketing"} and stored.locale == "fr"


def test_opt_out_creates_the_item_of_a_new_user(stack: StackResources, writer: DynamoPreferenceWriter) -> None:
    writer.add_opt_out("new", "marketing", source="one_click", updated_at=1.0)

    assert item(stack, "new")["opted_out"] == {"SS": ["marketing"]}


def test_set_choices_removes_an_empty_opt_out_set(stack: StackResources, writer: DynamoPreferenceWriter) -> None:
    writer.set_choices(
        "u1", opted_out=frozenset({"marketing"}), unsubscribed_all=True, source="preference_center", updated_at=1.0
    )
    stored = writer.set_choices(
        "u1", opted_out=frozenset(), unsubscribed_all=False, source="preference_center", updated_at=2.0
    )

    raw = item(stack, "u1")
    assert "opted_out" not in raw  # DynamoDB has no empty sets
    assert raw["unsubscribed_all"] == {"BOOL": False}
    assert raw["source"] == {"S": "preference_center"}
    assert stored.opted_out == frozenset() and not stored.unsubscribed_all


def test_the_worker_reads_what_the_endpoint_writes(stack: StackResources, writer: DynamoPreferenceWriter) -> None:
    written = writer.set_choices(
        "u1", opted_out=frozenset({"product"}), unsubscribed_all=False, source="preference_center", updated_at=1.0
    )

    read = DynamoPreferenceStore(boto3.client("dynamodb"), stack.preferences_table).get_many({"u1"})["u1"]

    assert read == written


def test_one_click_on_the_workers_header_link_opts_out_for_the_next_send(worker: Make, stack: StackResources) -> None:
    # Given a newsletter sent by the bulk worker, with its List-Unsubscribe header
    bulk = worker("bulk")
    bulk.publish(newsletter("jane@example.com", user_id="user-7"))
    bulk.run_batch()
    link = bulk.ses_calls[0].headers["List-Unsubscribe"][1:-1]
    url = urlsplit(link)
    settings = UnsubscribeSettings(
        stack.preferences_table, stack.unsubscribe_secret_arn, stack.address_key_secret_arn, stack.suppression_table
    )
    service = build_unsubscribe_service(settings, session=boto3.session.Session())

    # When a mail client posts RFC 8058's one-click body to it
    answer = handle(
        service,
        function_url_event(
            "POST",
            f"{url.path}?{url.query}",
            body=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
    )

    # Then the user is opted out, the next newsletter is not sent, and a password reset still is
    assert answer["statusCode"] == 200
    assert item(stack, "user-7")["opted_out"] == {"SS": ["marketing"]}
    second = newsletter("jane@example.com", user_id="user-7", idempotency_key="issue-2")
    bulk.publish(second)
    bulk.run_batch()
    assert len(bulk.ses_calls) == 1
    assert bulk.logged(request_id(second))["status"] == "opted_out"  # type: ignore[index]
    critical = worker("critical")
    critical.publish(password_reset("jane@example.com", user_id="user-7"))
    critical.run_batch()
    assert [c.tags["template"] for c in critical.ses_calls] == ["password_reset"]


def test_lambda_entry_point_builds_its_service_from_the_environment(
    stack: StackResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the environment the stack gives the function (see infra/config.py)
    env = unsubscribe_environment(
        preferences_table=stack.preferences_table,
        unsubscribe_secret_arn=stack.unsubscribe_secret_arn,
        address_key_secret_arn=stack.address_key_secret_arn,
        suppression_table=stack.suppression_table,
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    unsubscribe.service.cache_clear()
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=stack.unsubscribe_secret_arn)["SecretString"]
    token = TokenSigner(secret.encode()).sign("user-9", "product")

    # When a request arrives through the decorated handler
    try:
        page = unsubscribe.handler(function_url_event("GET", f"/?token={token}"), FakeLambdaContext("unsubscribe"))
        answer = unsubscribe.handler(
            function_url_event(
                "POST",
                f"/?token={token}",
                body=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
            FakeLambdaContext("unsubscribe"),
        )
    finally:
        unsubscribe.service.cache_clear()

    # Then the secret from Secrets Manager verified the token, and the table changed only on POST
    assert page["statusCode"] == 200 and "Product updates" in page["body"]
    assert answer["statusCode"] == 200
    assert item(stack, "user-9")["opted_out"] == {"SS": ["product"]}
