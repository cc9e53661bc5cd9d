"""Consent changes: what a recipient may change through an unsubscribe link, and how.

`PreferenceService` is the user-level domain (read, opt out, replace choices)
over the preference ports; `UnsubscribeService` is what the unsubscribe
endpoint does with it: every call first checks the link's signed token, which
is the only authorisation there is (no login, no cookies).

Essential categories (security, transactional) are never opted out: a one-click
request for one is refused, and a preference form naming one is ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from mailwright.constants import CATEGORIES, ESSENTIAL_CATEGORIES
from mailwright.ports import AddressKeySource, Preferences, PreferenceStore, PreferenceWriter
from mailwright.tokens import UnsubscribeClaim

# Where a change came from, recorded with it: an RFC 8058 POST from a mail
# client, or the page a recipient opens from a link.
SOURCE_ONE_CLICK = "one_click"
SOURCE_PREFERENCE_CENTER = "preference_center"

# The categories a recipient can turn off, in display order.
OPTIONAL_CATEGORIES: tuple[str, ...] = tuple(c for c in CATEGORIES if c not in ESSENTIAL_CATEGORIES)

# What a change did, for the page to confirm it.
DONE_UNSUBSCRIBED = "unsubscribed"
DONE_SAVED = "saved"
DONE_UNSUBSCRIBED_ALL = "unsubscribed_all"


class CategoryNotAllowedError(ValueError):
    """The category cannot be opted out of: it is essential, or not a category at all."""

    def __init__(self, category: str) -> None:
        reason = "is essential" if category in ESSENTIAL_CATEGORIES else "is not a known category"
        super().__init__(f"{category!r} {reason}")
        self.category = category


class PreferenceService:
    """Reads and changes one user's consent through the preference ports.

    A user id derived from an address may be given in any key version (an old
    link carries an old one): it is read in every readable version and merged
    (consent only narrows). An opt-out is written under the current key; a
    saved form, which may also lift opt-outs, is written to every stored form,
    so the merge never keeps a choice the user undid. Nothing is deleted: the
    migration command folds older items in.
    """

    def __init__(
        self,
        store: PreferenceStore,
        writer: PreferenceWriter,
        *,
        address_keys: AddressKeySource,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._writer = writer
        self._address_keys = address_keys
        self._clock = clock

    def get(self, user_id: str) -> Preferences:
        """The user's preferences; a user without a record receives everything."""
        forms = self._address_keys.hasher().user_key_forms(user_id)
        found = self._store.get_many(set(forms))
        preferences = Preferences(forms[0])
        for form in forms:
            if form in found:
                preferences = preferences.merged(found[form])
        return preferences

    def opt_out(self, user_id: str, category: str, *, source: str = SOURCE_ONE_CLICK) -> Preferences:
        """Stop mail of one category; raise CategoryNotAllowedError for an essential or unknown one."""
        if category not in OPTIONAL_CATEGORIES:
            raise CategoryNotAllowedError(category)
        current = self._address_keys.hasher().user_key_forms(user_id)[0]
        self._writer.add_opt_out(current, category, source=source, updated_at=self._clock())
        return self.get(user_id)

    def update(
        self,
        user_id: str,
        *,
        opted_out: Collection[str],
        unsubscribed_all: bool,
        source: str = SOURCE_PREFERENCE_CENTER,
    ) -> Preferences:
        """Replace the user's choices; essential and unknown categories in `opted_out` are ignored."""
        kept = frozenset(opted_out) & frozenset(OPTIONAL_CATEGORIES)
        current, *older = self._address_keys.hasher().user_key_forms(user_id)
        stored = self._store.get_many(set(older)) if older else {}
        for form in [current, *(form for form in older if form in stored)]:
            self._writer.set_choices(
                form, opted_out=kept, unsubscribed_all=unsubscribed_all, source=source, updated_at=self._clock()
            )
        return self.get(user_id)


@dataclass(frozen=True)
class PreferenceView:
    """What the unsubscribe page shows: whose preferences, from which link, and what just changed."""

    claim: UnsubscribeClaim
    preferences: Preferences
    done: str | None = None

    def receives(self, category: str) -> bool:
        """Whether mail of `category` currently reaches the user."""
        return self.preferences.allows(category)


TokenVerifier = Callable[[str], UnsubscribeClaim]


class UnsubscribeService:
    """The unsubscribe endpoint's domain: each call checks the token, then reads or changes preferences.

    Every method raises `mailwright.tokens.InvalidTokenError` for a forged,
    garbled or expired token, before anything is read or written.
    """

    def __init__(self, preferences: PreferenceService, verify: TokenVerifier) -> None:
        self._preferences = preferences
        self._verify = verify

    def view(self, token: str) -> PreferenceView:
        """The link's user and category with the current preferences; changes nothing."""
        claim = self._verify(token)
        return PreferenceView(claim, self._preferences.get(claim.user_id))

    def one_click(self, token: str, *, source: str = SOURCE_ONE_CLICK) -> PreferenceView:
        """Opt the user out of the link's category (RFC 8058, or the page's unsubscribe button)."""
        claim = self._verify(token)
        preferences = self._preferences.opt_out(claim.user_id, claim.category, source=source)
        return PreferenceView(claim, preferences, DONE_UNSUBSCRIBED)

    def save(self, token: str, *, receive: Collection[str], unsubscribe_all: bool = False) -> PreferenceView:
        """Apply the preference form: mail of the `receive` categories only, or no optional mail at all.

        Saving the form is the user's whole answer, so it also lifts an earlier
        "unsubscribe from all" unless `unsubscribe_all` is set again.
        """
        claim = self._verify(token)
        opted_out = frozenset(OPTIONAL_CATEGORIES) - frozenset(receive)
        preferences = self._preferences.update(claim.user_id, opted_out=opted_out, unsubscribed_all=unsubscribe_all)
        return PreferenceView(claim, preferences, DONE_UNSUBSCRIBED_ALL if unsubscribe_all else DONE_SAVED)
