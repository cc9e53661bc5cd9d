"""Unsubscribe tokens: user, category and expiry, encrypted and authenticated.

Links in emails carry a token, so the unsubscribe endpoint needs no login and a
forged or edited link does nothing. A token is `m2.<base64url>`: a random
96-bit nonce and the AES-256-GCM encryption of `user_id|category|expires_at`
under a key derived (HKDF-SHA256) from the unsubscribe secret. Whoever sees a
link learns nothing about the recipient: not the user id, not an address hash.

Tokens made before encryption (`<payload>.<signature>`: the payload readable,
signed with HMAC-SHA256 under the same secret) are still accepted until their
own expiry, at most 365 days after they were sent; nothing new is signed that
way. Base64url is decoded strictly: a character outside its alphabet, padding
or a non-canonical final character makes a token invalid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

DEFAULT_TOKEN_DAYS = 365
TOKEN_PREFIX = "m2"  # noqa: S105 - the format marker of encrypted tokens, not a secret
NONCE_BYTES = 12
# Binds the ciphertext to its use: a token cannot be replayed as anything else encrypted under this key.
ASSOCIATED_DATA = b"mailwright unsubscribe token v2"
_KEY_INFO = b"mailwright unsubscribe token encryption v2"
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class InvalidTokenError(ValueError):
    """The token is malformed, tampered with, or expired."""


class ExpiredTokenError(InvalidTokenError):
    """The token is genuine but past its expiry."""


@dataclass(frozen=True)
class UnsubscribeClaim:
    """What a valid token says: this user may change this category until `expires_at`."""

    user_id: str
    category: str
    expires_at: int
    # Made before tokens were encrypted: its user id may be a legacy address-derived key.
    legacy: bool = False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict base64url without padding: anything but the one canonical spelling of some bytes is refused."""
    if not _BASE64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not canonical base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:  # unused low bits of the last character were set
        raise ValueError("not canonical base64url")
    return data


class TokenSigner:
    """Makes and checks unsubscribe tokens with one secret key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the unsubscribe signing key must be at least 16 bytes")
        self._key = key
        self._aead: AESGCM | None = None

    def _cipher(self) -> AESGCM:
        # Imported on first use: the workers sign links only for product and marketing mail.
        if self._aead is None:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF

            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO).derive(self._key)
            self._aead = AESGCM(key)
        return self._aead

    def sign(self, user_id: str, category: str, *, now: float | None = None, days: int = DEFAULT_TOKEN_DAYS) -> str:
        """A token letting `user_id` change `category` for `days` days."""
        expires = int((time.time() if now is None else now) + days * 86400)
        payload = f"{user_id}|{category}|{expires}".encode()
        nonce = os.urandom(NONCE_BYTES)
        return f"{TOKEN_PREFIX}.{_b64(nonce + self._cipher().encrypt(nonce, payload, ASSOCIATED_DATA))}"

    def verify(self, token: str, *, now: float | None = None) -> UnsubscribeClaim:
        """The claim inside a token; raise InvalidTokenError when it is forged, garbled or expired."""
        try:
            first, second = token.split(".")
            blob = _unb64(second)
            legacy_payload = None if first == TOKEN_PREFIX else _unb64(first)
        except (ValueError, TypeError):
            raise InvalidTokenError("the link is garbled") from None
        payload = self._decrypt(blob) if legacy_payload is None else self._check_legacy(legacy_payload, blob)
        try:
            user_id, category, expires = payload.decode("utf-8").rsplit("|", 2)
            expires_at = int(expires)
        except ValueError:
            raise InvalidTokenError("the link is garbled") from None
        if expires_at < (time.time() if now is None else now):
            raise ExpiredTokenError("the link has expired")
        return UnsubscribeClaim(user_id, category, expires_at, legacy=legacy_payload is not None)

    def _decrypt(self, blob: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag

        if len(blob) <= NONCE_BYTES + 16:
            raise InvalidTokenError("the link is garbled")
        try:
            return self._cipher().decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], ASSOCIATED_DATA)
        except InvalidTag:
            raise InvalidTokenError("the link was altered") from None

    def _check_legacy(self, payload: bytes, signature: bytes) -> bytes:
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()
        if not hmac.compare_digest(signature, expected):
            raise InvalidTokenError("the link was altered")
        return payload

    def links(self, base_url: str, user_id: str, category: str) -> dict[str, str]:
        """The `unsubscribe_url` and `preferences_url` for one user and category."""
        token = self.sign(user_id, category)
        separator = "&" if "?" in base_url else "?"
        return {
            "unsubscribe_url": f"{base_url}{separator}{urlencode({'token': token})}",
            "preferences_url": f"{base_url}{separator}{urlencode({'token': token, 'view': 'preferences'})}",
        }
