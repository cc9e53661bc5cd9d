"""Ports: the small interfaces the domain speaks to, and the values that cross them.

Adapters in `mailwright.adapters` implement them with boto3; tests, the local
stack and the benchmarks use in-memory fakes of the same interfaces.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mailwright.address_keys import AddressHasher
from mailwright.constants import ESSENTIAL_CATEGORIES, PROVIDER_SES, STATUS_SENT
from mailwright.quiet_hours import QuietHours
from mailwright.settings import RateLimit

if TYPE_CHECKING:
    # Only named in annotations: the producer SDK (mailwright.preference_client) reads these ports without Jinja2.
    from mailwright.templates import TemplateBundle

# Suppression scopes: ALL blocks every email; NON_ESSENTIAL lets security and
# transactional mail through (a complaint should not block a password reset).
SCOPE_ALL = "all"
SCOPE_NON_ESSENTIAL = "non_essential"


@dataclass(frozen=True)
class Suppression:
    """An address that must not be mailed, and why."""

    address_hash: str
    reason: str
    scope: str = SCOPE_ALL
    expires_at: int | None = None

    def blocks(self, category: str, now: float) -> bool:
        """Whether this suppression stops mail of `category` at time `now`."""
        if self.expires_at is not None and self.expires_at <= now:
            return False  # DynamoDB TTL deletes lazily; an expired soft bounce no longer counts
        return self.scope == SCOPE_ALL or category not in ESSENTIAL_CATEGORIES


@dataclass(frozen=True)
class Preferences:
    """A user's consent: global unsubscribe, opted-out categories, preferred locale, time zone and quiet hours."""

    user_id: str
    unsubscribed_all: bool = False
    opted_out: frozenset[str] = frozenset()
    locale: str | None = None
    # An IANA name (Europe/Paris); None: the request's `timezone`, if any, applies.
    timezone: str | None = None
    quiet_hours: QuietHours | None = None

    def allows(self, category: str) -> bool:
        """Whether the user accepts mail of `category`; essential categories always pass."""
        if category in ESSENTIAL_CATEGORIES:
            return True
        return not self.unsubscribed_all and category not in self.opted_out

    def merged(self, older: Preferences) -> Preferences:
        """These preferences with an older form of the same user's (stored under an older key version).

        Consent only narrows: an opt-out or unsubscribe in either counts; the locale, time zone and
        quiet hours of these win.
        """
        return Preferences(
            user_id=self.user_id,
            unsubscribed_all=self.unsubscribed_all or older.unsubscribed_all,
            opted_out=self.opted_out | older.opted_out,
            locale=self.locale or older.locale,
            timezone=self.timezone or older.timezone,
            quiet_hours=self.quiet_hours or older.quiet_hours,
        )


@dataclass(frozen=True)
class ClaimRecord:
    """The dedupe record of a request: who holds it and until when."""

    request_id: str
    content_hash: str
    lease_id: str
    lease_until: float
    # Which evaluation of the request holds the claim: a request recorded `rejected` is evaluated again.
    evaluation: int = 1


@dataclass(frozen=True)
class ClaimResult:
    """Outcome of trying to claim a request: `won`, or the record that was already there."""

    won: bool
    lease_id: str
    existing: ClaimRecord | None = None


@dataclass(frozen=True)
class OutboundEmail:
    """An email ready for SES."""

    from_address: str
    to_address: str
    subject: str
    html: str
    text: str
    configuration_set: str
    headers: tuple[tuple[str, str], ...] = ()
    tags: tuple[tuple[str, str], ...] = ()


@dataclass
class Outcome:
    """The terminal state of one request, as written to the message log."""

    request_id: str
    status: str
    lane: str
    reason_code: str | None = None
    reason: str | None = None
    ses_message_id: str | None = None
    template_id: str | None = None
    template_version: str | None = None
    category: str | None = None
    locale: str | None = None
    user_id: str | None = None
    recipient_hash: str | None = None
    recipient_masked: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    received_at: float | None = None
    completed_at: float = 0.0
    attempts: int = 1
    # 1 for the first evaluation; a request evaluated again after a rejection has a higher one.
    evaluation: int = 1
    # The provider that sent it: SES, or a secondary's configured name.
    provider: str = PROVIDER_SES
    # The template's A/B variant the recipient got (None: the template has no variants).
    variant: str | None = None
    # The producer that published it (the HTTPS API's caller, or the one the request names); None: unnamed.
    producer: str | None = None
    # `digested`: the request id of the digest email that carried it (issue 17).
    digest_id: str | None = None


@dataclass(frozen=True)
class LoggedState:
    """A request's recorded status, and the evaluation that recorded it."""

    status: str
    evaluation: int = 1


class MessageId(str):
    """A provider's message id that also names the provider that sent it (a plain str stands for SES)."""

    provider: str

    def __new__(cls, value: str, *, provider: str) -> MessageId:
        """The id `value`, sent by `provider`."""
        instance = super().__new__(cls, value)
        instance.provider = provider
        return instance


def provider_of(message_id: str) -> str:
    """The provider that returned `message_id`: the one a MessageId names, else SES."""
    return message_id.provider if isinstance(message_id, MessageId) else PROVIDER_SES


class EmailSender(Protocol):
    """Sends one email; returns the provider's message id (a MessageId when another provider than SES sent it).

    Raises RejectedError when the provider refuses the message for good and
    TransientError (ThrottledError for throttling) when a retry may succeed;
    ProviderOutageError when the fault is the provider's (see mailwright.failover).
    """

    def send(self, email: OutboundEmail) -> str: ...


class SuppressionStore(Protocol):
    """Reads suppressions by address hash, many at once."""

    def get_many(self, address_hashes: Collection[str]) -> dict[str, Suppression]: ...


class PreferenceStore(Protocol):
    """Reads user preferences, many at once."""

    def get_many(self, user_ids: Collection[str]) -> dict[str, Preferences]: ...


class ClaimStore(Protocol):
    """The dedupe (idempotency) records: one per request id, with a lease."""

    def claim(self, request_id: str, content_hash: str, *, lease_seconds: int, ttl_seconds: int) -> ClaimResult: ...

    def take_over(self, record: ClaimRecord, *, lease_seconds: int) -> str | None:
        """Take an expired lease; the new lease id, or None if someone else moved first."""
        ...

    def release(self, request_id: str, lease_id: str) -> None:
        """Drop a claim so a retry can claim the request again (after a transient failure)."""
        ...

    def reclaim(self, record: ClaimRecord, *, evaluation: int, lease_seconds: int, ttl_seconds: int) -> str | None:
        """Start evaluation number `evaluation` of a request whose last one was rejected.

        Conditional on the record's lease id (every claim, take-over and reclaim sets a new
        one), so of two deliveries only one proceeds: the new lease id, or None if the record
        changed meanwhile. The claim's dedupe window starts again.
        """
        ...


class RateLimiter(Protocol):
    """Counts emails per user and category in fixed windows."""

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
        """Take one slot for `request_id`; False when the window is full.

        Idempotent per request: a request that already holds a slot in the window
        (an earlier attempt that sent, then crashed before recording) gets True again
        without taking a second one. Slots counted under `older_user_ids` (the same
        user's key in an older key version) count too.
        """
        ...


class MessageLog(Protocol):
    """The per-request log: terminal states, looked up by request id."""

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Store the outcomes. A later evaluation replaces an earlier one's state; the history keeps both."""
        ...

    def states(self, request_ids: Collection[str]) -> dict[str, LoggedState]:
        """The recorded state of each request id that has one."""
        ...

    def get(self, request_id: str) -> dict[str, Any] | None: ...

    def record_deferred(self, states: Sequence[DeferredState]) -> None:
        """Record requests as `deferred` until `resume_at` (not terminal; never over a terminal state)."""
        ...


@dataclass(frozen=True)
class DeferredState:
    """A request handed back to its queue until `resume_at` (epoch seconds), e.g. for quiet hours: not terminal."""

    request_id: str
    lane: str
    reason_code: str
    reason: str
    resume_at: float
    at: float
    template_id: str | None = None
    category: str | None = None
    user_id: str | None = None
    recipient_hash: str | None = None
    recipient_masked: str | None = None
    received_at: float | None = None
    producer: str | None = None


class AddressKeySource(Protocol):
    """The keyed address hasher: the current keyring and the oldest key version items may be stored under."""

    def hasher(self) -> AddressHasher:
        """The hasher to use now; raise TransientError when the keyring cannot be read."""
        ...


class TemplateSource(Protocol):
    """Finds template bundles by id and optional version."""

    def get(self, template_id: str, version: str | None = None) -> TemplateBundle: ...


class RetryScheduler(Protocol):
    """Delays the next delivery of failed records (SQS ChangeMessageVisibility)."""

    def delay(self, receipts: Sequence[tuple[str, int]]) -> None:
        """Make each (receipt handle, seconds) message visible again after that many seconds."""
        ...


class PreferenceWriter(Protocol):
    """Changes one user's consent, keeping every attribute it does not name (email, locale).

    Both methods record when (`updated_at`, epoch seconds) and through what
    (`source`) the change was made, and return the preferences as stored afterwards.
    They are the user's own choices (the page, a one-click POST, a provider's
    unsubscribe): what they set is no longer marked as the producer's, and the
    stored version (see `PreferenceLedger`) is bumped.
    """

    def add_opt_out(self, user_id: str, category: str, *, source: str, updated_at: float) -> Preferences:
        """Add one category to the user's opt-outs, atomically (no read-modify-write)."""
        ...

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
        """Replace the user's opt-outs and global unsubscribe with these choices (and the schedule, when given)."""
        ...


@dataclass(frozen=True)
class Schedule:
    """When a user takes mail: a time zone and quiet hours; None clears either."""

    timezone: str | None = None
    quiet_hours: QuietHours | None = None


# -- suppression lifecycle and SES feedback -----------------------------------

# Why an address is suppressed (see mailwright.suppression for what each blocks).
REASON_BOUNCE = "BOUNCE"
REASON_COMPLAINT = "COMPLAINT"
REASON_SOFT_BOUNCE = "SOFT_BOUNCE"
REASON_MANUAL = "MANUAL"
SUPPRESSION_REASONS: tuple[str, ...] = (REASON_BOUNCE, REASON_COMPLAINT, REASON_SOFT_BOUNCE, REASON_MANUAL)


@dataclass(frozen=True)
class SuppressionEntry:
    """A suppression as stored: keyed by the address hash, with a masked form for people; never the address."""

    address_hash: str
    masked: str
    reason: str
    scope: str
    created_at: float
    expires_at: int | None = None
    source: str = ""
    # Every reason that applied while the entry existed; the strongest is `reason`.
    reasons: frozenset[str] = frozenset()
    updated_at: float | None = None
    actor: str = ""
    note: str = ""
    # Bumped by every write, for optimistic concurrency.
    version: int = 0

    def active(self, now: float) -> bool:
        """Whether it still applies at `now` (TTL deletes expired items lazily)."""
        return self.expires_at is None or self.expires_at > now

    def as_suppression(self) -> Suppression:
        """The view the send worker reads."""
        return Suppression(self.address_hash, self.reason, self.scope, self.expires_at)


@dataclass(frozen=True)
class AuditRecord:
    """One change to an address's suppression: when, who, why, and what it did. Outlives the suppression."""

    address_hash: str
    at: float
    action: str
    reason: str
    actor: str
    note: str = ""
    source: str = ""
    outcome: str = ""
    masked: str = ""


class SuppressionLedger(Protocol):
    """The suppression table as the suppression service keeps it: entries, their audit trail, soft-bounce counts."""

    def get(self, address_hash: str) -> SuppressionEntry | None: ...

    def write(self, entry: SuppressionEntry, *, expected_version: int | None, audit: AuditRecord) -> bool:
        """Store `entry` and `audit` together if the stored version is `expected_version` (None: no entry).

        False when another writer moved first.
        """
        ...

    def delete(self, address_hash: str, *, expected_version: int, audit: AuditRecord) -> bool:
        """Delete the entry and store `audit` together, if the stored version is `expected_version`."""
        ...

    def append_audit(self, record: AuditRecord) -> None: ...

    def audit(self, address_hash: str) -> list[AuditRecord]: ...

    def entries(self, *, limit: int, now: float) -> list[SuppressionEntry]:
        """Up to `limit` entries active at `now` (audit trails and counters are not entries)."""
        ...

    def add_soft_bounce(self, address_hash: str, *, key: str, at: float, expires_at: int) -> list[float]:
        """Count one soft bounce at `at`, once per `key`; return the times of all soft bounces kept."""
        ...

    def soft_bounce_times(self, address_hash: str) -> list[float]:
        """The times of the soft bounces counted for the address (read only)."""
        ...

    def reset_soft_bounces(self, address_hash: str) -> None: ...


class SuppressionMirror(Protocol):
    """A second copy of suppressions kept outside mailwright (the SES account-level suppression list)."""

    def put(self, address: str, reason: str) -> None: ...

    def delete(self, address: str) -> None: ...


# What FeedbackLog.append did.
APPEND_OK = "appended"
APPEND_DUPLICATE = "duplicate"
APPEND_NO_REQUEST = "no_request"


class Appended(str):
    """APPEND_OK, knowing whether the entry is the first of its status in the request's history.

    A str equal to APPEND_OK, so callers comparing with it are unaffected. Per-request counts (the
    requests of an A/B variant first opened, first complained about) count only first entries.
    """

    first: bool

    def __new__(cls, *, first: bool) -> Appended:
        """APPEND_OK; `first` when no earlier entry of the history had the appended entry's status."""
        instance = super().__new__(cls, APPEND_OK)
        instance.first = first
        return instance


def first_of_status(result: str) -> bool:
    """Whether an append result is a new entry and the first of its status (a plain APPEND_OK: unknown, no)."""
    return isinstance(result, Appended) and result.first


@dataclass(frozen=True)
class FeedbackRecord:
    """What the message log keeps of one SES event: masked recipients, address-free details.

    `key` names the event (time, type, digest of its content), so a redelivery
    is recognised; `rank` places its status among the delivery states (None:
    it does not move them).
    """

    key: str
    event_type: str
    status: str
    rank: int | None
    at: float
    ses_message_id: str
    recipients: tuple[str, ...] = ()
    detail: dict[str, str] = field(default_factory=dict)


# SES events that may come many times for one message. A request's history takes them only while it
# holds fewer than HISTORY_CAP entries: later opens and clicks are counted in metrics, not kept.
REPEATABLE_EVENTS = frozenset({"Open", "Click"})
HISTORY_CAP = 16


class FeedbackLog(Protocol):
    """Where SES events meet the message log: finds the request and appends to its history."""

    def find_request_id(self, ses_message_id: str) -> str | None: ...

    def append(self, request_id: str, record: FeedbackRecord, *, require_request: bool = True) -> str:
        """Add the event to the request (once per `record.key`): APPEND_OK, APPEND_DUPLICATE or APPEND_NO_REQUEST.

        The history entry is all that is written: `MessageLog.get` derives the
        request's `delivery` and `events` from it (see `with_feedback`). With
        `require_request=False` the event is stored beside the request even when
        the request item is missing.
        """
        ...

    def append_unattributed(self, record: FeedbackRecord) -> None:
        """Store an event no request could be found for, under its SES message id."""
        ...


def with_feedback(item: dict[str, Any], kept: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """A request item as `MessageLog.get` returns it: with `events` and `delivery` derived from its history.

    Each history entry appended by the feedback function (one with an `event`)
    becomes an event with `type`, `status`, `at`, `detail` and `recipients`, as
    does each of `kept`, the events stored beside the request while it was
    missing; they are listed by time. `delivery` is the status of the
    highest-ranked event (on a tie, the later one), or `sent` for a sent request
    that no event has moved yet.
    """
    # Requests logged before events lived in the history alone also hold each event beside
    # them and their furthest state in `delivery_rank`: both count until they expire (TTL).
    beside = {(event.get("type"), event.get("at")) for event in kept}
    events = [
        {"type": entry["event"], "detail": {}, "recipients": [], **{k: v for k, v in entry.items() if k != "event"}}
        for entry in item.get("history", [])
        if "event" in entry and (entry["event"], entry.get("at")) not in beside
    ]
    events += [{"detail": {}, "recipients": [], **event} for event in kept]
    events.sort(key=lambda event: event.get("at") or 0)
    ranked = [(event["rank"], event.get("at") or 0, event["status"]) for event in events if "rank" in event]
    if "delivery_rank" in item and "delivery" in item:
        ranked.append((item["delivery_rank"], item.get("delivery_at") or 0, item["delivery"]))
    view = {**item, "events": events}
    if ranked:
        view["delivery"] = max(ranked)[2]
    elif item.get("status") == STATUS_SENT:
        view["delivery"] = STATUS_SENT
    return view


# -- the reputation circuit breaker -------------------------------------------


class LaneSwitch(Protocol):
    """Turns one lane's queue consumption on and off (its Lambda event source mapping)."""

    def state(self) -> str:
        """The mapping's state as Lambda reports it: Enabled, Disabled, Enabling, Disabling, Updating..."""
        ...

    def set_enabled(self, enabled: bool) -> str:
        """Enable or disable consumption; returns the state Lambda reports after the change."""
        ...


class AlarmStates(Protocol):
    """Reads CloudWatch alarm states by name."""

    def states(self, names: Collection[str]) -> dict[str, str]:
        """The state (OK, ALARM, INSUFFICIENT_DATA) of each named alarm that exists."""
        ...


# -- pacing: the account's send rate, shared by every worker -------------------


@dataclass(frozen=True)
class SendQuota:
    """The SES account's sending limits, as SES reports them (SESv2 GetAccount, `SendQuota`)."""

    max_send_rate: float
    max_24_hour_send: float
    sent_last_24_hours: float


@dataclass(frozen=True)
class AccountState:
    """What every worker shares about the account beside the token bucket (kept in the registry).

    `quota` and `quota_read_at` cache SES's answer so workers do not all ask SES;
    `congestion_rate` and `congestion_at` are the last time SES throttled a worker
    and the rate the fleet sent at then (the adaptive rate recovers from there);
    `quota_exhausted_at` is when SES last refused a send for the daily quota;
    `lanes_active_at` is when each lane was last granted tokens (the lower lanes
    leave headroom while a higher one sends) and `lanes_granted` how many tokens
    each lane was granted so far (its send rate, over two looks);
    `lanes_booked_until` is until when each lane has deferred mail booked to come
    back (the lower lanes yield to it). Times are epoch seconds; 0 means never.
    """

    quota: SendQuota | None = None
    quota_read_at: float = 0.0
    congestion_rate: float = 0.0
    congestion_at: float = 0.0
    quota_exhausted_at: float = 0.0
    lanes_active_at: Mapping[str, float] = field(default_factory=dict)
    lanes_granted: Mapping[str, float] = field(default_factory=dict)
    lanes_booked_until: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TakeResult:
    """What a take from the shared token bucket got: `granted` tokens after the arrival time `base`.

    `base` is max(bucket's arrival time before the take, now): token j may be
    used at max(now, base + j * interval - reach); with nothing granted, the
    first token would have been usable at base - reach.
    """

    granted: int
    base: float
    state: AccountState = field(default_factory=AccountState)


class RateRegistry(Protocol):
    """The account's shared token bucket (GCRA: one theoretical arrival time), with the account state beside it.

    A take of `count` tokens at `interval` seconds each is granted while the
    bucket's theoretical arrival time stays within `reach` seconds of now (a
    lane's priority: critical mail reaches furthest) plus `max_wait`; fewer than
    `minimum` usable tokens are not granted (a batch takes its tokens together).
    Granted tokens are usable `interval` apart (see `TakeResult`), and a grant
    records that `lane` is sending. Every answer carries the shared AccountState.
    """

    def take(
        self, *, lane: str, count: int, interval: float, reach: float, max_wait: float, now: float, minimum: int = 1
    ) -> TakeResult: ...

    def read_state(self) -> AccountState:
        """The shared account state as stored (a worker's first look, before its first take)."""
        ...

    def give_back(self, *, seconds: float, now: float) -> None:
        """Return unused tokens (`seconds` of the bucket) if they have not expired yet."""
        ...

    def schedule(
        self, *, lane: str, count: int, interval: float, now: float, horizon: float, after: tuple[str, ...] = ()
    ) -> float | None:
        """Book `count` later slots for deferred mail of `lane`; the first slot's time, or None past `horizon`.

        The first slot is no earlier than the end of the mail booked in the lanes `after` (higher priority).
        """
        ...

    def congested(self, *, rate: float, now: float, min_gap: float) -> bool:
        """Record that SES throttled a send made at `rate`, unless another worker did within `min_gap` seconds."""
        ...

    def quota_exhausted(self, *, now: float) -> None:
        """Record that SES refused a send because the daily quota is used up."""
        ...

    def claim_refresh(self, *, now: float, min_gap: float) -> bool:
        """Whether this worker should read the account's quota from SES now (one worker per `min_gap` seconds)."""
        ...

    def store_quota(self, quota: SendQuota, *, now: float) -> AccountState:
        """Share the quota SES reported; the account state afterwards."""
        ...


class AccountReader(Protocol):
    """Reads the SES account's sending limits."""

    def read(self) -> SendQuota: ...


@dataclass(frozen=True)
class Deferral:
    """A queue record handed back to its queue to be delivered again after `seconds` (not a failure)."""

    message_id: str
    body: str
    seconds: int
    reason: str
    # How many times this request has been deferred, this one included, and when it was first published.
    deferrals: int = 1
    published_at: float | None = None


class Deferrals(Protocol):
    """Hands records back to their queue as new messages with a delay, keeping their receive count unused."""

    def defer(self, deferrals: Sequence[Deferral]) -> set[str]:
        """Enqueue each deferral again; the message ids that could not be (they must be retried instead)."""


# -- lookups by recipient (the status API) ------------------------------------


@dataclass(frozen=True)
class IndexEntry:
    """One request in the recipient index: its id and when its latest evaluation completed (epoch seconds)."""

    request_id: str
    completed_at: float


@dataclass(frozen=True)
class IndexPage:
    """Entries of one address hash, newest first; `more` when the index may hold older ones past the last."""

    entries: list[IndexEntry]
    more: bool


class RecipientIndex(Protocol):
    """The message log's requests by keyed address hash (one hash per key version), and the items they point to."""

    def newest(self, address_hash: str, *, since: float | None, after: IndexEntry | None, limit: int) -> IndexPage:
        """Up to `limit` entries of `address_hash` completed at or after `since`, newest first, past `after`."""
        ...

    def requests(self, request_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """The request items by id, shaped as `MessageLog.get` returns them (`with_feedback`); missing ones left out."""


# -- secondary providers: the provider breaker and the webhook replay guard ---

BREAKER_CLOSED = "closed"
BREAKER_OPEN = "open"
BREAKER_HALF_OPEN = "half_open"
# A breaker's history keeps its most recent changes: an outage flaps it a few times, an operator a few more.
BREAKER_HISTORY_KEEP = 50


@dataclass(frozen=True)
class BreakerState:
    """The provider breaker of one provider on one lane, as every worker shares it.

    `failures` counts outage failures since `window_start`; `probe_at` is when
    an open breaker may send one probe (None: opened by hand, it waits for a
    restore); a half-open breaker's probe belongs to `prober` until
    `probe_until`. `version` is bumped by every state change, for optimistic
    concurrency; counting a failure does not change it.
    """

    lane: str
    provider: str
    state: str = BREAKER_CLOSED
    failures: int = 0
    window_start: float = 0.0
    opened_at: float | None = None
    probe_at: float | None = None
    closed_at: float | None = None
    reason: str = ""
    actor: str = ""
    prober: str = ""
    probe_until: float = 0.0
    version: int = 0


@dataclass(frozen=True)
class BreakerChange:
    """One change of a breaker's state, reported once, by the worker (or operator) that made it.

    `actor` is set for changes made by hand (`mailwright providers failover|restore`), with `reason` their note.
    """

    lane: str
    provider: str
    before: str
    after: str
    reason: str = ""
    actor: str = ""
    at: float = 0.0


class ProviderBreakerStore(Protocol):
    """Where the provider breakers live (one item per lane and provider), and the sends a provider may have taken."""

    def read(self, lane: str, provider: str) -> BreakerState:
        """The breaker's state (closed, version 0, if it was never written)."""
        ...

    def add_failure(self, lane: str, provider: str, *, now: float, window_seconds: float) -> BreakerState:
        """Count one failure in the current window (a new one if it ended); the state after."""
        ...

    def write(self, state: BreakerState, *, expected_version: int) -> bool:
        """Store `state` (its version already bumped) if the stored version is `expected_version`."""
        ...

    def mark_maybe_sent(self, request_id: str, provider: str, *, until: float) -> None:
        """Remember, until `until`, that `provider` may have accepted the request (its answer was lost)."""
        ...

    def maybe_sent_by(self, request_id: str) -> str | None:
        """The provider that may have accepted the request, if one is remembered."""
        ...

    def record_change(self, change: BreakerChange) -> None:
        """Append a change to the breaker's history (the audit trail of its automatic and manual changes)."""
        ...

    def history(self, lane: str, provider: str) -> list[BreakerChange]:
        """The breaker's recorded changes, oldest first (the most recent ones only: the trail is capped)."""
        ...


class ReplayGuard(Protocol):
    """One-time keys (provider event ids, signature tokens): each is taken once while it is remembered.

    A key is first taken for a short lease, then held for long once its event
    is applied: a function that dies in between leaves a lease that runs out,
    so the provider's retry is not mistaken for a replay.
    """

    def take(self, key: str, *, until: float) -> bool:
        """Take `key` until `until` (epoch seconds); False if it is taken and not expired."""
        ...

    def hold(self, key: str, *, until: float) -> None:
        """Keep a taken `key` until `until`."""
        ...

    def give_back(self, key: str) -> None:
        """Forget `key`, so the provider's retry of an event that failed is processed again."""


# -- ingest (the bridge from Kafka and RabbitMQ) -------------------------------


@dataclass(frozen=True)
class LaneMessage:
    """One request on its way to a lane queue: `key` names it within a publish call."""

    key: str
    lane: str
    body: str


@dataclass(frozen=True)
class RefusedMessage:
    """A message the lane queue did not accept, after the publisher's own retries."""

    key: str
    code: str
    message: str


class LanePublisher(Protocol):
    """Puts requests on the lane queues (SQS SendMessageBatch), retrying entries the service refused."""

    def publish(self, messages: Sequence[LaneMessage]) -> list[RefusedMessage]:
        """Publish every message to its lane's queue; return those still refused after the retries."""
        ...


# -- preferences changed by the producer (CLI, SDK, bulk import) ---------------


@dataclass(frozen=True)
class PreferenceRecord:
    """One stored form of a user's preferences, with who made its opt-outs and its version.

    Opt-outs (and an unsubscribe from all) made by the producer are marked;
    every other one is the user's own choice, which only the user, or an
    explicit, audited override, may lift.
    """

    preferences: Preferences
    producer_opt_outs: frozenset[str] = frozenset()
    producer_unsubscribe: bool = False
    updated_at: float | None = None
    source: str = ""
    # Bumped by every write, the page's included, for optimistic concurrency (0: never versioned).
    version: int = 0


@dataclass(frozen=True)
class PreferenceAudit:
    """One change of a user's preferences made by a producer: when, who, through what, why, and what changed."""

    user_id: str
    at: float
    actor: str
    source: str
    changes: tuple[str, ...]
    note: str = ""
    # A choice the user made themselves (an opt-out, an unsubscribe from all) was lifted.
    overrode_user_choice: bool = False


class PreferenceLedger(Protocol):
    """The preferences table as producers change it: whole records, versioned, with an audit trail per user."""

    def read(self, user_ids: Collection[str]) -> dict[str, PreferenceRecord]:
        """The stored records of the given user ids (read consistently)."""
        ...

    def write(self, records: Sequence[tuple[PreferenceRecord, int | None]], *, audit: PreferenceAudit) -> bool:
        """Store each record if its stored version is the expected one (None: no item), and append `audit`.

        All or nothing; False when another writer moved first. Attributes a
        record does not hold (an email address, say) are kept.
        """
        ...

    def audit(self, user_id: str) -> list[PreferenceAudit]:
        """The user id's audit trail, in the order written."""
        ...


# -- scheduled sends and cancellation (mailwright.scheduling) -------------------


# The content hash of the dedupe claim a cancel takes: no request's content hashes to it, and the send
# worker reads it as "taken, and final" (the message log says `cancelled`).
CANCELLED_CLAIM = "cancelled"


@dataclass(frozen=True)
class ScheduledRequest:
    """A request's record as scheduling reads it: its status, and for a `scheduled` one when it is due.

    The record is the truth: a delayed message or schedule that fires early or
    late is held or sent by what the record says now (a reschedule changes it).
    """

    request_id: str
    status: str
    send_at: float | None = None
    # When the producer first published it (epoch seconds): a cancel_key cancels what was published before it.
    published_at: float | None = None
    lane: str | None = None
    producer: str | None = None
    user_id: str | None = None
    template_id: str | None = None
    recipient_masked: str | None = None
    cancel_key: str | None = None


@dataclass(frozen=True)
class ScheduleEntry:
    """What the worker records of a request it holds until its send_at (the message-log item `scheduled`)."""

    request: ScheduledRequest
    recipient_hash: str | None
    recorded_at: float
    # When the item may expire: counted from send_at, so it outlives the send.
    expires_at: int


@dataclass(frozen=True)
class CancelResult:
    """What a cancel found: the status the request has now, and whether this cancel changed it."""

    request_id: str
    status: str | None
    changed: bool
    send_at: float | None = None


class ScheduleStore(Protocol):
    """The records of scheduled and cancelled requests: message-log items, and the claims that guard sends.

    A cancel is a conditional state change: only a `scheduled` request, or one
    not seen yet, becomes `cancelled`. It also takes the request's dedupe claim
    (which a send needs first), so a copy of the request still in a queue, or a
    send racing the cancel, finds the request taken and its state final.
    """

    def read(self, request_ids: Collection[str]) -> dict[str, ScheduledRequest]:
        """The records of the request ids that have one (read consistently)."""
        ...

    def add(self, entry: ScheduleEntry) -> ScheduledRequest | None:
        """Record a request `scheduled` unless it has a record already; None when added, else the record there."""
        ...

    def cancelled_keys(self, scoped_keys: Collection[str]) -> dict[str, float]:
        """When each cancel_key (scoped by producer, see `scoped_cancel_key`) was cancelled, for those that were."""
        ...

    def cancel(self, request_id: str, *, at: float, reason: str, expires_at: int) -> CancelResult:
        """Cancel one request if it is `scheduled` or not seen yet; otherwise change nothing and say its status."""
        ...

    def cancel_key(self, scoped_key: str, *, at: float, expires_at: int) -> None:
        """Record that requests with this cancel_key published before `at` are cancelled."""
        ...

    def reschedule(self, request_id: str, *, send_at: float, expires_at: int) -> CancelResult:
        """Move a `scheduled` request's send_at; otherwise change nothing and say its status."""
        ...

    def scheduled(
        self, owner: str, *, user_id: str | None = None, cancel_key: str | None = None, limit: int = 100
    ) -> list[ScheduledRequest]:
        """An owner's (producer's) scheduled requests, soonest first, optionally only a user's or a cancel_key's."""
        ...


class Scheduler(Protocol):
    """One-time schedules that put a request's body on its lane queue at a time (EventBridge Scheduler)."""

    def create(self, name: str, *, at: float, body: str) -> bool:
        """Create the schedule; False when one of that name exists already (a retry: nothing is created)."""
        ...

    def update(self, name: str, *, at: float) -> bool:
        """Move an existing schedule to `at`; False when there is none (it fired, or was never created)."""
        ...

    def delete(self, name: str) -> bool:
        """Delete the schedule; False when there is none."""
        ...


# -- digests (issue 17) ---------------------------------------------------------

DIGEST_OPEN = "open"
DIGEST_SENDING = "sending"


@dataclass(frozen=True)
class DigestItem:
    """One request folded into a digest: its id, when it was folded, and its template data."""

    request_id: str
    at: float
    data: Mapping[str, Any]


@dataclass(frozen=True)
class DigestWindow:
    """One window of a user's digest: `open` (takes requests) or `sending` (closed, its email on its way).

    `email` holds what the digest email is sent with, taken from the request
    that opened the window (recipient, template, locale, user id, producer,
    metadata).
    """

    key: str
    number: int
    state: str
    opened_at: float
    closes_at: float
    max_items: int
    email: Mapping[str, Any]
    items: tuple[DigestItem, ...] = ()

    @property
    def full(self) -> bool:
        """Whether the window holds its maximum of items."""
        return len(self.items) >= self.max_items


@dataclass(frozen=True)
class DigestFold:
    """Where a request was folded: its window, and whether it opened it or had been folded before."""

    window: DigestWindow
    opened: bool = False
    again: bool = False


class DigestStore(Protocol):
    """Digest windows: requests folded in idempotently, windows closed once."""

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
        ...

    def read(self, key: str, number: int) -> DigestWindow | None:
        """A window as stored, or None."""
        ...

    def close(self, key: str, number: int) -> DigestWindow | None:
        """Close an open window (open -> sending; once, whoever asks first); the window, or None when absent."""
        ...
