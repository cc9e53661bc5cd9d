"""A/B variants: which variant each recipient gets, and switching off a variant that hurts.

A template may declare variants in `template.json` (each a name and a
weight; a variant's own subject or body files replace the locale's). Each
request gets one:

* **Assignment** is a keyed draw: HMAC-SHA256 with the address keyring's
  current key over the template id and the user (the request's `user_id`,
  else the keyed user key of the address), read as a number in [0, 1) and
  laid over the variants' weights. The same recipient always gets the same
  variant of a template, templates draw independently, and without the key
  nobody can tell (or steer) who gets what. Rotating the key redraws.
* **Switched-off variants** are skipped: a recipient whose variant is off
  goes to one of the remaining ones, by their weights, drawn from where the
  recipient fell inside the switched-off variant's share, so no one else
  moves. With every variant off (never done automatically) the locale's
  own parts are sent, as without variants.
* **Automatic switch-off**: per template, the ledger counts for each variant
  the emails sent and the requests whose parts failed to render (the send
  workers, once per batch), and the requests complained about (the feedback
  function, the first complaint of a request only). A variant whose
  complaint rate (complaints / sent) or rendering-failure rate (failures /
  (sent + failures)) passes its threshold, once it has `min_volume` behind
  it, is switched off by a conditional write: of the workers that see it,
  one switches it and reports it (the `VariantDisabled` metric, which an
  alarm watches). The last variant still on is never switched off: then
  the template as a whole is at fault, which the reputation alarms cover.

The ledger's state is one item per template; workers read it through a
short cache (`VariantPolicy.cache_seconds`), so a switch-off reaches every
worker within that time. Counts are at most once: a count that fails to be
written is logged and lost, never doubled.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mailwright.constants import RENDER_REASON_CODES, STATUS_REJECTED, STATUS_SENT, Env
from mailwright.errors import ConfigurationError

if TYPE_CHECKING:  # annotations only: settings import this module, and the SDK must not need jinja2
    from mailwright.templates import TemplateBundle, VariantSpec

logger = logging.getLogger(__name__)

# Who switches variants off automatically, as the ledger records it.
ACTOR_WORKER = "send-worker"
ACTOR_FEEDBACK = "feedback"
REASON_COMPLAINTS = "complaint_rate"
REASON_RENDER_FAILURES = "render_failure_rate"
# The draw's purpose (AddressHasher.fraction), so it never equals another keyed value of the same user.
ASSIGNMENT_PURPOSE = "variant"


@dataclass(frozen=True)
class VariantPolicy:
    """When a variant is switched off automatically, and how long workers trust the state they read."""

    # Above 0.3% complaints SES's own review (at 0.5%) is near; its guidance is to stay under 0.1%.
    max_complaint_rate: float = 0.003
    # A variant whose parts fail for 2% of requests has a bug the sample data did not show.
    max_render_failure_rate: float = 0.02
    # No verdict on fewer emails (sent, or sent + failed to render): one early complaint is noise.
    min_volume: int = 500
    cache_seconds: float = 30.0

    def to_json(self) -> str:
        """The environment variable's value."""
        return json.dumps(
            {
                "max_complaint_rate": self.max_complaint_rate,
                "max_render_failure_rate": self.max_render_failure_rate,
                "min_volume": self.min_volume,
                "cache_seconds": self.cache_seconds,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str) -> VariantPolicy:
        """Parse the environment variable (empty: the defaults); ConfigurationError naming what is wrong."""
        if not raw.strip():
            return cls()
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise TypeError("not an object")
            unknown = set(data) - {"max_complaint_rate", "max_render_failure_rate", "min_volume", "cache_seconds"}
            if unknown:
                raise ValueError(f"unknown keys {sorted(unknown)}")
            policy = cls(
                max_complaint_rate=float(data.get("max_complaint_rate", cls.max_complaint_rate)),
                max_render_failure_rate=float(data.get("max_render_failure_rate", cls.max_render_failure_rate)),
                min_volume=int(data.get("min_volume", cls.min_volume)),
                cache_seconds=float(data.get("cache_seconds", cls.cache_seconds)),
            )
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"{Env.VARIANTS} is not valid: {exc}") from None
        for name in ("max_complaint_rate", "max_render_failure_rate"):
            if not 0 < getattr(policy, name) <= 1:  # `not` catches NaN
                raise ConfigurationError(f"{Env.VARIANTS}: {name} must be above 0 and at most 1")
        if policy.min_volume < 1 or not policy.cache_seconds >= 0:
            raise ConfigurationError(f"{Env.VARIANTS}: min_volume must be at least 1 and cache_seconds not negative")
        return policy


@dataclass(frozen=True)
class VariantCounts:
    """What the ledger counts for one variant since it was last switched on."""

    sent: int = 0
    render_failures: int = 0
    complaints: int = 0

    def __add__(self, other: VariantCounts) -> VariantCounts:
        return VariantCounts(
            self.sent + other.sent,
            self.render_failures + other.render_failures,
            self.complaints + other.complaints,
        )

    @property
    def complaint_rate(self) -> float:
        """Complaints per email sent (0 before any was sent)."""
        return self.complaints / self.sent if self.sent else 0.0

    @property
    def render_failure_rate(self) -> float:
        """Requests that failed to render per request the variant was drawn for."""
        attempts = self.sent + self.render_failures
        return self.render_failures / attempts if attempts else 0.0


@dataclass(frozen=True)
class SwitchedOff:
    """Why and when a variant was switched off, and by whom (an automatic check, or a person)."""

    reason: str
    at: float
    actor: str
    note: str = ""


@dataclass(frozen=True)
class TemplateVariants:
    """The ledger's item of one template: its variants' names (as last counted), counts and switched-off ones."""

    template_id: str
    names: tuple[str, ...] = ()
    counts: dict[str, VariantCounts] = field(default_factory=dict)
    off: dict[str, SwitchedOff] = field(default_factory=dict)

    def count(self, variant: str) -> VariantCounts:
        """The variant's counts (zero when never counted)."""
        return self.counts.get(variant, VariantCounts())


@dataclass(frozen=True)
class VariantSwitch:
    """A variant switched off or on: reported once, by whoever changed it."""

    template_id: str
    variant: str
    enabled: bool
    reason: str
    actor: str
    at: float
    counts: VariantCounts = VariantCounts()


class VariantLedger(Protocol):
    """Where variants' counters and switched-off states live (one item per template)."""

    def read(self, template_id: str) -> TemplateVariants:
        """The template's item (empty when nothing was counted or switched yet)."""
        ...

    def add(
        self, template_id: str, counts: Mapping[str, VariantCounts], *, names: Sequence[str] = ()
    ) -> TemplateVariants:
        """Add to each variant's counters atomically (and record the variants' names, when given); the item after."""
        ...

    def switch_off(self, template_id: str, variant: str, off: SwitchedOff, *, others: Sequence[str]) -> bool:
        """Switch a variant off if it is on and one of `others` stays on; False when it was not done."""
        ...

    def switch_on(self, template_id: str, variant: str) -> bool:
        """Switch a variant on and start its counts again; False when it was on already."""
        ...


# -- assignment ----------------------------------------------------------------


def _pick(specs: Sequence[VariantSpec], point: float) -> tuple[VariantSpec, float] | None:
    """The variant whose share of the weights holds `point` (in [0, 1)), and where inside its share it fell."""
    weighted = [spec for spec in specs if spec.weight > 0]
    total = sum(spec.weight for spec in weighted)
    if not total:
        return None
    target = min(max(point, 0.0), 1.0) * total
    low = 0.0
    for spec in weighted:
        high = low + spec.weight
        if target < high or spec is weighted[-1]:
            return spec, min(max((target - low) / spec.weight, 0.0), 1.0 - 1e-12)
        low = high
    return None  # pragma: no cover - the loop always returns on the last spec


def assign(variants: Sequence[VariantSpec], point: float, off: Collection[str] = ()) -> str | None:
    """The variant a draw of `point` gets; a switched-off one's share goes to the others by weight.

    None when the template has no variants, or none is on.
    """
    picked = _pick(variants, point)
    if picked is None:
        return None
    spec, inner = picked
    if spec.name not in off:
        return spec.name
    remaining = [candidate for candidate in variants if candidate.name not in off]
    again = _pick(remaining, inner)
    return again[0].name if again is not None else None


def assignment_basis(template_id: str, user_key: str) -> str:
    """What the keyed draw of a recipient for a template is taken over."""
    return f"{template_id}\0{user_key}"


# -- the service -----------------------------------------------------------------


class VariantService:
    """Chooses variants for the send worker, and counts and switches them off for it and the feedback function."""

    def __init__(
        self,
        ledger: VariantLedger,
        policy: VariantPolicy | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self.policy = policy or VariantPolicy()
        self._monotonic = monotonic
        self._clock = clock
        self._cache: dict[str, tuple[TemplateVariants, float]] = {}
        self._lock = threading.Lock()

    def state(self, template_id: str) -> TemplateVariants:
        """The template's state, read at most once per `cache_seconds`; a stale copy when the read fails."""
        now = self._monotonic()
        cached = self._cache.get(template_id)
        if cached is not None and now - cached[1] < self.policy.cache_seconds:
            return cached[0]
        try:
            state = self._ledger.read(template_id)
        except Exception:
            if cached is None:
                raise
            # Better the state of a minute ago than no mail: a switch-off arrives with the next read.
            logger.warning("variant state unavailable; using the last read", extra={"template_id": template_id})
            return cached[0]
        self._remember(state)
        return state

    def _remember(self, state: TemplateVariants) -> None:
        with self._lock:
            self._cache[state.template_id] = (state, self._monotonic())

    def choose(self, bundle: TemplateBundle, point: float) -> str | None:
        """The variant a recipient drawn at `point` gets of `bundle` (None without variants); may read the ledger."""
        variants = bundle.metadata.variants
        if not variants:
            return None
        off = self.state(bundle.template_id).off
        return assign(variants, point, off.keys())

    def count_outcomes(
        self, outcomes: Sequence[Any], names: Mapping[str, Sequence[str]], *, actor: str = ACTOR_WORKER
    ) -> list[VariantSwitch]:
        """Count a batch's sent and failed-to-render requests per variant; switch off those past a threshold.

        `outcomes` are `Outcome`s; `names` the variants each template declares. One ledger write per
        template with counts. Never raises: a count that cannot be written is logged and lost.
        """
        by_template: dict[str, Counter[tuple[str, str]]] = {}
        for outcome in outcomes:
            variant = getattr(outcome, "variant", None)
            if not variant or not outcome.template_id:
                continue
            if outcome.status == STATUS_SENT:
                kind = "sent"
            elif outcome.status == STATUS_REJECTED and outcome.reason_code in RENDER_REASON_CODES:
                kind = "render_failures"
            else:
                continue
            by_template.setdefault(outcome.template_id, Counter())[(variant, kind)] += 1
        switched: list[VariantSwitch] = []
        for template_id, counter in by_template.items():
            counts: dict[str, VariantCounts] = {}
            for (variant, kind), value in counter.items():
                counts[variant] = counts.get(variant, VariantCounts()) + VariantCounts(**{kind: value})
            switched += self._count(template_id, counts, names=names.get(template_id, ()), actor=actor)
        return switched

    def count_complaint(self, template_id: str, variant: str) -> list[VariantSwitch]:
        """Count the first complaint about a request sent with `variant`; switch it off past the threshold."""
        return self._count(template_id, {variant: VariantCounts(complaints=1)}, names=(), actor=ACTOR_FEEDBACK)

    def _count(
        self, template_id: str, counts: Mapping[str, VariantCounts], *, names: Sequence[str], actor: str
    ) -> list[VariantSwitch]:
        try:
            state = self._ledger.add(template_id, counts, names=names)
        except Exception as exc:
            logger.warning(
                "variant counts not recorded",
                extra={"template_id": template_id, "variants": sorted(counts), "error": str(exc)},
            )
            return []
        self._remember(state)
        switched = []
        for variant in counts:
            reason = self.verdict(state.count(variant))
            if reason is None or variant in state.off:
                continue
            change = self._switch_off(state, variant, reason, actor)
            if change is not None:
                switched.append(change)
        return switched

    def verdict(self, counts: VariantCounts) -> str | None:
        """Why these counts switch a variant off (a REASON_*), or None while they are within the policy."""
        policy = self.policy
        if counts.sent >= policy.min_volume and counts.complaint_rate > policy.max_complaint_rate:
            return REASON_COMPLAINTS
        attempts = counts.sent + counts.render_failures
        if attempts >= policy.min_volume and counts.render_failure_rate > policy.max_render_failure_rate:
            return REASON_RENDER_FAILURES
        return None

    def _switch_off(self, state: TemplateVariants, variant: str, reason: str, actor: str) -> VariantSwitch | None:
        others = [name for name in state.names if name != variant]
        if not others:
            # The ledger has not learned the template's variants yet (a complaint before any count of sends).
            return None
        now = self._clock()
        counts = state.count(variant)
        note = (
            f"{counts.complaints} complaints in {counts.sent} sent"
            if reason == REASON_COMPLAINTS
            else f"{counts.render_failures} failed to render in {counts.sent + counts.render_failures}"
        )
        try:
            done = self._ledger.switch_off(
                state.template_id, variant, SwitchedOff(reason=reason, at=now, actor=actor, note=note), others=others
            )
        except Exception as exc:
            logger.warning(
                "variant could not be switched off",
                extra={"template_id": state.template_id, "variant": variant, "error": str(exc)},
            )
            return None
        if not done:
            return None  # another worker switched it first, or it is the last one on
        change = VariantSwitch(state.template_id, variant, False, reason, actor, now, counts)
        logger.warning(
            "variant switched off",
            extra={"template_id": state.template_id, "variant": variant, "reason": reason, "note": note},
        )
        with self._lock:
            self._cache.pop(state.template_id, None)  # read the switch back on the next choice
        return change
