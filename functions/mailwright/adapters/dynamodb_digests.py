"""DigestStore over the idempotency table: digest windows, the requests folded into them, and who folded where.

Items (partition key `pk` only, like the table's other items):

    digest#<key>              head: `n`, the number of the key's newest window
    digest#<key>#<n>          window n: state (open|sending), opened_at, closes_at, max_items,
                              email (M), items (M: request id -> {at, data as JSON}), count
    digest#req#<request id>   marker: the window the request was folded into

A fold is one transaction: add the request to window n (condition: open and
not full) and put its marker (condition: none yet). A redelivered request
finds its marker and is never listed twice, even once its window has closed
and a newer one is open. Closing is one conditional update (open -> sending),
so a window is sent once whoever closes it. The items stay under DynamoDB's
400 KB: at most MAX_DIGEST_ITEMS items of at most MAX_DIGEST_ITEM_BYTES each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import as_transient
from mailwright.adapters.dynamodb import _is_conditional_failure, _plain, transact_conditionally
from mailwright.constants import DIGEST_KEY_PREFIX, Keys
from mailwright.errors import TransientError
from mailwright.ports import DIGEST_OPEN, DIGEST_SENDING, DigestFold, DigestItem, DigestWindow

# Windows tried for one fold before giving up (the record is retried): each closed or full window moves
# the fold on to the next one, and several workers may be opening the same one.
MAX_FOLD_ATTEMPTS = 6


def _pk(value: str) -> dict[str, Any]:
    return {Keys.IDEMPOTENCY_PK: {"S": value}}


def _head(key: str) -> str:
    return f"{DIGEST_KEY_PREFIX}{key}"


def _window(key: str, number: int) -> str:
    return f"{DIGEST_KEY_PREFIX}{key}#{number}"


def _marker(request_id: str) -> str:
    return f"{DIGEST_KEY_PREFIX}req#{request_id}"


def _typed(value: Any) -> dict[str, Any]:
    """A plain value (str, number, bool, None, map, list) as a DynamoDB attribute value."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, (int, float)):
        return {"N": str(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): _typed(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [_typed(v) for v in value]}
    return {"S": str(value)}


class DynamoDigestStore:
    """DigestStore over the idempotency table (see the module docstring for the items)."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def fold(
        self,
        key: str,
        item: DigestItem,
        *,
        window_seconds: int,
        max_items: int,
        email: Mapping[str, Any],
        ttl_seconds: int,
    ) -> DigestFold:
        """Fold a request into the key's open window (opening one when none takes it); a request folds once."""
        again = self._folded_before(key, item.request_id)
        if again is not None:
            return again
        number = self._newest(key)
        entry = {"M": {"at": {"N": f"{item.at:.3f}"}, "data": {"S": json.dumps(dict(item.data), sort_keys=True)}}}
        expires = {"N": str(int(item.at + window_seconds + ttl_seconds))}
        for _ in range(MAX_FOLD_ATTEMPTS):
            marker = {
                "Put": {
                    "TableName": self._table,
                    "Item": {**_pk(_marker(item.request_id)), "n": {"N": str(number)}, Keys.TTL: expires},
                    "ConditionExpression": "attribute_not_exists(#k)",
                    "ExpressionAttributeNames": {"#k": Keys.IDEMPOTENCY_PK},
                }
            }
            add = {
                "Update": {
                    "TableName": self._table,
                    "Key": _pk(_window(key, number)),
                    "UpdateExpression": "SET #items.#rid = :entry ADD #count :one",
                    "ConditionExpression": "#state = :open AND #count < #max",
                    "ExpressionAttributeNames": {
                        "#items": "items",
                        "#rid": item.request_id,
                        "#count": "count",
                        "#state": "state",
                        "#max": "max_items",
                    },
                    "ExpressionAttributeValues": {":entry": entry, ":one": {"N": "1"}, ":open": {"S": DIGEST_OPEN}},
                }
            }
            if transact_conditionally(self._client, [add, marker]):
                return DigestFold(window=self._require(key, number))
            again = self._folded_before(key, item.request_id)
            if again is not None:  # another delivery of the same request folded it meanwhile
                return again
            window = self.read(key, number)
            if window is None:
                opened = self._open(key, number, item, entry, expires, window_seconds, max_items, email, marker)
                if opened is not None:
                    return opened
                continue  # another request opened it first: add to it on the next attempt
            number += 1  # closed or full: the next window
        raise TransientError("digest_contended", f"could not fold into digest {key} after {MAX_FOLD_ATTEMPTS} tries")

    def _open(
        self,
        key: str,
        number: int,
        item: DigestItem,
        entry: dict[str, Any],
        expires: dict[str, Any],
        window_seconds: int,
        max_items: int,
        email: Mapping[str, Any],
        marker: dict[str, Any],
    ) -> DigestFold | None:
        window = {
            **_pk(_window(key, number)),
            "state": {"S": DIGEST_OPEN},
            "opened_at": {"N": f"{item.at:.3f}"},
            "closes_at": {"N": f"{item.at + window_seconds:.3f}"},
            "max_items": {"N": str(max_items)},
            "email": _typed(email),
            "items": {"M": {item.request_id: entry}},
            "count": {"N": "1"},
            Keys.TTL: expires,
        }
        items = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": window,
                    "ConditionExpression": "attribute_not_exists(#k)",
                    "ExpressionAttributeNames": {"#k": Keys.IDEMPOTENCY_PK},
                }
            },
            marker,
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {**_pk(_head(key)), "n": {"N": str(number)}, Keys.TTL: expires},
                }
            },
        ]
        if not transact_conditionally(self._client, items):
            return None
        return DigestFold(window=self._require(key, number), opened=True)

    def _folded_before(self, key: str, request_id: str) -> DigestFold | None:
        found = self._get(_marker(request_id))
        if found is None:
            return None
        window = self.read(key, int(found["n"]))
        return None if window is None else DigestFold(window=window, again=True)

    def _newest(self, key: str) -> int:
        head = self._get(_head(key))
        return int(head["n"]) if head else 0

    def _require(self, key: str, number: int) -> DigestWindow:
        window = self.read(key, number)
        if window is None:  # written a moment ago; only a manual delete gets here
            raise TransientError("digest_missing", f"digest window {key}#{number} vanished")
        return window

    def read(self, key: str, number: int) -> DigestWindow | None:
        """A window as stored, or None."""
        found = self._get(_window(key, number))
        return None if found is None else _window_of(key, number, found)

    def close(self, key: str, number: int) -> DigestWindow | None:
        """Close an open window (open -> sending; once, whoever asks first); the window, or None when absent."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_pk(_window(key, number)),
                UpdateExpression="SET #state = :sending",
                ConditionExpression="#state = :open",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":open": {"S": DIGEST_OPEN}, ":sending": {"S": DIGEST_SENDING}},
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):  # closed before, or absent: read says which
                raise as_transient(exc, "dynamodb") from None
        except BotoCoreError as exc:
            raise as_transient(exc, "dynamodb") from None
        return self.read(key, number)

    def _get(self, pk: str) -> dict[str, Any] | None:
        try:
            response = self._client.get_item(TableName=self._table, Key=_pk(pk), ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        item = response.get("Item")
        return _plain(item) if item else None


def _window_of(key: str, number: int, item: Mapping[str, Any]) -> DigestWindow:
    """A window item (plain values) as the domain reads it: items oldest first."""
    items = sorted(
        (
            DigestItem(request_id=str(rid), at=float(value["at"]), data=json.loads(value["data"]))
            for rid, value in (item.get("items") or {}).items()
        ),
        key=lambda i: (i.at, i.request_id),
    )
    return DigestWindow(
        key=key,
        number=number,
        state=str(item.get("state", DIGEST_OPEN)),
        opened_at=float(item["opened_at"]),
        closes_at=float(item["closes_at"]),
        max_items=int(item["max_items"]),
        email=dict(item.get("email") or {}),
        items=tuple(items),
    )
