"""The lane publisher's SQS adapter: SendMessageBatch, ten entries a call, refused entries retried."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from mailwright.adapters.sqs import PUBLISH_ATTEMPTS, SqsLanePublisher
from mailwright.ports import LaneMessage, RefusedMessage

QUEUES = {"critical": "https://sqs/critical", "standard": "https://sqs/standard", "bulk": "https://sqs/bulk"}


class StubSqs:
    """SendMessageBatch answering from a script: per call, the entry ids to fail (and how) or an exception."""

    def __init__(self, script: list[Any] | None = None) -> None:
        self.script = list(script or [])
        self.calls: list[tuple[str, list[str]]] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append((QueueUrl, [entry["MessageBody"] for entry in Entries]))
        step = self.script.pop(0) if self.script else {}
        if isinstance(step, Exception):
            raise step
        failed = [
            {"Id": entry["Id"], "Code": code, "Message": "refused", "SenderFault": sender}
            for entry in Entries
            if (found := step.get(entry["MessageBody"])) is not None
            for code, sender in [found]
        ]
        return {"Successful": [], "Failed": failed}


def messages(count: int, lane: str = "standard") -> list[LaneMessage]:
    return [LaneMessage(key=f"k{i}", lane=lane, body=f"body-{i}") for i in range(count)]


def publisher(stub: StubSqs) -> tuple[SqsLanePublisher, list[float]]:
    sleeps: list[float] = []
    return SqsLanePublisher(stub, QUEUES, sleep=sleeps.append), sleeps


def test_messages_go_to_their_lanes_ten_entries_a_call() -> None:
    stub = StubSqs()
    pub, _ = publisher(stub)

    refused = pub.publish([*messages(23), *messages(2, "critical")])

    assert refused == []
    assert [(url, len(bodies)) for url, bodies in stub.calls] == [
        (QUEUES["standard"], 10),
        (QUEUES["standard"], 10),
        (QUEUES["standard"], 3),
        (QUEUES["critical"], 2),
    ]


def test_entries_refused_by_sqs_are_sent_again_alone_until_accepted() -> None:
    stub = StubSqs([{"body-1": ("InternalError", False), "body-4": ("ThrottlingException", False)}, {}])
    pub, sleeps = publisher(stub)

    assert pub.publish(messages(5)) == []
    assert stub.calls[1] == (QUEUES["standard"], ["body-1", "body-4"])
    assert len(sleeps) == 1


def test_entries_still_refused_after_every_attempt_are_reported() -> None:
    refuse = {"body-0": ("InternalError", False)}
    stub = StubSqs([refuse] * PUBLISH_ATTEMPTS)
    pub, _ = publisher(stub)

    assert pub.publish(messages(2)) == [RefusedMessage("k0", "InternalError", "refused")]
    assert len(stub.calls) == PUBLISH_ATTEMPTS


def test_a_sender_fault_is_reported_at_once_not_retried() -> None:
    stub = StubSqs([{"body-0": ("InvalidMessageContents", True), "body-1": ("InternalError", False)}, {}])
    pub, _ = publisher(stub)

    refused = pub.publish(messages(2))

    assert refused == [RefusedMessage("k0", "InvalidMessageContents", "refused")]
    assert stub.calls[1][1] == ["body-1"]


@pytest.mark.parametrize(
    "error",
    [
        ClientError(
            {"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue", "Message": "gone"}}, "SendMessageBatch"
        ),
        EndpointConnectionError(endpoint_url="https://sqs"),
    ],
)
def test_a_failed_call_refuses_its_entries_and_is_retried(error: Exception) -> None:
    stub = StubSqs([error, {}])
    pub, _ = publisher(stub)

    assert pub.publish(messages(3)) == []
    assert len(stub.calls) == 2

    stub = StubSqs([error] * PUBLISH_ATTEMPTS)
    pub, _ = publisher(stub)
    refused = pub.publish(messages(1))
    assert [r.key for r in refused] == ["k0"]


def test_a_lane_without_a_queue_is_refused() -> None:
    pub = SqsLanePublisher(StubSqs(), {"standard": QUEUES["standard"]})

    assert pub.publish(messages(1, "bulk")) == [RefusedMessage("k0", "NoQueue", "no queue URL for the bulk lane")]
