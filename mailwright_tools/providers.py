"""Look at and switch the provider breakers of a stack, deployed or local (`mailwright providers ...`).

Each lane has a breaker for SES and one for the secondary it fails over to,
one item each in the idempotency table, shared by all of the lane's workers
(mailwright.failover). This module reads them, and switches SES's by hand the
way the runtime does it, through the same `ProviderBreaker`:

    control = ProviderControl.for_target(target)
    control.failover("critical", actor="cli:jane@laptop", note="SES eu-west-1 degraded")  # to the secondary
    control.restore("critical", actor="cli:jane@laptop", note="SES healthy again")        # back to SES

A breaker opened by hand does not probe SES: it stays open until restored.
Every change, automatic or by hand, is kept in the breaker's history with its
actor and note (the audit trail `status` shows).

Which providers and lanes a stack has comes from its outputs (`Providers`,
`Failover`) when deployed, from local.json on the local stack.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mailwright.constants import LANES, PROVIDER_SES
from mailwright.failover import BreakerPolicy, ProviderBreaker
from mailwright.ports import BREAKER_CLOSED, BreakerChange, BreakerState

if TYPE_CHECKING:
    from mailwright.ports import ProviderBreakerStore
    from mailwright_tools.target import Target

logger = logging.getLogger(__name__)
# How many of a breaker's recorded changes `status` shows.
HISTORY_SHOWN = 10


class ProvidersError(Exception):
    """The stack has no secondary providers, or its breakers could not be read or switched."""


class UnknownLaneError(ProvidersError):
    """The lane named is not one of the stack's lanes."""


@dataclass(frozen=True)
class LaneProviders:
    """A lane's failover as deployed: whether its mail moves to `provider` while SES's breaker is open."""

    lane: str
    enabled: bool
    provider: str


@dataclass(frozen=True)
class BreakerView:
    """One breaker as `status` shows it."""

    provider: str
    state: str
    opened_at: float | None = None
    probe_at: float | None = None
    closed_at: float | None = None
    reason: str = ""
    actor: str = ""
    failures: int = 0

    @classmethod
    def of(cls, state: BreakerState) -> BreakerView:
        """The view of a stored state."""
        return cls(
            provider=state.provider,
            state=state.state,
            opened_at=state.opened_at,
            probe_at=state.probe_at,
            closed_at=state.closed_at,
            reason=state.reason,
            actor=state.actor,
            failures=state.failures,
        )

    @property
    def by_hand(self) -> bool:
        """Opened by hand: it waits for a restore instead of probing."""
        return self.state != BREAKER_CLOSED and self.probe_at is None


@dataclass(frozen=True)
class LaneStatus:
    """A lane's failover, its two breakers, and their recent changes (oldest first)."""

    lane: str
    enabled: bool
    provider: str
    ses: BreakerView
    secondary: BreakerView
    history: list[BreakerChange] = field(default_factory=list)

    @property
    def sending_through(self) -> str:
        """Where the lane's mail goes now: SES, the secondary, or nowhere (it waits)."""
        if self.ses.state == BREAKER_CLOSED:
            return PROVIDER_SES
        if self.enabled and self.secondary.state == BREAKER_CLOSED:
            return self.provider
        return ""

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for `--json`."""
        return {
            "lane": self.lane,
            "failover": {"enabled": self.enabled, "provider": self.provider},
            "sending_through": self.sending_through or None,
            "breakers": {
                PROVIDER_SES: {**asdict(self.ses), "by_hand": self.ses.by_hand},
                self.provider: {**asdict(self.secondary), "by_hand": self.secondary.by_hand},
            },
            "history": [asdict(change) for change in self.history],
        }


class _LoggedEvents:
    """ProviderEvents of the CLI: a change is logged (the history keeps it); nothing is counted."""

    def breaker_changed(self, change: BreakerChange) -> None:
        logger.info("provider breaker changed by hand", extra=asdict(change))

    def count(self, name: str, *, lane: str, provider: str) -> None:
        """Nothing: metrics are the workers'."""

    def state(self, *, lane: str, provider: str, is_open: bool) -> None:
        """Nothing: metrics are the workers'."""


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ProvidersError(f"the stack's {what} is not valid JSON: {text[:80]!r}") from None


class ProviderControl:
    """The provider breakers of one stack, read and switched through its idempotency table."""

    def __init__(
        self, store: ProviderBreakerStore, *, providers: dict[str, str], lanes: dict[str, LaneProviders]
    ) -> None:
        self._store = store
        self.providers = providers  # name -> kind
        self.lanes = lanes

    @classmethod
    def for_target(cls, target: Target) -> ProviderControl:
        """The control of a local or deployed stack; ProvidersError when it has no secondary providers."""
        from mailwright.adapters.aws import client_config
        from mailwright.adapters.provider_breaker import DynamoProviderBreakerStore

        providers_raw = target.extra.get("providers") or []
        failover_raw = target.extra.get("failover") or {}
        if isinstance(providers_raw, str):
            providers_raw = _loads(providers_raw, "Providers output") if providers_raw else []
        if isinstance(failover_raw, str):
            failover_raw = _loads(failover_raw, "Failover output") if failover_raw else {}
        if not providers_raw:
            raise ProvidersError(
                f"{target.describe()} has no secondary providers (`providers` in context; "
                "README: Secondary providers and failover)"
            )
        providers = {str(p["name"]): str(p["kind"]) for p in providers_raw}
        lanes = {
            lane: LaneProviders(lane, bool(failover_raw[lane].get("enabled")), str(failover_raw[lane].get("provider")))
            for lane in LANES
            if isinstance(failover_raw.get(lane), dict)
        }
        dynamodb = target.session().client("dynamodb", config=client_config(max_attempts=3))
        return cls(DynamoProviderBreakerStore(dynamodb, target.tables["idempotency"]), providers=providers, lanes=lanes)

    def _lane(self, lane: str) -> LaneProviders:
        if lane not in self.lanes:
            raise UnknownLaneError(f"unknown lane {lane!r}: lanes are {', '.join(self.lanes) or 'none'}")
        return self.lanes[lane]

    def _breaker(self, lane: str, provider: str) -> ProviderBreaker:
        # Thresholds do not matter by hand: only the workers count failures.
        return ProviderBreaker(
            self._store, lane=lane, provider=provider, policy=BreakerPolicy(), events=_LoggedEvents()
        )

    def status(self) -> list[LaneStatus]:
        """Every lane's breakers and their recent history."""
        found = []
        for lane, info in self.lanes.items():
            ses = self._store.read(lane, PROVIDER_SES)
            secondary = self._store.read(lane, info.provider)
            history = sorted(
                [*self._store.history(lane, PROVIDER_SES), *self._store.history(lane, info.provider)],
                key=lambda change: change.at,
            )[-HISTORY_SHOWN:]
            found.append(
                LaneStatus(
                    lane=lane,
                    enabled=info.enabled,
                    provider=info.provider,
                    ses=BreakerView.of(ses),
                    secondary=BreakerView.of(secondary),
                    history=history,
                )
            )
        return found

    def failover(self, lane: str, *, actor: str, note: str) -> LaneStatus:
        """Open SES's breaker of `lane` by hand: its mail goes to the secondary (or waits) until `restore`."""
        self._lane(lane)
        reason = f"failed over by hand: {note}" if note else "failed over by hand"
        self._breaker(lane, PROVIDER_SES).force_open(actor=actor, reason=reason)
        return self._status_of(lane)

    def restore(self, lane: str, *, actor: str, note: str, provider: str = PROVIDER_SES) -> LaneStatus:
        """Close a breaker of `lane` by hand (SES's by default): that provider takes the lane's mail again."""
        info = self._lane(lane)
        if provider not in (PROVIDER_SES, info.provider):
            raise ProvidersError(f"lane {lane} has breakers for {PROVIDER_SES} and {info.provider}, not {provider!r}")
        reason = f"restored by hand: {note}" if note else "restored by hand"
        self._breaker(lane, provider).restore(actor=actor, reason=reason)
        return self._status_of(lane)

    def _status_of(self, lane: str) -> LaneStatus:
        return next(status for status in self.status() if status.lane == lane)
