"""The suppression lifecycle: which addresses must not be mailed, why, until when, and who said so.

Addresses come in as text and are stored only as a keyed hash (the key the
send worker looks up, see `mailwright.address_keys`) and a masked form for
people (`j***@example.com`). Every change is written together with an audit
record (when, who, why) that outlives the suppression itself. An entry stored
under an older key version is read in every readable version; a change to it
is written under the current key (the old item stays until `mailwright migrate
address-hashes` folds it in, so the feedback function never deletes anything).

One address has at most one suppression; when a second reason arrives the
stronger one wins and the other is remembered in `reasons`:

| reason      | blocks                          | ends                          | rank |
|-------------|---------------------------------|-------------------------------|------|
| BOUNCE      | all mail                        | manual removal                | 3    |
| MANUAL      | all mail                        | manual removal                | 3    |
| COMPLAINT   | all but security/transactional  | manual removal with `force`   | 2    |
| SOFT_BOUNCE | all mail                        | expiry (default 14 days)      | 1    |

Example::

    service = build_suppression_service(suppression_table="mailwright-suppression", address_key_secret=ARN)
    service.add("Jane@Example.com", actor="ops@example.com", note="asked by phone")
    service.check("jane@example.com").masked  # 'j***@example.com'
    service.remove("jane@example.com", actor="ops@example.com", note="consent renewed")
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from mailwright.addresses import mask_address, normalize_address, scrub_addresses
from mailwright.errors import ComplaintRemovalError, NotSuppressedError, SuppressionError, TransientError
from mailwright.ports import (
    REASON_BOUNCE,
    REASON_COMPLAINT,
    REASON_MANUAL,
    REASON_SOFT_BOUNCE,
    SCOPE_ALL,
    SCOPE_NON_ESSENTIAL,
    SUPPRESSION_REASONS,
    AddressKeySource,
    AuditRecord,
    SuppressionEntry,
    SuppressionLedger,
    SuppressionMirror,
)

__all__ = [
    "AuditRecord",
    "SoftBouncePolicy",
    "SoftBounceResult",
    "SuppressionEntry",
    "SuppressionResult",
    "SuppressionService",
]

SOURCE_MANUAL = "manual"

# What a suppress() call did to the stored entry.
OUTCOME_CREATED = "created"  # there was none (or only an expired one)
OUTCOME_UPGRADED = "upgraded"  # a weaker reason was replaced by a stronger one
OUTCOME_REFRESHED = "refreshed"  # a soft-bounce suppression was extended
OUTCOME_MERGED = "merged"  # the stronger reason stays; the new one is remembered in `reasons`
OUTCOME_UNCHANGED = "unchanged"
OUTCOME_REMOVED = "removed"
OUTCOME_FORCED = "removed_by_force"  # a complaint suppression removed with force=True

ACTION_ADD = "add"
ACTION_REMOVE = "remove"

_RANK = {REASON_SOFT_BOUNCE: 1, REASON_COMPLAINT: 2, REASON_BOUNCE: 3, REASON_MANUAL: 3}
# Optimistic concurrency: a write that lost a race re-reads and decides again.
SAVE_ATTEMPTS = 5
NOTE_LIMIT = 500
# The SES account-level list knows two reasons and blocks every email; only
# our suppressions that also block every email, for good, are mirrored there.
# A complaint is not: SES would then drop the password resets our policy lets through.
_SES_MIRROR_REASON = {REASON_BOUNCE: "BOUNCE", REASON_MANUAL: "BOUNCE"}


def scope_of(reason: str) -> str:
    """What a suppression for `reason` blocks: complaints let security and transactional mail through."""
    return SCOPE_NON_ESSENTIAL if reason == REASON_COMPLAINT else SCOPE_ALL


@dataclass(frozen=True)
class SoftBouncePolicy:
    """Suppress after `threshold` transient bounces within `window_seconds`, for `suppression_seconds`."""

    threshold: int = 3
    window_seconds: int = 7 * 86400
    suppression_seconds: int = 14 * 86400


@dataclass(frozen=True)
class SuppressionResult:
    """The entry as stored after a suppress() call, and what the call changed."""

    entry: SuppressionEntry
    outcome: str

    @property
    def changed(self) -> bool:
        """Whether the call started or extended a suppression (not merely noted a reason)."""
        return self.outcome in (OUTCOME_CREATED, OUTCOME_UPGRADED, OUTCOME_REFRESHED)


@dataclass(frozen=True)
class SoftBounceResult:
    """Soft bounces counted within the window, and the suppression they caused, if any."""

    count: int
    suppression: SuppressionResult | None = None


def _clean_note(note: str) -> str:
    # Notes are free text typed by people or built from SES diagnostics: keep addresses out.
    return scrub_addresses(note.strip())[:NOTE_LIMIT]


def _merge(existing: SuppressionEntry | None, incoming: SuppressionEntry, now: float) -> tuple[SuppressionEntry, str]:
    """The entry to store when `incoming` meets `existing`, and the outcome."""
    if existing is None or not existing.active(now):
        version = existing.version + 1 if existing is not None else 1
        return replace(incoming, version=version), OUTCOME_CREATED
    reasons = existing.reasons | {existing.reason, incoming.reason}
    if _RANK.get(incoming.reason, 3) > _RANK.get(existing.reason, 3):
        upgraded = replace(incoming, created_at=existing.created_at, reasons=reasons, version=existing.version + 1)
        return upgraded, OUTCOME_UPGRADED
    if incoming.reason == existing.reason == REASON_SOFT_BOUNCE and (incoming.expires_at or 0) > (
        existing.expires_at or 0
    ):
        refreshed = replace(
            existing,
            expires_at=incoming.expires_at,
            updated_at=incoming.updated_at,
            actor=incoming.actor,
            note=incoming.note,
            reasons=reasons,
            version=existing.version + 1,
        )
        return refreshed, OUTCOME_REFRESHED
    if reasons != existing.reasons:
        merged = replace(existing, reasons=reasons, updated_at=incoming.updated_at, version=existing.version + 1)
        return merged, OUTCOME_MERGED
    return existing, OUTCOME_UNCHANGED


class SuppressionService:
    """Adds, removes, checks and lists suppressions, and counts soft bounces, over a SuppressionLedger."""

    def __init__(
        self,
        ledger: SuppressionLedger,
        *,
        address_keys: AddressKeySource,
        mirror: SuppressionMirror | None = None,
        soft_bounce: SoftBouncePolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._address_keys = address_keys
        self._mirror = mirror
        self.soft_bounce = soft_bounce or SoftBouncePolicy()
        self._clock = clock

    def add(
        self, address: str, *, reason: str = REASON_MANUAL, actor: str, note: str = "", source: str = SOURCE_MANUAL
    ) -> SuppressionEntry:
        """Suppress an address by hand; returns the entry as stored (a stronger existing one stays)."""
        return self.suppress(address, reason=reason, actor=actor, note=note, source=source).entry

    def suppress(
        self,
        address: str,
        *,
        reason: str,
        actor: str,
        note: str = "",
        source: str,
        expires_at: int | None = None,
    ) -> SuppressionResult:
        """Suppress an address for `reason`, merging with what is stored; audited when anything changes."""
        if reason not in SUPPRESSION_REASONS:
            raise SuppressionError(f"unknown suppression reason {reason!r}; known: {', '.join(SUPPRESSION_REASONS)}")
        actor = self._actor(actor)
        normalized = normalize_address(address)
        now = self._clock()
        if reason == REASON_SOFT_BOUNCE and expires_at is None:
            expires_at = int(now + self.soft_bounce.suppression_seconds)
        note = _clean_note(note)
        forms = self._forms(normalized)
        incoming = SuppressionEntry(
            address_hash=forms[0],
            masked=mask_address(normalized),
            reason=reason,
            scope=scope_of(reason),
            created_at=now,
            expires_at=expires_at,
            source=source,
            reasons=frozenset({reason}),
            updated_at=now,
            actor=actor,
            note=note,
        )
        for _ in range(SAVE_ATTEMPTS):
            existing, found_under = self._find(forms)
            entry, outcome = _merge(existing, incoming, now)
            expected = existing.version if existing is not None else None
            if existing is not None and found_under != forms[0]:
                # Stored under an older key version: the change is a new item under the current key.
                entry, expected = replace(entry, address_hash=forms[0], version=1), None
            audit = AuditRecord(
                address_hash=entry.address_hash,
                at=now,
                action=ACTION_ADD,
                reason=reason,
                actor=actor,
                note=note,
                source=source,
                outcome=outcome,
                masked=entry.masked,
            )
            if outcome == OUTCOME_UNCHANGED:
                # Feedback redelivered by SQS changes nothing and says nothing; a person's request is recorded.
                if source == SOURCE_MANUAL:
                    self._ledger.append_audit(audit)
                break
            if self._ledger.write(entry, expected_version=expected, audit=audit):
                break
        else:
            raise TransientError("suppression_conflict", f"{incoming.masked}: suppression kept changing; retry")
        self._mirror_put(normalized, entry)
        return SuppressionResult(entry=entry, outcome=outcome)

    def record_soft_bounce(
        self, address: str, *, key: str, at: float, actor: str, note: str = "", source: str
    ) -> SoftBounceResult:
        """Count one transient bounce (once per `key`); at the threshold within the window, suppress as SOFT_BOUNCE."""
        normalized = normalize_address(address)
        now = self._clock()
        policy = self.soft_bounce
        current, *older = self._forms(normalized)
        times = self._ledger.add_soft_bounce(
            current, key=key, at=at, expires_at=int(max(now, at) + policy.window_seconds)
        )
        for form in older:  # counted before the key changed
            times += self._ledger.soft_bounce_times(form)
        # The window is measured between bounces, not from now: replayed or late feedback counts the same.
        count = sum(1 for t in times if at - policy.window_seconds < t <= at)
        if count < policy.threshold:
            return SoftBounceResult(count=count)
        why = f"{count} soft bounces within {policy.window_seconds // 86400} days"
        result = self.suppress(
            normalized,
            reason=REASON_SOFT_BOUNCE,
            actor=actor,
            note=f"{why}; {note}" if note else why,
            source=source,
        )
        return SoftBounceResult(count=count, suppression=result)

    def remove(self, address: str, *, actor: str, note: str = "", force: bool = False) -> SuppressionEntry:
        """Lift an address's suppression, audited; a complaint needs `force=True`. Returns the removed entry."""
        actor = self._actor(actor)
        normalized = normalize_address(address)
        forms = self._forms(normalized)
        note = _clean_note(note)
        removed: SuppressionEntry | None = None
        # An address has one entry, but it may still sit under an older key version too: lift each.
        for form in forms:
            for _ in range(SAVE_ATTEMPTS):
                now = self._clock()
                entry = self._ledger.get(form)
                if entry is None or not entry.active(now):
                    break
                complained = REASON_COMPLAINT in entry.reasons | {entry.reason}
                if complained and not force:
                    raise ComplaintRemovalError(entry.masked)
                audit = AuditRecord(
                    address_hash=form,
                    at=now,
                    action=ACTION_REMOVE,
                    reason=entry.reason,
                    actor=actor,
                    note=note,
                    source=SOURCE_MANUAL,
                    outcome=OUTCOME_FORCED if complained else OUTCOME_REMOVED,
                    masked=entry.masked,
                )
                if self._ledger.delete(form, expected_version=entry.version, audit=audit):
                    removed = removed or entry
                    break
            else:
                raise TransientError("suppression_conflict", f"{mask_address(normalized)}: suppression kept changing")
        if removed is None:
            raise NotSuppressedError(mask_address(normalized))
        # A fresh start: old soft bounces must not re-suppress the address on its next one.
        for form in forms:
            self._ledger.reset_soft_bounces(form)
        if self._mirror is not None:
            self._mirror.delete(normalized)
        return removed

    def check(self, address: str) -> SuppressionEntry | None:
        """The address's active suppression, or None (an expired soft bounce no longer counts)."""
        now = self._clock()
        for form in self._forms(normalize_address(address)):
            entry = self._ledger.get(form)
            if entry is not None and entry.active(now):
                return entry
        return None

    def history(self, address: str) -> builtins.list[AuditRecord]:
        """Every audited change to the address's suppression, oldest first, including removed ones."""
        records = [record for form in self._forms(normalize_address(address)) for record in self._ledger.audit(form)]
        return sorted(records, key=lambda record: record.at)

    def _forms(self, normalized: str) -> tuple[str, ...]:
        """The keys the address may be stored under: the current key version first."""
        return self._address_keys.hasher().address_hashes(normalized)

    def _find(self, forms: tuple[str, ...]) -> tuple[SuppressionEntry | None, str]:
        """The entry stored under the newest form that has one, and that form."""
        for form in forms:
            entry = self._ledger.get(form)
            if entry is not None:
                return entry, form
        return None, forms[0]

    def list(self, *, limit: int = 100) -> builtins.list[SuppressionEntry]:
        """Active suppressions, newest first, at most `limit`."""
        if limit < 1:
            raise SuppressionError("limit must be at least 1")
        entries = self._ledger.entries(limit=limit, now=self._clock())
        return sorted(entries, key=lambda entry: entry.created_at, reverse=True)[:limit]

    @staticmethod
    def _actor(actor: str) -> str:
        cleaned = _clean_note(actor or "")
        if not cleaned:
            raise SuppressionError("a suppression change needs an actor: who is making it")
        return cleaned[:200]

    def _mirror_put(self, normalized: str, entry: SuppressionEntry) -> None:
        reason = _SES_MIRROR_REASON.get(entry.reason)
        if self._mirror is not None and reason is not None and entry.expires_at is None:
            self._mirror.put(normalized, reason)
