"""The recipient index of the messages table (RECIPIENT_INDEX): a request's keyed address hash to its request id.

Keys only: the index holds the table's keys, `recipient_hash` and
`completed_at`, ~200 bytes per request and one write unit when the request
is logged (the feedback function's appends change neither key, so they write
nothing to it). A page of a search reads the index, then its request items
with one BatchGetItem (eventually consistent, as the index itself is).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import as_transient
from mailwright.adapters.dynamodb import BATCH_GET_LIMIT, UNPROCESSED_ATTEMPTS, _chunks, _plain
from mailwright.constants import MESSAGE_LOG_REQUEST_SK, RECIPIENT_INDEX, Keys
from mailwright.errors import TransientError
from mailwright.ports import IndexEntry, IndexPage, with_feedback


class DynamoRecipientIndex:
    """RecipientIndex over the messages table's recipient index and its request items."""

    def __init__(self, client: Any, table: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._table = table
        self._sleep = sleep

    def newest(self, address_hash: str, *, since: float | None, after: IndexEntry | None, limit: int) -> IndexPage:
        """One Query of the index, newest first, continuing after `after` (the index's own position)."""
        condition = "#h = :h"
        names = {"#h": Keys.RECIPIENT_HASH}
        values: dict[str, Any] = {":h": {"S": address_hash}}
        if since is not None:
            # DynamoDB refuses names and values an expression does not use: these only with `since`.
            condition += " AND #t >= :since"
            names["#t"] = Keys.COMPLETED_AT
            values[":since"] = {"N": repr(float(since))}
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": RECIPIENT_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after is not None:
            # A position needs the index's keys and the table's: every indexed item is a `request` item.
            params["ExclusiveStartKey"] = {
                Keys.RECIPIENT_HASH: {"S": address_hash},
                Keys.COMPLETED_AT: {"N": repr(after.completed_at)},
                Keys.MESSAGES_PK: {"S": after.request_id},
                Keys.MESSAGES_SK: {"S": MESSAGE_LOG_REQUEST_SK},
            }
        try:
            response = self._client.query(**params)
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        entries = [
            IndexEntry(request_id=item[Keys.MESSAGES_PK]["S"], completed_at=float(item[Keys.COMPLETED_AT]["N"]))
            for item in response.get("Items", [])
        ]
        return IndexPage(entries=entries, more="LastEvaluatedKey" in response)

    def requests(self, request_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """The request items (BatchGetItem, eventually consistent), with `events` and `delivery` derived."""
        keys = [
            {Keys.MESSAGES_PK: {"S": request_id}, Keys.MESSAGES_SK: {"S": MESSAGE_LOG_REQUEST_SK}}
            for request_id in dict.fromkeys(request_ids)
        ]
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(keys, BATCH_GET_LIMIT):
            request: dict[str, Any] = {self._table: {"Keys": list(chunk)}}
            for attempt in range(UNPROCESSED_ATTEMPTS):
                try:
                    response = self._client.batch_get_item(RequestItems=request)
                except (ClientError, BotoCoreError) as exc:
                    raise as_transient(exc, "dynamodb") from None
                for raw in response.get("Responses", {}).get(self._table, []):
                    item = _plain(raw)
                    found[str(item[Keys.MESSAGES_PK])] = with_feedback(item)
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                self._sleep(0.05 * 2**attempt)
            else:
                raise TransientError("dynamodb_unprocessed", f"{self._table}: keys left unprocessed after retries")
        return found
