"""Shared pieces of the benchmarks: latency around ports, an in-memory SQS queue, virtual time, request mixes."""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.config import MailwrightConfig, load_config
from mailwright.ports import Deferral
from mailwright.sending import QueueRecord
from mailwright.templates import load_template_tree
from mailwright_tools.fakes import TEMPLATES_DIR

REPO = Path(__file__).resolve().parent.parent
SAMPLES: dict[str, dict[str, Any]] = {
    tid: dict(bundle.metadata.sample_data) for tid, bundle in load_template_tree(TEMPLATES_DIR).items()
}

# Per-call latency given to every DynamoDB and SQS call, in the worker and in the baseline alike.
IO_LATENCY_SECONDS = 0.005


def config() -> MailwrightConfig:
    """The deployment settings in the repository's cdk.json."""
    return load_config(REPO / "cdk.json")


def config_with(**overrides: Any) -> MailwrightConfig:
    """cdk.json's settings with some top-level `mailwright` keys replaced (e.g. ses_max_send_rate)."""
    from infra.config import CONTEXT_KEY, parse_config

    raw = json.loads((REPO / "cdk.json").read_text(encoding="utf-8"))["context"][CONTEXT_KEY]
    raw = {**raw, **overrides}
    return parse_config(raw)


def lane_environment(
    lane: str, *, queue_url: str, prefix: str, cfg: MailwrightConfig | None = None, **names: str
) -> dict[str, str]:
    """A lane worker's environment as `infra.config.worker_environment` computes it, for made-up resource names."""
    from infra.config import WorkerResources, worker_environment

    cfg = cfg or config()
    defaults = {
        "templates_bucket": f"{prefix}-templates",
        "preferences_table": f"{prefix}-preferences",
        "suppression_table": f"{prefix}-suppression",
        "idempotency_table": f"{prefix}-idempotency",
        "messages_table": f"{prefix}-messages",
        "configuration_set": f"{prefix}-events",
        "unsubscribe_secret_arn": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{prefix}",
        "unsubscribe_base_url": "https://example.com/unsubscribe",
        **names,
    }
    fields = WorkerResources.__dataclass_fields__
    resources = WorkerResources(**{name: defaults.get(name, f"{prefix}-{name}") for name in fields})  # type: ignore[arg-type]
    env = worker_environment(config=cfg, lane=cfg.lanes[lane], queue_url=queue_url, resources=resources)
    return env


# -- latency ----------------------------------------------------------------------


class Latent:
    """Wraps a port: every call of a public method first sleeps `seconds` (network round trip), then delegates."""

    def __init__(self, port: Any, seconds: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self._port = port
        self._seconds = seconds
        self._sleep = sleep
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._port, name)
        if name.startswith("_") or not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self._seconds > 0:
                self._sleep(self._seconds)
            return target(*args, **kwargs)

        return call


# -- an SQS queue in memory --------------------------------------------------------


@dataclass
class Message:
    """One SQS message: body, receive count and when it is visible again."""

    message_id: str
    body: str
    sent_at: float
    visible_at: float
    receive_count: int = 0
    receipt: str = ""
    version: int = 0
    # Carried by a deferred request's new message (SQS message attributes in AWS).
    deferrals: int = 0
    published_at: float | None = None


class MemoryQueue:
    """An SQS standard queue in memory: visibility timeout, receive counts, redrive to a DLQ.

    Like SQS, a receive that would take a message past `max_receive_count`
    moves it to the DLQ instead. Thread-safe; time comes from `clock`.
    Visible messages wait in a FIFO, hidden ones in a heap by visibility
    time, so a 50,000-message backlog costs O(log n) per message.
    """

    def __init__(
        self, *, visibility_timeout: float, max_receive_count: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.visibility_timeout = visibility_timeout
        self.max_receive_count = max_receive_count
        self.clock = clock
        self.messages: dict[str, Message] = {}
        self.dlq: list[Message] = []
        self.requests = 0  # SQS API requests this queue would have billed (10 messages per batch call)
        self._ready: deque[tuple[str, int]] = deque()
        self._hidden: list[tuple[float, int, str, int]] = []
        self._by_receipt: dict[str, str] = {}
        self._ids = itertools.count()
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def _hide(self, message: Message, until: float) -> None:
        message.version += 1
        message.visible_at = until
        heapq.heappush(self._hidden, (until, next(self._seq), message.message_id, message.version))

    def _promote(self, now: float) -> None:
        while self._hidden and self._hidden[0][0] <= now:
            _, _, message_id, version = heapq.heappop(self._hidden)
            message = self.messages.get(message_id)
            if message is not None and message.version == version:
                self._ready.append((message_id, version))

    def send(self, body: str, *, delay: float = 0.0, deferrals: int = 0, published_at: float | None = None) -> str:
        """Enqueue a message (with a deferred request's attributes); returns its id."""
        with self._lock:
            now = self.clock()
            message_id = f"msg-{next(self._ids)}"
            message = Message(
                message_id, body, sent_at=now, visible_at=now, deferrals=deferrals, published_at=published_at
            )
            self.messages[message_id] = message
            self.requests += 1
            if delay > 0:
                self._hide(message, now + delay)
            else:
                self._ready.append((message_id, message.version))
            return message_id

    def next_hidden_at(self) -> float | None:
        """When the next hidden message (delayed or in flight) becomes visible, or None."""
        with self._lock:
            self._promote(self.clock())
            while self._hidden:
                until, _, message_id, version = self._hidden[0]
                message = self.messages.get(message_id)
                if message is not None and message.version == version:
                    return until
                heapq.heappop(self._hidden)
            return None

    def visible(self) -> int:
        """How many messages could be received now."""
        with self._lock:
            self._promote(self.clock())
            return len(self._ready)

    def next_visible_at(self) -> float | None:
        """When the next message becomes visible (now if one is), or None if the queue is empty."""
        with self._lock:
            now = self.clock()
            self._promote(now)
            if self._ready:
                return now
            while self._hidden:
                until, _, message_id, version = self._hidden[0]
                message = self.messages.get(message_id)
                if message is not None and message.version == version:
                    return until
                heapq.heappop(self._hidden)
            return None

    def receive(self, max_messages: int) -> list[QueueRecord]:
        """Receive up to `max_messages` visible messages, oldest first, hiding them for the visibility timeout."""
        out: list[QueueRecord] = []
        with self._lock:
            now = self.clock()
            self.requests += max(1, -(-max_messages // 10))
            self._promote(now)
            while self._ready and len(out) < max_messages:
                message_id, version = self._ready.popleft()
                message = self.messages.get(message_id)
                if message is None or message.version != version:
                    continue
                if message.receive_count >= self.max_receive_count:
                    del self.messages[message_id]
                    self.dlq.append(message)
                    continue
                message.receive_count += 1
                message.receipt = f"{message_id}#{message.receive_count}"
                self._by_receipt[message.receipt] = message_id
                self._hide(message, now + self.visibility_timeout)
                out.append(
                    QueueRecord(
                        message_id=message_id,
                        receipt_handle=message.receipt,
                        body=message.body,
                        receive_count=message.receive_count,
                        sent_at=message.published_at if message.published_at is not None else message.sent_at,
                        deferrals=message.deferrals,
                    )
                )
        return out

    def delete(self, receipts: Sequence[str]) -> None:
        """Delete received messages (a stale receipt handle is ignored, as in SQS after a re-receive)."""
        with self._lock:
            self.requests += -(-len(receipts) // 10)
            for receipt in receipts:
                message = self.messages.get(self._by_receipt.pop(receipt, ""))
                if message is not None and message.receipt == receipt:
                    del self.messages[message.message_id]

    def change_visibility(self, receipts: Sequence[tuple[str, int]]) -> None:
        """Make each received message visible again after its delay."""
        with self._lock:
            now = self.clock()
            self.requests += -(-len(receipts) // 10)
            for receipt, seconds in receipts:
                message = self.messages.get(self._by_receipt.get(receipt, ""))
                if message is None or message.receipt != receipt:
                    continue
                if seconds <= 0:
                    message.version += 1
                    message.visible_at = now
                    self._ready.append((message.message_id, message.version))
                else:
                    self._hide(message, now + seconds)

    def __len__(self) -> int:
        with self._lock:
            return len(self.messages)


class QueueRetries:
    """RetryScheduler port over a MemoryQueue: failed records come back after their backoff."""

    def __init__(self, queue: MemoryQueue, *, scale: float = 1.0) -> None:
        self._queue = queue
        self._scale = scale

    def delay(self, receipts: Sequence[tuple[str, int]]) -> None:
        """ChangeMessageVisibilityBatch, with the delays scaled by `scale` (1.0: real backoff)."""
        self._queue.change_visibility([(r, max(0, round(s * self._scale))) for r, s in receipts])


class QueueDeferrals:
    """Deferrals port over a MemoryQueue: each deferred record becomes a new message with its delay."""

    def __init__(self, queue: MemoryQueue) -> None:
        self._queue = queue
        self.deferred = 0

    def defer(self, deferrals: Sequence[Deferral]) -> set[str]:
        """SendMessageBatch: ten per request."""
        for deferral in deferrals:
            self._queue.send(
                deferral.body,
                delay=deferral.seconds,
                deferrals=deferral.deferrals,
                published_at=deferral.published_at,
            )
            self.deferred += 1
        # The sends above counted one request each; SendMessageBatch takes ten.
        with self._queue._lock:
            self._queue.requests -= len(deferrals) - -(-len(deferrals) // 10)
        return set()


# -- virtual time --------------------------------------------------------------------


class SimClock:
    """Virtual time for discrete-event simulation: `sleep` moves it forward instead of waiting."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        """The current virtual time."""
        return self.now

    def sleep(self, seconds: float) -> None:
        """Advance virtual time."""
        self.now += max(0.0, seconds)


class _VirtualFuture(Future[Any]):
    def __init__(self, clock: SimClock, end: float) -> None:
        super().__init__()
        self._clock = clock
        self._end = end

    def result(self, timeout: float | None = None) -> Any:
        # Waiting for a task means the caller's virtual time catches up with the task's end.
        self._clock.now = max(self._clock.now, self._end)
        return super().result(timeout)


class VirtualExecutor(Executor):
    """A thread pool in virtual time: each task runs at once in the caller's thread, starting when one
    of `workers` slots is free, and its waits (latency, pacing) overlap those of the other tasks.
    """

    def __init__(self, clock: SimClock, workers: int) -> None:
        self._clock = clock
        self._workers = workers
        self._slots: list[float] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:  # type: ignore[override]
        """Run `fn` now in virtual time; the caller's clock stays at the submission time."""
        submitted = self._clock.now
        # A free slot at once; else the one that frees first.
        start = submitted if len(self._slots) < self._workers else max(submitted, heapq.heappop(self._slots))
        self._clock.now = start
        outcome: tuple[bool, Any]
        try:
            outcome = (True, fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller through the future, as a pool does
            outcome = (False, exc)
        end = self._clock.now
        heapq.heappush(self._slots, end)
        self._clock.now = submitted
        future = _VirtualFuture(self._clock, end)
        if outcome[0]:
            future.set_result(outcome[1])
        else:
            future.set_exception(outcome[1])
        return future

    def reset(self) -> None:
        """Forget slot times (a new invocation starts with an idle pool)."""
        self._slots.clear()


# -- requests ------------------------------------------------------------------------

SEED_TEMPLATES = ("welcome_email", "order_confirmation")


def request(template_id: str, n: int, *, user: str | None = None, **extra: Any) -> dict[str, Any]:
    """A request for a shipped template with its sample data, to recipient `user<n>@example.com`."""
    body: dict[str, Any] = {
        "recipient_email": f"user{n}@example.com",
        "template_id": template_id,
        "template_data": dict(SAMPLES[template_id]),
        **extra,
    }
    if user is not None:
        body["user_id"] = user
    return body


def seed_requests(count: int, *, start: int = 0) -> list[str]:
    """The seed article's two producer messages, alternating, to distinct recipients (JSON bodies)."""
    return [json.dumps(request(SEED_TEMPLATES[i % 2], start + i)) for i in range(count)]


# A realistic mix: transactional receipts and welcomes, a few password resets, and marketing mail
# under its per-user rate limit. Weights are shares of the requests.
MIX: tuple[tuple[str, float], ...] = (
    ("order_confirmation", 0.35),
    ("welcome_email", 0.15),
    ("password_reset", 0.10),
    ("newsletter", 0.40),
)


def mixed_requests(count: int, *, seed: int = 7, start: int = 0, users: int | None = None) -> list[str]:
    """`count` JSON bodies drawn from MIX; `users` bounds the distinct recipients (repeat users hit rate limits)."""
    rng = random.Random(seed)
    names = [name for name, _ in MIX]
    weights = [weight for _, weight in MIX]
    bodies = []
    for i in range(count):
        template_id = rng.choices(names, weights)[0]
        n = start + (rng.randrange(users) if users else i)
        bodies.append(json.dumps(request(template_id, n, idempotency_key=f"req-{start + i}")))
    return bodies


@contextmanager
def quiet_logs(level: int = logging.ERROR) -> Iterator[None]:
    """Keep the runtime's retry warnings out of the benchmark's output (and its CPU time) for a while."""
    runtime = logging.getLogger("mailwright")
    previous = runtime.level
    runtime.setLevel(level)
    try:
        yield
    finally:
        runtime.setLevel(previous)


# -- statistics and machine ----------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def median(values: Iterable[float]) -> float:
    """The median."""
    return float(statistics.median(list(values)))


def machine() -> dict[str, Any]:
    """A description of the machine the benchmarks ran on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain", "functions"],  # noqa: S607
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "load_average_at_start": load,
        "commit": commit + ("+uncommitted functions/" if dirty else ""),
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
