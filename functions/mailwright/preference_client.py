"""The producer SDK's preferences client: read and change users' preferences with boto3, each change audited.

It uses the same domain service as `mailwright preferences` (the CLI), so the
rules are the same: bad values raise `PreferenceError` and change nothing; an
opt-out or unsubscribe the user made themselves is lifted only with
`override_user_choice=True` and a `note`, else `UserChoiceError`::

    from mailwright.sdk import Preferences

    prefs = Preferences(table="mailwright-preferences", actor="billing-service")
    prefs.set("user-42", timezone="Europe/Paris", quiet_hours="21:00-08:00", opt_out=["marketing"])
    prefs.get("user-42").preferences.opted_out          # frozenset({'marketing'})
    prefs.set("user-42", opt_in=["marketing"])          # fine: the producer made that opt-out
    prefs.history("user-42")[-1].changes                # ('opt_in:marketing',)

The caller needs dynamodb:GetItem, UpdateItem (and so TransactWriteItems) on
the preferences table; with `address_key_secret` (for address-derived user ids,
`addr:...`) also secretsmanager:GetSecretValue on the keyring and GetItem on
the suppression table.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import boto3

from mailwright.adapters.address_keys import DynamoAddressKeyMarker, SecretAddressKeys
from mailwright.adapters.aws import client_config
from mailwright.adapters.preferences import DynamoPreferenceLedger
from mailwright.ports import PreferenceAudit
from mailwright.preference_changes import (
    SOURCE_SDK,
    ChangeResult,
    PreferenceAdmin,
    PreferenceChange,
    PreferenceError,
    PreferenceState,
    UserChoiceError,
)

__all__ = ["PreferenceError", "PreferencesClient", "UserChoiceError", "build_preference_admin"]

# Where `PreferencesClient.from_env()` finds the stack and who it is.
ENV_PREFERENCES_TABLE = "MAILWRIGHT_PREFERENCES_TABLE"
ENV_ADDRESS_KEY_SECRET = "MAILWRIGHT_ADDRESS_KEY_SECRET"  # noqa: S105 - the variable naming the secret
ENV_SUPPRESSION_TABLE = "MAILWRIGHT_SUPPRESSION_TABLE"
ENV_ACTOR = "MAILWRIGHT_ACTOR"


def build_preference_admin(
    *,
    preferences_table: str,
    address_key_secret: str | None = None,
    suppression_table: str | None = None,
    session: boto3.session.Session | None = None,
    clock: Callable[[], float] = time.time,
) -> PreferenceAdmin:
    """A PreferenceAdmin on the preferences table (the CLI's and the SDK's).

    With the address keyring (its secret, and the suppression table that
    records the oldest key version still stored), address-derived user ids work
    too; without it, only a producer's own user ids.
    """
    session = session or boto3.session.Session()
    dynamodb = session.client("dynamodb", config=client_config(max_attempts=5))
    keys = None
    if address_key_secret:
        if not suppression_table:
            raise PreferenceError("the address keyring needs the suppression table too (suppression_table)")
        secrets = session.client("secretsmanager", config=client_config(max_attempts=3))
        keys = SecretAddressKeys(secrets, address_key_secret, DynamoAddressKeyMarker(dynamodb, suppression_table))
    return PreferenceAdmin(DynamoPreferenceLedger(dynamodb, preferences_table), address_keys=keys, clock=clock)


class PreferencesClient:
    """Reads and changes users' preferences for a producer; `actor` names the producer in the audit trail."""

    def __init__(
        self,
        *,
        table: str | None = None,
        actor: str,
        address_key_secret: str | None = None,
        suppression_table: str | None = None,
        session: boto3.session.Session | None = None,
        admin: PreferenceAdmin | None = None,
    ) -> None:
        if admin is None:
            if not table:
                raise ValueError("give the preferences table (table=...)")
            admin = build_preference_admin(
                preferences_table=table,
                address_key_secret=address_key_secret,
                suppression_table=suppression_table,
                session=session,
            )
        if not actor or not actor.strip():
            raise ValueError("give the actor: who makes the changes (kept in the audit trail)")
        self._admin = admin
        self._actor = actor

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> PreferencesClient:
        """A client for MAILWRIGHT_PREFERENCES_TABLE acting as MAILWRIGHT_ACTOR (with the keyring when set)."""
        env = os.environ if environ is None else environ
        if not env.get(ENV_PREFERENCES_TABLE):
            raise ValueError(f"no preferences table: pass table=... or set {ENV_PREFERENCES_TABLE}")
        kwargs.setdefault("actor", env.get(ENV_ACTOR, ""))
        return cls(
            table=env[ENV_PREFERENCES_TABLE],
            address_key_secret=env.get(ENV_ADDRESS_KEY_SECRET) or None,
            suppression_table=env.get(ENV_SUPPRESSION_TABLE) or None,
            **kwargs,
        )

    def get(self, user_id: str) -> PreferenceState:
        """The user's preferences (`.preferences`) and which choices they made themselves."""
        return self._admin.get(user_id)

    def set(
        self,
        user_id: str,
        *,
        locale: str | None = None,
        timezone: str | None = None,
        quiet_hours: str | None = None,
        opt_out: Iterable[str] = (),
        opt_in: Iterable[str] = (),
        unsubscribe_all: bool = False,
        resubscribe: bool = False,
        override_user_choice: bool = False,
        note: str = "",
    ) -> ChangeResult:
        """Change what is given ("" clears locale, timezone or quiet_hours); audited. `.changes` says what changed."""
        change = PreferenceChange(
            locale=locale,
            timezone=timezone,
            quiet_hours=quiet_hours,
            opt_out=frozenset(opt_out),
            opt_in=frozenset(opt_in),
            unsubscribe_all=unsubscribe_all,
            resubscribe=resubscribe,
        )
        if change.empty:
            raise PreferenceError("nothing to change")
        return self._admin.change(
            user_id,
            change,
            actor=self._actor,
            source=SOURCE_SDK,
            note=note,
            override_user_choice=override_user_choice,
        )

    def history(self, user_id: str) -> list[PreferenceAudit]:
        """The audited producer changes of the user's preferences, oldest first."""
        return self._admin.history(user_id)
