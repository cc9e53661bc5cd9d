"""The send worker's handler, in-process against moto: one test per outcome."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import pytest

from mailwright.request import parse_request
from mailwright.tokens import TokenSigner
from mailwright_tools.provision import StackResources, upload_templates
from tests.functional.harness import WorkerHarness, address_hasher, service_error

SEED_WELCOME = {
    "recipient_email": "john.doe@example.com",
    "template_id": "welcome_email",
    "template_data": {"user_name": "John", "login_link": "https://your-app.com/login"},
}
SEED_ORDER = {
    "recipient_email": "jane.smith@example.com",
    "template_id": "order_confirmation",
    "template_data": {"order_id": "XYZ789", "total_amount": "$49.99"},
}
NEWSLETTER_DATA = {
    "user_name": "Jane",
    "headline": "What is new in November",
    "articles": [{"title": "Faster sends", "url": "https://example.com/a", "summary": "Batches."}],
}
RESET_DATA = {"user_name": "Jane", "reset_link": "https://example.com/reset?t=1", "expires_in_minutes": 30}

Make = Callable[[str], WorkerHarness]


def newsletter(to: str = "jane@example.com", **extra: Any) -> dict[str, Any]:
    return {"recipient_email": to, "template_id": "newsletter", "template_data": NEWSLETTER_DATA, **extra}


def password_reset(to: str = "jane@example.com", **extra: Any) -> dict[str, Any]:
    return {"recipient_email": to, "template_id": "password_reset", "template_data": RESET_DATA, **extra}


def request_id(request: dict[str, Any]) -> str:
    return parse_request(json.dumps(request)).request_id


def suppress(stack: StackResources, address: str, reason: str, scope: str = "all") -> None:
    boto3.client("dynamodb").put_item(
        TableName=stack.suppression_table,
        Item={
            "address_hash": {
                "S": address_hasher(stack.address_key_secret_arn, stack.suppression_table).address_hash(address)
            },
            "reason": {"S": reason},
            "scope": {"S": scope},
        },
    )


def set_preferences(stack: StackResources, user_id: str, **attributes: dict[str, Any]) -> None:
    boto3.client("dynamodb").put_item(TableName=stack.preferences_table, Item={"user_id": {"S": user_id}, **attributes})


def test_seed_article_messages_are_sent_unchanged(worker: Make) -> None:
    # Given the two producer messages of the seed article, byte for byte
    w = worker("standard")
    w.publish(SEED_WELCOME, SEED_ORDER)

    # When the worker processes the batch
    response = w.run_batch()

    # Then both are sent, rendered from the templates, and logged as sent
    assert response["batchItemFailures"] == []
    by_recipient = {call.to[0]: call for call in w.ses_calls}
    assert set(by_recipient) == {"john.doe@example.com", "jane.smith@example.com"}
    welcome, order = by_recipient["john.doe@example.com"], by_recipient["jane.smith@example.com"]
    assert "John" in welcome.subject
    assert 'href="https://your-app.com/login"' in welcome.html
    assert "https://your-app.com/login" in welcome.text
    assert "XYZ789" in order.subject
    assert "$49.99" in order.html and "$49.99" in order.text
    for request in (SEED_WELCOME, SEED_ORDER):
        entry = w.logged(request_id(request))
        assert entry is not None and entry["status"] == "sent" and entry["ses_message_id"]


def test_sent_email_carries_configuration_set_sender_and_tags(worker: Make, stack: StackResources) -> None:
    w = worker("standard")
    w.publish({**SEED_ORDER, "metadata": {"tenant": "acme-1"}})
    w.run_batch()

    (call,) = w.ses_calls
    assert call.params["ConfigurationSetName"] == stack.configuration_set
    assert call.params["FromEmailAddress"].endswith("<no-reply@example.com>")
    assert call.tags == {
        "template": "order_confirmation",
        "category": "transactional",
        "request_id": request_id({**SEED_ORDER, "metadata": {"tenant": "acme-1"}}),
        "lane": "standard",
        "tenant": "acme-1",
    }
    # Transactional mail has no unsubscribe headers.
    assert "List-Unsubscribe" not in call.headers


def test_marketing_email_has_one_click_unsubscribe_with_a_signed_token(worker: Make, stack: StackResources) -> None:
    w = worker("bulk")
    w.publish(newsletter("jane@example.com"))
    w.run_batch()

    (call,) = w.ses_calls
    assert call.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = call.headers["List-Unsubscribe"]
    assert link.startswith("<https://example.com/unsubscribe?") and link.endswith(">")
    token = parse_qs(urlparse(link[1:-1]).query)["token"][0]
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=stack.unsubscribe_secret_arn)["SecretString"]
    claim = TokenSigner(secret.encode()).verify(token)
    assert claim.category == "marketing"
    hasher = address_hasher(stack.address_key_secret_arn, stack.suppression_table)
    assert claim.user_id == hasher.user_key(parse_request(json.dumps(newsletter())).recipient_email)
    # The body carries the same link, the preference center and the postal address (CAN-SPAM).
    assert token in call.html and token in call.text
    assert "Example Co., 1 Example Street" in call.html and "Example Co., 1 Example Street" in call.text


def test_suppressed_address_is_not_mailed(worker: Make, stack: StackResources) -> None:
    suppress(stack, "Bounced@Example.com", "BOUNCE")
    w = worker("standard")
    w.publish({**SEED_ORDER, "recipient_email": " bounced@example.com "})

    assert w.run_batch()["batchItemFailures"] == []

    assert w.ses_calls == []
    entry = w.logged(request_id({**SEED_ORDER, "recipient_email": "bounced@example.com"}))
    assert entry is not None
    assert entry["status"] == "suppressed" and "BOUNCE" in entry["reason"]
    assert entry["recipient_masked"] == "b***@example.com"
    assert "bounced@example.com" not in json.dumps(entry)


def test_complaint_suppression_still_lets_a_password_reset_through(worker: Make, stack: StackResources) -> None:
    suppress(stack, "jane@example.com", "COMPLAINT", scope="non_essential")
    bulk, critical = worker("bulk"), worker("critical")
    bulk.publish(newsletter("jane@example.com"))
    critical.publish(password_reset("jane@example.com"))

    bulk.run_batch()
    critical.run_batch()

    assert [c.tags["template"] for c in bulk.ses_calls + critical.ses_calls] == ["password_reset"]
    assert bulk.logged(request_id(newsletter()))["status"] == "suppressed"  # type: ignore[index]


def test_opted_out_user_gets_no_marketing_but_still_gets_transactional_mail(
    worker: Make, stack: StackResources
) -> None:
    set_preferences(stack, "user-42", unsubscribed_all={"BOOL": True})
    w = worker("standard")
    w.publish(newsletter(user_id="user-42"), {**SEED_ORDER, "user_id": "user-42"})

    w.run_batch()

    assert [c.tags["template"] for c in w.ses_calls] == ["order_confirmation"]
    entry = w.logged(request_id(newsletter(user_id="user-42")))
    assert entry is not None and entry["status"] == "opted_out"
    assert "unsubscribed" in entry["reason"]


def test_opted_out_category(worker: Make, stack: StackResources) -> None:
    set_preferences(stack, "user-7", opted_out={"SS": ["marketing"]})
    w = worker("bulk")
    w.publish(newsletter(user_id="user-7"))
    w.run_batch()
    assert w.ses_calls == []
    assert w.logged(request_id(newsletter(user_id="user-7")))["reason"] == "opted out of marketing"  # type: ignore[index]


def test_rate_limit_per_user_and_category(worker: Make) -> None:
    # cdk.json allows 2 marketing emails per user per day
    w = worker("bulk")
    requests = [newsletter("jane@example.com", idempotency_key=f"issue-{n}") for n in range(3)]
    w.publish(*requests)

    assert w.run_batch()["batchItemFailures"] == []

    statuses = sorted(w.logged(request_id(r))["status"] for r in requests)  # type: ignore[index]
    assert statuses == ["rate_limited", "sent", "sent"]
    assert len(w.ses_calls) == 2


def test_critical_mail_bypasses_rate_limits(worker: Make, config: Any) -> None:
    # Given a password reset template is critical: many in a row all go out
    w = worker("critical")
    requests = [password_reset(idempotency_key=f"reset-{n}") for n in range(4)]
    w.publish(*requests)
    w.run_batch()
    assert len(w.ses_calls) == 4


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("this is not json", "invalid_json"),
        (json.dumps(["a", "list"]), "invalid_request"),
        (json.dumps({"template_id": "welcome_email"}), "invalid_request"),
        (json.dumps({**SEED_ORDER, "recipient_email": "not-an-address"}), "invalid_address"),
        (json.dumps({**SEED_ORDER, "priority": "urgent"}), "invalid_request"),
        (json.dumps({**SEED_ORDER, "template_id": "no_such_template"}), "unknown_template"),
        (json.dumps({**SEED_ORDER, "template_data": {"order_id": "1"}}), "missing_variable"),
        (
            json.dumps({**SEED_ORDER, "template_data": {"order_id": "1\r\nBcc: x@evil.test", "total_amount": "1"}}),
            "header_injection",
        ),
        (json.dumps({**SEED_ORDER, "template_version": "no-such-version"}), "unknown_template"),
    ],
)
def test_invalid_requests_are_rejected_with_a_reason_and_never_retried(worker: Make, body: str, code: str) -> None:
    w = worker("standard")
    w.publish(body, SEED_WELCOME)

    response = w.run_batch()

    assert response["batchItemFailures"] == []  # rejected is final: not retried
    assert [c.to for c in w.ses_calls] == [["john.doe@example.com"]]  # the batch mate still goes out
    rejected = [e for e in w.all_logged() if e["status"] == "rejected"]
    assert len(rejected) == 1
    assert rejected[0]["reason_code"] == code
    assert rejected[0]["reason"]


def test_a_redelivered_message_is_not_sent_twice(worker: Make) -> None:
    w = worker("standard")
    w.publish(SEED_ORDER)
    w.run_batch()
    # The same request arrives again (producer retry or SQS at-least-once delivery)
    w.publish(SEED_ORDER, {**SEED_ORDER, "template_data": {"total_amount": "$49.99", "order_id": "XYZ789"}})

    response = w.run_batch()

    assert response["batchItemFailures"] == []
    assert len(w.ses_calls) == 1


def test_same_idempotency_key_in_one_batch_sends_once(worker: Make) -> None:
    w = worker("standard")
    w.publish({**SEED_ORDER, "idempotency_key": "order-XYZ789"}, {**SEED_ORDER, "idempotency_key": "order-XYZ789"})
    w.run_batch()
    assert len(w.ses_calls) == 1


def test_reused_idempotency_key_with_other_content_is_rejected(worker: Make) -> None:
    w = worker("standard")
    first = {**SEED_ORDER, "idempotency_key": "k-1"}
    w.publish(first)
    w.run_batch()
    w.publish({**SEED_WELCOME, "idempotency_key": "k-1"})
    w.run_batch()

    assert len(w.ses_calls) == 1
    assert w.logged(request_id(first))["status"] == "sent"  # type: ignore[index]
    assert [e["reason_code"] for e in w.all_logged() if e["status"] == "rejected"] == ["idempotency_conflict"]


def throttle_recipient(recipient: str) -> Any:
    """A fault answering SendEmail to `recipient` with SES throttling."""

    def fault(operation: str, params: dict[str, Any]) -> Any:
        body = params.get("body", b"")
        if operation == "sesv2.SendEmail" and recipient.encode() in (
            body if isinstance(body, bytes) else body.encode()
        ):
            return service_error("TooManyRequestsException", 429, "Maximum sending rate exceeded.")
        return None

    return fault


def test_ses_throttling_hands_that_record_back_as_a_new_delayed_message(worker: Make) -> None:
    w = worker("standard")
    throttled = {**SEED_ORDER, "recipient_email": "busy@example.com"}
    fault = throttle_recipient("busy@example.com")
    w.faults.append(fault)
    w.publish(throttled, SEED_WELCOME)

    response = w.run_batch()

    # Nothing is reported failed (a throttle is not the record's fault); its batch mate is sent and logged
    assert response["batchItemFailures"] == []
    assert w.logged(request_id(SEED_WELCOME))["status"] == "sent"  # type: ignore[index]
    assert w.logged(request_id(throttled)) is None
    # The throttled request is a new message, delayed: nothing is visible now, one is delayed
    attributes = w.sqs.get_queue_attributes(QueueUrl=w.queue_url, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesDelayed"]) == ("0", "1")

    # When SES recovers and the delay ends, the new message is sent (the claim was released)
    w.faults.remove(fault)
    time.sleep(3.1)
    retry = w.run_batch()
    assert retry["received"] == 1 and retry["batchItemFailures"] == []
    logged = w.logged(request_id(throttled))
    assert logged is not None and logged["status"] == "sent"
    # Its receive count started again: the deferral used none of the receives that lead to the DLQ
    assert logged["attempts"] == 1


def test_dynamodb_throttling_retries_the_batch_and_loses_nothing(worker: Make) -> None:
    w = worker("standard")
    w.publish(SEED_ORDER, SEED_WELCOME)

    def throttle_reads(operation: str, params: dict[str, Any]) -> Any:
        if operation == "dynamodb.BatchGetItem":
            return service_error("ProvisionedThroughputExceededException")
        return None

    w.faults.append(throttle_reads)
    first = w.run_batch()
    assert len(first["batchItemFailures"]) == 2
    assert w.ses_calls == []

    w.faults.remove(throttle_reads)
    w.end_backoff()
    second = w.run_batch()
    assert second["received"] == 2 and second["batchItemFailures"] == []
    assert len(w.ses_calls) == 2


def test_a_crashed_attempt_is_taken_over_after_its_lease(worker: Make, stack: StackResources) -> None:
    # Given a worker claimed the request and died before finishing (its lease has run out)
    request = parse_request(json.dumps(SEED_ORDER))
    boto3.client("dynamodb").put_item(
        TableName=stack.idempotency_table,
        Item={
            "pk": {"S": f"claim#{request.request_id}"},
            "content_hash": {"S": request.content_hash},
            "lease_id": {"S": "dead-worker"},
            "lease_until": {"N": str(int(time.time()) - 1)},
            "expires_at": {"N": str(int(time.time()) + 3600)},
        },
    )
    w = worker("standard")
    w.publish(SEED_ORDER)

    w.run_batch()

    assert len(w.ses_calls) == 1
    assert w.logged(request.request_id)["status"] == "sent"  # type: ignore[index]


def test_a_request_in_flight_elsewhere_is_retried_not_sent(worker: Make, stack: StackResources) -> None:
    request = parse_request(json.dumps(SEED_ORDER))
    boto3.client("dynamodb").put_item(
        TableName=stack.idempotency_table,
        Item={
            "pk": {"S": f"claim#{request.request_id}"},
            "content_hash": {"S": request.content_hash},
            "lease_id": {"S": "other-worker"},
            "lease_until": {"N": str(int(time.time()) + 600)},
            "expires_at": {"N": str(int(time.time()) + 3600)},
        },
    )
    w = worker("standard")
    w.publish(SEED_ORDER)

    response = w.run_batch()

    assert len(response["batchItemFailures"]) == 1
    assert w.ses_calls == []


def test_locale_falls_back_from_region_to_language(worker: Make) -> None:
    w = worker("standard")
    w.publish({**SEED_ORDER, "locale": "fr-CA"}, {**SEED_WELCOME, "locale": "de-DE"})
    w.run_batch()
    by_template = {c.tags["template"]: c for c in w.ses_calls}
    assert "commande" in by_template["order_confirmation"].subject.lower()
    assert w.logged(request_id({**SEED_ORDER, "locale": "fr-CA"}))["locale"] == "fr"  # type: ignore[index]
    assert w.logged(request_id({**SEED_WELCOME, "locale": "de-DE"}))["locale"] == "en"  # type: ignore[index]


def test_preferred_locale_applies_when_the_request_names_none(worker: Make, stack: StackResources) -> None:
    set_preferences(stack, "user-fr", locale={"S": "fr"})
    w = worker("standard")
    w.publish({**SEED_ORDER, "user_id": "user-fr"})
    w.run_batch()
    assert "commande" in w.ses_calls[0].subject.lower()


def test_template_version_pins_an_older_version(
    worker: Make, stack: StackResources, templates_dir: Any, tmp_path: Any
) -> None:
    s3 = boto3.client("s3")
    old_version = s3.head_object(Bucket=stack.templates_bucket, Key="templates/order_confirmation.json")["VersionId"]
    # Publish a new version of the template with another subject
    import shutil

    for name in ("order_confirmation", "_layouts", "_partials"):  # the template, and the layout it extends
        shutil.copytree(templates_dir / name, tmp_path / name)
    (tmp_path / "order_confirmation" / "en" / "subject.txt").write_text("Receipt {{ order_id }}\n", encoding="utf-8")
    upload_templates(s3, stack.templates_bucket, tmp_path)

    w = worker("standard")
    pinned = {**SEED_ORDER, "template_version": old_version}
    w.publish(SEED_ORDER, pinned)
    w.run_batch()

    subjects = {c.tags["request_id"]: c.subject for c in w.ses_calls}
    assert subjects[request_id(SEED_ORDER)] == "Receipt XYZ789"
    assert subjects[request_id(pinned)] != "Receipt XYZ789" and "XYZ789" in subjects[request_id(pinned)]
    assert w.logged(request_id(pinned))["template_version"] == old_version  # type: ignore[index]


def test_batch_reads_are_batched_per_table(worker: Make) -> None:
    w = worker("standard")
    # A container's first batch also reads the shared pacing state and SES's quota: warm it up first
    w.publish({**SEED_ORDER, "idempotency_key": "warm-up"})
    w.run_batch()
    w.api_calls.clear()
    w.publish(*[{**SEED_ORDER, "idempotency_key": f"o-{n}"} for n in range(10)])

    w.run_batch()
    calls = [c.removeprefix("dynamodb.") for c in w.api_calls if c.startswith("dynamodb.")]

    assert len(w.ses_calls) == 11
    assert calls.count("BatchGetItem") == 2  # suppression + preferences, once each for the batch
    assert calls.count("PutItem") == 10  # one conditional dedupe claim per email
    # Each outcome as soon as SES accepted the email, grouped with those accepted while a write was in flight
    assert 1 <= calls.count("BatchWriteItem") <= 10
    assert calls.count("UpdateItem") == 1  # the batch's tokens from the account's shared bucket
    assert len(calls) / 10 <= 2.5


@pytest.mark.parametrize("lane", ["critical", "standard", "bulk"])
def test_every_lane_takes_its_tokens_from_the_accounts_shared_bucket(
    worker: Make, stack: StackResources, lane: str
) -> None:
    w = worker(lane)
    w.publish(*[{**SEED_ORDER, "idempotency_key": f"p-{n}"} for n in range(3)])

    w.run_batch()

    # The first batch of a container reads the address-key marker, learns the shared pacing state (one
    # read), asks SES for the quota for every worker (a claim and a write) and takes its three tokens
    # with one more write.
    assert [c for c in w.api_calls if c in ("dynamodb.UpdateItem", "dynamodb.GetItem")] == [
        "dynamodb.GetItem",
        "dynamodb.GetItem",
        "dynamodb.UpdateItem",
        "dynamodb.UpdateItem",
        "dynamodb.UpdateItem",
    ]
    assert len(w.ses_calls) == 3
    item = boto3.client("dynamodb").get_item(TableName=stack.idempotency_table, Key={"pk": {"S": "pace#bucket"}})
    assert float(item["Item"]["tat"]["N"]) > 0
    assert float(item["Item"]["q_rate"]["N"]) == 1000.0
