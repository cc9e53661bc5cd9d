"""Feedback from the secondary providers: verify their signed webhooks, normalise their events, apply them.

One function URL serves every provider, one path each (`/<provider name>`).

* **SendGrid** (Signed Event Webhook): a JSON array of events, signed with
  ECDSA P-256 / SHA-256 over the timestamp header followed by the raw body;
  the signature (base64 DER) and timestamp come in the headers
  `X-Twilio-Email-Event-Webhook-Signature` and `...-Timestamp`; the public key
  is in the provider's secret (`webhook_public_key`, base64 DER or PEM).
* **Mailgun** (webhooks): one JSON event per request, `{"signature":
  {"timestamp", "token", "signature"}, "event-data": {...}}`, signed with
  HMAC-SHA256 over timestamp + token with the webhook signing key
  (`webhook_signing_key`). The signature does not cover the event, so a
  token is good for one request only: the replay guard keeps every token.

Unsigned requests get 401 and forged or stale ones 403; nothing is applied.
A timestamp must be at most `max_age` old (long enough for the providers'
own retries: SendGrid retries for 24 hours, Mailgun for 8) and at most five
minutes ahead. Every event is taken in the replay guard before it is applied
(SendGrid by `sg_event_id`, Mailgun by signature token), and kept for twice
the accepted age, so a duplicate or a replayed payload is applied once.

Events are normalised into `FeedbackEvent` and applied by the same
`FeedbackService` as SES's:

| SendGrid                     | Mailgun                                   | normalised                    |
|------------------------------|-------------------------------------------|-------------------------------|
| processed                    | accepted                                  | Send (counted only)           |
| delivered                    | delivered                                 | Delivery                      |
| deferred                     | failed, severity temporary                | DeliveryDelay                 |
| bounce, type bounce          | failed, permanent, reason bounce or       | Bounce, Permanent (suppress)  |
| dropped, Bounced Address     | suppress-bounce, or generic with a 5xx    |                               |
| bounce, type blocked         | failed, permanent, reason old (retries    | Bounce, Transient (counted)   |
|                              | ran out)                                  |                               |
| spamreport, dropped Spam     | complained, failed suppress-complaint     | Complaint                     |
| Reporting Address            |                                           |                               |
| dropped (other reasons)      | rejected, failed (other reasons)          | Reject                        |
| unsubscribe, group_unsubscribe | unsubscribed                            | Unsubscribe (preferences)     |
| group_resubscribe            |                                           | Subscription (recorded)       |
| open, click                  | opened, clicked                           | Open, Click                   |

The request is found through the `request_id` the send carried (SendGrid
`custom_args`, Mailgun `v:` variables), else through the message id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mailwright.constants import PROVIDER_KIND_MAILGUN, PROVIDER_KIND_SENDGRID
from mailwright.errors import ConfigurationError, WebhookAuthError
from mailwright.feedback import (
    BOUNCE_PERMANENT,
    BOUNCE_TRANSIENT,
    UNSUBSCRIBE,
    FeedbackEvent,
    FeedbackReport,
    FeedbackService,
    IgnoredMessage,
    _addresses,
    _details,
    _text,
)
from mailwright.ports import ReplayGuard

logger = logging.getLogger(__name__)

FORMAT_WEBHOOK = "webhook"
SENDGRID_SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
SENDGRID_TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
# Accepted ages of a signed request: the providers retry failed deliveries for 24 h (SendGrid) and 8 h
# (Mailgun), and may not sign a retry again; more than that is a replay.
SENDGRID_MAX_AGE_SECONDS = 25 * 3600
MAILGUN_MAX_AGE_SECONDS = 9 * 3600
MAX_CLOCK_SKEW_SECONDS = 300
# A key is leased for this long while its event is applied (longer than the function's timeout).
APPLY_LEASE_SECONDS = 300
# A webhook body bigger than this is not the provider's (SendGrid batches stay far below).
MAX_BODY_BYTES = 5 * 1024 * 1024
# The tags the send carried as SendGrid custom_args and Mailgun variables.
_CARRIED = ("request_id", "lane", "category")
# Where SendGrid's message id ends inside sg_message_id ("<X-Message-Id>.filter...").
_SG_MESSAGE_ID_SUFFIX = re.compile(r"\.(filter|recvd|ismtpd)", re.IGNORECASE)

# HTTP answers of the webhook.
OK, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, NOT_ALLOWED, BAD_REQUEST = 200, 401, 403, 404, 405, 400
# Mailgun stops retrying on 406; SendGrid retries anything but 2xx (for 24 h).
NOT_ACCEPTABLE, RETRY_LATER = 406, 503


@dataclass(frozen=True)
class WebhookRequest:
    """The parts of a function URL request (payload format 2.0) the webhook reads; the body raw, as signed."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> WebhookRequest:
        """Read a function URL event; header names lower-cased, the body decoded from base64 when it is."""
        http = (event.get("requestContext") or {}).get("http") or {}
        raw = event.get("body") or ""
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                body = b""
        else:
            body = str(raw).encode("utf-8")
        return cls(
            method=str(http.get("method", "")).upper(),
            path=str(event.get("rawPath") or http.get("path") or "/"),
            headers={str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()},
            body=body,
        )


@dataclass
class WebhookOutcome:
    """What the webhook answers, and what it applied."""

    status: int
    message: str
    provider: str = ""
    report: FeedbackReport | None = None
    duplicates: int = 0

    def as_body(self) -> dict[str, Any]:
        """The JSON body of the answer: counts only, never addresses."""
        body: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.report is not None:
            body.update(
                applied=self.report.processed,
                ignored=self.report.ignored,
                failed=len(self.report.failed),
                duplicates=self.duplicates,
            )
        return body


@dataclass(frozen=True)
class WebhookProvider:
    """A provider that posts to the webhook: its name (the path), kind and verification key (from its secret)."""

    name: str
    kind: str
    key: Callable[[], str]


# -- signatures -----------------------------------------------------------------


def _fresh(timestamp: str, *, now: float, max_age: float, who: str) -> None:
    try:
        signed_at = float(timestamp)
    except ValueError:
        raise WebhookAuthError(FORBIDDEN, f"{who}: the signature timestamp is not a number") from None
    if not now - max_age <= signed_at <= now + MAX_CLOCK_SKEW_SECONDS:
        raise WebhookAuthError(FORBIDDEN, f"{who}: the signature timestamp is outside the accepted window")


def load_sendgrid_key(text: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key, as its console shows it (base64 DER) or as PEM; ConfigurationError if neither."""
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            key = serialization.load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, TypeError, binascii.Error):
        raise ConfigurationError("webhook_public_key is not an EC public key (base64 DER or PEM)") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigurationError("webhook_public_key is not a P-256 (prime256v1) key")
    return key


def verify_sendgrid(
    request: WebhookRequest, key: ec.EllipticCurvePublicKey, *, now: float, max_age: float = SENDGRID_MAX_AGE_SECONDS
) -> None:
    """Check a SendGrid Signed Event Webhook request; raise WebhookAuthError (401 unsigned, 403 forged or stale)."""
    signature = request.headers.get(SENDGRID_SIGNATURE_HEADER, "")
    timestamp = request.headers.get(SENDGRID_TIMESTAMP_HEADER, "")
    if not signature or not timestamp:
        raise WebhookAuthError(UNAUTHORIZED, "sendgrid: the request is not signed")
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            timestamp.encode("utf-8") + request.body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise WebhookAuthError(FORBIDDEN, "sendgrid: the signature does not match") from None
    _fresh(timestamp, now=now, max_age=max_age, who="sendgrid")


def verify_mailgun(
    payload: Mapping[str, Any], signing_key: str, *, now: float, max_age: float = MAILGUN_MAX_AGE_SECONDS
) -> str:
    """Check a Mailgun webhook's signature block; its token. Raise WebhookAuthError (401 unsigned, 403 forged)."""
    block = payload.get("signature")
    if not isinstance(block, Mapping):
        raise WebhookAuthError(UNAUTHORIZED, "mailgun: the request is not signed")
    timestamp, token, signature = (str(block.get(name) or "") for name in ("timestamp", "token", "signature"))
    if not (timestamp and token and signature):
        raise WebhookAuthError(UNAUTHORIZED, "mailgun: the signature block is incomplete")
    expected = hmac.new(signing_key.encode("utf-8"), (timestamp + token).encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise WebhookAuthError(FORBIDDEN, "mailgun: the signature does not match")
    _fresh(timestamp, now=now, max_age=max_age, who="mailgun")
    return token


# -- normalising ------------------------------------------------------------------


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _carried(values: Mapping[str, Any]) -> dict[str, str | None]:
    return {name: values[name] if isinstance(values.get(name), str) and values[name] else None for name in _CARRIED}


def _link(url: Any) -> str | None:
    # Keep where the link went, not its query (tokens, sometimes the address itself).
    if not isinstance(url, str):
        return None
    return url.split("?", 1)[0].split("#", 1)[0][:200]


def sendgrid_message_id(sg_message_id: str) -> str:
    """The X-Message-Id the send returned, from an event's `sg_message_id` (`<X-Message-Id>.filter...`)."""
    return _SG_MESSAGE_ID_SUFFIX.split(sg_message_id, maxsplit=1)[0]


def parse_sendgrid_event(raw: Mapping[str, Any], *, provider: str) -> FeedbackEvent | IgnoredMessage:
    """One SendGrid event, normalised (see the module docstring)."""
    kind = raw.get("event")
    sg_message_id = raw.get("sg_message_id") if isinstance(raw.get("sg_message_id"), str) else ""
    message_id = sendgrid_message_id(str(sg_message_id))
    if not isinstance(kind, str) or not kind:
        return IgnoredMessage(kind="unknown:sendgrid", ses_message_id=message_id or None)
    timestamp = raw.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        return IgnoredMessage(kind=f"malformed:sendgrid:{kind[:32]}", ses_message_id=message_id or None)
    event_id = raw.get("sg_event_id") if isinstance(raw.get("sg_event_id"), str) else None
    fingerprint = _digest(provider, event_id) if event_id else _digest(provider, json.dumps(raw, sort_keys=True))
    reason, bounce_type = str(raw.get("reason") or ""), str(raw.get("type") or "")
    detail = _details(
        status=raw.get("status"),
        reason=reason or None,
        response=raw.get("response"),
        attempt=raw.get("attempt"),
        type=raw.get("type"),
        classification=raw.get("bounce_classification"),
        link=_link(raw.get("url")),
    )
    event_type: str | None = {
        "processed": "Send",
        "delivered": "Delivery",
        "deferred": "DeliveryDelay",
        "spamreport": "Complaint",
        "unsubscribe": UNSUBSCRIBE,
        "group_unsubscribe": UNSUBSCRIBE,
        "group_resubscribe": "Subscription",
        "open": "Open",
        "click": "Click",
        "bounce": "Bounce",
        "dropped": "Reject",
    }.get(kind)
    bounce: str | None = None
    if kind == "bounce":
        bounce = BOUNCE_TRANSIENT if bounce_type == "blocked" else BOUNCE_PERMANENT
    elif kind == "dropped" and reason.lower() == "bounced address":
        event_type, bounce = "Bounce", BOUNCE_PERMANENT  # SendGrid has a hard bounce of this address on file
    elif kind == "dropped" and reason.lower() == "spam reporting address":
        event_type = "Complaint"  # and a spam report of it
    if event_type is None:
        return IgnoredMessage(kind=f"unknown:sendgrid:{scrub(kind)}", ses_message_id=message_id or None)
    return FeedbackEvent(
        event_type=event_type,
        source_format=FORMAT_WEBHOOK,
        message_id=message_id,
        at=float(timestamp),
        recipients=_addresses([raw.get("email")]),
        fingerprint=fingerprint,
        bounce_type=bounce,
        bounce_sub_type=_text(raw.get("bounce_classification")) if bounce else None,
        feedback_id=event_id,
        detail=detail,
        provider=provider,
        **_carried(raw),
    )


def parse_sendgrid(body: bytes, *, provider: str) -> list[tuple[str, FeedbackEvent | IgnoredMessage]]:
    """The events of a SendGrid webhook body, each with its replay-guard key; ValueError if it is not a list."""
    events = json.loads(body)
    if not isinstance(events, list):
        raise ValueError("a SendGrid webhook body is a JSON array of events")
    parsed: list[tuple[str, FeedbackEvent | IgnoredMessage]] = []
    for raw in events:
        if not isinstance(raw, Mapping):
            raise ValueError("a SendGrid event is a JSON object")
        event = parse_sendgrid_event(raw, provider=provider)
        event_id = raw.get("sg_event_id")
        key = f"{provider}#{event_id}" if isinstance(event_id, str) and event_id else f"{provider}#{_digest(str(raw))}"
        parsed.append((key[:400], event))
    return parsed


def parse_mailgun_event(payload: Mapping[str, Any], *, provider: str) -> FeedbackEvent | IgnoredMessage:
    """The event of a Mailgun webhook payload, normalised (see the module docstring); ValueError if malformed."""
    data = payload.get("event-data")
    if not isinstance(data, Mapping):
        raise ValueError("a Mailgun webhook carries event-data")
    kind, timestamp = data.get("event"), data.get("timestamp")
    if not isinstance(kind, str) or isinstance(timestamp, bool) or not isinstance(timestamp, (int, float, str)):
        raise ValueError("Mailgun event-data needs an event and a timestamp")
    message = data.get("message")
    headers = message.get("headers") if isinstance(message, Mapping) else None
    message_id = str((headers or {}).get("message-id") or "").strip("<>")
    status = data.get("delivery-status")
    status = status if isinstance(status, Mapping) else {}
    code = status.get("code")
    severity, reason = str(data.get("severity") or ""), str(data.get("reason") or "")
    event_type: str | None = {
        "accepted": "Send",
        "delivered": "Delivery",
        "opened": "Open",
        "clicked": "Click",
        "complained": "Complaint",
        "unsubscribed": UNSUBSCRIBE,
        "rejected": "Reject",
    }.get(kind)
    bounce: str | None = None
    if kind == "failed":
        if severity == "temporary":
            event_type = "DeliveryDelay"  # Mailgun tries again
        elif reason in ("bounce", "suppress-bounce") or (
            reason == "generic" and isinstance(code, int) and 500 <= code < 600
        ):
            event_type, bounce = "Bounce", BOUNCE_PERMANENT
        elif reason == "old":
            event_type, bounce = "Bounce", BOUNCE_TRANSIENT  # temporary failures until Mailgun gave up
        elif reason == "suppress-complaint":
            event_type = "Complaint"
        else:
            event_type = "Reject"
    if event_type is None:
        return IgnoredMessage(kind=f"unknown:mailgun:{scrub(kind)}", ses_message_id=message_id or None)
    event_id = str(data.get("id") or "")
    variables = data.get("user-variables")
    return FeedbackEvent(
        event_type=event_type,
        source_format=FORMAT_WEBHOOK,
        message_id=message_id,
        at=float(timestamp),
        recipients=_addresses([data.get("recipient")]),
        fingerprint=_digest(provider, event_id, str(timestamp), kind),
        bounce_type=bounce,
        bounce_sub_type=_text(reason) if bounce else None,
        feedback_id=_digest(provider, event_id, str(timestamp))[:32] if event_id else None,
        detail=_details(
            severity=severity or None,
            reason=reason or None,
            code=code,
            diagnostic=status.get("message") or status.get("description") or None,
            link=_link(data.get("url")),
        ),
        provider=provider,
        **_carried(variables if isinstance(variables, Mapping) else {}),
    )


def scrub(kind: str) -> str:
    """An unknown event name, safe to use as a metric-free counter key."""
    return re.sub(r"[^a-z0-9_.-]", "", kind.lower())[:32] or "blank"


# -- the service --------------------------------------------------------------------


@dataclass
class _Batch:
    """A verified request's events, each with its replay-guard key."""

    provider: str
    events: list[tuple[str, FeedbackEvent | IgnoredMessage]] = field(default_factory=list)


class ProviderFeedbackService:
    """Verifies provider webhook requests, keeps replays out, and applies their events through a FeedbackService."""

    def __init__(
        self,
        *,
        feedback: FeedbackService,
        guard: ReplayGuard,
        providers: Sequence[WebhookProvider],
        clock: Callable[[], float] = time.time,
        sendgrid_max_age: float = SENDGRID_MAX_AGE_SECONDS,
        mailgun_max_age: float = MAILGUN_MAX_AGE_SECONDS,
    ) -> None:
        self.feedback = feedback
        self._guard = guard
        self._providers = {provider.name: provider for provider in providers}
        self._clock = clock
        self._max_age = {PROVIDER_KIND_SENDGRID: sendgrid_max_age, PROVIDER_KIND_MAILGUN: mailgun_max_age}
        self._sendgrid_keys: dict[str, ec.EllipticCurvePublicKey] = {}

    def handle(self, request: WebhookRequest) -> WebhookOutcome:
        """Answer one webhook request: verify it, then apply its events once each."""
        name = request.path.strip("/").split("/", 1)[0]
        provider = self._providers.get(name)
        if provider is None:
            return WebhookOutcome(NOT_FOUND, "no such provider")
        if request.method != "POST":
            return WebhookOutcome(NOT_ALLOWED, "POST only", provider=name)
        if len(request.body) > MAX_BODY_BYTES:
            return WebhookOutcome(NOT_ACCEPTABLE, "body too large", provider=name)
        now = self._clock()
        try:
            batch = self._verified(provider, request, now)
        except WebhookAuthError as exc:
            logger.warning("provider webhook refused", extra={"provider": name, "status": exc.status, "why": str(exc)})
            return WebhookOutcome(exc.status, "not signed" if exc.status == UNAUTHORIZED else "forbidden", name)
        except ValueError as exc:
            logger.error("provider webhook payload unreadable", extra={"provider": name, "error": str(exc)[:200]})
            status = NOT_ACCEPTABLE if provider.kind == PROVIDER_KIND_MAILGUN else BAD_REQUEST
            return WebhookOutcome(status, "payload not understood", provider=name)
        except Exception as exc:  # the verification key could not be read, or is not a key
            logger.exception("provider webhook cannot verify", extra={"provider": name, "error": str(exc)[:200]})
            return WebhookOutcome(RETRY_LATER, "try again later", provider=name)
        return self._apply(batch, now)

    def _verified(self, provider: WebhookProvider, request: WebhookRequest, now: float) -> _Batch:
        max_age = self._max_age[provider.kind]
        if provider.kind == PROVIDER_KIND_SENDGRID:
            verify_sendgrid(request, self._sendgrid_key(provider), now=now, max_age=max_age)
            return _Batch(provider.name, parse_sendgrid(request.body, provider=provider.name))
        try:
            payload = json.loads(request.body)
        except ValueError:
            # Legacy (form-encoded) Mailgun webhooks carry no JSON: unsigned as far as this endpoint can tell.
            raise WebhookAuthError(UNAUTHORIZED, "mailgun: the request is not a signed JSON webhook") from None
        if not isinstance(payload, Mapping):
            raise WebhookAuthError(UNAUTHORIZED, "mailgun: the request is not a signed JSON webhook")
        token = verify_mailgun(payload, provider.key(), now=now, max_age=max_age)
        # The signature covers the token, not the event: the token is the one-time key.
        return _Batch(
            provider.name, [(f"{provider.name}#token#{token}", parse_mailgun_event(payload, provider=provider.name))]
        )

    def _sendgrid_key(self, provider: WebhookProvider) -> ec.EllipticCurvePublicKey:
        key = self._sendgrid_keys.get(provider.name)
        if key is None:
            key = self._sendgrid_keys[provider.name] = load_sendgrid_key(provider.key())
        return key

    def _apply(self, batch: _Batch, now: float) -> WebhookOutcome:
        keep_until = now + 2 * max(self._max_age.values())
        fresh: list[tuple[str, FeedbackEvent | IgnoredMessage]] = []
        duplicates = 0
        try:
            for key, event in batch.events:
                if self._guard.take(key, until=now + APPLY_LEASE_SECONDS):
                    fresh.append((key, event))
                else:
                    duplicates += 1
        except Exception as exc:
            self._give_back([key for key, _ in fresh])
            logger.warning("replay guard unavailable", extra={"provider": batch.provider, "error": str(exc)})
            return WebhookOutcome(RETRY_LATER, "try again later", provider=batch.provider)
        report = self.feedback.process_provider_events(fresh)
        failed = set(report.failed)
        self._give_back([key for key, _ in fresh if key in failed])
        try:
            for key, _ in fresh:
                if key not in failed:
                    self._guard.hold(key, until=keep_until)
        except Exception as exc:
            # The leases run out on their own; a redelivery before then counts as a duplicate.
            logger.warning("replay guard not extended", extra={"provider": batch.provider, "error": str(exc)})
        status, message = (RETRY_LATER, "some events failed: retry") if failed else (OK, "ok")
        return WebhookOutcome(status, message, provider=batch.provider, report=report, duplicates=duplicates)

    def _give_back(self, keys: list[str]) -> None:
        for key in keys:
            try:
                self._guard.give_back(key)
            except Exception:
                # Its lease runs out within APPLY_LEASE_SECONDS: the provider's retry comes later than that.
                logger.warning("replay guard key not given back", extra={"key": key[:80]})
