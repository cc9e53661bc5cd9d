"""In-memory fakes of the ports in `mailwright.ports`, for tests, the local stack and benchmarks.

Each fake keeps the semantics of its boto3 adapter in `mailwright.adapters`
(conditional claims, fixed-window counters, versioned templates...), is
thread-safe because the send service calls ports from a thread pool, counts
its calls per method in `calls`, and can be told to fail::

    world.suppressions.failures["get_many"] = TransientError("dynamodb_failed", "injected")

`build_fake_service()` wires a `SendService` to a fresh set of fakes.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from mailwright.address_keys import AddressHasher, AddressKeyring
from mailwright.constants import DEFAULT_LANE, LANES, MESSAGE_LOG_REQUEST_SK, STATUS_DEFERRED, STATUS_SENT, Keys
from mailwright.errors import TemplateNotFoundError
from mailwright.pacing import Pacer, SendPacer, gcra_grant
from mailwright.ports import (
    APPEND_DUPLICATE,
    APPEND_NO_REQUEST,
    BREAKER_HISTORY_KEEP,
    CANCELLED_CLAIM,
    DIGEST_OPEN,
    DIGEST_SENDING,
    HISTORY_CAP,
    REPEATABLE_EVENTS,
    SCOPE_ALL,
    AccountState,
    Appended,
    AuditRecord,
    BreakerChange,
    BreakerState,
    CancelResult,
    ClaimRecord,
    ClaimResult,
    Deferral,
    DeferredState,
    DigestFold,
    DigestItem,
    DigestWindow,
    FeedbackRecord,
    IndexEntry,
    IndexPage,
    LaneMessage,
    LoggedState,
    OutboundEmail,
    Outcome,
    PreferenceAudit,
    PreferenceRecord,
    Preferences,
    RefusedMessage,
    Schedule,
    ScheduledRequest,
    ScheduleEntry,
    SendQuota,
    Suppression,
    SuppressionEntry,
    TakeResult,
    with_feedback,
)
from mailwright.producers import ProducerKey
from mailwright.scheduling import Scheduling
from mailwright.sending import QueueRecord, SendPolicy, SendService
from mailwright.settings import RateLimit
from mailwright.templates import Renderer, TemplateBundle, load_template_tree
from mailwright.tokens import TokenSigner
from mailwright.variants import SwitchedOff, TemplateVariants, VariantCounts, VariantService
from mailwright_tools.project import SOURCE_CHECKOUT

# The templates shipped with the repository.
TEMPLATES_DIR = SOURCE_CHECKOUT / "templates"
# Signs unsubscribe links in fake worlds; never a real secret.
DEFAULT_SIGNING_KEY = b"mailwright-fake-signing-key-0123456789"
# Keys address hashes in fake worlds (one key version, nothing legacy stored); never a real secret.
FAKE_ADDRESS_KEYRING = AddressKeyring(keys={1: b"mailwright-fake-address-key-0123456789"}, current=1)
FAKE_HASHER = AddressHasher(FAKE_ADDRESS_KEYRING, readable_from=1)

FailureRule = Callable[[OutboundEmail], Exception | None]


class FakeClock:
    """A manual clock for time-dependent code: read it by calling it; `advance` and `sleep` move it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        """The current fake time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Record a sleep and move the clock forward by it, without waiting."""
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(0.0, seconds)


class _FakePort:
    """Shared plumbing of the fakes: a lock, per-method call counters and injectable failures."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.calls: Counter[str] = Counter()
        # Method name -> exception raised by every call of that method while it is set.
        self.failures: dict[str, Exception] = {}

    def _enter(self, method: str) -> None:
        """Count a call of `method` and raise its injected failure, if any."""
        with self._lock:
            self.calls[method] += 1
            failure = self.failures.get(method)
        if failure is not None:
            raise failure.with_traceback(None)

    def reset_calls(self) -> None:
        """Forget the call counts (the stored data stays)."""
        with self._lock:
            self.calls.clear()


class StaticAddressKeys(_FakePort):
    """AddressKeySource with a fixed hasher (default: one key version, no legacy items readable)."""

    def __init__(self, hasher: AddressHasher = FAKE_HASHER) -> None:
        super().__init__()
        self.current = hasher

    def hasher(self) -> AddressHasher:
        """The fixed hasher (or the injected failure)."""
        self._enter("hasher")
        return self.current


class FakeEmailSender(_FakePort):
    """EmailSender that keeps every email it accepts; can be slow (`latency_seconds`) or fail per email (`fail`).

    `fail(email)` returns the exception to raise for that email, or None to
    accept it: e.g. `lambda e: ThrottledError("throttled", "slow down") if
    e.to_address == "b@example.com" else None`.
    """

    def __init__(
        self,
        *,
        latency_seconds: float = 0.0,
        fail: FailureRule | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.latency_seconds = latency_seconds
        self.fail = fail
        self._sleep = sleep
        self.sent: list[OutboundEmail] = []
        self.attempts: list[OutboundEmail] = []
        self.by_message_id: dict[str, OutboundEmail] = {}
        self.in_flight = 0
        self.max_in_flight = 0

    def send(self, email: OutboundEmail) -> str:
        """Accept `email` (after the latency) and return a new message id, or raise the scripted failure."""
        self._enter("send")
        with self._lock:
            self.attempts.append(email)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency_seconds > 0:
                self._sleep(self.latency_seconds)
            error = self.fail(email) if self.fail is not None else None
            if error is not None:
                raise error
            message_id = f"fake-{uuid.uuid4().hex}"
            with self._lock:
                self.sent.append(email)
                self.by_message_id[message_id] = email
            return message_id
        finally:
            with self._lock:
                self.in_flight -= 1

    def sent_to(self, address: str) -> list[OutboundEmail]:
        """The accepted emails addressed to `address`."""
        with self._lock:
            return [email for email in self.sent if email.to_address == address]


class FakeSuppressionStore(_FakePort):
    """SuppressionStore in a dict by address hash; like DynamoDB TTL, expired items are still returned."""

    def __init__(self, suppressions: Iterable[Suppression] = ()) -> None:
        super().__init__()
        self.items: dict[str, Suppression] = {s.address_hash: s for s in suppressions}

    def put(self, suppression: Suppression) -> None:
        """Store (or replace) a suppression."""
        with self._lock:
            self.items[suppression.address_hash] = suppression

    def suppress(
        self,
        address: str,
        reason: str = "BOUNCE",
        *,
        scope: str = SCOPE_ALL,
        expires_at: int | None = None,
        hasher: AddressHasher = FAKE_HASHER,
    ) -> Suppression:
        """Suppress an address given in clear (it is hashed as the worker hashes it)."""
        key = hasher.address_hash(address)
        suppression = Suppression(address_hash=key, reason=reason, scope=scope, expires_at=expires_at)
        self.put(suppression)
        return suppression

    def remove(self, address_hash: str) -> bool:
        """Delete a suppression; whether there was one."""
        with self._lock:
            return self.items.pop(address_hash, None) is not None

    def get_many(self, address_hashes: Collection[str]) -> dict[str, Suppression]:
        """Suppressions of the given address hashes that exist."""
        self._enter("get_many")
        with self._lock:
            return {h: self.items[h] for h in address_hashes if h in self.items}


class FakePreferenceStore(_FakePort):
    """PreferenceStore in a dict by user id."""

    def __init__(self, preferences: Iterable[Preferences] = ()) -> None:
        super().__init__()
        self.items: dict[str, Preferences] = {p.user_id: p for p in preferences}

    def put(self, preferences: Preferences) -> None:
        """Store (or replace) a user's preferences."""
        with self._lock:
            self.items[preferences.user_id] = preferences

    def remove(self, user_id: str) -> bool:
        """Delete a user's preferences; whether there were any."""
        with self._lock:
            return self.items.pop(user_id, None) is not None

    def get_many(self, user_ids: Collection[str]) -> dict[str, Preferences]:
        """Preferences of the given users that have any."""
        self._enter("get_many")
        with self._lock:
            return {u: self.items[u] for u in user_ids if u in self.items}


class FakeClaimStore(_FakePort):
    """ClaimStore with the idempotency table's conditional writes.

    A claim succeeds only when no record exists (else the existing record is
    returned); `take_over` succeeds only while the record still holds the
    lease id it was given; `release` deletes only for the lease holder.
    Records whose TTL has passed count as deleted. Times are whole seconds,
    as the adapter stores them.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._clock = clock
        self._records: dict[str, tuple[ClaimRecord, float]] = {}

    def _live(self, request_id: str, now: float) -> ClaimRecord | None:
        entry = self._records.get(request_id)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._records[request_id]
            return None
        return entry[0]

    def claim(self, request_id: str, content_hash: str, *, lease_seconds: int, ttl_seconds: int) -> ClaimResult:
        """Claim `request_id`; on conflict, return the record already there."""
        self._enter("claim")
        with self._lock:
            now = self._clock()
            existing = self._live(request_id, now)
            if existing is not None:
                return ClaimResult(won=False, lease_id="", existing=existing)
            lease_id = uuid.uuid4().hex
            record = ClaimRecord(
                request_id=request_id,
                content_hash=content_hash,
                lease_id=lease_id,
                lease_until=float(int(now + lease_seconds)),
            )
            self._records[request_id] = (record, float(int(now + max(ttl_seconds, lease_seconds))))
            return ClaimResult(won=True, lease_id=lease_id)

    def take_over(self, record: ClaimRecord, *, lease_seconds: int) -> str | None:
        """Replace the lease of `record` with a new one, unless its lease id changed (or it is gone)."""
        self._enter("take_over")
        return self._replace_lease(record, lease_seconds=lease_seconds)

    def reclaim(self, record: ClaimRecord, *, evaluation: int, lease_seconds: int, ttl_seconds: int) -> str | None:
        """Take the claim for evaluation `evaluation`, unless its lease id changed (or it is gone)."""
        self._enter("reclaim")
        expires = float(int(self._clock() + max(ttl_seconds, lease_seconds)))
        return self._replace_lease(record, lease_seconds=lease_seconds, evaluation=evaluation, expires=expires)

    def _replace_lease(
        self, record: ClaimRecord, *, lease_seconds: int, evaluation: int | None = None, expires: float | None = None
    ) -> str | None:
        with self._lock:
            now = self._clock()
            current = self._live(record.request_id, now)
            if current is None or current.lease_id != record.lease_id:
                return None
            lease_id = uuid.uuid4().hex
            updated = replace(current, lease_id=lease_id, lease_until=float(int(now + lease_seconds)))
            if evaluation is not None:
                updated = replace(updated, evaluation=evaluation)
            self._records[record.request_id] = (updated, expires or self._records[record.request_id][1])
            return lease_id

    def release(self, request_id: str, lease_id: str) -> None:
        """Delete the claim if `lease_id` still holds it; otherwise do nothing."""
        self._enter("release")
        with self._lock:
            current = self._live(request_id, self._clock())
            if current is not None and current.lease_id == lease_id:
                del self._records[request_id]

    def put(self, record: ClaimRecord, *, expires_at: float | None = None) -> None:
        """Store a claim as another worker would have left it (default TTL: one day past its lease)."""
        with self._lock:
            expires = record.lease_until + 86400 if expires_at is None else expires_at
            self._records[record.request_id] = (record, expires)

    def get(self, request_id: str) -> ClaimRecord | None:
        """The live claim of a request, or None."""
        with self._lock:
            return self._live(request_id, self._clock())

    def __len__(self) -> int:
        """How many claims are stored (expired ones included until touched)."""
        with self._lock:
            return len(self._records)


class FakeRateLimiter(_FakePort):
    """RateLimiter with the set of request ids per user, category and fixed window, as the DynamoDB adapter keeps it.

    Like the adapter's condition (`attribute_not_exists(ids) OR contains(ids, id)
    OR size(ids) < limit`), the first email of a window is always counted, a
    request already counted is allowed again without a second slot, and a full
    window refuses without counting.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counted: dict[tuple[str, str, int], set[str]] = {}

    @staticmethod
    def window_start(limit: RateLimit, now: float) -> int:
        """The start of the fixed window holding `now`."""
        return int(now // limit.window_seconds) * limit.window_seconds

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
        """Count `request_id` once; False (nothing counted) when the window, older keys included, is full."""
        self._enter("acquire")
        window = self.window_start(limit, now)
        with self._lock:
            earlier: set[str] = set()
            for older in older_user_ids:
                earlier |= self.counted.get((older, category, window), set())
            if request_id in earlier:
                return True
            room = limit.limit - len(earlier)
            ids = self.counted.get((user_id, category, window))
            if room <= 0 or (ids is not None and request_id not in ids and len(ids) >= room):
                return False
            self.counted.setdefault((user_id, category, window), set()).add(request_id)
            return True

    def count(self, user_id: str, category: str, limit: RateLimit, *, now: float) -> int:
        """Requests counted for a user and category in the window holding `now`."""
        with self._lock:
            return len(self.counted.get((user_id, category, self.window_start(limit, now)), ()))


class FakeRateRegistry(_FakePort):
    """RateRegistry in memory, with the DynamoDB adapter's semantics (one GCRA bucket, per-lane schedules).

    Shared by every worker given it, as the item is. `writes` counts the
    writes each adapter item would take (`pace#bucket`, `pace#schedule#<lane>`),
    for the hot-key figures of the benchmarks.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tat = 0.0
        self.state = AccountState()
        self.schedules: dict[str, float] = {}
        self.refresh_claimed_at = 0.0
        self.writes: Counter[str] = Counter()
        self.granted = 0

    def take(
        self,
        *,
        lane: str,
        count: int,
        interval: float,
        reach: float,
        max_wait: float,
        now: float,
        minimum: int = 1,
    ) -> TakeResult:
        """Grant what the bucket allows the lane's reach (see `mailwright.pacing.gcra_grant`); record the lane."""
        self._enter("take")
        with self._lock:
            granted, base, new_tat = gcra_grant(
                tat=self.tat, now=now, count=count, interval=interval, reach=reach, max_wait=max_wait, minimum=minimum
            )
            if granted:
                self.tat = new_tat
                self.granted += granted
                self.writes["pace#bucket"] += 1
                granted_so_far = self.state.lanes_granted.get(lane, 0.0) + granted
                self.state = replace(
                    self.state,
                    lanes_active_at={**self.state.lanes_active_at, lane: now},
                    lanes_granted={**self.state.lanes_granted, lane: granted_so_far},
                )
            return TakeResult(granted=granted, base=base, state=self.state)

    def read_state(self) -> AccountState:
        """The shared account state."""
        self._enter("read_state")
        with self._lock:
            return self.state

    def give_back(self, *, seconds: float, now: float) -> None:
        """Move the arrival time back, unless those tokens expired (as the adapter's condition)."""
        self._enter("give_back")
        with self._lock:
            self.writes["pace#bucket"] += 1
            if self.tat >= now + seconds:
                self.tat -= seconds

    def schedule(
        self, *, lane: str, count: int, interval: float, now: float, horizon: float, after: tuple[str, ...] = ()
    ) -> float | None:
        """Book `count` slots in the lane's schedule, after the lanes `after`'s; the first, or None past the horizon."""
        self._enter("schedule")
        with self._lock:
            start = max(self.schedules.get(lane, 0.0), now, *(self.schedules.get(x, 0.0) for x in after))
            if start > horizon:
                return None
            self.writes[f"pace#schedule#{lane}"] += 1
            self.schedules[lane] = end = start + count * interval
            if lane != LANES[-1] and end > self.state.lanes_booked_until.get(lane, 0.0):
                # As the adapter: the lower lanes learn it from the bucket item.
                self.writes["pace#bucket"] += 1
                self.state = replace(self.state, lanes_booked_until={**self.state.lanes_booked_until, lane: end})
            return start

    def congested(self, *, rate: float, now: float, min_gap: float) -> bool:
        """Record a throttle unless one was recorded within `min_gap`."""
        self._enter("congested")
        with self._lock:
            self.writes["pace#bucket"] += 1
            if now - self.state.congestion_at < min_gap:
                return False
            self.state = replace(self.state, congestion_rate=rate, congestion_at=now)
            return True

    def quota_exhausted(self, *, now: float) -> None:
        """Record an exhausted daily quota."""
        self._enter("quota_exhausted")
        with self._lock:
            self.writes["pace#bucket"] += 1
            self.state = replace(self.state, quota_exhausted_at=now)

    def claim_refresh(self, *, now: float, min_gap: float) -> bool:
        """One worker per `min_gap` reads the quota from SES."""
        self._enter("claim_refresh")
        with self._lock:
            self.writes["pace#bucket"] += 1
            if now - self.refresh_claimed_at < min_gap:
                return False
            self.refresh_claimed_at = now
            return True

    def store_quota(self, quota: SendQuota, *, now: float) -> AccountState:
        """Share SES's quota."""
        self._enter("store_quota")
        with self._lock:
            self.writes["pace#bucket"] += 1
            self.state = replace(self.state, quota=quota, quota_read_at=now)
            return self.state


class FakeAccountReader(_FakePort):
    """AccountReader answering the configured quota (the local stack: cdk.json's rate); change it to follow."""

    def __init__(
        self, max_send_rate: float, *, max_24_hour_send: float = 50_000.0, sent_last_24_hours: float = 0.0
    ) -> None:
        super().__init__()
        self.quota = SendQuota(max_send_rate, max_24_hour_send, sent_last_24_hours)

    def read(self) -> SendQuota:
        """The quota as set."""
        self._enter("read")
        with self._lock:
            return self.quota


class FakeDeferrals(_FakePort):
    """Deferrals that keep what they are given (`deferred`); `refuse` names message ids that fail."""

    def __init__(self) -> None:
        super().__init__()
        self.deferred: list[Deferral] = []
        self.refuse: set[str] = set()

    def defer(self, deferrals: Sequence[Deferral]) -> set[str]:
        """Keep the deferrals; the refused ids fail."""
        self._enter("defer")
        with self._lock:
            failed = {d.message_id for d in deferrals if d.message_id in self.refuse}
            self.deferred.extend(d for d in deferrals if d.message_id not in failed)
            return failed


def _number(value: float) -> int | float:
    """A number as the adapter reads it back (3 decimals; int when whole)."""
    rounded = round(value, 3)
    return int(rounded) if rounded == int(rounded) else rounded


def _outcome_entry(outcome: Outcome) -> dict[str, Any]:
    """An outcome's history entry, as the adapter writes it."""
    entry: dict[str, Any] = {
        "status": outcome.status,
        "at": _number(outcome.completed_at),
        "evaluation": outcome.evaluation,
    }
    if outcome.reason_code:
        entry["reason_code"] = outcome.reason_code
    if outcome.digest_id:
        entry["detail"] = {"digest_id": outcome.digest_id}
    return entry


class FakeMessageLog(_FakePort):
    """MessageLog keeping the latest outcome per request, as the adapter does.

    A first evaluation's write replaces the item (a put); a later evaluation's
    replaces its state and joins the history of the earlier ones, unless that
    evaluation (or a later one) is already recorded.
    """

    def __init__(self, *, ttl_days: int = 90) -> None:
        super().__init__()
        self._ttl_seconds = ttl_days * 86400
        self._items: dict[str, Outcome] = {}
        # The outcomes of earlier evaluations of each request, oldest first.
        self._earlier: dict[str, list[Outcome]] = {}
        # Appended by the feedback log: entries of the request's history, events stored beside it.
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._events: dict[str, list[dict[str, Any]]] = {}
        self.writes: list[Outcome] = []
        # Requests recorded `deferred` and not (yet) finished: their latest state and history entries.
        self._deferred: dict[str, tuple[DeferredState, list[dict[str, Any]]]] = {}

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Store the outcomes; within one call the last outcome of a request id wins."""
        self._enter("record")
        with self._lock:
            for outcome in outcomes:
                copy = replace(outcome, metadata=dict(outcome.metadata))
                before = self._items.get(outcome.request_id)
                if outcome.evaluation > 1 and before is not None:
                    if before.evaluation >= outcome.evaluation:
                        continue
                    self._earlier.setdefault(outcome.request_id, []).append(before)
                elif outcome.evaluation <= 1:
                    self._earlier.pop(outcome.request_id, None)
                self._items[outcome.request_id] = copy
                self._deferred.pop(outcome.request_id, None)  # the outcome's put replaces the deferred item
                self.writes.append(copy)

    def states(self, request_ids: Collection[str]) -> dict[str, LoggedState]:
        """Recorded status and evaluation by request id."""
        self._enter("states")
        with self._lock:
            found = {
                rid: LoggedState(self._items[rid].status, self._items[rid].evaluation)
                for rid in request_ids
                if rid in self._items
            }
            found.update(
                {rid: LoggedState(STATUS_DEFERRED) for rid in request_ids if rid in self._deferred and rid not in found}
            )
            return found

    def record_deferred(self, states: Sequence[DeferredState]) -> None:
        """Record requests as deferred, as the adapter does: one history entry per wait, never over an outcome."""
        self._enter("record_deferred")
        with self._lock:
            for state in states:
                if state.request_id in self._items:
                    continue
                _, history = self._deferred.get(state.request_id, (state, []))
                if not history or history[-1]["resume_at"] != _number(state.resume_at):
                    entry = {"status": STATUS_DEFERRED, "at": _number(state.at), "reason_code": state.reason_code}
                    history = [*history, {**entry, "resume_at": _number(state.resume_at)}]
                self._deferred[state.request_id] = (state, history)

    def _deferred_item(self, request_id: str) -> dict[str, Any] | None:
        found = self._deferred.get(request_id)
        if found is None:
            return None
        state, history = found
        item: dict[str, Any] = {
            Keys.MESSAGES_PK: request_id,
            Keys.MESSAGES_SK: MESSAGE_LOG_REQUEST_SK,
            "status": STATUS_DEFERRED,
            "lane": state.lane,
            "reason_code": state.reason_code,
            "reason": state.reason,
            "resume_at": _number(state.resume_at),
            "completed_at": _number(state.at),
            "history": [dict(entry) for entry in history],
            Keys.TTL: int(state.at + self._ttl_seconds),
        }
        optional = {
            "template_id": state.template_id,
            "category": state.category,
            "user_id": state.user_id,
            "recipient_hash": state.recipient_hash,
            "recipient_masked": state.recipient_masked,
            "producer": state.producer,
        }
        item.update({key: value for key, value in optional.items() if value})
        if state.received_at is not None:
            item["received_at"] = _number(state.received_at)
        return with_feedback(item, [])

    def statuses(self, request_ids: Collection[str]) -> dict[str, str]:
        """Recorded status by request id (a convenience of the fake for tests)."""
        return {rid: state.status for rid, state in self.states(request_ids).items()}

    def get(self, request_id: str) -> dict[str, Any] | None:
        """The request item with its SES `events` and `delivery` state, shaped as the adapter returns it."""
        self._enter("get")
        with self._lock:
            outcome = self._items.get(request_id)
            if outcome is None:
                return self._deferred_item(request_id)
            appended = [dict(entry) for entry in self._history.get(request_id, [])]
            events = [dict(event) for event in self._events.get(request_id, [])]
            evaluations = [*self._earlier.get(request_id, []), outcome]
        done = outcome.completed_at
        item: dict[str, Any] = {
            Keys.MESSAGES_PK: outcome.request_id,
            Keys.MESSAGES_SK: MESSAGE_LOG_REQUEST_SK,
            "status": outcome.status,
            "lane": outcome.lane,
            "completed_at": _number(done),
            "attempts": outcome.attempts,
            "evaluation": outcome.evaluation,
            "history": [*map(_outcome_entry, evaluations), *appended],
            Keys.TTL: int(done + self._ttl_seconds),
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
        item.update({key: value for key, value in optional.items() if value})
        if outcome.received_at is not None:
            item["received_at"] = _number(outcome.received_at)
        if outcome.metadata:
            item["metadata"] = dict(outcome.metadata)
        if outcome.status == STATUS_SENT:
            item["provider"] = outcome.provider
        return with_feedback(item, events)

    def append_history(self, request_id: str, entry: Mapping[str, Any]) -> None:
        """Append an SES event's entry to a request's history, as the feedback function does."""
        with self._lock:
            self._history.setdefault(request_id, []).append(dict(entry))

    def appended_history(self) -> dict[str, list[dict[str, Any]]]:
        """A copy of the entries the feedback function appended, per request."""
        with self._lock:
            return {rid: [dict(entry) for entry in entries] for rid, entries in self._history.items()}

    def add_event(self, request_id: str, event: Mapping[str, Any]) -> None:
        """Store an event item beside a request, as the feedback function does while the request is missing."""
        with self._lock:
            self._events.setdefault(request_id, []).append(dict(event))

    def outcome(self, request_id: str) -> Outcome | None:
        """The latest outcome recorded for a request."""
        with self._lock:
            return self._items.get(request_id)

    @property
    def outcomes(self) -> list[Outcome]:
        """The latest outcome of every request, in first-recorded order."""
        with self._lock:
            return list(self._items.values())


class FakeDigestStore(_FakePort):
    """DigestStore in memory, with the adapter's semantics: a request folds once, a window closes once."""

    def __init__(self) -> None:
        super().__init__()
        self.windows: dict[tuple[str, int], DigestWindow] = {}
        self.newest: dict[str, int] = {}
        self.folded: dict[str, tuple[str, int]] = {}

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
        self._enter("fold")
        with self._lock:
            if item.request_id in self.folded:
                return DigestFold(window=self.windows[self.folded[item.request_id]], again=True)
            number = self.newest.get(key, 0)
            while True:
                window = self.windows.get((key, number))
                if window is None:
                    window = DigestWindow(
                        key=key,
                        number=number,
                        state=DIGEST_OPEN,
                        opened_at=item.at,
                        closes_at=item.at + window_seconds,
                        max_items=max_items,
                        email=dict(email),
                        items=(item,),
                    )
                    self.windows[(key, number)] = window
                    self.newest[key] = number
                    self.folded[item.request_id] = (key, number)
                    return DigestFold(window=window, opened=True)
                if window.state == DIGEST_OPEN and not window.full:
                    window = replace(window, items=(*window.items, item))
                    self.windows[(key, number)] = window
                    self.folded[item.request_id] = (key, number)
                    return DigestFold(window=window)
                number += 1

    def read(self, key: str, number: int) -> DigestWindow | None:
        """A window as stored, or None."""
        self._enter("read")
        with self._lock:
            return self.windows.get((key, number))

    def close(self, key: str, number: int) -> DigestWindow | None:
        """Close an open window (open -> sending); the window, or None when absent."""
        self._enter("close")
        with self._lock:
            window = self.windows.get((key, number))
            if window is not None and window.state == DIGEST_OPEN:
                window = self.windows[(key, number)] = replace(window, state=DIGEST_SENDING)
            return window


@cache
def _shipped_bundles(root: Path) -> tuple[TemplateBundle, ...]:
    # Bundles are frozen models, so one parse of the directory can serve every fake.
    return tuple(load_template_tree(root).values())


class FakeTemplateSource(_FakePort):
    """TemplateSource over versioned bundles: the latest version unless one is pinned, like a versioned bucket."""

    def __init__(self, bundles: Iterable[TemplateBundle] = ()) -> None:
        super().__init__()
        self._versions: dict[str, list[TemplateBundle]] = {}
        for bundle in bundles:
            self.put(bundle)

    @classmethod
    def from_directory(cls, root: Path = TEMPLATES_DIR) -> FakeTemplateSource:
        """A source holding one version of every template under `root` (default: the shipped templates)."""
        return cls(_shipped_bundles(root.resolve()))

    def put(self, bundle: TemplateBundle, *, version: str | None = None) -> str:
        """Store a new version of a template and make it the latest; return its version id."""
        version_id = version or bundle.version or uuid.uuid4().hex
        stored = bundle.model_copy(update={"version": version_id})
        with self._lock:
            self._versions.setdefault(bundle.template_id, []).append(stored)
        return version_id

    def delete(self, template_id: str) -> None:
        """Remove every version of a template."""
        with self._lock:
            self._versions.pop(template_id, None)

    def versions(self, template_id: str) -> list[str]:
        """Version ids of a template, oldest first."""
        with self._lock:
            return [b.version or "" for b in self._versions.get(template_id, [])]

    @property
    def template_ids(self) -> list[str]:
        """The ids of the stored templates."""
        with self._lock:
            return sorted(self._versions)

    def get(self, template_id: str, version: str | None = None) -> TemplateBundle:
        """The bundle of `template_id` (at `version` if given); TemplateNotFoundError if there is none."""
        self._enter("get")
        with self._lock:
            versions = self._versions.get(template_id, [])
            if version is None and versions:
                return versions[-1]
            for bundle in versions:
                if bundle.version == version:
                    return bundle
        raise TemplateNotFoundError(template_id, version)


class FakeRetryScheduler(_FakePort):
    """RetryScheduler that records each (receipt handle, seconds) it is asked to delay."""

    def __init__(self) -> None:
        super().__init__()
        self.delays: list[tuple[str, int]] = []
        # SQS calls the adapter would make: ChangeMessageVisibilityBatch takes ten entries.
        self.requests = 0

    def delay(self, receipts: Sequence[tuple[str, int]]) -> None:
        """Record the delays."""
        self._enter("delay")
        with self._lock:
            self.delays.extend(receipts)
            self.requests += -(-len(receipts) // 10)

    def delay_for(self, receipt_handle: str) -> int | None:
        """The latest delay asked for a message, or None."""
        with self._lock:
            found = [seconds for handle, seconds in self.delays if handle == receipt_handle]
        return found[-1] if found else None


class FakeProducerDirectory(_FakePort):
    """ProducerDirectory over a dict of API key ids (the producers table's items, without the table)."""

    def __init__(self, keys: Iterable[ProducerKey] = ()) -> None:
        super().__init__()
        self.keys = {key.api_key_id: key for key in keys}

    def add(self, api_key_id: str, producer: str, *, retires_at: float | None = None) -> ProducerKey:
        """Record a key of `producer`, as `mailwright producers add` (or `rotate`, with retires_at) does."""
        key = ProducerKey(api_key_id=api_key_id, producer=producer, created_at=time.time(), retires_at=retires_at)
        with self._lock:
            self.keys[api_key_id] = key
        return key

    def key(self, api_key_id: str) -> ProducerKey | None:
        """The key's record, or None."""
        self._enter("key")
        with self._lock:
            return self.keys.get(api_key_id)


@dataclass
class FakeWorld:
    """Every fake a `SendService` built by `build_fake_service` talks to."""

    policy: SendPolicy
    templates: FakeTemplateSource
    suppressions: FakeSuppressionStore
    preferences: FakePreferenceStore
    claims: FakeClaimStore
    address_keys: StaticAddressKeys
    rate_limiter: FakeRateLimiter
    message_log: FakeMessageLog
    sender: FakeEmailSender
    retries: FakeRetryScheduler
    deferrals: FakeDeferrals
    signer: TokenSigner
    pacer: SendPacer
    executor: ThreadPoolExecutor
    schedules: FakeScheduleStore | None = None
    scheduler: FakeScheduler | None = None
    digests: FakeDigestStore = field(default_factory=FakeDigestStore)

    def close(self) -> None:
        """Stop the service's thread pool."""
        self.executor.shutdown(wait=True)


def build_fake_service(
    *,
    lane: str = DEFAULT_LANE,
    rate_limits: Mapping[str, RateLimit] | None = None,
    from_address: str = "no-reply@example.com",
    configuration_set: str = "mailwright-events",
    unsubscribe_base_url: str = "https://example.com/unsubscribe",
    postal_address: str = "Example Co., 1 Example Street, Springfield",
    idempotency_ttl_seconds: int = 86400,
    max_backoff_seconds: int = 900,
    templates: FakeTemplateSource | None = None,
    suppressions: FakeSuppressionStore | None = None,
    preferences: FakePreferenceStore | None = None,
    claims: FakeClaimStore | None = None,
    address_keys: StaticAddressKeys | None = None,
    rate_limiter: FakeRateLimiter | None = None,
    message_log: FakeMessageLog | None = None,
    sender: FakeEmailSender | None = None,
    retries: FakeRetryScheduler | None = None,
    deferrals: FakeDeferrals | None = None,
    signing_key: bytes = DEFAULT_SIGNING_KEY,
    send_rate: float = 1000.0,
    pacer: SendPacer | None = None,
    max_workers: int = 10,
    renderer: Renderer | None = None,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    variants: VariantService | None = None,
    scheduler: FakeScheduler | None = None,
    message_log_ttl_days: int = 90,
    digests: FakeDigestStore | None = None,
    quiet_hours_categories: Collection[str] | None = None,
    digest_window_seconds: int | None = None,
    with_scheduler: bool = True,
) -> tuple[SendService, FakeWorld]:
    """A SendService for one lane wired to fresh fakes (shipped templates, fast pacing); close the world when done.

    Example::

        service, world = build_fake_service(rate_limits={"marketing": RateLimit(2, 86400)})
        report = service.process([queue_record({"recipient_email": ..., "template_id": ..., ...})])
        assert world.sender.sent
        world.close()
    """
    policy = SendPolicy(
        lane=lane,
        from_address=from_address,
        configuration_set=configuration_set,
        unsubscribe_base_url=unsubscribe_base_url,
        postal_address=postal_address,
        idempotency_ttl_seconds=idempotency_ttl_seconds,
        rate_limits=dict(rate_limits or {}),
        max_backoff_seconds=max_backoff_seconds,
        **({} if quiet_hours_categories is None else {"quiet_hours_categories": frozenset(quiet_hours_categories)}),
        digest_window_seconds=digest_window_seconds,
    )
    signer = TokenSigner(signing_key)
    world = FakeWorld(
        policy=policy,
        templates=templates if templates is not None else FakeTemplateSource.from_directory(),
        suppressions=suppressions if suppressions is not None else FakeSuppressionStore(),
        preferences=preferences if preferences is not None else FakePreferenceStore(),
        claims=claims if claims is not None else FakeClaimStore(clock=clock),
        address_keys=address_keys if address_keys is not None else StaticAddressKeys(),
        rate_limiter=rate_limiter if rate_limiter is not None else FakeRateLimiter(),
        message_log=message_log if message_log is not None else FakeMessageLog(),
        sender=sender if sender is not None else FakeEmailSender(),
        retries=retries if retries is not None else FakeRetryScheduler(),
        deferrals=deferrals if deferrals is not None else FakeDeferrals(),
        signer=signer,
        # A burst as large as the rate: fakes answer at once, so pacing should not dominate.
        pacer=pacer if pacer is not None else Pacer(send_rate, burst=send_rate),
        executor=ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fake-send"),
        digests=digests if digests is not None else FakeDigestStore(),
    )

    world.schedules = FakeScheduleStore(world.message_log, world.claims, clock=clock)
    # Without one (with_scheduler=False), a lane holds long schedules by retrying and quiet hours by hops.
    world.scheduler = None if not with_scheduler else scheduler if scheduler is not None else FakeScheduler()
    scheduling = Scheduling(
        store=world.schedules,
        scheduler=world.scheduler,
        lane=lane,
        log_ttl_seconds=message_log_ttl_days * 86400,
        clock=clock,
    )

    def links(user_id: str, category: str) -> dict[str, str]:
        return signer.links(unsubscribe_base_url, user_id, category)

    service = SendService(
        policy=policy,
        templates=world.templates,
        suppressions=world.suppressions,
        preferences=world.preferences,
        claims=world.claims,
        address_keys=world.address_keys,
        rate_limiter=world.rate_limiter,
        message_log=world.message_log,
        sender=world.sender,
        retries=world.retries,
        deferrals=world.deferrals,
        links=links,
        pacer=world.pacer,
        executor=world.executor,
        renderer=renderer,
        clock=clock,
        rng=rng,
        variants=variants,
        scheduling=scheduling,
        digests=world.digests,
    )
    return service, world


def queue_record(
    body: str | Mapping[str, Any],
    *,
    message_id: str | None = None,
    receive_count: int = 1,
    sent_at: float | None = None,
) -> QueueRecord:
    """A queue record carrying `body` (a mapping is sent as JSON), as the worker's handler builds it."""
    message_id = message_id or uuid.uuid4().hex
    text = body if isinstance(body, str) else json.dumps(body)
    return QueueRecord(
        message_id=message_id,
        receipt_handle=f"receipt-{message_id}",
        body=text,
        receive_count=receive_count,
        sent_at=sent_at,
    )


class FakeVariantLedger(_FakePort):
    """VariantLedger in memory: one state per template, with the adapter's conditions."""

    def __init__(self) -> None:
        super().__init__()
        self._items: dict[str, TemplateVariants] = {}
        self.writes = 0

    def read(self, template_id: str) -> TemplateVariants:
        """The template's state (empty when never written)."""
        self._enter("read")
        with self._lock:
            return self._items.get(template_id) or TemplateVariants(template_id)

    def add(
        self, template_id: str, counts: Mapping[str, VariantCounts], *, names: Sequence[str] = ()
    ) -> TemplateVariants:
        """Add to the counters (and set the names); the state after."""
        self._enter("add")
        with self._lock:
            before = self._items.get(template_id) or TemplateVariants(template_id)
            merged = dict(before.counts)
            for variant, count in counts.items():
                merged[variant] = merged.get(variant, VariantCounts()) + count
            after = replace(before, counts=merged, names=tuple(names) or before.names)
            self._items[template_id] = after
            self.writes += 1
            return after

    def switch_off(self, template_id: str, variant: str, off: SwitchedOff, *, others: Sequence[str]) -> bool:
        """Switch off if on and another of `others` stays on."""
        self._enter("switch_off")
        with self._lock:
            before = self._items.get(template_id) or TemplateVariants(template_id)
            if variant in before.off or (others and all(other in before.off for other in others)):
                return False
            self._items[template_id] = replace(before, off={**before.off, variant: off})
            self.writes += 1
            return True

    def switch_on(self, template_id: str, variant: str) -> bool:
        """Switch on and forget the variant's counts, if it was off."""
        self._enter("switch_on")
        with self._lock:
            before = self._items.get(template_id) or TemplateVariants(template_id)
            if variant not in before.off:
                return False
            off = {name: value for name, value in before.off.items() if name != variant}
            counts = {name: value for name, value in before.counts.items() if name != variant}
            self._items[template_id] = replace(before, off=off, counts=counts)
            self.writes += 1
            return True


# -- suppression lifecycle and SES feedback -------------------------------------


class FakeSuppressionLedger(_FakePort):
    """SuppressionLedger in dicts, with the DynamoDB adapter's semantics.

    Writes succeed only against the expected version (an entry written without
    a version counts as version 0); entry and audit change together; soft
    bounces are counted once per key. With `store`, every entry change is also
    put into (or removed from) that FakeSuppressionStore, so a fake send
    service sees the suppressions the fake feedback loop makes.
    """

    def __init__(self, store: FakeSuppressionStore | None = None) -> None:
        super().__init__()
        self.items: dict[str, SuppressionEntry] = {}
        self.trails: dict[str, list[AuditRecord]] = {}
        self.soft_bounces: dict[str, dict[str, float]] = {}
        self.store = store

    def get(self, address_hash: str) -> SuppressionEntry | None:
        """The stored entry, expired or not."""
        self._enter("get")
        with self._lock:
            return self.items.get(address_hash)

    def _matches(self, address_hash: str, expected_version: int | None) -> bool:
        current = self.items.get(address_hash)
        if expected_version is None:
            return current is None
        return current is not None and current.version == expected_version

    def write(self, entry: SuppressionEntry, *, expected_version: int | None, audit: AuditRecord) -> bool:
        """Store the entry and its audit record, if the stored version is the expected one."""
        self._enter("write")
        with self._lock:
            if not self._matches(entry.address_hash, expected_version):
                return False
            self.items[entry.address_hash] = entry
            self.trails.setdefault(audit.address_hash, []).append(audit)
            if self.store is not None:
                self.store.put(entry.as_suppression())
            return True

    def delete(self, address_hash: str, *, expected_version: int, audit: AuditRecord) -> bool:
        """Delete the entry and store the audit record, if the stored version is the expected one."""
        self._enter("delete")
        with self._lock:
            if not self._matches(address_hash, expected_version):
                return False
            del self.items[address_hash]
            self.trails.setdefault(audit.address_hash, []).append(audit)
            if self.store is not None:
                self.store.remove(address_hash)
            return True

    def append_audit(self, record: AuditRecord) -> None:
        """Append an audit record."""
        self._enter("append_audit")
        with self._lock:
            self.trails.setdefault(record.address_hash, []).append(record)

    def audit(self, address_hash: str) -> list[AuditRecord]:
        """The address's audit trail, in the order written."""
        self._enter("audit")
        with self._lock:
            return list(self.trails.get(address_hash, []))

    def entries(self, *, limit: int, now: float) -> list[SuppressionEntry]:
        """Up to `limit` entries active at `now`."""
        self._enter("entries")
        with self._lock:
            return [entry for entry in self.items.values() if entry.active(now)][:limit]

    def add_soft_bounce(self, address_hash: str, *, key: str, at: float, expires_at: int) -> list[float]:
        """Count a soft bounce once per key; the times of all counted ones."""
        self._enter("add_soft_bounce")
        with self._lock:
            marks = self.soft_bounces.setdefault(address_hash, {})
            marks.setdefault(key, at)
            return sorted(marks.values())

    def soft_bounce_times(self, address_hash: str) -> list[float]:
        """The times of the soft bounces counted for the address."""
        self._enter("soft_bounce_times")
        with self._lock:
            return sorted(self.soft_bounces.get(address_hash, {}).values())

    def reset_soft_bounces(self, address_hash: str) -> None:
        """Forget the address's soft bounces."""
        self._enter("reset_soft_bounces")
        with self._lock:
            self.soft_bounces.pop(address_hash, None)


class FakeSuppressionMirror(_FakePort):
    """SuppressionMirror that remembers the SES account-level list as a dict of address -> reason."""

    def __init__(self) -> None:
        super().__init__()
        self.listed: dict[str, str] = {}

    def put(self, address: str, reason: str) -> None:
        """List the address."""
        self._enter("put")
        with self._lock:
            self.listed[address] = reason

    def delete(self, address: str) -> None:
        """Unlist the address (absent is fine)."""
        self._enter("delete")
        with self._lock:
            self.listed.pop(address, None)


class FakeFeedbackLog(_FakePort):
    """FeedbackLog over a FakeMessageLog: finds requests by SES message id and appends events to their history.

    Like the adapter, an event is appended to a request's history once per key
    (`history` shows what was appended), and the message log derives `delivery` and
    `events` from it when read; events stored beside a request that was never
    logged are kept in `events`, those no request is known for in `unattributed`.
    """

    def __init__(self, message_log: FakeMessageLog | None = None) -> None:
        super().__init__()
        self.message_log = message_log or FakeMessageLog()
        self.events: dict[str, dict[str, FeedbackRecord]] = {}
        self.unattributed: dict[str, FeedbackRecord] = {}
        self._keys: dict[str, set[str]] = {}

    def find_request_id(self, ses_message_id: str) -> str | None:
        """The request whose outcome carries this SES message id."""
        self._enter("find_request_id")
        for outcome in self.message_log.outcomes:
            if outcome.ses_message_id == ses_message_id:
                return outcome.request_id
        return None

    def append(self, request_id: str, record: FeedbackRecord, *, require_request: bool = True) -> str:
        """Append once per key; APPEND_NO_REQUEST when the request is unknown and required."""
        self._enter("append")
        with self._lock:
            if not require_request:
                self.events.setdefault(request_id, {})[record.key] = record
                item = {"sk": f"event#{record.key}", "type": record.event_type, **_event_fields(record)}
                self.message_log.add_event(request_id, item)
                return Appended(first=True)
            if self.message_log.outcome(request_id) is None:
                return APPEND_NO_REQUEST
            keys = self._keys.setdefault(request_id, set())
            if record.key in keys:
                return APPEND_DUPLICATE
            # The adapter's history also holds the send's own entry.
            kept = 1 + len(self.history.get(request_id, []))
            if record.event_type in REPEATABLE_EVENTS and kept >= HISTORY_CAP:
                return APPEND_DUPLICATE
            keys.add(record.key)
            outcome = self.message_log.outcome(request_id)
            seen = {entry.get("status") for entry in self.history.get(request_id, [])}
            seen.add(outcome.status if outcome is not None else None)
            self.message_log.append_history(request_id, {"event": record.event_type, **_event_fields(record)})
            return Appended(first=record.status not in seen)

    @property
    def history(self) -> dict[str, list[dict[str, Any]]]:
        """The entries appended to each request's history, as the message log keeps them."""
        return self.message_log.appended_history()

    def append_unattributed(self, record: FeedbackRecord) -> None:
        """Keep the event under its SES message id."""
        self._enter("append_unattributed")
        with self._lock:
            self.unattributed[f"{record.ses_message_id}#{record.key}"] = record


def _event_fields(record: FeedbackRecord) -> dict[str, Any]:
    """What the adapter stores of an event, as it reads back; empty ones are left out."""
    fields: dict[str, Any] = {"status": record.status, "at": _number(record.at)}
    if record.rank is not None:
        fields["rank"] = record.rank
    if record.recipients:
        fields["recipients"] = list(record.recipients)
    if record.detail:
        fields["detail"] = dict(record.detail)
    return fields


class FakeRecipientIndex(_FakePort):
    """RecipientIndex over a FakeMessageLog's requests and over items put directly (`put`, e.g. with a producer).

    Newest first by (completed_at, request id), as one ordering DynamoDB may give; `more` is
    set when entries remain past the page, as DynamoDB's LastEvaluatedKey is when the limit is hit.
    """

    def __init__(self, log: FakeMessageLog | None = None) -> None:
        super().__init__()
        self._log = log
        self._items: dict[str, dict[str, Any]] = {}

    def put(self, item: Mapping[str, Any]) -> None:
        """Store a request item shaped as `MessageLog.get` returns it (with `recipient_hash` and `completed_at`)."""
        with self._lock:
            self._items[str(item[Keys.MESSAGES_PK])] = dict(item)

    def _all(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            items = dict(self._items)
        if self._log is not None:
            for outcome in self._log.outcomes:
                logged = self._log.get(outcome.request_id)
                if logged is not None:
                    items.setdefault(outcome.request_id, logged)
        return items

    def newest(self, address_hash: str, *, since: float | None, after: IndexEntry | None, limit: int) -> IndexPage:
        """Entries of `address_hash`, newest first, strictly after `after`."""
        self._enter("newest")
        entries = sorted(
            (
                IndexEntry(request_id=rid, completed_at=float(item[Keys.COMPLETED_AT]))
                for rid, item in self._all().items()
                if item.get(Keys.RECIPIENT_HASH) == address_hash
                and (since is None or float(item[Keys.COMPLETED_AT]) >= since)
            ),
            key=lambda entry: (entry.completed_at, entry.request_id),
            reverse=True,
        )
        if after is not None:
            entries = [e for e in entries if (e.completed_at, e.request_id) < (after.completed_at, after.request_id)]
        return IndexPage(entries=entries[:limit], more=len(entries) > limit)

    def requests(self, request_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """The request items that exist, by id."""
        self._enter("requests")
        items = self._all()
        return {rid: with_feedback(items[rid]) for rid in request_ids if rid in items}


# -- secondary providers: breakers, lost answers, webhook replays -----------------


class FakeProviderBreakerStore(_FakePort):
    """ProviderBreakerStore in dicts, with the DynamoDB adapter's semantics.

    Failures count into a window that starts at the first failure after the
    previous one ended; a write succeeds only against the stored version (a
    breaker never written is version 0); remembered lost answers expire.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._clock = clock
        self.states: dict[tuple[str, str], BreakerState] = {}
        self.maybe_sent: dict[str, tuple[str, float]] = {}
        self.writes: list[BreakerState] = []
        self.changes: dict[tuple[str, str], list[BreakerChange]] = {}

    def read(self, lane: str, provider: str) -> BreakerState:
        """The stored state, or a closed one."""
        self._enter("read")
        with self._lock:
            return self.states.get((lane, provider)) or BreakerState(lane=lane, provider=provider)

    def add_failure(self, lane: str, provider: str, *, now: float, window_seconds: float) -> BreakerState:
        """Count a failure in the current window, or start a new one."""
        self._enter("add_failure")
        with self._lock:
            state = self.states.get((lane, provider)) or BreakerState(lane=lane, provider=provider)
            if state.window_start and state.window_start >= now - window_seconds:
                state = replace(state, failures=state.failures + 1)
            else:
                state = replace(state, failures=1, window_start=now)
            self.states[(lane, provider)] = state
            return state

    def write(self, state: BreakerState, *, expected_version: int) -> bool:
        """Store the state if the stored version is the expected one."""
        self._enter("write")
        with self._lock:
            current = self.states.get((state.lane, state.provider))
            if (current.version if current else 0) != expected_version:
                return False
            self.states[(state.lane, state.provider)] = state
            self.writes.append(state)
            return True

    def mark_maybe_sent(self, request_id: str, provider: str, *, until: float) -> None:
        """Remember the provider that may have the request."""
        self._enter("mark_maybe_sent")
        with self._lock:
            self.maybe_sent[request_id] = (provider, until)

    def maybe_sent_by(self, request_id: str) -> str | None:
        """The provider remembered for the request, unless expired."""
        self._enter("maybe_sent_by")
        with self._lock:
            found = self.maybe_sent.get(request_id)
        return found[0] if found is not None and found[1] > self._clock() else None

    def record_change(self, change: BreakerChange) -> None:
        """Keep the change in the breaker's history (the last BREAKER_HISTORY_KEEP, as the adapter keeps)."""
        self._enter("record_change")
        with self._lock:
            kept = self.changes.setdefault((change.lane, change.provider), [])
            kept.append(change)
            del kept[:-BREAKER_HISTORY_KEEP]

    def history(self, lane: str, provider: str) -> list[BreakerChange]:
        """The breaker's kept changes, oldest first."""
        self._enter("history")
        with self._lock:
            return list(self.changes.get((lane, provider), []))


class FakeReplayGuard(_FakePort):
    """ReplayGuard in a dict of key -> until."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._clock = clock
        self.keys: dict[str, float] = {}

    def take(self, key: str, *, until: float) -> bool:
        """Take the key unless it is held and not expired."""
        self._enter("take")
        with self._lock:
            if self.keys.get(key, 0.0) >= self._clock():
                return False
            self.keys[key] = until
            return True

    def hold(self, key: str, *, until: float) -> None:
        """Keep the key until `until`."""
        self._enter("hold")
        with self._lock:
            self.keys[key] = until

    def give_back(self, key: str) -> None:
        """Forget the key."""
        self._enter("give_back")
        with self._lock:
            self.keys.pop(key, None)


class FakeProviderEvents:
    """ProviderEvents that keeps what it is told: breaker changes, and counts by (name, lane, provider)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.changes: list[BreakerChange] = []
        self.counts: Counter[tuple[str, str, str]] = Counter()
        # The breaker states reported, in order: (lane, provider, open).
        self.states: list[tuple[str, str, bool]] = []

    def breaker_changed(self, change: BreakerChange) -> None:
        """Keep the change."""
        with self._lock:
            self.changes.append(change)

    def count(self, name: str, *, lane: str, provider: str) -> None:
        """Count the event."""
        with self._lock:
            self.counts[(name, lane, provider)] += 1

    def state(self, *, lane: str, provider: str, is_open: bool) -> None:
        """Keep the reported state."""
        with self._lock:
            self.states.append((lane, provider, is_open))

    def transitions(self, provider: str | None = None) -> list[tuple[str, str]]:
        """The (before, after) states of the changes, of one provider or all."""
        with self._lock:
            return [(c.before, c.after) for c in self.changes if provider is None or c.provider == provider]


class FakeLanePublisher(_FakePort):
    """LanePublisher keeping each lane's messages in order; `refuse(n)` makes the next n sends refuse every entry.

    Like the SQS adapter it returns what is still refused after its retries:
    a refusal lasting fewer than `attempts` sends is retried away.
    """

    def __init__(self, *, attempts: int = 4) -> None:
        super().__init__()
        self.queues: dict[str, list[str]] = {}
        self._attempts = attempts
        self._refusals = 0
        self.refused_sends = 0

    def refuse(self, sends: int) -> None:
        """Refuse every entry of the next `sends` sends (each retry is a send)."""
        with self._lock:
            self._refusals = sends

    def publish(self, messages: Sequence[LaneMessage]) -> list[RefusedMessage]:
        """Publish in order; entries of a refused send are sent again, up to `attempts` sends in all."""
        self._enter("publish")
        with self._lock:
            for _attempt in range(self._attempts):
                if self._refusals <= 0:
                    for message in messages:
                        self.queues.setdefault(message.lane, []).append(message.body)
                    return []
                self._refusals -= 1
                self.refused_sends += 1
            return [RefusedMessage(m.key, "InternalError", "refused by the fake") for m in messages]

    def bodies(self, lane: str) -> list[dict[str, Any]]:
        """The requests published to a lane, parsed."""
        with self._lock:
            return [json.loads(body) for body in self.queues.get(lane, [])]


# -- outcome events, dead letters and webhooks (mailwright.publishing, .dead_letters, .webhooks) ----------


class FakeEventBus(_FakePort):
    """EventBus that keeps every event put on it; `refuse` decides per event whether an entry is refused."""

    def __init__(self, refuse: Callable[[Any], str | None] | None = None) -> None:
        super().__init__()
        self.events: list[Any] = []
        self.refuse = refuse

    def put(self, events: Sequence[Any]) -> list[str | None]:
        """Keep the accepted events; the error code of each refused one."""
        self._enter("put")
        if len(events) > 10:
            raise ValueError("PutEvents takes at most 10 entries")
        codes: list[str | None] = []
        with self._lock:
            for event in events:
                code = self.refuse(event) if self.refuse else None
                codes.append(code)
                if code is None:
                    self.events.append(event)
        return codes

    def detail_types(self) -> Counter[str]:
        """How many events of each detail-type were accepted."""
        with self._lock:
            return Counter(event.detail_type for event in self.events)


class FakeFailureLog(_FakePort):
    """FailureLog: one failure per key (as the adapter's conditional write), by request id."""

    def __init__(self) -> None:
        super().__init__()
        self.failures_by_request: dict[str, list[Any]] = {}
        self._keys: set[str] = set()

    def record_failure(self, failure: Any) -> bool:
        """Keep the failure unless its key was recorded before."""
        self._enter("record_failure")
        with self._lock:
            if failure.key in self._keys:
                return False
            self._keys.add(failure.key)
            self.failures_by_request.setdefault(failure.request_id, []).append(failure)
            return True


class FakeParkingLot(_FakePort):
    """ParkingLot keeping (queue URL, body, message attributes) of every parked message."""

    def __init__(self) -> None:
        super().__init__()
        self.parked: list[tuple[str, str, dict[str, Any]]] = []

    def park(self, queue_url: str, letter: Any, body: str) -> None:
        """Keep the message as parked."""
        self._enter("park")
        with self._lock:
            self.parked.append((queue_url, body, dict(letter.message_attributes)))


class FakeEndpointStates(_FakePort):
    """EndpointStates in memory, with the adapter's semantics (failing_since set by the first failure)."""

    def __init__(self) -> None:
        super().__init__()
        from mailwright.webhooks.ports import EndpointState

        self._new = EndpointState
        self.states: dict[str, Any] = {}
        self.tests: dict[str, dict[str, Any]] = {}

    def get(self, name: str) -> Any:
        """The endpoint's state (active, no failures, when unknown)."""
        self._enter("get")
        with self._lock:
            return self.states.get(name) or self._new(name=name)

    def record_failure(self, name: str, *, at: float, error: str) -> Any:
        """Count the failure; the state afterwards."""
        self._enter("record_failure")
        with self._lock:
            state = self.states.get(name) or self._new(name=name)
            state = replace(
                state,
                failing_since=state.failing_since if state.failing_since is not None else at,
                failures=state.failures + 1,
                last_error=error,
                last_failure_at=at,
            )
            self.states[name] = state
            return state

    def record_success(self, name: str, *, at: float) -> None:
        """Clear the failure count."""
        self._enter("record_success")
        with self._lock:
            state = self.states.get(name) or self._new(name=name)
            self.states[name] = replace(state, failing_since=None, failures=0, last_success_at=at)

    def suspend(self, name: str, *, at: float, reason: str) -> None:
        """Mark the endpoint suspended."""
        self._enter("suspend")
        with self._lock:
            state = self.states.get(name) or self._new(name=name)
            self.states[name] = replace(state, state="suspended", suspended_at=at, suspended_reason=reason)

    def resume(self, name: str, *, at: float, actor: str) -> None:
        """Mark the endpoint active, its failures cleared."""
        self._enter("resume")
        with self._lock:
            self.states[name] = self._new(name=name, last_success_at=None)

    def record_test(self, name: str, *, webhook_id: str, at: float, result: str) -> None:
        """Keep the test delivery's result."""
        self._enter("record_test")
        with self._lock:
            self.tests[name] = {"webhook_id": webhook_id, "at": at, "result": result}


class FakeDeliveryArchive(_FakePort):
    """DeliveryArchive in memory: records by (endpoint, webhook id)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[tuple[str, str], dict[str, Any]] = {}

    def put(self, endpoint: str, webhook_id: str, record: Mapping[str, Any]) -> None:
        """Keep the record (archiving again overwrites, as the adapter's object key does)."""
        self._enter("put")
        with self._lock:
            self.records[(endpoint, webhook_id)] = dict(record)


class StaticSigningKeys(_FakePort):
    """SigningKeys with fixed `whsec_` secrets per secret ARN (default: one fresh secret for every ARN)."""

    def __init__(self, secrets: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__()
        from mailwright.webhooks.signing import new_secret

        self.secrets: dict[str, list[str]] = {arn: list(values) for arn, values in (secrets or {}).items()}
        self._new_secret = new_secret

    def signer(self, secret_arn: str) -> Any:
        """The signer of the ARN's secrets."""
        from mailwright.webhooks.signing import Signer

        self._enter("signer")
        with self._lock:
            found = self.secrets.setdefault(secret_arn, [self._new_secret()])
            return Signer.from_secrets(found)


@dataclass
class FakePost:
    """One POST a FakeTransport received."""

    url: str
    headers: dict[str, str]
    body: bytes


class FakeTransport(_FakePort):
    """Transport that answers from a script: `answers[url]` is a list of statuses or exceptions, one per attempt.

    The last answer repeats. URLs in `forbidden` raise ForbiddenTargetError on resolve, as the real guard would.
    """

    def __init__(self, answers: Mapping[str, Sequence[Any]] | None = None, *, forbidden: Collection[str] = ()) -> None:
        super().__init__()
        self.answers: dict[str, list[Any]] = {url: list(values) for url, values in (answers or {}).items()}
        self.forbidden = set(forbidden)
        self.posts: list[FakePost] = []
        self.headers_by_status: dict[int, dict[str, str]] = {}

    def resolve(self, url: str) -> Any:
        """A Target for the URL (ForbiddenTargetError for the `forbidden` ones)."""
        from mailwright.webhooks.errors import ForbiddenTargetError
        from mailwright.webhooks.transport import Target

        self._enter("resolve")
        if url in self.forbidden:
            raise ForbiddenTargetError("private_address", f"{url} resolves to 10.0.0.1")
        return Target(scheme="https", host=url, port=443, path="/", address="203.0.113.10")

    def post(
        self, target: Any, headers: Mapping[str, str], body: bytes, *, connect_timeout: float, read_timeout: float
    ) -> Any:
        """The next scripted answer for the URL (200 when none is scripted)."""
        from mailwright.webhooks.transport import Answer

        self._enter("post")
        with self._lock:
            self.posts.append(FakePost(target.host, dict(headers), body))
            script = self.answers.get(target.host) or [200]
            answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, Exception):
            raise answer.with_traceback(None)
        return Answer(status=int(answer), headers=self.headers_by_status.get(int(answer), {}))


# -- preferences changed by producers (mailwright.preference_changes) -----------


class FakePreferenceTable(_FakePort):
    """The preferences table as every port sees it: PreferenceStore, PreferenceWriter and PreferenceLedger.

    One record per user id, with the adapters' semantics: the page's writes
    (`add_opt_out`, `set_choices`) make choices the user's own and bump the
    version; ledger writes are conditional on versions, all or nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, PreferenceRecord] = {}
        self.trails: dict[str, list[PreferenceAudit]] = {}

    def get_many(self, user_ids: Collection[str]) -> dict[str, Preferences]:
        """Preferences of the given users that have a record."""
        self._enter("get_many")
        with self._lock:
            return {u: self.records[u].preferences for u in user_ids if u in self.records}

    def _page_write(self, user_id: str, change: Callable[[PreferenceRecord], PreferenceRecord]) -> Preferences:
        with self._lock:
            record = self.records.get(user_id) or PreferenceRecord(Preferences(user_id))
            record = change(record)
            self.records[user_id] = replace(record, version=record.version + 1)
            return record.preferences

    def add_opt_out(self, user_id: str, category: str, *, source: str, updated_at: float) -> Preferences:
        """Add the category to the user's own opt-outs."""
        self._enter("add_opt_out")
        return self._page_write(
            user_id,
            lambda r: replace(
                r,
                preferences=replace(r.preferences, opted_out=r.preferences.opted_out | {category}),
                producer_opt_outs=r.producer_opt_outs - {category},
                updated_at=updated_at,
                source=source,
            ),
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
        """Replace the user's choices (all now their own), and the schedule when given."""
        self._enter("set_choices")

        def change(record: PreferenceRecord) -> PreferenceRecord:
            preferences = replace(record.preferences, opted_out=opted_out, unsubscribed_all=unsubscribed_all)
            if schedule is not None:
                preferences = replace(preferences, timezone=schedule.timezone, quiet_hours=schedule.quiet_hours)
            return PreferenceRecord(preferences, updated_at=updated_at, source=source, version=record.version)

        return self._page_write(user_id, change)

    def read(self, user_ids: Collection[str]) -> dict[str, PreferenceRecord]:
        """The stored records of the given user ids."""
        self._enter("read")
        with self._lock:
            return {u: self.records[u] for u in user_ids if u in self.records}

    def write(self, records: Sequence[tuple[PreferenceRecord, int | None]], *, audit: PreferenceAudit) -> bool:
        """Store the records and the audit record if every stored version is the expected one."""
        self._enter("write")
        with self._lock:
            for record, expected in records:
                stored = self.records.get(record.preferences.user_id)
                if (stored is None) != (expected is None) or (stored is not None and stored.version != expected):
                    return False
            for record, _ in records:
                self.records[record.preferences.user_id] = record
            self.trails.setdefault(audit.user_id, []).append(audit)
            return True

    def audit(self, user_id: str) -> list[PreferenceAudit]:
        """The user id's audit trail, in the order written."""
        self._enter("audit")
        with self._lock:
            return list(self.trails.get(user_id, []))


class FakeScheduleStore(_FakePort):
    """ScheduleStore over a FakeMessageLog and a FakeClaimStore, with the DynamoDB adapter's conditions.

    A `scheduled` record lives here until the message log holds an outcome for
    the request (the send's, or the cancel's); a cancel takes the dedupe claim
    (content hash CANCELLED_CLAIM) and records `cancelled`, both or neither.
    """

    def __init__(
        self, message_log: FakeMessageLog, claims: FakeClaimStore, *, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__()
        self._log = message_log
        self._claims = claims
        self._clock = clock
        self._entries: dict[str, ScheduleEntry] = {}
        self._keys: dict[str, float] = {}

    def _current(self, request_id: str) -> ScheduledRequest | None:
        outcome = self._log.outcome(request_id)
        entry = self._entries.get(request_id)
        if outcome is not None:
            send_at = entry.request.send_at if entry is not None else None
            return ScheduledRequest(request_id, outcome.status, send_at=send_at, lane=outcome.lane)
        return entry.request if entry is not None else None

    def read(self, request_ids: Collection[str]) -> dict[str, ScheduledRequest]:
        """The records of the request ids that have one."""
        self._enter("read")
        with self._lock:
            found = {rid: self._current(rid) for rid in request_ids}
            return {rid: record for rid, record in found.items() if record is not None}

    def add(self, entry: ScheduleEntry) -> ScheduledRequest | None:
        """Record `scheduled` unless the request has a record; None when added, else the record there."""
        self._enter("add")
        with self._lock:
            existing = self._current(entry.request.request_id)
            if existing is not None:
                return existing
            self._entries[entry.request.request_id] = entry
            return None

    def entry(self, request_id: str) -> ScheduleEntry | None:
        """The scheduled entry as recorded (a convenience of the fake for tests: its expiry, say)."""
        with self._lock:
            return self._entries.get(request_id)

    def cancelled_keys(self, scoped_keys: Collection[str]) -> dict[str, float]:
        """When each cancel_key was cancelled, for those that were."""
        self._enter("cancelled_keys")
        with self._lock:
            return {key: self._keys[key] for key in scoped_keys if key in self._keys}

    def cancel(self, request_id: str, *, at: float, reason: str, expires_at: int) -> CancelResult:
        """Cancel if scheduled or not seen and no send holds the claim; else say the status."""
        self._enter("cancel")
        with self._lock:
            claim = self._claims.get(request_id)
            current = self._current(request_id)
            taken = claim is not None and claim.content_hash != CANCELLED_CLAIM
            if taken or (current is not None and current.status != "scheduled"):
                status = current.status if current is not None else "sending"
                send_at = current.send_at if current is not None else None
                return CancelResult(request_id, status, changed=False, send_at=send_at)
            self._claims.put(
                ClaimRecord(request_id, CANCELLED_CLAIM, CANCELLED_CLAIM, lease_until=float(2**40)),
                expires_at=float(expires_at),
            )
            entry = self._entries.get(request_id)
            self._log.record(
                [
                    Outcome(
                        request_id=request_id,
                        status="cancelled",
                        lane=(entry.request.lane if entry is not None else None) or "-",
                        reason_code=reason,
                        completed_at=at,
                        user_id=entry.request.user_id if entry is not None else None,
                        producer=entry.request.producer if entry is not None else None,
                    )
                ]
            )
            return CancelResult(request_id, "cancelled", changed=True)

    def cancel_key(self, scoped_key: str, *, at: float, expires_at: int) -> None:
        """Record the cancel of a cancel_key."""
        self._enter("cancel_key")
        with self._lock:
            self._keys[scoped_key] = at

    def reschedule(self, request_id: str, *, send_at: float, expires_at: int) -> CancelResult:
        """Move a scheduled request's send_at; else say its status."""
        self._enter("reschedule")
        with self._lock:
            current = self._current(request_id)
            entry = self._entries.get(request_id)
            if current is None or current.status != "scheduled" or entry is None:
                return CancelResult(request_id, current.status if current else None, changed=False)
            self._entries[request_id] = replace(
                entry, request=replace(entry.request, send_at=send_at), expires_at=expires_at
            )
            return CancelResult(request_id, "scheduled", changed=True, send_at=send_at)

    def scheduled(
        self, owner: str, *, user_id: str | None = None, cancel_key: str | None = None, limit: int = 100
    ) -> list[ScheduledRequest]:
        """The owner's scheduled requests, soonest first."""
        self._enter("scheduled")
        with self._lock:
            found = [
                record
                for rid in self._entries
                if (record := self._current(rid)) is not None
                and record.status == "scheduled"
                and (record.producer or "-") == owner
                and (user_id is None or record.user_id == user_id)
                and (cancel_key is None or record.cancel_key == cancel_key)
            ]
        return sorted(found, key=lambda r: r.send_at or 0.0)[:limit]


class FakeScheduler(_FakePort):
    """Scheduler keeping one-time schedules by name, as EventBridge Scheduler does (names are unique).

    `fire(now)` runs the schedules due: their bodies are returned (for the lane
    queue) and they are deleted, as `ActionAfterCompletion: DELETE` does.
    """

    def __init__(self) -> None:
        super().__init__()
        self.schedules: dict[str, tuple[float, str]] = {}
        self.created: list[str] = []

    def create(self, name: str, *, at: float, body: str) -> bool:
        """Create unless the name is taken."""
        self._enter("create")
        with self._lock:
            if name in self.schedules:
                return False
            self.schedules[name] = (at, body)
            self.created.append(name)
            return True

    def update(self, name: str, *, at: float) -> bool:
        """Move an existing schedule."""
        self._enter("update")
        with self._lock:
            if name not in self.schedules:
                return False
            self.schedules[name] = (at, self.schedules[name][1])
            return True

    def delete(self, name: str) -> bool:
        """Delete an existing schedule."""
        self._enter("delete")
        with self._lock:
            return self.schedules.pop(name, None) is not None

    def fire(self, now: float) -> list[str]:
        """The bodies of the schedules due at `now`, which are deleted (they ran)."""
        with self._lock:
            due = sorted((at, name) for name, (at, _) in self.schedules.items() if at <= now)
            return [self.schedules.pop(name)[1] for _, name in due]
