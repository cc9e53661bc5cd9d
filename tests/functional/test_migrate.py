"""`mailwright migrate address-hashes` against a moto stack holding data of a release before keyed hashes."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from mailwright.adapters.address_keys import DynamoAddressKeyMarker
from mailwright.adapters.dynamodb import DynamoMessageLog
from mailwright.address_keys import legacy_address_hash, legacy_user_key
from mailwright.constants import Keys
from mailwright.ports import Outcome
from mailwright.wiring import build_suppression_service
from mailwright_tools.migrate import AddressHashMigration, MigrationError
from mailwright_tools.provision import StackResources
from mailwright_tools.target import Target
from tests.functional.harness import address_hasher

JANE, JOHN = "jane@example.com", "john@example.com"
WINDOW = 86400 * 20000


def target_of(stack: StackResources) -> Target:
    """The stack as the CLI sees a deployed one (moto answers in place of AWS)."""
    return Target(
        kind="deployed",
        name="Mailwright",
        region=stack.region,
        endpoint_url=None,
        queues=dict(stack.queues),
        dlqs=dict(stack.dlqs),
        tables={
            "preferences": stack.preferences_table,
            "suppression": stack.suppression_table,
            "idempotency": stack.idempotency_table,
            "messages": stack.messages_table,
        },
        templates_bucket=stack.templates_bucket,
        address_key_secret=stack.address_key_secret_arn,
    )


def put(table: str, item: dict[str, Any]) -> None:
    boto3.client("dynamodb").put_item(TableName=table, Item=item)


def keys_of(table: str, name: str) -> set[str]:
    return {i[name]["S"] for i in boto3.client("dynamodb").scan(TableName=table)["Items"]}


@pytest.fixture
def legacy_data(stack: StackResources) -> StackResources:
    """What an upgraded stack holds: items under unkeyed hashes, and no marker (so version 0 is readable)."""
    boto3.client("dynamodb").delete_item(
        TableName=stack.suppression_table, Key={Keys.SUPPRESSION_PK: {"S": "meta#address-hashes"}}
    )
    jane, john = legacy_address_hash(JANE), legacy_address_hash(JOHN)
    put(
        stack.suppression_table,
        {
            Keys.SUPPRESSION_PK: {"S": jane},
            "reason": {"S": "BOUNCE"},
            "scope": {"S": "all"},
            "masked": {"S": "j***@example.com"},
            "reasons": {"SS": ["BOUNCE"]},
            "version": {"N": "1"},
        },
    )
    put(
        stack.suppression_table,
        {
            Keys.SUPPRESSION_PK: {"S": "audit#" + jane},
            "masked": {"S": "j***@example.com"},
            "entries": {"L": [{"M": {"action": {"S": "add"}, "at": {"N": "1"}, "reason": {"S": "BOUNCE"}}}]},
        },
    )
    put(
        stack.suppression_table,
        {Keys.SUPPRESSION_PK: {"S": "soft#" + john}, "bounces": {"L": [{"S": "5.000|k1"}]}, "expires_at": {"N": "9"}},
    )
    put(
        stack.preferences_table,
        {
            Keys.PREFERENCES_PK: {"S": legacy_user_key(JOHN)},
            "opted_out": {"SS": ["marketing"]},
            "locale": {"S": "fr"},
        },
    )
    put(stack.preferences_table, {Keys.PREFERENCES_PK: {"S": "user-42"}, "opted_out": {"SS": ["product"]}})
    put(
        stack.idempotency_table,
        {Keys.IDEMPOTENCY_PK: {"S": f"rate#{legacy_user_key(JOHN)}#marketing#{WINDOW}"}, "request_ids": {"SS": ["r1"]}},
    )
    DynamoMessageLog(boto3.client("dynamodb"), stack.messages_table, ttl_days=1).record(
        [
            Outcome(
                "req-1",
                "sent",
                "standard",
                user_id=legacy_user_key(JOHN),
                recipient_hash=john,
                completed_at=time.time(),
            )
        ]
    )
    return stack


def test_every_kind_of_item_is_rekeyed_and_merged(legacy_data: StackResources) -> None:
    stack = legacy_data
    hasher = address_hasher(stack.address_key_secret_arn, stack.suppression_table)
    assert hasher.readable_from == 0
    # A user who already has preferences under the current key (a change after the upgrade)
    current_john = hasher.user_key(JOHN)
    put(stack.preferences_table, {Keys.PREFERENCES_PK: {"S": current_john}, "opted_out": {"SS": ["product"]}})

    report = AddressHashMigration(target_of(stack), actor="test").run()

    assert report.to_json()["moved"] == {
        "audit_trails": 1,
        "message_log": 1,
        "rate_limit_counters": 1,
        "soft_bounce_counts": 1,
        "suppressions": 1,
    }
    assert report.to_json()["merged"] == {"preferences": 1}
    jane = hasher.address_hash(JANE)
    assert keys_of(stack.suppression_table, Keys.SUPPRESSION_PK) == {
        jane,
        "audit#" + jane,
        "soft#" + hasher.address_hash(JOHN),
        "meta#address-hashes",
    }
    # The preferences of the two keys are one user's: consent only narrows; the producer's own id stays.
    preferences = {
        i[Keys.PREFERENCES_PK]["S"]: i
        for i in boto3.client("dynamodb").scan(TableName=stack.preferences_table)["Items"]
    }
    assert set(preferences) == {current_john, "user-42"}
    assert set(preferences[current_john]["opted_out"]["SS"]) == {"marketing", "product"}
    assert preferences[current_john]["locale"]["S"] == "fr"
    assert f"rate#{current_john}#marketing#{WINDOW}" in keys_of(stack.idempotency_table, Keys.IDEMPOTENCY_PK)
    logged = DynamoMessageLog(boto3.client("dynamodb"), stack.messages_table, ttl_days=1).get("req-1")
    assert logged is not None and (logged["recipient_hash"], logged["user_id"]) == (
        hasher.address_hash(JOHN),
        current_john,
    )

    # The suppression service (and the workers) now read one version only, and still find Jane
    assert DynamoAddressKeyMarker(boto3.client("dynamodb"), stack.suppression_table).readable_from() == 1
    service = build_suppression_service(
        suppression_table=stack.suppression_table, address_key_secret=stack.address_key_secret_arn
    )
    found = service.check(JANE)
    assert found is not None and found.reason == "BOUNCE"
    assert [r.action for r in service.history(JANE)] == ["add"]

    # A second run finds nothing to move
    again = AddressHashMigration(target_of(stack), actor="test").run()
    assert again.to_json()["moved"] == {} and again.to_json()["merged"] == {}


def test_a_dry_run_changes_nothing(legacy_data: StackResources) -> None:
    stack = legacy_data
    before = keys_of(stack.suppression_table, Keys.SUPPRESSION_PK)

    report = AddressHashMigration(target_of(stack), actor="test", dry_run=True).run()

    assert report.moved["suppressions"] == 1 and report.readable_from_after == 0
    assert keys_of(stack.suppression_table, Keys.SUPPRESSION_PK) == before


def test_it_waits_until_no_function_can_still_write_the_previous_version(legacy_data: StackResources) -> None:
    migration = AddressHashMigration(target_of(legacy_data), actor="test")
    # The keyring was created moments ago (with this stack): a worker of the release before may still run.
    with pytest.raises(MigrationError, match="Run again after"):
        migration.check_settled(time.time())
    migration.check_settled(time.time() + 3600)
    AddressHashMigration(target_of(legacy_data), actor="test", force=True).check_settled(time.time())
