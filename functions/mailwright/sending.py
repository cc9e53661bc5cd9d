"""The send pipeline: a batch of queue records in, one terminal outcome (or a retry) per record out.

Per record: parse -> pace -> dedupe -> suppression -> consent -> template ->
A/B variant -> render -> per-user rate limit -> send -> log. Addresses are looked up by their
keyed hashes (`mailwright.address_keys`), in every key version items may still
be stored under. The batch is the unit of I/O: lookups are batched per table,
claims and sends run concurrently on shared clients. Each sent email's outcome
is written as soon as SES accepts it, grouped with those accepted while a
write is in flight (a crash re-sends at most the emails whose send or write
was in flight); the other outcomes are written together. Failures are contained per
record: a bad record never fails its batch mates.

Pacing comes right after parsing: the batch takes the tokens it may use now
from the account's shared bucket, and the records without one are handed back
to the queue with a delay (`Deferrals`: a new message, so the receive count
that leads to the DLQ is not used up) before any claim or lookup is paid for.
A send SES throttles is handed back the same way. Only failures are retried.

Powertools' BatchProcessor handles records one at a time, which would forbid
batched lookups and concurrent sends, so this module builds the partial batch
response itself (see `BatchReport.failed`). Likewise dedupe uses one
conditional write per request instead of Powertools idempotency's two.

Timing (issue 17): a request naming a `digest_key` is folded into its digest
window once its template is loaded and recorded `digested`; a due digest
flush enters the batch as its digest email's record (`mailwright.digests`).
After consent, non-urgent mail for a recipient in quiet hours waits until the
night ends: in one EventBridge schedule when the lane has a scheduler and the
wait is longer than an SQS delay, else handed back the same way pacing hands
records back (`mailwright.quiet_deferral`).
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from email.utils import formataddr
from typing import Any, TypeVar

from mailwright.address_keys import AddressHasher
from mailwright.addresses import mask_address
from mailwright.backoff import retry_delay
from mailwright.constants import (
    DEFAULT_QUIET_HOURS_CATEGORIES,
    ESSENTIAL_CATEGORIES,
    PROVIDER_SES,
    STATUS_DIGESTED,
    STATUS_OPTED_OUT,
    STATUS_RATE_LIMITED,
    STATUS_REJECTED,
    STATUS_SENT,
    STATUS_SUPPRESSED,
    TERMINAL_STATUSES,
)
from mailwright.digests import DigestService
from mailwright.errors import (
    DailyQuotaExceededError,
    HeaderInjectionError,
    ProviderPacedError,
    ProviderUnavailableError,
    RejectedError,
    TemplateNotFoundError,
    ThrottledError,
    TransientError,
)
from mailwright.pacing import MAX_DEFER_SECONDS, REASON_QUOTA_EXHAUSTED, REASON_THROTTLED, SendPacer
from mailwright.ports import (
    CANCELLED_CLAIM,
    AddressKeySource,
    ClaimRecord,
    ClaimStore,
    Deferral,
    Deferrals,
    DeferredState,
    DigestStore,
    EmailSender,
    MessageLog,
    OutboundEmail,
    Outcome,
    Preferences,
    PreferenceStore,
    RateLimiter,
    RetryScheduler,
    SuppressionStore,
    TemplateSource,
    provider_of,
)
from mailwright.quiet_deferral import REASON_QUIET_HOURS, QuietDeferral, quiet_hours_deferral, quiet_schedule_name
from mailwright.request import EmailRequest, parse_request
from mailwright.scheduling import Candidate, Scheduling, hold_in_schedule
from mailwright.settings import RateLimit
from mailwright.templates import Renderer, TemplateBundle
from mailwright.variants import ASSIGNMENT_PURPOSE, VariantService, VariantSwitch, assign, assignment_basis

logger = logging.getLogger(__name__)

T = TypeVar("T")
LinkMaker = Callable[[str, str], dict[str, str]]

# Seconds kept in hand before the function's deadline: no send starts later than this.
DEADLINE_MARGIN_SECONDS = 3.0
DEFAULT_LEASE_SECONDS = 900
# A request handed back this many times is retried as a failure instead (a safety net: at up to
# 15 minutes a deferral, that is days; only a pacing fault would get there).
MAX_DEFERRALS = 500
# A secondary provider whose own send rate is used up has room again within seconds.
PROVIDER_PACED_MAX_DEFER_SECONDS = 60
# The lane whose token take overlaps its dedupe claims and consent reads (`SendService._pace_overlapped`)
# while its last take granted every record: its mail is latency-bound and rarely handed back, so a claim
# paid for a record deferred after all is rare. A lane with a backlog paces first, claiming only what goes.
OVERLAPPED_PACING_LANE = "critical"


@dataclass(frozen=True)
class QueueRecord:
    """One SQS message, as much of it as the pipeline needs."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1
    # When the producer published the request (for a deferred one: its first publish), epoch seconds.
    sent_at: float | None = None
    # How many times the request was handed back to its queue by pacing (not failures).
    deferrals: int = 0


def partial_batch_response(failed: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """The `batchItemFailures` response Lambda's SQS event source expects, for these message ids."""
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


@dataclass(frozen=True)
class SendPolicy:
    """The lane-wide choices the pipeline applies to every request."""

    lane: str
    from_address: str
    configuration_set: str
    unsubscribe_base_url: str
    postal_address: str = ""
    idempotency_ttl_seconds: int = 86400
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    max_backoff_seconds: int = 900
    # Template categories held while the recipient is in quiet hours (mailwright.quiet_deferral).
    quiet_hours_categories: frozenset[str] = frozenset(DEFAULT_QUIET_HOURS_CATEGORIES)
    # Every digest template's window in seconds, overridden (the local stack's --digest-window); None: the template's.
    digest_window_seconds: int | None = None


@dataclass
class BatchReport:
    """What happened to a batch: the records to retry, and every outcome recorded."""

    failed: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    retry_reasons: dict[str, str] = field(default_factory=dict)
    # The template category of each retried or deferred record whose template was loaded (metrics are per category).
    retry_categories: dict[str, str] = field(default_factory=dict)
    duplicates: int = 0
    lease_takeovers: int = 0
    # Records handed back to the queue with a delay (not failures), message id -> why (paced, throttled...);
    # also those held overnight by a schedule (quiet hours), acked.
    deferred: dict[str, str] = field(default_factory=dict)
    # Share of the SES daily quota used, when this worker read it from SES during the batch (else None).
    quota_used: float | None = None
    # Requests recorded `rejected` before and evaluated again in this batch.
    reevaluations: int = 0
    # A/B variants this batch switched off (their rendering-failure rate passed the policy's).
    variant_switches: list[VariantSwitch] = field(default_factory=list)
    # Records acked without an outcome by scheduling: held by a schedule until send_at, or cancelled before.
    held: int = 0

    def partial_batch_response(self) -> dict[str, list[dict[str, str]]]:
        """The `batchItemFailures` response Lambda's SQS event source expects."""
        return partial_batch_response(self.failed)


@dataclass
class _Work:
    """A record on its way through the pipeline."""

    record: QueueRecord
    request: EmailRequest | None = None
    request_id: str = ""
    # The recipient's keyed address hashes and user keys: the current form first, then older readable ones.
    address_hashes: tuple[str, ...] = ()
    user_keys: tuple[str, ...] = ()
    lease_id: str | None = None
    existing: ClaimRecord | None = None
    evaluation: int = 1
    bundle: TemplateBundle | None = None
    # The recipient's keyed draw for this template's A/B variants, and the variant it gave.
    draw: float = 0.0
    variant: str | None = None
    email: OutboundEmail | None = None
    locale: str | None = None
    # The recipient's preferences, merged over their key versions (consent, time zone, quiet hours).
    preferences: Preferences | None = None
    outcome: Outcome | None = None
    retry: str | None = None
    duplicate: bool = False
    # The record of the same request earlier in the batch that this one is a duplicate of.
    duplicate_of: _Work | None = None
    sent: bool = False
    # Pacing: when this record's token is usable (monotonic clock), or the delay and reason it is handed back with.
    start: float | None = None
    attempted: bool = False
    defer: tuple[int, str] | None = None
    handed_back: bool = False
    recorded: bool = False
    # Scheduling: held until its send_at by a schedule, or already cancelled (acked, no outcome to record).
    held: bool = False

    @property
    def pending(self) -> bool:
        return (
            self.outcome is None and self.retry is None and not self.duplicate and self.defer is None and not self.held
        )

    @property
    def user_key(self) -> str:
        """The user the preferences, rate limits and links belong to (current key version)."""
        return self.user_keys[0]


class _SentRecorder:
    """Writes sent outcomes as SES accepts them, grouped: while one write is in flight, the next ones gather.

    The send thread that finds no write in flight writes what has gathered, and
    goes on until nothing is left; the others return at once. So an outcome
    waits at most for one write before its own, a crash re-sends only the emails
    whose SES call or outcome write was in flight, and a batch whose sends finish
    together takes a few writes instead of one per email. An outcome that could
    not be written is left for the batch's write in `SendService._finish`.
    """

    def __init__(self, log: MessageLog) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._pending: list[_Work] = []
        self._writing = False

    def record(self, work: _Work) -> None:
        """Write `work`'s outcome now, or have the write in flight's thread write it next."""
        with self._lock:
            self._pending.append(work)
            if self._writing:
                return
            self._writing = True
        while True:
            with self._lock:
                group, self._pending = self._pending, []
                if not group:
                    self._writing = False
                    return
            try:
                self._log.record([w.outcome for w in group if w.outcome is not None])
            except Exception as exc:
                logger.warning("could not record sent emails yet", extra={"count": len(group), "error": str(exc)})
                continue
            for done in group:
                done.recorded = True


class SendService:
    """Runs batches of queue records through the pipeline, against ports."""

    def __init__(
        self,
        *,
        policy: SendPolicy,
        templates: TemplateSource,
        suppressions: SuppressionStore,
        preferences: PreferenceStore,
        claims: ClaimStore,
        address_keys: AddressKeySource,
        rate_limiter: RateLimiter,
        message_log: MessageLog,
        sender: EmailSender,
        retries: RetryScheduler,
        deferrals: Deferrals,
        links: LinkMaker,
        pacer: SendPacer,
        executor: Executor,
        renderer: Renderer | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        variants: VariantService | None = None,
        scheduling: Scheduling | None = None,
        digests: DigestStore | None = None,
    ) -> None:
        self.policy = policy
        self._templates = templates
        self._suppressions = suppressions
        self._preferences = preferences
        self._claims = claims
        self._address_keys = address_keys
        self._rate_limiter = rate_limiter
        self._log = message_log
        self._sender = sender
        self._retries = retries
        self._deferrals = deferrals
        self._links = links
        self._pacer = pacer
        self._executor = executor
        self._renderer = renderer or Renderer()
        self._clock = clock
        self._rng = rng or random.Random()
        # Whether this worker's last take granted every record it asked for (no backlog: see OVERLAPPED_PACING_LANE).
        self._granted_all = True
        # Without a ledger (fakes, benchmarks) every declared variant counts as on and nothing is counted.
        self._variants = variants
        # Without it (benchmarks), send_at and cancel_key are not looked at: every request is sent when dequeued.
        self._scheduling = scheduling
        # Without a store, a request naming a digest_key is rejected (mailwright.digests).
        self._digests = (
            None
            if digests is None
            else DigestService(
                digests,
                deferrals,
                window_override=policy.digest_window_seconds,
                ttl_seconds=policy.idempotency_ttl_seconds,
                clock=clock,
            )
        )

    def close(self) -> None:
        """Close what the sender keeps open (an SMTP relay's pooled connections) when its container ends."""
        close = getattr(self._sender, "close", None)
        if callable(close):
            close()

    def process(
        self, records: Sequence[QueueRecord], *, remaining_seconds: Callable[[], float] | None = None
    ) -> BatchReport:
        """Process one batch; never raises for a single record's fault."""
        deadline = (
            None if remaining_seconds is None else time.monotonic() + remaining_seconds() - DEADLINE_MARGIN_SECONDS
        )
        lease_seconds = DEFAULT_LEASE_SECONDS if remaining_seconds is None else int(remaining_seconds()) + 10
        report = BatchReport()
        works = [self._parse(record) for record in self._open_digest_flushes(records, report)]
        self._hash_addresses(self._pending(works))
        self._drop_batch_duplicates(works, report)
        self._hold_scheduled(self._pending(works), report)
        if self.policy.lane == OVERLAPPED_PACING_LANE and self._granted_all:
            handing_back, lookups = self._pace_overlapped(works, deadline, lease_seconds, report)
        else:
            self._pace(self._pending(works), deadline)
            # Records without a token go back to the queue while the others are processed.
            paced = [w for w in works if w.defer is not None]
            handing_back = self._executor.submit(self._hand_back, paced, report) if paced else None
            # The consent reads do not depend on the dedupe claims: start them first so the
            # two round trips overlap instead of adding up.
            lookups = self._start_lookups(self._pending(works))
            self._claim(self._pending(works), lease_seconds, report)
        self._load_templates(self._pending(works))
        self._fold_digests(self._pending(works))
        self._check_consent(self._pending(works), lookups)
        self._defer_quiet_hours(self._pending(works), report)
        self._assign_variants(self._pending(works))
        self._render(self._pending(works))
        self._limit_rates(self._pending(works))
        self._send(self._pending(works), deadline)
        if handing_back is not None:
            handing_back.result()  # _hand_back contains its own failures
        self._finish(works, report)
        return report

    @staticmethod
    def _pending(works: Iterable[_Work]) -> list[_Work]:
        return [work for work in works if work.pending]

    # -- stages ---------------------------------------------------------

    def _parse(self, record: QueueRecord) -> _Work:
        work = _Work(record=record)
        try:
            work.request = parse_request(record.body)
            work.request_id = work.request.request_id
        except Exception as exc:
            # No request to derive an id from: the raw body is the identity, so redeliveries collapse.
            work.request = None
            work.request_id = hashlib.sha256(record.body.encode("utf-8", "replace")).hexdigest()[:32]
            if not isinstance(exc, RejectedError):  # a body no validator foresaw is still the body's fault
                logger.exception("unparseable request", extra={"request_id": work.request_id})
                exc = RejectedError("invalid_request", f"message body could not be read ({type(exc).__name__})")
            self._reject(work, exc)
        return work

    def _hash_addresses(self, works: list[_Work]) -> None:
        if not works:
            return
        try:
            hasher: AddressHasher = self._address_keys.hasher()
        except Exception as exc:
            self._retry_all(works, "address_keys_unavailable", exc)
            return
        for work in works:
            assert work.request is not None
            work.address_hashes = hasher.address_hashes(work.request.recipient_email)
            user_id = work.request.user_id
            work.user_keys = hasher.user_keys(work.request.recipient_email) if user_id is None else (user_id,)
            # Keyed like the hashes, so who gets which A/B variant can be neither guessed nor steered.
            basis = assignment_basis(work.request.template_id, work.user_keys[0])
            work.draw = hasher.fraction(ASSIGNMENT_PURPOSE, basis)

    def _hold_scheduled(self, works: list[_Work], report: BatchReport) -> None:
        """Requests whose send_at is ahead are held (deferred or scheduled); cancelled ones are dropped."""
        if self._scheduling is None or not works:
            return
        candidates = []
        for work in works:
            assert work.request is not None
            candidates.append(
                Candidate(
                    request=work.request,
                    request_id=work.request_id,
                    body=work.record.body,
                    published_at=work.record.sent_at,
                    user_id=work.user_key,
                    recipient_hash=work.address_hashes[0] if work.address_hashes else None,
                )
            )
        for work, plan in zip(works, self._scheduling.plan(candidates), strict=True):
            if plan.kind == "defer":
                work.defer = (plan.seconds, plan.reason)
            elif plan.kind in ("held", "done"):
                work.held = True
                report.held += 1
            elif plan.kind == "retry":
                work.retry = plan.reason

    def _drop_batch_duplicates(self, works: list[_Work], report: BatchReport) -> None:
        first: dict[str, _Work] = {}
        for work in self._pending(works):
            original = first.setdefault(work.request_id, work)
            if original is work:
                continue
            assert work.request is not None and original.request is not None
            if original.request.content_hash != work.request.content_hash:
                self._reject_conflict(work)
            else:
                work.duplicate = True
                work.duplicate_of = original
                report.duplicates += 1

    def _pace_overlapped(
        self, works: list[_Work], deadline: float | None, lease_seconds: int, report: BatchReport
    ) -> tuple[Future[None] | None, tuple[Future[Any], Future[Any]] | None]:
        """Pacing, dedupe claims and consent reads in one round trip instead of two (the critical lane, no backlog).

        Critical mail is rarely handed back, so claiming before its token is known
        costs little (once a take leaves records over, the next batch paces first):
        a record deferred after all has its claim released when it is handed back,
        and a token whose record then fails its claim (a duplicate, a conflict, a
        retry) is given back at the end of the batch, like any unused one.
        """
        pending = self._pending(works)
        pacing = self._executor.submit(self._pace, pending, deadline) if pending else None
        lookups = self._start_lookups(pending)
        self._claim(pending, lease_seconds, report, pacing=pacing)
        paced = [w for w in works if w.defer is not None]
        handing_back = self._executor.submit(self._hand_back, paced, report) if paced else None
        return handing_back, lookups

    def _claim(
        self, works: list[_Work], lease_seconds: int, report: BatchReport, *, pacing: Future[None] | None = None
    ) -> None:
        def claim(work: _Work) -> None:
            assert work.request is not None
            result = self._claims.claim(
                work.request_id,
                work.request.content_hash,
                lease_seconds=lease_seconds,
                ttl_seconds=self.policy.idempotency_ttl_seconds,
            )
            if result.won:
                work.lease_id = result.lease_id
            else:
                work.existing = result.existing

        self._each(works, claim, stage="claim")
        if pacing is not None:
            # Taken while the claims were in flight: records handed back are not looked at further.
            pacing.result()  # _pace contains its own failures
        contested = [w for w in works if w.pending and w.lease_id is None]
        for work in contested:
            assert work.request is not None
            existing = work.existing
            if existing is not None and existing.content_hash not in (work.request.content_hash, CANCELLED_CLAIM):
                self._reject_conflict(work)
        contested = [w for w in contested if w.pending]
        if not contested:
            return
        try:
            states = self._log.states([w.request_id for w in contested])
        except Exception as exc:
            self._retry_all(contested, "message_log_unavailable", exc)
            return
        rejected: list[tuple[_Work, int]] = []
        for work in contested:
            state = states.get(work.request_id)
            # An evaluation the log has not recorded yet is in flight elsewhere, or crashed.
            if work.existing is None or state is None or state.status not in TERMINAL_STATUSES:
                continue
            if state.evaluation < work.existing.evaluation:
                continue
            if state.status == STATUS_REJECTED:
                # A rejection is final for that evaluation only: the template may have been fixed or uploaded.
                rejected.append((work, state.evaluation + 1))
            else:
                work.duplicate = True
                report.duplicates += 1
        self._reevaluate(rejected, lease_seconds, report)
        self._take_over([w for w in contested if w.pending and w.lease_id is None], lease_seconds, report)

    def _reevaluate(self, works: list[tuple[_Work, int]], lease_seconds: int, report: BatchReport) -> None:
        """Claim requests recorded `rejected` for their next evaluation; of two deliveries, one wins."""
        for work, evaluation in works:
            assert work.existing is not None
            try:
                lease = self._claims.reclaim(
                    work.existing,
                    evaluation=evaluation,
                    lease_seconds=lease_seconds,
                    ttl_seconds=self.policy.idempotency_ttl_seconds,
                )
            except Exception as exc:
                self._retry_one(work, "claim_failed", exc)
                continue
            if lease is None:
                work.retry = "claim_contended"
                continue
            work.lease_id = lease
            work.evaluation = evaluation
            report.reevaluations += 1
            logger.info(
                "evaluating a rejected request again",
                extra={"request_id": work.request_id, "evaluation": work.evaluation},
            )

    def _take_over(self, works: list[_Work], lease_seconds: int, report: BatchReport) -> None:
        """Requests claimed before but never finished: in flight elsewhere, or crashed attempts."""
        now = self._clock()
        for work in works:
            assert work.request is not None
            existing = work.existing
            if existing is None:  # the claim vanished in between (released or expired): try again soon
                work.retry = "claim_contended"
            elif existing.lease_until > now:
                work.retry = "in_flight_elsewhere"
            else:
                # The holder died after claiming: it may or may not have sent (the crash window).
                try:
                    lease = self._claims.take_over(existing, lease_seconds=lease_seconds)
                except Exception as exc:
                    self._retry_one(work, "claim_failed", exc)
                    continue
                if lease is None:
                    work.retry = "claim_contended"
                else:
                    work.lease_id = lease
                    work.evaluation = existing.evaluation
                    report.lease_takeovers += 1
                    logger.warning("took over an expired claim", extra={"request_id": work.request_id})

    def _load_templates(self, works: list[_Work]) -> None:
        wanted = {(w.request.template_id, w.request.template_version) for w in works if w.request}
        bundles: dict[tuple[str, str | None], TemplateBundle | Exception] = {}
        for key in wanted:
            try:
                bundles[key] = self._templates.get(*key)
            except Exception as exc:
                bundles[key] = exc
        for work in works:
            assert work.request is not None
            found = bundles[(work.request.template_id, work.request.template_version)]
            if isinstance(found, TemplateNotFoundError):
                self._reject(work, found)
            elif isinstance(found, Exception):
                self._retry_one(work, "template_unavailable", found)
            else:
                work.bundle = found

    def _start_lookups(self, works: list[_Work]) -> tuple[Future[Any], Future[Any]] | None:
        """Batched reads of suppressions and preferences for every pending request, in the background."""
        if not works:
            return None
        return (
            self._executor.submit(self._suppressions.get_many, {h for w in works for h in w.address_hashes}),
            self._executor.submit(self._preferences.get_many, {u for w in works for u in w.user_keys}),
        )

    def _check_consent(self, works: list[_Work], lookups: tuple[Future[Any], Future[Any]] | None) -> None:
        if not works or lookups is None:
            return
        try:
            suppressions, preferences = lookups[0].result(), lookups[1].result()
        except Exception as exc:
            self._retry_all(works, "lookup_failed", exc)
            return
        now = self._clock()
        for work in works:
            assert work.request is not None and work.bundle is not None
            category = work.bundle.metadata.category
            found = [suppressions[h] for h in work.address_hashes if h in suppressions]
            suppression = next((s for s in found if s.blocks(category, now)), None)
            prefs = Preferences(work.user_key)
            for key in work.user_keys:  # older key versions only narrow consent
                if key in preferences:
                    prefs = prefs.merged(preferences[key])
            if suppression is not None:
                self._finish_as(work, STATUS_SUPPRESSED, "suppressed", f"address suppressed ({suppression.reason})")
            elif not prefs.allows(category):
                why = (
                    "unsubscribed from all non-essential mail" if prefs.unsubscribed_all else f"opted out of {category}"
                )
                self._finish_as(work, STATUS_OPTED_OUT, "opted_out", why)
            else:
                work.locale = work.request.locale or prefs.locale
                work.preferences = prefs

    def _open_digest_flushes(self, records: Sequence[QueueRecord], report: BatchReport) -> Sequence[QueueRecord]:
        """Due digest flushes become their digest email's record; the others wait again (mailwright.digests)."""
        if self._digests is None:
            return records
        kept, failed = self._digests.open_flushes(records)
        for message_id in failed:
            report.failed.append(message_id)
            report.retry_reasons[message_id] = "digest_flush_failed"
        return kept

    def _fold_digests(self, works: list[_Work]) -> None:
        """Requests naming a digest_key are folded into their digest window and recorded `digested`."""
        for work in works:
            assert work.request is not None and work.bundle is not None
            if work.request.digest_key is None:
                continue
            if self._digests is None:
                self._reject(work, RejectedError("digests_unavailable", "this worker has no digest store"))
                continue
            try:
                digest_id = self._digests.fold(work.request, work.request_id, work.user_key, work.bundle)
            except RejectedError as exc:
                self._reject(work, exc)
                continue
            except Exception as exc:
                self._retry_one(work, "digest_failed", exc)
                continue
            why = f"folded into digest email {digest_id}"
            self._finish_as(work, STATUS_DIGESTED, "digested", why, digest_id=digest_id)

    def _defer_quiet_hours(self, works: list[_Work], report: BatchReport) -> None:
        """Non-urgent mail for a recipient in quiet hours waits until the night ends, never dropped."""
        now = self._clock()
        scheduler = self._scheduling.scheduler if self._scheduling is not None else None
        decisions: dict[str, QuietDeferral] = {}
        for work in works:
            assert work.request is not None and work.bundle is not None
            meta = work.bundle.metadata
            decision = quiet_hours_deferral(
                request_id=work.request_id,
                category=meta.category,
                lane=self.policy.lane,
                priority=meta.priority,
                preferences=work.preferences or Preferences(work.user_key),
                request_timezone=work.request.timezone,
                now=now,
                categories=self.policy.quiet_hours_categories,
            )
            if decision is not None:
                decisions[work.record.message_id] = decision
        if not decisions:
            return
        waiting = [w for w in works if w.record.message_id in decisions]
        overnight: list[_Work] = []
        for work in waiting:
            decision = decisions[work.record.message_id]
            # Longer than one SQS delay: one schedule for the night instead of a hop every 900 s.
            if scheduler is not None and decision.hops > 1:
                overnight.append(work)
            else:
                work.defer = (decision.seconds, REASON_QUIET_HOURS)

        def hold(work: _Work) -> None:
            assert scheduler is not None
            resume_at = decisions[work.record.message_id].resume_at
            hold_in_schedule(
                scheduler, quiet_schedule_name(work.request_id, resume_at), at=resume_at, body=work.record.body
            )
            work.held = True
            # Not sent: the schedule's copy must be able to claim the request when it comes back.
            if work.lease_id is not None:
                try:
                    self._claims.release(work.request_id, work.lease_id)
                except Exception:
                    logger.exception("could not release claim", extra={"request_id": work.request_id})

        # A schedule that could not be made is a retry (the record comes back later), never a drop.
        self._each(overnight, hold, stage="quiet_schedule")
        for work in overnight:
            if work.held:  # acked, and counted with the deferred records (the QuietHoursDeferred metric)
                assert work.bundle is not None
                report.deferred[work.record.message_id] = REASON_QUIET_HOURS
                report.retry_categories[work.record.message_id] = work.bundle.metadata.category
        states = [self._quiet_state(w, decisions[w.record.message_id], now) for w in waiting if w.held or w.defer]
        if not states:
            return
        try:
            self._log.record_deferred(states)
        except Exception as exc:
            # The state is for people looking; the deferral itself does not depend on it.
            logger.warning("could not record deferred requests", extra={"count": len(states), "error": str(exc)})

    def _quiet_state(self, work: _Work, decision: QuietDeferral, now: float) -> DeferredState:
        """The message log's `deferred` state of a request waiting for its recipient's quiet hours to end."""
        assert work.request is not None and work.bundle is not None
        how = "held by a schedule" if work.held else f"{decision.hops} more hop(s) of up to 900 s"
        return DeferredState(
            request_id=work.request_id,
            lane=self.policy.lane,
            reason_code=REASON_QUIET_HOURS,
            reason=f"recipient in quiet hours; {how}",
            resume_at=decision.resume_at,
            at=now,
            template_id=work.request.template_id,
            category=work.bundle.metadata.category,
            user_id=work.user_key,
            recipient_hash=work.address_hashes[0],
            recipient_masked=mask_address(work.request.recipient_email),
            received_at=work.record.sent_at,
            producer=work.request.producer,
        )

    def _assign_variants(self, works: list[_Work]) -> None:
        for work in works:
            assert work.bundle is not None
            if not work.bundle.metadata.variants:
                continue
            try:
                if self._variants is None:
                    work.variant = assign(work.bundle.metadata.variants, work.draw)
                else:
                    work.variant = self._variants.choose(work.bundle, work.draw)
            except Exception as exc:
                self._retry_one(work, "variant_state_unavailable", exc)

    def _render(self, works: list[_Work]) -> None:
        for work in works:
            assert work.request is not None and work.bundle is not None
            try:
                work.email = self._compose(work, work.bundle, work.locale)
                work.locale = work.bundle.resolve_locale(work.locale)
            except RejectedError as exc:
                self._reject(work, exc)
            except Exception as exc:  # e.g. the unsubscribe secret could not be read
                self._retry_one(work, "render_failed", exc)

    def _compose(self, work: _Work, bundle: TemplateBundle, locale: str | None) -> OutboundEmail:
        request = work.request
        assert request is not None
        meta = bundle.metadata
        provided = {"recipient_email": request.recipient_email, "postal_address": self.policy.postal_address}
        headers: tuple[tuple[str, str], ...] = ()
        if meta.category not in ESSENTIAL_CATEGORIES:
            links = self._links(work.user_key, meta.category)
            provided.update(links)
            headers = (
                ("List-Unsubscribe", f"<{links['unsubscribe_url']}>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            )
        rendered = self._renderer.render(
            bundle, locale=locale, data=request.template_data, provided=provided, variant=work.variant
        )
        if meta.from_name and any(ch in meta.from_name for ch in "\r\n"):
            raise HeaderInjectionError("from_name")
        tags = (
            ("template", bundle.template_id),
            ("category", meta.category),
            ("request_id", request.request_id),
            ("lane", self.policy.lane),
            # The feedback function counts events per variant by this tag, and outcome events carry it.
            *((("variant", work.variant),) if work.variant else ()),
            *((("producer", request.producer),) if request.producer else ()),
            *sorted(request.metadata.items()),
        )
        return OutboundEmail(
            from_address=formataddr((meta.from_name, self.policy.from_address))
            if meta.from_name
            else self.policy.from_address,
            to_address=request.recipient_email,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            configuration_set=self.policy.configuration_set,
            headers=headers,
            tags=tags,
        )

    def _limit_rates(self, works: list[_Work]) -> None:
        now = self._clock()
        # One counter per user and category; a batch holding several emails for the same
        # counter takes its slots one after another, different counters in parallel.
        counters: dict[tuple[str, str], list[_Work]] = {}
        for work in works:
            assert work.request is not None and work.bundle is not None
            meta = work.bundle.metadata
            critical = self.policy.lane == "critical" or meta.priority == "critical"
            if not critical and meta.category in self.policy.rate_limits:
                counters.setdefault((work.user_key, meta.category), []).append(work)

        def acquire(user_id: str, category: str, group: list[_Work]) -> None:
            limit = self.policy.rate_limits[category]
            for work in group:
                try:
                    allowed = self._rate_limiter.acquire(
                        user_id,
                        category,
                        limit,
                        now=now,
                        request_id=work.request_id,
                        older_user_ids=work.user_keys[1:],
                    )
                except Exception as exc:
                    self._retry_one(work, "rate_limit_failed", exc)
                    continue
                if not allowed:
                    why = f"more than {limit.limit} {category} emails in {limit.window_seconds} s"
                    self._finish_as(work, STATUS_RATE_LIMITED, "rate_limited", why)

        futures = [self._executor.submit(acquire, *key, group) for key, group in counters.items()]
        for future in futures:
            future.result()  # acquire() contains its own failures

    def _pace(self, works: list[_Work], deadline: float | None) -> None:
        """Tokens for the records that may be sent now; the others are handed back with a delay."""
        if not works:
            return
        # Mail that was deferred before first (oldest first): it keeps its place ahead of newer mail.
        ordered = sorted(works, key=lambda w: (w.record.deferrals == 0, w.record.sent_at or 0.0))
        try:
            grant = self._pacer.take(len(ordered), deadline=deadline)
        except Exception as exc:
            self._retry_all(ordered, "pacing_failed", exc)
            return
        self._granted_all = grant.granted == len(ordered)
        for work, start in zip(ordered, grant.starts, strict=False):
            work.start = start
        for work, seconds in zip(ordered[grant.granted :], grant.defer_seconds, strict=True):
            work.defer = (seconds, grant.reason)

    def _send(self, works: list[_Work], deadline: float | None) -> None:
        recorder = _SentRecorder(self._log)

        def send(work: _Work) -> None:
            assert work.email is not None
            if work.start is not None:
                self._pacer.wait_for(work.start)
            work.attempted = True
            try:
                message_id = self._sender.send(work.email)
            except DailyQuotaExceededError as exc:
                if exc.provider != PROVIDER_SES:
                    raise  # another provider's quota: its breaker has it; the record is retried
                work.defer = (self._pacer.quota_exceeded(), REASON_QUOTA_EXHAUSTED)
                return
            except (ProviderUnavailableError, ProviderPacedError) as exc:
                # The provider is out (its breaker is open) or a secondary's own rate is used up: the mail
                # waits for it, which is not the mail's failure, so its receive count stays unused.
                work.defer = (self._provider_wait(work, paced=isinstance(exc, ProviderPacedError)), exc.code)
                return
            except ThrottledError:
                # SES said slow down: the rate is cut and the record comes back shortly, its receive count unused.
                work.defer = (self._pacer.throttled(), REASON_THROTTLED)
                return
            work.sent = True
            self._finish_as(work, STATUS_SENT, None, None, ses_message_id=message_id)
            recorder.record(work)

        self._each(works, send, stage="send")

    def _provider_wait(self, work: _Work, *, paced: bool) -> int:
        """How long a record waits for its provider: backoff over the request's deferrals, at most 15 minutes."""
        cap = PROVIDER_PACED_MAX_DEFER_SECONDS if paced else self.policy.max_backoff_seconds
        return retry_delay(work.record.deferrals + 1, cap_seconds=min(MAX_DEFER_SECONDS, cap), rng=self._rng)

    def _finish(self, works: list[_Work], report: BatchReport) -> None:
        outcomes = [w.outcome for w in works if w.outcome is not None and not w.recorded]
        if outcomes:
            try:
                self._log.record(outcomes)
            except Exception as exc:
                # Unrecorded outcomes are retried. A sent email keeps its claim, so a retry
                # waits out the lease instead of sending again at once.
                logger.exception("could not record outcomes", extra={"count": len(outcomes), "error": str(exc)})
                for work in works:
                    if work.outcome is not None and not work.recorded:
                        work.retry, work.outcome = "log_write_failed", None
        report.outcomes = [w.outcome for w in works if w.outcome is not None]
        unused = sum(1 for w in works if w.start is not None and not w.attempted)
        if unused:
            self._pacer.give_back(unused)
        self._hand_back([w for w in works if not w.handed_back], report)
        self._retry_duplicates_of_retried(works, report)
        report.quota_used = self._pacer.quota_report()
        self._count_variants(works, report)
        retried = [w for w in works if w.retry is not None]
        for work in retried:
            report.failed.append(work.record.message_id)
            report.retry_reasons[work.record.message_id] = work.retry or ""
            if work.bundle is not None:
                report.retry_categories[work.record.message_id] = work.bundle.metadata.category
            if work.lease_id is not None and not work.sent:
                try:
                    self._claims.release(work.request_id, work.lease_id)
                except Exception:
                    logger.exception("could not release claim", extra={"request_id": work.request_id})
        if retried:
            delays = [
                (
                    w.record.receipt_handle,
                    retry_delay(w.record.receive_count, cap_seconds=self.policy.max_backoff_seconds, rng=self._rng),
                )
                for w in retried
            ]
            try:
                self._retries.delay(delays)
            except Exception:
                # Not fatal: the message comes back after its visibility timeout anyway.
                logger.exception("could not delay retries", extra={"count": len(delays)})

    @staticmethod
    def _retry_duplicates_of_retried(works: list[_Work], report: BatchReport) -> None:
        """An in-batch duplicate whose original is retried is retried with it, never acked alone.

        Acking it is safe only once the original's fate is durable (an outcome in
        the log, a deferred copy in the queue). A retried original only stays in
        the queue while nobody else deletes it, and SQS may hand the same
        messages to two invocations at once (a redelivery, a visibility timeout
        that ran out): each would keep its first copy and ack the other, and
        both copies of the request would be gone with no outcome.
        """
        for work in works:
            original = work.duplicate_of
            if work.duplicate and original is not None and original.retry is not None:
                if work.record.message_id == original.record.message_id:
                    continue  # the same message received twice: retried with its original already
                work.duplicate, work.retry = False, original.retry
                report.duplicates -= 1

    def _count_variants(self, works: list[_Work], report: BatchReport) -> None:
        """Count the recorded outcomes per A/B variant; variants past the policy are switched off."""
        if self._variants is None:
            return
        names = {
            w.bundle.template_id: w.bundle.metadata.variant_names
            for w in works
            if w.outcome is not None and w.bundle is not None and w.outcome.variant
        }
        if names:
            report.variant_switches = self._variants.count_outcomes(report.outcomes, names)

    def _hand_back(self, works: list[_Work], report: BatchReport) -> None:
        """Enqueue the deferred records again as new messages; those that could not be are retried instead."""
        deferred = [w for w in works if w.defer is not None and w.outcome is None and w.retry is None]
        for work in deferred:
            work.handed_back = True
        for work in deferred:
            if work.record.deferrals >= MAX_DEFERRALS:
                work.retry, work.defer = "deferred_too_often", None
        deferred = [w for w in deferred if w.defer is not None]
        if not deferred:
            return
        items = [
            Deferral(
                message_id=w.record.message_id,
                body=w.record.body,
                seconds=w.defer[0],
                reason=w.defer[1],
                deferrals=w.record.deferrals + 1,
                published_at=w.record.sent_at,
            )
            for w in deferred
            if w.defer is not None
        ]
        try:
            failed = self._deferrals.defer(items)
        except Exception as exc:
            logger.exception("could not defer records", extra={"count": len(items), "error": str(exc)})
            failed = {item.message_id for item in items}
        for work in deferred:
            assert work.defer is not None
            if work.record.message_id in failed:
                work.retry = "defer_failed"
                continue
            report.deferred[work.record.message_id] = work.defer[1]
            if work.bundle is not None:
                report.retry_categories[work.record.message_id] = work.bundle.metadata.category
            # Not sent: the new copy must be able to claim the request at once.
            if work.lease_id is not None and not work.sent:
                try:
                    self._claims.release(work.request_id, work.lease_id)
                except Exception:
                    logger.exception("could not release claim", extra={"request_id": work.request_id})

    # -- helpers --------------------------------------------------------

    def _each(self, works: list[_Work], action: Callable[[_Work], None], *, stage: str) -> None:
        """Run `action` for every record concurrently; a failure marks only that record."""
        if not works:
            return
        futures = [(work, self._executor.submit(action, work)) for work in works]
        for work, future in futures:
            try:
                future.result()
            except RejectedError as exc:
                self._reject(work, exc)
            except Exception as exc:
                self._retry_one(work, f"{stage}_failed", exc)

    def _retry_one(self, work: _Work, reason: str, exc: BaseException) -> None:
        code = exc.code if isinstance(exc, TransientError) else reason
        work.retry = code
        log = logger.warning if isinstance(exc, TransientError) else logger.exception
        log("record will be retried", extra={"request_id": work.request_id, "reason": code, "error": str(exc)})

    def _retry_all(self, works: list[_Work], reason: str, exc: BaseException) -> None:
        for work in works:
            self._retry_one(work, reason, exc)

    def _reject_conflict(self, work: _Work) -> None:
        """An idempotency key reused for other content: logged under its own id, the first request untouched."""
        assert work.request is not None
        conflict_id = f"{work.request_id}:{work.request.content_hash}"
        work.request_id = hashlib.sha256(conflict_id.encode()).hexdigest()[:32]
        reason = "idempotency_key was already used for a different request"
        self._reject(work, RejectedError("idempotency_conflict", reason))

    def _reject(self, work: _Work, exc: RejectedError) -> None:
        self._finish_as(work, STATUS_REJECTED, exc.code, exc.message)

    def _finish_as(
        self,
        work: _Work,
        status: str,
        reason_code: str | None,
        reason: str | None,
        *,
        ses_message_id: str | None = None,
        digest_id: str | None = None,
    ) -> None:
        request, bundle = work.request, work.bundle
        work.outcome = Outcome(
            request_id=work.request_id,
            status=status,
            lane=self.policy.lane,
            reason_code=reason_code,
            reason=reason,
            ses_message_id=ses_message_id,
            template_id=request.template_id if request else None,
            template_version=bundle.version if bundle else None,
            category=bundle.metadata.category if bundle else None,
            locale=work.locale,
            user_id=work.user_key if work.user_keys else None,
            recipient_hash=work.address_hashes[0] if work.address_hashes else None,
            recipient_masked=mask_address(request.recipient_email) if request else None,
            metadata=dict(request.metadata) if request else {},
            received_at=work.record.sent_at,
            completed_at=self._clock(),
            attempts=work.record.receive_count,
            evaluation=work.evaluation,
            provider=provider_of(ses_message_id or ""),
            variant=work.variant,
            producer=request.producer if request else None,
            digest_id=digest_id,
        )
