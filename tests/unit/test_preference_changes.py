"""Producer changes of preferences: validation, the guard on a user's own choices, and the audit trail."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from mailwright.errors import TransientError
from mailwright.ports import PreferenceAudit, PreferenceRecord, Preferences
from mailwright.preference_changes import (
    SOURCE_CLI,
    SOURCE_SDK,
    PreferenceAdmin,
    PreferenceChange,
    PreferenceError,
    UserChoiceError,
)
from mailwright.preference_client import PreferencesClient
from mailwright.preferences import PreferenceService
from mailwright.quiet_hours import QuietHours
from mailwright_tools.fakes import FakeClock, FakePreferenceTable, StaticAddressKeys

USER = "user-42"
ACTOR = "ops-team"


@pytest.fixture
def table() -> FakePreferenceTable:
    return FakePreferenceTable()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def admin(table: FakePreferenceTable, clock: FakeClock) -> PreferenceAdmin:
    return PreferenceAdmin(table, address_keys=StaticAddressKeys(), clock=clock)


def page(table: FakePreferenceTable) -> PreferenceService:
    """The user's side: the unsubscribe page's service over the same table."""
    return PreferenceService(table, table, address_keys=StaticAddressKeys(), clock=lambda: 1.0)


def change(admin: PreferenceAdmin, **kwargs: object) -> object:
    return admin.change(USER, PreferenceChange(**kwargs), actor=ACTOR, source=SOURCE_CLI)  # type: ignore[arg-type]


# -- setting values -------------------------------------------------------------


def test_setting_time_zone_quiet_hours_and_locale_is_stored_and_audited(
    admin: PreferenceAdmin, table: FakePreferenceTable, clock: FakeClock
) -> None:
    result = admin.change(
        USER,
        PreferenceChange(locale="fr_ca", timezone="Europe/Paris", quiet_hours="21:00-08:00"),
        actor=ACTOR,
        source=SOURCE_CLI,
        note="asked by phone",
    )

    stored = table.records[USER].preferences
    assert (stored.locale, stored.timezone, stored.quiet_hours) == (
        "fr-CA",
        "Europe/Paris",
        QuietHours.parse("21:00-08:00"),
    )
    assert result.changes == ("locale:fr-CA", "timezone:Europe/Paris", "quiet_hours:21:00-08:00")
    [audit] = admin.history(USER)
    assert audit == PreferenceAudit(
        user_id=USER,
        at=clock(),
        actor=ACTOR,
        source=SOURCE_CLI,
        changes=result.changes,
        note="asked by phone",
        overrode_user_choice=False,
    )


def test_clearing_values(admin: PreferenceAdmin, table: FakePreferenceTable) -> None:
    change(admin, timezone="Europe/Paris", quiet_hours="21:00-08:00", locale="fr")

    result = admin.change(
        USER, PreferenceChange(timezone="none", quiet_hours="", locale="off"), actor=ACTOR, source=SOURCE_CLI
    )

    stored = table.records[USER].preferences
    assert (stored.timezone, stored.quiet_hours, stored.locale) == (None, None, None)
    assert result.changes == ("locale:cleared", "timezone:cleared", "quiet_hours:cleared")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timezone": "Paris"}, "not an IANA time zone"),
        ({"quiet_hours": "9pm-8am"}, "quiet hours look like"),
        ({"locale": "french!"}, "a locale looks like"),
        ({"opt_out": frozenset({"security"})}, "'security' is essential"),
        ({"opt_in": frozenset({"newsletters"})}, "'newsletters' is not a known category"),
        ({"opt_out": frozenset({"marketing"}), "opt_in": frozenset({"marketing"})}, "the same category: marketing"),
        ({"unsubscribe_all": True, "resubscribe": True}, "unsubscribe from all and resubscribe at once"),
    ],
)
def test_bad_input_changes_nothing(
    admin: PreferenceAdmin, table: FakePreferenceTable, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(PreferenceError, match=message):
        change(admin, **kwargs)

    assert table.records == {} and table.trails == {}


def test_every_problem_is_named_at_once(admin: PreferenceAdmin) -> None:
    with pytest.raises(PreferenceError) as caught:
        change(admin, timezone="Paris", quiet_hours="late")

    assert "not an IANA time zone" in str(caught.value) and "quiet hours look like" in str(caught.value)


@pytest.mark.parametrize("user_id", ["", "audit#user-42", "line\nbreak", "x" * 129])
def test_user_ids_that_cannot_be_keys_are_refused(admin: PreferenceAdmin, user_id: str) -> None:
    with pytest.raises(PreferenceError):
        admin.change(user_id, PreferenceChange(locale="fr"), actor=ACTOR, source=SOURCE_CLI)


def test_a_change_needs_an_actor(admin: PreferenceAdmin, table: FakePreferenceTable) -> None:
    with pytest.raises(PreferenceError, match="actor"):
        admin.change(USER, PreferenceChange(locale="fr"), actor="  ", source=SOURCE_CLI)
    assert table.records == {}


def test_notes_and_actors_lose_addresses(admin: PreferenceAdmin) -> None:
    admin.change(
        USER,
        PreferenceChange(locale="fr"),
        actor="ops@example.com",
        source=SOURCE_CLI,
        note="jane@example.com asked by phone",
    )

    [audit] = admin.history(USER)
    assert "jane@example.com" not in audit.note and "ops@example.com" not in audit.actor


def test_a_change_that_changes_nothing_writes_nothing(admin: PreferenceAdmin, table: FakePreferenceTable) -> None:
    change(admin, opt_out=frozenset({"marketing"}), timezone="Europe/Paris")
    writes = table.calls["write"]

    again = change(admin, opt_out=frozenset({"marketing"}), timezone="Europe/Paris")

    assert not again.changed  # type: ignore[attr-defined]
    assert table.calls["write"] == writes
    assert len(admin.history(USER)) == 1


# -- whose choice it is -----------------------------------------------------------


def test_the_producer_may_lift_its_own_opt_out(admin: PreferenceAdmin, table: FakePreferenceTable) -> None:
    change(admin, opt_out=frozenset({"marketing"}))
    assert table.records[USER].producer_opt_outs == {"marketing"}

    result = change(admin, opt_in=frozenset({"marketing"}))

    assert table.records[USER].preferences.opted_out == frozenset()
    assert result.changes == ("opt_in:marketing",)  # type: ignore[attr-defined]


def test_lifting_a_users_own_opt_out_needs_the_override_and_a_note(
    admin: PreferenceAdmin, table: FakePreferenceTable
) -> None:
    # Given the user opted out of marketing themselves, on the page
    page(table).opt_out(USER, "marketing")

    # When the producer opts them in without the override, it is refused and nothing changes
    with pytest.raises(UserChoiceError, match="user-42 chose themselves not to get marketing"):
        change(admin, opt_in=frozenset({"marketing"}))
    # And with the override but no note
    with pytest.raises(PreferenceError, match="needs a note"):
        admin.change(
            USER, PreferenceChange(opt_in=frozenset({"marketing"})), actor=ACTOR, source=SOURCE_CLI,
            override_user_choice=True,
        )  # fmt: skip
    assert table.records[USER].preferences.opted_out == {"marketing"}
    assert admin.history(USER) == []

    # Then with both, it is lifted and audited as an override
    result = admin.change(
        USER,
        PreferenceChange(opt_in=frozenset({"marketing"})),
        actor=ACTOR,
        source=SOURCE_CLI,
        note="renewed consent by phone, ticket 123",
        override_user_choice=True,
    )
    assert result.overrode_user_choice
    assert table.records[USER].preferences.opted_out == frozenset()
    [audit] = admin.history(USER)
    assert audit.overrode_user_choice and audit.changes == ("opt_in:marketing",)
    assert audit.note == "renewed consent by phone, ticket 123"


def test_the_user_taking_over_a_producers_opt_out_makes_it_theirs(
    admin: PreferenceAdmin, table: FakePreferenceTable
) -> None:
    change(admin, opt_out=frozenset({"marketing"}))
    # The user saves the page with marketing still unticked: their whole answer
    page(table).update(USER, opted_out={"marketing"}, unsubscribed_all=False)

    with pytest.raises(UserChoiceError):
        change(admin, opt_in=frozenset({"marketing"}))


def test_resubscribing_a_user_who_unsubscribed_themselves_is_guarded(
    admin: PreferenceAdmin, table: FakePreferenceTable
) -> None:
    page(table).update(USER, opted_out=set(), unsubscribed_all=True)

    with pytest.raises(UserChoiceError, match="all optional mail"):
        change(admin, resubscribe=True)
    assert table.records[USER].preferences.unsubscribed_all

    result = admin.change(
        USER, PreferenceChange(resubscribe=True), actor=ACTOR, source=SOURCE_CLI, note="court order",
        override_user_choice=True,
    )  # fmt: skip
    assert result.changes == ("resubscribe",) and result.overrode_user_choice
    assert not table.records[USER].preferences.unsubscribed_all


def test_the_producer_may_lift_its_own_unsubscribe_from_all(admin: PreferenceAdmin, table: FakePreferenceTable) -> None:
    change(admin, unsubscribe_all=True)
    assert table.records[USER].producer_unsubscribe

    result = change(admin, resubscribe=True)

    assert result.changes == ("resubscribe",)  # type: ignore[attr-defined]
    assert not result.overrode_user_choice  # type: ignore[attr-defined]


def test_choices_stored_before_they_were_marked_count_as_the_users(
    admin: PreferenceAdmin, table: FakePreferenceTable
) -> None:
    # An item written before producers could change preferences has no marks: its opt-outs are the user's.
    table.records[USER] = PreferenceRecord(Preferences(USER, opted_out=frozenset({"product"}), unsubscribed_all=True))

    state = admin.get(USER)

    assert state.own_opt_outs == {"product"} and state.unsubscribed_by_user
    with pytest.raises(UserChoiceError):
        change(admin, opt_in=frozenset({"product"}))


def test_opting_out_where_the_user_already_did_keeps_it_theirs(
    admin: PreferenceAdmin, table: FakePreferenceTable
) -> None:
    page(table).opt_out(USER, "marketing")

    result = change(admin, opt_out=frozenset({"marketing", "product"}))

    assert result.changes == ("opt_out:product",)  # type: ignore[attr-defined]
    assert table.records[USER].producer_opt_outs == {"product"}
    assert admin.get(USER).own_opt_outs == {"marketing"}


# -- concurrency and key versions --------------------------------------------------


class RacingTable(FakePreferenceTable):
    """A table where the user saves the page between the producer's read and its first write."""

    def write(self, records: Sequence[tuple[PreferenceRecord, int | None]], *, audit: PreferenceAudit) -> bool:
        if self.calls["write"] == 0:
            self.add_opt_out(USER, "product", source="one_click", updated_at=1.0)
        return super().write(records, audit=audit)


def test_a_page_write_in_between_is_not_lost() -> None:
    table = RacingTable()
    table.records[USER] = PreferenceRecord(Preferences(USER))
    admin = PreferenceAdmin(table, address_keys=StaticAddressKeys(), clock=lambda: 5.0)

    admin.change(USER, PreferenceChange(opt_out=frozenset({"marketing"})), actor=ACTOR, source=SOURCE_CLI)

    # The first write lost the race (the page bumped the version); the retry kept both opt-outs
    assert table.calls["write"] == 2
    assert table.records[USER].preferences.opted_out == {"marketing", "product"}
    assert len(table.trails[USER]) == 1


def test_a_table_that_keeps_changing_is_a_transient_error() -> None:
    class AlwaysLosing(FakePreferenceTable):
        def write(self, records: Sequence[tuple[PreferenceRecord, int | None]], *, audit: PreferenceAudit) -> bool:
            return False

    admin = PreferenceAdmin(AlwaysLosing(), address_keys=StaticAddressKeys(), clock=lambda: 5.0)

    with pytest.raises(TransientError, match="kept changing"):
        admin.change(USER, PreferenceChange(locale="fr"), actor=ACTOR, source=SOURCE_CLI)


def test_without_the_keyring_only_a_producers_own_user_ids_work(table: FakePreferenceTable) -> None:
    admin = PreferenceAdmin(table, address_keys=None, clock=lambda: 5.0)

    admin.change(USER, PreferenceChange(locale="fr"), actor=ACTOR, source=SOURCE_CLI)
    with pytest.raises(PreferenceError, match="derived from an address"):
        admin.get("addr:" + "0" * 40)


def test_an_address_derived_user_id_is_changed_under_its_current_key(table: FakePreferenceTable) -> None:
    keys = StaticAddressKeys()
    hasher = keys.hasher()
    legacy = "addr:" + "a" * 40  # version 0, as an old unsubscribe link carries it
    current = hasher.upgrade_user_id(legacy)
    admin = PreferenceAdmin(table, address_keys=keys, clock=lambda: 5.0)

    admin.change(legacy, PreferenceChange(timezone="Asia/Tokyo"), actor=ACTOR, source=SOURCE_CLI)

    assert current != legacy and table.records[current].preferences.timezone == "Asia/Tokyo"
    assert admin.get(legacy).preferences.timezone == "Asia/Tokyo"


# -- the SDK client ---------------------------------------------------------------------


def test_the_sdk_client_has_the_same_rules_and_audits_as_its_actor(
    admin: PreferenceAdmin, table: FakePreferenceTable
) -> None:
    client = PreferencesClient(admin=admin, actor="billing-service")
    page(table).opt_out(USER, "marketing")

    result = client.set(USER, timezone="America/New_York", quiet_hours="22:00-07:00", opt_out=["product"])

    assert result.changes == ("opt_out:product", "timezone:America/New_York", "quiet_hours:22:00-07:00")
    assert client.get(USER).preferences.opted_out == {"marketing", "product"}
    with pytest.raises(UserChoiceError):
        client.set(USER, opt_in=["marketing"])
    with pytest.raises(PreferenceError, match="nothing to change"):
        client.set(USER)
    [audit] = client.history(USER)
    assert (audit.actor, audit.source) == ("billing-service", SOURCE_SDK)


def test_the_sdk_client_needs_an_actor_and_a_table() -> None:
    with pytest.raises(ValueError, match="actor"):
        PreferencesClient(admin=PreferenceAdmin(FakePreferenceTable(), address_keys=None), actor="")
    with pytest.raises(ValueError, match="no preferences table"):
        PreferencesClient.from_env({})
