"""Keyed address hashes: the keyring, the chain of key versions, and carrying old hashes forward."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from mailwright.address_keys import (
    AddressHasher,
    AddressKeyring,
    KeyringError,
    hash_version,
    legacy_address_hash,
    legacy_user_key,
    user_key_version,
)
from mailwright.addresses import InvalidAddressError

K1 = b"first-key-0123456789abcdef"
K2 = b"second-key-0123456789abcdef"
ONE = AddressKeyring({1: K1}, current=1)
TWO = AddressKeyring({1: K1, 2: K2}, current=2)


def test_legacy_hash_is_the_unkeyed_sha256_of_the_normalised_address() -> None:
    assert legacy_address_hash(" Jane@Example.com ") == hashlib.sha256(b"jane@example.com").hexdigest()
    assert legacy_user_key("jane@example.com") == "addr:" + hashlib.sha256(b"jane@example.com").hexdigest()[:40]


def test_current_hash_is_a_keyed_hash_that_needs_the_key() -> None:
    hasher = AddressHasher(ONE, readable_from=1)
    legacy = legacy_address_hash("jane@example.com")
    expected = "k1-" + hmac.new(K1, legacy.encode(), hashlib.sha256).hexdigest()
    assert hasher.address_hash("JANE@example.com") == expected
    # Another deployment's key gives another hash: a stolen table cannot be matched against guesses.
    other = AddressHasher(AddressKeyring({1: b"another-deployment-key-000"}, current=1))
    assert other.address_hash("jane@example.com") != expected
    assert hasher.address_hash("john@example.com") != expected


def test_hashes_list_every_readable_version_newest_first() -> None:
    legacy = legacy_address_hash("jane@example.com")
    v1 = AddressHasher(ONE).address_hash("jane@example.com")
    everything = AddressHasher(TWO, readable_from=0).address_hashes("jane@example.com")
    assert everything[1:] == (v1, legacy)
    assert everything[0].startswith("k2-")
    assert AddressHasher(TWO, readable_from=2).address_hashes("jane@example.com") == everything[:1]
    assert AddressHasher(TWO, readable_from=1).address_hashes("jane@example.com") == everything[:2]


def test_stored_hashes_of_any_version_are_carried_forward_without_the_address() -> None:
    hasher = AddressHasher(TWO)
    current = hasher.address_hash("jane@example.com")
    assert hasher.upgrade_hash(legacy_address_hash("jane@example.com")) == current
    assert hasher.upgrade_hash(AddressHasher(ONE).address_hash("jane@example.com")) == current
    assert hasher.upgrade_hash(current) == current
    assert [hash_version(h) for h in hasher.address_hashes("jane@example.com")] == [2, 1, 0]
    with pytest.raises(ValueError, match="not an address hash"):
        hash_version("audit#abc")


def test_user_keys_of_old_links_reach_the_current_key() -> None:
    hasher = AddressHasher(TWO, readable_from=0)
    legacy = legacy_user_key("jane@example.com")
    current = hasher.user_key("jane@example.com")
    assert current.startswith("addr:k2-") and len(current) == len("addr:k2-") + 40
    assert hasher.upgrade_user_id(legacy) == current
    assert hasher.user_keys("jane@example.com")[-1] == legacy
    assert user_key_version(legacy) == 0 and user_key_version(current) == 2
    # A producer's own user id has one form, whatever it looks like.
    assert hasher.user_key_forms("user-42") == ("user-42",)
    assert hasher.upgrade_user_id("addr:not-a-hash") == "addr:not-a-hash"


def test_a_link_older_than_what_is_readable_still_maps_to_the_current_key() -> None:
    hasher = AddressHasher(TWO, readable_from=2)
    legacy = legacy_user_key("jane@example.com")
    assert hasher.user_key_forms(legacy) == (hasher.user_key("jane@example.com"),)


def test_keyring_parses_the_secret_and_refuses_bad_ones() -> None:
    keyring = AddressKeyring.from_json(json.dumps({"current": "2", "1": K1.decode(), "2": K2.decode()}))
    assert keyring.current == 2 and keyring.keys[1] == K1
    with pytest.raises(KeyringError, match="not JSON"):
        AddressKeyring.from_json("{")
    with pytest.raises(KeyringError, match="current"):
        AddressKeyring.from_json(json.dumps({"1": K1.decode()}))
    with pytest.raises(KeyringError, match="no key for its current version 2"):
        AddressKeyring.from_json(json.dumps({"current": "2", "1": K1.decode()}))
    with pytest.raises(KeyringError, match=r"lacks versions \[1\]"):
        AddressKeyring.from_json(json.dumps({"current": "2", "2": K2.decode()}))
    with pytest.raises(KeyringError, match="at least 16 bytes"):
        AddressKeyring.from_json(json.dumps({"current": "1", "1": "short"}))
    with pytest.raises(KeyringError, match="whole numbers"):
        AddressKeyring.from_json(json.dumps({"current": "one", "one": K1.decode()}))


def test_invalid_addresses_are_refused() -> None:
    with pytest.raises(InvalidAddressError):
        AddressHasher(ONE).address_hash("not an address")
