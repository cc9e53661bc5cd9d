"""Queue helpers shared by the demo, the DLQ commands and `status`: peeking, depths, request ids of bodies."""

from __future__ import annotations

import hashlib
from typing import Any

from mailwright.request import parse_request

DEPTH_ATTRIBUTES = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


def body_request_id(body: str) -> str:
    """The request id the send worker logs a message body under (see `SendService._parse`)."""
    try:
        return parse_request(body).request_id
    except Exception:  # not a request: the worker keys it by the body's hash, so redeliveries collapse
        return hashlib.sha256(body.encode("utf-8", "replace")).hexdigest()[:32]


def peek_queue(sqs: Any, queue_url: str, *, limit: int = 10000) -> list[dict[str, Any]]:
    """Every message in a queue, without consuming it: received, then made visible again at once."""
    seen: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    while len(seen) < limit:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            seen.setdefault(message["MessageId"], message)
            handles.append(message["ReceiptHandle"])
    for start in range(0, len(handles), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for i, handle in enumerate(handles[start : start + 10])
            ],
        )
    return list(seen.values())


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Messages in a queue: visible, in flight and delayed."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=DEPTH_ATTRIBUTES)["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in DEPTH_ATTRIBUTES)


def queues_empty(sqs: Any, queue_urls: list[str], *, waiting_ok: list[str] | None = None) -> bool:
    """Whether every queue holds nothing, visible, in flight or delayed.

    Queues in `waiting_ok` may still hold in-flight messages (ones their consumer
    failed on purpose and left to come back later), just nothing visible.
    """
    for url in queue_urls:
        names = DEPTH_ATTRIBUTES
        if url in (waiting_ok or []):
            names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        if any(int(attributes.get(name, 0)) for name in names):
            return False
    return True
