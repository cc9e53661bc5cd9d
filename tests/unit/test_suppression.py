"""The suppression lifecycle (mailwright.suppression) on in-memory fakes: reasons, precedence, audit, soft bounces."""

from __future__ import annotations

from typing import Any

import pytest

from mailwright.address_keys import AddressHasher, legacy_address_hash
from mailwright.errors import ComplaintRemovalError, NotSuppressedError, SuppressionError, TransientError
from mailwright.ports import SCOPE_ALL, SCOPE_NON_ESSENTIAL, AuditRecord, SuppressionEntry
from mailwright.suppression import SoftBouncePolicy, SuppressionService, scope_of
from mailwright_tools.fakes import (
    FAKE_ADDRESS_KEYRING,
    FAKE_HASHER,
    FakeClock,
    FakeSuppressionLedger,
    FakeSuppressionMirror,
    FakeSuppressionStore,
    StaticAddressKeys,
)

DAY = 86400
JANE = "jane@example.com"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger() -> FakeSuppressionLedger:
    return FakeSuppressionLedger()


@pytest.fixture
def service(ledger: FakeSuppressionLedger, clock: FakeClock) -> SuppressionService:
    return SuppressionService(ledger, address_keys=StaticAddressKeys(), clock=clock)


def test_add_stores_a_hash_and_a_masked_form_never_the_address(
    service: SuppressionService, ledger: FakeSuppressionLedger
) -> None:
    entry = service.add(" Jane@Example.COM ", actor="ops@example.com", note="asked by phone")

    assert entry.address_hash == FAKE_HASHER.address_hash(JANE)
    assert entry.masked == "j***@example.com"
    assert (entry.reason, entry.scope, entry.expires_at, entry.source) == ("MANUAL", SCOPE_ALL, None, "manual")
    assert service.check(JANE) == entry
    stored = repr(ledger.items) + repr(ledger.trails)
    assert JANE not in stored and "ops@example.com" not in stored  # the actor's address is masked too


def test_every_add_and_remove_is_audited_and_the_trail_outlives_the_suppression(service: SuppressionService) -> None:
    service.add(JANE, actor="alice", note="typo in signup")
    removed = service.remove(JANE, actor="bob", note="fixed")

    assert removed.reason == "MANUAL"
    assert service.check(JANE) is None
    trail = service.history(JANE)
    assert [(r.action, r.actor, r.note, r.outcome) for r in trail] == [
        ("add", "alice", "typo in signup", "created"),
        ("remove", "bob", "fixed", "removed"),
    ]
    assert all(isinstance(r, AuditRecord) and r.at > 0 for r in trail)


def test_complaint_blocks_only_non_essential_mail(service: SuppressionService) -> None:
    entry = service.add(JANE, reason="COMPLAINT", actor="ses-feedback")

    assert entry.scope == SCOPE_NON_ESSENTIAL
    suppression = entry.as_suppression()
    assert suppression.blocks("marketing", now=0) and not suppression.blocks("security", now=0)


def test_removing_a_complaint_needs_force(service: SuppressionService) -> None:
    service.add(JANE, reason="COMPLAINT", actor="ses-feedback")

    with pytest.raises(ComplaintRemovalError):
        service.remove(JANE, actor="ops")
    assert service.check(JANE) is not None

    service.remove(JANE, actor="ops", note="user asked to resubscribe", force=True)
    assert service.check(JANE) is None
    assert service.history(JANE)[-1].outcome == "removed_by_force"


def test_a_complaint_remembered_under_a_stronger_reason_still_needs_force(service: SuppressionService) -> None:
    service.add(JANE, reason="BOUNCE", actor="ses-feedback")
    entry = service.add(JANE, reason="COMPLAINT", actor="ses-feedback")

    # The bounce (blocks everything) stays; the complaint is remembered.
    assert entry.reason == "BOUNCE" and entry.scope == SCOPE_ALL
    assert entry.reasons == {"BOUNCE", "COMPLAINT"}
    with pytest.raises(ComplaintRemovalError):
        service.remove(JANE, actor="ops")


def test_a_stronger_reason_upgrades_a_weaker_one(service: SuppressionService) -> None:
    soft = service.suppress(JANE, reason="SOFT_BOUNCE", actor="ses-feedback", source="ses:bounce")
    complaint = service.suppress(JANE, reason="COMPLAINT", actor="ses-feedback", source="ses:complaint")
    bounce = service.suppress(JANE, reason="BOUNCE", actor="ses-feedback", source="ses:bounce")

    assert (soft.outcome, complaint.outcome, bounce.outcome) == ("created", "upgraded", "upgraded")
    assert bounce.entry.expires_at is None and bounce.entry.scope == SCOPE_ALL
    assert bounce.entry.created_at == soft.entry.created_at
    # A weaker reason never downgrades a stronger one.
    again = service.suppress(JANE, reason="SOFT_BOUNCE", actor="ses-feedback", source="ses:bounce")
    assert again.entry.reason == "BOUNCE" and not again.changed


def test_repeating_the_same_feedback_changes_nothing_and_writes_no_audit(
    service: SuppressionService, ledger: FakeSuppressionLedger
) -> None:
    service.suppress(JANE, reason="BOUNCE", actor="ses-feedback", source="ses:bounce")
    result = service.suppress(JANE, reason="BOUNCE", actor="ses-feedback", source="ses:bounce")

    assert result.outcome == "unchanged"
    assert len(service.history(JANE)) == 1
    assert ledger.calls["write"] == 1


def test_a_manual_add_on_a_suppressed_address_is_still_audited(service: SuppressionService) -> None:
    service.add(JANE, actor="alice")
    service.add(JANE, actor="bob", note="again")

    assert [(r.actor, r.outcome) for r in service.history(JANE)] == [("alice", "created"), ("bob", "unchanged")]


def test_remove_of_an_address_that_is_not_suppressed(service: SuppressionService) -> None:
    with pytest.raises(NotSuppressedError, match=r"j\*\*\*@example.com"):
        service.remove(JANE, actor="ops")


def test_changes_need_an_actor_and_a_known_reason(service: SuppressionService) -> None:
    with pytest.raises(SuppressionError, match="actor"):
        service.add(JANE, actor="  ")
    with pytest.raises(SuppressionError, match="unknown suppression reason"):
        service.add(JANE, reason="SPAM", actor="ops")


def test_soft_bounces_suppress_at_the_threshold_within_the_window_and_expire(
    service: SuppressionService, clock: FakeClock
) -> None:
    now = clock()
    # Two soft bounces a week apart: never three within 7 days.
    assert service.record_soft_bounce(JANE, key="a", at=now - 8 * DAY, actor="f", source="s").suppression is None
    assert service.record_soft_bounce(JANE, key="b", at=now - 2 * DAY, actor="f", source="s").suppression is None
    second = service.record_soft_bounce(JANE, key="c", at=now - DAY, actor="f", source="s")
    assert second.count == 2 and second.suppression is None

    third = service.record_soft_bounce(JANE, key="d", at=now, actor="f", source="s")

    assert third.count == 3 and third.suppression is not None
    entry = third.suppression.entry
    assert entry.reason == "SOFT_BOUNCE" and entry.scope == SCOPE_ALL
    assert entry.expires_at == int(now + 14 * DAY)
    assert service.check(JANE) == entry
    clock.advance(14 * DAY + 1)
    assert service.check(JANE) is None  # expired, even before TTL deletes it


def test_a_redelivered_soft_bounce_is_counted_once(service: SuppressionService, clock: FakeClock) -> None:
    for _ in range(5):
        result = service.record_soft_bounce(JANE, key="same-feedback-id", at=clock(), actor="f", source="s")

    assert result.count == 1 and result.suppression is None


def test_soft_bounce_policy_is_configurable(ledger: FakeSuppressionLedger, clock: FakeClock) -> None:
    service = SuppressionService(
        ledger,
        address_keys=StaticAddressKeys(),
        clock=clock,
        soft_bounce=SoftBouncePolicy(threshold=2, window_seconds=DAY, suppression_seconds=3 * DAY),
    )
    service.record_soft_bounce(JANE, key="a", at=clock() - 2 * DAY, actor="f", source="s")
    assert service.record_soft_bounce(JANE, key="b", at=clock(), actor="f", source="s").suppression is None
    result = service.record_soft_bounce(JANE, key="c", at=clock(), actor="f", source="s")

    assert result.suppression is not None and result.suppression.entry.expires_at == int(clock() + 3 * DAY)


def test_another_soft_bounce_while_suppressed_extends_it(service: SuppressionService, clock: FakeClock) -> None:
    for key in "abc":
        service.record_soft_bounce(JANE, key=key, at=clock(), actor="f", source="s")
    clock.advance(DAY)
    result = service.record_soft_bounce(JANE, key="d", at=clock(), actor="f", source="s")

    assert result.suppression is not None and result.suppression.outcome == "refreshed"
    assert result.suppression.entry.expires_at == int(clock() + 14 * DAY)


def test_removing_a_soft_bounce_suppression_forgets_the_count(service: SuppressionService, clock: FakeClock) -> None:
    for key in "abc":
        service.record_soft_bounce(JANE, key=key, at=clock(), actor="f", source="s")
    service.remove(JANE, actor="ops")

    result = service.record_soft_bounce(JANE, key="d", at=clock(), actor="f", source="s")

    assert result.count == 1 and service.check(JANE) is None


def test_list_shows_active_entries_newest_first(service: SuppressionService, clock: FakeClock) -> None:
    service.add("anna@example.com", actor="ops")
    clock.advance(10)
    service.add("bert@example.com", reason="SOFT_BOUNCE", actor="ops")
    clock.advance(10)
    service.add("cleo@example.com", reason="COMPLAINT", actor="ops")

    assert [e.masked for e in service.list()] == ["c***@example.com", "b***@example.com", "a***@example.com"]
    assert len(service.list(limit=1)) == 1
    clock.advance(15 * DAY)
    assert [e.masked for e in service.list()] == ["c***@example.com", "a***@example.com"]


def test_notes_never_keep_an_address(service: SuppressionService) -> None:
    service.add(JANE, actor="ops", note="requested by jane@example.com via <support@example.org>")

    (record,) = service.history(JANE)
    assert record.note == "requested by j***@example.com via <s***@example.org>"


def test_a_concurrent_write_is_retried_against_the_new_state(ledger: FakeSuppressionLedger, clock: FakeClock) -> None:
    service = SuppressionService(ledger, address_keys=StaticAddressKeys(), clock=clock)
    original = ledger.write
    raced = []

    def racing_write(entry: SuppressionEntry, *, expected_version: int | None, audit: AuditRecord) -> bool:
        if not raced:  # another worker suppresses the address just before us
            raced.append(True)
            other = SuppressionEntry(
                address_hash=entry.address_hash, masked=entry.masked, reason="BOUNCE", scope=SCOPE_ALL, created_at=1.0
            )
            original(other, expected_version=None, audit=audit)
        return original(entry, expected_version=expected_version, audit=audit)

    ledger.write = racing_write  # type: ignore[method-assign]
    result = service.suppress(JANE, reason="COMPLAINT", actor="f", source="s")

    # The complaint did not overwrite the bounce that won the race; it is remembered instead.
    assert result.entry.reason == "BOUNCE" and "COMPLAINT" in result.entry.reasons


def test_a_write_that_keeps_losing_is_a_transient_error(ledger: FakeSuppressionLedger) -> None:
    service = SuppressionService(ledger, address_keys=StaticAddressKeys())
    ledger.write = lambda *args, **kwargs: False  # type: ignore[method-assign]

    with pytest.raises(TransientError):
        service.add(JANE, actor="ops")


def test_the_send_worker_sees_what_the_service_suppresses(clock: FakeClock) -> None:
    store = FakeSuppressionStore()
    service = SuppressionService(FakeSuppressionLedger(store), address_keys=StaticAddressKeys(), clock=clock)
    service.add(JANE, reason="COMPLAINT", actor="f")

    seen = store.get_many({FAKE_HASHER.address_hash(JANE)})[FAKE_HASHER.address_hash(JANE)]
    assert (seen.reason, seen.scope) == ("COMPLAINT", SCOPE_NON_ESSENTIAL)
    service.remove(JANE, actor="ops", force=True)
    assert store.get_many({FAKE_HASHER.address_hash(JANE)}) == {}


class TestMirror:
    """The SES account-level list gets what blocks every email for good, and loses what is removed."""

    @pytest.fixture
    def mirror(self) -> FakeSuppressionMirror:
        return FakeSuppressionMirror()

    @pytest.fixture
    def mirrored(self, ledger: FakeSuppressionLedger, mirror: FakeSuppressionMirror) -> SuppressionService:
        return SuppressionService(ledger, address_keys=StaticAddressKeys(), mirror=mirror)

    def test_bounces_and_manual_suppressions_are_mirrored(
        self, mirrored: SuppressionService, mirror: FakeSuppressionMirror
    ) -> None:
        mirrored.add(" Jane@Example.com", reason="BOUNCE", actor="f")
        mirrored.add("bob@example.com", actor="ops")

        assert mirror.listed == {JANE: "BOUNCE", "bob@example.com": "BOUNCE"}

    def test_complaints_and_soft_bounces_are_not(
        self, mirrored: SuppressionService, mirror: FakeSuppressionMirror
    ) -> None:
        # SES's list blocks every email: a mirrored complaint would stop password resets too,
        # and SES entries never expire.
        mirrored.add(JANE, reason="COMPLAINT", actor="f")
        mirrored.add("bob@example.com", reason="SOFT_BOUNCE", actor="f")

        assert mirror.listed == {}

    def test_removal_is_mirrored(self, mirrored: SuppressionService, mirror: FakeSuppressionMirror) -> None:
        mirrored.add(JANE, reason="BOUNCE", actor="f")
        mirrored.remove(JANE, actor="ops")

        assert mirror.listed == {} and mirror.calls["delete"] == 1


# -- suppressions stored under an older address-key version ----------------------

LEGACY_READABLE = AddressHasher(FAKE_ADDRESS_KEYRING, readable_from=0)


def _legacy_entry(address: str, reason: str, **changes: Any) -> SuppressionEntry:
    """An entry as a release before keyed hashes stored it: under the plain SHA-256."""
    return SuppressionEntry(
        address_hash=legacy_address_hash(address),
        masked="j***@example.com",
        reason=reason,
        scope=scope_of(reason),
        created_at=1.0,
        reasons=frozenset({reason}),
        version=1,
        **changes,
    )


@pytest.fixture
def upgraded(ledger: FakeSuppressionLedger, clock: FakeClock) -> SuppressionService:
    """A service whose key version 1 is current while legacy hashes are still readable (before the migration)."""
    ledger.items[legacy_address_hash(JANE)] = _legacy_entry(JANE, "BOUNCE")
    return SuppressionService(ledger, address_keys=StaticAddressKeys(LEGACY_READABLE), clock=clock)


def test_a_legacy_suppression_still_counts(upgraded: SuppressionService) -> None:
    found = upgraded.check(JANE)
    assert found is not None and found.reason == "BOUNCE"


def test_a_change_to_a_legacy_suppression_is_written_under_the_current_key(
    upgraded: SuppressionService, ledger: FakeSuppressionLedger
) -> None:
    upgraded.add(JANE, reason="COMPLAINT", actor="feedback", source="ses")

    current = LEGACY_READABLE.address_hash(JANE)
    written = ledger.items[current]
    # The stronger reason stays and the new one is remembered, exactly as for one key.
    assert (written.reason, written.reasons) == ("BOUNCE", frozenset({"BOUNCE", "COMPLAINT"}))
    assert [r.outcome for r in upgraded.history(JANE)] == ["merged"]
    # The feedback function deletes nothing: the old item stays until the migration folds it in.
    assert legacy_address_hash(JANE) in ledger.items
    assert upgraded.check(JANE) == written


def test_lifting_removes_the_legacy_entry_too(upgraded: SuppressionService, ledger: FakeSuppressionLedger) -> None:
    removed = upgraded.remove(JANE, actor="ops", note="asked by phone")

    assert removed.reason == "BOUNCE"
    assert upgraded.check(JANE) is None and ledger.items == {}
    assert [r.action for r in upgraded.history(JANE)] == ["remove"]


def test_a_legacy_complaint_still_needs_force(ledger: FakeSuppressionLedger, clock: FakeClock) -> None:
    ledger.items[legacy_address_hash(JANE)] = _legacy_entry(JANE, "COMPLAINT")
    service = SuppressionService(ledger, address_keys=StaticAddressKeys(LEGACY_READABLE), clock=clock)
    with pytest.raises(ComplaintRemovalError):
        service.remove(JANE, actor="ops")
    assert service.check(JANE) is not None


def test_soft_bounces_counted_before_the_key_changed_still_count(
    ledger: FakeSuppressionLedger, clock: FakeClock
) -> None:
    ledger.soft_bounces[legacy_address_hash(JANE)] = {"b1": clock() - 60, "b2": clock() - 30}
    service = SuppressionService(ledger, address_keys=StaticAddressKeys(LEGACY_READABLE), clock=clock)

    result = service.record_soft_bounce(JANE, key="b3", at=clock(), actor="feedback", source="ses")

    assert result.count == 3 and result.suppression is not None
    assert service.check(JANE) is not None and service.check(JANE).reason == "SOFT_BOUNCE"  # type: ignore[union-attr]


def test_once_migrated_legacy_hashes_are_not_read(ledger: FakeSuppressionLedger, clock: FakeClock) -> None:
    ledger.items[legacy_address_hash(JANE)] = _legacy_entry(JANE, "BOUNCE")
    service = SuppressionService(ledger, address_keys=StaticAddressKeys(), clock=clock)
    ledger.reset_calls()
    assert service.check(JANE) is None
    assert ledger.calls["get"] == 1
