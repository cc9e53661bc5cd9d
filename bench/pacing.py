"""Pacing: every lane's workers at once against one simulated SES account, in real time.

Real `SendService` instances, each paced as `wiring` paces it (an
`AccountPacer` on one shared token bucket, `FakeRateRegistry` behind a 5 ms
round trip, as the DynamoDB item is; SES's quota read through the account
reader), run concurrently in real time, one thread per emulated container,
each draining its lane's in-memory queue as the event source mapping would.
Mail a batch cannot send within its lane's wait is handed back to the queue
as a new, delayed message (`QueueDeferrals`), as `SqsDeferrals` does.

The simulated SES account is a token bucket at R holding one second of
sends; a call beyond it raises `ThrottledError`. Its rate may change during a
run (a quota change) and another application may send on it; `read()` is its
GetAccount. The stores (claims, message log...) are shared, as the tables are.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.common import IO_LATENCY_SECONDS, Latent, MemoryQueue, QueueDeferrals, QueueRetries, config_with, request
from infra.config import MAX_SEND_CONCURRENCY, MailwrightConfig
from mailwright.constants import LANES, TERMINAL_STATUSES
from mailwright.errors import ThrottledError
from mailwright.pacing import AccountPacer
from mailwright.ports import OutboundEmail, SendQuota
from mailwright.settings import RateLimit
from mailwright_tools.fakes import (
    FakeClaimStore,
    FakeMessageLog,
    FakePreferenceStore,
    FakeRateLimiter,
    FakeRateRegistry,
    FakeSuppressionStore,
    FakeTemplateSource,
    build_fake_service,
)

SES_LATENCY_SECONDS = 0.050
TEMPLATES = FakeTemplateSource.from_directory()
# How often a worker reads SES's quota in these runs (deployed: every 300 s, sooner after a throttle).
REFRESH_SECONDS = 10.0
TEMPLATE_OF = {"critical": "password_reset", "standard": "order_confirmation", "bulk": "newsletter"}


class SimulatedSes:
    """An SES account: a token bucket at `rate` holding `burst_seconds` of sends, GetAccount, other senders."""

    def __init__(
        self,
        rate: float,
        *,
        burst_seconds: float = 1.0,
        latency: float = SES_LATENCY_SECONDS,
        foreign_rate: float = 0.0,
        max_24_hour_send: float = 1e9,
    ) -> None:
        self.rate = rate
        self.burst_seconds = burst_seconds
        self.foreign_rate = foreign_rate
        self.foreign_accepted = 0
        self.max_24_hour_send = max_24_hour_send
        self.latency = latency
        self._tokens = max(1.0, rate * burst_seconds)
        self._updated = time.monotonic()
        self._lock = threading.Lock()
        self.accepted: list[tuple[float, str]] = []  # (when, lane)
        self.throttled = 0
        self.reads = 0

    def _take(self) -> tuple[bool, float]:
        with self._lock:
            now = time.monotonic()
            capacity = max(1.0, self.rate * self.burst_seconds)
            self._tokens = min(capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            allowed = self._tokens >= 1
            if allowed:
                self._tokens -= 1
            return allowed, now

    def set_rate(self, rate: float) -> None:
        """SES changes the account's maximum send rate."""
        with self._lock:
            self.rate = rate

    def read(self) -> SendQuota:
        """GetAccount: the current rate and the day's count."""
        with self._lock:
            self.reads += 1
            return SendQuota(self.rate, self.max_24_hour_send, float(len(self.accepted) + self.foreign_accepted))

    def foreign_sender(self, stop: threading.Event) -> None:
        """Another application on the same SES account, sending `foreign_rate` emails a second."""
        while self.foreign_rate > 0 and not stop.wait(1 / self.foreign_rate):
            if self._take()[0]:
                self.foreign_accepted += 1

    def send(self, email: OutboundEmail) -> str:
        """Accept the email if the account's rate allows it now, else raise ThrottledError."""
        allowed, now = self._take()
        lane = dict(email.tags).get("lane", "")
        with self._lock:
            if allowed:
                self.accepted.append((now, lane))
            else:
                self.throttled += 1
        time.sleep(self.latency)
        if not allowed:
            raise ThrottledError("throttled", "Maximum sending rate exceeded.")
        return uuid.uuid4().hex


class Container(threading.Thread):
    """One emulated Lambda container of a lane: poll a batch, invoke the real SendService, delete the rest."""

    def __init__(
        self,
        *,
        lane: str,
        cfg: MailwrightConfig,
        queue: MemoryQueue,
        stop: threading.Event,
        registry: FakeRateRegistry,
        ses: SimulatedSes,
        **ports: Any,
    ):
        super().__init__(name=f"{lane}-container", daemon=True)
        self.lane = cfg.lanes[lane]
        self.queue = queue
        self._stop_event = stop
        self.service, self.world = build_fake_service(
            lane=lane,
            rate_limits={k: RateLimit(v.limit, v.window_seconds) for k, v in cfg.rate_limits.items()},
            templates=TEMPLATES,
            retries=Latent(QueueRetries(queue), IO_LATENCY_SECONDS),  # type: ignore[arg-type]
            deferrals=Latent(QueueDeferrals(queue), IO_LATENCY_SECONDS),  # type: ignore[arg-type]
            # As `wiring.account_pacer` builds it (registry calls take a DynamoDB round trip).
            pacer=AccountPacer(
                lane=lane,
                registry=Latent(registry, IO_LATENCY_SECONDS),  # type: ignore[arg-type]
                account=ses,
                ceiling=None,
                fallback_rate=1.0,
                fallback_share=cfg.send_rate_per_worker,
                max_wait=self.lane.pacing_max_wait,
                quota_holds=cfg.quota_holds,
                refresh_seconds=REFRESH_SECONDS,
            ),
            sender=ses,  # type: ignore[arg-type]
            max_workers=min(self.lane.batch_size, MAX_SEND_CONCURRENCY),
            **ports,
        )
        self.invocations = 0
        self.billed = 0.0

    def run(self) -> None:
        io = IO_LATENCY_SECONDS
        while not self._stop_event.is_set():
            time.sleep(io)  # ReceiveMessage
            records = self.queue.receive(self.lane.batch_size)
            if not records:
                time.sleep(0.05)
                continue
            started = time.monotonic()
            deadline = started + self.lane.timeout_seconds
            report = self.service.process(records, remaining_seconds=lambda d=deadline: d - time.monotonic())
            self.billed += time.monotonic() - started
            self.invocations += 1
            failed = set(report.failed)
            time.sleep(io)  # DeleteMessageBatch
            self.queue.delete([r.receipt_handle for r in records if r.message_id not in failed])
        self.world.close()


@dataclass(frozen=True)
class Publish:
    """`count` requests on `lane`'s queue, `at` seconds into the run."""

    lane: str
    count: int
    at: float = 0.0


@dataclass(frozen=True)
class Plan:
    """One run: what is published when, the account's rate (and its changes), another sender."""

    name: str
    rate: float
    window_seconds: float
    publish: tuple[Publish, ...]
    rate_changes: tuple[tuple[float, float], ...] = ()  # (at seconds, new rate)
    foreign_rate: float = 0.0
    measured_lane: str | None = None  # a lane whose publish-to-send latency is reported
    extra: dict[str, Any] = field(default_factory=dict)


def _rate_at(plan: Plan, t: float) -> float:
    rate = plan.rate
    for at, new in plan.rate_changes:
        if t >= at:
            rate = new
    return rate


def run(plan: Plan, *, drain_timeout: float = 120.0) -> dict[str, Any]:
    """Run `plan`: achieved rate against what the account had to give, throttling, losses, billed time."""
    cfg = config_with(ses_max_send_rate=None)
    ses = SimulatedSes(plan.rate, foreign_rate=plan.foreign_rate)
    io = IO_LATENCY_SECONDS
    shared = {
        "suppressions": Latent(FakeSuppressionStore(), io),
        "preferences": Latent(FakePreferenceStore(), io),
        "claims": Latent(FakeClaimStore(), io),
        "rate_limiter": Latent(FakeRateLimiter(), io),
        "message_log": Latent(FakeMessageLog(), io),
    }
    log: FakeMessageLog = shared["message_log"]._port  # type: ignore[assignment]
    queues = {
        lane: MemoryQueue(
            visibility_timeout=cfg.lanes[lane].visibility_timeout_seconds,
            max_receive_count=cfg.lanes[lane].max_receive_count,
            clock=time.time,  # publish times are compared with the outcomes' (wall clock)
        )
        for lane in LANES
    }
    published: dict[str, float] = {}  # request body -> publish time (for latency)
    counter = [0]

    def publish(item: Publish) -> None:
        for _ in range(item.count):
            n = counter[0]
            counter[0] += 1
            # Distinct users: the newsletter's per-user limit is not under test here.
            body = json.dumps(request(TEMPLATE_OF[item.lane], n, user=f"u{n}", idempotency_key=f"{plan.name}-{n}"))
            published[body] = time.time()
            queues[item.lane].send(body)

    stop = threading.Event()
    registry = FakeRateRegistry()
    containers = [
        Container(lane=lane, cfg=cfg, queue=queues[lane], stop=stop, registry=registry, ses=ses, **shared)
        for lane in LANES
        for _ in range(cfg.lanes[lane].max_concurrency)
    ]
    started = time.monotonic()
    wall_started = time.time()
    for item in plan.publish:
        if item.at == 0:
            publish(item)
    for container in containers:
        container.start()
    foreign = threading.Thread(target=ses.foreign_sender, args=(stop,), daemon=True)
    foreign.start()
    events = sorted(
        [(i.at, "publish", i) for i in plan.publish if i.at > 0] + [(at, "rate", r) for at, r in plan.rate_changes]
    )
    # Leave the first second out: the buckets start full.
    end = started + 1.0 + plan.window_seconds
    for at, kind, what in events:
        time.sleep(max(0.0, started + at - time.monotonic()))
        if kind == "publish":
            publish(what)  # type: ignore[arg-type]
        else:
            ses.set_rate(what)  # type: ignore[arg-type]
    time.sleep(max(0.0, end - time.monotonic()))
    window = [(t, lane) for t, lane in ses.accepted if started + 1.0 <= t < end]
    # What the account had to give mailwright: its rate over the window, less the other sender's.
    steps = 200
    available = sum(
        max(0.0, _rate_at(plan, 1.0 + plan.window_seconds * (k + 0.5) / steps) - plan.foreign_rate)
        for k in range(steps)
    ) * (plan.window_seconds / steps)
    drain_deadline = time.monotonic() + drain_timeout
    while time.monotonic() < drain_deadline and any(len(q) for q in queues.values()):
        time.sleep(0.2)
    stop.set()
    for container in containers:
        container.join(timeout=30)
    terminal = [o for o in log.outcomes if o.status in TERMINAL_STATUSES]
    in_dlq = sum(len(q.dlq) for q in queues.values())
    left = sum(len(q) for q in queues.values())
    calls = len(ses.accepted) + ses.throttled
    sent = [o for o in terminal if o.status == "sent"]
    billed = sum(c.billed for c in containers)
    result: dict[str, Any] = {
        "name": plan.name,
        "ses_max_send_rate": plan.rate,
        "rate_changes": [list(change) for change in plan.rate_changes],
        "foreign_rate": plan.foreign_rate,
        "publish": [{"lane": p.lane, "count": p.count, "at": p.at} for p in plan.publish],
        "window_seconds": plan.window_seconds,
        "published": counter[0],
        "available": round(available, 1),
        "achieved_rate": round(len(window) / plan.window_seconds, 2),
        "achieved_ratio": round(len(window) / available, 3) if available else 0.0,
        "achieved_by_lane": {lane: sum(1 for _, x in window if x == lane) for lane in LANES},
        "ses_calls": calls,
        "throttled": ses.throttled,
        "throttled_ratio": round(ses.throttled / max(1, calls), 4),
        "ses_reads": ses.reads,
        "terminal": len(terminal),
        "sent": len(sent),
        "dlq": in_dlq,
        "still_queued": left,
        "lost": counter[0] - len(terminal) - in_dlq - left,
        "deferrals": sum(queue.requests for queue in queues.values()),
        "billed_seconds_per_email": round(billed / max(1, len(sent)), 4),
        "invocations": sum(c.invocations for c in containers),
        "registry_writes_per_email": round(sum(registry.writes.values()) / max(1, len(sent)), 3),
        "registry_writes_per_second_max_item": round(
            max(registry.writes.values(), default=0) / (time.monotonic() - started), 2
        ),
        "seconds": round(time.monotonic() - started, 1),
        **plan.extra,
    }
    result["deferrals"] = sum(c.world.deferrals._port.deferred for c in containers)  # type: ignore[attr-defined]
    if plan.measured_lane:
        latencies = sorted(
            o.completed_at - (o.received_at or o.completed_at) for o in sent if o.lane == plan.measured_lane
        )
        result[f"{plan.measured_lane}_p50_s"] = round(_percentile(latencies, 50), 3)
        result[f"{plan.measured_lane}_p99_s"] = round(_percentile(latencies, 99), 3)
    if plan.rate_changes:
        result["phases"] = _phases(plan, ses, started)
    # Sends per second by lane over the run (for the plot), and what the account had to give each second.
    seconds = int(1.0 + plan.window_seconds)
    result["series"] = {
        "per_second": {
            lane: [sum(1 for t, x in ses.accepted if x == lane and k <= t - started < k + 1) for k in range(seconds)]
            for lane in LANES
        },
        "available": [max(0.0, _rate_at(plan, k + 0.5) - plan.foreign_rate) for k in range(seconds)],
    }
    del wall_started
    return result


def _phases(plan: Plan, ses: SimulatedSes, started: float) -> list[dict[str, Any]]:
    """Achieved / available in each stretch of constant account rate (after the first second of each)."""
    bounds = [0.0, *(at for at, _ in plan.rate_changes), 1.0 + plan.window_seconds]
    phases = []
    for begin, finish in itertools.pairwise(bounds):
        rate = _rate_at(plan, begin)
        lo, hi = started + max(begin, 0.0) + 1.0, started + finish
        sent = sum(1 for t, _ in ses.accepted if lo <= t < hi)
        available = max(0.0, rate - plan.foreign_rate) * (hi - lo)
        phases.append(
            {
                "rate": rate,
                "seconds": round(hi - lo, 1),
                "achieved_ratio": round(sent / available, 3) if available else 0.0,
            }
        )
    return phases


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def plans(*, quick: bool = False) -> list[Plan]:
    """The mixes at cdk.json's 14/s, then the adaptive run: 14 -> 28 -> 7/s beside a 3/s other sender."""
    w = 8.0 if quick else 12.0
    backlog = int(14 * w * 1.25)
    third = 15.0 if quick else 20.0
    return [
        Plan("all", 14.0, w, tuple(Publish(lane, backlog // 3) for lane in LANES)),
        Plan("bulk", 14.0, w, (Publish("bulk", backlog),)),
        Plan("standard", 14.0, w, (Publish("standard", backlog),)),
        Plan(
            "critical_burst",
            14.0,
            w,
            (Publish("bulk", backlog), Publish("critical", 14 * 3, at=w / 3)),
            measured_lane="critical",
        ),
        Plan(
            "adaptive",
            14.0,
            3 * third - 1.0,
            # About 80% of what the account gives over the window: more than the run sends (parked mail
            # returns at the rate it was booked at), so the lane never runs dry, and a short drain after it.
            (Publish("bulk", int((11 + 25 + 4) * third * 0.8)),),
            rate_changes=((third, 28.0), (2 * third, 7.0)),
            foreign_rate=3.0,
        ),
    ]


def measure(progress: Callable[[str], None] = print, *, quick: bool = False) -> dict[str, Any]:
    """Each mix and the adaptive run; the headline ratios are the mixes'."""
    runs: dict[str, dict[str, Any]] = {}
    for plan in plans(quick=quick):
        result = run(plan, drain_timeout=240.0)
        runs[plan.name] = result
        progress(
            f"  pacing {plan.name}: {result['achieved_rate']}/s, {result['achieved_ratio']} of what the account "
            f"had, throttled {result['throttled_ratio']:.2%}, lost {result['lost']}, left {result['still_queued']}, "
            f"deferrals {result['deferrals']}, billed {result['billed_seconds_per_email']} s/email"
        )
    mixes = ("all", "bulk", "standard", "critical_burst")
    adaptive = runs["adaptive"]
    return {
        "runs": list(runs.values()),
        "achieved_ratio_by_mix": {
            name: {k: runs[name][k] for k in ("achieved_ratio", "throttled_ratio", "lost")} for name in mixes
        },
        "achieved_ratio": min(runs[name]["achieved_ratio"] for name in mixes),
        "throttled_ratio": max(runs[name]["throttled_ratio"] for name in mixes),
        "lost": sum(r["lost"] + r["still_queued"] for r in runs.values()),
        "critical_burst_p99_s": runs["critical_burst"].get("critical_p99_s"),
        "adaptive": {
            "rates": [adaptive["ses_max_send_rate"], *(r for _, r in adaptive["rate_changes"])],
            "foreign_rate": adaptive["foreign_rate"],
            "achieved_ratio": adaptive["achieved_ratio"],
            "throttled_ratio": adaptive["throttled_ratio"],
            "phases": adaptive["phases"],
            "lost": adaptive["lost"],
            "refresh_seconds": REFRESH_SECONDS,
        },
        "billed_seconds_per_email_realtime": max(runs[name]["billed_seconds_per_email"] for name in mixes),
        "ses_latency_ms": SES_LATENCY_SECONDS * 1000,
    }


if __name__ == "__main__":
    import sys

    names = set(sys.argv[1:])
    for plan in plans():
        if not names or plan.name in names:
            outcome = run(plan, drain_timeout=240.0)
            print(json.dumps(outcome, indent=2))
