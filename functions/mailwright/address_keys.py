"""Keyed address hashes: how mailwright looks addresses up without storing them.

A plain SHA-256 of an address lets anyone who sees the hash confirm a guessed
address. mailwright keys every address hash with a per-deployment secret
(HMAC-SHA256), versioned so the key can rotate:

    version 0 (legacy, unkeyed)   h0 = sha256(address)                      u0 = "addr:" + h0[:40]
    version n (key k_n)           hn = "k<n>-" + HMAC(k_n, h<n-1>)          un = "addr:k<n>-" + HMAC(k_n, u<n-1>)[:40]

Each version is a keyed hash of the one before, so a stored hash or user key
of any older version can be carried forward to the current one without the
address (`upgrade_hash`, `upgrade_user_id`): the migration command re-keys
stored items, and an unsubscribe link signed with a legacy user key still
reaches the right preferences. Whoever holds only the stored hashes learns
nothing without the key.

The keyring lives in Secrets Manager as JSON, `{"current": "1", "1": "<key>"}`;
rotating adds `"2": "<new key>"` and sets `"current": "2"`. Older keys stay, for
the chain. `readable_from` is the oldest version items may still be stored
under (0 until `mailwright migrate address-hashes` has re-keyed the legacy
items): lookups try every version from it up to the current one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mailwright.addresses import normalize_address

LEGACY_VERSION = 0
USER_KEY_PREFIX = "addr:"
# A stored hash or user key names its version: `k3-<hex>`; a bare hex value is version 0.
_VERSIONED = re.compile(r"^k(?P<version>[1-9][0-9]{0,5})-(?P<digest>[0-9a-f]+)$")
_LEGACY_HASH = re.compile(r"^[0-9a-f]{64}$")
_LEGACY_USER = re.compile(r"^addr:[0-9a-f]{40}$")
USER_KEY_HEX = 40
MIN_KEY_BYTES = 16


class KeyringError(ValueError):
    """The address keyring is malformed (missing current key, a short key, a non-numeric version)."""


@dataclass(frozen=True)
class AddressKeyring:
    """The HMAC keys by version (1, 2, ...) and which one is current."""

    keys: Mapping[int, bytes]
    current: int

    def __post_init__(self) -> None:
        if self.current < 1 or self.current not in self.keys:
            raise KeyringError(f"the address keyring has no key for its current version {self.current}")
        missing = [v for v in range(1, self.current + 1) if v not in self.keys]
        if missing:
            # Every version up to the current one is a link of the chain.
            raise KeyringError(f"the address keyring lacks versions {missing}: keep every older key")
        short = [v for v, key in self.keys.items() if len(key) < MIN_KEY_BYTES]
        if short:
            raise KeyringError(f"address keys must be at least {MIN_KEY_BYTES} bytes (versions {short})")

    @classmethod
    def from_json(cls, text: str) -> AddressKeyring:
        """Parse the secret's JSON, `{"current": "1", "1": "<key>"}`; raise KeyringError when malformed."""
        try:
            data = json.loads(text)
        except ValueError:
            raise KeyringError("the address keyring secret is not JSON") from None
        if not isinstance(data, dict) or "current" not in data:
            raise KeyringError('the address keyring secret needs a "current" version')
        keys: dict[int, bytes] = {}
        try:
            current = int(data["current"])
            for name, value in data.items():
                if name != "current":
                    keys[int(name)] = str(value).encode("utf-8")
        except (TypeError, ValueError):
            raise KeyringError("address keyring versions must be whole numbers") from None
        return cls(keys=keys, current=current)


class AddressHasher:
    """Hashes addresses (and address-derived user keys) with a keyring; knows which versions may be stored."""

    def __init__(self, keyring: AddressKeyring, *, readable_from: int = LEGACY_VERSION) -> None:
        self.keyring = keyring
        self.readable_from = max(LEGACY_VERSION, min(readable_from, keyring.current))

    @property
    def current(self) -> int:
        """The version every new hash is written with."""
        return self.keyring.current

    # -- addresses --------------------------------------------------------

    def address_hash(self, address: str) -> str:
        """The current keyed hash of an address: the suppression key."""
        return self.address_hashes(address)[0]

    def address_hashes(self, address: str) -> tuple[str, ...]:
        """Every form the address may be stored under: the current one first, then older readable ones."""
        chain = [legacy_address_hash(address)]
        for version in range(1, self.current + 1):
            chain.append(self._step(version, chain[-1], hex_chars=None))
        return tuple(reversed(chain[self.readable_from :]))

    def upgrade_hash(self, stored: str) -> str:
        """Carry a stored address hash of any version forward to the current one."""
        version = hash_version(stored)
        value = stored
        for step in range(version + 1, self.current + 1):
            value = self._step(step, value, hex_chars=None)
        return value

    # -- user keys (preferences and rate limits of users without a user_id) -

    def user_key(self, address: str) -> str:
        """The current preference and rate-limit key of a recipient who has no user_id."""
        return self.user_keys(address)[0]

    def user_keys(self, address: str) -> tuple[str, ...]:
        """Every form the user key may be stored under: the current one first, then older readable ones."""
        return self.user_key_forms(legacy_user_key(address))

    def user_key_forms(self, user_id: str) -> tuple[str, ...]:
        """`user_id` carried forward to the current version, then each older readable form down to it.

        A producer's own user id is not address-derived and has one form.
        """
        version = user_key_version(user_id)
        if version is None:
            return (user_id,)
        chain = [user_id]
        for step in range(version + 1, self.current + 1):
            chain.append(USER_KEY_PREFIX + self._step(step, chain[-1], hex_chars=USER_KEY_HEX))
        readable = [
            key for key, v in zip(chain, range(version, self.current + 1), strict=True) if v >= self.readable_from
        ]
        return tuple(reversed(readable or chain[-1:]))

    def upgrade_user_id(self, user_id: str) -> str:
        """Carry an address-derived user key of any version forward; other user ids are returned as they are."""
        return self.user_key_forms(user_id)[0]

    def _step(self, version: int, previous: str, *, hex_chars: int | None) -> str:
        digest = hmac.new(self.keyring.keys[version], previous.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"k{version}-{digest[:hex_chars] if hex_chars else digest}"


def legacy_address_hash(address: str) -> str:
    """Version 0: the unkeyed SHA-256 of the normalised address, as stored before keys existed."""
    return hashlib.sha256(normalize_address(address).encode("utf-8")).hexdigest()


def legacy_user_key(address: str) -> str:
    """Version 0 of an address-derived user key: `addr:` and 40 hex characters of the legacy hash."""
    return USER_KEY_PREFIX + legacy_address_hash(address)[:USER_KEY_HEX]


def hash_version(stored: str) -> int:
    """The key version of a stored address hash; raise ValueError for a value that is not one."""
    match = _VERSIONED.match(stored)
    if match:
        return int(match["version"])
    if _LEGACY_HASH.match(stored):
        return LEGACY_VERSION
    raise ValueError("not an address hash")


def user_key_version(user_id: str) -> int | None:
    """The key version of an address-derived user key, or None for a producer's own user id."""
    if _LEGACY_USER.match(user_id):
        return LEGACY_VERSION
    if user_id.startswith(USER_KEY_PREFIX):
        match = _VERSIONED.match(user_id[len(USER_KEY_PREFIX) :])
        if match and len(match["digest"]) == USER_KEY_HEX:
            return int(match["version"])
    return None
