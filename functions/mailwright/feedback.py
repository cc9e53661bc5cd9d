"""SES feedback: parse what SES publishes and act on it (suppress, and update the message log).

SES speaks two formats: configuration-set event publishing (`eventType`, ten
types, with the message's tags) and the older identity notifications
(`notificationType`: Bounce, Complaint, Delivery; no tags). Either arrives
wrapped in an SNS envelope whose `Message` is the event as a JSON string, or
raw when the subscription uses raw message delivery. Both, in both shapes,
are accepted here.

Per event:

| event                         | suppression                                           |
|-------------------------------|-------------------------------------------------------|
| Bounce, Permanent             | each address in `bouncedRecipients` (BOUNCE)          |
| Bounce, Transient             | counted per address; SOFT_BOUNCE at the threshold     |
| Bounce, Undetermined          | none (recorded only)                                  |
| Complaint                     | each complained address (COMPLAINT: essential passes) |
| everything else               | none                                                  |

and every event but Send is appended to its request's history in the message
log, found through the `request_id` tag or the SES message id: one UpdateItem
on the request item, carrying the event's status, time, rank, masked
recipients and details. The message log derives the request's `delivery`
state and its list of `events` from that history when read, so nothing else
is written. Send events are counted and nothing more: the send worker already
logged `sent` with the SES message id when SES accepted the message, and with
every event type published they would add a write for every email.

A malformed message is reported as a batch item failure, so it ends in the
feedback DLQ instead of vanishing; an unknown event type is logged, counted
and acknowledged (retrying would not help); neither affects its batch mates.

SES events and the secondary providers' (SendGrid, Mailgun: see
`mailwright.provider_feedback`) become the same normalised `FeedbackEvent`
before anything acts on them, so one policy serves both: the event types are
SES's, plus `Unsubscribe` (a provider's unsubscribe, which opts the user out
of the message's category; essential categories cannot be opted out of).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from mailwright.addresses import InvalidAddressError, mask_address, normalize_address, scrub_addresses
from mailwright.constants import ESSENTIAL_CATEGORIES, PROVIDER_SES
from mailwright.errors import FeedbackFormatError, TransientError
from mailwright.ports import (
    APPEND_NO_REQUEST,
    REASON_BOUNCE,
    REASON_COMPLAINT,
    FeedbackLog,
    FeedbackRecord,
    PreferenceWriter,
    RetryScheduler,
)
from mailwright.sending import QueueRecord, partial_batch_response
from mailwright.suppression import SuppressionService

logger = logging.getLogger(__name__)

FORMAT_EVENT = "event"  # configuration-set event publishing: `eventType`
FORMAT_NOTIFICATION = "notification"  # identity feedback notifications: `notificationType`

# Each SES event type and the key of the object that describes it.
DETAIL_KEYS: dict[str, str] = {
    "Send": "send",
    "Delivery": "delivery",
    "Bounce": "bounce",
    "Complaint": "complaint",
    "Reject": "reject",
    "Open": "open",
    "Click": "click",
    "DeliveryDelay": "deliveryDelay",
    "Rendering Failure": "failure",
    "Subscription": "subscription",
}
EVENT_TYPES: tuple[str, ...] = tuple(DETAIL_KEYS)
# The types the identity notifications carry.
NOTIFICATION_TYPES: frozenset[str] = frozenset({"Bounce", "Complaint", "Delivery"})
# Other spellings of the same types (EventBridge detail-types, hand-written replays).
_ALIASES = {"RenderingFailure": "Rendering Failure", "Rendering failure": "Rendering Failure"}
# Identity notifications that confirm a setup step rather than report on mail.
_SETUP_NOTIFICATIONS = frozenset({"AmazonSnsSubscriptionSucceeded"})
# The only SNS message type that carries an event; confirmations are not events.
_SNS_NOTIFICATION = "Notification"

BOUNCE_PERMANENT = "Permanent"
BOUNCE_TRANSIENT = "Transient"
BOUNCE_UNDETERMINED = "Undetermined"

# Normalised types that only the secondary providers report.
UNSUBSCRIBE = "Unsubscribe"
PROVIDER_ONLY_TYPES: tuple[str, ...] = (UNSUBSCRIBE,)
# Every normalised event type, SES's and the providers'.
NORMALISED_TYPES: tuple[str, ...] = EVENT_TYPES + PROVIDER_ONLY_TYPES

# The history status of each event type in the message log.
HISTORY_STATUS: dict[str, str] = {
    "Send": "sent",
    "Delivery": "delivered",
    "Bounce": "bounced",
    "Complaint": "complained",
    "Reject": "rejected",
    "Open": "opened",
    "Click": "clicked",
    "DeliveryDelay": "delayed",
    "Rendering Failure": "rendering_failed",
    "Subscription": "subscription_changed",
    UNSUBSCRIBE: "unsubscribed",
}
# Events arrive out of order (an Open before its Delivery): the message log reports as
# the request's `delivery` the status of its highest-ranked event, each history entry
# carrying its rank; `sent` (the send worker's own entry) is below them all.
# Subscription changes never move it.
DELIVERY_RANK: dict[str, int] = {
    "delayed": 1,
    "delivered": 2,
    "opened": 3,
    "clicked": 4,
    "rejected": 5,
    "rendering_failed": 5,
    "bounced": 6,
    "complained": 7,
}

# Event types that are counted but not written to the message log (see the module docstring).
UNLOGGED_TYPES: frozenset[str] = frozenset({"Send"})

ACTOR = "ses-feedback"
DETAIL_LIMIT = 300
DEFAULT_MATCH_ATTEMPTS = 3


@dataclass(frozen=True)
class FeedbackEvent:
    """One feedback event, normalised: what happened, to which message, about which addresses, said by whom.

    SES events and the secondary providers' alike: `provider` names who sent
    the message (`ses`, or a secondary's configured name) and `message_id` is
    that provider's id of it. `recipients` hold normalised addresses in memory
    only; nothing stores or logs them in clear (see `FeedbackRecord` for what
    the log keeps). `fingerprint` identifies the event itself, so that a
    redelivery is recognised.
    """

    event_type: str
    source_format: str
    message_id: str
    at: float
    recipients: tuple[str, ...]
    fingerprint: str
    request_id: str | None = None
    category: str | None = None
    lane: str | None = None
    bounce_type: str | None = None
    bounce_sub_type: str | None = None
    feedback_id: str | None = None
    detail: dict[str, str] = field(default_factory=dict)
    provider: str = PROVIDER_SES

    @property
    def status(self) -> str:
        """The history status this event appends (`delivered`, `bounced`...)."""
        return HISTORY_STATUS[self.event_type]

    @property
    def ses_message_id(self) -> str:
        """The provider's message id (the name it had when SES was the only provider)."""
        return self.message_id

    @property
    def actor(self) -> str:
        """Who the suppression audit trail names for changes this event makes."""
        return ACTOR if self.provider == PROVIDER_SES else f"{self.provider}-feedback"

    @property
    def described_message(self) -> str:
        """The message, for audit notes: `SES message <id>` or `<provider> message <id>`."""
        return f"{'SES' if self.provider == PROVIDER_SES else self.provider} message {self.message_id}"


# SES events were the only feedback events before the secondary providers.
SesEvent = FeedbackEvent


@dataclass(frozen=True)
class IgnoredMessage:
    """A well-formed message that is not an SES event this service acts on (unknown type, SNS confirmation)."""

    kind: str
    ses_message_id: str | None = None


@dataclass(frozen=True)
class FeedbackPolicy:
    """How hard to look for the request an event belongs to before recording it without one.

    The send worker records a request after SES accepted it (once per batch,
    so up to a paced batch's duration later), so its first events can arrive
    first; they come back after `defer_seconds` times their delivery count
    (when the service has a RetryScheduler, else after the queue's visibility
    timeout) until the `match_attempts`-th delivery. Keep it below the queue's
    maxReceiveCount.
    """

    match_attempts: int = DEFAULT_MATCH_ATTEMPTS
    defer_seconds: int = 10


@dataclass
class FeedbackReport:
    """What happened to a batch of feedback messages."""

    processed: int = 0
    suppressed: int = 0
    ignored: int = 0
    errors: int = 0
    deferred: int = 0
    unmatched: int = 0
    soft_bounces: int = 0
    # Provider unsubscribes applied to preferences.
    unsubscribed: int = 0
    failed: list[str] = field(default_factory=list)
    # The failed messages that only wait for their request to be logged.
    deferred_ids: list[str] = field(default_factory=list)
    by_type: Counter[str] = field(default_factory=Counter)
    # Recipients of hard bounces and of complaints, by the (lane, category) tags of their message:
    # what SES's reputation rates count. None where the message carried no tag.
    bounces: Counter[tuple[str | None, str | None]] = field(default_factory=Counter)
    complaints: Counter[tuple[str | None, str | None]] = field(default_factory=Counter)

    def partial_batch_response(self) -> dict[str, list[dict[str, str]]]:
        """The `batchItemFailures` response Lambda's SQS event source expects."""
        return partial_batch_response(self.failed)

    def count_reputation(self, event: FeedbackEvent) -> None:
        """Count an applied event's hard-bounced or complained recipients (at least one per event)."""
        recipients = max(1, len(event.recipients))
        if event.event_type == "Bounce" and event.bounce_type == BOUNCE_PERMANENT:
            self.bounces[(event.lane, event.category)] += recipients
        elif event.event_type == "Complaint":
            self.complaints[(event.lane, event.category)] += recipients


class _DeferredError(Exception):
    """The event's request is not in the message log yet: try the record again later."""


# -- parsing ------------------------------------------------------------------


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise FeedbackFormatError(f"{what} is not JSON") from None


def unwrap(payload: str | bytes | Mapping[str, Any]) -> Mapping[str, Any] | IgnoredMessage:
    """The SES event inside a payload: raw, an SNS envelope, or an SQS message holding either."""
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", "replace")
    data = _loads(payload, "message") if isinstance(payload, str) else payload
    for _ in range(3):  # SQS message -> SNS envelope -> SES event, at most
        if not isinstance(data, Mapping):
            raise FeedbackFormatError("message is not a JSON object")
        body = data.get("body", data.get("Body"))
        if isinstance(body, str) and "eventType" not in data and "notificationType" not in data:
            data = _loads(body, "SQS message body")
            continue
        if "Type" in data and "Message" in data and "TopicArn" in data:
            if data["Type"] != _SNS_NOTIFICATION:
                return IgnoredMessage(kind=f"sns:{data['Type']}")
            message = data["Message"]
            data = _loads(message, "SNS Message") if isinstance(message, str) else message
            continue
        return data
    raise FeedbackFormatError("message is nested too deeply")


def parse_message(payload: str | bytes | Mapping[str, Any]) -> FeedbackEvent | IgnoredMessage:
    """Parse one SES feedback message into a FeedbackEvent, or say why it is ignored; raise FeedbackFormatError."""
    data = unwrap(payload)
    if isinstance(data, IgnoredMessage):
        return data
    if "eventType" in data:
        raw_type, source_format = data["eventType"], FORMAT_EVENT
    elif "notificationType" in data:
        raw_type, source_format = data["notificationType"], FORMAT_NOTIFICATION
    else:
        raise FeedbackFormatError("neither eventType nor notificationType is present")
    if not isinstance(raw_type, str) or not raw_type:
        raise FeedbackFormatError("the event type is not a string")
    event_type = _ALIASES.get(raw_type, raw_type)
    if event_type in _SETUP_NOTIFICATIONS:
        return IgnoredMessage(kind=f"setup:{event_type}")
    mail = data.get("mail")
    message_id = mail.get("messageId") if isinstance(mail, Mapping) else None
    if event_type not in DETAIL_KEYS:
        return IgnoredMessage(kind=f"unknown:{scrub_addresses(event_type[:64])}", ses_message_id=_short(message_id))
    if not isinstance(mail, Mapping) or not isinstance(message_id, str) or not message_id:
        raise FeedbackFormatError(f"{event_type}: mail.messageId is missing")
    detail_object = data.get(DETAIL_KEYS[event_type])
    if detail_object is None and event_type in ("Bounce", "Complaint"):
        raise FeedbackFormatError(f"{event_type}: the {DETAIL_KEYS[event_type]} object is missing")
    if detail_object is not None and not isinstance(detail_object, Mapping):
        raise FeedbackFormatError(f"{event_type}: {DETAIL_KEYS[event_type]} is not an object")
    detail_object = detail_object or {}
    raw_tags = mail.get("tags")
    tags: Mapping[str, Any] = raw_tags if isinstance(raw_tags, Mapping) else {}
    fingerprint = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode("utf-8")).hexdigest()
    at = _epoch(detail_object.get("timestamp")) or _epoch(mail.get("timestamp"))
    if at is None:
        raise FeedbackFormatError(f"{event_type}: no timestamp")
    parsed = _TYPE_PARSERS.get(event_type, _parse_other)(detail_object, mail)
    return FeedbackEvent(
        event_type=event_type,
        source_format=source_format,
        message_id=message_id,
        at=at,
        fingerprint=fingerprint,
        request_id=_tag(tags, "request_id"),
        category=_tag(tags, "category"),
        lane=_tag(tags, "lane"),
        **parsed,
    )


def _short(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) else None


def _tag(tags: Mapping[str, Any], name: str) -> str | None:
    # Event publishing carries tags as {"name": ["value"]}.
    values = tags.get(name)
    if isinstance(values, list) and values and isinstance(values[0], str) and values[0]:
        return values[0]
    return values if isinstance(values, str) and values else None


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _addresses(values: Any, *, key: str | None = None) -> tuple[str, ...]:
    """Normalised addresses from a list of strings or of objects with `key`; bad entries are skipped."""
    found: list[str] = []
    for value in values if isinstance(values, list) else []:
        raw = value.get(key) if key and isinstance(value, Mapping) else value
        if not isinstance(raw, str):
            continue
        try:
            address = normalize_address(parseaddr(raw)[1] or raw)
        except InvalidAddressError:
            logger.warning("skipped a recipient that is not an address", extra={"recipient": scrub_addresses(raw)})
            continue
        if address not in found:
            found.append(address)
    return tuple(found)


def _text(value: Any) -> str | None:
    """A short, address-free string for the message log."""
    if value is None or isinstance(value, (dict, list)):
        return None
    return scrub_addresses(str(value))[:DETAIL_LIMIT] or None


def _details(**values: Any) -> dict[str, str]:
    return {name: text for name, value in values.items() if (text := _text(value)) is not None}


def _parse_bounce(obj: Mapping[str, Any], mail: Mapping[str, Any]) -> dict[str, Any]:
    recipients = obj.get("bouncedRecipients")
    if not isinstance(recipients, list):
        raise FeedbackFormatError("Bounce: bouncedRecipients is not a list")
    bounce_type = obj.get("bounceType") if isinstance(obj.get("bounceType"), str) else BOUNCE_UNDETERMINED
    first = recipients[0] if recipients and isinstance(recipients[0], Mapping) else {}
    return {
        "recipients": _addresses(recipients, key="emailAddress"),
        "bounce_type": bounce_type,
        "bounce_sub_type": _text(obj.get("bounceSubType")),
        "feedback_id": _text(obj.get("feedbackId")),
        "detail": _details(
            bounce_type=bounce_type,
            bounce_sub_type=obj.get("bounceSubType"),
            status=first.get("status"),
            diagnostic=first.get("diagnosticCode"),
        ),
    }


def _parse_complaint(obj: Mapping[str, Any], mail: Mapping[str, Any]) -> dict[str, Any]:
    recipients = obj.get("complainedRecipients")
    if not isinstance(recipients, list):
        raise FeedbackFormatError("Complaint: complainedRecipients is not a list")
    return {
        "recipients": _addresses(recipients, key="emailAddress"),
        "feedback_id": _text(obj.get("feedbackId")),
        "detail": _details(
            feedback_type=obj.get("complaintFeedbackType"),
            complaint_sub_type=obj.get("complaintSubType"),
        ),
    }


def _parse_delivery(obj: Mapping[str, Any], mail: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "recipients": _addresses(obj.get("recipients")) or _addresses(mail.get("destination")),
        "detail": _details(smtp_response=obj.get("smtpResponse"), processing_ms=obj.get("processingTimeMillis")),
    }


def _parse_delay(obj: Mapping[str, Any], mail: Mapping[str, Any]) -> dict[str, Any]:
    delayed = obj.get("delayedRecipients")
    first = delayed[0] if isinstance(delayed, list) and delayed and isinstance(delayed[0], Mapping) else {}
    return {
        "recipients": _addresses(delayed, key="emailAddress") or _addresses(mail.get("destination")),
        "detail": _details(
            delay_type=obj.get("delayType"),
            expiration_time=obj.get("expirationTime"),
            status=first.get("status"),
            diagnostic=first.get("diagnosticCode"),
        ),
    }


def _parse_click(obj: Mapping[str, Any], mail: Mapping[str, Any]) -> dict[str, Any]:
    link = obj.get("link")
    # Query strings carry tokens and sometimes the address itself: keep where the link went, not its parameters.
    where = None
    if isinstance(link, str):
        parts = urlsplit(link)
        where = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else None
    return {"recipients": _addresses(mail.get("destination")), "detail": _details(link=where)}


def _parse_other(obj: Mapping[str, Any], mail: Mapping[str, Any]) -> dict[str, Any]:
    new = obj.get("newTopicPreferences")
    return {
        "recipients": _addresses(mail.get("destination")),
        "detail": _details(
            reason=obj.get("reason"),
            error=obj.get("errorMessage"),
            template=obj.get("templateName"),
            contact_list=obj.get("contactList"),
            source=obj.get("source") if "contactList" in obj else None,
            unsubscribe_all=new.get("unsubscribeAll") if isinstance(new, Mapping) else None,
        ),
    }


_TYPE_PARSERS = {
    "Bounce": _parse_bounce,
    "Complaint": _parse_complaint,
    "Delivery": _parse_delivery,
    "DeliveryDelay": _parse_delay,
    "Click": _parse_click,
}


# -- the service --------------------------------------------------------------


class FeedbackService:
    """Applies feedback events (SES's and the secondary providers'): the suppression policy, then the message log.

    With `preferences` and `requests` (the message log's `get`), a provider's
    unsubscribe opts the request's user out of its category.
    """

    def __init__(
        self,
        *,
        suppressions: SuppressionService,
        log: FeedbackLog,
        policy: FeedbackPolicy | None = None,
        retries: RetryScheduler | None = None,
        preferences: PreferenceWriter | None = None,
        requests: Callable[[str], Mapping[str, Any] | None] | None = None,
    ) -> None:
        self.suppressions = suppressions
        self._log = log
        self.policy = policy or FeedbackPolicy()
        self._retries = retries
        self._preferences = preferences
        self._requests = requests

    def process(self, records: Sequence[QueueRecord]) -> FeedbackReport:
        """Process one batch from the feedback queue; a record's fault fails only that record."""
        report = FeedbackReport()
        for record in records:
            final = record.receive_count >= self.policy.match_attempts
            self._handle(record.message_id, record.body, final=final, report=report)
        self._delay_deferred(records, report)
        return report

    def _delay_deferred(self, records: Sequence[QueueRecord], report: FeedbackReport) -> None:
        """Bring deferred events back in seconds rather than after the whole visibility timeout."""
        if self._retries is None or not report.deferred_ids:
            return
        deferred = set(report.deferred_ids)
        delays = [
            (r.receipt_handle, self.policy.defer_seconds * max(1, r.receive_count))
            for r in records
            if r.message_id in deferred
        ]
        try:
            self._retries.delay(delays)
        except Exception:
            # Not fatal: the messages come back after the queue's visibility timeout anyway.
            logger.exception("could not delay deferred feedback", extra={"count": len(delays)})

    def process_events(self, events: Iterable[Any]) -> FeedbackReport:
        """Apply events given directly (a replay): SES events or SNS envelopes, as dicts or JSON strings.

        Failures are named `event-<index>` in `failed`. Nothing waits for the send
        worker: an event whose request is not logged is recorded by its SES message id.
        """
        report = FeedbackReport()
        for index, event in enumerate(events):
            if not isinstance(event, (str, bytes, Mapping)):
                report.errors += 1
                report.failed.append(f"event-{index}")
                continue
            self._handle(f"event-{index}", event, final=True, report=report)
        return report

    def _handle(
        self, message_id: str, payload: str | bytes | Mapping[str, Any], *, final: bool, report: FeedbackReport
    ) -> None:
        try:
            parsed = parse_message(payload)
        except (FeedbackFormatError, RecursionError, TypeError, ValueError) as exc:
            report.errors += 1
            report.failed.append(message_id)
            # Failed, not dropped: after maxReceiveCount it waits in the feedback DLQ.
            error = str(exc) if isinstance(exc, FeedbackFormatError) else type(exc).__name__
            logger.error("malformed feedback message", extra={"message_id": message_id, "error": error})
            return
        self.consume(message_id, parsed, final=final, report=report)

    def process_provider_events(self, events: Iterable[tuple[str, FeedbackEvent | IgnoredMessage]]) -> FeedbackReport:
        """Apply normalised events from a provider webhook, each named by a label that `failed` reports.

        Nothing is deferred: an event whose request is not logged yet is stored
        beside it (the message log merges the two when read).
        """
        report = FeedbackReport()
        for label, event in events:
            self.consume(label, event, final=True, report=report)
        return report

    def consume(
        self, message_id: str, parsed: FeedbackEvent | IgnoredMessage, *, final: bool, report: FeedbackReport
    ) -> None:
        """Apply one normalised event (or count an ignored one) into `report`; a failure is reported, never raised."""
        if isinstance(parsed, IgnoredMessage):
            report.ignored += 1
            report.by_type[parsed.kind] += 1
            logger.warning(
                "feedback message ignored",
                extra={"message_id": message_id, "kind": parsed.kind, "ses_message_id": parsed.ses_message_id},
            )
            return
        context = {
            "message_id": message_id,
            "event_type": parsed.event_type,
            "provider": parsed.provider,
            "ses_message_id": parsed.message_id,
            "request_id": parsed.request_id,
        }
        try:
            self._apply(parsed, final=final, report=report)
        except _DeferredError:
            report.deferred += 1
            report.failed.append(message_id)
            report.deferred_ids.append(message_id)
            logger.info("request not logged yet; feedback will be retried", extra=context)
        except TransientError as exc:
            report.failed.append(message_id)
            logger.warning("feedback will be retried", extra={**context, "reason": exc.code, "error": str(exc)})
        except Exception as exc:
            report.errors += 1
            report.failed.append(message_id)
            logger.exception("feedback failed", extra={**context, "error": scrub_addresses(str(exc))})
        else:
            report.processed += 1
            report.by_type[parsed.event_type] += 1
            report.count_reputation(parsed)
            logger.info(
                "feedback applied",
                extra={**context, "recipients": [mask_address(r) for r in parsed.recipients]},
            )

    def _apply(self, event: FeedbackEvent, *, final: bool, report: FeedbackReport) -> None:
        if event.event_type == "Bounce":
            self._bounce(event, report)
        elif event.event_type == "Complaint":
            feedback_type = event.detail.get("feedback_type", "no feedback type")
            note = f"complaint ({feedback_type}) on {event.described_message}"
            for address in event.recipients:
                result = self.suppressions.suppress(
                    address,
                    reason=REASON_COMPLAINT,
                    actor=event.actor,
                    note=note,
                    source=f"{event.provider}:complaint",
                )
                report.suppressed += result.changed
        elif event.event_type == UNSUBSCRIBE:
            self._unsubscribe(event, report)
        if event.event_type not in UNLOGGED_TYPES:
            self._record(event, final=final, report=report)

    def _unsubscribe(self, event: FeedbackEvent, report: FeedbackReport) -> None:
        """Opt the request's user out of its category (the request's log entry names both)."""
        request_id = event.request_id or self._log.find_request_id(event.message_id)
        item = self._requests(request_id) if request_id and self._requests is not None else None
        user_id = item.get("user_id") if item else None
        category = (item.get("category") if item else None) or event.category
        context = {"request_id": request_id, "provider": event.provider, "category": category}
        if self._preferences is None or not isinstance(user_id, str) or not isinstance(category, str):
            logger.warning("provider unsubscribe not applied: its request or user is unknown", extra=context)
            return
        if category in ESSENTIAL_CATEGORIES:
            logger.info("provider unsubscribe from an essential category: recorded only", extra=context)
            return
        self._preferences.add_opt_out(user_id, category, source=f"{event.provider}:unsubscribe", updated_at=event.at)
        report.unsubscribed += 1

    def _bounce(self, event: FeedbackEvent, report: FeedbackReport) -> None:
        sub_type = event.bounce_sub_type or "General"
        note = f"{event.bounce_type} bounce ({sub_type}) of {event.described_message}"
        source = f"{event.provider}:bounce"
        # Only the addresses in bouncedRecipients bounced; the message's other destinations did not.
        for address in event.recipients:
            if event.bounce_type == BOUNCE_PERMANENT:
                result = self.suppressions.suppress(
                    address, reason=REASON_BOUNCE, actor=event.actor, note=note, source=source
                )
                report.suppressed += result.changed
            elif event.bounce_type == BOUNCE_TRANSIENT:
                counted = self.suppressions.record_soft_bounce(
                    address,
                    key=event.feedback_id or event.fingerprint[:32],
                    at=event.at,
                    actor=event.actor,
                    note=note,
                    source=source,
                )
                report.soft_bounces += 1
                report.suppressed += counted.suppression is not None and counted.suppression.changed
            # Undetermined (and any bounce type SES may add): recorded in the log, never suppressed.

    def _record(self, event: FeedbackEvent, *, final: bool, report: FeedbackReport) -> None:
        status = event.status
        record = FeedbackRecord(
            key=f"{_iso(event.at)}#{event.event_type}#{event.fingerprint[:12]}",
            event_type=event.event_type,
            status=status,
            rank=DELIVERY_RANK.get(status),
            at=event.at,
            ses_message_id=event.message_id,
            recipients=tuple(mask_address(r) for r in event.recipients),
            detail=dict(event.detail),
        )
        request_id = event.request_id or self._log.find_request_id(event.message_id)
        if request_id is None:
            if not final:
                raise _DeferredError
            # Mail not sent by mailwright, or its request was never logged: keep the event under the SES id.
            self._log.append_unattributed(record)
            report.unmatched += 1
            return
        if self._log.append(request_id, record) == APPEND_NO_REQUEST:
            if not final:
                raise _DeferredError
            self._log.append(request_id, record, require_request=False)
            report.unmatched += 1


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
