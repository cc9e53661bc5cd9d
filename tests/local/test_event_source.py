"""The emulated SQS event source mapping keeps Lambda's and SQS's semantics (moto's own mapping does not)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from mailwright.adapters.sqs import SqsDeferrals
from mailwright.constants import DEFERRALS_ATTRIBUTE, DEFERRED_REASON_ATTRIBUTE, PUBLISHED_AT_ATTRIBUTE
from mailwright.ports import Deferral
from mailwright_tools.local import lane_api, moto_speedups
from mailwright_tools.local.event_source import EventSourceEmulator, EventSourceSettings
from mailwright_tools.local.session import LocalSession
from tests.local.conftest import wait_until


@pytest.fixture(scope="module")
def sqs() -> Iterator[Any]:
    """An SQS client of a fresh moto server on a free loopback port."""
    moto_speedups.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")):  # noqa: S310
        pass
    try:
        yield LocalSession(endpoint).client("sqs")
    finally:
        server.stop()


def make_queue(sqs: Any, name: str, *, visibility: int = 1, max_receive_count: int = 3) -> tuple[str, str]:
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}),
        },
    )["QueueUrl"]
    return queue, dlq


class Recorder:
    """A handler that records its invocations and fails the records `fail` picks."""

    def __init__(self, fail: Any = None, raises: bool = False, answer: Any = None) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.cold_starts = 0
        self.fail = fail or (lambda record: False)
        self.raises = raises
        self.answer = answer
        self.lock = threading.Lock()

    def factory(self) -> Any:
        with self.lock:
            self.cold_starts += 1
        return self.handle

    def handle(self, event: dict[str, Any], context: Any) -> Any:
        assert context.get_remaining_time_in_millis() > 0
        with self.lock:
            self.batches.append(event["Records"])
        if self.raises:
            raise RuntimeError("the function crashed")
        if self.answer is not None:
            return self.answer
        failed = [r["messageId"] for r in event["Records"] if self.fail(r)]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}

    @property
    def records(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for batch in self.batches for r in batch]


def emulator(sqs: Any, queue: str, handler: Recorder, **settings: Any) -> EventSourceEmulator:
    values = {"batch_size": 10, "batching_window_seconds": 0, "max_concurrency": 2, "timeout_seconds": 30} | settings
    source = EventSourceEmulator(
        name="test", sqs=sqs, queue_url=queue, settings=EventSourceSettings(**values), handler_factory=handler.factory
    )
    source.start()
    return source


def depth(sqs: Any, queue: str) -> tuple[int, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names)["Attributes"]
    return int(attributes[names[0]]), int(attributes[names[1]])


def test_only_failed_records_come_back(sqs: Any) -> None:
    queue, _ = make_queue(sqs, "partial")
    handler = Recorder(
        fail=lambda record: record["body"] == "bad" and record["attributes"]["ApproximateReceiveCount"] == "1"
    )
    for body in ("good-1", "bad", "good-2"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)

    source = emulator(sqs, queue, handler)
    try:
        # The failed record is received again (its receive count up), the others never are
        wait_until(
            lambda: [
                r for r in handler.records if r["body"] == "bad" and r["attributes"]["ApproximateReceiveCount"] == "2"
            ]
        )
        wait_until(lambda: depth(sqs, queue) == (0, 0))
    finally:
        source.stop()
    bodies = [r["body"] for r in handler.records]
    assert sorted(bodies) == ["bad", "bad", "good-1", "good-2"]
    assert source.stats.deleted == 3 and source.stats.failed_records == 1
    assert handler.cold_starts <= 2


def test_a_record_that_keeps_failing_is_redriven_to_the_dlq(sqs: Any) -> None:
    queue, dlq = make_queue(sqs, "poison", max_receive_count=2)
    handler = Recorder(fail=lambda record: True)
    sqs.send_message(QueueUrl=queue, MessageBody="poison")

    source = emulator(sqs, queue, handler, max_concurrency=1)
    try:
        moved = wait_until(lambda: sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"]).get("Messages"))
    finally:
        source.stop()
    # Received maxReceiveCount times, then moved instead of received a third time, body intact
    assert [r["attributes"]["ApproximateReceiveCount"] for r in handler.records] == ["1", "2"]
    assert moved[0]["Body"] == "poison"
    assert depth(sqs, queue) == (0, 0)


@pytest.mark.parametrize(
    ("handler", "why"),
    [
        (Recorder(raises=True), "RuntimeError: the function crashed"),
        (Recorder(answer={"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}), "invalid partial batch"),
    ],
    ids=["handler-raises", "unknown-item-identifier"],
)
def test_a_failed_invocation_returns_the_whole_batch(sqs: Any, handler: Recorder, why: str) -> None:
    queue, _ = make_queue(sqs, f"whole-{len(why)}", visibility=30)
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)

    source = emulator(sqs, queue, handler, max_concurrency=1)
    try:
        wait_until(lambda: source.stats.failed_batches >= 1)
    finally:
        source.stop()
    assert depth(sqs, queue) == (0, 2)  # nothing deleted: both wait out their visibility timeout
    assert source.stats.deleted == 0
    assert any(why in error for error in source.stats.errors)


def test_batches_fill_up_to_the_batch_size_within_the_window(sqs: Any) -> None:
    queue, _ = make_queue(sqs, "window", visibility=30)
    for start in range(0, 25, 10):
        sqs.send_message_batch(
            QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, min(start + 10, 25))]
        )
    handler = Recorder()

    source = emulator(sqs, queue, handler, batch_size=25, batching_window_seconds=3, max_concurrency=1)
    try:
        wait_until(lambda: source.stats.deleted == 25)
    finally:
        source.stop()
    # SQS returns ten per receive; the mapping keeps receiving until the batch is full
    assert [len(batch) for batch in handler.batches] == [25]
    assert handler.cold_starts == 1


def test_a_deferred_record_comes_back_as_a_new_message_with_its_attributes_after_the_delay(sqs: Any) -> None:
    # Given a worker that hands its first record back with SqsDeferrals (as pacing does), 2 s later
    queue, dlq = make_queue(sqs, "deferred", max_receive_count=2)
    deferrals = SqsDeferrals(sqs, queue)
    published = 1_700_000_000.0

    def defer_first(record: dict[str, Any]) -> bool:
        if not record["messageAttributes"]:
            deferral = Deferral(record["messageId"], record["body"], 2, "paced", deferrals=1, published_at=published)
            assert deferrals.defer([deferral]) == set()
        return False  # handed back, not failed: the original is deleted

    handler = Recorder(fail=defer_first)
    sqs.send_message(QueueUrl=queue, MessageBody="later")
    source = emulator(sqs, queue, handler)
    try:
        wait_until(lambda: len(handler.records) == 2, timeout=15)
    finally:
        source.stop()
    first, second = handler.records
    # Then the new message came back no sooner than its delay, with its receive count starting again
    gap = int(second["attributes"]["SentTimestamp"]) - int(first["attributes"]["SentTimestamp"])
    assert gap >= 0
    assert (
        int(second["attributes"]["ApproximateFirstReceiveTimestamp"]) - int(second["attributes"]["SentTimestamp"])
        >= 1900
    )
    assert second["attributes"]["ApproximateReceiveCount"] == "1"
    # And the attributes arrive in Lambda's event shape, as the worker reads them
    attributes = second["messageAttributes"]
    assert attributes[DEFERRALS_ATTRIBUTE] == {
        "stringValue": "1",
        "binaryValue": None,
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "Number",
    }
    assert float(attributes[PUBLISHED_AT_ATTRIBUTE]["stringValue"]) == published
    assert attributes[DEFERRED_REASON_ATTRIBUTE]["stringValue"] == "paced"
    assert sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0).get("Messages", []) == []


# -- disabling and enabling, through the local Lambda API ----------------------

LambdaApi = tuple[Any, EventSourceEmulator, Recorder, str]


@pytest.fixture
def lambda_api(sqs: Any) -> Iterator[LambdaApi]:
    """One emulated mapping behind the local Lambda API; a Lambda client of it, the mapping, its handler, queue."""
    queue, _ = make_queue(sqs, "switched", visibility=30)
    handler = Recorder()
    source = emulator(sqs, queue, handler, max_concurrency=1)
    server, url = lane_api.start({"switched": source}, region="us-east-1")
    client = LocalSession(url).client("lambda")
    try:
        yield client, source, handler, queue
    finally:
        server.shutdown()
        server.server_close()
        source.stop()


def test_a_disabled_mapping_receives_nothing_until_enabled(lambda_api: LambdaApi, sqs: Any) -> None:
    client, source, handler, queue = lambda_api
    (mapping,) = client.list_event_source_mappings(FunctionName="test")["EventSourceMappings"]
    assert (mapping["UUID"], mapping["State"], mapping["BatchSize"]) == (source.uuid, "Enabled", 10)
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 1}

    # When the mapping is disabled, as UpdateEventSourceMapping does
    updated = client.update_event_source_mapping(UUID=source.uuid, Enabled=False)
    assert updated["State"] == "Disabled"
    sqs.send_message(QueueUrl=queue, MessageBody="waits")

    # Then the message waits in the queue, unreceived
    wait_until(lambda: depth(sqs, queue) == (1, 0), timeout=5)
    threading.Event().wait(1.5)  # longer than a disabled poller's pause and an idle poll
    assert handler.records == [] and depth(sqs, queue) == (1, 0)
    assert client.get_event_source_mapping(UUID=source.uuid)["State"] == "Disabled"

    # And once enabled again, it is processed
    assert client.update_event_source_mapping(UUID=source.uuid, Enabled=True)["State"] == "Enabled"
    wait_until(lambda: [r for r in handler.records if r["body"] == "waits"])
    wait_until(lambda: depth(sqs, queue) == (0, 0))


def test_the_local_lambda_api_answers_errors_as_lambda_does(lambda_api: LambdaApi) -> None:
    client, source, _, _ = lambda_api

    with pytest.raises(ClientError) as missing:
        client.update_event_source_mapping(UUID="00000000-0000-0000-0000-000000000000", Enabled=False)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as other_change:
        client.update_event_source_mapping(UUID=source.uuid, BatchSize=5)
    assert other_change.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert client.list_event_source_mappings(FunctionName="another")["EventSourceMappings"] == []
    arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    assert len(client.list_event_source_mappings(FunctionName=arn)["EventSourceMappings"]) == 1
    assert source.enabled
