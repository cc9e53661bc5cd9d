"""Amazon DynamoDB adapters: suppressions, preferences, dedupe claims, rate limits, message log.

Low-level client calls with explicit attribute types: faster to import and
run than the resource API, and every request is visible here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import as_transient, error_code
from mailwright.constants import MESSAGE_LOG_REQUEST_SK, Keys
from mailwright.errors import TransientError
from mailwright.ports import SCOPE_ALL, ClaimRecord, ClaimResult, Outcome, Preferences, Suppression
from mailwright.settings import RateLimit

_deserializer = TypeDeserializer()
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
UNPROCESSED_ATTEMPTS = 5


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain Python values (numbers as int or float, sets as sets)."""
    return {key: _unwrap(_deserializer.deserialize(value)) for key, value in item.items()}


def _unwrap(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _is_conditional_failure(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


class _BatchReader:
    """BatchGetItem with the retries of unprocessed keys that DynamoDB asks for."""

    def __init__(self, client: Any, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._sleep = sleep

    def read(
        self, table: str, keys: Sequence[dict[str, Any]], projection: str, names: dict[str, str]
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for chunk in _chunks(keys, BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                table: {"Keys": list(chunk), "ProjectionExpression": projection, "ExpressionAttributeNames": names}
            }
            for attempt in range(UNPROCESSED_ATTEMPTS):
                try:
                    response = self._client.batch_get_item(RequestItems=request)
                except (ClientError, BotoCoreError) as exc:
                    raise as_transient(exc, "dynamodb") from None
                items.extend(response.get("Responses", {}).get(table, []))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                self._sleep(0.05 * 2**attempt)
            else:
                raise TransientError("dynamodb_unprocessed", f"{table}: keys left unprocessed after retries")
        return items


class DynamoSuppressionStore:
    """SuppressionStore over the suppression table (key: address hash)."""

    def __init__(self, client: Any, table: str) -> None:
        self._reader = _BatchReader(client)
        self._table = table

    def get_many(self, address_hashes: Collection[str]) -> dict[str, Suppression]:
        """Suppressions of the given address hashes that exist."""
        keys = [{Keys.SUPPRESSION_PK: {"S": h}} for h in sorted(address_hashes)]
        names = {"#k": Keys.SUPPRESSION_PK, "#r": "reason", "#s": "scope", "#e": Keys.TTL}
        found = {}
        for raw in self._reader.read(self._table, keys, "#k, #r, #s, #e", names):
            item = _plain(raw)
            found[item[Keys.SUPPRESSION_PK]] = Suppression(
                address_hash=item[Keys.SUPPRESSION_PK],
                reason=str(item.get("reason", "UNKNOWN")),
                scope=str(item.get("scope", SCOPE_ALL)),
                expires_at=item.get(Keys.TTL),
            )
        return found


class DynamoPreferenceStore:
    """PreferenceStore over the preferences table (key: user id)."""

    def __init__(self, client: Any, table: str) -> None:
        self._reader = _BatchReader(client)
        self._table = table

    def get_many(self, user_ids: Collection[str]) -> dict[str, Preferences]:
        """Preferences of the given users that have any."""
        keys = [{Keys.PREFERENCES_PK: {"S": u}} for u in sorted(user_ids)]
        names = {"#k": Keys.PREFERENCES_PK, "#u": "unsubscribed_all", "#o": "opted_out", "#l": "locale"}
        found = {}
        for raw in self._reader.read(self._table, keys, "#k, #u, #o, #l", names):
            item = _plain(raw)
            found[item[Keys.PREFERENCES_PK]] = Preferences(
                user_id=item[Keys.PREFERENCES_PK],
                unsubscribed_all=bool(item.get("unsubscribed_all", False)),
                opted_out=frozenset(item.get("opted_out") or ()),
                locale=item.get("locale"),
            )
        return found


class DynamoClaimStore:
    """ClaimStore over the idempotency table: one conditional write claims a request."""

    PREFIX = "claim#"

    def __init__(self, client: Any, table: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._clock = clock

    def claim(self, request_id: str, content_hash: str, *, lease_seconds: int, ttl_seconds: int) -> ClaimResult:
        """Claim `request_id`; on conflict, return the record already there."""
        now = self._clock()
        lease_id = uuid.uuid4().hex
        item = {
            Keys.IDEMPOTENCY_PK: {"S": self.PREFIX + request_id},
            "content_hash": {"S": content_hash},
            "lease_id": {"S": lease_id},
            "lease_until": {"N": str(int(now + lease_seconds))},
            Keys.TTL: {"N": str(int(now + max(ttl_seconds, lease_seconds)))},
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames={"#k": Keys.IDEMPOTENCY_PK},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return ClaimResult(won=True, lease_id=lease_id)
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise as_transient(exc, "dynamodb") from None
            returned: Any = exc.response.get("Item")
            old = returned or self._read(request_id)
        except BotoCoreError as exc:
            raise as_transient(exc, "dynamodb") from None
        if not old:  # deleted between our write and our read: let the caller retry
            return ClaimResult(won=False, lease_id="")
        plain = _plain(old)
        existing = ClaimRecord(
            request_id=request_id,
            content_hash=str(plain.get("content_hash", "")),
            lease_id=str(plain.get("lease_id", "")),
            lease_until=float(plain.get("lease_until", 0)),
        )
        return ClaimResult(won=False, lease_id="", existing=existing)

    def _read(self, request_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key={Keys.IDEMPOTENCY_PK: {"S": self.PREFIX + request_id}}, ConsistentRead=True
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def take_over(self, record: ClaimRecord, *, lease_seconds: int) -> str | None:
        """Replace an expired lease with ours, unless someone else did first."""
        lease_id = uuid.uuid4().hex
        try:
            self._client.update_item(
                TableName=self._table,
                Key={Keys.IDEMPOTENCY_PK: {"S": self.PREFIX + record.request_id}},
                UpdateExpression="SET lease_id = :new, lease_until = :until",
                ConditionExpression="lease_id = :old",
                ExpressionAttributeValues={
                    ":new": {"S": lease_id},
                    ":old": {"S": record.lease_id},
                    ":until": {"N": str(int(self._clock() + lease_seconds))},
                },
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return None
            raise as_transient(exc, "dynamodb") from None
        return lease_id

    def release(self, request_id: str, lease_id: str) -> None:
        """Delete our claim (only if we still hold it)."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={Keys.IDEMPOTENCY_PK: {"S": self.PREFIX + request_id}},
                ConditionExpression="lease_id = :lease",
                ExpressionAttributeValues={":lease": {"S": lease_id}},
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise as_transient(exc, "dynamodb") from None


class DynamoRateLimiter:
    """RateLimiter over the idempotency table: a counter per user, category and window, expiring with it."""

    PREFIX = "rate#"

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def acquire(self, user_id: str, category: str, limit: RateLimit, *, now: float) -> bool:
        """Count one email; False (nothing counted) when the window already holds `limit`."""
        window = int(now // limit.window_seconds) * limit.window_seconds
        try:
            self._client.update_item(
                TableName=self._table,
                Key={Keys.IDEMPOTENCY_PK: {"S": f"{self.PREFIX}{user_id}#{category}#{window}"}},
                UpdateExpression="ADD #n :one SET #e = if_not_exists(#e, :expires)",
                ConditionExpression="attribute_not_exists(#n) OR #n < :limit",
                ExpressionAttributeNames={"#n": "count", "#e": Keys.TTL},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit.limit)},
                    ":expires": {"N": str(window + limit.window_seconds)},
                },
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise as_transient(exc, "dynamodb") from None
        except BotoCoreError as exc:
            raise as_transient(exc, "dynamodb") from None
        return True


class DynamoMessageLog:
    """MessageLog over the messages table: one `request` item per request, feedback events beside it."""

    def __init__(self, client: Any, table: str, *, ttl_days: int, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._table = table
        self._ttl_seconds = ttl_days * 86400
        self._reader = _BatchReader(client, sleep)
        self._sleep = sleep

    def _item(self, outcome: Outcome) -> dict[str, Any]:
        done = outcome.completed_at
        item: dict[str, Any] = {
            Keys.MESSAGES_PK: {"S": outcome.request_id},
            Keys.MESSAGES_SK: {"S": MESSAGE_LOG_REQUEST_SK},
            "status": {"S": outcome.status},
            "lane": {"S": outcome.lane},
            "completed_at": {"N": f"{done:.3f}"},
            "attempts": {"N": str(outcome.attempts)},
            "history": {"L": [{"M": {"status": {"S": outcome.status}, "at": {"N": f"{done:.3f}"}}}]},
            Keys.TTL: {"N": str(int(done + self._ttl_seconds))},
        }
        optional = {
            "reason_code": outcome.reason_code,
            "reason": outcome.reason,
            Keys.SES_MESSAGE_ID: outcome.ses_message_id,
            "template_id": outcome.template_id,
            "template_version": outcome.template_version,
            "category": outcome.category,
            "locale": outcome.locale,
            "user_id": outcome.user_id,
            "recipient_hash": outcome.recipient_hash,
            "recipient_masked": outcome.recipient_masked,
        }
        for key, value in optional.items():
            if value:
                item[key] = {"S": value}
        if outcome.received_at is not None:
            item["received_at"] = {"N": f"{outcome.received_at:.3f}"}
        if outcome.metadata:
            item["metadata"] = {"M": {k: {"S": v} for k, v in outcome.metadata.items()}}
        return item

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Write the outcomes, 25 per BatchWriteItem, retrying unprocessed items."""
        # One item per request id: a batch holding the same request twice writes it once.
        items = list({o.request_id: self._item(o) for o in outcomes}.values())
        for chunk in _chunks(items, BATCH_WRITE_LIMIT):
            request: dict[str, Any] = {self._table: [{"PutRequest": {"Item": item}} for item in chunk]}
            for attempt in range(UNPROCESSED_ATTEMPTS):
                try:
                    response = self._client.batch_write_item(RequestItems=request)
                except (ClientError, BotoCoreError) as exc:
                    raise as_transient(exc, "dynamodb") from None
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
                self._sleep(0.05 * 2**attempt)
            else:
                raise TransientError("dynamodb_unprocessed", "message log items left unprocessed after retries")

    def statuses(self, request_ids: Collection[str]) -> dict[str, str]:
        """Recorded status by request id."""
        keys = [
            {Keys.MESSAGES_PK: {"S": rid}, Keys.MESSAGES_SK: {"S": MESSAGE_LOG_REQUEST_SK}}
            for rid in sorted(request_ids)
        ]
        names = {"#k": Keys.MESSAGES_PK, "#s": "status"}
        return {
            item[Keys.MESSAGES_PK]: item["status"]
            for item in map(_plain, self._reader.read(self._table, keys, "#k, #s", names))
        }

    def get(self, request_id: str) -> dict[str, Any] | None:
        """The request item with its feedback events under `events`, or None."""
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="#k = :id",
            ExpressionAttributeNames={"#k": Keys.MESSAGES_PK},
            ExpressionAttributeValues={":id": {"S": request_id}},
        )
        items = [_plain(i) for i in response.get("Items", [])]
        request = next((i for i in items if i.get(Keys.MESSAGES_SK) == MESSAGE_LOG_REQUEST_SK), None)
        if request is None:
            return None
        request["events"] = [i for i in items if i.get(Keys.MESSAGES_SK) != MESSAGE_LOG_REQUEST_SK]
        return request
