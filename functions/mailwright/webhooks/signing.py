"""Standard Webhooks signatures (https://www.standardwebhooks.com): a few lines of HMAC-SHA256.

A delivery carries `webhook-id` (stable across retries), `webhook-timestamp`
(epoch seconds of this attempt) and `webhook-signature`: `v1,<base64 HMAC-SHA256
of "{id}.{timestamp}.{body}">`, one per signing key, space-separated. While a
secret is rotated, both keys sign, so receivers holding either verify.

Secrets are written `whsec_<base64 of the key>`. Each endpoint's secret lives
in Secrets Manager as JSON: `{"key": "whsec_..."}`, plus `"previous_key"`
during a rotation (bare base64 is accepted too: that is the form
CloudFormation generates).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from mailwright.webhooks.errors import WebhookSecretError

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of the secret format, not a secret
SIGNATURE_VERSION = "v1"
# 24 bytes: 192 bits, written in 32 base64 characters.
KEY_BYTES = 24
CURRENT_KEY = "key"
PREVIOUS_KEY = "previous_key"


def decode_secret(secret: str) -> bytes:
    """The key bytes of a `whsec_<base64>` secret (or bare base64); WebhookSecretError when it is not one."""
    text = secret.strip()
    if text.startswith(SECRET_PREFIX):
        text = text[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookSecretError("a webhook secret must be whsec_ followed by base64") from None
    if len(key) < 16:
        raise WebhookSecretError("a webhook secret must hold at least 16 bytes of key")
    return key


def encode_secret(key: bytes) -> str:
    """The `whsec_<base64>` form of a key."""
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def new_secret() -> str:
    """A fresh random secret, `whsec_` form."""
    return encode_secret(secrets.token_bytes(KEY_BYTES))


def secret_document(current: str, previous: str | None = None) -> str:
    """The JSON an endpoint's secret holds in Secrets Manager."""
    document = {CURRENT_KEY: current}
    if previous:
        document[PREVIOUS_KEY] = previous
    return json.dumps(document)


def secrets_from_document(document: str) -> list[str]:
    """The `whsec_` secrets a Secrets Manager value names (current first); WebhookSecretError when malformed."""
    try:
        data = json.loads(document)
    except ValueError:
        raise WebhookSecretError("the webhook secret is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get(CURRENT_KEY), str):
        raise WebhookSecretError(f"the webhook secret has no {CURRENT_KEY!r}")
    found = [data[CURRENT_KEY]]
    if isinstance(data.get(PREVIOUS_KEY), str) and data[PREVIOUS_KEY]:
        found.append(data[PREVIOUS_KEY])
    return [encode_secret(decode_secret(secret)) for secret in found]


@dataclass(frozen=True)
class Signer:
    """Signs deliveries with one key, or two during a rotation."""

    keys: tuple[bytes, ...]

    @classmethod
    def from_secrets(cls, secrets_: Sequence[str]) -> Signer:
        """A signer for `whsec_` secrets (current first)."""
        if not secrets_:
            raise WebhookSecretError("no signing secret")
        return cls(tuple(decode_secret(secret) for secret in secrets_))

    def signature(self, webhook_id: str, timestamp: int, body: bytes) -> str:
        """The `webhook-signature` header: `v1,<base64>` per key, space-separated."""
        message = f"{webhook_id}.{timestamp}.".encode() + body
        return " ".join(
            f"{SIGNATURE_VERSION},{base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode('ascii')}"
            for key in self.keys
        )

    def headers(self, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        """The three Standard Webhooks headers of one attempt."""
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": self.signature(webhook_id, timestamp, body),
        }
