"""The email request: what producers publish, and the single source of truth for its schema.

The seed article's producer format is valid as it is::

    {"recipient_email": "jane@example.com",
     "template_id": "order_confirmation",
     "template_data": {"order_id": "XYZ789", "total_amount": "$49.99"}}

`schemas/email-request.schema.json` is generated from `EmailRequest` by
`python -m mailwright.request` for producers in other languages.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mailwright.addresses import InvalidAddressError, normalize_address
from mailwright.constants import CANCEL_KEY_PATTERN, LANES, MAX_SCHEDULE_AHEAD_SECONDS, PRODUCER_PATTERN
from mailwright.errors import RejectedError
from mailwright.iso_times import date_time_text
from mailwright.quiet_hours import InvalidTimezoneError, valid_timezone

# SES message tags allow only these characters; metadata becomes tags.
_TAG_TEXT = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
# `producer` is a tag of its own (the request's producer field), so metadata may not take the name.
RESERVED_TAGS = frozenset({"template", "category", "request_id", "lane", "variant", "producer", "ses", "aws"})
MAX_METADATA_TAGS = 10

Priority = Literal["critical", "standard", "bulk"]
assert set(LANES) == {"critical", "standard", "bulk"}


class EmailRequest(BaseModel):
    """Send template `template_id` to `recipient_email`, filled with `template_data`."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    recipient_email: str = Field(
        description="Recipient address. Normalised (trimmed, lower-cased) before use.",
        examples=["jane@example.com"],
        max_length=320,
    )
    template_id: str = Field(
        description="Template directory name under templates/.",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        examples=["order_confirmation"],
    )
    template_data: dict[str, Any] = Field(
        default_factory=dict, description="Variables for the template; every required variable must be present."
    )
    user_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Key for preferences and per-user limits. Defaults to a keyed hash of the normalised address.",
    )
    locale: str | None = Field(
        default=None,
        description="BCP 47 locale such as fr-CA; falls back fr-CA -> fr -> the template's default.",
        examples=["fr-CA"],
    )
    priority: Priority | None = Field(
        default=None, description="Lane to route through; defaults to the template's priority."
    )
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Requests with the same key are sent once. Defaults to a hash of the request's content.",
    )
    template_version: str | None = Field(
        default=None, min_length=1, max_length=1024, description="Pin a template version (S3 object version id)."
    )
    metadata: dict[str, str] = Field(
        default_factory=dict,
        description="String tags passed to SES and the message log (letters, digits, _ and -; at most 10).",
    )
    timezone: str | None = Field(
        default=None,
        max_length=64,
        description="The recipient's IANA time zone (e.g. Europe/Paris), for quiet hours when their preferences "
        "hold none.",
        examples=["Europe/Paris"],
    )
    producer: str | None = Field(
        default=None,
        pattern=PRODUCER_PATTERN,
        description="The producer that published the request: the HTTPS API sets it from the caller's API key "
        "(a request through it may name only its own). Recorded in the message log, tagged on the email, and "
        "part of the request id, so two producers' idempotency keys never collide.",
        examples=["billing"],
    )
    digest_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
        description="Fold this request into a digest: requests for the same user and key within the digest "
        "template's window (template.json `digest`) become one email listing their template_data as `items`.",
        examples=["comments"],
    )

    send_at: datetime | None = Field(
        default=None,
        description="Send at this time (ISO 8601 with a UTC offset or Z, at most a year ahead); a time already "
        "past means now. Without it, the request is sent as soon as it is dequeued.",
        examples=["2026-12-24T09:00:00+01:00"],
    )
    cancel_key: str | None = Field(
        default=None,
        pattern=CANCEL_KEY_PATTERN,
        description="A key of the producer's choosing (letters, digits, _ . : -; at most 128) that "
        "`mailwright cancel --key` cancels every request published with it before the cancel.",
        examples=["order-1234-reminders"],
    )

    @model_validator(mode="after")
    def _encodable(self) -> EmailRequest:
        # JSON allows lone surrogates ("\ud800"); they cannot be encoded, hashed or mailed.
        try:
            json.dumps(self.template_data, ensure_ascii=False, default=str).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("template_data holds text that is not valid Unicode (a lone surrogate)") from None
        return self

    @field_validator("recipient_email")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        try:
            return normalize_address(value)
        except InvalidAddressError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("locale")
    @classmethod
    def _valid_locale(cls, value: str | None) -> str | None:
        return None if value is None else normalize_locale(value)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return valid_timezone(value)
        except InvalidTimezoneError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("send_at", mode="before")
    @classmethod
    def _send_at_text(cls, value: Any) -> Any:
        # Pydantic would take a number, or a string of digits, as epoch seconds: the contract is ISO 8601 text.
        return date_time_text(value)

    @field_validator("send_at")
    @classmethod
    def _valid_send_at(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("send_at needs a UTC offset, e.g. 2026-12-24T09:00:00+01:00 or 2026-12-24T08:00:00Z")
        ahead = value.timestamp() - datetime.now(UTC).timestamp()
        if ahead > MAX_SCHEDULE_AHEAD_SECONDS:
            raise ValueError(f"send_at is at most {MAX_SCHEDULE_AHEAD_SECONDS // 86400} days ahead")
        return value

    @field_validator("metadata")
    @classmethod
    def _valid_metadata(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_METADATA_TAGS:
            raise ValueError(f"at most {MAX_METADATA_TAGS} metadata entries")
        for key, item in value.items():
            if key.lower() in RESERVED_TAGS:
                raise ValueError(f"metadata key {key!r} is reserved")
            if not _TAG_TEXT.match(key) or not _TAG_TEXT.match(item):
                raise ValueError(f"metadata {key!r}: keys and values may hold only letters, digits, _ and -")
        return value

    @property
    def request_id(self) -> str:
        """Stable id of this request: the same for every delivery of it, so duplicates collapse."""
        if self.idempotency_key is not None:
            # A producer's keys are its own (a producer name holds no ":"); without one, ids stay as they were.
            scope = "" if self.producer is None else f"producer:{self.producer}:"
            basis = scope + "key:" + self.idempotency_key
        else:
            basis = "content:" + _canonical(self.model_dump(exclude_none=True, exclude_defaults=True))
        return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]

    @property
    def content_hash(self) -> str:
        """Hash of everything that shapes the email; tells a reused idempotency key from a redelivery."""
        payload = self.model_dump(exclude={"idempotency_key"}, exclude_none=True, exclude_defaults=True)
        return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()[:32]


def normalize_locale(value: str) -> str:
    """A BCP 47 locale as mailwright stores it (fr_ca -> fr-CA); raise ValueError when it is not one."""
    if not _LOCALE.match(value.replace("_", "-")):
        raise ValueError("a locale looks like en, fr or fr-CA")
    language, *rest = value.replace("_", "-").split("-")
    return "-".join([language.lower(), *(part.upper() if len(part) == 2 else part for part in rest)])


def _canonical(payload: dict[str, Any]) -> str:
    # Key order must not change a request's identity: {"a":1,"b":2} == {"b":2,"a":1}.
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def describe_validation_error(error: ValidationError) -> str:
    """One readable line per problem, e.g. `template_data: Input should be a valid dictionary`."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "request"
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def parse_request(body: str | bytes | dict[str, Any]) -> EmailRequest:
    """Parse a queue message body into a request; raise RejectedError with a readable reason."""
    if isinstance(body, (str, bytes)):
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RejectedError("invalid_json", f"message body is not JSON ({exc})") from None
        except RecursionError:
            raise RejectedError("invalid_json", "message body is nested too deeply") from None
    else:
        data = body
    if not isinstance(data, dict):
        raise RejectedError("invalid_request", "message body must be a JSON object")
    try:
        return EmailRequest.model_validate(data)
    except ValidationError as exc:
        bad_address = any(e["loc"] == ("recipient_email",) and e["type"] != "missing" for e in exc.errors())
        code = "invalid_address" if bad_address else "invalid_request"
        raise RejectedError(code, describe_validation_error(exc)) from None


def request_json_schema() -> dict[str, Any]:
    """The JSON Schema of EmailRequest, as committed under schemas/."""
    schema = EmailRequest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/mailwright/mailwright/schemas/email-request.schema.json"
    return schema


def main() -> None:
    """Print the request JSON Schema (`python -m mailwright.request > schemas/email-request.schema.json`)."""
    sys.stdout.write(json.dumps(request_json_schema(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
