"""Lambda event shapes built from real service responses, for running handlers outside Lambda."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def sqs_event(messages: list[dict[str, Any]], *, queue_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """The SQS event Lambda would deliver for messages returned by ReceiveMessage (AttributeNames=All)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {str(k): str(v) for k, v in m.get("Attributes", {}).items()},
                "messageAttributes": {
                    name: lambda_message_attribute(value) for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def lambda_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda's SQS event carries it (ReceiveMessage's shape, in camel case)."""
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": value.get("BinaryValue"),
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": list(value.get("BinaryListValues", [])),
        "dataType": value.get("DataType", "String"),
    }


def rabbitmq_event(
    messages: Sequence[tuple[bytes, Mapping[str, Any]]],
    *,
    queue: str,
    virtual_host: str = "/",
    broker_arn: str = "arn:aws:mq:us-east-1:123456789012:broker:local:b-00000000-0000-0000-0000-000000000000",
) -> dict[str, Any]:
    """The event an Amazon MQ for RabbitMQ mapping delivers for (body, AMQP properties) pairs of one queue.

    Properties use pika's names (`content_type`, `headers`, `correlation_id`,
    `message_id`, `timestamp` in epoch seconds, `redelivered`...); string
    headers become `{"bytes": [...]}` as Amazon MQ writes them.
    """
    return {
        "eventSource": "aws:rmq",
        "eventSourceArn": broker_arn,
        "rmqMessagesByQueue": {
            f"{queue}::{virtual_host}": [
                {
                    "basicProperties": _basic_properties(body, properties),
                    "redelivered": bool(properties.get("redelivered", False)),
                    "data": base64.b64encode(body).decode("ascii"),
                }
                for body, properties in messages
            ]
        },
    }


def _basic_properties(body: bytes, properties: Mapping[str, Any]) -> dict[str, Any]:
    headers = {
        str(name): {"bytes": list(value.encode("utf-8") if isinstance(value, str) else value)}
        if isinstance(value, (str, bytes))
        else value
        for name, value in (properties.get("headers") or {}).items()
    }
    stamp = properties.get("timestamp")
    return {
        "contentType": properties.get("content_type"),
        "contentEncoding": properties.get("content_encoding"),
        "headers": headers,
        "deliveryMode": properties.get("delivery_mode"),
        "priority": properties.get("priority"),
        "correlationId": properties.get("correlation_id"),
        "replyTo": properties.get("reply_to"),
        "expiration": properties.get("expiration"),
        "messageId": properties.get("message_id"),
        # Amazon MQ's own rendering of the AMQP timestamp.
        "timestamp": datetime.fromtimestamp(stamp, UTC).strftime("%b %-d, %Y, %-I:%M:%S %p") if stamp else None,
        "type": properties.get("type"),
        "userId": properties.get("user_id"),
        "appId": properties.get("app_id"),
        "clusterId": properties.get("cluster_id"),
        "bodySize": len(body),
    }


def kafka_event(
    records: Sequence[tuple[bytes | None, Mapping[str, bytes]]],
    *,
    topic: str = "mailwright-requests",
    partition: int = 0,
    first_offset: int = 0,
    self_managed: bool = False,
    timestamp_ms: int = 1_700_000_000_000,
) -> dict[str, Any]:
    """The event a Kafka mapping delivers for (value, headers) records of one partition (None: a tombstone)."""
    base = {"bootstrapServers": "b-1.example.kafka.us-east-1.amazonaws.com:9092"}
    if self_managed:
        source: dict[str, Any] = {"eventSource": "SelfManagedKafka", **base}
    else:
        arn = "arn:aws:kafka:us-east-1:123456789012:cluster/mailwright/00000000-0000-0000-0000-000000000000-1"
        source = {"eventSource": "aws:kafka", "eventSourceArn": arn, **base}
    items = []
    for offset, (value, headers) in enumerate(records, start=first_offset):
        item: dict[str, Any] = {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "timestamp": timestamp_ms + offset,
            "timestampType": "CREATE_TIME",
            "headers": [{name: list(data)} for name, data in headers.items()],
        }
        if value is not None:
            item["value"] = base64.b64encode(value).decode("ascii")
        items.append(item)
    return {**source, "records": {f"{topic}-{partition}": items}}


class FakeLambdaContext:
    """The parts of the Lambda context object that handlers read."""

    def __init__(self, function_name: str = "mailwright-worker", timeout_seconds: float = 30.0) -> None:

        self._deadline = time.monotonic() + timeout_seconds
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = "local"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the emulated timeout."""

        return max(0, int((self._deadline - time.monotonic()) * 1000))
