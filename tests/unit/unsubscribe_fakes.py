"""In-memory preferences for the unsubscribe tests: both ports, with the DynamoDB adapter's semantics."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from mailwright.constants import Keys
from mailwright.ports import Preferences
from mailwright.preferences import PreferenceService, UnsubscribeService
from mailwright.tokens import TokenSigner
from mailwright_tools.fakes import StaticAddressKeys

KEY = b"unit-test-signing-key-0123456789"
NOW = 1_700_000_000.0


class MemoryPreferences:
    """PreferenceStore and PreferenceWriter over a dict of items, keeping attributes they do not set."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.writes = 0

    def put(self, user_id: str, **attributes: Any) -> None:
        """Store an item as another writer (the producer, the CLI) would."""
        self.items[user_id] = {Keys.PREFERENCES_PK: user_id, **attributes}

    def _preferences(self, item: dict[str, Any]) -> Preferences:
        return Preferences(
            user_id=item[Keys.PREFERENCES_PK],
            unsubscribed_all=bool(item.get("unsubscribed_all", False)),
            opted_out=frozenset(item.get("opted_out") or ()),
            locale=item.get("locale"),
        )

    def get_many(self, user_ids: Collection[str]) -> dict[str, Preferences]:
        """Preferences of the users that have an item."""
        return {u: self._preferences(self.items[u]) for u in user_ids if u in self.items}

    def add_opt_out(self, user_id: str, category: str, *, source: str, updated_at: float) -> Preferences:
        """ADD to the opted_out set."""
        self.writes += 1
        item = self.items.setdefault(user_id, {Keys.PREFERENCES_PK: user_id})
        item["opted_out"] = set(item.get("opted_out") or ()) | {category}
        item.update(updated_at=updated_at, source=source)
        return self._preferences(item)

    def set_choices(
        self, user_id: str, *, opted_out: frozenset[str], unsubscribed_all: bool, source: str, updated_at: float
    ) -> Preferences:
        """SET the choices; an empty set removes the attribute, as DynamoDB requires."""
        self.writes += 1
        item = self.items.setdefault(user_id, {Keys.PREFERENCES_PK: user_id})
        item["unsubscribed_all"] = unsubscribed_all
        if opted_out:
            item["opted_out"] = set(opted_out)
        else:
            item.pop("opted_out", None)
        item.update(updated_at=updated_at, source=source)
        return self._preferences(item)


def build(
    signer: TokenSigner | None = None, address_keys: StaticAddressKeys | None = None
) -> tuple[UnsubscribeService, MemoryPreferences, TokenSigner]:
    """An UnsubscribeService over fresh in-memory preferences, with a fixed clock."""
    memory = MemoryPreferences()
    signer = signer or TokenSigner(KEY)
    preferences = PreferenceService(memory, memory, address_keys=address_keys or StaticAddressKeys(), clock=lambda: NOW)
    service = UnsubscribeService(preferences, signer.verify)
    return service, memory, signer
