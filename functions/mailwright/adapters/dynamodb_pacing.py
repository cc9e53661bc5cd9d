"""Amazon DynamoDB adapter of the account's shared token bucket (`RateRegistry`), in the idempotency table.

One item, `pace#bucket`, holds the bucket's theoretical arrival time (`tat`)
and the account state every worker shares (SES's quota and when it was read,
the last throttle, an exhausted daily quota, and per lane when it was last
granted tokens, `a_<lane>`, and how many so far, `g_<lane>`, written by the
take itself). One item per lane, `pace#schedule#<lane>`, holds the next free
slot for deferred mail.

A take is one conditional UpdateItem, lock-free under contention:

* the bucket is idle (`tat` <= now): `SET tat = now + n/R` if it still is;
* the bucket is busy: `SET tat = tat + n/R` if `tat` is still between now and
  the last arrival time that leaves the n-th token within the lane's reach.
  Concurrent takers all succeed while the bucket has room: the condition is a
  range, not an exact version. A failed condition returns the item
  (`ReturnValuesOnConditionCheckFailure`), and the take is computed again.

Writes go where sends go, not where workers are: one per batch that sends,
none for a batch denied (a worker knows from the arrival time it saw last that
the bucket is out of reach: `tat` only moves forward, except for tokens given
back). For fleets whose takes exceed one partition's 1,000 writes a second,
`shards` splits the bucket into that many items, each with 1/shards of the
rate; a take picks one at random (and one more if that one is out of reach),
so idle capacity in one shard is used through the others.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import as_transient, error_code
from mailwright.constants import LANES, Keys
from mailwright.pacing import gcra_grant
from mailwright.ports import AccountState, SendQuota, TakeResult

BUCKET_KEY = "pace#bucket"
# Per lane, when it was last granted tokens (`a_critical`...): the lower lanes leave headroom while it sends;
# and how many it was granted so far (`g_critical`...): the lower lanes book deferred mail at what is left.
ACTIVE_PREFIX = "a_"
GRANTED_PREFIX = "g_"
SCHEDULE_PREFIX = "pace#schedule#"
# Per lane with lower lanes, until when it has deferred mail booked to come back (`b_critical`...): the
# lower lanes yield the bucket to it until then.
BOOKED_PREFIX = "b_"
# Condition failures in a row before a take gives up (its records are deferred, not lost).
MAX_ATTEMPTS = 4
# The arrival time seen last is trusted this long for a denial without asking DynamoDB.
HINT_SECONDS = 2.0


def _number(item: dict[str, Any], name: str) -> float:
    value = item.get(name, {})
    return float(value["N"]) if "N" in value else 0.0


def account_state(item: dict[str, Any], *, shards: int = 1) -> AccountState:
    """The shared account state in a bucket item (raw DynamoDB attributes) of a bucket split in `shards`."""
    quota = None
    if "q_rate" in item:
        quota = SendQuota(
            max_send_rate=_number(item, "q_rate"),
            max_24_hour_send=_number(item, "q_max24"),
            sent_last_24_hours=_number(item, "q_sent24"),
        )
    return AccountState(
        quota=quota,
        quota_read_at=_number(item, "q_at"),
        congestion_rate=_number(item, "c_rate"),
        congestion_at=_number(item, "c_at"),
        quota_exhausted_at=_number(item, "x_at"),
        lanes_active_at={lane: _number(item, ACTIVE_PREFIX + lane) for lane in LANES if ACTIVE_PREFIX + lane in item},
        lanes_granted={
            lane: _number(item, GRANTED_PREFIX + lane) * shards for lane in LANES if GRANTED_PREFIX + lane in item
        },
        lanes_booked_until={
            lane: _number(item, BOOKED_PREFIX + lane) for lane in LANES if BOOKED_PREFIX + lane in item
        },
    )


def _n(value: float) -> dict[str, str]:
    return {"N": f"{value:.6f}"}


class DynamoRateRegistry:
    """RateRegistry over the idempotency table (see the module docstring for the items and the writes)."""

    def __init__(self, client: Any, table: str, *, shards: int = 1, rng: random.Random | None = None) -> None:
        if shards < 1:
            raise ValueError("shards must be at least 1")
        self._client = client
        self._table = table
        self._shards = shards
        self._rng = rng or random.Random()
        # Per bucket item: the arrival time seen last and when (for denials without a call).
        self._hints: dict[str, tuple[float, float]] = {}
        self._schedule_hints: dict[str, float] = {}
        self._state = AccountState()

    def _keys(self) -> list[str]:
        return [BUCKET_KEY] if self._shards == 1 else [f"{BUCKET_KEY}#{n}" for n in range(self._shards)]

    def _key(self, name: str) -> dict[str, Any]:
        return {Keys.IDEMPOTENCY_PK: {"S": name}}

    # -- the bucket ----------------------------------------------------------------------

    def take(
        self, *, lane: str, count: int, interval: float, reach: float, max_wait: float, now: float, minimum: int = 1
    ) -> TakeResult:
        """Take up to `count` tokens; nothing granted when fewer than `minimum` are within the lane's reach."""
        if lane not in LANES:
            raise ValueError(f"unknown lane {lane!r}")
        keys = self._keys()
        tries = [self._rng.choice(keys)] if len(keys) > 1 else keys
        if len(keys) > 1:
            tries.append(self._rng.choice([k for k in keys if k != tries[0]]))
        result = TakeResult(granted=0, base=now, state=self._state)
        for key in tries:
            # Each shard has 1/shards of the rate: its tokens come `shards` times as far apart.
            result = self._take_from(key, lane, count, interval * self._shards, reach, max_wait, now, minimum)
            if result.granted:
                break
        return result

    def _take_from(
        self, key: str, lane: str, count: int, interval: float, reach: float, max_wait: float, now: float, minimum: int
    ) -> TakeResult:
        hint = self._hints.get(key)
        tat = hint[0] if hint is not None else None
        if tat is not None and hint is not None and now - hint[1] > HINT_SECONDS:
            tat = self._read_tat(key, now)
        for _ in range(MAX_ATTEMPTS):
            granted, base, new_tat = gcra_grant(
                tat=now if tat is None else tat,
                now=now,
                count=count,
                interval=interval,
                reach=reach,
                max_wait=max_wait,
                minimum=minimum,
            )
            if not granted:
                return TakeResult(granted=0, base=base, state=self._state)
            if base <= now:
                update = {
                    "UpdateExpression": "SET tat = :new, #active = :now ADD #granted :granted",
                    "ConditionExpression": "attribute_not_exists(tat) OR tat <= :now",
                    "ExpressionAttributeValues": {
                        ":new": _n(new_tat),
                        ":now": _n(now),
                        ":granted": {"N": str(granted)},
                    },
                }
            else:
                cap = now + max_wait + reach - (granted - 1) * interval
                update = {
                    "UpdateExpression": "SET tat = tat + :inc, #active = :now ADD #granted :granted",
                    "ConditionExpression": "tat BETWEEN :now AND :cap",
                    "ExpressionAttributeValues": {
                        ":inc": _n(granted * interval),
                        ":now": _n(now),
                        ":cap": _n(cap),
                        ":granted": {"N": str(granted)},
                    },
                }
            update["ExpressionAttributeNames"] = {"#active": ACTIVE_PREFIX + lane, "#granted": GRANTED_PREFIX + lane}
            item = self._update(key, update)
            if item is not None and "Attributes" in item:
                attributes = item["Attributes"]
                stored = _number(attributes, "tat")
                self._remember(key, attributes, now)
                return TakeResult(granted=granted, base=stored - granted * interval, state=self._state)
            # Someone moved the bucket first: compute again from what is there now.
            old = (item or {}).get("Item") or {}
            tat = _number(old, "tat") if "tat" in old else None
            if old:
                self._remember(key, old, now)
        return TakeResult(granted=0, base=now if tat is None else max(tat, now), state=self._state)

    def _remember(self, key: str, attributes: dict[str, Any], now: float) -> None:
        if "tat" in attributes:
            self._hints[key] = (_number(attributes, "tat"), now)
        self._state = account_state(attributes, shards=self._shards)

    def _read_tat(self, key: str, now: float) -> float | None:
        try:
            response = self._client.get_item(TableName=self._table, Key=self._key(key), ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        item = response.get("Item") or {}
        if item:
            self._remember(key, item, now)
        return _number(item, "tat") if "tat" in item else None

    def _update(self, key: str, update: dict[str, Any]) -> dict[str, Any] | None:
        """One conditional UpdateItem returning the new item; on a failed condition {"Item": old item}."""
        try:
            response: dict[str, Any] = self._client.update_item(
                TableName=self._table,
                Key=self._key(key),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **update,
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise as_transient(exc, "dynamodb") from None
            return {"Item": exc.response.get("Item") or {}}
        except BotoCoreError as exc:
            raise as_transient(exc, "dynamodb") from None
        return response

    def read_state(self) -> AccountState:
        """The shared account state (one eventually consistent GetItem)."""
        try:
            response = self._client.get_item(TableName=self._table, Key=self._key(self._keys()[0]))
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        self._state = account_state(response.get("Item") or {}, shards=self._shards)
        return self._state

    def give_back(self, *, seconds: float, now: float) -> None:
        """Move the arrival time back by `seconds`, unless those tokens have expired already."""
        key = self._rng.choice(self._keys())
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(key),
                UpdateExpression="SET tat = tat - :x",
                ConditionExpression="tat >= :floor",
                ExpressionAttributeValues={
                    ":x": _n(seconds * self._shards),
                    ":floor": _n(now + seconds * self._shards),
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise as_transient(exc, "dynamodb") from None
        except BotoCoreError as exc:
            raise as_transient(exc, "dynamodb") from None
        self._hints.pop(key, None)

    # -- deferral slots -----------------------------------------------------------------

    def schedule(
        self, *, lane: str, count: int, interval: float, now: float, horizon: float, after: tuple[str, ...] = ()
    ) -> float | None:
        """Book `count` slots `interval` apart in the lane's schedule (after the lanes `after`'s); the first slot.

        None if the first slot would be past `horizon`. The higher lanes' schedules are read first (one
        eventually consistent BatchGetItem): their booked mail goes before this lane's.
        """
        key = SCHEDULE_PREFIX + lane
        span = count * interval
        booked = self._schedule_hints.get(lane)
        floor = max([now, *self._schedule_ends(after).values()])
        for _ in range(MAX_ATTEMPTS):
            start = floor if booked is None else max(booked, floor)
            if start > horizon:
                return None
            if start <= floor:
                update = {
                    "UpdateExpression": "SET #n = :new",
                    "ConditionExpression": "attribute_not_exists(#n) OR #n <= :floor",
                    "ExpressionAttributeValues": {":new": _n(floor + span), ":floor": _n(floor)},
                }
            else:
                update = {
                    "UpdateExpression": "SET #n = #n + :span",
                    "ConditionExpression": "#n BETWEEN :floor AND :horizon",
                    "ExpressionAttributeValues": {":span": _n(span), ":floor": _n(floor), ":horizon": _n(horizon)},
                }
            item = self._update(key, {**update, "ExpressionAttributeNames": {"#n": "next"}})
            if item is not None and "Attributes" in item:
                stored = _number(item["Attributes"], "next")
                self._schedule_hints[lane] = stored
                if lane != LANES[-1]:
                    self._mark_booked(lane, stored)
                return stored - span
            old = (item or {}).get("Item") or {}
            booked = _number(old, "next") if "next" in old else None
        return None if booked is not None and booked > horizon else max(floor, booked or floor)

    def _mark_booked(self, lane: str, until: float) -> None:
        """Tell the lower lanes, through the bucket item(s), that `lane` has mail booked until `until`."""
        for key in self._keys():
            item = self._update(
                key,
                {
                    "UpdateExpression": "SET #b = :until",
                    "ConditionExpression": "attribute_not_exists(#b) OR #b < :until",
                    "ExpressionAttributeNames": {"#b": BOOKED_PREFIX + lane},
                    "ExpressionAttributeValues": {":until": _n(until)},
                },
            )
            if item is not None and "Attributes" in item:
                self._state = account_state(item["Attributes"], shards=self._shards)

    def _schedule_ends(self, lanes: tuple[str, ...]) -> dict[str, float]:
        """Where the booked mail of `lanes` ends (epoch seconds; lanes with nothing booked are left out)."""
        if not lanes:
            return {}
        try:
            response = self._client.batch_get_item(
                RequestItems={self._table: {"Keys": [self._key(SCHEDULE_PREFIX + lane) for lane in lanes]}}
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        ends: dict[str, float] = {}
        for item in response.get("Responses", {}).get(self._table, []):
            name = item.get(Keys.IDEMPOTENCY_PK, {}).get("S", "")
            if name.startswith(SCHEDULE_PREFIX) and "next" in item:
                ends[name.removeprefix(SCHEDULE_PREFIX)] = _number(item, "next")
        return ends

    # -- the account state --------------------------------------------------------------

    def congested(self, *, rate: float, now: float, min_gap: float) -> bool:
        """Record a throttle at `rate` in every bucket item, unless one was recorded within `min_gap`."""
        recorded = False
        for key in self._keys():
            item = self._update(
                key,
                {
                    "UpdateExpression": "SET c_rate = :rate, c_at = :now",
                    "ConditionExpression": "attribute_not_exists(c_at) OR c_at <= :gap",
                    "ExpressionAttributeValues": {":rate": _n(rate), ":now": _n(now), ":gap": _n(now - min_gap)},
                },
            )
            if item is not None and "Attributes" in item:
                self._state = account_state(item["Attributes"], shards=self._shards)
                recorded = True
            elif item is not None and item.get("Item"):
                self._state = account_state(item["Item"], shards=self._shards)
        return recorded

    def quota_exhausted(self, *, now: float) -> None:
        """Record that SES refused a send for the daily quota."""
        for key in self._keys():
            item = self._update(
                key, {"UpdateExpression": "SET x_at = :now", "ExpressionAttributeValues": {":now": _n(now)}}
            )
            if item is not None and "Attributes" in item:
                self._state = account_state(item["Attributes"], shards=self._shards)

    def claim_refresh(self, *, now: float, min_gap: float) -> bool:
        """Whether this worker won the right to read SES's quota now (nobody claimed it within `min_gap`)."""
        item = self._update(
            self._keys()[0],
            {
                "UpdateExpression": "SET r_at = :now",
                "ConditionExpression": "attribute_not_exists(r_at) OR r_at <= :gap",
                "ExpressionAttributeValues": {":now": _n(now), ":gap": _n(now - min_gap)},
            },
        )
        return item is not None and "Attributes" in item

    def store_quota(self, quota: SendQuota, *, now: float) -> AccountState:
        """Share SES's quota with every worker."""
        state = replace(self._state, quota=quota, quota_read_at=now)
        for key in self._keys():
            item = self._update(
                key,
                {
                    "UpdateExpression": "SET q_rate = :rate, q_max24 = :max24, q_sent24 = :sent24, q_at = :now",
                    "ExpressionAttributeValues": {
                        ":rate": _n(quota.max_send_rate),
                        ":max24": _n(quota.max_24_hour_send),
                        ":sent24": _n(quota.sent_last_24_hours),
                        ":now": _n(now),
                    },
                },
            )
            if item is not None and "Attributes" in item:
                state = account_state(item["Attributes"], shards=self._shards)
        self._state = state
        return state
