"""Signed unsubscribe tokens."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from mailwright.tokens import InvalidTokenError, TokenSigner, UnsubscribeClaim

KEY = b"k" * 32
NOW = 1_700_000_000.0


@pytest.fixture
def signer() -> TokenSigner:
    """A signer with a fixed key."""
    return TokenSigner(KEY)


def _flip(text: str, index: int) -> str:
    """`text` with one base64url character changed."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def test_sign_and_verify_round_trip(signer: TokenSigner) -> None:
    token = signer.sign("user-1", "marketing", now=NOW, days=30)
    assert signer.verify(token, now=NOW) == UnsubscribeClaim("user-1", "marketing", int(NOW) + 30 * 86400)


def test_user_ids_with_separators_round_trip(signer: TokenSigner) -> None:
    token = signer.sign("a|b|c", "product", now=NOW)
    claim = signer.verify(token, now=NOW)
    assert (claim.user_id, claim.category) == ("a|b|c", "product")


def test_token_is_url_safe(signer: TokenSigner) -> None:
    token = signer.sign("user/+=?&1", "marketing", now=NOW)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_tampered_payload_is_rejected(signer: TokenSigner) -> None:
    payload, signature = signer.sign("user-1", "marketing", now=NOW).split(".")
    with pytest.raises(InvalidTokenError, match="altered"):
        signer.verify(f"{_flip(payload, 0)}.{signature}", now=NOW)


def test_payload_swapped_for_another_users_is_rejected(signer: TokenSigner) -> None:
    _, signature = signer.sign("user-1", "marketing", now=NOW).split(".")
    other_payload, _ = signer.sign("user-2", "marketing", now=NOW).split(".")
    with pytest.raises(InvalidTokenError):
        signer.verify(f"{other_payload}.{signature}", now=NOW)


def test_tampered_signature_is_rejected(signer: TokenSigner) -> None:
    payload, signature = signer.sign("user-1", "marketing", now=NOW).split(".")
    with pytest.raises(InvalidTokenError):
        signer.verify(f"{payload}.{_flip(signature, 3)}", now=NOW)


@pytest.mark.parametrize("token", ["", "no-dot", "a.b.c", "!!!.???", "\u00e9.\u00e9"])
def test_garbled_tokens_are_rejected(signer: TokenSigner, token: str) -> None:
    with pytest.raises(InvalidTokenError):
        signer.verify(token, now=NOW)


def test_expired_token_is_rejected(signer: TokenSigner) -> None:
    token = signer.sign("user-1", "marketing", now=NOW, days=1)
    assert signer.verify(token, now=NOW + 86400).user_id == "user-1"
    with pytest.raises(InvalidTokenError, match="expired"):
        signer.verify(token, now=NOW + 86400 + 1)


def test_token_of_another_key_is_rejected(signer: TokenSigner) -> None:
    token = TokenSigner(b"x" * 32).sign("user-1", "marketing", now=NOW)
    with pytest.raises(InvalidTokenError):
        signer.verify(token, now=NOW)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        TokenSigner(b"short")


@pytest.mark.parametrize("base_url", ["https://example.com/unsubscribe", "https://example.com/u?lang=fr"])
def test_links_carry_a_token_that_verifies(signer: TokenSigner, base_url: str) -> None:
    links = signer.links(base_url, "user-1", "marketing")

    unsubscribe = urlsplit(links["unsubscribe_url"])
    preferences = urlsplit(links["preferences_url"])
    assert links["unsubscribe_url"].startswith(base_url)
    assert unsubscribe.scheme == "https"
    for url in (unsubscribe, preferences):
        (token,) = parse_qs(url.query)["token"]
        claim = signer.verify(token)
        assert (claim.user_id, claim.category) == ("user-1", "marketing")
    assert parse_qs(preferences.query)["view"] == ["preferences"]
    assert "view" not in parse_qs(unsubscribe.query)
