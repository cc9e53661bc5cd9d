"""Search cursors: where a paginated search by recipient stopped, opaque to callers and tamper-evident.

A search reads one index partition per readable address-key version (the
current hash and the older ones items may still be stored under) and merges
them newest first. The cursor records, per key version still to read, the last
entry consumed (null: none yet); a version it leaves out was read to its end::

    <base64url(JSON positions)>.<base64url(HMAC-SHA256 over the JSON and the query)[:16 bytes]>

The MAC covers the query the cursor belongs to (the recipient's current
hash, `since`, who asks), so a cursor cannot be replayed against another
address or widened to another producer's requests, and any edit is refused.
It carries only request ids and times the caller has already been shown.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mailwright.ports import IndexEntry

CURSOR_VERSION = 1
MAC_BYTES = 16
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


class CursorError(ValueError):
    """The cursor is malformed, was changed, or belongs to another query (or an older key)."""


@dataclass(frozen=True)
class SearchCursor:
    """Per address-key version still to read, the last entry consumed (None: none yet); finished ones are left out."""

    positions: Mapping[int, IndexEntry | None]


class CursorCodec:
    """Encodes and verifies search cursors with an HMAC key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a cursor key must be at least 16 bytes")
        self._key = key

    def encode(self, cursor: SearchCursor, *, query: str) -> str:
        """The opaque form of `cursor` for the query named by `query` (any string identifying it)."""
        positions = {
            str(version): None if entry is None else [entry.completed_at, entry.request_id]
            for version, entry in sorted(cursor.positions.items())
        }
        payload = json.dumps({"v": CURSOR_VERSION, "p": positions}, separators=(",", ":")).encode("utf-8")
        return f"{_b64(payload)}.{_b64(self._mac(payload, query))}"

    def decode(self, token: str, *, query: str) -> SearchCursor:
        """The cursor in `token`; raise CursorError unless it is intact and was made for this query."""
        body, _, mac = token.partition(".")
        if not body or not mac or not _B64URL.match(body) or not _B64URL.match(mac):
            raise CursorError("the cursor is not one this API gave out")
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            raise CursorError("the cursor is not one this API gave out") from None
        if not hmac.compare_digest(given, self._mac(payload, query)):
            raise CursorError("the cursor was changed, belongs to another search, or the address keys were rotated")
        try:
            data = json.loads(payload)
            if data["v"] != CURSOR_VERSION:
                raise ValueError("version")
            positions = {int(version): _entry(value) for version, value in data["p"].items()}
        except (ValueError, TypeError, KeyError, AttributeError):
            # Signed by us yet unreadable: a cursor of another release.
            raise CursorError("the cursor is from another version of the API; start the search again") from None
        return SearchCursor(positions)

    def _mac(self, payload: bytes, query: str) -> bytes:
        message = payload + b"\n" + query.encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).digest()[:MAC_BYTES]


def _entry(value: object) -> IndexEntry | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError("position")
    completed_at, request_id = value
    if isinstance(completed_at, bool) or not isinstance(completed_at, (int, float)):
        raise ValueError("position time")
    if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
        raise ValueError("position request id")
    return IndexEntry(request_id=request_id, completed_at=float(completed_at))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    # Strict: a re-encoding of the same bytes with other trailing bits is not the same cursor.
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("non-canonical base64url")
    return data
