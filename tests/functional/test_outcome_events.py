"""Outcome events through the real adapters on moto: the worker's and the feedback function's writes, the stream,
the publisher, EventBridge and a rule's SQS target; EmailFailed exactly once for a request whose worker crashed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from infra.config import MailwrightConfig
from mailwright.adapters.dynamodb import DynamoFeedbackLog
from mailwright.constants import LANES
from mailwright.event_settings import DeadLetterSettings, PublisherSettings
from mailwright.event_wiring import build_dead_letter_service, build_event_publisher
from mailwright.feedback import FeedbackService
from mailwright.handlers import dead_letters, events_publisher
from mailwright.outcome_events import DETAIL_TYPES
from mailwright.request import parse_request
from mailwright_tools.dlq import redrive
from mailwright_tools.events import sqs_event
from mailwright_tools.provision import StackResources
from mailwright_tools.provision_events import EventsPath, provision_events
from tests.functional.harness import WorkerHarness

REQUEST = {
    "recipient_email": "jane.doe@example.com",
    "template_id": "password_reset",
    "template_data": {"user_name": "Jane", "reset_link": "https://x.io/r", "expires_in_minutes": 30},
    "metadata": {"tenant": "acme"},
    "idempotency_key": "reset-1",
}


class Listener:
    """A rule with an SQS target on the bus, as a producer would subscribe."""

    def __init__(self, bus: str, pattern: dict[str, Any], name: str = "listener") -> None:
        self.sqs = boto3.client("sqs")
        events = boto3.client("events")
        self.queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])

    def events(self) -> list[dict[str, Any]]:
        """Every event received so far (consumed)."""
        found: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


class StreamPump:
    """Reads the message log's stream from where it left off and runs the publisher on it, as the mapping does."""

    def __init__(self, events_path: EventsPath) -> None:
        self.streams = boto3.client("dynamodbstreams")
        self.arn = events_path.stream_arn
        self.publisher = build_event_publisher(PublisherSettings.from_env(events_path.publisher_environment))
        shard = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]["ShardId"]
        self.iterator = self.streams.get_shard_iterator(
            StreamArn=self.arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        self.records = 0

    def pump(self) -> dict[str, Any]:
        """Publish what the stream holds now; the handler's response."""
        response = self.streams.get_records(ShardIterator=self.iterator, Limit=1000)
        self.iterator = response["NextShardIterator"]
        records = [
            r
            for r in response["Records"]
            if r["eventName"] != "REMOVE" and r["dynamodb"]["Keys"]["sk"] == {"S": "request"}
        ]
        self.records += len(records)
        result: dict[str, Any] = events_publisher.handle_batch(self.publisher, {"Records": records})
        return result


@pytest.fixture
def events_path(config: MailwrightConfig, stack: StackResources) -> EventsPath:
    return provision_events(config, stack, session=boto3.session.Session(), detail_types=DETAIL_TYPES)


@pytest.fixture
def listener(stack: StackResources, events_path: EventsPath) -> Listener:
    return Listener(stack.event_bus, {"source": ["mailwright"]})


@pytest.fixture
def pump(events_path: EventsPath) -> StreamPump:
    return StreamPump(events_path)


def by_type(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        found.setdefault(event["detail-type"], []).append(event)
    return found


def test_a_sent_request_and_its_ses_events_reach_a_rule_on_the_bus(
    worker: Callable[[str], WorkerHarness], stack: StackResources, listener: Listener, pump: StreamPump
) -> None:
    # Given a request the critical worker sends
    harness = worker("critical")
    harness.publish(REQUEST)
    harness.run_batch()
    request_id = parse_request(json.dumps(REQUEST)).request_id
    # When SES then reports a delivery and an open, which the feedback function appends to the request
    log = DynamoFeedbackLog(boto3.client("dynamodb"), stack.messages_table, ttl_days=1)
    ses_id = harness.logged(request_id)["ses_message_id"]  # type: ignore[index]
    ses_events = [
        {
            "eventType": event_type,
            "mail": {
                "messageId": ses_id,
                "timestamp": "2026-01-01T00:00:00.000Z",
                "tags": {"request_id": [request_id]},
            },
            key: {"timestamp": f"2026-01-01T00:00:0{second}.000Z", "recipients": ["jane.doe@example.com"]},
        }
        for event_type, key, second in (("Delivery", "delivery", 5), ("Open", "open", 9))
    ]
    feedback = FeedbackService(suppressions=_suppressions(), log=log)
    assert feedback.process_events(ses_events).processed == 2
    assert pump.pump() == {"batchItemFailures": []}
    # Then one event per new history entry, in order, each with the request's fields and no address
    received = listener.events()
    assert [e["detail-type"] for e in received] == ["EmailSent", "EmailDelivered", "EmailOpened"]
    for event in received:
        detail = event["detail"]
        assert event["source"] == "mailwright"
        assert detail["request_id"] == request_id
        assert detail["metadata"] == {"tenant": "acme"}
        assert (detail["lane"], detail["template_id"], detail["category"]) == ("critical", "password_reset", "security")
        assert detail["ses_message_id"] == ses_id
        assert "jane.doe@example.com" not in json.dumps(event)
    assert len({e["detail"]["event_id"] for e in received}) == 3


def test_a_rejected_request_evaluated_again_announces_both_evaluations(
    worker: Callable[[str], WorkerHarness], listener: Listener, pump: StreamPump, stack: StackResources
) -> None:
    harness = worker("standard")
    missing = {**REQUEST, "template_id": "not_uploaded_yet", "idempotency_key": "late-template"}
    harness.publish(missing)
    harness.run_batch()
    pump.pump()
    [rejected] = listener.events()
    assert (rejected["detail-type"], rejected["detail"]["evaluation"]) == ("EmailRejected", 1)
    assert rejected["detail"]["reason_code"] == "unknown_template"
    # The same request again (the template still missing): a second evaluation, a second event
    harness.publish(missing)
    harness.run_batch()
    pump.pump()
    [again] = listener.events()
    assert (again["detail-type"], again["detail"]["evaluation"]) == ("EmailRejected", 2)
    assert again["detail"]["event_id"] != rejected["detail"]["event_id"]


def test_pumping_the_same_writes_again_publishes_the_same_event_ids(
    worker: Callable[[str], WorkerHarness], events_path: EventsPath, listener: Listener, pump: StreamPump
) -> None:
    harness = worker("critical")
    harness.publish(REQUEST)
    harness.run_batch()
    pump.pump()
    first = [e["detail"]["event_id"] for e in listener.events()]
    # A retried stream batch (at least once): the event goes out again, with the same id
    again = StreamPump(events_path)
    again.pump()
    assert [e["detail"]["event_id"] for e in listener.events()] == first


def test_a_request_whose_worker_kept_crashing_is_failed_once_parked_and_redriven(
    worker: Callable[[str], WorkerHarness],
    config: MailwrightConfig,
    stack: StackResources,
    events_path: EventsPath,
    listener: Listener,
    pump: StreamPump,
) -> None:
    sqs = boto3.client("sqs")
    lane = "bulk"
    queue_url, dlq_url = stack.queues[lane], stack.dlqs[lane]
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(REQUEST))
    # Every invocation dies before answering (out of memory, a timeout): the mapping neither deletes the
    # message nor is told anything, so it comes back; SQS counts the receives and moves it to the DLQ.
    for _ in range(config.lanes[lane].max_receive_count + 1):
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            handle = message["ReceiptHandle"]
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    assert sqs.receive_message(QueueUrl=queue_url).get("Messages", []) == []
    service = build_dead_letter_service(DeadLetterSettings.from_env(events_path.dead_letter_environment))
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    [letter] = sqs.receive_message(QueueUrl=dlq_url, AttributeNames=["All"]).get("Messages", [])
    event = sqs_event([letter], queue_arn=dlq_arn)
    # The dead-letter function runs; then, as if its acknowledgement were lost, runs again on the same message
    assert dead_letters.handle_batch(service, _sqs(event)) == {"batchItemFailures": []}
    assert dead_letters.handle_batch(service, _sqs(event)) == {"batchItemFailures": []}
    sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=letter["ReceiptHandle"])
    pump.pump()
    failed = by_type(listener.events())
    request_id = parse_request(json.dumps(REQUEST)).request_id
    assert list(failed) == ["EmailFailed"] and len(failed["EmailFailed"]) == 1
    detail = failed["EmailFailed"][0]["detail"]
    assert (detail["request_id"], detail["lane"], detail["reason_code"]) == (request_id, lane, "dead_lettered")
    assert detail["metadata"] == {"tenant": "acme"} and detail["recipient_masked"] == "j***@example.com"
    # The message waits in the parked queue (twice: the second run parked it again), for redrive
    harness = worker(lane)
    assert harness.logged(request_id)["status"] == "failed"  # type: ignore[index]
    moved = redrive(sqs, events_path.parked[lane], queue_url, use_move_task=False)
    assert moved.moved == 2
    harness.run_batch()
    pump.pump()
    after = by_type(listener.events())
    # Redriven, it is sent once (the duplicate is absorbed) and announced as usual
    assert list(after) == ["EmailSent"] and len(after["EmailSent"]) == 1
    assert harness.logged(request_id)["status"] == "sent"  # type: ignore[index]


def test_a_second_arrival_in_a_dlq_is_a_second_email_failed(
    stack: StackResources, events_path: EventsPath, listener: Listener, pump: StreamPump
) -> None:
    sqs = boto3.client("sqs")
    service = build_dead_letter_service(DeadLetterSettings.from_env(events_path.dead_letter_environment))
    dlq_url = stack.dlqs["critical"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for _ in range(2):
        sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps(REQUEST))
        messages = sqs.receive_message(QueueUrl=dlq_url, AttributeNames=["All"])["Messages"]
        dead_letters.handle_batch(service, _sqs(sqs_event(messages, queue_arn=dlq_arn)))
    pump.pump()
    assert [e["detail-type"] for e in listener.events()] == ["EmailFailed", "EmailFailed"]


def test_a_metadata_rule_hears_only_its_producers_events(
    worker: Callable[[str], WorkerHarness], stack: StackResources, events_path: EventsPath, pump: StreamPump
) -> None:
    acme = Listener(stack.event_bus, {"source": ["mailwright"], "detail": {"metadata": {"tenant": ["acme"]}}}, "acme")
    harness = worker("standard")
    other = {**REQUEST, "metadata": {"tenant": "globex"}, "idempotency_key": "globex-1"}
    harness.publish(REQUEST, other)
    harness.run_batch()
    pump.pump()
    assert [e["detail"]["metadata"]["tenant"] for e in acme.events()] == ["acme"]


def test_only_configured_types_are_published(
    worker: Callable[[str], WorkerHarness], config: MailwrightConfig, stack: StackResources
) -> None:
    path = provision_events(config, stack, session=boto3.session.Session(), detail_types=("EmailRejected",))
    listener = Listener(stack.event_bus, {"source": ["mailwright"]}, "only-rejected")
    harness = worker("standard")
    harness.publish(REQUEST, {**REQUEST, "template_id": "nope", "idempotency_key": "nope"})
    harness.run_batch()
    StreamPump(path).pump()
    assert [e["detail-type"] for e in listener.events()] == ["EmailRejected"]
    assert set(LANES)  # the lanes are untouched by the setting


# -- helpers ---------------------------------------------------------------------------------------------------


def _sqs(event: dict[str, Any]) -> Any:
    from aws_lambda_powertools.utilities.data_classes import SQSEvent

    return SQSEvent(event)


def _suppressions() -> Any:
    from mailwright.suppression import SuppressionService
    from mailwright_tools.fakes import FakeSuppressionLedger, StaticAddressKeys

    return SuppressionService(FakeSuppressionLedger(), address_keys=StaticAddressKeys(), clock=time.time)
