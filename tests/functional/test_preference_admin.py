"""Producer changes of preferences against moto: the ledger adapter, the page's writes, the worker's reads, the SDK."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from mailwright.adapters.dynamodb import DynamoPreferenceStore, DynamoPreferenceWriter
from mailwright.adapters.preferences import DynamoPreferenceLedger
from mailwright.ports import PreferenceAudit, PreferenceRecord, Preferences
from mailwright.preference_changes import SOURCE_CLI, PreferenceAdmin, PreferenceChange, UserChoiceError
from mailwright.preference_client import PreferencesClient, build_preference_admin
from mailwright.quiet_hours import QuietHours
from mailwright_tools.provision import StackResources

USER = "user-42"


@pytest.fixture
def admin(stack: StackResources) -> PreferenceAdmin:
    """The CLI's and the SDK's service on the provisioned table, with the address keyring."""
    return build_preference_admin(
        preferences_table=stack.preferences_table,
        address_key_secret=stack.address_key_secret_arn,
        suppression_table=stack.suppression_table,
        clock=lambda: 1_700_000_000.0,
    )


@pytest.fixture
def writer(stack: StackResources) -> DynamoPreferenceWriter:
    """The page's adapter on the same table."""
    return DynamoPreferenceWriter(boto3.client("dynamodb"), stack.preferences_table)


def raw(stack: StackResources, key: str) -> dict[str, Any]:
    found = boto3.client("dynamodb").get_item(TableName=stack.preferences_table, Key={"user_id": {"S": key}})
    return dict(found.get("Item") or {})


def test_a_change_is_stored_for_the_worker_and_audited_keeping_other_attributes(
    stack: StackResources, admin: PreferenceAdmin
) -> None:
    boto3.client("dynamodb").put_item(
        TableName=stack.preferences_table, Item={"user_id": {"S": USER}, "email": {"S": "jane@example.com"}}
    )

    admin.change(
        USER,
        PreferenceChange(timezone="Europe/Paris", quiet_hours="21:00-08:00", opt_out=frozenset({"marketing"})),
        actor="ops",
        source=SOURCE_CLI,
        note="asked by phone",
    )

    # The worker's reader sees the time zone and quiet hours
    store = DynamoPreferenceStore(boto3.client("dynamodb"), stack.preferences_table)
    [seen] = store.get_many([USER]).values()
    assert (seen.timezone, seen.quiet_hours, seen.opted_out) == (
        "Europe/Paris",
        QuietHours.parse("21:00-08:00"),
        {"marketing"},
    )
    item = raw(stack, USER)
    assert item["email"] == {"S": "jane@example.com"}
    assert item["producer_opt_outs"] == {"SS": ["marketing"]} and item["version"] == {"N": "1"}
    # And the audit trail sits beside it
    [audit] = admin.history(USER)
    assert audit.actor == "ops" and audit.note == "asked by phone" and audit.source == SOURCE_CLI
    assert audit.changes == ("opt_out:marketing", "timezone:Europe/Paris", "quiet_hours:21:00-08:00")
    assert raw(stack, "audit#" + USER)["entries"]["L"][0]["M"]["actor"] == {"S": "ops"}


def test_an_opt_out_made_on_the_page_is_the_users_own(
    stack: StackResources, admin: PreferenceAdmin, writer: DynamoPreferenceWriter
) -> None:
    # Given the producer opted the user out of product, and the user then opted out of marketing (and product)
    admin.change(USER, PreferenceChange(opt_out=frozenset({"product"})), actor="ops", source=SOURCE_CLI)
    writer.add_opt_out(USER, "marketing", source="one_click", updated_at=2.0)
    writer.add_opt_out(USER, "product", source="one_click", updated_at=3.0)

    # Then both are the user's: the producer cannot lift them without the override
    assert admin.get(USER).own_opt_outs == {"marketing", "product"}
    with pytest.raises(UserChoiceError):
        admin.change(USER, PreferenceChange(opt_in=frozenset({"product"})), actor="ops", source=SOURCE_CLI)
    assert "producer_opt_outs" not in raw(stack, USER)
    assert raw(stack, USER)["version"] == {"N": "3"}  # every page write bumps it


def test_the_page_saving_the_form_sets_its_schedule_and_takes_over_the_choices(
    stack: StackResources, admin: PreferenceAdmin, writer: DynamoPreferenceWriter
) -> None:
    from mailwright.preferences import parse_schedule

    admin.change(USER, PreferenceChange(unsubscribe_all=True, locale="fr"), actor="ops", source=SOURCE_CLI)

    writer.set_choices(
        USER,
        opted_out=frozenset({"marketing"}),
        unsubscribed_all=True,
        source="preference_center",
        updated_at=5.0,
        schedule=parse_schedule("America/New_York", "22:00-07:00"),
    )

    state = admin.get(USER)
    assert state.unsubscribed_by_user and state.own_opt_outs == {"marketing"}
    assert (state.preferences.timezone, str(state.preferences.quiet_hours)) == ("America/New_York", "22:00-07:00")
    assert state.preferences.locale == "fr"
    writer.set_choices(
        USER, opted_out=frozenset(), unsubscribed_all=False, source="preference_center", updated_at=6.0,
        schedule=parse_schedule("", ""),
    )  # fmt: skip
    item = raw(stack, USER)
    assert "timezone" not in item and "quiet_hours" not in item


def test_a_write_on_a_stale_version_is_refused_and_changes_nothing(stack: StackResources) -> None:
    ledger = DynamoPreferenceLedger(boto3.client("dynamodb"), stack.preferences_table)
    audit = PreferenceAudit(user_id=USER, at=1.0, actor="ops", source=SOURCE_CLI, changes=("locale:fr",))
    record = PreferenceRecord(Preferences(USER, locale="fr"), version=1)
    assert ledger.write([(record, None)], audit=audit)

    # A second writer that read no item (expected None) or an old version loses
    assert not ledger.write([(PreferenceRecord(Preferences(USER, locale="de"), version=1), None)], audit=audit)
    assert not ledger.write([(PreferenceRecord(Preferences(USER, locale="de"), version=3), 2)], audit=audit)

    assert raw(stack, USER)["locale"] == {"S": "fr"}
    assert len(ledger.audit(USER)) == 1  # a refused transaction appends no audit record either


def test_an_address_derived_user_id_is_written_under_its_current_key(
    stack: StackResources, admin: PreferenceAdmin
) -> None:
    legacy = "addr:" + "b" * 40

    admin.change(legacy, PreferenceChange(timezone="Asia/Tokyo"), actor="ops", source=SOURCE_CLI)

    [stored] = [item for item in boto3.client("dynamodb").scan(TableName=stack.preferences_table)["Items"]
                if not item["user_id"]["S"].startswith("audit#")]  # fmt: skip
    assert stored["user_id"]["S"].startswith("addr:k1-") and stored["timezone"] == {"S": "Asia/Tokyo"}
    assert admin.get(legacy).preferences.timezone == "Asia/Tokyo"


def test_the_sdk_client_from_the_environment(stack: StackResources) -> None:
    client = PreferencesClient.from_env(
        {
            "MAILWRIGHT_PREFERENCES_TABLE": stack.preferences_table,
            "MAILWRIGHT_ADDRESS_KEY_SECRET": stack.address_key_secret_arn,
            "MAILWRIGHT_SUPPRESSION_TABLE": stack.suppression_table,
            "MAILWRIGHT_ACTOR": "billing-service",
        }
    )

    result = client.set(USER, quiet_hours="22:00-07:00", timezone="America/New_York")

    assert result.changed and client.get(USER).preferences.quiet_hours == QuietHours.parse("22:00-07:00")
    assert client.history(USER)[0].actor == "billing-service"
