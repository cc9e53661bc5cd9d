"""HTTP for Lambda function URLs: read a payload format 2.0 event, build responses with security headers.

Function URLs deliver form posts as the raw body (base64 when Lambda deems
it binary) and lower-case header names. RFC 8058 one-click POSTs may come as
`application/x-www-form-urlencoded` or as `multipart/form-data`, so both are parsed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs

# More fields than any of our forms has: a bigger body is not ours and is not parsed.
MAX_FORM_FIELDS = 50

# Every response: no scripts, frames, images or fonts, styles only inline, forms
# only back to this origin; nothing cached (pages show a user's consent), no
# Referer (the URL holds the token).
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class WebRequest:
    """The parts of a function URL request the endpoint reads."""

    method: str
    query: dict[str, list[str]] = field(default_factory=dict)
    form: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> WebRequest:
        """Read a payload format 2.0 event (Lambda function URL or HTTP API)."""
        http = (event.get("requestContext") or {}).get("http") or {}
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        raw_query = event.get("rawQueryString")
        if raw_query is not None:
            query = _parse_urlencoded(str(raw_query))
        else:  # queryStringParameters joins repeated keys with commas: only a fallback
            query = {str(k): [str(v)] for k, v in (event.get("queryStringParameters") or {}).items()}
        method = str(http.get("method", "")).upper()
        form = parse_form(_body(event), headers.get("content-type", "")) if method == "POST" else {}
        return cls(method=method, query=query, form=form, headers=headers)

    def form_value(self, name: str) -> str | None:
        """The first value of a form field, or None."""
        values = self.form.get(name)
        return values[0] if values else None

    def query_value(self, name: str) -> str | None:
        """The first value of a query parameter, or None."""
        values = self.query.get(name)
        return values[0] if values else None


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return b""
    return str(body).encode("utf-8")


def _parse_urlencoded(text: str) -> dict[str, list[str]]:
    try:
        return parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        return {}


def parse_form(body: bytes, content_type: str) -> dict[str, list[str]]:
    """Fields of a urlencoded or multipart/form-data body; anything else (or garbage) gives no fields."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in ("", "application/x-www-form-urlencoded"):
        return _parse_urlencoded(body.decode("utf-8", "replace"))
    if media_type != "multipart/form-data":
        return {}
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        return {}
    fields: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            continue
        payload = part.get_payload(decode=True)
        value = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        fields.setdefault(name, []).append(value.strip("\r\n"))
        if sum(len(v) for v in fields.values()) > MAX_FORM_FIELDS:
            return {}
    return fields


def response(status: int, body: str, content_type: str, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A function URL response carrying the security headers."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_type, **SECURITY_HEADERS, **(extra or {})},
        "body": body,
        "isBase64Encoded": False,
    }
