"""The A/B variants' ledger in DynamoDB: one item per template in the idempotency table.

| attribute (item `pk` = `variants#<template_id>`) | what                                          |
|--------------------------------------------------|-----------------------------------------------|
| `names`                                          | the variants the template declared, as counted |
| `sent#<variant>`, `render_failures#<variant>`,    | counters since the variant was last switched on |
| `complaints#<variant>`                            |                                               |
| `off#<variant>`                                   | reason, at, actor, note: the variant is off    |

Counters are added with ADD (atomic, no read first) and the item comes back
with the write (ReturnValues ALL_NEW), so a count and the verdict on it cost
one request. A variant is switched off with a conditional SET: only if it is
on and another variant stays on, so of many workers one switches it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import as_transient, error_code
from mailwright.adapters.dynamodb import _plain
from mailwright.constants import VARIANTS_KEY_PREFIX, Keys
from mailwright.variants import SwitchedOff, TemplateVariants, VariantCounts

_COUNTERS = ("sent", "render_failures", "complaints")
_OFF = "off#"


def variants_key(template_id: str) -> str:
    """The `pk` of a template's variants item."""
    return VARIANTS_KEY_PREFIX + template_id


def parse_item(template_id: str, item: Mapping[str, Any]) -> TemplateVariants:
    """A variants item (plain values) as the service reads it."""
    counts: dict[str, dict[str, int]] = {}
    off: dict[str, SwitchedOff] = {}
    for name, value in item.items():
        kind, _, variant = name.partition("#")
        if not variant:
            continue
        if kind in _COUNTERS:
            counts.setdefault(variant, {})[kind] = int(value)
        elif name.startswith(_OFF) and isinstance(value, Mapping):
            off[variant] = SwitchedOff(
                reason=str(value.get("reason", "")),
                at=float(value.get("at", 0)),
                actor=str(value.get("actor", "")),
                note=str(value.get("note", "")),
            )
    return TemplateVariants(
        template_id=template_id,
        names=tuple(str(name) for name in item.get("names") or ()),
        counts={variant: VariantCounts(**values) for variant, values in counts.items()},
        off=off,
    )


class DynamoVariantLedger:
    """VariantLedger over the idempotency table."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def _key(self, template_id: str) -> dict[str, Any]:
        return {Keys.IDEMPOTENCY_PK: {"S": variants_key(template_id)}}

    def read(self, template_id: str) -> TemplateVariants:
        """The template's item (eventually consistent: workers cache it for seconds anyway)."""
        try:
            response = self._client.get_item(TableName=self._table, Key=self._key(template_id))
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        return parse_item(template_id, _plain(response.get("Item") or {}))

    def add(
        self, template_id: str, counts: Mapping[str, VariantCounts], *, names: Sequence[str] = ()
    ) -> TemplateVariants:
        """ADD each non-zero counter (and SET the names, when given); the item after the write."""
        names_map: dict[str, str] = {}
        values: dict[str, Any] = {}
        adds: list[str] = []
        for variant, count in sorted(counts.items()):
            for kind in _COUNTERS:
                value = getattr(count, kind)
                if value:
                    index = len(adds)
                    names_map[f"#c{index}"] = f"{kind}#{variant}"
                    values[f":c{index}"] = {"N": str(value)}
                    adds.append(f"#c{index} :c{index}")
        if not adds and not names:
            return self.read(template_id)
        expression = ("ADD " + ", ".join(adds)) if adds else ""
        if names:
            names_map["#names"] = "names"
            values[":names"] = {"L": [{"S": name} for name in names]}
            expression += " SET #names = :names"
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=self._key(template_id),
                UpdateExpression=expression.strip(),
                ExpressionAttributeNames=names_map,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        return parse_item(template_id, _plain(response.get("Attributes") or {}))

    def switch_off(self, template_id: str, variant: str, off: SwitchedOff, *, others: Sequence[str]) -> bool:
        """SET `off#<variant>` if it is absent and some other variant's is too."""
        names = {"#off": _OFF + variant}
        names.update({f"#o{i}": _OFF + other for i, other in enumerate(others)})
        still_on = " OR ".join(f"attribute_not_exists(#o{i})" for i in range(len(others)))
        condition = "attribute_not_exists(#off)" + (f" AND ({still_on})" if others else "")
        value = {
            "M": {
                "reason": {"S": off.reason},
                "at": {"N": f"{off.at:.3f}"},
                "actor": {"S": off.actor or "unknown"},
                "note": {"S": off.note or "-"},
            }
        }
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(template_id),
                UpdateExpression="SET #off = :off",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":off": value},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise as_transient(exc, "dynamodb") from None
        except BotoCoreError as exc:
            raise as_transient(exc, "dynamodb") from None
        return True

    def switch_on(self, template_id: str, variant: str) -> bool:
        """REMOVE `off#<variant>` and the variant's counters, if it was off."""
        names = {"#off": _OFF + variant, **{f"#k{i}": f"{kind}#{variant}" for i, kind in enumerate(_COUNTERS)}}
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(template_id),
                UpdateExpression="REMOVE " + ", ".join(names),
                ConditionExpression="attribute_exists(#off)",
                ExpressionAttributeNames=names,
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise as_transient(exc, "dynamodb") from None
        except BotoCoreError as exc:
            raise as_transient(exc, "dynamodb") from None
        return True
