"""The feedback function's handler, in-process against moto: SES events arrive through SNS and SQS as deployed."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from infra.config import FeedbackResources, MailwrightConfig, feedback_environment
from mailwright.adapters.dynamodb import DynamoSuppressionStore
from mailwright.constants import Env
from mailwright.errors import ComplaintRemovalError, NotSuppressedError
from mailwright.handlers import feedback as feedback_handler
from mailwright.ports import HISTORY_CAP
from mailwright.request import parse_request
from mailwright.settings import FeedbackSettings
from mailwright.suppression import SuppressionService
from mailwright.wiring import build_feedback_service, build_suppression_service
from mailwright_tools.events import FakeLambdaContext, sqs_event
from mailwright_tools.fakes import queue_record
from mailwright_tools.provision import StackResources, provision_feedback
from tests.events import aimed, load_event
from tests.functional.harness import WorkerHarness, address_hasher
from tests.functional.test_send_worker import newsletter, password_reset

Make = Callable[[str], WorkerHarness]
DAY = 86400
# Any address in clear: what must never reach the suppression table or the logs.
PLAIN_ADDRESS = re.compile(r"[a-z0-9.+-]{1}[a-z0-9.+-]*(?<!\*)@[a-z0-9-]+\.[a-z]+", re.IGNORECASE)


@dataclass
class FeedbackHarness:
    """The feedback function wired to moto; SESv2 suppression-list calls (moto lacks them) are captured."""

    config: MailwrightConfig
    resources: StackResources
    monkeypatch: pytest.MonkeyPatch
    mirror: bool = False
    ses_list_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.session = boto3.session.Session()
        self.path = provision_feedback(self.config, self.resources, session=self.session)
        config = replace(self.config, mirror_ses_suppression_list=True) if self.mirror else self.config
        # The environment the deployed function gets, from the same function.
        env = feedback_environment(
            config=config,
            resources=FeedbackResources(
                suppression_table=self.resources.suppression_table,
                messages_table=self.resources.messages_table,
                address_key_secret_arn=self.resources.address_key_secret_arn,
            ),
        )
        for key, value in env.items():
            self.monkeypatch.setenv(key, value)
        self.session.events.register("before-call.sesv2", self._suppression_list)
        self.service = build_feedback_service(FeedbackSettings.from_env(), session=self.session)
        self.monkeypatch.setattr(feedback_handler, "service", lambda: self.service)
        self.sqs = boto3.client("sqs")
        self.sns = boto3.client("sns")
        self.dynamodb = boto3.client("dynamodb")

    def _suppression_list(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        """Answer the account-level suppression list calls moto does not implement, and remember them."""
        if model.name not in ("PutSuppressedDestination", "DeleteSuppressedDestination"):
            return None
        body = params.get("body") or b"{}"
        self.ses_list_calls.append((model.name, {**json.loads(body), "url_path": params.get("url_path", "")}))
        return AWSResponse("https://aws.invalid", 200, {}, None), {"ResponseMetadata": {"HTTPStatusCode": 200}}

    def publish(self, *events: dict[str, Any]) -> None:
        """Publish SES events to the feedback topic, as SES does."""
        for event in events:
            self.sns.publish(TopicArn=self.path.topic_arn, Message=json.dumps(event))

    def send_raw(self, *bodies: str) -> None:
        """Put bodies straight on the feedback queue (raw delivery, or junk)."""
        for body in bodies:
            self.sqs.send_message(QueueUrl=self.path.queue_url, MessageBody=body)

    def run_batch(self) -> dict[str, Any]:
        """Receive a batch as the event source mapping does, invoke the handler, delete what succeeded."""
        messages = self.sqs.receive_message(
            QueueUrl=self.path.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return {"batchItemFailures": [], "received": 0}
        arn = self.sqs.get_queue_attributes(QueueUrl=self.path.queue_url, AttributeNames=["QueueArn"])
        event = sqs_event(messages, queue_arn=arn["Attributes"]["QueueArn"])
        response: dict[str, Any] = feedback_handler.handler(event, FakeLambdaContext("mailwright-feedback"))
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] in failed:  # skip the visibility timeout: retry at once
                self.sqs.change_message_visibility(
                    QueueUrl=self.path.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                self.sqs.delete_message(QueueUrl=self.path.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return {**response, "received": len(messages)}

    def suppression(self, address: str) -> dict[str, Any] | None:
        """The suppression item of an address, as plain values."""
        item = self.dynamodb.get_item(
            TableName=self.resources.suppression_table,
            Key={
                "address_hash": {
                    "S": address_hasher(
                        self.resources.address_key_secret_arn, self.resources.suppression_table
                    ).address_hash(address)
                }
            },
        ).get("Item")
        return {k: next(iter(v.values())) for k, v in item.items()} if item else None

    def table_dump(self, table: str) -> str:
        return json.dumps(self.dynamodb.scan(TableName=table)["Items"])


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Everything the runtime logs, as the Lambda function's JSON lines (extras included).

    Powertools' own handler writes to the stdout it found at import, which pytest's
    capture cannot see; this one writes to a buffer.
    """
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(feedback_handler.logger.registered_formatter)
    root = logging.getLogger("mailwright")
    root.addHandler(handler)
    yield buffer
    root.removeHandler(handler)


@pytest.fixture
def feedback(config: MailwrightConfig, stack: StackResources, monkeypatch: pytest.MonkeyPatch) -> FeedbackHarness:
    return FeedbackHarness(config=config, resources=stack, monkeypatch=monkeypatch)


def sent(worker: WorkerHarness, request: dict[str, Any]) -> tuple[str, str]:
    """Send a request through the lane worker; its (request id, SES message id)."""
    worker.publish(request)
    assert worker.run_batch()["batchItemFailures"] == []
    request_id = parse_request(json.dumps(request)).request_id
    entry = worker.logged(request_id)
    assert entry is not None and entry["status"] == "sent"
    # The worker tags every message with its request id, so configuration-set events carry it.
    assert worker.ses_calls[-1].tags["request_id"] == request_id
    return request_id, entry["ses_message_id"]


def test_complaint_suppresses_newsletters_but_a_password_reset_still_goes_out(
    worker: Make, feedback: FeedbackHarness
) -> None:
    # Given Jane got a newsletter and marked it as spam
    request_id, ses_id = sent(worker("bulk"), newsletter("jane@example.com"))
    feedback.publish(
        aimed(
            load_event("event-complaint"), ses_message_id=ses_id, request_id=request_id, recipients=["jane@example.com"]
        )
    )

    # When the feedback function processes SES's complaint
    assert feedback.run_batch() == {"batchItemFailures": [], "received": 1}

    # Then Jane is suppressed for non-essential mail only
    item = feedback.suppression("jane@example.com")
    assert item is not None and (item["reason"], item["scope"]) == ("COMPLAINT", "non_essential")
    # ... a password reset still reaches her (one lane worker at a time: each harness is the handler's service)
    critical = worker("critical")
    critical.publish(password_reset("jane@example.com"))
    critical.run_batch()
    assert [c.tags["template"] for c in critical.ses_calls] == ["password_reset"]
    # ... while the next newsletter is suppressed
    bulk = worker("bulk")
    second_newsletter = newsletter("jane@example.com", idempotency_key="newsletter-2")
    bulk.publish(second_newsletter)
    bulk.run_batch()
    assert bulk.ses_calls == []
    second = bulk.logged(parse_request(json.dumps(second_newsletter)).request_id)
    assert second is not None and second["status"] == "suppressed" and "COMPLAINT" in second["reason"]
    # ... and the first newsletter's log shows the complaint, its terminal status untouched
    first = bulk.logged(request_id)
    assert first is not None and first["status"] == "sent" and first["delivery"] == "complained"
    assert [h["status"] for h in first["history"]] == ["sent", "complained"]


def test_permanent_bounce_suppresses_only_the_bounced_recipients(worker: Make, feedback: FeedbackHarness) -> None:
    # An identity notification: no tags, so the request is found through the SES message id index.
    request_id, ses_id = sent(worker("standard"), newsletter("jane@example.com"))
    feedback.publish(aimed(load_event("notification-bounce-dsn"), ses_message_id=ses_id))

    assert feedback.run_batch()["batchItemFailures"] == []

    assert feedback.suppression("jane@example.com")["reason"] == "BOUNCE"  # type: ignore[index]
    assert feedback.suppression("mary@example.com") is None
    assert feedback.suppression("richard@example.com") is None
    logged = worker("standard").logged(request_id)
    assert logged is not None and logged["delivery"] == "bounced"
    (event,) = logged["events"]
    assert event["type"] == "Bounce" and event["recipients"] == ["j***@example.com"]
    assert event["detail"]["diagnostic"] == "smtp; 550 5.1.1 <j***@example.com>... User"


def test_transient_bounces_suppress_at_the_threshold_and_expire(worker: Make, feedback: FeedbackHarness) -> None:
    request_id, ses_id = sent(worker("standard"), newsletter("jane@example.com"))

    def transient(n: int) -> dict[str, Any]:
        event = aimed(
            load_event("event-bounce-transient"),
            ses_message_id=ses_id,
            request_id=request_id,
            recipients=["jane@example.com"],
        )
        event["bounce"]["feedbackId"] = f"feedback-{n}"
        event["bounce"]["timestamp"] = f"2017-08-0{n}T00:41:02.669Z"
        return event

    feedback.publish(transient(1), transient(2))
    feedback.run_batch()
    assert feedback.suppression("jane@example.com") is None

    feedback.publish(transient(3))
    feedback.run_batch()

    item = feedback.suppression("jane@example.com")
    assert item is not None and (item["reason"], item["scope"]) == ("SOFT_BOUNCE", "all")
    assert abs(int(item["expires_at"]) - (time.time() + 14 * DAY)) < 60


def test_undetermined_bounce_is_recorded_not_suppressed(worker: Make, feedback: FeedbackHarness) -> None:
    request_id, ses_id = sent(worker("standard"), newsletter("jane@example.com"))
    feedback.publish(
        aimed(
            load_event("event-bounce-undetermined"),
            ses_message_id=ses_id,
            request_id=request_id,
            recipients=["jane@example.com"],
        )
    )

    feedback.run_batch()

    assert feedback.suppression("jane@example.com") is None
    logged = worker("standard").logged(request_id)
    assert logged is not None and logged["events"][0]["detail"]["bounce_type"] == "Undetermined"


def test_every_other_event_type_updates_the_message_log(worker: Make, feedback: FeedbackHarness) -> None:
    w = worker("standard")
    request_id, ses_id = sent(w, newsletter("jane@example.com"))
    names = [
        "event-send",
        "event-delivery",
        "event-open",
        "event-click",
        "event-delivery-delay",
        "event-reject",
        "event-rendering-failure",
        "event-subscription",
    ]
    feedback.publish(*(aimed(load_event(n), ses_message_id=ses_id, request_id=request_id) for n in names))
    # One more in the other format, found through the index, and one delivered raw (no SNS envelope).
    feedback.publish(aimed(load_event("notification-delivery"), ses_message_id=ses_id))
    feedback.send_raw(
        json.dumps(
            aimed(load_event("event-open"), ses_message_id=ses_id, request_id=request_id)
            | {"open": {"timestamp": "2017-08-09T22:05:00.000Z"}}
        )
    )

    while feedback.run_batch()["received"]:
        pass

    logged = w.logged(request_id)
    assert logged is not None and logged["status"] == "sent"
    # SES's Send event is not written: the worker's own `sent` entry already says it.
    statuses = sorted(h["status"] for h in logged["history"][1:])
    assert statuses == sorted(
        [
            "delivered",
            "opened",
            "clicked",
            "delayed",
            "rejected",
            "rendering_failed",
            "subscription_changed",
            "delivered",
            "opened",
        ]
    )
    assert len(logged["events"]) == 9
    assert "Send" not in {e["type"] for e in logged["events"]}
    # Reject and Rendering Failure share the highest rank reached; the later of the two wins.
    assert logged["delivery"] == "rendering_failed"
    assert feedback.suppression("recipient@example.com") is None


def test_a_redelivered_event_is_appended_once(worker: Make, feedback: FeedbackHarness) -> None:
    w = worker("standard")
    request_id, ses_id = sent(w, newsletter("jane@example.com"))
    delivery = aimed(load_event("event-delivery"), ses_message_id=ses_id, request_id=request_id)
    feedback.publish(delivery, delivery)

    feedback.run_batch()

    logged = w.logged(request_id)
    assert logged is not None and [h["status"] for h in logged["history"]] == ["sent", "delivered"]
    assert len(logged["events"]) == 1


def test_an_event_costs_one_dynamodb_write_and_a_send_event_none(worker: Make, feedback: FeedbackHarness) -> None:
    # Given a sent request, and a feedback service whose every DynamoDB call is counted
    w = worker("standard")
    request_id, ses_id = sent(w, newsletter("jane@example.com"))
    session = boto3.session.Session()
    calls: list[str] = []
    session.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    service = build_feedback_service(FeedbackSettings.from_env(), session=session)

    def apply(name: str, **aim: Any) -> list[str]:
        calls.clear()
        report = service.process([queue_record(json.dumps(aimed(load_event(name), **aim)), receive_count=1)])
        assert (report.processed, report.failed) == (1, [])
        return list(calls)

    # When SES reports the send (tagged, and untagged about a message nobody logged), then the delivery
    send_calls = apply("event-send", ses_message_id=ses_id, request_id=request_id)
    untagged_send_calls = apply("event-send", ses_message_id="not-logged-anywhere")
    delivery_calls = apply("event-delivery", ses_message_id=ses_id, request_id=request_id)

    # Then the Send events cost nothing (no lookup, no write, no deferral), the Delivery one UpdateItem
    assert (send_calls, untagged_send_calls, delivery_calls) == ([], [], ["UpdateItem"])
    logged = w.logged(request_id)
    assert logged is not None and logged["delivery"] == "delivered"
    (event,) = logged["events"]
    assert (event["type"], event["status"], event["recipients"]) == ("Delivery", "delivered", ["r***@example.com"])
    assert event["detail"]["smtp_response"].startswith("250")
    # ... and the request item is the only item its event added
    items = feedback.dynamodb.query(
        TableName=feedback.resources.messages_table,
        KeyConditionExpression="pk = :id",
        ExpressionAttributeValues={":id": {"S": request_id}},
    )["Items"]
    assert [item["sk"]["S"] for item in items] == ["request"]
    assert "delivery" not in items[0] and "ses_message_id" not in items[0]["history"]["L"][-1]["M"]
    assert [len(key["S"]) for key in items[0]["event_keys"]["L"]] == [16]


def test_unknown_event_types_are_ignored_and_counted(
    worker: Make, feedback: FeedbackHarness, capfd: pytest.CaptureFixture[str], logs: io.StringIO
) -> None:
    request_id, ses_id = sent(worker("standard"), newsletter("jane@example.com"))
    feedback.publish({"eventType": "Teleport", "mail": {"messageId": ses_id}})
    feedback.publish(aimed(load_event("event-delivery"), ses_message_id=ses_id, request_id=request_id))

    assert feedback.run_batch() == {"batchItemFailures": [], "received": 2}

    assert '"FeedbackIgnored":[1.0]' in capfd.readouterr().out
    (ignored,) = [json.loads(line) for line in logs.getvalue().splitlines() if "ignored" in line]
    assert ignored["kind"] == "unknown:Teleport" and ignored["level"] == "WARNING"


def test_a_malformed_message_fails_alone_and_ends_in_the_dlq(worker: Make, feedback: FeedbackHarness) -> None:
    request_id, ses_id = sent(worker("standard"), newsletter("jane@example.com"))
    feedback.send_raw("{not json")
    feedback.publish(aimed(load_event("event-delivery"), ses_message_id=ses_id, request_id=request_id))

    first = feedback.run_batch()

    assert first["received"] == 2 and len(first["batchItemFailures"]) == 1
    logged = worker("standard").logged(request_id)
    assert logged is not None and logged["delivery"] == "delivered"  # its batch mate went through
    # Redelivered until maxReceiveCount, then SQS moves it to the feedback DLQ: never lost.
    for _ in range(feedback.path.max_receive_count + 1):
        feedback.run_batch()
    in_dlq = feedback.sqs.receive_message(QueueUrl=feedback.path.dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in in_dlq] == ["{not json"]


def test_an_event_that_beats_the_send_worker_is_retried_until_the_request_is_logged(
    worker: Make, feedback: FeedbackHarness
) -> None:
    w = worker("standard")
    request = newsletter("jane@example.com")
    request_id = parse_request(json.dumps(request)).request_id
    # SES's Delivery event arrives before the worker recorded the request
    feedback.publish(aimed(load_event("event-delivery"), ses_message_id="ses-1", request_id=request_id))
    assert len(feedback.run_batch()["batchItemFailures"]) == 1

    w.publish(request)
    w.run_batch()
    assert feedback.run_batch()["batchItemFailures"] == []

    logged = w.logged(request_id)
    assert logged is not None and logged["status"] == "sent" and logged["delivery"] == "delivered"


KEYRING = "mailwright-test/address-keyring"


@pytest.fixture
def suppression_table() -> Iterator[str]:
    """Only a suppression table, keyed as deployed, and the address keyring (by name), in moto."""
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName="suppression",
            KeySchema=[{"AttributeName": "address_hash", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "address_hash", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        keyring = json.dumps({"current": "1", "1": "functional-test-address-key-0123456789"})
        boto3.client("secretsmanager").create_secret(Name=KEYRING, SecretString=keyring)
        yield "suppression"


def suppressions(table: str) -> SuppressionService:
    """The suppression service on the test table, as the CLI builds it."""
    return build_suppression_service(suppression_table=table, address_key_secret=KEYRING)


def test_manual_add_and_remove_are_audited_and_the_trail_survives(suppression_table: str) -> None:
    service = suppressions(suppression_table)
    service.add("Jane@Example.com", actor="alice@example.org", note="asked by phone")
    service.record_soft_bounce("bob@example.com", key="k", at=time.time(), actor="f", source="s")

    # The send worker reads it through its own adapter, unchanged.
    seen = DynamoSuppressionStore(boto3.client("dynamodb"), suppression_table).get_many(
        {address_hasher(KEYRING, suppression_table).address_hash("jane@example.com")}
    )
    assert seen[address_hasher(KEYRING, suppression_table).address_hash("jane@example.com")].reason == "MANUAL"
    # Audit trails and soft-bounce counters live in the same table but are not suppressions.
    assert [e.masked for e in service.list()] == ["j***@example.com"]

    service.remove("jane@example.com", actor="bob@example.org", note="consent renewed")

    assert service.check("jane@example.com") is None and service.list() == []
    assert [(r.action, r.actor, r.note) for r in service.history("jane@example.com")] == [
        ("add", "a***@example.org", "asked by phone"),
        ("remove", "b***@example.org", "consent renewed"),
    ]
    with pytest.raises(NotSuppressedError):
        service.remove("jane@example.com", actor="bob")


def test_removing_a_complaint_needs_force(suppression_table: str) -> None:
    service = suppressions(suppression_table)
    service.add("jane@example.com", reason="COMPLAINT", actor="ses-feedback")

    with pytest.raises(ComplaintRemovalError):
        service.remove("jane@example.com", actor="ops")
    service.remove("jane@example.com", actor="ops", force=True)

    assert service.history("jane@example.com")[-1].outcome == "removed_by_force"


def test_mirror_flag_puts_hard_bounces_on_the_ses_suppression_list(
    worker: Make, config: MailwrightConfig, stack: StackResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    feedback = FeedbackHarness(config=config, resources=stack, monkeypatch=monkeypatch, mirror=True)
    request_id, ses_id = sent(worker("standard"), newsletter("jane@example.com"))
    feedback.publish(
        aimed(
            load_event("event-bounce-permanent"),
            ses_message_id=ses_id,
            request_id=request_id,
            recipients=["Jane@Example.com"],
        ),
        aimed(
            load_event("event-complaint"), ses_message_id=ses_id, request_id=request_id, recipients=["mary@example.com"]
        ),
    )

    feedback.run_batch()

    # The complaint is not mirrored: SES's list would also stop Mary's password resets.
    assert feedback.ses_list_calls == [
        (
            "PutSuppressedDestination",
            {"EmailAddress": "jane@example.com", "Reason": "BOUNCE", "url_path": "/v2/email/suppression/addresses"},
        )
    ]

    # Removal (CLI, with the flag) takes the address off SES's list too.
    service = build_suppression_service(
        suppression_table=stack.suppression_table,
        address_key_secret=stack.address_key_secret_arn,
        session=feedback.session,
        mirror_to_ses=True,
    )
    service.remove("jane@example.com", actor="ops")
    assert feedback.ses_list_calls[-1][0] == "DeleteSuppressedDestination"
    assert feedback.ses_list_calls[-1][1]["url_path"].endswith("/jane%40example.com")
    assert Env.MIRROR_SES_SUPPRESSION in feedback_environment(
        config=config,
        resources=FeedbackResources(suppression_table="s", messages_table="m", address_key_secret_arn="k"),
    )


def test_no_plain_address_is_stored_or_logged(
    worker: Make, feedback: FeedbackHarness, stack: StackResources, capfd: pytest.CaptureFixture[str], logs: io.StringIO
) -> None:
    request_id, ses_id = sent(worker("standard"), newsletter("jane@example.com"))
    capfd.readouterr()  # only the feedback function's output counts here
    logs.truncate(0)
    events = [
        aimed(load_event(name), ses_message_id=ses_id, request_id=request_id)
        for name in (
            "event-bounce-some-recipients",
            "event-complaint",
            "event-bounce-transient",
            "event-delivery",
            "event-delivery-delay",
            "event-click",
        )
    ]
    feedback.publish(*events)
    feedback.send_raw("not json with jane@example.com inside")

    feedback.run_batch()

    suppression_table = feedback.table_dump(stack.suppression_table)
    assert "@example.com" in suppression_table  # masked forms are there...
    assert PLAIN_ADDRESS.findall(suppression_table) == []  # ...but no address in clear
    messages_table = feedback.table_dump(stack.messages_table)
    assert '"j***@example.com"' in messages_table  # the events' masked recipients, in the request's history...
    assert PLAIN_ADDRESS.findall(messages_table) == []  # ...and no address in clear
    output = capfd.readouterr()
    logged = logs.getvalue()
    assert "feedback applied" in logged and "malformed feedback message" in logged
    assert '"recipients":["j***@example.com","r***@example.com"]' in logged
    assert PLAIN_ADDRESS.findall(logged + output.out + output.err) == []


def test_a_suppression_written_by_hand_without_a_version_can_be_changed(suppression_table: str) -> None:
    # As older tools (and the send worker's tests) write it: key, reason and scope only.
    boto3.client("dynamodb").put_item(
        TableName=suppression_table,
        Item={
            "address_hash": {"S": address_hasher(KEYRING, suppression_table).address_hash("jane@example.com")},
            "reason": {"S": "SOFT_BOUNCE"},
            "scope": {"S": "all"},
        },
    )
    service = suppressions(suppression_table)

    entry = service.add("jane@example.com", reason="BOUNCE", actor="ops")

    assert entry.reason == "BOUNCE" and entry.version == 1
    service.remove("jane@example.com", actor="ops")
    assert service.check("jane@example.com") is None


def test_soft_bounce_marks_are_trimmed_to_the_newest(suppression_table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from mailwright.adapters import dynamodb

    monkeypatch.setattr(dynamodb, "SOFT_BOUNCE_KEEP", 3)
    ledger = dynamodb.DynamoSuppressionLedger(boto3.client("dynamodb"), suppression_table)
    for n in range(5):
        times = ledger.add_soft_bounce("h", key=f"k{n}", at=1000.0 + n, expires_at=2000)

    # Past the limit the oldest mark is dropped; the call that trims still reports all it saw.
    assert times == [1001.0, 1002.0, 1003.0, 1004.0]
    assert ledger.add_soft_bounce("h", key="k4", at=1004.0, expires_at=2000) == [1002.0, 1003.0, 1004.0]


def test_repeated_opens_stop_growing_the_history_at_its_cap(worker: Make, feedback: FeedbackHarness) -> None:
    # Given a sent newsletter opened many more times than the history keeps
    w = worker("standard")
    request_id, ses_id = sent(w, newsletter("jane@example.com"))
    for n in range(HISTORY_CAP + 4):
        event = aimed(load_event("event-open"), ses_message_id=ses_id, request_id=request_id)
        event["open"]["timestamp"] = f"2026-11-25T10:{n:02d}:00.000Z"
        feedback.publish(event)
    while feedback.run_batch()["received"]:
        pass

    # Then the history holds at most the cap (no batch item failed: the rest were counted, not kept) ...
    logged = w.logged(request_id)
    assert logged is not None and len(logged["history"]) == HISTORY_CAP
    assert [e["type"] for e in logged["events"]] == ["Open"] * (HISTORY_CAP - 1)

    # ... while an event that is not an engagement repeat is still recorded past it
    feedback.publish(aimed(load_event("event-bounce-permanent"), ses_message_id=ses_id, request_id=request_id))
    assert feedback.run_batch()["batchItemFailures"] == []
    logged = w.logged(request_id)
    assert logged is not None and logged["delivery"] == "bounced" and len(logged["history"]) == HISTORY_CAP + 1
