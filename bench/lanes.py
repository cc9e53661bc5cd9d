"""Lanes: a 50,000-request bulk backlog drains while critical requests arrive at 5 per second.

A discrete-event simulation in virtual time (the bulk backlog alone takes
hours to drain at the shares cdk.json gives it), running the real
`SendService` on the fakes:

* each lane's event source mapping is modelled with cdk.json's batch size,
  batching window and maximum concurrency: up to `max_concurrency`
  containers, each polling its lane's in-memory SQS queue (visibility
  timeout, receive counts, backoff via ChangeMessageVisibility);
* a container's invocation runs `SendService.process` to completion at
  once, on a virtual clock: its thread pool is a `VirtualExecutor` (tasks
  overlap in virtual time, `send_concurrency` at a time), every port call
  sleeps its latency on the virtual clock (SES 50 ms, DynamoDB and SQS
  5 ms), and its pacer is the one `wiring.build_send_service` builds, on
  the virtual clock: an `AccountPacer` on the account's shared token bucket
  (`FakeRateRegistry`, 5 ms a call), critical mail first; what a batch
  cannot send within its lane's wait is handed back to the queue with a
  booked delay (`QueueDeferrals`), and comes back when its slot is due;
* the CPU an invocation really used on this machine, plus the boto3 CPU per
  email measured by `bench.cpu`, scaled to Lambda's CPU share at the
  configured memory, is added to its duration;
* the SES account rate is shared: the accepted sends of all lanes are
  replayed through a token bucket at R afterwards and would-be throttles
  counted (the workers' shares add up to R, so there should be none).

Time compression: only virtual time is compressed; every delay the
pipeline would see (latencies, pacing waits, batching windows, backoff,
visibility timeouts) is kept at its real length.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.common import (
    IO_LATENCY_SECONDS,
    Latent,
    MemoryQueue,
    QueueDeferrals,
    QueueRetries,
    SimClock,
    VirtualExecutor,
    config_with,
    percentile,
    request,
)
from infra.config import MAX_SEND_CONCURRENCY, MailwrightConfig
from mailwright.constants import LANES
from mailwright.pacing import AccountPacer
from mailwright.ports import Outcome
from mailwright.sending import SendService
from mailwright.settings import RateLimit
from mailwright_tools.fakes import (
    FakeAccountReader,
    FakeClaimStore,
    FakeEmailSender,
    FakeMessageLog,
    FakePreferenceStore,
    FakeRateLimiter,
    FakeRateRegistry,
    FakeSuppressionStore,
    FakeTemplateSource,
    FakeWorld,
    build_fake_service,
)

SES_LATENCY_SECONDS = 0.050
# From a message becoming visible to the function starting: the poller's ReceiveMessage and the Invoke.
POLL_TO_INVOKE_SECONDS = 0.020
# The bulk backlog is published through a batching door (the SDK's send_batch, `mailwright send --csv`, the CSV
# door, POST /v1/messages): ten requests per SendMessageBatch. Critical mail arrives one request at a time.
PRODUCER_BATCH = 10
# A full vCPU at 1,769 MB; below that Lambda gives a proportional share.
FULL_VCPU_MB = 1769
TEMPLATES = FakeTemplateSource.from_directory()


@dataclass
class Container:
    """One emulated Lambda container of a lane."""

    lane: str
    service: SendService
    world: FakeWorld
    executor: VirtualExecutor
    busy: bool = False
    gathering_since: float | None = None


@dataclass
class LaneStats:
    """What one lane's workers did."""

    invocations: int = 0
    billed_seconds: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)
    # The billed time split: waiting on I/O (virtual time) and CPU (scaled to the memory size), and the
    # invocations that only handed their records back (their whole time).
    io_seconds: float = 0.0
    cpu_seconds: float = 0.0
    deferring_invocations: int = 0
    deferring_seconds: float = 0.0


class LaneSimulation:
    """The event loop: arrivals, invocations and their ends, in virtual time."""

    def __init__(
        self,
        cfg: MailwrightConfig,
        *,
        boto_cpu_per_email: float,
        cpu_scale: float | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock = SimClock()
        self.registry = FakeRateRegistry()
        self.account = FakeAccountReader(cfg.ses_max_send_rate or 14.0)
        self.start = self.clock.now
        self.boto_cpu_per_email = boto_cpu_per_email
        self.cpu_scale = cpu_scale
        io = IO_LATENCY_SECONDS
        sleep = self.clock.sleep
        self.shared: dict[str, Any] = {
            "suppressions": Latent(FakeSuppressionStore(), io, sleep),
            "preferences": Latent(FakePreferenceStore(), io, sleep),
            "claims": Latent(FakeClaimStore(clock=self.clock), io, sleep),
            "rate_limiter": Latent(FakeRateLimiter(), io, sleep),
            "message_log": Latent(FakeMessageLog(), io, sleep),
        }
        self.queues = {
            lane: MemoryQueue(
                visibility_timeout=cfg.lanes[lane].visibility_timeout_seconds,
                max_receive_count=cfg.lanes[lane].max_receive_count,
                clock=self.clock,
            )
            for lane in LANES
        }
        self.containers: dict[str, list[Container]] = {}
        self.containers = {
            lane: [self._container(lane) for _ in range(cfg.lanes[lane].max_concurrency)] for lane in LANES
        }
        self.stats = {lane: LaneStats() for lane in LANES}
        self._events: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()

    def _container(self, lane: str) -> Container:
        lane_cfg = self.cfg.lanes[lane]
        executor = VirtualExecutor(self.clock, min(lane_cfg.batch_size, MAX_SEND_CONCURRENCY))
        service, world = build_fake_service(
            lane=lane,
            rate_limits={k: RateLimit(v.limit, v.window_seconds) for k, v in self.cfg.rate_limits.items()},
            templates=TEMPLATES,
            sender=FakeEmailSender(latency_seconds=SES_LATENCY_SECONDS, sleep=self.clock.sleep),
            retries=Latent(QueueRetries(self.queues[lane]), IO_LATENCY_SECONDS, self.clock.sleep),  # type: ignore[arg-type]
            deferrals=Latent(QueueDeferrals(self.queues[lane]), IO_LATENCY_SECONDS, self.clock.sleep),  # type: ignore[arg-type]
            pacer=self._pacer(lane),
            clock=self.clock,
            max_workers=1,
            **self.shared,
        )
        world.executor.shutdown()
        service._executor = executor  # the pool of `build_fake_service`, swapped for one in virtual time
        return Container(lane=lane, service=service, world=world, executor=executor)

    def _pacer(self, lane: str) -> AccountPacer:
        """As `wiring.account_pacer` builds it, on the virtual clock (registry calls take 5 ms)."""
        return AccountPacer(
            lane=lane,
            registry=Latent(self.registry, IO_LATENCY_SECONDS, self.clock.sleep),  # type: ignore[arg-type]
            account=self.account,
            ceiling=self.cfg.ses_max_send_rate,
            fallback_rate=self.cfg.ses_max_send_rate or 1.0,
            fallback_share=self.cfg.send_rate_per_worker,
            max_wait=self.cfg.lanes[lane].pacing_max_wait,
            quota_holds=self.cfg.quota_holds,
            wall_clock=self.clock,
            clock=self.clock,
            sleep=self.clock.sleep,
        )

    # -- events ------------------------------------------------------------------

    def at(self, when: float, kind: str, payload: Any = None) -> None:
        """Schedule an event."""
        heapq.heappush(self._events, (when, next(self._seq), kind, payload))

    def publish(self, lane: str, bodies: list[str], *, batch: int = 1) -> None:
        """Put bodies on a lane's queue now, `batch` per producer request (SendMessageBatch takes ten)."""
        queue = self.queues[lane]
        for body in bodies:
            queue.send(body)
        # The sends above counted one request each.
        with queue._lock:
            queue.requests -= len(bodies) - -(-len(bodies) // batch)

    def run(self, until: Callable[[], bool], *, horizon: float) -> None:
        """Process events until `until()` holds or virtual time passes `horizon` seconds."""
        for lane in LANES:
            self.at(self.clock.now, "dispatch", lane)
        while self._events and not until():
            when, _, kind, payload = heapq.heappop(self._events)
            if when - self.start > horizon:
                break
            self.clock.now = when
            if kind == "arrival":
                lane, body = payload
                self.queues[lane].send(body)
                self.dispatch(lane)
            elif kind == "dispatch":
                self.dispatch(payload)
            elif kind == "done":
                container, receipts = payload
                self.queues[container.lane].delete(receipts)
                container.busy = False
                self.dispatch(container.lane)

    def dispatch(self, lane: str) -> None:
        """What the lane's pollers do now: start invocations on free containers while messages are visible."""
        lane_cfg = self.cfg.lanes[lane]
        queue = self.queues[lane]
        now = self.clock.now
        ready: list[Container] = []
        for container in self.containers[lane]:
            if container.busy:
                continue
            visible = queue.visible() - len(ready) * lane_cfg.batch_size
            if visible <= 0:
                container.gathering_since = None
                upcoming = queue.next_visible_at()
                if upcoming is not None and upcoming > now:
                    self.at(upcoming, "dispatch", lane)
                break
            if lane_cfg.batching_window_seconds and visible < lane_cfg.batch_size:
                # The window counts from the first record the poller got.
                if container.gathering_since is None:
                    container.gathering_since = now
                    self.at(now + lane_cfg.batching_window_seconds, "dispatch", lane)
                if now < container.gathering_since + lane_cfg.batching_window_seconds:
                    # The poller keeps receiving: a full batch goes at once, without the window's end.
                    upcoming = queue.next_hidden_at()
                    if (
                        upcoming is not None
                        and now < upcoming < container.gathering_since + lane_cfg.batching_window_seconds
                    ):
                        self.at(upcoming, "dispatch", lane)
                    break
            container.gathering_since = None
            # Busy from now, so those invoked at this same instant count it in the send-rate pool.
            container.busy = True
            ready.append(container)
        for container in ready:
            self.invoke(container)

    def invoke(self, container: Container) -> None:
        """One invocation, run to its end in virtual time; its end is scheduled as an event."""
        lane_cfg = self.cfg.lanes[container.lane]
        records = self.queues[container.lane].receive(lane_cfg.batch_size)
        if not records:
            container.busy = False
            return
        container.busy = True
        started = self.clock.now + POLL_TO_INVOKE_SECONDS
        self.clock.now = started
        container.executor.reset()
        cpu = time.process_time()
        report = container.service.process(records)
        # boto3's CPU for each record that went through the pipeline; a deferred record costs a tenth
        # of a SendMessageBatch call.
        handed_back = len(report.deferred)
        cpu = time.process_time() - cpu + self.boto_cpu_per_email * (len(records) - handed_back + handed_back / 10)
        scale = self.cpu_scale if self.cpu_scale is not None else FULL_VCPU_MB / lane_cfg.memory_mb
        end = max(self.clock.now, started) + cpu * scale
        stats = self.stats[container.lane]
        stats.invocations += 1
        stats.billed_seconds += end - started
        stats.io_seconds += max(self.clock.now, started) - started
        stats.cpu_seconds += cpu * scale
        if handed_back == len(records):
            stats.deferring_invocations += 1
            stats.deferring_seconds += end - started
        stats.outcomes.extend(report.outcomes)
        failed = set(report.failed)
        receipts = [r.receipt_handle for r in records if r.message_id not in failed]
        self.clock.now = started - POLL_TO_INVOKE_SECONDS
        self.at(end + IO_LATENCY_SECONDS, "done", (container, receipts))

    def close(self) -> None:
        """Release the fakes."""
        for containers in self.containers.values():
            for container in containers:
                container.world.close()


def would_be_throttled(sent_at: list[float], rate: float, burst_seconds: float = 1.0) -> int:
    """Sends an SES account at `rate` (token bucket of `burst_seconds`) would have refused."""
    capacity, tokens, last, refused = max(1.0, rate * burst_seconds), max(1.0, rate * burst_seconds), None, 0
    for t in sorted(sent_at):
        if last is not None:
            tokens = min(capacity, tokens + (t - last) * rate)
        last = t
        if tokens >= 1:
            tokens -= 1
        else:
            refused += 1
    return refused


def scenario(
    cfg: MailwrightConfig,
    *,
    bulk: int,
    critical_rate: float,
    critical_seconds: float,
    boto_cpu_per_email: float,
    seed: int = 5,
) -> dict[str, Any]:
    """The bulk backlog and the critical arrivals; latencies, throughput and billed time."""
    sim = LaneSimulation(cfg, boto_cpu_per_email=boto_cpu_per_email)
    rng = random.Random(seed)
    try:
        backlog = [json.dumps(request("newsletter", i, idempotency_key=f"b{i}")) for i in range(bulk)]
        sim.publish("bulk", backlog, batch=PRODUCER_BATCH)
        t, n = sim.clock.now, 0
        while t - sim.start < critical_seconds:
            t += rng.expovariate(critical_rate)  # Poisson arrivals
            body = json.dumps(request("password_reset", 10_000_000 + n, idempotency_key=f"c{n}"))
            sim.at(t, "arrival", ("critical", body))
            n += 1
        critical_published = n
        wall = time.perf_counter()
        sim.run(lambda: False, horizon=14 * 86400)
        wall = time.perf_counter() - wall
        start = sim.start
        critical = [o for o in sim.stats["critical"].outcomes if o.status == "sent"]
        latencies = [o.completed_at - (o.received_at or o.completed_at) for o in critical]
        bulk_sent = sorted(o.completed_at for o in sim.stats["bulk"].outcomes if o.status == "sent")
        all_sent = sorted(o.completed_at for s in sim.stats.values() for o in s.outcomes if o.status == "sent")
        during = [x for x in bulk_sent if x - start <= critical_seconds]
        drained_after = (bulk_sent[-1] - start) if bulk_sent else 0.0
        lost = {
            lane: (critical_published if lane == "critical" else bulk if lane == "bulk" else 0)
            - len({o.request_id for o in sim.stats[lane].outcomes})
            - len(sim.queues[lane].dlq)
            for lane in LANES
        }
        per_minute_bulk = _per_bucket(bulk_sent, start, 60.0)
        per_minute_critical = _per_bucket(sorted(o.completed_at for o in critical), start, 60.0)
        latency_series = [(o.completed_at - start, o.completed_at - (o.received_at or 0)) for o in critical]
        return {
            "critical_published": critical_published,
            "critical_sent": len(critical),
            "critical_p50_s": round(percentile(latencies, 50), 3),
            "critical_p90_s": round(percentile(latencies, 90), 3),
            "critical_p99_s": round(percentile(latencies, 99), 3),
            "critical_max_s": round(max(latencies, default=0.0), 3),
            "bulk_sent": len(bulk_sent),
            "bulk_drain_seconds": round(drained_after, 1),
            "bulk_throughput_per_s": round(len(bulk_sent) / drained_after, 3) if drained_after else 0.0,
            "bulk_throughput_during_critical_per_s": round(len(during) / critical_seconds, 3),
            "ses_rate_used_during_critical_per_s": round(
                sum(1 for x in all_sent if x - start <= critical_seconds) / critical_seconds, 3
            ),
            "would_be_throttled": would_be_throttled(all_sent, cfg.ses_max_send_rate),
            "lost": lost,
            "billed_seconds_per_email": {
                lane: round(s.billed_seconds / max(1, sum(o.status == "sent" for o in s.outcomes)), 4)
                for lane, s in sim.stats.items()
                if s.outcomes
            },
            # Every invocation's billed time (deferring ones included) over every email sent.
            "billed_seconds_per_sent_email": round(
                sum(s.billed_seconds for s in sim.stats.values())
                / max(1, sum(o.status == "sent" for s in sim.stats.values() for o in s.outcomes)),
                4,
            ),
            "billed_split": billed_split(sim.stats),
            "deferrals": sum(c.world.deferrals._port.deferred for cs in sim.containers.values() for c in cs),  # type: ignore[attr-defined]
            "bulk_deferrals_per_email": round(
                sum(c.world.deferrals._port.deferred for c in sim.containers["bulk"]) / max(1, len(bulk_sent)),  # type: ignore[attr-defined]
                2,
            ),
            # SQS delays a message at most 15 minutes: mail sent t seconds after it was published spent them
            # in delays of 900 s or less (but for the wait before its first receive, seconds at most here),
            # so it was deferred at least floor(t / 900) times, whatever the pacing.
            "bulk_deferrals_floor_per_email": round(
                sum(math.floor((t - start) / 900) for t in bulk_sent) / max(1, len(bulk_sent)), 2
            ),
            # Every SQS request the queues would bill: the producer's sends, the mapping's receives and
            # deletes, deferrals (ten a SendMessageBatch) and retries (the mapping's empty polls left out).
            "sqs_requests": sum(queue.requests for queue in sim.queues.values()),
            # Of those, the producer's: the backlog in SendMessageBatch calls, each critical request alone.
            "producer_sqs_requests": -(-bulk // PRODUCER_BATCH) + critical_published,
            "producer_batch": PRODUCER_BATCH,
            "registry_writes": dict(sim.registry.writes),
            "invocations": {lane: s.invocations for lane, s in sim.stats.items()},
            "emails_per_invocation": {
                lane: round(len(s.outcomes) / s.invocations, 2) for lane, s in sim.stats.items() if s.invocations
            },
            "simulated_seconds": round(sim.clock.now - start, 1),
            "wall_seconds": round(wall, 1),
            "series": {
                "bulk_per_minute": per_minute_bulk,
                "critical_per_minute": per_minute_critical,
                "critical_latency": [
                    (round(a, 2), round(b, 3)) for a, b in latency_series[:: max(1, len(latency_series) // 3000)]
                ],
            },
        }
    finally:
        sim.close()


def billed_split(stats: dict[str, LaneStats]) -> dict[str, Any]:
    """Where the billed time went, per sent email by lane, and the floors it gives (issue 14's 0.02 s target).

    `without_cpu`: the I/O waits alone (an infinitely fast CPU); `without_deferring_invocations`: the
    invocations that sent something (parking a backlog free); `io_without_deferring`: both.
    """
    lanes: dict[str, Any] = {}
    totals = {"billed": 0.0, "io": 0.0, "deferring": 0.0, "deferring_io": 0.0, "sent": 0}
    for lane, s in stats.items():
        sent = sum(o.status == "sent" for o in s.outcomes)
        if not s.invocations or not sent:
            continue
        sending = s.invocations - s.deferring_invocations
        # A deferring invocation's I/O: its share of the lane's, at the same CPU ratio (small either way).
        deferring_io = s.deferring_seconds * (s.io_seconds / max(s.billed_seconds, 1e-9))
        lanes[lane] = {
            "billed_s_per_sent": round(s.billed_seconds / sent, 4),
            "io_s_per_sent": round(s.io_seconds / sent, 4),
            "cpu_s_per_sent": round(s.cpu_seconds / sent, 4),
            "deferring_s_per_sent": round(s.deferring_seconds / sent, 4),
            "sending_invocations": sending,
            "sent_per_sending_invocation": round(sent / max(1, sending), 2),
            "io_ms_per_sending_invocation": round(1000 * (s.io_seconds - deferring_io) / max(1, sending), 1),
            "cpu_ms_per_sending_invocation": round(
                1000 * (s.cpu_seconds - (s.deferring_seconds - deferring_io)) / max(1, sending), 1
            ),
        }
        totals["billed"] += s.billed_seconds
        totals["io"] += s.io_seconds
        totals["deferring"] += s.deferring_seconds
        totals["deferring_io"] += deferring_io
        totals["sent"] += sent
    sent = max(1, int(totals["sent"]))
    return {
        "by_lane": lanes,
        "floors_s_per_sent_email": {
            "as_measured": round(totals["billed"] / sent, 4),
            "without_cpu": round(totals["io"] / sent, 4),
            "without_deferring_invocations": round((totals["billed"] - totals["deferring"]) / sent, 4),
            "io_without_deferring": round((totals["io"] - totals["deferring_io"]) / sent, 4),
        },
    }


def _per_bucket(times: list[float], start: float, bucket: float) -> list[int]:
    counts: dict[int, int] = {}
    for t in times:
        k = int((t - start) // bucket)
        counts[k] = counts.get(k, 0) + 1
    return [counts.get(k, 0) for k in range(max(counts, default=-1) + 1)]


def measure(
    *,
    bulk: int = 50_000,
    critical_seconds: float = 1800.0,
    boto_cpu_per_email: float = 0.0013,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The scenario with cdk.json's lanes, and what-if variants of the critical lane (critical traffic only)."""
    cfg = config_with()
    headline = scenario(
        cfg, bulk=bulk, critical_rate=5.0, critical_seconds=critical_seconds, boto_cpu_per_email=boto_cpu_per_email
    )
    progress(
        f"  lanes: critical p50 {headline['critical_p50_s']} s, p99 {headline['critical_p99_s']} s; "
        f"bulk {headline['bulk_throughput_per_s']}/s, drained in {headline['bulk_drain_seconds'] / 3600:.2f} h "
        f"(simulated in {headline['wall_seconds']} s)"
    )
    variants = {}
    for name, lanes_override in WHAT_IF.items():
        raw_lanes = {**_lanes_raw(), **lanes_override}
        variant_cfg = config_with(lanes=raw_lanes)
        result = scenario(
            variant_cfg,
            bulk=0,
            critical_rate=5.0,
            critical_seconds=300.0,
            boto_cpu_per_email=boto_cpu_per_email,
        )
        variants[name] = {
            "critical": raw_lanes["critical"],
            "rate_per_worker": round(variant_cfg.send_rate_per_worker, 3),
            **{k: result[k] for k in ("critical_p50_s", "critical_p99_s", "critical_max_s", "critical_sent")},
        }
        progress(f"  lanes what-if {name}: critical p99 {result['critical_p99_s']} s")
    return {
        "config": {lane: dict(_lanes_raw()[lane]) for lane in LANES},
        "ses_max_send_rate": cfg.ses_max_send_rate,
        "rate_per_worker": round(cfg.send_rate_per_worker, 3),
        "critical_rate_per_s": 5.0,
        "critical_seconds": critical_seconds,
        "bulk_backlog": bulk,
        "ses_latency_ms": SES_LATENCY_SECONDS * 1000,
        "poll_to_invoke_ms": POLL_TO_INVOKE_SECONDS * 1000,
        **{k: v for k, v in headline.items() if k != "series"},
        "series": headline["series"],
        "what_if": variants,
    }


def _lanes_raw() -> dict[str, dict[str, Any]]:
    from bench.common import REPO

    raw = json.loads((REPO / "cdk.json").read_text(encoding="utf-8"))
    lanes: dict[str, dict[str, Any]] = raw["context"]["mailwright"]["lanes"]
    return lanes


# Critical-lane settings tried with critical traffic alone. With the shared bucket the lanes no longer
# hold fixed shares, so these only change how critical requests are batched.
WHAT_IF: dict[str, dict[str, dict[str, Any]]] = {
    "cdk.json": {},
    "critical batch_size 1": {"critical": {**_lanes_raw()["critical"], "batch_size": 1}},
    "critical max_concurrency 2": {
        "critical": {**_lanes_raw()["critical"], "max_concurrency": 2, "reserved_concurrency": 2}
    },
}


if __name__ == "__main__":
    result = measure(bulk=5000, critical_seconds=600.0)
    result.pop("series")
    print(json.dumps(result, indent=2))
