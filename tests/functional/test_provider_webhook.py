"""The provider webhook's handler, in-process against moto: signed requests in; suppressions, preferences, log out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mailwright.adapters.dynamodb import DynamoMessageLog, DynamoPreferenceStore, DynamoSuppressionStore
from mailwright.constants import Env
from mailwright.handlers import provider_webhook
from mailwright.ports import Outcome
from mailwright.settings import ProviderWebhookSettings
from mailwright.wiring import build_provider_feedback_service
from mailwright_tools.events import FakeLambdaContext
from mailwright_tools.provision import StackResources
from tests.functional.harness import address_hasher

REQUEST_ID = "fedcba9876543210fedcba9876543210"
MAILGUN_KEY = "mailgun-signing-key-for-the-functional-test"


class Webhook:
    """The webhook function wired to moto, its providers' secrets in Secrets Manager, every AWS call recorded."""

    def __init__(self, stack: StackResources, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stack = stack
        self.private = ec.generate_private_key(ec.SECP256R1())
        public = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        client = boto3.client("secretsmanager")
        self.sendgrid_arn = sendgrid_arn = client.create_secret(
            Name="mailwright/providers/sendgrid",
            SecretString=json.dumps({"api_key": "SG.x", "webhook_public_key": base64.b64encode(public).decode()}),
        )["ARN"]
        mailgun_arn = client.create_secret(
            Name="mailwright/providers/mailgun",
            SecretString=json.dumps({"api_key": "key-x", "webhook_signing_key": MAILGUN_KEY}),
        )["ARN"]
        providers = [
            {"name": "sendgrid", "kind": "sendgrid", "secret_arn": sendgrid_arn},
            {"name": "mailgun", "kind": "mailgun", "secret_arn": mailgun_arn, "settings": {"domain": "mg.example.com"}},
        ]
        env = {
            Env.SUPPRESSION_TABLE: stack.suppression_table,
            Env.MESSAGES_TABLE: stack.messages_table,
            Env.IDEMPOTENCY_TABLE: stack.idempotency_table,
            Env.PREFERENCES_TABLE: stack.preferences_table,
            Env.ADDRESS_KEY_SECRET_ARN: stack.address_key_secret_arn,
            Env.PROVIDERS: json.dumps(providers),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        self.calls: list[str] = []
        self.secrets_read: list[str] = []
        session = boto3.session.Session()
        session.events.register("before-call", self._record)
        session.events.register("before-parameter-build.secrets-manager.GetSecretValue", self._record_secret)
        self.service = build_provider_feedback_service(ProviderWebhookSettings.from_env(), session=session)
        monkeypatch.setattr(provider_webhook, "service", lambda: self.service)
        self.dynamodb = boto3.client("dynamodb")
        DynamoMessageLog(self.dynamodb, stack.messages_table, ttl_days=1).record(
            [
                Outcome(
                    request_id=REQUEST_ID,
                    status="sent",
                    lane="standard",
                    ses_message_id="Lli-03HcQ5-JLybO9fXsJg",
                    category="marketing",
                    user_id="user-1",
                    completed_at=1_700_000_000.0,
                    provider="sendgrid",
                )
            ]
        )

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(f"{model.service_model.service_name}.{model.name}")

    def _record_secret(self, params: dict[str, Any], **_: Any) -> None:
        self.secrets_read.append(params["SecretId"])

    def address_hash(self, address: str) -> str:
        return address_hasher(self.stack.address_key_secret_arn, self.stack.suppression_table).address_hash(address)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        event = {
            "version": "2.0",
            "rawPath": path,
            "headers": headers,
            "requestContext": {"http": {"method": "POST", "path": path}},
            "body": base64.b64encode(body).decode(),
            "isBase64Encoded": True,
        }
        response = provider_webhook.handler(event, FakeLambdaContext("mailwright-provider-webhook"))
        return response["statusCode"], json.loads(response["body"])

    def sendgrid(
        self, events: list[dict[str, Any]], *, key: ec.EllipticCurvePrivateKey | None = None
    ) -> tuple[int, dict[str, Any]]:
        body = json.dumps(events).encode()
        stamp = str(int(time.time()))
        signature = (key or self.private).sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        headers = {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }
        return self.post("/sendgrid", body, headers)

    def items(self, table: str) -> int:
        return len(self.dynamodb.scan(TableName=table)["Items"])


@pytest.fixture
def webhook(stack: StackResources, monkeypatch: pytest.MonkeyPatch) -> Webhook:
    return Webhook(stack, monkeypatch)


def sg_event(kind: str, email: str = "jane@example.com", **extra: Any) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp": 1_700_000_100,
        "event": kind,
        "sg_event_id": secrets.token_urlsafe(16),
        "sg_message_id": "Lli-03HcQ5-JLybO9fXsJg.filter0077p1las1.21536.5717FC482.0",
        "request_id": REQUEST_ID,
        "lane": "standard",
        "category": "marketing",
        **extra,
    }


def test_signed_sendgrid_feedback_reaches_every_table(webhook: Webhook, capsys: pytest.CaptureFixture[str]) -> None:
    events = [
        sg_event("delivered", response="250 OK"),
        sg_event("bounce", "gone@example.com", type="bounce", status="5.1.1", reason="550 5.1.1 unknown user"),
        sg_event("unsubscribe"),
    ]

    status, body = webhook.sendgrid(events)

    assert (status, body["applied"], body["failed"]) == (200, 3, 0)
    suppressions = DynamoSuppressionStore(webhook.dynamodb, webhook.stack.suppression_table)
    gone = webhook.address_hash("gone@example.com")
    assert suppressions.get_many({gone})[gone].reason == "BOUNCE"
    preferences = DynamoPreferenceStore(webhook.dynamodb, webhook.stack.preferences_table).get_many({"user-1"})
    assert preferences["user-1"].opted_out == frozenset({"marketing"})
    logged = DynamoMessageLog(webhook.dynamodb, webhook.stack.messages_table, ttl_days=1).get(REQUEST_ID)
    assert logged is not None and logged["provider"] == "sendgrid"
    assert [event["status"] for event in logged["events"]] == ["delivered", "bounced", "unsubscribed"]
    assert "gone@example.com" not in json.dumps(logged)  # masked in the log
    assert '"FeedbackBounce"' in capsys.readouterr().out  # EMF metrics of what was applied

    # Redelivered: nothing is applied twice.
    writes_before = webhook.calls.count("dynamodb.TransactWriteItems") + webhook.calls.count("dynamodb.UpdateItem")
    status, body = webhook.sendgrid(events)
    assert (status, body["applied"], body["duplicates"]) == (200, 0, 3)
    writes_after = webhook.calls.count("dynamodb.TransactWriteItems") + webhook.calls.count("dynamodb.UpdateItem")
    assert writes_after == writes_before
    # The verification key and the address keyring were read once each for the container.
    assert sorted(webhook.secrets_read) == sorted([webhook.sendgrid_arn, webhook.stack.address_key_secret_arn])


def test_forged_sendgrid_feedback_changes_nothing(webhook: Webhook) -> None:
    before = {
        table: webhook.items(table) for table in (webhook.stack.suppression_table, webhook.stack.idempotency_table)
    }

    status, _ = webhook.sendgrid(
        [sg_event("bounce", "victim@example.com", type="bounce")], key=ec.generate_private_key(ec.SECP256R1())
    )
    unsigned, _ = webhook.post(
        "/sendgrid", json.dumps([sg_event("spamreport")]).encode(), {"Content-Type": "application/json"}
    )

    assert (status, unsigned) == (403, 401)
    assert {table: webhook.items(table) for table in before} == before


def test_signed_mailgun_feedback_is_applied_once_per_token(webhook: Webhook) -> None:
    stamp, token = str(int(time.time())), secrets.token_hex(25)
    signature = hmac.new(MAILGUN_KEY.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    payload = {
        "signature": {"timestamp": stamp, "token": token, "signature": signature},
        "event-data": {
            "event": "complained",
            "id": "ncV2XwymRUKbPek_MIM-Gw",
            "timestamp": time.time(),
            "recipient": "angry@example.com",
            "message": {"headers": {"message-id": "20240101.1@mg.example.com"}},
            "user-variables": {"request_id": REQUEST_ID, "lane": "standard", "category": "marketing"},
        },
    }
    headers = {"Content-Type": "application/json"}

    first, _ = webhook.post("/mailgun", json.dumps(payload).encode(), headers)
    forged = {**payload, "event-data": {**payload["event-data"], "recipient": "victim@example.com"}}
    again, body = webhook.post("/mailgun", json.dumps(forged).encode(), headers)

    assert (first, again, body["duplicates"]) == (200, 200, 1)
    suppressions = DynamoSuppressionStore(webhook.dynamodb, webhook.stack.suppression_table)
    angry, victim = webhook.address_hash("angry@example.com"), webhook.address_hash("victim@example.com")
    found = suppressions.get_many({angry, victim})
    assert set(found) == {angry} and found[angry].scope == "non_essential"
