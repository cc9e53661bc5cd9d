"""Dead-letter queues: look at what waits there, and send it back to its queue.

Redrive uses SQS's own message move task when the endpoint has it (AWS);
moto lacks StartMessageMoveTask, so for the local stack messages are
received, sent to the source queue with the same body and attributes, and
only then deleted from the DLQ: a crash in between duplicates a message
(which the workers' dedupe absorbs) but never loses one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from mailwright.addresses import mask_address
from mailwright_tools.queues import body_request_id, peek_queue, queue_depth

MOVE_TASK_UNSUPPORTED = frozenset(
    {"UnsupportedOperation", "InvalidAction", "NotImplemented", "AWS.SimpleQueueService.UnsupportedOperation"}
)


@dataclass(frozen=True)
class DlqMessage:
    """A message waiting in a DLQ, with what it says about its request."""

    message_id: str
    request_id: str
    template_id: str
    recipient: str
    receive_count: int
    sent_at: float | None
    body_preview: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (the recipient masked)."""
        return {
            "message_id": self.message_id,
            "request_id": self.request_id,
            "template_id": self.template_id,
            "recipient": self.recipient,
            "receive_count": self.receive_count,
            "sent_at": self.sent_at,
            "body_preview": self.body_preview,
        }


def describe(message: dict[str, Any]) -> DlqMessage:
    """What a DLQ message is about."""
    body = str(message.get("Body", ""))
    attributes = message.get("Attributes", {})
    template_id, recipient = "", ""
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            # An SNS envelope (feedback DLQ) carries the SES event as a string.
            inner = json.loads(parsed["Message"]) if isinstance(parsed.get("Message"), str) else parsed
            template_id = str(inner.get("template_id") or inner.get("eventType") or "")
            raw = inner.get("recipient_email") or (inner.get("mail", {}).get("destination") or [""])[0]
            recipient = mask_address(str(raw)) if raw else ""
    except (ValueError, TypeError, AttributeError):
        pass
    sent = attributes.get("SentTimestamp")
    return DlqMessage(
        message_id=str(message.get("MessageId", "")),
        request_id=body_request_id(body),
        template_id=template_id,
        recipient=recipient,
        receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
        sent_at=int(sent) / 1000 if sent else None,
        body_preview=body[:120],
    )


def list_messages(sqs: Any, queue_url: str, *, limit: int = 1000) -> list[DlqMessage]:
    """The messages in a DLQ (left in place)."""
    return [describe(message) for message in peek_queue(sqs, queue_url, limit=limit)]


@dataclass
class RedriveResult:
    """What a redrive moved, and how."""

    moved: int = 0
    failed: int = 0
    method: str = "receive-send-delete"
    task_handle: str = ""
    errors: list[str] = field(default_factory=list)


def redrive(sqs: Any, dlq_url: str, source_url: str, *, use_move_task: bool) -> RedriveResult:
    """Move every message of `dlq_url` back to `source_url`."""
    if use_move_task:
        from botocore.exceptions import ClientError

        arn = _arn(sqs, dlq_url)
        try:
            response = sqs.start_message_move_task(SourceArn=arn, DestinationArn=_arn(sqs, source_url))
            return RedriveResult(
                moved=queue_depth(sqs, dlq_url), method="message-move-task", task_handle=response["TaskHandle"]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in MOVE_TASK_UNSUPPORTED:
                raise
    return _redrive_by_hand(sqs, dlq_url, source_url)


def _arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _redrive_by_hand(sqs: Any, dlq_url: str, source_url: str, *, visibility: int = 60) -> RedriveResult:
    result = RedriveResult()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=visibility,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        entries = []
        for i, message in enumerate(messages):
            entry: dict[str, Any] = {"Id": str(i), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            entries.append(entry)
        response = sqs.send_message_batch(QueueUrl=source_url, Entries=entries)
        sent = {int(item["Id"]) for item in response.get("Successful", [])}
        for failure in response.get("Failed", []):
            result.errors.append(f"{failure.get('Code')}: {failure.get('Message', '')}")
        done = [messages[i] for i in sorted(sent)]
        if done:
            sqs.delete_message_batch(
                QueueUrl=dlq_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        result.moved += len(done)
        failed = len(messages) - len(done)
        result.failed += failed
        if failed:  # leave the rest for a later attempt rather than spinning on them
            break
    return result
