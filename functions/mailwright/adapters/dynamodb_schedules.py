"""The ScheduleStore over DynamoDB: scheduled and cancelled requests in the message log, cancels in the claims.

A scheduled request is its message-log `request` item with status
`scheduled`, its `send_at` and its owner (`scheduled_by`): those two keys put
it in the sparse SCHEDULE_INDEX, which `scheduled list` and `cancel --key`
query instead of scanning the table. The send's outcome (a Put) or a cancel
removes the owner, so the item leaves the index.

A cancel is one transaction over both tables: the request's dedupe claim
(taken, content hash CANCELLED_CLAIM, unless a send holds it) and the request
item (`scheduled`, or none yet, becomes `cancelled`). A cancelled cancel_key is
an item of the idempotency table, `cancelkey#<producer>|<key>`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import as_transient
from mailwright.adapters.dynamodb import (
    DynamoClaimStore,
    _BatchReader,
    _is_conditional_failure,
    _plain,
    transact_conditionally,
)
from mailwright.constants import (
    MESSAGE_LOG_REQUEST_SK,
    SCHEDULE_INDEX,
    SCHEDULE_INDEX_ATTRIBUTES,
    STATUS_CANCELLED,
    STATUS_SCHEDULED,
    Keys,
)
from mailwright.ports import CANCELLED_CLAIM, CancelResult, ScheduledRequest, ScheduleEntry

CANCEL_KEY_PREFIX = "cancelkey#"
# The attributes a ScheduledRequest is read from (SCHEDULE_INDEX projects them all).
_FIELDS = (Keys.SEND_AT, *SCHEDULE_INDEX_ATTRIBUTES)
# A cancel's dedupe claim holds the request for as long as the record lives: no lease ever runs out.
_FOREVER = 2**40


def _record(plain: dict[str, Any]) -> ScheduledRequest:
    def text(name: str) -> str | None:
        value = plain.get(name)
        return str(value) if value not in (None, "") else None

    def number(name: str) -> float | None:
        value = plain.get(name)
        return float(value) if value is not None else None

    return ScheduledRequest(
        request_id=str(plain[Keys.MESSAGES_PK]),
        status=str(plain.get("status", "")),
        send_at=number(Keys.SEND_AT),
        published_at=number("received_at"),
        lane=text("lane"),
        producer=text("producer"),
        user_id=text("user_id"),
        template_id=text("template_id"),
        recipient_masked=text("recipient_masked"),
        cancel_key=text("cancel_key"),
    )


class DynamoScheduleStore:
    """ScheduleStore over the messages table (records) and the idempotency table (claims, cancel keys)."""

    def __init__(
        self,
        client: Any,
        *,
        messages_table: str,
        idempotency_table: str,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._messages = messages_table
        self._idempotency = idempotency_table
        self._clock = clock
        self._reader = _BatchReader(client, sleep)

    def _key(self, request_id: str) -> dict[str, Any]:
        return {Keys.MESSAGES_PK: {"S": request_id}, Keys.MESSAGES_SK: {"S": MESSAGE_LOG_REQUEST_SK}}

    def read(self, request_ids: Collection[str]) -> dict[str, ScheduledRequest]:
        """The records of the request ids that have one (read consistently)."""
        if not request_ids:
            return {}
        names = {f"#f{i}": name for i, name in enumerate((Keys.MESSAGES_PK, *_FIELDS))}
        items = self._reader.read(
            self._messages, [self._key(rid) for rid in sorted(request_ids)], ", ".join(names), names
        )
        return {record.request_id: record for record in (_record(_plain(item)) for item in items)}

    def add(self, entry: ScheduleEntry) -> ScheduledRequest | None:
        """Put the `scheduled` item unless the request has one; None when added, else the item there."""
        record = entry.request
        assert record.send_at is not None
        at = f"{entry.recorded_at:.3f}"
        item: dict[str, Any] = {
            **self._key(record.request_id),
            "status": {"S": STATUS_SCHEDULED},
            "lane": {"S": record.lane or ""},
            "completed_at": {"N": at},
            "attempts": {"N": "1"},
            "evaluation": {"N": "1"},
            "history": {"L": [{"M": {"status": {"S": STATUS_SCHEDULED}, "at": {"N": at}, "evaluation": {"N": "1"}}}]},
            Keys.SEND_AT: {"N": f"{record.send_at:.3f}"},
            Keys.SCHEDULE_OWNER: {"S": record.producer or "-"},
            Keys.TTL: {"N": str(entry.expires_at)},
        }
        if record.published_at is not None:
            item["received_at"] = {"N": f"{record.published_at:.3f}"}
        optional = {
            "producer": record.producer,
            "user_id": record.user_id,
            "template_id": record.template_id,
            "recipient_masked": record.recipient_masked,
            "cancel_key": record.cancel_key,
            Keys.RECIPIENT_HASH: entry.recipient_hash,
        }
        item.update({name: {"S": value} for name, value in optional.items() if value})
        try:
            self._client.put_item(
                TableName=self._messages,
                Item=item,
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames={"#k": Keys.MESSAGES_PK},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise as_transient(exc, "dynamodb") from None
            old: Any = exc.response.get("Item")
            if old:
                return _record(_plain(old))
            found = self.read([record.request_id]).get(record.request_id)
            return found or ScheduledRequest(record.request_id, STATUS_SCHEDULED, record.send_at)
        except BotoCoreError as exc:
            raise as_transient(exc, "dynamodb") from None
        return None

    def cancelled_keys(self, scoped_keys: Collection[str]) -> dict[str, float]:
        """When each cancel_key was cancelled, for those that were."""
        if not scoped_keys:
            return {}
        keys = [{Keys.IDEMPOTENCY_PK: {"S": CANCEL_KEY_PREFIX + key}} for key in sorted(scoped_keys)]
        names = {"#k": Keys.IDEMPOTENCY_PK, "#c": "cancelled_at"}
        found = {}
        for item in map(_plain, self._reader.read(self._idempotency, keys, "#k, #c", names)):
            found[str(item[Keys.IDEMPOTENCY_PK]).removeprefix(CANCEL_KEY_PREFIX)] = float(item["cancelled_at"])
        return found

    def cancel(self, request_id: str, *, at: float, reason: str, expires_at: int) -> CancelResult:
        """Take the request's claim and mark its item `cancelled`, both or neither; say what it is now."""
        when = {"N": f"{at:.3f}"}
        entry = {
            "M": {"status": {"S": STATUS_CANCELLED}, "at": when, "evaluation": {"N": "1"}, "reason_code": {"S": reason}}
        }
        claim = {
            "Put": {
                "TableName": self._idempotency,
                "Item": {
                    Keys.IDEMPOTENCY_PK: {"S": DynamoClaimStore.PREFIX + request_id},
                    "content_hash": {"S": CANCELLED_CLAIM},
                    "lease_id": {"S": CANCELLED_CLAIM},
                    "lease_until": {"N": str(_FOREVER)},
                    Keys.TTL: {"N": str(expires_at)},
                },
                # No send holds the claim (or this is a repeat of the same cancel).
                "ConditionExpression": "attribute_not_exists(#k) OR content_hash = :c",
                "ExpressionAttributeNames": {"#k": Keys.IDEMPOTENCY_PK},
                "ExpressionAttributeValues": {":c": {"S": CANCELLED_CLAIM}},
            }
        }
        record = {
            "Update": {
                "TableName": self._messages,
                "Key": self._key(request_id),
                "UpdateExpression": "SET #s = :cancelled, completed_at = :at, reason_code = :why, #e = :ttl, "
                "lane = if_not_exists(lane, :none), attempts = if_not_exists(attempts, :one), "
                "evaluation = if_not_exists(evaluation, :one), "
                "#h = list_append(if_not_exists(#h, :empty), :entry) REMOVE #o",
                "ConditionExpression": "attribute_not_exists(#k) OR #s = :scheduled",
                "ExpressionAttributeNames": {
                    "#k": Keys.MESSAGES_PK,
                    "#s": "status",
                    "#e": Keys.TTL,
                    "#h": "history",
                    "#o": Keys.SCHEDULE_OWNER,
                },
                "ExpressionAttributeValues": {
                    ":cancelled": {"S": STATUS_CANCELLED},
                    ":scheduled": {"S": STATUS_SCHEDULED},
                    ":at": when,
                    ":why": {"S": reason},
                    ":ttl": {"N": str(expires_at)},
                    ":none": {"S": "-"},
                    ":one": {"N": "1"},
                    ":empty": {"L": []},
                    ":entry": {"L": [entry]},
                },
            }
        }
        if transact_conditionally(self._client, [claim, record]):
            return CancelResult(request_id, STATUS_CANCELLED, changed=True)
        found = self.read([request_id]).get(request_id)
        # A claim without a record: a worker is sending it right now.
        status = found.status if found is not None else "sending"
        return CancelResult(request_id, status, changed=False, send_at=found.send_at if found else None)

    def cancel_key(self, scoped_key: str, *, at: float, expires_at: int) -> None:
        """Record the cancel of a cancel_key; a later cancel of the same key moves its time forward."""
        try:
            self._client.put_item(
                TableName=self._idempotency,
                Item={
                    Keys.IDEMPOTENCY_PK: {"S": CANCEL_KEY_PREFIX + scoped_key},
                    "cancelled_at": {"N": f"{at:.3f}"},
                    Keys.TTL: {"N": str(expires_at)},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None

    def reschedule(self, request_id: str, *, send_at: float, expires_at: int) -> CancelResult:
        """Move a `scheduled` item's send_at (and its expiry); otherwise say what it is."""
        try:
            self._client.update_item(
                TableName=self._messages,
                Key=self._key(request_id),
                UpdateExpression="SET #t = :t, #e = :ttl",
                ConditionExpression="#s = :scheduled",
                ExpressionAttributeNames={"#t": Keys.SEND_AT, "#e": Keys.TTL, "#s": "status"},
                ExpressionAttributeValues={
                    ":t": {"N": f"{send_at:.3f}"},
                    ":ttl": {"N": str(expires_at)},
                    ":scheduled": {"S": STATUS_SCHEDULED},
                },
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise as_transient(exc, "dynamodb") from None
            found = self.read([request_id]).get(request_id)
            return CancelResult(request_id, found.status if found else None, changed=False)
        except BotoCoreError as exc:
            raise as_transient(exc, "dynamodb") from None
        return CancelResult(request_id, STATUS_SCHEDULED, changed=True, send_at=send_at)

    def scheduled(
        self, owner: str, *, user_id: str | None = None, cancel_key: str | None = None, limit: int = 100
    ) -> list[ScheduledRequest]:
        """Query SCHEDULE_INDEX for the owner's items, soonest first; user and key filter within the query."""
        names = {"#o": Keys.SCHEDULE_OWNER}
        values: dict[str, Any] = {":o": {"S": owner}}
        filters = []
        if user_id is not None:
            names["#u"], values[":u"] = "user_id", {"S": user_id}
            filters.append("#u = :u")
        if cancel_key is not None:
            names["#c"], values[":c"] = "cancel_key", {"S": cancel_key}
            filters.append("#c = :c")
        request: dict[str, Any] = {
            "TableName": self._messages,
            "IndexName": SCHEDULE_INDEX,
            "KeyConditionExpression": "#o = :o",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        found: list[ScheduledRequest] = []
        while len(found) < limit:
            try:
                response = self._client.query(**request)
            except (ClientError, BotoCoreError) as exc:
                raise as_transient(exc, "dynamodb") from None
            found.extend(_record(_plain(item)) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            request["ExclusiveStartKey"] = last
        return [item for item in found if item.status == STATUS_SCHEDULED][:limit]
