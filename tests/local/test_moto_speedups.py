"""moto's SendMessage without the whole-queue scans: the same results for standard and FIFO queues."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mailwright_tools.local import moto_speedups


@pytest.fixture
def sqs() -> Iterator[Any]:
    moto_speedups.apply()
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def test_a_standard_queue_counts_what_was_sent_and_keeps_every_attribute(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="lane", Attributes={"VisibilityTimeout": "180"})["QueueUrl"]
    for start in range(0, 30, 10):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)]
        )
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=60)

    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    assert attributes["ApproximateNumberOfMessages"] == "30"
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert attributes["VisibilityTimeout"] == "180"
    assert "ContentBasedDeduplication" not in attributes


def test_a_fifo_queue_still_deduplicates_by_content(sqs: Any) -> None:
    url = sqs.create_queue(
        QueueName="lane.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]

    for _ in range(2):
        sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    sqs.send_message(QueueUrl=url, MessageBody="other", MessageGroupId="g")

    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "2"
