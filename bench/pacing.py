"""Pacing: every lane's workers at once against one simulated SES account with a maximum send rate R.

Real `SendService` instances, each paced as `wiring` paces it (critical
workers at a fixed share, `ses_max_send_rate / total_max_concurrency`;
standard and bulk workers at their share of the pool, through one lease
registry they all renew in real time), run concurrently in
real time, one thread per emulated container, each draining its lane's
in-memory queue as the event source mapping would. The simulated SES
account is a token bucket at R holding one second of sends; a call beyond
it raises `ThrottledError`, the record is reported failed and comes back
after the backoff the worker asks for (`ChangeMessageVisibility`), as in
SQS. The stores (claims, message log...) are shared, as the tables are.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.common import IO_LATENCY_SECONDS, Latent, MemoryQueue, QueueRetries, config_with, request
from infra.config import MAX_SEND_CONCURRENCY, MailwrightConfig
from mailwright.constants import LANES, POOLED_LANES, TERMINAL_STATUSES
from mailwright.errors import ThrottledError
from mailwright.pacing import Pacer, PooledPacer, SendPacer
from mailwright.ports import OutboundEmail
from mailwright.settings import RateLimit
from mailwright_tools.fakes import (
    FakeClaimStore,
    FakeMessageLog,
    FakePreferenceStore,
    FakeRateLimiter,
    FakeRateShares,
    FakeSuppressionStore,
    FakeTemplateSource,
    build_fake_service,
)

SES_LATENCY_SECONDS = 0.050
TEMPLATES = FakeTemplateSource.from_directory()


class SimulatedSes:
    """An SES account's maximum send rate: a token bucket at `rate` holding `burst_seconds` of sends."""

    def __init__(
        self,
        rate: float,
        *,
        burst_seconds: float = 1.0,
        latency: float = SES_LATENCY_SECONDS,
        foreign_rate: float = 0.0,
    ) -> None:
        self.rate = rate
        self.foreign_rate = foreign_rate
        self.foreign_accepted = 0
        self.capacity = max(1.0, rate * burst_seconds)
        self.latency = latency
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()
        self.accepted: list[float] = []
        self.throttled = 0

    def _take(self) -> tuple[bool, float]:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            allowed = self._tokens >= 1
            if allowed:
                self._tokens -= 1
            return allowed, now

    def foreign_sender(self, stop: threading.Event) -> None:
        """Another application on the same SES account, sending `foreign_rate` emails a second."""
        while self.foreign_rate > 0 and not stop.wait(1 / self.foreign_rate):
            if self._take()[0]:
                self.foreign_accepted += 1

    def send(self, email: OutboundEmail) -> str:
        """Accept the email if the account's rate allows it now, else raise ThrottledError."""
        allowed, now = self._take()
        with self._lock:
            if allowed:
                self.accepted.append(now)
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
        pool: FakeRateShares,
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
            # As `wiring.build_send_service` builds it (registry calls take a DynamoDB round trip).
            pacer=_pacer(lane, cfg, pool),
            max_workers=min(self.lane.batch_size, MAX_SEND_CONCURRENCY),
            **ports,
        )
        self.invocations = 0

    def run(self) -> None:
        io = IO_LATENCY_SECONDS
        while not self._stop_event.is_set():
            time.sleep(io)  # ReceiveMessage
            records = self.queue.receive(self.lane.batch_size)
            if not records:
                time.sleep(0.05)
                continue
            deadline = time.monotonic() + self.lane.timeout_seconds
            report = self.service.process(records, remaining_seconds=lambda d=deadline: d - time.monotonic())
            self.invocations += 1
            failed = set(report.failed)
            time.sleep(io)  # DeleteMessageBatch
            self.queue.delete([r.receipt_handle for r in records if r.message_id not in failed])
        self.world.close()


def _pacer(lane: str, cfg: MailwrightConfig, pool: FakeRateShares) -> SendPacer:
    if lane in POOLED_LANES:
        shares = Latent(pool, IO_LATENCY_SECONDS)
        return PooledPacer(cfg.send_pool_rate, floor_rate=cfg.send_rate_per_worker, shares=shares)  # type: ignore[arg-type]
    return Pacer(cfg.send_rate_per_worker)


def run(
    rate: float,
    *,
    window_seconds: float,
    burst_seconds: float = 1.0,
    foreign_rate: float = 0.0,
    drain_timeout: float = 120.0,
    busy_lanes: tuple[str, ...] = LANES,
) -> dict[str, Any]:
    """Saturate `busy_lanes` for `window_seconds`, then drain; achieved rate, throttling and losses.

    `foreign_rate`: another application sends that many emails a second on the same account,
    which the workers' shares do not know about (their achieved rate is then measured
    against what is left of R). With some lanes idle, what the busy ones may use is
    measured too: the pool alone when only pooled lanes are busy.
    """
    cfg = config_with(ses_max_send_rate=rate)
    ses = SimulatedSes(rate, burst_seconds=burst_seconds, foreign_rate=foreign_rate)
    io = IO_LATENCY_SECONDS
    shared = {
        "suppressions": Latent(FakeSuppressionStore(), io),
        "preferences": Latent(FakePreferenceStore(), io),
        "claims": Latent(FakeClaimStore(), io),
        "rate_limiter": Latent(FakeRateLimiter(), io),
        "message_log": Latent(FakeMessageLog(), io),
        "sender": ses,
    }
    log: FakeMessageLog = shared["message_log"]._port  # type: ignore[assignment]
    # A backlog a third larger than the window can send, shared out by each lane's number of workers.
    backlog = int(rate * window_seconds * 1.35)
    busy_workers = sum(cfg.lanes[lane].max_concurrency for lane in busy_lanes)
    queues, published = {}, 0
    for lane in LANES:
        lane_cfg = cfg.lanes[lane]
        queues[lane] = MemoryQueue(
            visibility_timeout=lane_cfg.visibility_timeout_seconds, max_receive_count=lane_cfg.max_receive_count
        )
        share = round(backlog * lane_cfg.max_concurrency / busy_workers) if lane in busy_lanes else 0
        for _ in range(share):
            queues[lane].send(json.dumps(request("order_confirmation", published, idempotency_key=f"p{published}")))
            published += 1
    stop = threading.Event()
    pool = FakeRateShares()
    containers = [
        Container(lane=lane, cfg=cfg, queue=queues[lane], stop=stop, pool=pool, **shared)
        for lane in LANES
        for _ in range(cfg.lanes[lane].max_concurrency)
    ]
    started = time.monotonic()
    for container in containers:
        container.start()
    foreign = threading.Thread(target=ses.foreign_sender, args=(stop,), daemon=True)
    foreign.start()
    # Leave the first second out: the buckets start full.
    time.sleep(window_seconds + 1.0)
    window = [t for t in ses.accepted if started + 1.0 <= t < started + 1.0 + window_seconds]
    available = rate - foreign_rate
    if set(busy_lanes) <= set(POOLED_LANES):  # only the pool is theirs to use
        available = min(available, cfg.send_pool_rate)
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
    return {
        "ses_max_send_rate": rate,
        "workers": cfg.total_max_concurrency,
        "rate_per_worker": round(cfg.send_rate_per_worker, 3),
        "burst_seconds": burst_seconds,
        "foreign_rate": foreign_rate,
        "busy_lanes": list(busy_lanes),
        "pool_rate": round(cfg.send_pool_rate, 3),
        "available_rate": round(available, 3),
        "window_seconds": window_seconds,
        "published": published,
        "achieved_rate": round(len(window) / window_seconds, 2),
        "achieved_ratio": round(len(window) / (available * window_seconds), 3),
        "ses_calls": calls,
        "throttled": ses.throttled,
        "throttled_ratio": round(ses.throttled / max(1, calls), 4),
        "terminal": len(terminal),
        "sent": sum(1 for o in terminal if o.status == "sent"),
        "dlq": in_dlq,
        "still_queued": left,
        "lost": published - len(terminal) - in_dlq - left,
        "seconds": round(time.monotonic() - started, 1),
        "invocations": sum(c.invocations for c in containers),
        "pool_renewals": pool.calls["join"],
    }


def measure(progress: Callable[[str], None] = print, *, quick: bool = False) -> dict[str, Any]:
    """cdk.json's account rate (14/s), a raised one (50/s), and 14/s shared with another sender (3/s) that the
    workers' shares do not account for, which makes SES throttle them; the headline is cdk.json's. Then the
    bulk lane busy alone, against the pool it may then use (all of it, not the slice every lane busy leaves it).
    """
    runs = []
    scale = 0.5 if quick else 1.0
    plans: list[tuple[float, float, float, tuple[str, ...]]] = [
        (14.0, 15.0 * scale, 0.0, LANES),
        (50.0, 10.0 * scale, 0.0, LANES),
        (14.0, 15.0 * scale, 3.0, LANES),
        (14.0, 15.0 * scale, 0.0, ("bulk",)),
    ]
    for rate, window, foreign, busy in plans:
        result = run(rate, window_seconds=window, foreign_rate=foreign, busy_lanes=busy)
        progress(
            f"  pacing R={rate:g}/s, other sender {foreign:g}/s, busy {'+'.join(busy)}: "
            f"{result['achieved_rate']}/s, {result['achieved_ratio']} of the {result['available_rate']:g}/s available, "
            f"throttled {result['throttled_ratio']:.2%}, lost {result['lost']}, left {result['still_queued']}"
        )
        runs.append(result)
    headline = runs[0]
    bulk_alone = runs[-1]
    return {
        "runs": runs,
        "achieved_ratio": headline["achieved_ratio"],
        "throttled_ratio": max(r["throttled_ratio"] for r in runs if not r["foreign_rate"]),
        "bulk_alone_rate": bulk_alone["achieved_rate"],
        "bulk_alone_ratio": bulk_alone["achieved_ratio"],
        "lost": sum(r["lost"] + r["still_queued"] for r in runs),
        "ses_latency_ms": SES_LATENCY_SECONDS * 1000,
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
