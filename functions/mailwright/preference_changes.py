"""Preferences changed by the producer (the CLI, the SDK, a bulk import): validated, guarded, audited.

The recipient changes their own preferences through the unsubscribe page
(`mailwright.preferences`); a producer changes them through `PreferenceAdmin`.
Every change a producer makes is written together with an audit record (when,
who, through what, why, what changed). An opt-out or unsubscribe the user
made themselves is theirs: lifting it takes `override_user_choice` and a note,
and the audit record says it was overridden.

Example::

    admin = build_preference_admin(preferences_table="mailwright-preferences", address_key_secret=ARN)
    admin.change("user-42", PreferenceChange(timezone="Europe/Paris", quiet_hours="21:00-08:00"),
                 actor="ops@example.com", source=SOURCE_CLI)
    admin.get("user-42").preferences.quiet_hours  # QuietHours(21:00-08:00)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace

from mailwright.address_keys import user_key_version
from mailwright.addresses import scrub_addresses
from mailwright.constants import CATEGORIES, ESSENTIAL_CATEGORIES
from mailwright.errors import MailwrightError, TransientError
from mailwright.ports import AddressKeySource, PreferenceAudit, PreferenceLedger, PreferenceRecord, Preferences
from mailwright.quiet_hours import QuietHours, valid_timezone

# Through what a producer's change came.
SOURCE_CLI = "cli"
SOURCE_SDK = "sdk"
SOURCE_IMPORT = "import"
SOURCE_API = "api"

# What `--timezone`, `--quiet-hours` and `--locale` take to clear a value.
CLEAR_VALUES = frozenset({"", "none", "off"})
# The audit trail's items live beside the users' (see mailwright.adapters.preferences).
RESERVED_PREFIX = "audit#"
_USER_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")
# As on the page (mailwright.preferences, which this module does not import: the SDK needs no page code).
OPTIONAL_CATEGORIES: tuple[str, ...] = tuple(c for c in CATEGORIES if c not in ESSENTIAL_CATEGORIES)
SAVE_ATTEMPTS = 5
NOTE_LIMIT = 500
ACTOR_LIMIT = 200


class PreferenceError(MailwrightError, ValueError):
    """A change that cannot be made as asked (bad value, conflicting options, bad user id): nothing was changed."""


class UserChoiceError(PreferenceError):
    """The change would lift an opt-out or unsubscribe the user made themselves, without an explicit override."""

    def __init__(self, user_id: str, lifted: Collection[str]) -> None:
        self.user_id = user_id
        self.lifted = tuple(sorted(lifted))
        super().__init__(
            f"{user_id} chose themselves not to get {', '.join(self.lifted)}: re-subscribing them needs "
            "override_user_choice (--override-user-choice) and a note saying why"
        )


@dataclass(frozen=True)
class PreferenceChange:
    """What to change; anything left None (or empty) stays as it is.

    `timezone`, `quiet_hours` and `locale` are cleared by "" (or "none").
    `unsubscribe_all` stops all optional mail; `resubscribe` lifts that.
    """

    locale: str | None = None
    timezone: str | None = None
    quiet_hours: str | None = None
    opt_out: frozenset[str] = frozenset()
    opt_in: frozenset[str] = frozenset()
    unsubscribe_all: bool = False
    resubscribe: bool = False

    def validated(self) -> PreferenceChange:
        """This change with values normalised; raise PreferenceError naming every problem."""
        from mailwright.request import normalize_locale

        problems: list[str] = []
        updates: dict[str, object] = {}
        for category in sorted(self.opt_out | self.opt_in):
            if category not in OPTIONAL_CATEGORIES:
                reason = "is essential" if category in ESSENTIAL_CATEGORIES else "is not a known category"
                problems.append(f"{category!r} {reason} (optional: {', '.join(OPTIONAL_CATEGORIES)})")
        both = self.opt_out & self.opt_in
        if both:
            problems.append(f"opt out of and opt in to the same category: {', '.join(sorted(both))}")
        if self.unsubscribe_all and self.resubscribe:
            problems.append("unsubscribe from all and resubscribe at once")
        if self.locale is not None and self.locale.strip().lower() not in CLEAR_VALUES:
            try:
                updates["locale"] = normalize_locale(self.locale.strip())
            except ValueError as exc:
                problems.append(f"locale {self.locale!r}: {exc}")
        if self.timezone is not None and self.timezone.strip().lower() not in CLEAR_VALUES:
            try:
                updates["timezone"] = valid_timezone(self.timezone)
            except ValueError as exc:
                problems.append(str(exc))
        if self.quiet_hours is not None and self.quiet_hours.strip().lower() not in CLEAR_VALUES:
            try:
                updates["quiet_hours"] = str(QuietHours.parse(self.quiet_hours))
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise PreferenceError("; ".join(problems))
        return replace(self, **updates)  # type: ignore[arg-type]

    @property
    def empty(self) -> bool:
        """Whether the change asks for nothing."""
        return self == PreferenceChange()


@dataclass(frozen=True)
class PreferenceState:
    """A user's preferences, merged over their stored forms, and which choices the user made themselves."""

    preferences: Preferences
    # Opt-outs the user made (the page, an unsubscribe link, a provider's unsubscribe); the rest are the producer's.
    own_opt_outs: frozenset[str] = frozenset()
    unsubscribed_by_user: bool = False
    updated_at: float | None = None
    source: str = ""
    stored: bool = False


@dataclass(frozen=True)
class ChangeResult:
    """The preferences after a change, and what it changed (nothing: `changes` is empty and nothing was written)."""

    state: PreferenceState
    changes: tuple[str, ...] = ()
    overrode_user_choice: bool = False
    audit: PreferenceAudit | None = field(default=None, compare=False)

    @property
    def changed(self) -> bool:
        """Whether anything was written."""
        return bool(self.changes)


def check_user_id(user_id: str) -> str:
    """`user_id` if a preferences key may be it; raise PreferenceError otherwise."""
    if not _USER_ID.match(user_id or ""):
        raise PreferenceError("a user id is 1 to 128 characters without control characters")
    if user_id.startswith(RESERVED_PREFIX):
        raise PreferenceError(f"user ids starting with {RESERVED_PREFIX!r} are reserved")
    return user_id


def _clean(text: str, limit: int) -> str:
    # Notes are typed by people and kept for good: no addresses in them.
    return scrub_addresses((text or "").strip())[:limit]


class PreferenceAdmin:
    """Reads and changes users' preferences for a producer, each change audited, over a PreferenceLedger.

    `address_keys` carries address-derived user ids (`addr:...`) to their
    current key version; without it only a producer's own user ids can be used.
    """

    def __init__(
        self,
        ledger: PreferenceLedger,
        *,
        address_keys: AddressKeySource | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._address_keys = address_keys
        self._clock = clock

    def get(self, user_id: str) -> PreferenceState:
        """The user's preferences (a user without a record receives everything) and who made their choices."""
        forms = self._forms(check_user_id(user_id))
        state, _ = self._state(forms, self._ledger.read(forms))
        return state

    def history(self, user_id: str) -> list[PreferenceAudit]:
        """Every audited producer change of the user's preferences, oldest first (every stored form)."""
        forms = self._forms(check_user_id(user_id))
        return sorted((record for form in forms for record in self._ledger.audit(form)), key=lambda r: r.at)

    def change(
        self,
        user_id: str,
        change: PreferenceChange,
        *,
        actor: str,
        source: str,
        note: str = "",
        override_user_choice: bool = False,
    ) -> ChangeResult:
        """Apply `change`, audited; raise PreferenceError for bad input, UserChoiceError to protect a user's choice.

        A change that changes nothing writes nothing (a re-run import is a no-op).
        """
        change = change.validated()
        actor = _clean(actor, ACTOR_LIMIT)
        if not actor:
            raise PreferenceError("a preference change needs an actor: who is making it")
        note = _clean(note, NOTE_LIMIT)
        forms = self._forms(check_user_id(user_id))
        for _ in range(SAVE_ATTEMPTS):
            stored = self._ledger.read(forms)
            before, producer = self._state(forms, stored)
            after, after_producer, lifted = _apply(before, producer, change)
            changes = _describe(before.preferences, after.preferences)
            if lifted and not override_user_choice:
                raise UserChoiceError(user_id, lifted)
            if lifted and not note:
                raise PreferenceError("overriding a user's own choice needs a note saying why (--note)")
            if not changes:
                return ChangeResult(state=before)
            now = self._clock()
            records = [
                (
                    PreferenceRecord(
                        preferences=replace(after.preferences, user_id=form),
                        producer_opt_outs=after_producer[0],
                        producer_unsubscribe=after_producer[1],
                        updated_at=now,
                        source=source,
                        version=(stored[form].version if form in stored else 0) + 1,
                    ),
                    stored[form].version if form in stored else None,
                )
                # A choice is lifted in every stored form, or the merge would keep it.
                for form in forms
                if form == forms[0] or form in stored
            ]
            audit = PreferenceAudit(
                user_id=forms[0],
                at=now,
                actor=actor,
                source=source,
                changes=changes,
                note=note,
                overrode_user_choice=bool(lifted),
            )
            if self._ledger.write(records, audit=audit):
                state = replace(after, updated_at=now, source=source, stored=True)
                return ChangeResult(state=state, changes=changes, overrode_user_choice=bool(lifted), audit=audit)
        raise TransientError("preferences_conflict", f"{user_id}: preferences kept changing; retry")

    def _forms(self, user_id: str) -> tuple[str, ...]:
        """The keys the user's preferences may be stored under: the current one first."""
        if self._address_keys is not None:
            return self._address_keys.hasher().user_key_forms(user_id)
        if user_key_version(user_id) is not None:
            raise PreferenceError(f"{user_id} is derived from an address: reading it needs the address keyring")
        return (user_id,)

    @staticmethod
    def _state(
        forms: tuple[str, ...], stored: dict[str, PreferenceRecord]
    ) -> tuple[PreferenceState, tuple[frozenset[str], bool]]:
        """The merged state of the stored forms, and the producer's marks (its opt-outs, its unsubscribe)."""
        preferences = Preferences(forms[0])
        own: frozenset[str] = frozenset()
        by_user = False
        producer_unsubscribe = False
        newest: PreferenceRecord | None = None
        for form in forms:
            record = stored.get(form)
            if record is None:
                continue
            preferences = preferences.merged(record.preferences)
            # Consent only narrows, and a choice is the user's if any form says so.
            own |= record.preferences.opted_out - record.producer_opt_outs
            if record.preferences.unsubscribed_all:
                by_user |= not record.producer_unsubscribe
                producer_unsubscribe |= record.producer_unsubscribe
            if newest is None or (record.updated_at or 0) > (newest.updated_at or 0):
                newest = record
        state = PreferenceState(
            preferences=preferences,
            own_opt_outs=own,
            unsubscribed_by_user=by_user,
            updated_at=newest.updated_at if newest else None,
            source=newest.source if newest else "",
            stored=bool(stored),
        )
        return state, (preferences.opted_out - own, producer_unsubscribe and not by_user)


def _apply(
    before: PreferenceState, producer: tuple[frozenset[str], bool], change: PreferenceChange
) -> tuple[PreferenceState, tuple[frozenset[str], bool], frozenset[str]]:
    """The state after `change`, the producer's marks after it, and the user's own choices it lifts."""
    old = before.preferences
    lifted = change.opt_in & before.own_opt_outs
    if change.resubscribe and before.unsubscribed_by_user:
        lifted |= {"all optional mail"}
    opted_out = (old.opted_out | change.opt_out) - change.opt_in
    # The producer's opt-outs: those it already made and the new ones the user had not made already.
    producer_opt_outs = (producer[0] | (change.opt_out - before.own_opt_outs)) & opted_out
    unsubscribed_all, by_user, producer_unsubscribe = old.unsubscribed_all, before.unsubscribed_by_user, producer[1]
    if change.unsubscribe_all and not old.unsubscribed_all:
        unsubscribed_all, producer_unsubscribe = True, True
    elif change.resubscribe:
        unsubscribed_all, by_user, producer_unsubscribe = False, False, False
    preferences = replace(
        old,
        opted_out=opted_out,
        unsubscribed_all=unsubscribed_all,
        locale=_pick(change.locale, old.locale),
        timezone=_pick(change.timezone, old.timezone),
        quiet_hours=QuietHours.parse(q) if (q := _pick(change.quiet_hours, _text(old.quiet_hours))) else None,
    )
    after = replace(
        before,
        preferences=preferences,
        own_opt_outs=before.own_opt_outs & opted_out,
        unsubscribed_by_user=by_user and unsubscribed_all,
    )
    return after, (producer_opt_outs, producer_unsubscribe), frozenset(lifted)


def _pick(new: str | None, old: str | None) -> str | None:
    """The value after a change: unchanged for None, cleared for a clear value, else the new one."""
    if new is None:
        return old
    return None if new.strip().lower() in CLEAR_VALUES else new


def _text(value: QuietHours | None) -> str | None:
    return str(value) if value is not None else None


def _describe(before: Preferences, after: Preferences) -> tuple[str, ...]:
    """What changed, for the audit trail and the reply: `opt_out:marketing`, `timezone:Europe/Paris`..."""
    changes = [f"opt_out:{c}" for c in sorted(after.opted_out - before.opted_out)]
    changes += [f"opt_in:{c}" for c in sorted(before.opted_out - after.opted_out)]
    if after.unsubscribed_all != before.unsubscribed_all:
        changes.append("unsubscribe_all" if after.unsubscribed_all else "resubscribe")
    for name in ("locale", "timezone", "quiet_hours"):
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            changes.append(f"{name}:{new}" if new is not None else f"{name}:cleared")
    return tuple(changes)
