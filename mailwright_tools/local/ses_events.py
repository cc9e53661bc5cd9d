"""SES configuration-set events, as SES publishes them to SNS, for emails the local stack sends.

moto accepts SendEmail but publishes no events, so the local stack makes
them here (and publishes those the configuration set would, as
`event_tracking` chooses them): Send and Delivery for every email, and what the SES mailbox
simulator does for its addresses (`bounce@`, `complaint@`, `ooto@`,
`suppressionlist@`, `success@` at simulator.amazonses.com, each also with a
`+label`). The shapes follow the SES developer guide's "Examples of event
data that Amazon SES publishes to Amazon SNS"; `mail.tags` carries the
worker's message tags (`request_id`, `category`, ...) beside the `ses:` ones.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from mailwright.ports import OutboundEmail

SIMULATOR_DOMAIN = "simulator.amazonses.com"
# An event destination's event types (SESv2 names, as infra.config lists them) to the events' `eventType`.
EVENT_TYPE_NAMES: dict[str, str] = {
    "SEND": "Send",
    "DELIVERY": "Delivery",
    "BOUNCE": "Bounce",
    "COMPLAINT": "Complaint",
    "REJECT": "Reject",
    "OPEN": "Open",
    "CLICK": "Click",
    "DELIVERY_DELAY": "DeliveryDelay",
    "RENDERING_FAILURE": "Rendering Failure",
    "SUBSCRIPTION": "Subscription",
}
SIMULATOR_SCENARIOS = ("success", "bounce", "ooto", "complaint", "suppressionlist")
LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account
REPORTING_MTA = "a8-70.smtp-out.amazonses.com"


def simulator_scenario(address: str) -> str | None:
    """The mailbox simulator scenario of an address (`bounce+x@simulator.amazonses.com` -> `bounce`), or None."""
    local, _, domain = address.strip().lower().rpartition("@")
    if domain != SIMULATOR_DOMAIN:
        return None
    scenario = local.split("+", 1)[0]
    return scenario if scenario in SIMULATOR_SCENARIOS else None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(epoch * 1000) % 1000:03d}Z"


def _feedback_id(epoch: float) -> str:
    return f"{int(epoch * 1000):016x}-{uuid.uuid4()}-000000"


def mail_object(email: OutboundEmail, message_id: str, *, sent_at: float, identity: str, region: str) -> dict[str, Any]:
    """The `mail` object every event carries."""
    domain = email.from_address.rpartition("@")[2].rstrip(">")
    headers = [
        {"name": "From", "value": email.from_address},
        {"name": "To", "value": email.to_address},
        {"name": "Subject", "value": email.subject},
        {"name": "MIME-Version", "value": "1.0"},
        {"name": "Content-Type", "value": 'multipart/alternative; boundary="----=_Part_mailwright_local"'},
        *({"name": name, "value": value} for name, value in email.headers),
    ]
    tags: dict[str, list[str]] = {
        "ses:operation": ["SendEmail"],
        "ses:configuration-set": [email.configuration_set],
        "ses:source-ip": ["127.0.0.1"],
        "ses:from-domain": [domain],
        "ses:caller-identity": ["mailwright-local"],
    }
    for name, value in email.tags:
        tags[name] = [value]
    return {
        "timestamp": _iso(sent_at),
        "source": email.from_address,
        "sourceArn": f"arn:aws:ses:{region}:{LOCAL_ACCOUNT_ID}:identity/{identity}",
        "sendingAccountId": LOCAL_ACCOUNT_ID,
        "messageId": message_id,
        "destination": [email.to_address],
        "headersTruncated": False,
        "headers": headers,
        "commonHeaders": {
            "from": [email.from_address],
            "to": [email.to_address],
            "messageId": message_id,
            "subject": email.subject,
        },
        "tags": tags,
    }


def events_for(
    email: OutboundEmail,
    message_id: str,
    *,
    sent_at: float,
    identity: str,
    region: str = "us-east-1",
) -> list[dict[str, Any]]:
    """The events SES would publish for one accepted email, in the order it would publish them."""
    mail = mail_object(email, message_id, sent_at=sent_at, identity=identity, region=region)
    recipient = email.to_address
    scenario = simulator_scenario(recipient)
    later = sent_at + 0.25
    events: list[dict[str, Any]] = [{"eventType": "Send", "mail": mail, "send": {}}]
    delivery = {
        "eventType": "Delivery",
        "mail": mail,
        "delivery": {
            "timestamp": _iso(later),
            "processingTimeMillis": 250,
            "recipients": [recipient],
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": REPORTING_MTA,
        },
    }
    if scenario in ("bounce", "suppressionlist"):
        on_list = scenario == "suppressionlist"
        events.append(
            {
                "eventType": "Bounce",
                "mail": mail,
                "bounce": {
                    "bounceType": "Permanent",
                    "bounceSubType": "OnAccountSuppressionList" if on_list else "General",
                    "bouncedRecipients": [
                        {
                            "emailAddress": recipient,
                            "action": "failed",
                            "status": "5.1.1",
                            "diagnosticCode": "Amazon SES did not send the message to this address because it is on "
                            "the suppression list for your account."
                            if on_list
                            else "smtp; 550 5.1.1 user unknown",
                        }
                    ],
                    "timestamp": _iso(later),
                    "feedbackId": _feedback_id(later),
                    "reportingMTA": f"dns; {REPORTING_MTA}",
                },
            }
        )
    elif scenario == "complaint":
        events.append(delivery)
        events.append(
            {
                "eventType": "Complaint",
                "mail": mail,
                "complaint": {
                    "feedbackId": _feedback_id(later),
                    "complaintSubType": None,
                    "complainedRecipients": [{"emailAddress": recipient}],
                    "timestamp": _iso(later + 0.25),
                    "userAgent": "Amazon SES Mailbox Simulator",
                    "complaintFeedbackType": "abuse",
                    "arrivalDate": _iso(later),
                },
            }
        )
    else:  # ordinary addresses, success@ and ooto@ (whose auto-reply goes to the sender, not to events)
        events.append(delivery)
    return events
