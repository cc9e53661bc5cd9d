"""A/B variants: the template format, rendering and checks, assignment, the pipeline stage, the switch-off."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mailwright.address_keys import AddressHasher, AddressKeyring
from mailwright.errors import ConfigurationError, TemplateFormatError
from mailwright.feedback import FeedbackService
from mailwright.observability import batch_metrics, feedback_metrics
from mailwright.ports import Outcome
from mailwright.suppression import SuppressionService
from mailwright.templates import (
    LocaleParts,
    Renderer,
    TemplateBundle,
    TemplateMetadata,
    VariantSpec,
    load_template_dir,
    write_template_dir,
)
from mailwright.variants import (
    REASON_COMPLAINTS,
    REASON_RENDER_FAILURES,
    VariantCounts,
    VariantPolicy,
    VariantService,
    assign,
)
from mailwright_tools.fakes import (
    FAKE_HASHER,
    FakeClock,
    FakeFeedbackLog,
    FakeSuppressionLedger,
    FakeTemplateSource,
    FakeVariantLedger,
    StaticAddressKeys,
    build_fake_service,
    queue_record,
)
from mailwright_tools.template_checks import check_bundle
from tests.events import aimed, load_event

TWO = (VariantSpec(name="control", weight=1), VariantSpec(name="short", weight=1))


def bundle(*, variants: tuple[VariantSpec, ...] = TWO, category: str = "transactional", **own: Any) -> TemplateBundle:
    """A template with two variants; `short` has its own subject (and whatever `own` adds)."""
    return TemplateBundle(
        template_id="promo",
        metadata=TemplateMetadata(
            category=category,  # type: ignore[arg-type]
            required_variables=("name",),
            sample_data={"name": "Jane"},
            variants=variants,
        ),
        locales={
            "en": LocaleParts(
                subject="Hello {{ name }}",
                html="<p>Hi {{ name }}</p>",
                text="Hi {{ name }}",
                variants={"short": {"subject": "Hi {{ name }}!", **own}},
            )
        },
    )


# -- the format -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ([{"name": "only"}], "at least two"),
        ([{"name": "a"}, {"name": "a"}], "more than once"),
        ([{"name": "a", "weight": 0}, {"name": "b", "weight": 0}], "weight above 0"),
        ([{"name": "A b"}, {"name": "c"}], "pattern"),
        ([{"name": "a", "weight": -1}, {"name": "b"}], "greater than or equal"),
    ],
)
def test_bad_variant_declarations_are_refused(variants: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TemplateMetadata.model_validate({"category": "transactional", "variants": variants})


def test_a_bundle_without_variants_serialises_as_before() -> None:
    plain = TemplateBundle(
        template_id="t",
        metadata=TemplateMetadata(category="transactional"),
        locales={"en": LocaleParts(subject="s", html="h", text="t")},
    )

    assert "variants" not in plain.to_json()
    assert '"variants"' in bundle().to_json()
    assert TemplateBundle.model_validate_json(bundle().to_json()) == bundle()


def test_variant_files_load_from_the_locale_directory(tmp_path: Path) -> None:
    written = bundle(html="<p>Hey {{ name }}</p>")
    write_template_dir(written, tmp_path / "promo")

    assert sorted(p.name for p in (tmp_path / "promo" / "en").iterdir()) == [
        "body.html",
        "body.short.html",
        "body.txt",
        "subject.short.txt",
        "subject.txt",
    ]
    loaded = load_template_dir(tmp_path / "promo", shared={})
    assert loaded.locales["en"].variants == {"short": {"subject": "Hi {{ name }}!", "html": "<p>Hey {{ name }}</p>"}}
    assert loaded.metadata.variant_names == ("control", "short")


def test_a_variant_file_of_an_undeclared_variant_is_an_error(tmp_path: Path) -> None:
    write_template_dir(bundle(), tmp_path / "promo")
    (tmp_path / "promo" / "en" / "subject.urgent.txt").write_text("Now!", encoding="utf-8")

    with pytest.raises(TemplateFormatError, match=r"subject\.urgent\.txt: variant 'urgent' is not declared"):
        load_template_dir(tmp_path / "promo", shared={})


def test_a_variant_renders_its_own_parts_and_the_locales_for_the_rest() -> None:
    renderer = Renderer()
    template = bundle()

    control = renderer.render(template, locale="en", data={"name": "Jo"}, provided={}, variant="control")
    short = renderer.render(template, locale="en", data={"name": "Jo"}, provided={}, variant="short")

    assert (control.subject, short.subject) == ("Hello Jo", "Hi Jo!")
    assert control.html == short.html == "<p>Hi Jo</p>"


def test_checks_name_the_variant_file_at_fault() -> None:
    broken = bundle(text="Hi {{ nme }}")

    checks = check_bundle(broken, postal_address="1 Street", base_url="https://example.com/u")

    by_variant = {check.variant: check for check in checks}
    assert set(by_variant) == {None, "short"}
    assert by_variant[None].ok
    assert any(p.file == "promo/en/body.short.txt" and "'nme'" in p.message for p in by_variant["short"].problems)


# -- assignment -----------------------------------------------------------------------------------


def draws(count: int, template_id: str = "promo") -> list[float]:
    """Keyed draws of `count` distinct recipients, as the worker makes them."""
    return [FAKE_HASHER.fraction("variant", f"{template_id}\0user-{n}") for n in range(count)]


def test_assignment_follows_the_weights() -> None:
    weighted = (VariantSpec(name="a", weight=3), VariantSpec(name="b", weight=1))

    counts = Counter(assign(weighted, point) for point in draws(4000))

    assert counts["a"] / 4000 == pytest.approx(0.75, abs=0.03)


def test_draws_are_stable_keyed_and_independent_per_template() -> None:
    assert draws(50) == draws(50)
    # Another key draws otherwise: without the key nobody can work out who gets which variant.
    rekeyed = AddressHasher(AddressKeyring(keys={1: b"another-key-of-16-bytes+"}, current=1))
    assert FAKE_HASHER.fraction("variant", "promo\0u") != rekeyed.fraction("variant", "promo\0u")
    # Another template draws independently: knowing one assignment tells nothing of the other.
    assert abs(statistics.correlation(draws(500, "promo"), draws(500, "other"))) < 0.15


def test_a_switched_off_variant_moves_only_its_own_recipients() -> None:
    three = (VariantSpec(name="a"), VariantSpec(name="b"), VariantSpec(name="c", weight=2))
    points = draws(3000)

    before = [assign(three, point) for point in points]
    after = [assign(three, point, off={"b"}) for point in points]

    assert "b" not in after
    assert all(x == y for x, y in zip(before, after, strict=True) if x != "b")
    moved = Counter(y for x, y in zip(before, after, strict=True) if x == "b")
    assert moved["c"] / sum(moved.values()) == pytest.approx(2 / 3, abs=0.06)  # by the remaining weights
    assert assign(three, 0.5, off={"a", "b", "c"}) is None


# -- the policy and the switch ------------------------------------------------------------------------


def test_the_policy_parses_and_refuses_nonsense() -> None:
    policy = VariantPolicy(max_complaint_rate=0.01, min_volume=10, cache_seconds=5)
    assert VariantPolicy.from_json(policy.to_json()) == policy
    assert VariantPolicy.from_json("") == VariantPolicy()
    for raw in ('{"max_complaint_rate": 0}', '{"min_volume": 0}', '{"colour": 1}', "[1]", "{"):
        with pytest.raises(ConfigurationError, match="MAILWRIGHT_VARIANTS"):
            VariantPolicy.from_json(raw)


def test_verdicts_wait_for_the_minimum_volume() -> None:
    service = VariantService(FakeVariantLedger(), VariantPolicy(min_volume=100))

    assert service.verdict(VariantCounts(sent=99, complaints=50)) is None
    assert service.verdict(VariantCounts(sent=100, complaints=1)) == REASON_COMPLAINTS
    assert service.verdict(VariantCounts(sent=1000, complaints=3)) is None  # 0.3%: not above
    assert service.verdict(VariantCounts(sent=95, render_failures=5)) == REASON_RENDER_FAILURES


def test_complaints_switch_a_variant_off_once_and_never_the_last() -> None:
    ledger = FakeVariantLedger()
    service = VariantService(ledger, VariantPolicy(min_volume=10, cache_seconds=60))
    ledger.add(
        "promo", {"control": VariantCounts(sent=10), "short": VariantCounts(sent=10)}, names=("control", "short")
    )

    first = service.count_complaint("promo", "short")
    again = service.count_complaint("promo", "short")
    last = service.count_complaint("promo", "control")

    assert [(s.variant, s.reason, s.enabled) for s in first] == [("short", REASON_COMPLAINTS, False)]
    assert again == []  # already off: reported once
    assert last == []  # the last variant on stays on
    state = ledger.read("promo")
    assert set(state.off) == {"short"} and state.off["short"].note == "1 complaints in 10 sent"
    assert state.count("control").complaints == 1


# -- the pipeline -------------------------------------------------------------------------------------


def request(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "recipient_email": f"user{n}@example.com",
        "template_id": "promo",
        "template_data": {"name": "Jo"},
        **fields,
    }


def test_the_worker_records_the_variant_in_the_log_and_the_ses_tags() -> None:
    ledger = FakeVariantLedger()
    service, world = build_fake_service(
        templates=FakeTemplateSource([bundle()]), variants=VariantService(ledger, VariantPolicy(min_volume=10_000))
    )
    try:
        report = service.process([queue_record(request(n), message_id=f"m{n}") for n in range(40)])
    finally:
        world.close()

    by_id = {o.request_id: o for o in report.outcomes}
    assert {o.status for o in by_id.values()} == {"sent"} and len(by_id) == 40
    assert Counter(o.variant for o in by_id.values()).keys() == {"control", "short"}
    for email in world.sender.sent:
        tags = dict(email.tags)
        expected = "Hi Jo!" if tags["variant"] == "short" else "Hello Jo"
        assert email.subject == expected
        assert by_id[tags["request_id"]].variant == tags["variant"]
    assert world.message_log.get(report.outcomes[0].request_id)["variant"] == report.outcomes[0].variant  # type: ignore[index]
    # Counted once for the batch, per variant, with the names the ledger needs for its verdicts.
    state = ledger.read("promo")
    assert state.names == ("control", "short")
    assert state.count("control").sent + state.count("short").sent == 40 and ledger.writes == 1


def test_the_same_recipient_gets_the_same_variant_every_time() -> None:
    service, world = build_fake_service(templates=FakeTemplateSource([bundle()]))
    try:
        first = service.process([queue_record(request(n, idempotency_key=f"a{n}")) for n in range(20)])
        second = service.process([queue_record(request(n, idempotency_key=f"b{n}")) for n in range(20)])
        by_user = service.process([queue_record(request(n, idempotency_key=f"c{n}", user_id="u-7")) for n in range(20)])
    finally:
        world.close()

    assert [o.variant for o in first.outcomes] == [o.variant for o in second.outcomes]
    assert len({o.variant for o in by_user.outcomes}) == 1  # one user id, whatever the address


def test_a_variant_that_fails_to_render_is_switched_off_and_its_mail_goes_to_the_other() -> None:
    ledger = FakeVariantLedger()
    variants = VariantService(ledger, VariantPolicy(min_volume=10, cache_seconds=0))
    broken = bundle(text="Hi {{ missing_thing }}")  # `short` fails for every request
    service, world = build_fake_service(templates=FakeTemplateSource([broken]), variants=variants)
    try:
        first = service.process([queue_record(request(n), message_id=f"m{n}") for n in range(30)])
        later = service.process([queue_record(request(n, idempotency_key=f"k{n}")) for n in range(30)])
    finally:
        world.close()

    failed = [o for o in first.outcomes if o.status == "rejected"]
    assert (
        failed and {o.variant for o in failed} == {"short"} and {o.reason_code for o in failed} == {"missing_variable"}
    )
    assert [(s.variant, s.reason) for s in first.variant_switches] == [("short", REASON_RENDER_FAILURES)]
    assert {o.status for o in later.outcomes} == {"sent"} and {o.variant for o in later.outcomes} == {"control"}
    metrics = {
        (tuple(sorted(dims.items())), value.name): value.value
        for dims, values in batch_metrics(first, lane="standard", now=0).groups()
        for value in values
    }
    assert metrics[((), "VariantDisabled")] == 1
    assert metrics[((("template", "promo"), ("variant", "short")), "VariantDisabled")] == 1
    assert metrics[((("template", "promo"), ("variant", "short")), "VariantRenderFailed")] == len(failed)


def test_a_ledger_that_cannot_be_read_retries_the_request_rather_than_guessing() -> None:
    ledger = FakeVariantLedger()
    ledger.failures["read"] = RuntimeError("dynamodb down")
    service, world = build_fake_service(templates=FakeTemplateSource([bundle()]), variants=VariantService(ledger))
    try:
        report = service.process([queue_record(request(1), message_id="m1")])
    finally:
        world.close()

    assert report.failed == ["m1"] and report.retry_reasons["m1"] == "variant_state_unavailable"
    assert world.sender.sent == []


def test_producers_cannot_set_the_variant_tag() -> None:
    service, world = build_fake_service(templates=FakeTemplateSource([bundle()]))
    try:
        report = service.process([queue_record(request(1, metadata={"variant": "short"}))])
    finally:
        world.close()

    assert report.outcomes[0].status == "rejected" and "reserved" in (report.outcomes[0].reason or "")


# -- feedback -----------------------------------------------------------------------------------------


class Feedback:
    """A feedback service on fakes with one request sent with variant `short` of `promo`."""

    REQUEST = "0123456789abcdef0123456789abcdef"
    SES_ID = "010001234567abcd-feedface-0000-0000-0000-000000000000-000000"

    def __init__(self, ledger: FakeVariantLedger) -> None:
        self.log = FakeFeedbackLog()
        suppressions = SuppressionService(
            FakeSuppressionLedger(), address_keys=StaticAddressKeys(), clock=FakeClock(start=1_700_000_000.0)
        )
        policy = VariantPolicy(min_volume=1, max_complaint_rate=0.5)
        self.service = FeedbackService(suppressions=suppressions, log=self.log, variants=VariantService(ledger, policy))
        self.log.message_log.record(
            [
                Outcome(
                    request_id=self.REQUEST,
                    status="sent",
                    lane="bulk",
                    ses_message_id=self.SES_ID,
                    completed_at=1.0,
                    template_id="promo",
                    variant="short",
                )
            ]
        )

    def event(self, name: str, at: str | None = None, **tags: str) -> dict[str, Any]:
        event = aimed(load_event(name), ses_message_id=self.SES_ID, request_id=self.REQUEST)
        event["mail"]["tags"].update({key: [value] for key, value in tags.items()})
        if at is not None:
            event[{"Open": "open", "Complaint": "complaint", "Delivery": "delivery"}[event["eventType"]]][
                "timestamp"
            ] = at
        return event


def test_feedback_counts_the_first_event_of_each_status_per_variant() -> None:
    ledger = FakeVariantLedger()
    ledger.add("promo", {"short": VariantCounts(sent=1), "control": VariantCounts(sent=1)}, names=("control", "short"))
    world = Feedback(ledger)
    tags = {"template": "promo", "variant": "short"}

    report = world.service.process_events(
        [
            world.event("event-delivery", **tags),
            world.event("event-open", **tags),
            world.event("event-open", at="2017-08-09T22:00:00.000Z", **tags),  # a second open: not counted
            world.event("event-complaint", **tags),
        ]
    )

    assert report.processed == 4
    assert report.variant_events == Counter(
        {("promo", "short", "delivered"): 1, ("promo", "short", "opened"): 1, ("promo", "short", "complained"): 1}
    )
    assert ledger.read("promo").count("short").complaints == 1
    assert [(s.variant, s.reason) for s in report.variant_switches] == [("short", REASON_COMPLAINTS)]
    metrics = {
        (dims.get("variant"), value.name): value.value
        for dims, values in feedback_metrics(report).groups()
        for value in values
    }
    assert metrics[("short", "VariantOpened")] == 1 and metrics[("short", "VariantComplained")] == 1
    assert metrics[(None, "VariantDisabled")] == 1

    redelivered = world.service.process_events([world.event("event-complaint", **tags)])
    assert redelivered.variant_events == Counter() and ledger.read("promo").count("short").complaints == 1


def test_events_without_a_variant_tag_count_nothing() -> None:
    ledger = FakeVariantLedger()
    world = Feedback(ledger)

    report = world.service.process_events([world.event("event-complaint", template="promo")])

    assert report.processed == 1 and report.variant_events == Counter() and ledger.writes == 0
