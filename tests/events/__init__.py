"""SES event fixtures (the JSON files beside this module) and helpers to aim them at a test's message."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent


def load_event(name: str) -> dict[str, Any]:
    """A fixture by file name, with or without `.json`: `load_event("event-bounce-permanent")`."""
    path = EVENTS_DIR / (name if name.endswith(".json") else f"{name}.json")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def event_names(prefix: str = "") -> list[str]:
    """Names of the fixtures starting with `prefix` (e.g. "event-", "notification-", "sns-")."""
    return sorted(p.stem for p in EVENTS_DIR.glob(f"{prefix}*.json"))


def aimed(
    event: Mapping[str, Any],
    *,
    ses_message_id: str | None = None,
    request_id: str | None = None,
    recipients: list[str] | None = None,
) -> dict[str, Any]:
    """A copy of an SES event about another message: its SES id, `request_id` tag and recipients replaced."""
    out = copy.deepcopy(dict(event))
    mail = out["mail"]
    if ses_message_id is not None:
        mail["messageId"] = ses_message_id
    if request_id is not None:
        mail.setdefault("tags", {})["request_id"] = [request_id]
    if recipients is not None:
        mail["destination"] = list(recipients)
        for key, field in (("bounce", "bouncedRecipients"), ("complaint", "complainedRecipients")):
            if key in out:
                template = out[key][field][0] if out[key][field] else {}
                out[key][field] = [{**template, "emailAddress": r} for r in recipients]
        if "delivery" in out:
            out["delivery"]["recipients"] = list(recipients)
        if "deliveryDelay" in out:
            template = out["deliveryDelay"]["delayedRecipients"][0]
            out["deliveryDelay"]["delayedRecipients"] = [{**template, "emailAddress": r} for r in recipients]
    return out


def sns_envelope(
    event: Mapping[str, Any], *, topic_arn: str = "arn:aws:sns:us-east-1:123456789012:feedback"
) -> dict[str, Any]:
    """The SNS notification SQS receives for `event` when raw message delivery is off."""
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic_arn,
        "Message": json.dumps(event),
        "Timestamp": "2017-08-05T00:41:03.012Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-example.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }
