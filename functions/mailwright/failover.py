"""Failover: a provider breaker per lane, shared by every worker, and the sender that routes around an open one.

The breaker of a provider on a lane lives in one DynamoDB item, so every
worker of the lane sees the same state; each worker reads it at most every
`refresh_seconds` (a cached read costs nothing per email) and writes it only
when something fails or changes.

| state     | sends go to         | moves on                                                              |
|-----------|---------------------|-----------------------------------------------------------------------|
| closed    | the provider        | `failure_threshold` outage failures within `window_seconds`, or one    |
|           |                     | account-level refusal (sending paused, daily quota used up): -> open   |
| open      | the secondary, or   | `cooldown_seconds` after opening (`account_cooldown_seconds` after an  |
|           | nowhere (the lane   | account-level refusal) one worker takes the probe: -> half_open.       |
|           | waits)              | Opened by hand (`force_open`): stays open until `restore`              |
| half_open | the probe only; the | the probe is answered (sent, refused, throttled): -> closed;           |
|           | rest as when open   | it fails as an outage: -> open again. A probe not finished within its |
|           |                     | lease is taken over by another worker                                  |

Rate throttling is not an outage: it stays with pacing and backoff. Only an
email the provider never received, or refused as an outage, moves to the
secondary. One whose call timed out after the request was sent may have been
accepted: it is remembered (`mark_maybe_sent`) and retried on the same
provider later, never sent through the other one. That is the crash window
of a provider switch; it is counted (`MaybeSent`) rather than ignored.

Example::

    breaker = ProviderBreaker(store, lane="critical", provider="ses", policy=BreakerPolicy(), events=events)
    sender = FailoverSender(lane="critical", primary=ses, breaker=breaker, secondary=relay, ...)
    sender.send(email)  # SES's message id, or a MessageId naming the secondary that sent it
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from mailwright.constants import PROVIDER_SES
from mailwright.errors import ProviderOutageError, ProviderPacedError, ProviderUnavailableError, TransientError
from mailwright.pacing import Pacer
from mailwright.ports import (
    BREAKER_CLOSED,
    BREAKER_HALF_OPEN,
    BREAKER_OPEN,
    BreakerChange,
    BreakerState,
    EmailSender,
    MessageId,
    OutboundEmail,
    ProviderBreakerStore,
)
from mailwright.settings import FailoverSettings

logger = logging.getLogger(__name__)

# What a breaker tells a sender to do with the next email.
ROUTE_USE = "use"  # closed: send through the provider
ROUTE_PROBE = "probe"  # half-open, and this caller holds the probe: send through it and report how it went
ROUTE_SKIP = "skip"  # open (or another worker's probe is out): do not use the provider

# Metric names of what the failover sender counts (the sends each secondary made are counted from the
# batch's outcomes: FailedOver, in mailwright.observability).
METRIC_MAYBE_SENT = "MaybeSent"  # a call timed out after the request went out: retried on the same provider
METRIC_PAUSED = "ProviderPaused"  # SES is out and the lane waits (failover off, or the secondary is out too)
SAVE_ATTEMPTS = 3
# What `_maybe_sent_by` answers when it did not look (calm times): a lookup costs a read per email.
_NOT_LOOKED_UP = "\x00not looked up"
# How often a worker reports its lane's breaker states as a gauge (ProviderBreakerOpen): often enough that
# every minute of sending has a data point for the "open for N minutes" alarm, at no cost per email.
STATE_REPORT_SECONDS = 30.0


@dataclass(frozen=True)
class BreakerPolicy:
    """When a provider breaker opens and when it probes again (see `FailoverSettings`)."""

    failure_threshold: int = 5
    window_seconds: float = 30.0
    cooldown_seconds: float = 30.0
    account_cooldown_seconds: float = 300.0
    refresh_seconds: float = 2.0
    # How long a probe may take before another worker may take it over.
    probe_lease_seconds: float = 60.0

    @classmethod
    def from_settings(cls, settings: FailoverSettings) -> BreakerPolicy:
        """The policy a lane's failover settings describe."""
        return cls(
            failure_threshold=settings.failure_threshold,
            window_seconds=settings.window_seconds,
            cooldown_seconds=settings.cooldown_seconds,
            account_cooldown_seconds=settings.account_cooldown_seconds,
            refresh_seconds=settings.refresh_seconds,
        )


class ProviderEvents(Protocol):
    """Where the failover sender reports what it did: metrics and logs (`mailwright.observability`)."""

    def breaker_changed(self, change: BreakerChange) -> None:
        """A breaker changed state."""
        ...

    def count(self, name: str, *, lane: str, provider: str) -> None:
        """Count one `name` event (METRIC_MAYBE_SENT, METRIC_PAUSED) for a lane and provider."""
        ...

    def state(self, *, lane: str, provider: str, is_open: bool) -> None:
        """Report a breaker's state (open or half-open: `is_open`), as a worker last read it."""
        ...


class ProviderBreaker:
    """The breaker of one provider on one lane, kept in a ProviderBreakerStore and read through a short cache."""

    def __init__(
        self,
        store: ProviderBreakerStore,
        *,
        lane: str,
        provider: str,
        policy: BreakerPolicy,
        events: ProviderEvents,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        worker_id: str | None = None,
    ) -> None:
        self._store = store
        self.lane = lane
        self.provider = provider
        self.policy = policy
        self._events = events
        self._clock = clock
        self._monotonic = monotonic
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._cached: BreakerState | None = None
        self._read_at = 0.0

    # -- reading ------------------------------------------------------------------

    def state(self, *, fresh: bool = False) -> BreakerState:
        """The breaker's state: cached for `refresh_seconds`, or read now (`fresh`).

        If the store cannot be read, the last state read stands (closed if none):
        a table hiccup must not stop the mail.
        """
        with self._lock:
            cached, stale = self._cached, self._monotonic() - self._read_at >= self.policy.refresh_seconds
        if cached is not None and not fresh and not stale:
            return cached
        try:
            state = self._store.read(self.lane, self.provider)
        except Exception as exc:
            logger.warning(
                "provider breaker unreadable: keeping the last state",
                extra={"lane": self.lane, "provider": self.provider, "error": str(exc)},
            )
            return cached or BreakerState(lane=self.lane, provider=self.provider)
        self._remember(state)
        return state

    def _remember(self, state: BreakerState) -> None:
        with self._lock:
            self._cached, self._read_at = state, self._monotonic()

    def route(self) -> str:
        """ROUTE_USE, ROUTE_PROBE (this caller now holds the half-open probe) or ROUTE_SKIP."""
        state = self.state()
        if state.state == BREAKER_CLOSED:
            return ROUTE_USE
        now = self._clock()
        due = state.state == BREAKER_OPEN and state.probe_at is not None and now >= state.probe_at
        abandoned = state.state == BREAKER_HALF_OPEN and state.probe_until < now
        if not (due or abandoned):
            return ROUTE_SKIP
        probing = replace(
            state,
            state=BREAKER_HALF_OPEN,
            prober=self.worker_id,
            probe_until=now + self.policy.probe_lease_seconds,
            version=state.version + 1,
        )
        if self._write(state, probing, reason="cooldown over: probing"):
            return ROUTE_PROBE
        return ROUTE_USE if self.state(fresh=True).state == BREAKER_CLOSED else ROUTE_SKIP

    # -- what happened ------------------------------------------------------------

    def succeeded(self, route: str) -> None:
        """The provider answered (sent, refused or throttled the email): a probe closes the breaker."""
        if route != ROUTE_PROBE:
            return
        state = self.state(fresh=True)
        if state.state == BREAKER_HALF_OPEN and state.prober == self.worker_id:
            self._write(state, self._closed(state), reason="the probe was answered")

    def failed(self, error: ProviderOutageError, route: str) -> bool:
        """Count an outage failure; whether the breaker is open (or half-open) after it."""
        now = self._clock()
        reason = str(error)[:300]  # "code: message"
        cooldown = self.policy.account_cooldown_seconds if error.at_once else self.policy.cooldown_seconds
        if route == ROUTE_PROBE:
            state = self.state(fresh=True)
            if state.state == BREAKER_HALF_OPEN and state.prober == self.worker_id:
                self._write(state, self._opened(state, now, cooldown, reason), reason=reason)
                return True
            return state.state != BREAKER_CLOSED
        if not error.at_once:
            try:
                window = self.policy.window_seconds
                counted = self._store.add_failure(self.lane, self.provider, now=now, window_seconds=window)
            except Exception as exc:
                logger.warning("provider breaker failure not counted", extra={"lane": self.lane, "error": str(exc)})
                return self.state().state != BREAKER_CLOSED
            self._remember(counted)
            if counted.state != BREAKER_CLOSED or counted.failures < self.policy.failure_threshold:
                return counted.state != BREAKER_CLOSED
        return self._open(now, cooldown, reason)

    def _open(self, now: float, cooldown: float, reason: str) -> bool:
        for _ in range(SAVE_ATTEMPTS):
            state = self.state(fresh=True)
            if state.state != BREAKER_CLOSED:
                return True
            if self._write(state, self._opened(state, now, cooldown, reason), reason=reason):
                return True
        return self.state().state != BREAKER_CLOSED

    # -- by hand (the CLI) ----------------------------------------------------------

    def force_open(self, *, actor: str, reason: str = "opened by hand") -> BreakerState:
        """Open the breaker until `restore` (no probing): the lane's mail goes to the secondary, or waits."""
        for _ in range(SAVE_ATTEMPTS):
            state = self.state(fresh=True)
            opened = replace(self._opened(state, self._clock(), None, reason), actor=actor)
            if self._write(state, opened, reason=reason, actor=actor):
                return opened
        raise TransientError("breaker_conflict", f"{self.lane}/{self.provider}: the breaker kept changing; retry")

    def restore(self, *, actor: str, reason: str = "restored by hand") -> BreakerState:
        """Close the breaker by hand: the provider takes the lane's mail again at once."""
        for _ in range(SAVE_ATTEMPTS):
            state = self.state(fresh=True)
            closed = replace(self._closed(state), actor=actor)
            if self._write(state, closed, reason=reason, actor=actor):
                return closed
        raise TransientError("breaker_conflict", f"{self.lane}/{self.provider}: the breaker kept changing; retry")

    # -- writing ------------------------------------------------------------------

    def _opened(self, state: BreakerState, now: float, cooldown: float | None, reason: str) -> BreakerState:
        return replace(
            state,
            state=BREAKER_OPEN,
            opened_at=now,
            probe_at=None if cooldown is None else now + cooldown,
            reason=reason,
            actor="",
            prober="",
            probe_until=0.0,
            version=state.version + 1,
        )

    def _closed(self, state: BreakerState) -> BreakerState:
        return replace(
            state,
            state=BREAKER_CLOSED,
            failures=0,
            window_start=0.0,
            opened_at=None,
            probe_at=None,
            closed_at=self._clock(),
            reason="",
            actor="",
            prober="",
            probe_until=0.0,
            version=state.version + 1,
        )

    def _write(self, before: BreakerState, after: BreakerState, *, reason: str, actor: str = "") -> bool:
        try:
            written = self._store.write(after, expected_version=before.version)
        except Exception as exc:
            logger.warning("provider breaker not written", extra={"lane": self.lane, "error": str(exc)})
            return False
        if not written:
            self.state(fresh=True)
            return False
        self._remember(after)
        if before.state != after.state or actor:
            change = BreakerChange(
                self.lane, self.provider, before.state, after.state, reason=reason, actor=actor, at=self._clock()
            )
            self._events.breaker_changed(change)
            try:
                self._store.record_change(change)
            except Exception as exc:
                # The change itself is stored and logged; only its line in the history is missing.
                logger.warning("provider breaker history not written", extra={"lane": self.lane, "error": str(exc)})
        return True


class FailoverSender:
    """EmailSender over SES and a secondary provider, each behind its breaker.

    SES takes the mail while its breaker is closed. When it is open, the lane's
    mail goes through the secondary if the lane fails over (`enabled`), paced
    at the secondary's own rate; otherwise, or when the secondary's breaker is
    open too, the email is retried later (ProviderUnavailableError). An email
    one provider may have accepted (its answer was lost) is only ever retried
    on that provider.
    """

    def __init__(
        self,
        *,
        lane: str,
        primary: EmailSender,
        breaker: ProviderBreaker,
        store: ProviderBreakerStore,
        events: ProviderEvents,
        enabled: bool,
        secondary: EmailSender | None = None,
        secondary_name: str = "",
        secondary_breaker: ProviderBreaker | None = None,
        secondary_pacer: Pacer | None = None,
        max_pace_wait_seconds: float = 2.0,
        remember_seconds: float = 86400.0,
        recheck_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lane = lane
        self._primary = primary
        self.breaker = breaker
        self._store = store
        self._events = events
        self.enabled = enabled
        self._secondary = secondary
        self.secondary_name = secondary_name
        self.secondary_breaker = secondary_breaker
        self._pacer = secondary_pacer
        self._max_pace_wait = max_pace_wait_seconds
        self._remember_seconds = remember_seconds
        self._recheck_seconds = recheck_seconds
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        self._reported_at: float | None = None
        self._report_lock = threading.Lock()

    def send(self, email: OutboundEmail) -> str:
        """Send `email` through SES, or the secondary while SES's breaker is open; the message id."""
        request_id = dict(email.tags).get("request_id", "")
        state = self.breaker.state()
        self._report_states(state)
        holder = self._maybe_sent_by(request_id, state)
        if holder not in (None, _NOT_LOOKED_UP, PROVIDER_SES):
            return self._via_secondary(email, request_id)
        route = self.breaker.route()
        if route == ROUTE_SKIP:
            return self._off_ses(email, request_id, holder)
        try:
            message_id = self._primary.send(email)
        except ProviderOutageError as exc:
            opened = self.breaker.failed(exc, route)
            if exc.maybe_sent:
                self._lost_answer(request_id, PROVIDER_SES)
                raise
            if not opened:
                raise
            # SES never took this email and its breaker is open now: the secondary can take it at once.
            return self._off_ses(email, request_id, holder)
        except Exception:
            self.breaker.succeeded(route)  # refused or throttled: SES answered, so it is up
            raise
        self.breaker.succeeded(route)
        return message_id

    def _off_ses(self, email: OutboundEmail, request_id: str, holder: str | None) -> str:
        """SES is out: the secondary takes the email, unless SES may already have it (its answer was lost)."""
        if holder == _NOT_LOOKED_UP:
            # The breaker looked closed when this send began, so nobody looked: look now, before leaving SES.
            holder = self._lookup(request_id)
        if holder == PROVIDER_SES:
            self._events.count(METRIC_PAUSED, lane=self.lane, provider=PROVIDER_SES)
            raise ProviderUnavailableError("SES may already have this email: it waits for SES to answer again")
        return self._via_secondary(email, request_id)

    def close(self) -> None:
        """Close the providers' open connections (an SMTP relay's pool), if they keep any."""
        for sender in (self._primary, self._secondary):
            close = getattr(sender, "close", None)
            if callable(close):
                close()

    def _report_states(self, state: BreakerState) -> None:
        """Every STATE_REPORT_SECONDS, report SES's breaker state (and the secondary's) as last read."""
        now = self._monotonic()
        with self._report_lock:
            if self._reported_at is not None and now - self._reported_at < STATE_REPORT_SECONDS:
                return
            self._reported_at = now
        self._events.state(lane=self.lane, provider=PROVIDER_SES, is_open=state.state != BREAKER_CLOSED)
        if self.secondary_breaker is not None:
            secondary = self.secondary_breaker.state()
            self._events.state(lane=self.lane, provider=self.secondary_name, is_open=secondary.state != BREAKER_CLOSED)

    def _via_secondary(self, email: OutboundEmail, request_id: str) -> str:
        secondary, breaker, name = self._secondary, self.secondary_breaker, self.secondary_name
        if not self.enabled or secondary is None or breaker is None:
            self._events.count(METRIC_PAUSED, lane=self.lane, provider=PROVIDER_SES)
            raise ProviderUnavailableError(f"SES is out and lane {self.lane} does not fail over: it waits for SES")
        route = breaker.route()
        if route == ROUTE_SKIP:
            self._events.count(METRIC_PAUSED, lane=self.lane, provider=name)
            raise ProviderUnavailableError(f"SES and {name} are both out: the email waits")
        self._pace(name)
        try:
            message_id = secondary.send(email)
        except ProviderOutageError as exc:
            breaker.failed(exc, route)
            if exc.maybe_sent:
                self._lost_answer(request_id, name)
            raise
        except Exception:
            breaker.succeeded(route)
            raise
        breaker.succeeded(route)
        return MessageId(message_id, provider=name)

    def _pace(self, name: str) -> None:
        if self._pacer is None:
            return
        reserved, wait = self._pacer.reserve(max_wait=self._max_pace_wait)
        if not reserved:
            raise ProviderPacedError(f"{name}_paced", f"{name}: its send rate is used up; the email waits")
        if wait > 0:
            self._sleep(wait)

    def _maybe_sent_by(self, request_id: str, state: BreakerState) -> str | None:
        """The provider that may already have this request, looked up only around an outage (it costs a read).

        In calm times (the breaker closed, and not recently) nobody looks: _NOT_LOOKED_UP.
        """
        if not request_id:
            return None
        recently_closed = state.closed_at is not None and self._clock() - state.closed_at < self._recheck_seconds
        if state.state == BREAKER_CLOSED and not recently_closed:
            return _NOT_LOOKED_UP
        return self._lookup(request_id)

    def _lookup(self, request_id: str) -> str | None:
        if not request_id:
            return None
        try:
            return self._store.maybe_sent_by(request_id)
        except Exception as exc:
            # Unknown is not "nobody": sending elsewhere could duplicate, so the email waits.
            raise TransientError("breaker_unavailable", f"lost-answer lookup failed: {exc}") from None

    def _lost_answer(self, request_id: str, provider: str) -> None:
        self._events.count(METRIC_MAYBE_SENT, lane=self.lane, provider=provider)
        if not request_id:
            return
        try:
            self._store.mark_maybe_sent(request_id, provider, until=self._clock() + self._remember_seconds)
        except Exception as exc:
            logger.warning("could not remember a lost answer", extra={"request_id": request_id, "error": str(exc)})
