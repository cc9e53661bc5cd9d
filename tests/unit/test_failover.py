"""The provider breaker and the failover sender (mailwright.failover), on in-memory fakes and a manual clock."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

import pytest

from mailwright.errors import (
    ProviderOutageError,
    ProviderUnavailableError,
    RejectedError,
    ThrottledError,
    TransientError,
)
from mailwright.failover import (
    METRIC_MAYBE_SENT,
    METRIC_PAUSED,
    ROUTE_PROBE,
    ROUTE_SKIP,
    ROUTE_USE,
    BreakerPolicy,
    FailoverSender,
    ProviderBreaker,
)
from mailwright.observability import batch_metrics
from mailwright.pacing import Pacer
from mailwright.ports import (
    BREAKER_CLOSED,
    BREAKER_HALF_OPEN,
    BREAKER_OPEN,
    MessageId,
    OutboundEmail,
    provider_of,
)
from mailwright_tools.fakes import (
    FakeClock,
    FakeEmailSender,
    FakeProviderBreakerStore,
    FakeProviderEvents,
    queue_record,
)
from tests.unit.conftest import FakeServiceFactory

POLICY = BreakerPolicy(failure_threshold=3, window_seconds=30, cooldown_seconds=20, account_cooldown_seconds=300)
OUTAGE = ProviderOutageError("ses_failed", "ses: InternalFailure: 500")


def email(request_id: str = "r1", to: str = "jane@example.com") -> OutboundEmail:
    return OutboundEmail(
        from_address="no-reply@example.com",
        to_address=to,
        subject="Hi",
        html="<p>Hi</p>",
        text="Hi",
        configuration_set="cs",
        tags=(("request_id", request_id), ("lane", "critical"), ("category", "security")),
    )


@dataclass
class World:
    """Two workers' view of one lane: a shared store, each its own breaker; SES and a relay as fakes."""

    clock: FakeClock = field(default_factory=FakeClock)
    events: FakeProviderEvents = field(default_factory=FakeProviderEvents)
    ses_down: Exception | None = None
    relay_down: Exception | None = None

    def __post_init__(self) -> None:
        self.store = FakeProviderBreakerStore(clock=self.clock)
        self.ses = FakeEmailSender(fail=lambda e: self.ses_down)
        self.relay = FakeEmailSender(fail=lambda e: self.relay_down)

    def breaker(self, provider: str = "ses", worker: str = "w1", policy: BreakerPolicy = POLICY) -> ProviderBreaker:
        return ProviderBreaker(
            self.store,
            lane="critical",
            provider=provider,
            policy=policy,
            events=self.events,
            clock=self.clock,
            monotonic=self.clock,
            worker_id=worker,
        )

    def sender(self, *, enabled: bool = True, worker: str = "w1", pacer: Pacer | None = None) -> FailoverSender:
        return FailoverSender(
            lane="critical",
            primary=self.ses,
            breaker=self.breaker(worker=worker),
            store=self.store,
            events=self.events,
            enabled=enabled,
            secondary=self.relay,
            secondary_name="relay",
            secondary_breaker=self.breaker("relay", worker=worker),
            secondary_pacer=pacer,
            clock=self.clock,
            sleep=self.clock.sleep,
        )


# -- the breaker ------------------------------------------------------------------


def test_a_closed_breaker_opens_after_the_threshold_of_failures_within_the_window() -> None:
    world = World()
    breaker = world.breaker()

    assert breaker.route() == ROUTE_USE
    assert [breaker.failed(OUTAGE, ROUTE_USE) for _ in range(3)] == [False, False, True]

    state = world.store.read("critical", "ses")
    assert state.state == BREAKER_OPEN and state.opened_at == world.clock()
    assert state.probe_at == world.clock() + POLICY.cooldown_seconds
    assert "ses_failed" in state.reason
    assert world.events.transitions() == [(BREAKER_CLOSED, BREAKER_OPEN)]
    assert breaker.route() == ROUTE_SKIP


def test_failures_spread_wider_than_the_window_never_open_it() -> None:
    world = World()
    breaker = world.breaker()

    for _ in range(6):
        assert not breaker.failed(OUTAGE, ROUTE_USE)
        world.clock.advance(16)  # two failures at most in any 30 s

    assert world.store.read("critical", "ses").state == BREAKER_CLOSED


def test_an_account_level_refusal_opens_it_at_once_for_the_longer_cooldown() -> None:
    world = World()
    paused = ProviderOutageError("ses_paused", "ses: SendingPausedException", at_once=True)

    assert world.breaker().failed(paused, ROUTE_USE)

    state = world.store.read("critical", "ses")
    assert state.state == BREAKER_OPEN and state.probe_at == world.clock() + POLICY.account_cooldown_seconds
    assert world.store.calls["add_failure"] == 0


def test_after_the_cooldown_one_worker_probes_and_an_answer_closes_the_breaker() -> None:
    world = World()
    first, second = world.breaker(worker="w1"), world.breaker(worker="w2")
    for _ in range(3):
        first.failed(OUTAGE, ROUTE_USE)

    world.clock.advance(POLICY.cooldown_seconds - 1)
    assert first.route() == ROUTE_SKIP and second.route() == ROUTE_SKIP
    world.clock.advance(1)
    routes = [first.route(), second.route()]

    assert routes == [ROUTE_PROBE, ROUTE_SKIP]
    assert world.store.read("critical", "ses").state == BREAKER_HALF_OPEN
    first.succeeded(ROUTE_PROBE)
    state = world.store.read("critical", "ses")
    assert state.state == BREAKER_CLOSED and state.failures == 0 and state.closed_at == world.clock()
    assert world.events.transitions() == [
        (BREAKER_CLOSED, BREAKER_OPEN),
        (BREAKER_OPEN, BREAKER_HALF_OPEN),
        (BREAKER_HALF_OPEN, BREAKER_CLOSED),
    ]
    world.clock.advance(POLICY.refresh_seconds)
    assert second.route() == ROUTE_USE


def test_a_failed_probe_opens_it_again_and_an_abandoned_probe_is_taken_over() -> None:
    world = World()
    first, second = world.breaker(worker="w1"), world.breaker(worker="w2")
    for _ in range(3):
        first.failed(OUTAGE, ROUTE_USE)
    world.clock.advance(POLICY.cooldown_seconds)

    assert first.route() == ROUTE_PROBE
    assert first.failed(OUTAGE, ROUTE_PROBE)
    state = world.store.read("critical", "ses")
    assert state.state == BREAKER_OPEN and state.probe_at == world.clock() + POLICY.cooldown_seconds

    world.clock.advance(POLICY.cooldown_seconds)
    assert second.route() == ROUTE_PROBE  # w2 probes now, and dies before it answers
    world.clock.advance(POLICY.refresh_seconds)
    assert first.route() == ROUTE_SKIP
    world.clock.advance(POLICY.probe_lease_seconds)
    assert first.route() == ROUTE_PROBE
    assert world.store.read("critical", "ses").prober == "w1"


def test_opened_by_hand_it_never_probes_until_restored() -> None:
    world = World()
    breaker = world.breaker()

    opened = breaker.force_open(actor="ops@example.com", reason="SES maintenance")
    world.clock.advance(86400)

    assert opened.probe_at is None and breaker.route() == ROUTE_SKIP
    assert world.events.changes[-1].actor == "ops@example.com"
    breaker.restore(actor="ops@example.com")
    assert breaker.route() == ROUTE_USE


def test_workers_read_the_shared_state_at_most_once_per_refresh_period() -> None:
    world = World()
    breaker = world.breaker()

    for _ in range(50):
        breaker.route()
    world.clock.advance(POLICY.refresh_seconds)
    breaker.route()

    assert world.store.calls["read"] == 2


def test_an_unreadable_store_leaves_each_worker_on_the_last_state_it_read() -> None:
    world = World()
    fresh, opened = world.breaker(worker="w1"), world.breaker(worker="w2")
    opened.force_open(actor="test")
    world.store.failures["read"] = TransientError("dynamodb_failed", "injected")
    world.clock.advance(POLICY.refresh_seconds)

    assert fresh.route() == ROUTE_USE  # never read a state: closed, the mail keeps flowing
    assert opened.route() == ROUTE_SKIP


# -- the failover sender ----------------------------------------------------------


def test_while_ses_answers_the_secondary_is_never_used() -> None:
    world = World()
    message_id = world.sender().send(email())

    assert world.ses.sent and not world.relay.attempts
    assert not isinstance(message_id, MessageId) and provider_of(message_id) == "ses"


def test_when_the_breaker_opens_the_failing_email_itself_moves_to_the_secondary() -> None:
    world = World(ses_down=OUTAGE)
    sender = world.sender()

    for request in ("r1", "r2"):
        with pytest.raises(ProviderOutageError):
            sender.send(email(request))
    third = sender.send(email("r3"))

    assert provider_of(third) == "relay" and isinstance(third, MessageId)
    assert [e.tags[0][1] for e in world.relay.sent] == ["r3"]
    # While open, SES is not called at all.
    fourth = sender.send(email("r4"))
    assert provider_of(fourth) == "relay" and len(world.ses.attempts) == 3


def test_a_lane_without_failover_waits_for_ses_and_sends_nothing_elsewhere() -> None:
    world = World(ses_down=OUTAGE)
    sender = world.sender(enabled=False)

    for request in ("r1", "r2"):
        with pytest.raises(ProviderOutageError):
            sender.send(email(request))
    # The third failure opens the breaker: that email, and every one after it, waits for SES.
    for request in ("r3", "r4"):
        with pytest.raises(ProviderUnavailableError) as raised:
            sender.send(email(request))

    assert raised.value.code == "provider_unavailable"
    assert not world.relay.attempts
    assert world.events.counts[(METRIC_PAUSED, "critical", "ses")] >= 1


def test_an_email_whose_answer_was_lost_is_retried_on_ses_only() -> None:
    world = World(ses_down=ProviderOutageError("ses_unreachable", "read timeout", maybe_sent=True))
    sender = world.sender()
    for request in ("r1", "r2", "r3"):
        with pytest.raises(ProviderOutageError):
            sender.send(email(request))
    assert world.store.read("critical", "ses").state == BREAKER_OPEN

    # Retried while SES is out: it may already be with SES, so it waits instead of moving.
    with pytest.raises(ProviderUnavailableError, match="SES may already have"):
        sender.send(email("r1"))
    assert provider_of(sender.send(email("r9"))) == "relay"  # a fresh email still fails over
    assert world.events.counts[(METRIC_MAYBE_SENT, "critical", "ses")] == 3

    # SES comes back: the probe (r1 again) goes to SES and closes the breaker.
    world.ses_down = None
    world.clock.advance(POLICY.cooldown_seconds)
    assert provider_of(sender.send(email("r1"))) == "ses"
    assert world.store.read("critical", "ses").state == BREAKER_CLOSED
    assert [e.tags[0][1] for e in world.relay.sent] == ["r9"]


def test_a_lost_answer_stays_with_ses_even_for_a_worker_that_saw_the_breaker_closed() -> None:
    # Given a worker that read the breaker closed a moment ago (its cached state)
    world = World()
    first, second = world.sender(worker="w1"), world.sender(worker="w2")
    assert provider_of(second.send(email("warm-up"))) == "ses"
    # and SES accepted r1 for the first worker but the answer was lost, then started failing outright
    world.ses_down = ProviderOutageError("ses_unreachable", "read timeout", maybe_sent=True)
    with pytest.raises(ProviderOutageError):
        first.send(email("r1"))
    world.ses_down = OUTAGE
    with pytest.raises(ProviderOutageError):
        first.send(email("r2"))

    # When the second worker retries r1: its SES call fails and opens the breaker
    with pytest.raises(ProviderUnavailableError, match="SES may already have"):
        second.send(email("r1"))

    # Then r1 waits for SES instead of going to the relay (it may be in SES's hands already)
    assert world.store.read("critical", "ses").state == BREAKER_OPEN
    assert world.relay.sent == []
    assert provider_of(second.send(email("r3"))) == "relay"  # others do fail over


def test_an_email_the_secondary_may_have_goes_back_to_the_secondary_even_after_ses_returns() -> None:
    world = World(ses_down=ProviderOutageError("ses_paused", "paused", at_once=True))
    sender = world.sender()
    world.relay_down = ProviderOutageError("relay_unreachable", "no answer", maybe_sent=True)
    with pytest.raises(ProviderOutageError):
        sender.send(email("r1"))  # SES opens at once; the relay takes it and the answer is lost

    world.ses_down, world.relay_down = None, None
    sender.breaker.restore(actor="test")
    message_id = sender.send(email("r1"))

    assert provider_of(message_id) == "relay"
    assert [e.tags[0][1] for e in world.ses.sent] == []


def test_throttling_and_refusals_are_not_outages() -> None:
    world = World()
    sender = world.sender()
    for failure in (ThrottledError("throttled", "Maximum sending rate exceeded"), RejectedError("ses_rejected", "no")):
        world.ses_down = failure
        for _ in range(5):
            with pytest.raises(type(failure)):
                sender.send(email())

    assert world.store.read("critical", "ses").state == BREAKER_CLOSED and not world.relay.attempts


def test_a_probe_refused_by_ses_still_closes_the_breaker() -> None:
    world = World()
    sender = world.sender()
    sender.breaker.failed(ProviderOutageError("ses_paused", "paused", at_once=True), ROUTE_USE)
    world.clock.advance(POLICY.account_cooldown_seconds)
    world.ses_down = RejectedError("ses_rejected", "MessageRejected")

    with pytest.raises(RejectedError):
        sender.send(email())

    assert world.store.read("critical", "ses").state == BREAKER_CLOSED


def test_when_both_providers_are_out_the_mail_waits() -> None:
    world = World(
        ses_down=ProviderOutageError("ses_paused", "paused", at_once=True),
        relay_down=ProviderOutageError("relay_unauthorized", "HTTP 401", at_once=True),
    )
    sender = world.sender()

    with pytest.raises(ProviderOutageError, match="401"):
        sender.send(email("r1"))
    with pytest.raises(ProviderUnavailableError, match="both out"):
        sender.send(email("r2"))

    assert world.store.read("critical", "relay").state == BREAKER_OPEN
    assert len(world.relay.attempts) == 1


def test_the_secondary_is_paced_at_its_own_rate() -> None:
    world = World(ses_down=ProviderOutageError("ses_paused", "paused", at_once=True))
    pacer = Pacer(0.1, clock=world.clock, sleep=world.clock.sleep)  # one email every 10 s
    sender = world.sender(pacer=pacer)

    sender.send(email("r1"))
    with pytest.raises(TransientError) as raised:
        sender.send(email("r2"))

    assert raised.value.code == "relay_paced" and len(world.relay.sent) == 1


# -- inside the send pipeline -------------------------------------------------------

RESET = {
    "template_id": "password_reset",
    "template_data": {"user_name": "Jane", "reset_link": "https://example.com/r", "expires_in_minutes": 30},
}


def test_the_message_log_and_metrics_name_the_provider_that_sent(fake_service: FakeServiceFactory) -> None:
    world = World(ses_down=ProviderOutageError("ses_paused", "paused", at_once=True))
    service, fakes = fake_service(lane="critical", sender=world.sender())

    report = service.process([queue_record({**RESET, "recipient_email": f"u{i}@example.com"}) for i in range(3)])

    assert report.failed == [] and {o.provider for o in report.outcomes} == {"relay"}
    logged = fakes.message_log.get(report.outcomes[0].request_id)
    assert logged is not None and logged["provider"] == "relay" and logged["status"] == "sent"
    groups = {
        tuple(d.items()): {m.name: m.value for m in v}
        for d, v in batch_metrics(report, lane="critical", now=0).groups()
    }
    assert groups[(("lane", "critical"), ("provider", "relay"))] == {"FailedOver": 3}


def test_without_a_secondary_the_log_says_ses(fake_service: FakeServiceFactory) -> None:
    service, fakes = fake_service(lane="critical")

    report = service.process([queue_record({**RESET, "recipient_email": "jane@example.com"})])

    logged = fakes.message_log.get(report.outcomes[0].request_id)
    assert logged is not None and logged["provider"] == "ses"
    assert json.dumps(logged)  # plain values


def test_a_paused_lane_hands_its_mail_back_with_the_provider_unavailable_reason(
    fake_service: FakeServiceFactory,
) -> None:
    world = World(ses_down=ProviderOutageError("ses_paused", "paused", at_once=True))
    service, fakes = fake_service(lane="bulk", sender=world.sender(enabled=False))
    records = [queue_record({**RESET, "recipient_email": f"u{i}@example.com"}) for i in range(3)]

    report = service.process(records)

    assert report.outcomes == [] and report.failed == []  # waiting for SES is not a failure
    # The first email finds SES paused (the breaker opens at once); none moves to the relay.
    assert set(report.deferred.values()) == {"provider_unavailable"}
    deferred = fakes.deferrals.deferred
    assert sorted(d.body for d in deferred) == sorted(r.body for r in records)
    # New messages with a delay (backoff over the request's deferrals, at most 15 minutes): no receive is spent.
    assert all(d.deferrals == 1 and 1 <= d.seconds <= 5 for d in deferred)
    assert not fakes.retries.delays
    assert not world.relay.attempts and len(fakes.claims) == 0  # claims released: the new copies start clean


def test_a_request_that_keeps_waiting_for_its_provider_waits_longer_each_time(
    fake_service: FakeServiceFactory,
) -> None:
    world = World(ses_down=ProviderOutageError("ses_paused", "paused", at_once=True))
    service, fakes = fake_service(lane="bulk", sender=world.sender(enabled=False))
    record = replace(queue_record({**RESET, "recipient_email": "jane@example.com"}), deferrals=6)

    report = service.process([record])

    assert report.deferred == {record.message_id: "provider_unavailable"}
    (deferral,) = fakes.deferrals.deferred
    assert deferral.deferrals == 7 and 160 <= deferral.seconds <= 320  # the 7th step of 5 s doubling: 320 s


def test_mail_over_the_secondarys_own_rate_is_handed_back_shortly(fake_service: FakeServiceFactory) -> None:
    world = World(ses_down=ProviderOutageError("ses_paused", "paused", at_once=True))
    pacer = Pacer(0.1, clock=world.clock, sleep=world.clock.sleep)  # one email every 10 s
    service, fakes = fake_service(lane="critical", sender=world.sender(pacer=pacer))
    record = replace(queue_record({**RESET, "recipient_email": "late@example.com"}), deferrals=20)
    records = [queue_record({**RESET, "recipient_email": "first@example.com"}), record]

    report = service.process(records)

    assert len(report.outcomes) == 1 and report.outcomes[0].provider == "relay" and report.failed == []
    assert report.deferred == {record.message_id: "relay_paced"}
    (deferral,) = fakes.deferrals.deferred
    assert deferral.seconds <= 60  # the relay has room again within seconds, however often it waited


# -- history and reported states -------------------------------------------------------


def test_every_change_of_a_breaker_is_kept_in_its_history_with_who_made_it() -> None:
    world = World()
    breaker = world.breaker()

    for _ in range(POLICY.failure_threshold):
        breaker.failed(OUTAGE, ROUTE_USE)
    world.clock.advance(1)
    breaker.restore(actor="cli:ops@host")
    breaker.force_open(actor="cli:ops@host", reason="SES region degraded, moving critical off it")

    history = world.store.history("critical", "ses")
    assert [(c.before, c.after, c.actor) for c in history] == [
        (BREAKER_CLOSED, BREAKER_OPEN, ""),
        (BREAKER_OPEN, BREAKER_CLOSED, "cli:ops@host"),
        (BREAKER_CLOSED, BREAKER_OPEN, "cli:ops@host"),
    ]
    assert history[0].reason.startswith("ses_failed") and history[2].reason.startswith("SES region degraded")
    assert history[1].at == history[0].at + 1
    assert world.store.history("critical", "relay") == []


def test_a_history_that_cannot_be_written_does_not_stop_the_breaker() -> None:
    world = World()
    world.store.failures["record_change"] = TransientError("dynamodb_unavailable", "table unreachable")
    breaker = world.breaker()

    for _ in range(POLICY.failure_threshold):
        breaker.failed(OUTAGE, ROUTE_USE)

    assert breaker.state(fresh=True).state == BREAKER_OPEN
    assert world.events.transitions("ses") == [(BREAKER_CLOSED, BREAKER_OPEN)]
    assert world.store.history("critical", "ses") == []


def test_the_history_keeps_the_most_recent_changes() -> None:
    world = World()
    breaker = world.breaker()

    for _ in range(40):
        breaker.force_open(actor="a")
        breaker.restore(actor="a")

    history = world.store.history("critical", "ses")
    assert len(history) == 50 and history[-1].after == BREAKER_CLOSED


def test_workers_report_both_breakers_states_every_thirty_seconds_while_sending() -> None:
    world = World()
    sender = FailoverSender(
        lane="critical",
        primary=world.ses,
        breaker=world.breaker(),
        store=world.store,
        events=world.events,
        enabled=True,
        secondary=world.relay,
        secondary_name="relay",
        secondary_breaker=world.breaker("relay"),
        clock=world.clock,
        sleep=world.clock.sleep,
        monotonic=world.clock,
    )

    for n in range(10):  # 10 emails within 20 s: one report
        sender.send(email(f"a{n}"))
        world.clock.advance(2)
    world.ses_down = OUTAGE
    world.clock.advance(15)
    for n in range(POLICY.failure_threshold - 1):
        with pytest.raises(ProviderOutageError):
            sender.send(email(f"b{n}"))  # retried later
    sender.send(email("b"))  # opens SES's breaker, and goes to the relay
    world.clock.advance(30)
    sender.send(email("c"))

    assert world.events.states == [
        ("critical", "ses", False),
        ("critical", "relay", False),
        ("critical", "ses", False),
        ("critical", "relay", False),
        ("critical", "ses", True),
        ("critical", "relay", False),
    ]
