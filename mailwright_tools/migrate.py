"""Re-key stored address hashes to the current key version: `mailwright migrate address-hashes`.

Every stored form of an address (a suppression, its audit trail and soft-bounce
count, the preferences and rate-limit counters of a user without a user id,
and the message log's `recipient_hash` and `user_id`) is carried forward to the
current key version without knowing the address (`AddressHasher.upgrade_hash`,
`upgrade_user_id`), merged with what is already stored there, and the old item
is deleted. Run after upgrading from a release without keyed hashes, and after
rotating the keyring. When every item is current, the suppression table's
marker moves up, and the functions stop looking up older versions (within
their keyring refresh, five minutes).

The command is idempotent: a re-run after an interruption continues where the
first stopped, and a second run finds nothing to move.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from mailwright.adapters.address_keys import DEFAULT_REFRESH_SECONDS, DynamoAddressKeyMarker, SecretAddressKeys
from mailwright.adapters.dynamodb import AUDIT_PREFIX, META_PREFIX, SOFT_BOUNCE_PREFIX, DynamoRateLimiter
from mailwright.address_keys import AddressHasher, hash_version, user_key_version
from mailwright.constants import MESSAGE_LOG_REQUEST_SK, Keys
from mailwright_tools.target import Target

# Functions re-read the keyring every DEFAULT_REFRESH_SECONDS, and a worker started
# before a deploy may still run for its timeout: until then, one may write an old version.
SETTLE_SECONDS = DEFAULT_REFRESH_SECONDS + 120


class MigrationError(Exception):
    """The migration cannot run now (the keyring changed too recently, or is missing)."""


@dataclass
class MigrationReport:
    """What a run found and did, per kind of item."""

    current_version: int
    readable_from_before: int
    readable_from_after: int
    dry_run: bool
    moved: Counter[str] = field(default_factory=Counter)
    merged: Counter[str] = field(default_factory=Counter)
    already_current: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "current_version": self.current_version,
            "readable_from_before": self.readable_from_before,
            "readable_from_after": self.readable_from_after,
            "dry_run": self.dry_run,
            "moved": dict(sorted(self.moved.items())),
            "merged": dict(sorted(self.merged.items())),
            "already_current": dict(sorted(self.already_current.items())),
            "seconds": round(self.seconds, 2),
        }


def _scan(client: Any, table: str) -> Iterator[dict[str, Any]]:
    params: dict[str, Any] = {"TableName": table}
    while True:
        response = client.scan(**params)
        yield from response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            return
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


class AddressHashMigration:
    """Moves every item of a stack stored under an older address-key version to the current one."""

    def __init__(self, target: Target, *, actor: str, dry_run: bool = False, force: bool = False) -> None:
        if not target.address_key_secret:
            raise MigrationError(f"{target.describe()} has no address keyring (output AddressKeySecretArn)")
        session = target.session()
        self._target = target
        self._dynamodb: Any = session.client("dynamodb")
        self._secrets: Any = session.client("secretsmanager")
        self._marker = DynamoAddressKeyMarker(self._dynamodb, target.tables["suppression"])
        self._actor = actor
        self._dry_run = dry_run
        self._force = force
        self.hasher: AddressHasher = SecretAddressKeys(
            self._secrets, target.address_key_secret, self._marker, refresh_seconds=0
        ).hasher()

    def check_settled(self, now: float) -> None:
        """Refuse to run while functions may still write with the key version before the current one."""
        if self._force or self._dry_run:
            return
        described = self._secrets.describe_secret(SecretId=self._target.address_key_secret)
        changed = described.get("LastChangedDate") or described.get("CreatedDate")
        if not isinstance(changed, datetime):
            return
        ready_at = changed.timestamp() + SETTLE_SECONDS
        if now < ready_at:
            when = datetime.fromtimestamp(ready_at, tz=UTC).strftime("%H:%M:%S UTC")
            raise MigrationError(
                f"the address keyring changed less than {SETTLE_SECONDS // 60} minutes ago: functions may still "
                f"write with the version before it. Run again after {when}, or pass --force"
            )

    def run(self) -> MigrationReport:
        """Migrate every table, then move the marker up (unless a dry run)."""
        started = time.monotonic()
        report = MigrationReport(
            current_version=self.hasher.current,
            readable_from_before=self.hasher.readable_from,
            readable_from_after=self.hasher.readable_from,
            dry_run=self._dry_run,
        )
        self._suppression(report)
        self._preferences(report)
        self._rate_limits(report)
        self._message_log(report)
        if not self._dry_run and self.hasher.readable_from < self.hasher.current:
            self._marker.set_readable_from(self.hasher.current, at=time.time(), actor=self._actor)
            report.readable_from_after = self.hasher.current
        report.seconds = time.monotonic() - started
        return report

    # -- the suppression table: entries, audit trails, soft-bounce counts -----------

    def _suppression(self, report: MigrationReport) -> None:
        table = self._target.tables["suppression"]
        for item in _scan(self._dynamodb, table):
            key = item[Keys.SUPPRESSION_PK]["S"]
            if key.startswith(META_PREFIX):
                continue
            prefix = next((p for p in (AUDIT_PREFIX, SOFT_BOUNCE_PREFIX) if key.startswith(p)), "")
            kind = {AUDIT_PREFIX: "audit_trails", SOFT_BOUNCE_PREFIX: "soft_bounce_counts"}.get(prefix, "suppressions")
            stored = key[len(prefix) :]
            try:
                version = hash_version(stored)
            except ValueError:
                continue  # not an address hash: left alone
            if version >= self.hasher.current:
                report.already_current[kind] += 1
                continue
            new_key = prefix + self.hasher.upgrade_hash(stored)
            merged = self._move(table, Keys.SUPPRESSION_PK, item, new_key, kind)
            (report.merged if merged else report.moved)[kind] += 1

    # -- preferences and rate limits of users without a user id ------------------

    def _preferences(self, report: MigrationReport) -> None:
        table = self._target.tables["preferences"]
        for item in _scan(self._dynamodb, table):
            user_id = item[Keys.PREFERENCES_PK]["S"]
            version = user_key_version(user_id)
            if version is None:
                continue  # a producer's own user id
            if version >= self.hasher.current:
                report.already_current["preferences"] += 1
                continue
            merged = self._move(table, Keys.PREFERENCES_PK, item, self.hasher.upgrade_user_id(user_id), "preferences")
            (report.merged if merged else report.moved)["preferences"] += 1

    def _rate_limits(self, report: MigrationReport) -> None:
        table = self._target.tables["idempotency"]
        prefix = DynamoRateLimiter.PREFIX
        for item in _scan(self._dynamodb, table):
            key = item[Keys.IDEMPOTENCY_PK]["S"]
            if not key.startswith(prefix):
                continue
            user_id, category, window = key[len(prefix) :].rsplit("#", 2)
            version = user_key_version(user_id)
            if version is None:
                continue
            if version >= self.hasher.current:
                report.already_current["rate_limit_counters"] += 1
                continue
            new_key = f"{prefix}{self.hasher.upgrade_user_id(user_id)}#{category}#{window}"
            merged = self._move(table, Keys.IDEMPOTENCY_PK, item, new_key, "rate_limit_counters")
            (report.merged if merged else report.moved)["rate_limit_counters"] += 1

    # -- the message log: its address-derived fields, rewritten in place --------------

    def _message_log(self, report: MigrationReport) -> None:
        table = self._target.tables["messages"]
        for item in _scan(self._dynamodb, table):
            if item.get(Keys.MESSAGES_SK, {}).get("S") != MESSAGE_LOG_REQUEST_SK:
                continue
            updates: dict[str, str] = {}
            recipient_hash = item.get("recipient_hash", {}).get("S")
            if recipient_hash:
                try:
                    if hash_version(recipient_hash) < self.hasher.current:
                        updates["recipient_hash"] = self.hasher.upgrade_hash(recipient_hash)
                except ValueError:
                    pass
            user_id = item.get("user_id", {}).get("S", "")
            version = user_key_version(user_id)
            if version is not None and version < self.hasher.current:
                updates["user_id"] = self.hasher.upgrade_user_id(user_id)
            if not updates:
                report.already_current["message_log"] += 1
                continue
            report.moved["message_log"] += 1
            if self._dry_run:
                continue
            names = {f"#f{i}": name for i, name in enumerate(updates)}
            values = {f":v{i}": {"S": value} for i, value in enumerate(updates.values())}
            self._dynamodb.update_item(
                TableName=table,
                Key={Keys.MESSAGES_PK: item[Keys.MESSAGES_PK], Keys.MESSAGES_SK: item[Keys.MESSAGES_SK]},
                UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(updates))),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )

    # -- moving one item -------------------------------------------------------

    def _move(self, table: str, key_name: str, old: dict[str, Any], new_key: str, kind: str) -> bool:
        """Write `old` under `new_key` (merged with what is there) and delete it, in one transaction.

        True when it was merged into an item already there. Each write is conditional, so
        a function writing the same item meanwhile is never overwritten: the move is
        read and tried again.
        """
        old_key = {key_name: old[key_name]}
        for _ in range(MOVE_ATTEMPTS):
            current = self._dynamodb.get_item(TableName=table, Key={key_name: {"S": new_key}}, ConsistentRead=True)
            target = current.get("Item")
            if self._dry_run:
                return target is not None
            write = _write(table, key_name, new_key, old, target, kind)
            delete = {
                "TableName": table,
                "Key": old_key,
                "ConditionExpression": "attribute_exists(#k)",
                "ExpressionAttributeNames": {"#k": key_name},
            }
            try:
                self._dynamodb.transact_write_items(TransactItems=[write, {"Delete": delete}])
                return target is not None
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
            again = self._dynamodb.get_item(TableName=table, Key=old_key, ConsistentRead=True).get("Item")
            if again is None:  # another run moved it first
                return False
            old = again
        raise MigrationError(f"{kind}: an item kept changing while it was moved; run the migration again")


MOVE_ATTEMPTS = 5


def _write(
    table: str, key_name: str, new_key: str, old: dict[str, Any], target: dict[str, Any] | None, kind: str
) -> dict[str, Any]:
    """The transaction item that puts `old` under `new_key`, merged with `target` as each kind merges."""
    names = {"#k": key_name}
    if target is None:
        item = {**old, key_name: {"S": new_key}}
        return {
            "Put": {
                "TableName": table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(#k)",
                "ExpressionAttributeNames": names,
            }
        }
    key = {key_name: {"S": new_key}}
    if kind == "suppressions":
        # Entries are versioned by the suppression service: a read-merge-write guarded by the version.
        merged = {**_merge_suppression_entry(target, old), key_name: {"S": new_key}}
        version = target.get("version", {}).get("N")
        condition = "#v = :v" if version is not None else "attribute_not_exists(#v)"
        put: dict[str, Any] = {
            "TableName": table,
            "Item": merged,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#v": "version"},
        }
        if version is not None:
            put["ExpressionAttributeValues"] = {":v": {"N": version}}
        return {"Put": put}
    sets: list[str] = []
    adds: list[str] = []
    merged_fields: tuple[str, ...]
    values: dict[str, Any] = {}
    if kind in ("audit_trails", "soft_bounce_counts"):
        # Appended by the functions: the older records go first, atomically.
        listed = "entries" if kind == "audit_trails" else "bounces"
        names["#l"] = listed
        values[":old"] = old.get(listed, {"L": []})
        values[":empty"] = {"L": []}
        sets.append("#l = list_append(:old, if_not_exists(#l, :empty))")
        merged_fields = (Keys.TTL, "masked")
    elif kind == "preferences":
        # Consent only narrows: opt-outs are united, an unsubscribe from all in either stays.
        if "opted_out" in old:
            names["#o"], values[":o"] = "opted_out", old["opted_out"]
            adds.append("#o :o")
        if old.get("unsubscribed_all", {}).get("BOOL"):
            names["#u"], values[":u"] = "unsubscribed_all", {"BOOL": True}
            sets.append("#u = :u")
        merged_fields = tuple(n for n in old if n not in (key_name, "opted_out", "unsubscribed_all"))
    else:  # rate-limit counters: the requests counted in the window under either key
        if "request_ids" in old:
            names["#ids"], values[":ids"] = "request_ids", old["request_ids"]
            adds.append("#ids :ids")
        merged_fields = (Keys.TTL,)
    for index, name in enumerate(n for n in merged_fields if n in old):
        names[f"#m{index}"], values[f":m{index}"] = name, old[name]
        sets.append(f"#m{index} = if_not_exists(#m{index}, :m{index})")
    if not sets and not adds:  # nothing in the old item to carry over: only its deletion remains
        return {
            "ConditionCheck": {
                "TableName": table,
                "Key": key,
                "ConditionExpression": "attribute_exists(#k)",
                "ExpressionAttributeNames": {"#k": key_name},
            }
        }
    expression = " ".join(
        part for part in ("SET " + ", ".join(sets) if sets else "", "ADD " + ", ".join(adds) if adds else "") if part
    )
    return {
        "Update": {
            "TableName": table,
            "Key": key,
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(#k)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


_RANK = {"SOFT_BOUNCE": 1, "COMPLAINT": 2, "BOUNCE": 3, "MANUAL": 3}


def _strings(item: dict[str, Any], name: str) -> set[str]:
    return set(item.get(name, {}).get("SS", []))


def _merge_suppression_entry(current: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """Of two entries for one address the stronger reason stays; every reason is remembered."""
    old_reason, reason = old.get("reason", {}).get("S", ""), current.get("reason", {}).get("S", "")
    merged = dict(old if _RANK.get(old_reason, 3) > _RANK.get(reason, 3) else current)
    reasons = _strings(old, "reasons") | _strings(current, "reasons") | {r for r in (old_reason, reason) if r}
    if reasons:
        merged["reasons"] = {"SS": sorted(reasons)}
    version = int(current.get("version", {}).get("N", "0"))
    merged["version"] = {"N": str(version + 1)}
    return merged
