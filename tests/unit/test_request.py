"""The request contract: parsing, validation, identity and the committed JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mailwright.errors import RejectedError
from mailwright.request import MAX_METADATA_TAGS, EmailRequest, parse_request, request_json_schema

SEED_WELCOME = {
    "recipient_email": "john.doe@example.com",
    "template_id": "welcome_email",
    "template_data": {"user_name": "John", "login_link": "https://your-app.com/login"},
}
SEED_ORDER = {
    "recipient_email": "jane.smith@example.com",
    "template_id": "order_confirmation",
    "template_data": {"order_id": "XYZ789", "total_amount": "$49.99"},
}
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "email-request.schema.json"
REGENERATE = "PYTHONPATH=functions .venv/bin/python -m mailwright.request > schemas/email-request.schema.json"


def request(**fields: Any) -> dict[str, Any]:
    """The seed welcome request with some fields replaced."""
    return {**SEED_WELCOME, **fields}


def rejection(body: str | bytes | dict[str, Any]) -> RejectedError:
    """The RejectedError that parsing `body` raises."""
    with pytest.raises(RejectedError) as caught:
        parse_request(body)
    return caught.value


# -- the seed article's producer format ---------------------------------


@pytest.mark.parametrize("message", [SEED_WELCOME, SEED_ORDER], ids=["welcome_email", "order_confirmation"])
def test_seed_article_messages_parse_unchanged(message: dict[str, Any]) -> None:
    # Given the JSON a producer from the seed article publishes
    body = json.dumps(message)

    # When the worker parses it
    parsed = parse_request(body)

    # Then every field comes through as sent, and the optional ones are unset
    assert parsed.recipient_email == message["recipient_email"]
    assert parsed.template_id == message["template_id"]
    assert parsed.template_data == message["template_data"]
    assert (parsed.user_id, parsed.locale, parsed.priority, parsed.idempotency_key) == (None, None, None, None)
    assert parsed.metadata == {}


def test_bytes_and_dict_bodies_parse_like_text() -> None:
    text = parse_request(json.dumps(SEED_ORDER))
    assert parse_request(json.dumps(SEED_ORDER).encode("utf-8")) == text
    assert parse_request(dict(SEED_ORDER)) == text


# -- addresses ----------------------------------------------------------


def test_recipient_is_trimmed_and_lower_cased() -> None:
    parsed = parse_request(request(recipient_email="  John.Doe@Example.COM \t"))
    assert parsed.recipient_email == "john.doe@example.com"


@pytest.mark.parametrize(
    "address",
    [
        "john.example.com",
        "john@@example.com",
        "john@doe@example.com",
        "john doe@example.com",
        "john@exa mple.com",
        "john@example.com\r\nBcc: victim@example.com",
        "john@example.com\nBcc: victim@example.com",
        "john\r@example.com",
        "john@-example.com",
        "john@example",
        "john@example.c",
        "john@example.123",
        "john@exam_ple.com",
        "john@.example.com",
        "@example.com",
        "john@",
        ".john@example.com",
        "jo..hn@example.com",
        "a" * 65 + "@example.com",
        "a@" + "b" * 250 + ".com",
        "a@" + ".".join(["b" * 63] * 4) + ".com",
        "",
    ],
)
def test_invalid_addresses_are_rejected_as_invalid_address(address: str) -> None:
    error = rejection(request(recipient_email=address))
    assert error.code == "invalid_address"
    assert "recipient_email" in error.message


def test_non_string_address_is_an_invalid_address() -> None:
    assert rejection(request(recipient_email=42)).code == "invalid_address"


def test_missing_address_is_an_invalid_request_not_a_bad_address() -> None:
    body = {k: v for k, v in SEED_WELCOME.items() if k != "recipient_email"}
    error = rejection(body)
    assert error.code == "invalid_request"
    assert "recipient_email: Field required" in error.message


# -- other fields -------------------------------------------------------


def test_unknown_fields_are_rejected() -> None:
    error = rejection(request(recipient="john@example.com"))
    assert error.code == "invalid_request"
    assert "recipient" in error.message


@pytest.mark.parametrize("field", ["template_id", "template_data"])
def test_bad_template_fields_are_invalid_requests(field: str) -> None:
    bad = {"template_id": "../etc/passwd", "template_data": ["not", "a", "dict"]}[field]
    error = rejection(request(**{field: bad}))
    assert error.code == "invalid_request"
    assert error.message.startswith(field)


@pytest.mark.parametrize("priority", ["critical", "standard", "bulk"])
def test_priority_accepts_the_lanes(priority: str) -> None:
    assert parse_request(request(priority=priority)).priority == priority


@pytest.mark.parametrize("priority", ["urgent", "CRITICAL", "", 1])
def test_priority_rejects_anything_else(priority: object) -> None:
    assert rejection(request(priority=priority)).code == "invalid_request"


@pytest.mark.parametrize(
    ("given", "normalised"),
    [("fr_ca", "fr-CA"), ("FR-ca", "fr-CA"), ("FR", "fr"), ("en-US", "en-US"), (" de ", "de"), ("zh-hant", "zh-hant")],
)
def test_locale_is_normalised(given: str, normalised: str) -> None:
    assert parse_request(request(locale=given)).locale == normalised


@pytest.mark.parametrize("locale", ["f", "french!", "fr--CA", "fr-", "12", "fr-CA-x\n"])
def test_malformed_locales_are_rejected(locale: str) -> None:
    assert rejection(request(locale=locale)).code == "invalid_request"


def test_metadata_strings_are_accepted() -> None:
    metadata = {"campaign": "spring-2025", "source_app": "web_1"}
    assert parse_request(request(metadata=metadata)).metadata == metadata


@pytest.mark.parametrize("key", ["template", "category", "request_id", "lane", "ses", "aws", "Template", "LANE"])
def test_metadata_reserved_keys_are_rejected(key: str) -> None:
    error = rejection(request(metadata={key: "x"}))
    assert error.code == "invalid_request"
    assert "reserved" in error.message


@pytest.mark.parametrize(
    "metadata",
    [
        {"ses:campaign": "x"},
        {"campaign": "spring 2025"},
        {"campaign": "a/b"},
        {"campaign": ""},
        {"": "x"},
        {"campaign": "x" * 257},
        {"campaign": "caf\u00e9"},
        {"campaign": "a\r\nb"},
    ],
)
def test_metadata_with_characters_ses_refuses_is_rejected(metadata: dict[str, str]) -> None:
    assert rejection(request(metadata=metadata)).code == "invalid_request"


def test_metadata_values_must_be_strings() -> None:
    assert rejection(request(metadata={"count": 3})).code == "invalid_request"


def test_metadata_is_limited_in_number() -> None:
    allowed = {f"k{i}": "v" for i in range(MAX_METADATA_TAGS)}
    assert parse_request(request(metadata=allowed)).metadata == allowed
    error = rejection(request(metadata={**allowed, "one_more": "v"}))
    assert f"at most {MAX_METADATA_TAGS}" in error.message


@pytest.mark.parametrize("user_id", ["", "a\nb", "x" * 129])
def test_bad_user_ids_are_rejected(user_id: str) -> None:
    assert rejection(request(user_id=user_id)).code == "invalid_request"


# -- identity -----------------------------------------------------------


def test_request_id_ignores_key_order() -> None:
    # Given the same request twice, its keys (top level and in template_data) in different orders
    first = '{"recipient_email": "a@example.com", "template_id": "t", "template_data": {"x": 1, "y": {"p": 1, "q": 2}}}'
    second = (
        '{"template_data": {"y": {"q": 2, "p": 1}, "x": 1}, "template_id": "t", "recipient_email": "a@example.com"}'
    )

    # Then both deliveries are the same request
    assert parse_request(first).request_id == parse_request(second).request_id
    assert parse_request(first).content_hash == parse_request(second).content_hash


def test_request_id_is_the_same_for_every_delivery_and_address_spelling() -> None:
    assert parse_request(SEED_WELCOME).request_id == parse_request(json.dumps(SEED_WELCOME)).request_id
    assert (
        parse_request(request(recipient_email=" JOHN.doe@example.com")).request_id
        == parse_request(SEED_WELCOME).request_id
    )


@pytest.mark.parametrize(
    "change",
    [
        {"template_data": {"user_name": "Johnny", "login_link": "https://your-app.com/login"}},
        {"recipient_email": "john.roe@example.com"},
        {"template_id": "password_reset"},
        {"locale": "fr"},
        {"user_id": "u-1"},
        {"priority": "bulk"},
        {"metadata": {"campaign": "x"}},
        {"template_version": "v2"},
    ],
)
def test_request_id_changes_with_content(change: dict[str, Any]) -> None:
    assert parse_request(request(**change)).request_id != parse_request(SEED_WELCOME).request_id


def test_idempotency_key_drives_request_id() -> None:
    # Given two requests with different content but the same key, and one with another key
    first = parse_request(request(idempotency_key="order-123"))
    other_content = parse_request(
        request(idempotency_key="order-123", template_data={"user_name": "X", "login_link": "y"})
    )
    other_key = parse_request(request(idempotency_key="order-124"))

    # Then the key alone decides the request id
    assert first.request_id == other_content.request_id
    assert first.request_id != other_key.request_id
    assert first.request_id != parse_request(SEED_WELCOME).request_id


def test_content_hash_ignores_idempotency_key_but_not_content() -> None:
    keyed = parse_request(request(idempotency_key="order-123"))
    plain = parse_request(SEED_WELCOME)
    assert keyed.content_hash == plain.content_hash
    changed = parse_request(request(idempotency_key="order-123", locale="fr"))
    assert changed.content_hash != keyed.content_hash


# -- parse_request errors -----------------------------------------------


@pytest.mark.parametrize("body", ["not json", "{", "", b"\xff\xfe\x00garbage", "{'single': 'quotes'}"])
def test_non_json_bodies_are_invalid_json(body: str | bytes) -> None:
    assert rejection(body).code == "invalid_json"


def test_body_nested_beyond_the_parsers_limit_is_invalid_json() -> None:
    # 5000 levels is 10 kB, far below SQS's message size limit, and beyond json's recursion limit.
    assert rejection("[" * 5000 + "]" * 5000).code == "invalid_json"


def test_lone_surrogate_is_rejected_or_gets_an_identity() -> None:
    # `\ud800` is a valid JSON escape but no Unicode character; it must not crash the worker later.
    body = json.dumps(request(template_data={"user_name": "\ud800", "login_link": "x"}))
    try:
        parsed = parse_request(body)
    except RejectedError as exc:
        result = exc.code
    else:
        result = f"ids {len(parsed.request_id)}/{len(parsed.content_hash)}"
    assert result in {"invalid_json", "invalid_request", "ids 32/32"}


@pytest.mark.parametrize("body", ["[]", "[1, 2]", '"a string"', "42", "null", "true"])
def test_non_object_bodies_are_invalid_requests(body: str) -> None:
    error = rejection(body)
    assert error.code == "invalid_request"
    assert "JSON object" in error.message


def test_validation_errors_name_every_field_at_fault() -> None:
    error = rejection({"recipient_email": "x@example.com", "template_id": "BAD ID", "template_data": 1})
    assert "template_id:" in error.message
    assert "template_data:" in error.message


def test_request_is_immutable() -> None:
    parsed = parse_request(SEED_WELCOME)
    with pytest.raises(ValueError):
        parsed.template_id = "other"  # type: ignore[misc]


# -- JSON Schema ----------------------------------------------------------


def test_committed_schema_matches_the_model() -> None:
    assert SCHEMA_FILE.is_file(), f"{SCHEMA_FILE.name} is missing; generate it with: {REGENERATE}"
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    generated = json.loads(json.dumps(request_json_schema()))
    assert committed == generated, (
        f"{SCHEMA_FILE.name} is out of date with EmailRequest; regenerate it with: {REGENERATE}"
    )


def test_schema_describes_the_seed_fields_and_forbids_others() -> None:
    schema = request_json_schema()
    assert schema["required"] == ["recipient_email", "template_id"]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(EmailRequest.model_fields)
