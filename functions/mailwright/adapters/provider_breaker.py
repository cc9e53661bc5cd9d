"""DynamoDB adapters of failover and provider feedback, in the idempotency table (its own key prefixes).

| key (`pk`)                       | what                                                                    |
|----------------------------------|-------------------------------------------------------------------------|
| `provider#<lane>#<provider>`     | a provider breaker: state, failure window, probe lease, version         |
| `provider-history#<lane>#<p>`    | its last 50 changes (BREAKER_HISTORY_KEEP), automatic and by hand       |
| `maybe#<request id>`             | the provider that may have accepted a request whose answer was lost      |
| `webhook#<provider>#<event key>` | a provider event (or Mailgun signature token) already taken (replays)    |

Breaker and history items have no TTL: the state outlives quiet periods. The others expire.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import as_transient, error_code
from mailwright.constants import Keys
from mailwright.ports import BREAKER_CLOSED, BREAKER_HISTORY_KEEP, BreakerChange, BreakerState

BREAKER_PREFIX = "provider#"
HISTORY_PREFIX = "provider-history#"
MAYBE_SENT_PREFIX = "maybe#"
WEBHOOK_PREFIX = "webhook#"
_NUMBERS = ("failures", "window_start", "opened_at", "probe_at", "closed_at", "probe_until", "version")
_TEXTS = ("state", "reason", "actor", "prober")


def _conditional(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


def breaker_key(lane: str, provider: str) -> str:
    """The `pk` of a provider breaker's item."""
    return f"{BREAKER_PREFIX}{lane}#{provider}"


def history_key(lane: str, provider: str) -> str:
    """The `pk` of a provider breaker's history item."""
    return f"{HISTORY_PREFIX}{lane}#{provider}"


def _change_item(change: BreakerChange) -> dict[str, Any]:
    return {
        "M": {
            "at": {"N": f"{change.at:.3f}"},
            "before": {"S": change.before},
            "after": {"S": change.after},
            "reason": {"S": change.reason},
            "actor": {"S": change.actor},
        }
    }


def _change(lane: str, provider: str, value: dict[str, Any]) -> BreakerChange:
    fields = value.get("M", {})

    def text(name: str) -> str:
        return str(fields.get(name, {}).get("S", ""))

    return BreakerChange(
        lane=lane,
        provider=provider,
        before=text("before"),
        after=text("after"),
        reason=text("reason"),
        actor=text("actor"),
        at=float(fields.get("at", {}).get("N", "0")),
    )


def _state(lane: str, provider: str, item: dict[str, Any]) -> BreakerState:
    values: dict[str, Any] = {}
    for name in _NUMBERS:
        if name in item and "N" in item[name]:
            number = float(item[name]["N"])
            values[name] = int(number) if name in ("failures", "version") else number
    for name in _TEXTS:
        if name in item and "S" in item[name]:
            values[name] = item[name]["S"]
    return BreakerState(lane=lane, provider=provider, **values)


class DynamoProviderBreakerStore:
    """ProviderBreakerStore over the idempotency table."""

    def __init__(self, client: Any, table: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._clock = clock

    def read(self, lane: str, provider: str) -> BreakerState:
        """The breaker's state, read strongly consistent (closed and version 0 if never written)."""
        try:
            response = self._client.get_item(
                TableName=self._table,
                Key={Keys.IDEMPOTENCY_PK: {"S": breaker_key(lane, provider)}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        return _state(lane, provider, response.get("Item", {}))

    def add_failure(self, lane: str, provider: str, *, now: float, window_seconds: float) -> BreakerState:
        """Count a failure: in the current window while it lasts, else as the first of a new one."""
        key = {Keys.IDEMPOTENCY_PK: {"S": breaker_key(lane, provider)}}
        names = {"#f": "failures", "#w": "window_start"}
        cutoff = {":cutoff": {"N": f"{now - window_seconds:.3f}"}}
        attempts: list[dict[str, Any]] = [
            {"UpdateExpression": "ADD #f :one", "ConditionExpression": "#w >= :cutoff"},
            {
                "UpdateExpression": "SET #f = :one, #w = :now",
                "ConditionExpression": "attribute_not_exists(#w) OR #w < :cutoff",
                "extra": {":now": {"N": f"{now:.3f}"}},
            },
        ]
        # Two writers may start a window at once: the loser counts into the winner's window.
        for attempt in [*attempts, attempts[0]]:
            values = {":one": {"N": "1"}, **cutoff, **attempt.get("extra", {})}
            try:
                response = self._client.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression=attempt["UpdateExpression"],
                    ConditionExpression=attempt["ConditionExpression"],
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
            except ClientError as exc:
                if _conditional(exc):
                    continue
                raise as_transient(exc, "dynamodb") from None
            except BotoCoreError as exc:
                raise as_transient(exc, "dynamodb") from None
            return _state(lane, provider, response.get("Attributes", {}))
        return self.read(lane, provider)

    def write(self, state: BreakerState, *, expected_version: int) -> bool:
        """Store the whole state if the stored version is `expected_version` (0: also when there is no item)."""
        item: dict[str, Any] = {Keys.IDEMPOTENCY_PK: {"S": breaker_key(state.lane, state.provider)}}
        for name in _NUMBERS:
            value = getattr(state, name)
            if value is not None:
                item[name] = {"N": str(value) if isinstance(value, int) else f"{value:.3f}"}
        for name in _TEXTS:
            value = getattr(state, name) or (BREAKER_CLOSED if name == "state" else "")
            if value:
                item[name] = {"S": value}
        condition = "#v = :expected" if expected_version else "attribute_not_exists(#v) OR #v = :expected"
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":expected": {"N": str(expected_version)}},
            )
        except ClientError as exc:
            if _conditional(exc):
                return False
            raise as_transient(exc, "dynamodb") from None
        except BotoCoreError as exc:
            raise as_transient(exc, "dynamodb") from None
        return True

    def mark_maybe_sent(self, request_id: str, provider: str, *, until: float) -> None:
        """Remember that `provider` may have accepted the request, until `until` (the item's TTL)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    Keys.IDEMPOTENCY_PK: {"S": MAYBE_SENT_PREFIX + request_id},
                    "provider": {"S": provider},
                    Keys.TTL: {"N": str(int(until))},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None

    def maybe_sent_by(self, request_id: str) -> str | None:
        """The provider remembered for the request, unless its memory has expired."""
        try:
            response = self._client.get_item(
                TableName=self._table,
                Key={Keys.IDEMPOTENCY_PK: {"S": MAYBE_SENT_PREFIX + request_id}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        item = response.get("Item")
        if not item or float(item.get(Keys.TTL, {}).get("N", "0")) <= self._clock():
            return None  # TTL deletes lazily
        return str(item["provider"]["S"])

    def record_change(self, change: BreakerChange) -> None:
        """Append the change to the breaker's history item, then drop what is beyond BREAKER_HISTORY_KEEP."""
        key = {Keys.IDEMPOTENCY_PK: {"S": history_key(change.lane, change.provider)}}
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET #c = list_append(if_not_exists(#c, :empty), :change)",
                ExpressionAttributeNames={"#c": "changes"},
                ExpressionAttributeValues={":empty": {"L": []}, ":change": {"L": [_change_item(change)]}},
                ReturnValues="UPDATED_NEW",
            )
            extra = len(response.get("Attributes", {}).get("changes", {}).get("L", [])) - BREAKER_HISTORY_KEEP
            if extra > 0:
                self._client.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="REMOVE " + ", ".join(f"#c[{index}]" for index in range(extra)),
                    ExpressionAttributeNames={"#c": "changes"},
                )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None

    def history(self, lane: str, provider: str) -> list[BreakerChange]:
        """The breaker's recorded changes, oldest first."""
        try:
            response = self._client.get_item(
                TableName=self._table,
                Key={Keys.IDEMPOTENCY_PK: {"S": history_key(lane, provider)}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        values = response.get("Item", {}).get("changes", {}).get("L", [])
        return [_change(lane, provider, value) for value in values]


class DynamoReplayGuard:
    """ReplayGuard over the idempotency table: a conditional put per key, expiring with the table's TTL."""

    def __init__(self, client: Any, table: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._clock = clock

    def take(self, key: str, *, until: float) -> bool:
        """Take `key` unless it is taken and not yet expired."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={Keys.IDEMPOTENCY_PK: {"S": WEBHOOK_PREFIX + key}, Keys.TTL: {"N": str(int(until))}},
                ConditionExpression="attribute_not_exists(#pk) OR #e < :now",
                ExpressionAttributeNames={"#pk": Keys.IDEMPOTENCY_PK, "#e": Keys.TTL},
                ExpressionAttributeValues={":now": {"N": str(int(self._clock()))}},
            )
        except ClientError as exc:
            if _conditional(exc):
                return False
            raise as_transient(exc, "dynamodb") from None
        except BotoCoreError as exc:
            raise as_transient(exc, "dynamodb") from None
        return True

    def hold(self, key: str, *, until: float) -> None:
        """Keep `key` until `until`."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={Keys.IDEMPOTENCY_PK: {"S": WEBHOOK_PREFIX + key}, Keys.TTL: {"N": str(int(until))}},
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None

    def give_back(self, key: str) -> None:
        """Forget `key`."""
        try:
            self._client.delete_item(TableName=self._table, Key={Keys.IDEMPOTENCY_PK: {"S": WEBHOOK_PREFIX + key}})
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
