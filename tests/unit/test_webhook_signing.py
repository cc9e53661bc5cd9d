"""Webhook signatures, checked with the Standard Webhooks reference library (an independent implementation)."""

from __future__ import annotations

import json
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from mailwright.webhooks.errors import WebhookSecretError
from mailwright.webhooks.signing import (
    Signer,
    decode_secret,
    encode_secret,
    new_secret,
    secret_document,
    secrets_from_document,
)

BODY = json.dumps({"type": "EmailBounced", "timestamp": "2026-01-01T00:00:00.000Z", "data": {"request_id": "r"}})


def test_a_signature_verifies_with_the_reference_library() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    now = int(time.time())
    headers = Signer.from_secrets([secret]).headers("evt-1", now, BODY.encode())
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_a_changed_body_id_or_timestamp_does_not_verify() -> None:
    secret = new_secret()
    now = int(time.time())
    headers = Signer.from_secrets([secret]).headers("evt-1", now, BODY.encode())
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace("EmailBounced", "EmailSent"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "evt-2"})
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-timestamp": str(now - 1)})


def test_an_old_timestamp_is_refused_by_receivers_so_each_attempt_signs_afresh() -> None:
    secret = new_secret()
    stale = Signer.from_secrets([secret]).headers("evt-1", int(time.time()) - 600, BODY.encode())
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, stale)


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    new, old = new_secret(), new_secret()
    headers = Signer.from_secrets([new, old]).headers("evt-1", int(time.time()), BODY.encode())
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert all(part.startswith("v1,") for part in headers["webhook-signature"].split(" "))
    Webhook(new).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_the_secret_document_holds_the_current_and_previous_secret() -> None:
    current, previous = new_secret(), new_secret()
    assert secrets_from_document(secret_document(current)) == [current]
    assert secrets_from_document(secret_document(current, previous)) == [current, previous]


def test_a_generated_alphanumeric_key_is_a_valid_secret() -> None:
    # CloudFormation generates 32 letters and digits: valid base64 for 24 bytes of key.
    generated = "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
    [secret] = secrets_from_document(json.dumps({"key": generated}))
    assert secret == "whsec_" + generated
    assert decode_secret(secret) == decode_secret(generated)
    headers = Signer.from_secrets([secret]).headers("evt-1", int(time.time()), BODY.encode())
    Webhook(secret).verify(BODY, headers)


@pytest.mark.parametrize("bad", ["", "whsec_", "whsec_not base64!", "whsec_c2hvcnQ=", "{}"])
def test_malformed_secrets_are_refused(bad: str) -> None:
    with pytest.raises(WebhookSecretError):
        decode_secret(bad)


@pytest.mark.parametrize("document", ["not json", "{}", '{"key": 5}', "[]"])
def test_malformed_secret_documents_are_refused(document: str) -> None:
    with pytest.raises(WebhookSecretError):
        secrets_from_document(document)


def test_encode_and_decode_are_inverse() -> None:
    key = bytes(range(24))
    assert decode_secret(encode_secret(key)) == key
