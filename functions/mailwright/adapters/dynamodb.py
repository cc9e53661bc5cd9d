"""Amazon DynamoDB adapters: suppressions, preferences, dedupe claims, rate limits, message log.

Low-level client calls with explicit attribute types: faster to import and
run than the resource API, and every request is visible here.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import as_transient, error_code
from mailwright.constants import MESSAGE_LOG_REQUEST_SK, SES_MESSAGE_ID_INDEX, STATUS_DEFERRED, STATUS_SENT, Keys
from mailwright.errors import TransientError
from mailwright.ports import (
    APPEND_DUPLICATE,
    APPEND_NO_REQUEST,
    HISTORY_CAP,
    REPEATABLE_EVENTS,
    SCOPE_ALL,
    Appended,
    AuditRecord,
    ClaimRecord,
    ClaimResult,
    DeferredState,
    FeedbackRecord,
    LoggedState,
    Outcome,
    Preferences,
    Schedule,
    Suppression,
    SuppressionEntry,
    with_feedback,
)
from mailwright.quiet_hours import InvalidQuietHoursError, QuietHours
from mailwright.settings import RateLimit

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
UNPROCESSED_ATTEMPTS = 5


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain Python values (numbers as int or float, sets as sets)."""
    return {key: _unwrap(deserialize(value)) for key, value in item.items()}


def deserialize(value: dict[str, Any]) -> Any:
    """One DynamoDB attribute value as Python (boto3's TypeDeserializer, binaries as bytes).

    Here rather than boto3's: importing `boto3.dynamodb` imports boto3, s3transfer and multiprocessing,
    a tenth of the send worker's cold start, for a dozen lines.
    """
    if len(value) != 1:
        raise TypeError(f"a DynamoDB attribute value has one type, not {sorted(value)}")
    ((kind, raw),) = value.items()
    if kind in ("S", "BOOL"):
        return raw
    if kind == "N":
        return Decimal(raw)
    if kind == "NULL":
        return None
    if kind == "B":
        return bytes(raw)
    if kind == "M":
        return {key: deserialize(item) for key, item in raw.items()}
    if kind == "L":
        return [deserialize(item) for item in raw]
    if kind == "SS":
        return set(raw)
    if kind == "NS":
        return {Decimal(number) for number in raw}
    if kind == "BS":
        return {bytes(item) for item in raw}
    raise TypeError(f"unknown DynamoDB attribute type {kind!r}")


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
            # Strongly consistent: an unsubscribe or a bounce recorded a moment ago must
            # already stop the very next send (it doubles the read cost of tiny items).
            request: dict[str, Any] = {
                table: {
                    "Keys": list(chunk),
                    "ProjectionExpression": projection,
                    "ExpressionAttributeNames": names,
                    "ConsistentRead": True,
                }
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
        names = {
            "#k": Keys.PREFERENCES_PK,
            "#u": "unsubscribed_all",
            "#o": "opted_out",
            "#l": "locale",
            "#tz": "timezone",
            "#q": "quiet_hours",
        }
        found = {}
        for raw in self._reader.read(self._table, keys, "#k, #u, #o, #l, #tz, #q", names):
            preferences = _preferences(_plain(raw))
            found[preferences.user_id] = preferences
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
            evaluation=int(plain.get("evaluation", 1)),
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
        return self._replace_lease(record, lease_seconds=lease_seconds)

    def reclaim(self, record: ClaimRecord, *, evaluation: int, lease_seconds: int, ttl_seconds: int) -> str | None:
        """Take the claim for evaluation `evaluation`, unless its lease id changed since it was read."""
        expires = int(self._clock() + max(ttl_seconds, lease_seconds))
        also = {"evaluation": {"N": str(evaluation)}, Keys.TTL: {"N": str(expires)}}
        return self._replace_lease(record, lease_seconds=lease_seconds, also=also)

    def _replace_lease(
        self, record: ClaimRecord, *, lease_seconds: int, also: dict[str, Any] | None = None
    ) -> str | None:
        """Set a new lease (and the attributes in `also`) if the claim still holds the lease it was read with."""
        lease_id = uuid.uuid4().hex
        sets = ["lease_id = :new", "lease_until = :until"]
        names: dict[str, str] = {}
        values: dict[str, Any] = {
            ":new": {"S": lease_id},
            ":old": {"S": record.lease_id},
            ":until": {"N": str(int(self._clock() + lease_seconds))},
        }
        for index, (name, value) in enumerate((also or {}).items()):
            names[f"#a{index}"], values[f":a{index}"] = name, value
            sets.append(f"#a{index} = :a{index}")
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {Keys.IDEMPOTENCY_PK: {"S": self.PREFIX + record.request_id}},
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": "lease_id = :old",
            "ExpressionAttributeValues": values,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        try:
            self._client.update_item(**request)
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return None
            raise as_transient(exc, "dynamodb") from None
        except BotoCoreError as exc:
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
    """RateLimiter over the idempotency table: per user, category and window, the set of request ids counted.

    The set, not a bare counter, makes a retried request count once: an attempt
    that sent and crashed before recording left its id there, and the take-over
    finds it instead of being refused for the slot it already used.
    """

    PREFIX = "rate#"

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def acquire(
        self,
        user_id: str,
        category: str,
        limit: RateLimit,
        *,
        now: float,
        request_id: str,
        older_user_ids: Sequence[str] = (),
    ) -> bool:
        """Count `request_id` once; False (nothing counted) when the window already holds `limit` others.

        Requests counted under `older_user_ids` in the same window (before the key version
        changed) take their slots too: one consistent read each, only while such keys are readable.
        """
        window = int(now // limit.window_seconds) * limit.window_seconds
        earlier: set[str] = set()
        for older in older_user_ids:
            earlier |= self._counted(self._key(older, category, window))
        if request_id in earlier:
            return True
        room = limit.limit - len(earlier)
        if room <= 0:
            return False
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(user_id, category, window),
                UpdateExpression="ADD #ids :id_set SET #e = if_not_exists(#e, :expires)",
                ConditionExpression="attribute_not_exists(#ids) OR contains(#ids, :id) OR size(#ids) < :limit",
                ExpressionAttributeNames={"#ids": "request_ids", "#e": Keys.TTL},
                ExpressionAttributeValues={
                    ":id_set": {"SS": [request_id]},
                    ":id": {"S": request_id},
                    ":limit": {"N": str(room)},
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

    def _key(self, user_id: str, category: str, window: int) -> dict[str, Any]:
        return {Keys.IDEMPOTENCY_PK: {"S": f"{self.PREFIX}{user_id}#{category}#{window}"}}

    def _counted(self, key: dict[str, Any]) -> set[str]:
        try:
            response = self._client.get_item(
                TableName=self._table,
                Key=key,
                ProjectionExpression="#ids",
                ExpressionAttributeNames={"#ids": "request_ids"},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        return set(_plain(response.get("Item") or {}).get("request_ids") or ())


class DynamoMessageLog:
    """MessageLog over the messages table: one `request` item per request, its SES events in its history."""

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
            "evaluation": {"N": str(outcome.evaluation)},
            "history": {"L": [{"M": _outcome_entry(outcome)}]},
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
            "variant": outcome.variant,
            "producer": outcome.producer,
            "digest_id": outcome.digest_id,
        }
        for key, value in optional.items():
            if value:
                item[key] = {"S": value}
        if outcome.received_at is not None:
            item["received_at"] = {"N": f"{outcome.received_at:.3f}"}
        if outcome.metadata:
            item["metadata"] = {"M": {k: {"S": v} for k, v in outcome.metadata.items()}}
        if outcome.status == STATUS_SENT:
            item["provider"] = {"S": outcome.provider}
        return item

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Write the outcomes: first evaluations 25 per BatchWriteItem, later ones each onto the earlier item."""
        again = [o for o in outcomes if o.evaluation > 1]
        for outcome in again:
            self._record_again(outcome)
        # One item per request id: a batch holding the same request twice writes it once.
        items = list({o.request_id: self._item(o) for o in outcomes if o.evaluation <= 1}.values())
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

    def _record_again(self, outcome: Outcome) -> None:
        """A later evaluation: its state replaces the earlier one's, its entry joins the history."""
        item = self._item(outcome)
        history = item.pop("history")
        key = {name: item.pop(name) for name in (Keys.MESSAGES_PK, Keys.MESSAGES_SK)}
        names = {f"#a{i}": name for i, name in enumerate(item)}
        values = {f":a{i}": value for i, value in enumerate(item.values())}
        assignments = [f"#a{i} = :a{i}" for i in range(len(item))]
        gone = [name for name in _OPTIONAL_OUTCOME_FIELDS if name not in item]
        names.update({f"#r{i}": name for i, name in enumerate(gone)})
        expression = "SET " + ", ".join([*assignments, "#h = list_append(if_not_exists(#h, :empty), :entry)"])
        if gone:
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(gone)))
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression=expression,
                # A redelivery of an evaluation already recorded (or of an older one) changes nothing.
                ConditionExpression="attribute_not_exists(#ev) OR #ev < :ev",
                ExpressionAttributeNames={**names, "#h": "history", "#ev": "evaluation"},
                ExpressionAttributeValues={
                    **values,
                    ":empty": {"L": []},
                    ":entry": history,
                    ":ev": {"N": str(outcome.evaluation)},
                },
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise as_transient(exc, "dynamodb") from None
        except BotoCoreError as exc:
            raise as_transient(exc, "dynamodb") from None

    def states(self, request_ids: Collection[str]) -> dict[str, LoggedState]:
        """Recorded status and evaluation by request id."""
        keys = [
            {Keys.MESSAGES_PK: {"S": rid}, Keys.MESSAGES_SK: {"S": MESSAGE_LOG_REQUEST_SK}}
            for rid in sorted(request_ids)
        ]
        names = {"#k": Keys.MESSAGES_PK, "#s": "status", "#ev": "evaluation"}
        return {
            item[Keys.MESSAGES_PK]: LoggedState(item["status"], int(item.get("evaluation", 1)))
            for item in map(_plain, self._reader.read(self._table, keys, "#k, #s, #ev", names))
        }

    def get(self, request_id: str) -> dict[str, Any] | None:
        """The request item with its SES `events` and `delivery` state (see `with_feedback`), or None."""
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
        return with_feedback(request, [i for i in items if i.get(Keys.MESSAGES_SK) != MESSAGE_LOG_REQUEST_SK])

    def record_deferred(self, states: Sequence[DeferredState]) -> None:
        """Record each request as `deferred` until its resume time; a terminal state already there stays.

        A hop of the same wait (same resume time) only moves `at` on; a new wait
        (the first hop of a night) also joins the history, so a long night adds
        one entry, not forty.
        """
        for state in states:
            fields: dict[str, Any] = {
                "status": {"S": STATUS_DEFERRED},
                "lane": {"S": state.lane},
                "reason_code": {"S": state.reason_code},
                "reason": {"S": state.reason},
                "resume_at": {"N": f"{state.resume_at:.3f}"},
                "completed_at": {"N": f"{state.at:.3f}"},
                Keys.TTL: {"N": str(int(state.at + self._ttl_seconds))},
            }
            optional = {
                "template_id": state.template_id,
                "category": state.category,
                "user_id": state.user_id,
                "recipient_hash": state.recipient_hash,
                "recipient_masked": state.recipient_masked,
                "producer": state.producer,
            }
            fields.update({key: {"S": value} for key, value in optional.items() if value})
            if state.received_at is not None:
                fields["received_at"] = {"N": f"{state.received_at:.3f}"}
            entry = {
                "status": {"S": STATUS_DEFERRED},
                "at": {"N": f"{state.at:.3f}"},
                "reason_code": {"S": state.reason_code},
                "resume_at": {"N": f"{state.resume_at:.3f}"},
            }
            if not self._update_deferred(state, fields, entry, same_wait=True):
                self._update_deferred(state, fields, entry, same_wait=False)

    def _update_deferred(
        self, state: DeferredState, fields: dict[str, Any], entry: dict[str, Any], *, same_wait: bool
    ) -> bool:
        names = {f"#a{i}": name for i, name in enumerate(fields)}
        values = {f":a{i}": value for i, value in enumerate(fields.values())}
        sets = [f"#a{i} = :a{i}" for i in range(len(fields))]
        names["#st"] = "status"
        values[":deferred"] = {"S": STATUS_DEFERRED}
        if same_wait:
            condition = "#st = :deferred AND #ra = :resume"
            names["#ra"] = "resume_at"
            values[":resume"] = {"N": f"{state.resume_at:.3f}"}
        else:
            condition = "attribute_not_exists(#st) OR #st = :deferred"
            sets.append("#h = list_append(if_not_exists(#h, :empty), :entry)")
            names["#h"] = "history"
            values.update({":empty": {"L": []}, ":entry": {"L": [{"M": entry}]}})
        try:
            self._client.update_item(
                TableName=self._table,
                Key={Keys.MESSAGES_PK: {"S": state.request_id}, Keys.MESSAGES_SK: {"S": MESSAGE_LOG_REQUEST_SK}},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise as_transient(exc, "dynamodb") from None
        except BotoCoreError as exc:
            raise as_transient(exc, "dynamodb") from None
        return True


# The request item's attributes that some outcomes have and others do not (a later evaluation removes them).
_OPTIONAL_OUTCOME_FIELDS = (
    "reason_code",
    "reason",
    Keys.SES_MESSAGE_ID,
    "template_id",
    "template_version",
    "category",
    "locale",
    "user_id",
    "recipient_hash",
    "recipient_masked",
    "received_at",
    "metadata",
    "variant",
    "digest_id",
    "resume_at",
)


def _outcome_entry(outcome: Outcome) -> dict[str, Any]:
    """The history entry of a terminal outcome: status, time, evaluation, and why (when not sent)."""
    entry: dict[str, Any] = {
        "status": {"S": outcome.status},
        "at": {"N": f"{outcome.completed_at:.3f}"},
        "evaluation": {"N": str(outcome.evaluation)},
    }
    if outcome.reason_code:
        entry["reason_code"] = {"S": outcome.reason_code}
    if outcome.digest_id:
        # The outcome event's `details` carry it to producers.
        entry["detail"] = {"M": {"digest_id": {"S": outcome.digest_id}}}
    return entry


def _preferences(item: dict[str, Any]) -> Preferences:
    """A preferences item (plain values) as the worker reads it."""
    return Preferences(
        user_id=item[Keys.PREFERENCES_PK],
        unsubscribed_all=bool(item.get("unsubscribed_all", False)),
        opted_out=frozenset(item.get("opted_out") or ()),
        locale=item.get("locale"),
        timezone=item.get("timezone") or None,
        quiet_hours=_quiet_hours(item.get("quiet_hours")),
    )


def _quiet_hours(value: Any) -> QuietHours | None:
    # Written validated; an item edited by hand into garbage means no quiet hours, not a failed send.
    try:
        return QuietHours.parse(value) if isinstance(value, str) and value else None
    except InvalidQuietHoursError:
        return None


def preferences_from_item(item: dict[str, Any]) -> Preferences:
    """A preferences item as DynamoDB returns it (typed values) as the worker reads it."""
    return _preferences(_plain(item))


class DynamoPreferenceWriter:
    """PreferenceWriter over the preferences table.

    UpdateItem (never PutItem), so attributes written elsewhere, such as
    `email` and `locale`, survive a change of consent. `opted_out` is a string
    set, and DynamoDB forbids empty sets: no opt-outs means no attribute.
    """

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def add_opt_out(self, user_id: str, category: str, *, source: str, updated_at: float) -> Preferences:
        """Add `category` to `opted_out` with ADD: concurrent opt-outs of other categories are not lost.

        The opt-out is now the user's own, so it leaves the producer's marks.
        """
        return self._update(
            user_id,
            "ADD #o :category, #ver :one SET #at = :at, #src = :src DELETE #po :category",
            {"#o": "opted_out", "#po": "producer_opt_outs"},
            {":category": {"SS": [category]}},
            source=source,
            updated_at=updated_at,
        )

    def set_choices(
        self,
        user_id: str,
        *,
        opted_out: frozenset[str],
        unsubscribed_all: bool,
        source: str,
        updated_at: float,
        schedule: Schedule | None = None,
    ) -> Preferences:
        """Set `unsubscribed_all` and replace `opted_out` (removing it when empty), and the schedule when given.

        The user's whole answer: none of it is marked as the producer's any more.
        """
        names = {"#u": "unsubscribed_all", "#o": "opted_out", "#po": "producer_opt_outs", "#pu": "producer_unsubscribe"}
        values: dict[str, Any] = {":all": {"BOOL": unsubscribed_all}}
        sets = ["#u = :all", "#at = :at", "#src = :src"]
        removes = ["#po", "#pu"]
        if opted_out:
            values[":opted"] = {"SS": sorted(opted_out)}
            sets.append("#o = :opted")
        else:
            removes.append("#o")
        if schedule is not None:
            names.update({"#tz": "timezone", "#q": "quiet_hours"})
            for name, value in (("#tz", schedule.timezone), ("#q", schedule.quiet_hours)):
                if value is None:
                    removes.append(name)
                else:
                    values[":" + name[1:]] = {"S": str(value)}
                    sets.append(f"{name} = :{name[1:]}")
        expression = f"SET {', '.join(sets)} REMOVE {', '.join(removes)} ADD #ver :one"
        return self._update(user_id, expression, names, values, source=source, updated_at=updated_at)

    def _update(
        self,
        user_id: str,
        expression: str,
        names: dict[str, str],
        values: dict[str, Any],
        *,
        source: str,
        updated_at: float,
    ) -> Preferences:
        try:
            # Every write bumps the version (`#ver`, ADD), so a producer's change made meanwhile
            # (a read, then a conditional write) cannot overwrite it.
            response = self._client.update_item(
                TableName=self._table,
                Key={Keys.PREFERENCES_PK: {"S": user_id}},
                UpdateExpression=expression,
                ExpressionAttributeNames={**names, "#at": "updated_at", "#src": "source", "#ver": "version"},
                ExpressionAttributeValues={
                    **values,
                    ":at": {"N": f"{updated_at:.3f}"},
                    ":src": {"S": source},
                    ":one": {"N": "1"},
                },
                # The page shows the stored result; a read after the write could be stale.
                ReturnValues="ALL_NEW",
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        return _preferences(_plain(response["Attributes"]))


# -- suppression lifecycle and SES feedback -------------------------------------

AUDIT_PREFIX = "audit#"
SOFT_BOUNCE_PREFIX = "soft#"
# Items about the table itself, such as the address-key marker (mailwright.adapters.address_keys).
META_PREFIX = "meta#"
# The soft-bounce window only needs recent bounces; older marks are dropped past this many.
SOFT_BOUNCE_KEEP = 100
UNATTRIBUTED_PREFIX = "ses#"
EVENT_PREFIX = "event#"


def _entry(item: dict[str, Any]) -> SuppressionEntry:
    expires = item.get(Keys.TTL)
    updated = item.get("updated_at")
    return SuppressionEntry(
        address_hash=item[Keys.SUPPRESSION_PK],
        masked=str(item.get("masked", "***")),
        reason=str(item.get("reason", "UNKNOWN")),
        scope=str(item.get("scope", SCOPE_ALL)),
        created_at=float(item.get("created_at", 0)),
        expires_at=int(expires) if expires is not None else None,
        source=str(item.get("source", "")),
        reasons=frozenset(item.get("reasons") or ()),
        updated_at=float(updated) if updated is not None else None,
        actor=str(item.get("actor", "")),
        note=str(item.get("note", "")),
        version=int(item.get("version", 0)),
    )


def _audit_record(address_hash: str, masked: str, value: dict[str, Any]) -> AuditRecord:
    return AuditRecord(
        address_hash=address_hash,
        at=float(value.get("at", 0)),
        action=str(value.get("action", "")),
        reason=str(value.get("reason", "")),
        actor=str(value.get("actor", "")),
        note=str(value.get("note", "")),
        source=str(value.get("source", "")),
        outcome=str(value.get("outcome", "")),
        masked=masked,
    )


class DynamoSuppressionLedger:
    """SuppressionLedger over the suppression table.

    Entries sit under the address hash, exactly as DynamoSuppressionStore reads
    them. Each address's audit trail is one item under `audit#<hash>` (a list,
    appended to) and its soft-bounce count one under `soft#<hash>` (expiring):
    a `#` never occurs in a hex hash, so these keys cannot collide with one.
    """

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def get(self, address_hash: str) -> SuppressionEntry | None:
        """The stored entry (expired or not), read consistently."""
        item = self._get(address_hash)
        return _entry(_plain(item)) if item else None

    def _get(self, key: str) -> dict[str, Any] | None:
        try:
            response = self._client.get_item(
                TableName=self._table, Key={Keys.SUPPRESSION_PK: {"S": key}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        item: dict[str, Any] | None = response.get("Item")
        return item

    @staticmethod
    def _item(entry: SuppressionEntry) -> dict[str, Any]:
        item: dict[str, Any] = {
            Keys.SUPPRESSION_PK: {"S": entry.address_hash},
            "masked": {"S": entry.masked},
            "reason": {"S": entry.reason},
            "scope": {"S": entry.scope},
            "created_at": {"N": f"{entry.created_at:.3f}"},
            "source": {"S": entry.source},
            "reasons": {"SS": sorted(entry.reasons | {entry.reason})},
            "actor": {"S": entry.actor},
            "note": {"S": entry.note},
            "version": {"N": str(entry.version)},
        }
        if entry.updated_at is not None:
            item["updated_at"] = {"N": f"{entry.updated_at:.3f}"}
        if entry.expires_at is not None:
            item[Keys.TTL] = {"N": str(entry.expires_at)}
        return item

    def _audit_update(self, record: AuditRecord) -> dict[str, Any]:
        value = {
            "at": {"N": f"{record.at:.3f}"},
            "action": {"S": record.action},
            "reason": {"S": record.reason},
            "actor": {"S": record.actor},
            "note": {"S": record.note},
            "source": {"S": record.source},
            "outcome": {"S": record.outcome},
        }
        return {
            "TableName": self._table,
            "Key": {Keys.SUPPRESSION_PK: {"S": AUDIT_PREFIX + record.address_hash}},
            "UpdateExpression": "SET #entries = list_append(if_not_exists(#entries, :empty), :record), #m = :masked",
            "ExpressionAttributeNames": {"#entries": "entries", "#m": "masked"},
            "ExpressionAttributeValues": {
                ":empty": {"L": []},
                ":record": {"L": [{"M": value}]},
                ":masked": {"S": record.masked or "***"},
            },
        }

    @staticmethod
    def _version_condition(expected_version: int) -> dict[str, Any]:
        # Items written before versions existed (or by hand) have none: they count as version 0.
        return {
            "ConditionExpression": "attribute_exists(#k) AND (attribute_not_exists(#v) OR #v = :v)",
            "ExpressionAttributeNames": {"#k": Keys.SUPPRESSION_PK, "#v": "version"},
            "ExpressionAttributeValues": {":v": {"N": str(expected_version)}},
        }

    def write(self, entry: SuppressionEntry, *, expected_version: int | None, audit: AuditRecord) -> bool:
        """Put the entry and append its audit record in one transaction, if nobody wrote in between."""
        put: dict[str, Any] = {"TableName": self._table, "Item": self._item(entry)}
        if expected_version is None:
            put["ConditionExpression"] = "attribute_not_exists(#k)"
            put["ExpressionAttributeNames"] = {"#k": Keys.SUPPRESSION_PK}
        else:
            put.update(self._version_condition(expected_version))
        return self._transact([{"Put": put}, {"Update": self._audit_update(audit)}])

    def delete(self, address_hash: str, *, expected_version: int, audit: AuditRecord) -> bool:
        """Delete the entry and append the audit record in one transaction, if nobody wrote in between."""
        delete = {
            "TableName": self._table,
            "Key": {Keys.SUPPRESSION_PK: {"S": address_hash}},
            **self._version_condition(expected_version),
        }
        return self._transact([{"Delete": delete}, {"Update": self._audit_update(audit)}])

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        return transact_conditionally(self._client, items)

    def append_audit(self, record: AuditRecord) -> None:
        """Append one audit record to the address's trail."""
        try:
            self._client.update_item(**self._audit_update(record))
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None

    def audit(self, address_hash: str) -> list[AuditRecord]:
        """The address's audit trail, in the order written."""
        item = self._get(AUDIT_PREFIX + address_hash)
        if not item:
            return []
        plain = _plain(item)
        masked = str(plain.get("masked", ""))
        return [_audit_record(address_hash, masked, value) for value in plain.get("entries", [])]

    def entries(self, *, limit: int, now: float) -> list[SuppressionEntry]:
        """Up to `limit` active entries, in scan order; audit trails and counters are skipped."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": (
                "NOT begins_with(#k, :audit) AND NOT begins_with(#k, :soft) AND NOT begins_with(#k, :meta) "
                "AND (attribute_not_exists(#e) OR #e > :now)"
            ),
            "ExpressionAttributeNames": {"#k": Keys.SUPPRESSION_PK, "#e": Keys.TTL},
            "ExpressionAttributeValues": {
                ":audit": {"S": AUDIT_PREFIX},
                ":soft": {"S": SOFT_BOUNCE_PREFIX},
                ":meta": {"S": META_PREFIX},
                ":now": {"N": str(int(now))},
            },
        }
        found: list[SuppressionEntry] = []
        while len(found) < limit:
            try:
                response = self._client.scan(**params)
            except (ClientError, BotoCoreError) as exc:
                raise as_transient(exc, "dynamodb") from None
            found.extend(_entry(_plain(item)) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found[:limit]

    def add_soft_bounce(self, address_hash: str, *, key: str, at: float, expires_at: int) -> list[float]:
        """Append `<at>|<key>` to the address's soft-bounce marks unless already there; return all their times."""
        item_key = {Keys.SUPPRESSION_PK: {"S": SOFT_BOUNCE_PREFIX + address_hash}}
        mark = f"{at:.3f}|{key}"
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=item_key,
                UpdateExpression="SET #b = list_append(if_not_exists(#b, :empty), :mark), #e = :expires",
                # A redelivered bounce carries the same key and time: it is counted once.
                ConditionExpression="attribute_not_exists(#b) OR NOT contains(#b, :one)",
                ExpressionAttributeNames={"#b": "bounces", "#e": Keys.TTL},
                ExpressionAttributeValues={
                    ":empty": {"L": []},
                    ":mark": {"L": [{"S": mark}]},
                    ":one": {"S": mark},
                    ":expires": {"N": str(expires_at)},
                },
                ReturnValues="ALL_NEW",
            )
            marks = list(_plain(response["Attributes"]).get("bounces", []))
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise as_transient(exc, "dynamodb") from None
            stored = self._get(SOFT_BOUNCE_PREFIX + address_hash)
            marks = list(_plain(stored).get("bounces", [])) if stored else []
        except BotoCoreError as exc:
            raise as_transient(exc, "dynamodb") from None
        if len(marks) > SOFT_BOUNCE_KEEP:
            self._trim(item_key, marks)
        return sorted(float(str(m).split("|", 1)[0]) for m in marks)

    def _trim(self, item_key: dict[str, Any], marks: list[Any]) -> None:
        kept = sorted(marks, key=lambda m: float(str(m).split("|", 1)[0]))[-SOFT_BOUNCE_KEEP:]
        try:
            self._client.update_item(
                TableName=self._table,
                Key=item_key,
                UpdateExpression="SET #b = :kept",
                ConditionExpression="size(#b) = :n",
                ExpressionAttributeNames={"#b": "bounces"},
                ExpressionAttributeValues={":kept": {"L": [{"S": str(m)} for m in kept]}, ":n": {"N": str(len(marks))}},
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):  # someone appended meanwhile: trim next time
                raise as_transient(exc, "dynamodb") from None

    def soft_bounce_times(self, address_hash: str) -> list[float]:
        """The times of the soft bounces counted for the address."""
        stored = self._get(SOFT_BOUNCE_PREFIX + address_hash)
        marks = list(_plain(stored).get("bounces", [])) if stored else []
        return sorted(float(str(m).split("|", 1)[0]) for m in marks)

    def reset_soft_bounces(self, address_hash: str) -> None:
        """Forget the address's soft bounces."""
        try:
            self._client.delete_item(
                TableName=self._table, Key={Keys.SUPPRESSION_PK: {"S": SOFT_BOUNCE_PREFIX + address_hash}}
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None


class DynamoFeedbackLog:
    """FeedbackLog over the messages table: one UpdateItem per event on the request item.

    The request item, which the send worker Puts, gets the event appended to
    `history` (status, time, type, rank, masked recipients, details: not the
    SES message id, the item has it) and a 16-character digest of the event's
    key appended to `event_keys` (a list, so the item stays plain JSON), on
    condition that the item exists and the digest is not there yet: a
    redelivered event is appended once. `status` is never touched, and
    `delivery` is not stored: `DynamoMessageLog.get` derives it from the
    history. Every write is billed per started KB of the whole item, so what
    an event adds is kept small.

    Only events that find no request item get an item of their own
    (`sk = event#<time>#<type>#<id>`): beside the request their tag names
    (`require_request=False`), or under `ses#<SES message id>`.
    """

    def __init__(self, client: Any, table: str, *, ttl_days: int, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._ttl_seconds = ttl_days * 86400
        self._clock = clock

    def _request_key(self, request_id: str) -> dict[str, Any]:
        return {Keys.MESSAGES_PK: {"S": request_id}, Keys.MESSAGES_SK: {"S": MESSAGE_LOG_REQUEST_SK}}

    def find_request_id(self, ses_message_id: str) -> str | None:
        """The request whose send returned this SES message id, through the index (eventually consistent)."""
        try:
            response = self._client.query(
                TableName=self._table,
                IndexName=SES_MESSAGE_ID_INDEX,
                KeyConditionExpression="#m = :id",
                ExpressionAttributeNames={"#m": Keys.SES_MESSAGE_ID},
                ExpressionAttributeValues={":id": {"S": ses_message_id}},
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        for item in response.get("Items", []):
            if item.get(Keys.MESSAGES_SK, {}).get("S") == MESSAGE_LOG_REQUEST_SK:
                return str(item[Keys.MESSAGES_PK]["S"])
        return None

    def append(self, request_id: str, record: FeedbackRecord, *, require_request: bool = True) -> str:
        """Append the event to the request's history; without `require_request`, store it beside the request."""
        if not require_request:
            self._put_event(request_id, record)
            # Beside a missing request nothing tells an earlier event of the same status: count it.
            return Appended(first=True)
        return self._append_history(request_id, record)

    def append_unattributed(self, record: FeedbackRecord) -> None:
        """Store the event under `ses#<SES message id>`."""
        self._put_event(UNATTRIBUTED_PREFIX + record.ses_message_id, record)

    def _append_history(self, request_id: str, record: FeedbackRecord) -> str:
        entry = {"event": {"S": record.event_type}, **_event_attributes(record)}
        key = _event_key_digest(record)
        condition = "attribute_exists(#pk) AND (attribute_not_exists(#keys) OR NOT contains(#keys, :key))"
        values: dict[str, Any] = {
            ":empty": {"L": []},
            ":entry": {"L": [{"M": entry}]},
            ":key_list": {"L": [{"S": key}]},
            ":key": {"S": key},
        }
        if record.event_type in REPEATABLE_EVENTS:
            # Opens and clicks repeat without bound: past the cap they are counted, not kept, so
            # the item (and what each write of it costs) stays small.
            condition += " AND (attribute_not_exists(#h) OR size(#h) < :cap)"
            values[":cap"] = {"N": str(HISTORY_CAP)}
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=self._request_key(request_id),
                UpdateExpression=(
                    "SET #h = list_append(if_not_exists(#h, :empty), :entry), "
                    "#keys = list_append(if_not_exists(#keys, :empty), :key_list)"
                ),
                ConditionExpression=condition,
                ExpressionAttributeNames={"#h": "history", "#keys": "event_keys", "#pk": Keys.MESSAGES_PK},
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                # The history before this entry, at no capacity cost: tells the first entry of a status
                # (the first open of a request), which updates of one item, being serialised, agree on.
                ReturnValues="UPDATED_OLD",
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise as_transient(exc, "dynamodb") from None
            returned: Any = exc.response.get("Item")
            exists = bool(returned) or self._request_exists(request_id)
            return APPEND_DUPLICATE if exists else APPEND_NO_REQUEST
        except BotoCoreError as exc:
            raise as_transient(exc, "dynamodb") from None
        before = (response.get("Attributes") or {}).get("history", {}).get("L", [])
        seen = {entry.get("M", {}).get("status", {}).get("S") for entry in before}
        return Appended(first=record.status not in seen)

    def _request_exists(self, request_id: str) -> bool:
        try:
            response = self._client.get_item(
                TableName=self._table,
                Key=self._request_key(request_id),
                ProjectionExpression="#pk",
                ExpressionAttributeNames={"#pk": Keys.MESSAGES_PK},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        return "Item" in response

    def _put_event(self, partition: str, record: FeedbackRecord) -> None:
        item: dict[str, Any] = {
            Keys.MESSAGES_PK: {"S": partition},
            Keys.MESSAGES_SK: {"S": EVENT_PREFIX + record.key},
            "type": {"S": record.event_type},
            **_event_attributes(record),
            # Not named ses_message_id: event items stay out of the index of request items.
            "message_id": {"S": record.ses_message_id},
            Keys.TTL: {"N": str(int(self._clock() + self._ttl_seconds))},
        }
        try:
            # Idempotent: the same event always lands on the same key.
            self._client.put_item(TableName=self._table, Item=item)
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None


def _event_attributes(record: FeedbackRecord) -> dict[str, Any]:
    """What readers need of an event (`with_feedback`), as DynamoDB attributes; empty ones are left out."""
    attributes: dict[str, Any] = {"status": {"S": record.status}, "at": {"N": f"{record.at:.3f}"}}
    if record.rank is not None:
        attributes["rank"] = {"N": str(record.rank)}
    if record.recipients:
        attributes["recipients"] = {"L": [{"S": masked} for masked in record.recipients]}
    if record.detail:
        attributes["detail"] = {"M": {name: {"S": value} for name, value in record.detail.items()}}
    return attributes


def _event_key_digest(record: FeedbackRecord) -> str:
    """The short form of the event's key kept in `event_keys` to recognise a redelivery."""
    # 64 bits: no collision among one request's handful of events, and 16 bytes instead of ~50
    # in an item that every later write pays for.
    return hashlib.sha256(record.key.encode("utf-8")).hexdigest()[:16]


def transact_conditionally(client: Any, items: list[dict[str, Any]]) -> bool:
    """Write `items` in one transaction; False when a condition of one of them failed (nothing written)."""
    try:
        client.transact_write_items(TransactItems=items)
    except ClientError as exc:
        reasons: Any = exc.response.get("CancellationReasons") or []
        if error_code(exc) == "TransactionCanceledException" and any(
            reason.get("Code") == "ConditionalCheckFailed" for reason in reasons
        ):
            return False
        raise as_transient(exc, "dynamodb") from None
    except BotoCoreError as exc:
        raise as_transient(exc, "dynamodb") from None
    return True
