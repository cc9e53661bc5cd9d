"""Unsubscribe tokens: encrypted, authenticated, strictly decoded; links made before encryption still work."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

import pytest

from mailwright.tokens import ExpiredTokenError, InvalidTokenError, TokenSigner, UnsubscribeClaim

KEY = b"k" * 32
NOW = 1_700_000_000.0
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture
def signer() -> TokenSigner:
    """A signer with a fixed key."""
    return TokenSigner(KEY)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def legacy_token(user_id: str, category: str, expires_at: int, key: bytes = KEY) -> str:
    """A token as mailwright signed them before they were encrypted: readable payload, HMAC signature."""
    payload = f"{user_id}|{category}|{expires_at}".encode()
    return f"{_b64(payload)}.{_b64(hmac.new(key, payload, hashlib.sha256).digest())}"


def _flip(text: str, index: int) -> str:
    """`text` with one base64url character changed."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def test_sign_and_verify_round_trip(signer: TokenSigner) -> None:
    token = signer.sign("user-1", "marketing", now=NOW, days=30)
    assert signer.verify(token, now=NOW) == UnsubscribeClaim("user-1", "marketing", int(NOW) + 30 * 86400)


def test_token_reveals_nothing_about_the_user(signer: TokenSigner) -> None:
    user_id = "addr:k1-0123456789abcdef0123456789abcdef01234567"
    first = signer.sign(user_id, "marketing", now=NOW)
    second = signer.sign(user_id, "marketing", now=NOW)
    # A fresh nonce each time: two links of one user cannot even be matched with each other.
    assert first != second
    blob = base64.urlsafe_b64decode(first.split(".")[1] + "==")
    for secret in (user_id.encode(), b"0123456789abcdef", b"marketing", str(int(NOW) + 365 * 86400).encode()):
        assert secret not in blob
        assert _b64(secret)[:8] not in first


def test_user_ids_with_separators_round_trip(signer: TokenSigner) -> None:
    claim = signer.verify(signer.sign("a|b|c", "product", now=NOW), now=NOW)
    assert (claim.user_id, claim.category) == ("a|b|c", "product")


def test_token_is_url_safe(signer: TokenSigner) -> None:
    token = signer.sign("user/+=?&1", "marketing", now=NOW)
    assert set(token) <= set(ALPHABET + ".")


@pytest.mark.parametrize("index", [0, 5, 20, -1])
def test_any_changed_character_is_rejected(signer: TokenSigner, index: int) -> None:
    prefix, blob = signer.sign("user-1", "marketing", now=NOW).split(".")
    with pytest.raises(InvalidTokenError):
        signer.verify(f"{prefix}.{_flip(blob, index)}", now=NOW)


def test_ciphertext_of_another_user_cannot_be_spliced(signer: TokenSigner) -> None:
    _, first = signer.sign("user-1", "marketing", now=NOW).split(".")
    _, second = signer.sign("user-2", "marketing", now=NOW).split(".")
    spliced = first[:20] + second[20:]
    with pytest.raises(InvalidTokenError):
        signer.verify(f"m2.{spliced}", now=NOW)


@pytest.mark.parametrize("suffix", ["!!", "=", "==", " ", "%21", ".", "\u00e9"])
def test_characters_outside_base64url_are_rejected(signer: TokenSigner, suffix: str) -> None:
    token = signer.sign("user-1", "marketing", now=NOW)
    with pytest.raises(InvalidTokenError):
        signer.verify(token + suffix, now=NOW)


def test_non_canonical_final_character_is_rejected(signer: TokenSigner) -> None:
    # A final character whose unused low bits are set decodes to the same bytes: a second spelling.
    token = signer.sign("user-1", "marketing", now=NOW)
    while len(token.split(".")[1]) % 4 not in (2, 3):
        token = signer.sign("user-1x", "marketing", now=NOW)
    prefix, blob = token.split(".")
    last = ALPHABET.index(blob[-1])
    unused_bits = 4 if len(blob) % 4 == 2 else 2
    twin = blob[:-1] + ALPHABET[last | ((1 << unused_bits) - 1)]
    assert twin != blob and base64.urlsafe_b64decode(twin + "=" * (-len(twin) % 4)) == base64.urlsafe_b64decode(
        blob + "=" * (-len(blob) % 4)
    )
    with pytest.raises(InvalidTokenError, match="garbled"):
        signer.verify(f"{prefix}.{twin}", now=NOW)


@pytest.mark.parametrize("token", ["", "no-dot", "a.b.c", "!!!.???", "\u00e9.\u00e9", "m2.", "m2.AAAA", "m2"])
def test_garbled_tokens_are_rejected(signer: TokenSigner, token: str) -> None:
    with pytest.raises(InvalidTokenError):
        signer.verify(token, now=NOW)


def test_truncated_token_is_rejected(signer: TokenSigner) -> None:
    token = signer.sign("user-1", "marketing", now=NOW)
    for cut in (4, 8, 12):
        with pytest.raises(InvalidTokenError):
            signer.verify(token[:-cut], now=NOW)


def test_expired_token_is_rejected(signer: TokenSigner) -> None:
    token = signer.sign("user-1", "marketing", now=NOW, days=1)
    assert signer.verify(token, now=NOW + 86400).user_id == "user-1"
    with pytest.raises(ExpiredTokenError, match="expired"):
        signer.verify(token, now=NOW + 86400 + 1)


def test_token_of_another_key_is_rejected(signer: TokenSigner) -> None:
    token = TokenSigner(b"x" * 32).sign("user-1", "marketing", now=NOW)
    with pytest.raises(InvalidTokenError, match="altered"):
        signer.verify(token, now=NOW)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        TokenSigner(b"short")


# -- links made before tokens were encrypted ------------------------------------


def test_legacy_links_still_work_until_they_expire(signer: TokenSigner) -> None:
    token = legacy_token("addr:" + "a" * 40, "marketing", int(NOW) + 86400)
    claim = signer.verify(token, now=NOW)
    assert claim == UnsubscribeClaim("addr:" + "a" * 40, "marketing", int(NOW) + 86400, legacy=True)
    with pytest.raises(ExpiredTokenError):
        signer.verify(token, now=NOW + 86400 + 1)


def test_legacy_links_are_checked_as_strictly(signer: TokenSigner) -> None:
    payload, signature = legacy_token("user-1", "marketing", int(NOW) + 86400).split(".")
    other_payload, _ = legacy_token("user-2", "marketing", int(NOW) + 86400).split(".")
    for forged in (
        f"{_flip(payload, 0)}.{signature}",
        f"{other_payload}.{signature}",
        f"{payload}.{_flip(signature, 3)}",
        f"{payload}.{signature}!!",
        f"{payload}!!.{signature}",
        legacy_token("user-1", "marketing", int(NOW) + 86400, key=b"x" * 32),
    ):
        with pytest.raises(InvalidTokenError):
            signer.verify(forged, now=NOW)


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
        assert (claim.user_id, claim.category, claim.legacy) == ("user-1", "marketing", False)
    assert parse_qs(preferences.query)["view"] == ["preferences"]
    assert "view" not in parse_qs(unsubscribe.query)
