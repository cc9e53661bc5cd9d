"""The preferences table as producers change it (CLI, SDK, import): versioned records and an audit trail.

A user's item holds the worker's attributes (`opted_out`, `unsubscribed_all`,
`locale`, `timezone`, `quiet_hours`) plus `producer_opt_outs` and
`producer_unsubscribe` (which of those choices the producer made) and a
`version` every writer bumps. The audit trail of a user id is one item under
`audit#<user id>`, a list appended to; user ids starting with `audit#` are
refused by the domain, so the two cannot collide.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import as_transient
from mailwright.adapters.dynamodb import preferences_from_item, transact_conditionally
from mailwright.constants import Keys
from mailwright.ports import PreferenceAudit, PreferenceRecord

AUDIT_PREFIX = "audit#"


def _record(item: dict[str, Any]) -> PreferenceRecord:
    updated = item.get("updated_at", {}).get("N")
    return PreferenceRecord(
        preferences=preferences_from_item(item),
        producer_opt_outs=frozenset(item.get("producer_opt_outs", {}).get("SS", ())),
        producer_unsubscribe=bool(item.get("producer_unsubscribe", {}).get("BOOL", False)),
        updated_at=float(updated) if updated is not None else None,
        source=str(item.get("source", {}).get("S", "")),
        version=int(item.get("version", {}).get("N", "0")),
    )


def _audit(user_id: str, value: dict[str, Any]) -> PreferenceAudit:
    return PreferenceAudit(
        user_id=user_id,
        at=float(value.get("at", {}).get("N", "0")),
        actor=str(value.get("actor", {}).get("S", "")),
        source=str(value.get("source", {}).get("S", "")),
        changes=tuple(str(change.get("S", "")) for change in value.get("changes", {}).get("L", [])),
        note=str(value.get("note", {}).get("S", "")),
        overrode_user_choice=bool(value.get("override", {}).get("BOOL", False)),
    )


class DynamoPreferenceLedger:
    """PreferenceLedger over the preferences table: conditional writes in one transaction with the audit append."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def read(self, user_ids: Collection[str]) -> dict[str, PreferenceRecord]:
        """The stored records (a user has one or two forms: a GetItem each, consistent)."""
        found = {}
        for user_id in user_ids:
            item = self._get(user_id)
            if item is not None:
                found[user_id] = _record(item)
        return found

    def _get(self, key: str) -> dict[str, Any] | None:
        try:
            response = self._client.get_item(
                TableName=self._table, Key={Keys.PREFERENCES_PK: {"S": key}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        item: dict[str, Any] | None = response.get("Item")
        return item

    def write(self, records: Sequence[tuple[PreferenceRecord, int | None]], *, audit: PreferenceAudit) -> bool:
        """Update every record on its version and append the audit record, in one transaction."""
        items = [{"Update": self._update(record, expected)} for record, expected in records]
        items.append({"Update": self._audit_update(audit)})
        return transact_conditionally(self._client, items)

    def _update(self, record: PreferenceRecord, expected: int | None) -> dict[str, Any]:
        """An UpdateItem (never a Put: attributes written elsewhere, such as `email`, stay)."""
        preferences = record.preferences
        names = {"#k": Keys.PREFERENCES_PK, "#v": "version"}
        values: dict[str, Any] = {":version": {"N": str(record.version)}}
        sets = ["#v = :version"]
        removes = []
        fields: dict[str, dict[str, Any] | None] = {
            "unsubscribed_all": {"BOOL": preferences.unsubscribed_all},
            "producer_unsubscribe": {"BOOL": True} if record.producer_unsubscribe else None,
            # DynamoDB has no empty sets: none means no attribute.
            "opted_out": {"SS": sorted(preferences.opted_out)} if preferences.opted_out else None,
            "producer_opt_outs": {"SS": sorted(record.producer_opt_outs)} if record.producer_opt_outs else None,
            "locale": {"S": preferences.locale} if preferences.locale else None,
            "timezone": {"S": preferences.timezone} if preferences.timezone else None,
            "quiet_hours": {"S": str(preferences.quiet_hours)} if preferences.quiet_hours else None,
            "updated_at": {"N": f"{record.updated_at:.3f}"} if record.updated_at is not None else None,
            "source": {"S": record.source} if record.source else None,
        }
        for index, (name, value) in enumerate(fields.items()):
            names[f"#f{index}"] = name
            if value is None:
                removes.append(f"#f{index}")
            else:
                values[f":f{index}"] = value
                sets.append(f"#f{index} = :f{index}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        if expected is None:
            condition = "attribute_not_exists(#k)"
        else:
            # Items written before versions existed have none: they count as version 0.
            condition = "attribute_exists(#k) AND (attribute_not_exists(#v) OR #v = :expected)"
            values[":expected"] = {"N": str(expected)}
        return {
            "TableName": self._table,
            "Key": {Keys.PREFERENCES_PK: {"S": preferences.user_id}},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def _audit_update(self, audit: PreferenceAudit) -> dict[str, Any]:
        value = {
            "at": {"N": f"{audit.at:.3f}"},
            "actor": {"S": audit.actor},
            "source": {"S": audit.source},
            "changes": {"L": [{"S": change} for change in audit.changes]},
            "note": {"S": audit.note},
            "override": {"BOOL": audit.overrode_user_choice},
        }
        return {
            "TableName": self._table,
            "Key": {Keys.PREFERENCES_PK: {"S": AUDIT_PREFIX + audit.user_id}},
            "UpdateExpression": "SET #entries = list_append(if_not_exists(#entries, :empty), :record)",
            "ExpressionAttributeNames": {"#entries": "entries"},
            "ExpressionAttributeValues": {":empty": {"L": []}, ":record": {"L": [{"M": value}]}},
        }

    def audit(self, user_id: str) -> list[PreferenceAudit]:
        """The user id's audit trail, in the order written."""
        item = self._get(AUDIT_PREFIX + user_id)
        if not item:
            return []
        return [_audit(user_id, entry.get("M", {})) for entry in item.get("entries", {}).get("L", [])]
