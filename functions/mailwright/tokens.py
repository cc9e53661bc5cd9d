"""Signed unsubscribe tokens: HMAC-SHA256 over user, category and expiry.

A token is `<payload>.<signature>`, both base64url without padding, where the
payload is `user_id|category|expires_at`. Links in emails carry it, so the
unsubscribe endpoint needs no login and a forged or edited link does nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import urlencode

DEFAULT_TOKEN_DAYS = 365


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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Makes and checks unsubscribe tokens with one secret key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the unsubscribe signing key must be at least 16 bytes")
        self._key = key

    def sign(self, user_id: str, category: str, *, now: float | None = None, days: int = DEFAULT_TOKEN_DAYS) -> str:
        """A token letting `user_id` change `category` for `days` days."""
        expires = int((time.time() if now is None else now) + days * 86400)
        payload = f"{user_id}|{category}|{expires}".encode()
        signature = hmac.new(self._key, payload, hashlib.sha256).digest()
        return f"{_b64(payload)}.{_b64(signature)}"

    def verify(self, token: str, *, now: float | None = None) -> UnsubscribeClaim:
        """The claim inside a token; raise InvalidTokenError when it is forged, garbled or expired."""
        try:
            payload_part, signature_part = token.split(".")
            payload = _unb64(payload_part)
            signature = _unb64(signature_part)
        except (ValueError, TypeError):
            raise InvalidTokenError("the link is garbled") from None
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()
        if not hmac.compare_digest(signature, expected):
            raise InvalidTokenError("the link was altered")
        try:
            user_id, category, expires = payload.decode("utf-8").rsplit("|", 2)
            expires_at = int(expires)
        except ValueError:
            raise InvalidTokenError("the link is garbled") from None
        if expires_at < (time.time() if now is None else now):
            raise ExpiredTokenError("the link has expired")
        return UnsubscribeClaim(user_id=user_id, category=category, expires_at=expires_at)

    def links(self, base_url: str, user_id: str, category: str) -> dict[str, str]:
        """The `unsubscribe_url` and `preferences_url` for one user and category."""
        token = self.sign(user_id, category)
        separator = "&" if "?" in base_url else "?"
        return {
            "unsubscribe_url": f"{base_url}{separator}{urlencode({'token': token})}",
            "preferences_url": f"{base_url}{separator}{urlencode({'token': token, 'view': 'preferences'})}",
        }
