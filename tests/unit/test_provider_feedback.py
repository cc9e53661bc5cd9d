"""Provider webhooks (mailwright.provider_feedback): payloads signed the way SendGrid and Mailgun sign them.

SendGrid signs the timestamp header followed by the raw body with ECDSA P-256
/ SHA-256 (base64 DER signature); Mailgun signs timestamp + token with
HMAC-SHA256 and its webhook signing key. Keys are generated per test run.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mailwright.errors import TransientError
from mailwright.feedback import FeedbackService
from mailwright.observability import feedback_metrics
from mailwright.ports import Outcome
from mailwright.provider_feedback import (
    MAILGUN_MAX_AGE_SECONDS,
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
    ProviderFeedbackService,
    WebhookProvider,
    WebhookRequest,
    load_sendgrid_key,
    sendgrid_message_id,
)
from mailwright.suppression import SuppressionService
from mailwright_tools.fakes import (
    FAKE_HASHER,
    FakeClock,
    FakeFeedbackLog,
    FakeMessageLog,
    FakeReplayGuard,
    FakeSuppressionLedger,
    StaticAddressKeys,
)
from tests.unit.unsubscribe_fakes import MemoryPreferences

REQUEST_ID = "0123456789abcdef0123456789abcdef"
SG_MESSAGE_ID = "Lli-03HcQ5-JLybO9fXsJg"
MG_MESSAGE_ID = "20240101120000.1.ABCDEF@mg.example.com"
MAILGUN_KEY = "mailgun-webhook-signing-key-0123456789"


def sendgrid_public_key(private: ec.EllipticCurvePrivateKey) -> str:
    """The verification key as SendGrid's console shows it: base64 of the DER public key."""
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def sendgrid_request(
    private: ec.EllipticCurvePrivateKey, events: list[dict[str, Any]], *, timestamp: float, path: str = "/sendgrid"
) -> WebhookRequest:
    body = json.dumps(events).encode()
    stamp = str(int(timestamp))
    signature = base64.b64encode(private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    headers = {
        SENDGRID_SIGNATURE_HEADER: signature,
        SENDGRID_TIMESTAMP_HEADER: stamp,
        "content-type": "application/json",
    }
    return WebhookRequest(method="POST", path=path, headers=headers, body=body)


def mailgun_payload(
    event_data: dict[str, Any], *, timestamp: float, token: str | None = None, key: str = MAILGUN_KEY
) -> dict[str, Any]:
    token = token or secrets.token_hex(25)
    stamp = str(int(timestamp))
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": stamp, "token": token, "signature": signature}, "event-data": event_data}


def mailgun_request(payload: dict[str, Any], *, path: str = "/mailgun") -> WebhookRequest:
    return WebhookRequest("POST", path, {"content-type": "application/json"}, json.dumps(payload).encode())


def sg_event(kind: str, email: str = "jane@example.com", **extra: Any) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp": 1_700_000_000,
        "event": kind,
        "sg_event_id": secrets.token_urlsafe(16),
        "sg_message_id": f"{SG_MESSAGE_ID}.filter0077p1las1.21536.5717FC482.0",
        "smtp-id": "<x@ismtpd>",
        "request_id": REQUEST_ID,
        "lane": "standard",
        "category": "marketing",
        **extra,
    }


def mg_event(kind: str, recipient: str = "jane@example.com", **extra: Any) -> dict[str, Any]:
    return {
        "event": kind,
        "id": secrets.token_urlsafe(12),
        "timestamp": 1_700_000_000.25,
        "recipient": recipient,
        "message": {"headers": {"message-id": MG_MESSAGE_ID, "to": recipient}},
        "user-variables": {"request_id": REQUEST_ID, "lane": "standard", "category": "marketing"},
        **extra,
    }


@dataclass
class World:
    """The webhook service on fakes: a request logged as sent through SendGrid, its user, their preferences."""

    clock: FakeClock = field(default_factory=FakeClock)
    private: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def __post_init__(self) -> None:
        self.messages = FakeMessageLog()
        self.messages.record(
            [
                Outcome(
                    request_id=REQUEST_ID,
                    status="sent",
                    lane="standard",
                    ses_message_id=SG_MESSAGE_ID,
                    category="marketing",
                    user_id="user-1",
                    completed_at=self.clock(),
                    provider="sendgrid",
                )
            ]
        )
        self.log = FakeFeedbackLog(self.messages)
        self.ledger = FakeSuppressionLedger()
        self.preferences = MemoryPreferences()
        self.guard = FakeReplayGuard(clock=self.clock)
        feedback = FeedbackService(
            suppressions=SuppressionService(self.ledger, address_keys=StaticAddressKeys(), clock=self.clock),
            log=self.log,
            preferences=self.preferences,
            requests=self.messages.get,
        )
        public = sendgrid_public_key(self.private)
        self.service = ProviderFeedbackService(
            feedback=feedback,
            guard=self.guard,
            providers=[
                WebhookProvider("sendgrid", "sendgrid", lambda: public),
                WebhookProvider("mailgun", "mailgun", lambda: MAILGUN_KEY),
            ],
            clock=self.clock,
        )

    def suppression(self, address: str) -> str | None:
        entry = self.ledger.items.get(FAKE_HASHER.address_hash(address))
        return entry.reason if entry else None

    def history(self) -> list[dict[str, Any]]:
        return self.log.history.get(REQUEST_ID, [])


# -- SendGrid -----------------------------------------------------------------------


def test_a_signed_sendgrid_batch_is_normalised_into_the_suppression_lifecycle_and_the_log() -> None:
    world = World()
    events = [
        sg_event("processed"),
        sg_event("delivered", response="250 OK"),
        sg_event("open", useragent="Mozilla"),
        sg_event("click", url="https://example.com/a?token=secret"),
        sg_event("bounce", "gone@example.com", type="bounce", status="5.1.1", reason="550 5.1.1 no such user"),
        sg_event("bounce", "full@example.com", type="blocked", status="4.2.2", reason="452 mailbox full"),
        sg_event("spamreport", "angry@example.com"),
        sg_event("dropped", "old@example.com", reason="Bounced Address", status="5.0.0"),
        sg_event("unsubscribe"),
        sg_event("machine_learning_event"),
    ]

    outcome = world.service.handle(sendgrid_request(world.private, events, timestamp=world.clock()))

    assert outcome.status == 200 and outcome.report is not None
    assert (outcome.report.processed, outcome.report.ignored, outcome.report.failed) == (9, 1, [])
    assert world.suppression("gone@example.com") == "BOUNCE"
    assert world.suppression("old@example.com") == "BOUNCE"
    assert world.suppression("angry@example.com") == "COMPLAINT"
    assert world.suppression("full@example.com") is None  # one soft bounce is counted, not suppressed
    assert len(world.ledger.soft_bounces[FAKE_HASHER.address_hash("full@example.com")]) == 1
    assert world.preferences.items["user-1"]["opted_out"] == {"marketing"}
    statuses = [entry["status"] for entry in world.history()]
    assert statuses == ["delivered", "opened", "clicked", "bounced", "bounced", "complained", "bounced", "unsubscribed"]
    click = next(entry for entry in world.history() if entry["status"] == "clicked")
    assert click["detail"]["link"] == "https://example.com/a"  # no query: tokens stay out of the log
    audit = world.ledger.trails[FAKE_HASHER.address_hash("gone@example.com")][0]
    assert audit.source == "sendgrid:bounce" and audit.actor == "sendgrid-feedback"
    assert f"sendgrid message {SG_MESSAGE_ID}" in audit.note
    # Bounces and complaints count per lane and category (from custom_args), as SES's do.
    groups = {tuple(d.items()): {m.name: m.value for m in v} for d, v in feedback_metrics(outcome.report).groups()}
    assert groups[(("lane", "standard"), ("category", "marketing"))] == {"Bounces": 2, "Complaints": 1}


def test_a_redelivered_sendgrid_batch_is_applied_once() -> None:
    world = World()
    events = [sg_event("bounce", "gone@example.com", type="bounce"), sg_event("delivered")]
    request = sendgrid_request(world.private, events, timestamp=world.clock())
    world.service.handle(request)
    trail = list(world.ledger.trails[FAKE_HASHER.address_hash("gone@example.com")])

    again = world.service.handle(request)

    assert again.status == 200 and again.duplicates == 2
    assert again.report is not None and again.report.processed == 0
    assert world.ledger.trails[FAKE_HASHER.address_hash("gone@example.com")] == trail and len(world.history()) == 2


@pytest.mark.parametrize("fault", ["unsigned", "other key", "body changed", "timestamp changed", "stale", "future"])
def test_unsigned_or_forged_sendgrid_requests_change_nothing(fault: str) -> None:
    world = World()
    events = [sg_event("bounce", "gone@example.com", type="bounce"), sg_event("unsubscribe")]
    signed_at = (
        world.clock() - 26 * 3600 if fault == "stale" else world.clock() + 3600 if fault == "future" else world.clock()
    )
    signer = ec.generate_private_key(ec.SECP256R1()) if fault == "other key" else world.private
    request = sendgrid_request(signer, events, timestamp=signed_at)
    headers = dict(request.headers)
    body = request.body
    if fault == "unsigned":
        headers.pop(SENDGRID_SIGNATURE_HEADER)
    elif fault == "body changed":
        body = body.replace(b"gone@example.com", b"victim@example.com")
    elif fault == "timestamp changed":
        headers[SENDGRID_TIMESTAMP_HEADER] = str(int(world.clock()) + 1)

    outcome = world.service.handle(WebhookRequest("POST", "/sendgrid", headers, body))

    assert outcome.status == (401 if fault == "unsigned" else 403)
    assert outcome.report is None
    assert world.ledger.items == {} and world.preferences.items == {} and world.history() == []
    assert world.guard.keys == {}


def test_a_retry_within_sendgrids_retry_window_is_accepted() -> None:
    world = World()
    request = sendgrid_request(world.private, [sg_event("delivered")], timestamp=world.clock() - 20 * 3600)

    assert world.service.handle(request).status == 200


def test_events_that_fail_are_given_back_so_the_providers_retry_applies_them() -> None:
    world = World()
    events = [sg_event("bounce", "gone@example.com", type="bounce"), sg_event("delivered")]
    request = sendgrid_request(world.private, events, timestamp=world.clock())
    world.ledger.failures["write"] = TransientError("dynamodb_failed", "injected")

    failed = world.service.handle(request)

    assert failed.status == 503 and failed.report is not None and len(failed.report.failed) == 1
    world.ledger.failures.clear()
    retried = world.service.handle(request)
    assert retried.status == 200 and retried.duplicates == 1  # the delivery was applied the first time
    assert world.suppression("gone@example.com") == "BOUNCE"


def test_an_unsubscribe_from_an_essential_category_is_recorded_only() -> None:
    world = World()
    world.messages.record(
        [
            Outcome(
                request_id="r-reset",
                status="sent",
                lane="critical",
                category="security",
                user_id="user-1",
                completed_at=1,
            )
        ]
    )
    event = sg_event("unsubscribe", request_id="r-reset", category="security")

    outcome = world.service.handle(sendgrid_request(world.private, [event], timestamp=world.clock()))

    assert outcome.status == 200 and world.preferences.items == {}
    assert world.log.history["r-reset"][0]["status"] == "unsubscribed"


def test_sendgrid_message_ids_are_matched_to_the_x_message_id_the_send_returned() -> None:
    assert sendgrid_message_id("14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0") == "14c5d75ce93.dfd.64b469"
    assert sendgrid_message_id(f"{SG_MESSAGE_ID}.filter0077p1las1.21536.5717FC482.0") == SG_MESSAGE_ID
    world = World()
    event = sg_event("delivered")
    del event["request_id"]  # found through the message id instead

    world.service.handle(sendgrid_request(world.private, [event], timestamp=world.clock()))

    assert [entry["status"] for entry in world.history()] == ["delivered"]


def test_a_pem_key_works_too_and_a_wrong_key_is_refused() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    assert load_sendgrid_key(pem.decode()).curve.name == "secp256r1"
    other_curve = ec.generate_private_key(ec.SECP384R1()).public_key()
    der = other_curve.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(Exception, match="P-256"):
        load_sendgrid_key(base64.b64encode(der).decode())


# -- Mailgun ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_data", "status", "suppression"),
    [
        (
            mg_event(
                "failed",
                "gone@example.com",
                severity="permanent",
                reason="bounce",
                **{"delivery-status": {"code": 550, "message": "5.1.1 no such user"}},
            ),
            "bounced",
            "BOUNCE",
        ),
        (
            mg_event(
                "failed",
                "gone@example.com",
                severity="permanent",
                reason="generic",
                **{"delivery-status": {"code": 554}},
            ),
            "bounced",
            "BOUNCE",
        ),
        (mg_event("failed", "gone@example.com", severity="permanent", reason="suppress-bounce"), "bounced", "BOUNCE"),
        (
            mg_event("failed", "gone@example.com", severity="permanent", reason="suppress-complaint"),
            "complained",
            "COMPLAINT",
        ),
        (mg_event("failed", "gone@example.com", severity="permanent", reason="espblock"), "rejected", None),
        (
            mg_event(
                "failed",
                "gone@example.com",
                severity="temporary",
                reason="generic",
                **{"delivery-status": {"code": 452}},
            ),
            "delayed",
            None,
        ),
        (mg_event("complained", "gone@example.com"), "complained", "COMPLAINT"),
        (mg_event("delivered", "gone@example.com"), "delivered", None),
        (mg_event("opened", "gone@example.com"), "opened", None),
        (mg_event("rejected", "gone@example.com"), "rejected", None),
    ],
)
def test_signed_mailgun_events_are_normalised(event_data: dict[str, Any], status: str, suppression: str | None) -> None:
    world = World()

    outcome = world.service.handle(mailgun_request(mailgun_payload(event_data, timestamp=world.clock())))

    assert outcome.status == 200 and outcome.report is not None and outcome.report.processed == 1
    assert [entry["status"] for entry in world.history()] == [status]
    assert world.suppression("gone@example.com") == suppression


def test_mailgun_unsubscribes_and_soft_bounces() -> None:
    world = World()
    for event_data in (
        mg_event("unsubscribed"),
        mg_event("failed", "full@example.com", severity="permanent", reason="old"),
    ):
        assert world.service.handle(mailgun_request(mailgun_payload(event_data, timestamp=world.clock()))).status == 200

    assert world.preferences.items["user-1"]["opted_out"] == {"marketing"}
    assert world.suppression("full@example.com") is None
    assert len(world.ledger.soft_bounces[FAKE_HASHER.address_hash("full@example.com")]) == 1


def test_a_mailgun_signature_is_good_for_one_request_only() -> None:
    world = World()
    payload = mailgun_payload(mg_event("delivered"), timestamp=world.clock())
    first = world.service.handle(mailgun_request(payload))

    replayed = world.service.handle(mailgun_request(payload))
    # The signature does not cover the event: the same block on a forged event is the same used token.
    forged = world.service.handle(
        mailgun_request({**payload, "event-data": mg_event("complained", "victim@example.com")})
    )

    assert first.status == 200 and replayed.status == 200 and forged.status == 200
    assert replayed.duplicates == 1 and forged.duplicates == 1
    assert world.suppression("victim@example.com") is None and len(world.history()) == 1


@pytest.mark.parametrize("fault", ["unsigned", "wrong key", "stale", "future", "not json"])
def test_unsigned_or_forged_mailgun_requests_change_nothing(fault: str) -> None:
    world = World()
    signed_at = {"stale": world.clock() - MAILGUN_MAX_AGE_SECONDS - 60, "future": world.clock() + 3600}.get(
        fault, world.clock()
    )
    key = "not-the-key" if fault == "wrong key" else MAILGUN_KEY
    payload = mailgun_payload(mg_event("complained", "gone@example.com"), timestamp=signed_at, key=key)
    if fault == "unsigned":
        payload.pop("signature")
    request = mailgun_request(payload)
    if fault == "not json":
        request = WebhookRequest(
            "POST", "/mailgun", {"content-type": "application/x-www-form-urlencoded"}, b"event=complained"
        )

    outcome = world.service.handle(request)

    assert outcome.status == (401 if fault in ("unsigned", "not json") else 403)
    assert world.ledger.items == {} and world.history() == [] and world.guard.keys == {}


def test_mailgun_retries_hours_later_are_still_accepted() -> None:
    world = World()
    payload = mailgun_payload(mg_event("delivered"), timestamp=world.clock() - 8 * 3600)

    assert world.service.handle(mailgun_request(payload)).status == 200


def test_a_signed_mailgun_request_without_event_data_is_not_acceptable() -> None:
    world = World()
    payload = mailgun_payload(mg_event("delivered"), timestamp=world.clock())
    payload.pop("event-data")

    assert world.service.handle(mailgun_request(payload)).status == 406  # Mailgun stops retrying


# -- routing ------------------------------------------------------------------------


def test_unknown_paths_and_methods() -> None:
    world = World()

    assert world.service.handle(WebhookRequest("POST", "/postmark", {}, b"[]")).status == 404
    assert world.service.handle(WebhookRequest("GET", "/sendgrid", {}, b"")).status == 405
    assert world.service.handle(WebhookRequest("POST", "/sendgrid", {}, b"x" * (6 * 1024 * 1024))).status == 406


def test_function_url_events_are_read_with_their_raw_body() -> None:
    body = b'[{"event":"delivered"}]'
    event = {
        "rawPath": "/sendgrid",
        "requestContext": {"http": {"method": "POST", "path": "/sendgrid"}},
        "headers": {"X-Twilio-Email-Event-Webhook-Signature": "sig"},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }

    request = WebhookRequest.from_event(event)

    assert request == WebhookRequest("POST", "/sendgrid", {SENDGRID_SIGNATURE_HEADER: "sig"}, body)
