"""Lambda event shapes built from real service responses, for running handlers outside Lambda."""

from __future__ import annotations

import time
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
