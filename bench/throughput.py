"""Throughput per worker: the real SendService against the seed article's consumer, on the same fakes.

Both consume the same in-memory queue and send through the same
`FakeEmailSender` with the same SES latency; every DynamoDB and SQS call
costs `IO_LATENCY_SECONDS` in both (the baseline makes only SQS calls: it
has no dedupe, suppression or consent). Wall-clock time, so run them
interleaved and compare ratios from the same run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from bench.common import (
    IO_LATENCY_SECONDS,
    Latent,
    MemoryQueue,
    QueueRetries,
    config,
    median,
    mixed_requests,
    seed_requests,
)
from infra.config import MAX_SEND_CONCURRENCY
from mailwright.pacing import Pacer
from mailwright.ports import OutboundEmail
from mailwright.request import parse_request
from mailwright.sending import SendService
from mailwright.settings import RateLimit
from mailwright_tools.fakes import (
    FakeClaimStore,
    FakeEmailSender,
    FakeMessageLog,
    FakePreferenceStore,
    FakeRateLimiter,
    FakeSuppressionStore,
    FakeTemplateSource,
    FakeWorld,
    build_fake_service,
)

# Far above anything a worker reaches here, so pacing never limits the measurement.
UNLIMITED_SEND_RATE = 10_000.0
TEMPLATES = FakeTemplateSource.from_directory()

# The seed consumer's hard-coded templates, verbatim.
SEED_TEMPLATES = {
    "welcome_email": {
        "subject": "Welcome to Our Service, {{user_name}}!",
        "body": '<p>Hello {{user_name}},</p><p>Thank you for joining! <a href="{{login_link}}">Log in here</a>.</p>',
    },
    "order_confirmation": {
        "subject": "Your Order #{{order_id}} is Confirmed!",
        "body": "<p>Hi there,</p><p>Your order <strong>#{{order_id}}</strong> for {{total_amount}} "
        "has been confirmed.</p>",
    },
}
FROM_EMAIL = "no-reply@your-domain.com"


@dataclass
class Run:
    """One measured run: emails sent, wall seconds, CPU seconds."""

    sent: int
    wall: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.sent / self.wall

    @property
    def cpu_us_per_email(self) -> float:
        return self.cpu / max(1, self.sent) * 1e6


def _timed(fn: Callable[[], int]) -> Run:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    sent = fn()
    return Run(sent=sent, wall=time.perf_counter() - wall0, cpu=time.process_time() - cpu0)


# -- the baseline: the seed article's consumer -------------------------------------


def _seed_render(template_id: str, data: dict[str, Any]) -> tuple[str, str]:
    template = SEED_TEMPLATES.get(template_id)
    if not template:
        raise ValueError(f"Template '{template_id}' not found")
    subject, body = template["subject"], template["body"]
    for key, value in data.items():
        subject = subject.replace(f"{{{{{key}}}}}", str(value))
        body = body.replace(f"{{{{{key}}}}}", str(value))
    return subject, body


def _seed_process_message(body: str, sender: FakeEmailSender) -> bool:
    try:
        data = json.loads(body)
        subject, html = _seed_render(data["template_id"], data.get("template_data", {}))
        sender.send(
            OutboundEmail(
                from_address=FROM_EMAIL,
                to_address=data["recipient_email"],
                subject=subject,
                html=html,
                text="",
                configuration_set="",
            )
        )
        return True
    except Exception:
        return False


def seed_consumer(queue: MemoryQueue, sender: FakeEmailSender, io_latency: float) -> int:
    """The seed article's `start_worker` loop until the queue is empty: one message per receive, one delete each."""
    done = 0
    while True:
        time.sleep(io_latency)  # ReceiveMessage(MaxNumberOfMessages=1)
        messages = queue.receive(1)
        if not messages:
            return done
        for message in messages:
            if _seed_process_message(message.body, sender):
                time.sleep(io_latency)  # DeleteMessage
                queue.delete([message.receipt_handle])
                done += 1


# -- a prototype of a proposed change (not runtime code) -------------------------------


class _Prefetched:
    """A lookup port whose `get_many` answers from a batch read started earlier, while the claims run."""

    def __init__(self, port: Any) -> None:
        self._port = port
        self._future: Future[dict[str, Any]] | None = None
        self._keys: frozenset[str] = frozenset()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")

    def prefetch(self, keys: set[str]) -> None:
        self._keys = frozenset(keys)
        self._future = self._pool.submit(self._port.get_many, keys)

    def get_many(self, keys: Any) -> dict[str, Any]:
        future, self._future = self._future, None
        if future is not None and set(keys) <= self._keys:
            found = future.result()
            return {k: v for k, v in found.items() if k in keys}
        return dict(self._port.get_many(keys))


class PrefetchingSendService(SendService):
    """SendService with its consent lookups started concurrently with the dedupe claims (one 5 ms stage less)."""

    def process(self, records: Any, **kwargs: Any) -> Any:
        requests = []
        for record in records:
            try:
                requests.append(parse_request(record.body))
            except Exception:  # noqa: S112 - the real pass rejects it with its reason; nothing to look up
                continue
        hasher = self._address_keys.hasher()
        self._suppressions.prefetch({hasher.address_hash(r.recipient_email) for r in requests})  # type: ignore[attr-defined]
        self._preferences.prefetch({r.user_id or hasher.user_key(r.recipient_email) for r in requests})  # type: ignore[attr-defined]
        return super().process(records, **kwargs)


# -- the worker under test ----------------------------------------------------------


def build_worker(
    lane: str,
    *,
    ses_latency: float,
    io_latency: float,
    queue: MemoryQueue,
    send_concurrency: int | None = None,
    prefetch: bool = False,
) -> tuple[SendService, FakeWorld]:
    """The real SendService for `lane` as cdk.json configures it, on latent fakes.

    `send_concurrency` and `prefetch` build the what-if variants (another concurrency cap; the
    consent lookups overlapped with the claims by `PrefetchingSendService`).
    """
    cfg = config()
    lane_cfg = cfg.lanes[lane]
    service, world = build_fake_service(
        lane=lane,
        rate_limits={k: RateLimit(v.limit, v.window_seconds) for k, v in cfg.rate_limits.items()},
        templates=TEMPLATES,
        suppressions=Latent(FakeSuppressionStore(), io_latency),  # type: ignore[arg-type]
        preferences=Latent(FakePreferenceStore(), io_latency),  # type: ignore[arg-type]
        claims=Latent(FakeClaimStore(), io_latency),  # type: ignore[arg-type]
        rate_limiter=Latent(FakeRateLimiter(), io_latency),  # type: ignore[arg-type]
        message_log=Latent(FakeMessageLog(), io_latency),  # type: ignore[arg-type]
        retries=Latent(QueueRetries(queue), io_latency),  # type: ignore[arg-type]
        sender=FakeEmailSender(latency_seconds=ses_latency),
        pacer=Pacer(UNLIMITED_SEND_RATE),
        max_workers=send_concurrency or min(lane_cfg.batch_size, MAX_SEND_CONCURRENCY),
    )
    if not prefetch:
        return service, world
    world.suppressions = _Prefetched(world.suppressions)  # type: ignore[assignment]
    world.preferences = _Prefetched(world.preferences)  # type: ignore[assignment]
    prototype = PrefetchingSendService(
        policy=service.policy,
        templates=world.templates,
        suppressions=world.suppressions,
        preferences=world.preferences,
        claims=world.claims,
        address_keys=world.address_keys,
        rate_limiter=world.rate_limiter,
        message_log=world.message_log,
        sender=world.sender,
        retries=world.retries,
        deferrals=world.deferrals,
        links=service._links,
        pacer=world.pacer,
        executor=world.executor,
        renderer=service._renderer,
    )
    return prototype, world


def run_invocation(service: SendService, queue: MemoryQueue, batch_size: int, timeout: float, io: float) -> int:
    """What one poll + invocation + delete of the event source mapping does; returns emails sent."""
    for _ in range(-(-batch_size // 10)):  # ReceiveMessage returns at most 10 messages
        time.sleep(io)
    records = queue.receive(batch_size)
    if not records:
        return 0
    deadline = time.monotonic() + timeout
    report = service.process(records, remaining_seconds=lambda: deadline - time.monotonic())
    failed = set(report.failed)
    done = [r.receipt_handle for r in records if r.message_id not in failed]
    for _ in range(-(-len(done) // 10)):  # DeleteMessageBatch
        time.sleep(io)
    queue.delete(done)
    return sum(1 for o in report.outcomes if o.status == "sent")


def worker_consumer(
    lane: str,
    bodies: list[str],
    *,
    ses_latency: float,
    io_latency: float,
    batch_size: int | None = None,
    send_concurrency: int | None = None,
    prefetch: bool = False,
) -> Run:
    """Drain `bodies` with one worker of `lane`; the first batch (template compilation) is not timed."""
    lane_cfg = config().lanes[lane]
    if batch_size is not None:
        lane_cfg = replace(lane_cfg, batch_size=batch_size)
    queue = MemoryQueue(visibility_timeout=lane_cfg.visibility_timeout_seconds, max_receive_count=10)
    service, world = build_worker(
        lane,
        ses_latency=ses_latency,
        io_latency=io_latency,
        queue=queue,
        send_concurrency=send_concurrency,
        prefetch=prefetch,
    )
    try:
        for body in bodies[: lane_cfg.batch_size]:
            queue.send(body)
        run_invocation(service, queue, lane_cfg.batch_size, lane_cfg.timeout_seconds, io_latency)
        for body in bodies[lane_cfg.batch_size :]:
            queue.send(body)

        def drain() -> int:
            sent = 0
            while len(queue):
                sent += run_invocation(service, queue, lane_cfg.batch_size, lane_cfg.timeout_seconds, io_latency)
            return sent

        return _timed(drain)
    finally:
        world.close()


def baseline_consumer(bodies: list[str], *, ses_latency: float, io_latency: float) -> Run:
    """Drain `bodies` with the seed consumer."""
    queue = MemoryQueue(visibility_timeout=30, max_receive_count=10)
    for body in bodies:
        queue.send(body)
    sender = FakeEmailSender(latency_seconds=ses_latency)
    return _timed(lambda: seed_consumer(queue, sender, io_latency))


# Proposed changes measured beside the deployed worker, at 50 ms (prototypes and settings, not runtime code).
WHAT_IF: dict[str, dict[str, Any]] = {
    "lookups with claims": {"prefetch": True},
    "batch 25, 25 sends in flight": {"batch_size": 25, "send_concurrency": 25},
    "batch 25, 25 in flight, lookups with claims": {"batch_size": 25, "send_concurrency": 25, "prefetch": True},
}


def measure(
    latencies: tuple[float, ...] = (0.020, 0.050, 0.100),
    *,
    rounds: int = 3,
    seconds_per_run: float = 3.0,
    lanes: tuple[str, ...] = ("standard", "bulk"),
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Emails per second per worker, worker and baseline interleaved, `rounds` times per SES latency."""
    io = IO_LATENCY_SECONDS
    results: dict[str, Any] = {"io_latency_ms": io * 1000, "rounds": rounds, "points": []}
    for latency in latencies:
        point: dict[str, Any] = {"ses_latency_ms": round(latency * 1000)}
        baseline_n = max(20, int(seconds_per_run / (latency + 2 * io)))
        runs: dict[str, list[Run]] = {"baseline": [], **{lane: [] for lane in lanes}, "standard_mixed": []}
        if latency == 0.050:
            runs.update({name: [] for name in WHAT_IF})
        for r in range(rounds):
            runs["baseline"].append(
                baseline_consumer(seed_requests(baseline_n, start=r * 100_000), ses_latency=latency, io_latency=io)
            )
            for lane in lanes:
                # Sized from the baseline's rate so every run lasts about as long.
                n = int(baseline_n * 12)
                runs[lane].append(
                    worker_consumer(lane, seed_requests(n, start=r * 100_000), ses_latency=latency, io_latency=io)
                )
            for name, variant in WHAT_IF.items() if latency == 0.050 else ():
                runs[name].append(
                    worker_consumer(
                        "standard",
                        seed_requests(int(baseline_n * 12), start=r * 100_000),
                        ses_latency=latency,
                        io_latency=io,
                        **variant,
                    )
                )
            runs["standard_mixed"].append(
                worker_consumer(
                    "standard",
                    mixed_requests(int(baseline_n * 10), start=r * 100_000),
                    ses_latency=latency,
                    io_latency=io,
                )
            )
        for name, measured in runs.items():
            point[name] = {
                "emails_per_second": round(median(x.rate for x in measured), 1),
                "runs": [round(x.rate, 1) for x in measured],
                "cpu_us_per_email": round(median(x.cpu_us_per_email for x in measured)),
            }
        base = point["baseline"]["emails_per_second"]
        for name in runs:
            if name != "baseline":
                # Ratio per round (same conditions), then the median.
                ratios = [w.rate / b.rate for w, b in zip(runs[name], runs["baseline"], strict=True)]
                point[name]["ratio"] = round(median(ratios), 2)
        progress(
            f"  throughput @ {point['ses_latency_ms']} ms: baseline {base}/s, "
            + ", ".join(f"{lane} {point[lane]['emails_per_second']}/s ({point[lane]['ratio']}x)" for lane in lanes)
        )
        results["points"].append(point)
    at_50 = next(p for p in results["points"] if p["ses_latency_ms"] == 50)
    results["ratio_at_50ms"] = at_50["standard"]["ratio"]
    results["what_if_at_50ms"] = {name: at_50[name] for name in WHAT_IF}
    results["headline_lane"] = "standard"
    cfg = config()
    results["worker_settings"] = {
        lane: {
            "batch_size": cfg.lanes[lane].batch_size,
            "send_concurrency": min(cfg.lanes[lane].batch_size, MAX_SEND_CONCURRENCY),
        }
        for lane in lanes
    }
    results["pacer_rate"] = UNLIMITED_SEND_RATE
    return results


if __name__ == "__main__":
    print(json.dumps(measure(rounds=1, seconds_per_run=2.0), indent=2))
