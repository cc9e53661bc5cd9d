"""An emulated Lambda SQS event source mapping, for handlers that run in-process.

moto's own SQS-to-Lambda mapping needs Docker and ignores partial batch
responses, so the local stack polls the queues itself, the way the mapping
does with `ReportBatchItemFailures`:

* up to `max_concurrency` invocations at once, each in its own emulated
  container (the handler is built once per container, on its first batch);
* a batch is gathered until it holds `batch_size` records or the batching
  window, counted from the first record, closes (SQS returns at most 10 per
  receive, so bigger batches take several);
* the queue's own visibility timeout applies; every receive raises the
  message's receive count, and SQS (moto applies the queue's redrive policy
  on receive) moves a message whose count would exceed `maxReceiveCount`
  to the dead-letter queue;
* after the invocation, records not listed in `batchItemFailures` are
  deleted; the listed ones stay and come back when their visibility timeout
  (which the worker raises for backoff) runs out. An error, a timeout, or a
  response naming a record that is not in the batch fails the whole batch,
  as Lambda does;
* it can be disabled and enabled, as `UpdateEventSourceMapping(Enabled=...)`
  does: a disabled mapping receives nothing (a batch already received is
  finished) and its queue keeps what arrives. `mailwright_tools.local.lane_api`
  serves that switch through the Lambda API, for the CLI and the breaker.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailwright_tools.events import FakeLambdaContext, sqs_event

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], FakeLambdaContext], Any]
HandlerFactory = Callable[[], Handler]

MAX_RECEIVE = 10  # SQS ReceiveMessage returns at most ten messages
# An empty queue is asked again after this long. Lambda long-polls instead; moto's long
# poll re-scans the whole queue (in-flight messages included) every time a message
# arrives, for every waiting poller, which costs more than it saves here.
IDLE_POLL_SECONDS = 1.0
# A disabled mapping looks again this often whether it has been enabled.
DISABLED_POLL_SECONDS = 0.2
# Mapping states, as Lambda reports them.
STATE_ENABLED = "Enabled"
STATE_DISABLING = "Disabling"  # disabled while a batch it received is still being processed
STATE_DISABLED = "Disabled"


@dataclass(frozen=True)
class EventSourceSettings:
    """The mapping's settings, as the CDK stack sets them for a lane."""

    batch_size: int
    batching_window_seconds: float
    max_concurrency: int
    timeout_seconds: float


@dataclass
class EventSourceStats:
    """What the mapping did so far."""

    received: int = 0
    invocations: int = 0
    deleted: int = 0
    failed_records: int = 0
    failed_batches: int = 0
    in_flight: int = 0
    errors: list[str] = field(default_factory=list)


class EventSourceEmulator:
    """Polls one queue and invokes a handler with SQS events, honouring partial batch responses."""

    def __init__(
        self,
        *,
        name: str,
        sqs: Any,
        queue_url: str,
        settings: EventSourceSettings,
        handler_factory: HandlerFactory,
        region: str = "us-east-1",
    ) -> None:
        self.name = name
        self.settings = settings
        self._sqs = sqs
        self._queue_url = queue_url
        self._factory = handler_factory
        self._region = region
        self._queue_arn: str = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._stop = threading.Event()
        self._enabled = threading.Event()
        self._enabled.set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.stats = EventSourceStats()
        # What Lambda calls the mapping: a UUID, and when it last changed.
        self.uuid = str(uuid.uuid4())
        self.last_modified = time.time()

    @property
    def queue_arn(self) -> str:
        """The ARN of the queue this mapping polls."""
        return self._queue_arn

    @property
    def enabled(self) -> bool:
        """Whether the mapping receives from its queue."""
        return self._enabled.is_set()

    @property
    def state(self) -> str:
        """Enabled, Disabling (a received batch is still being processed) or Disabled."""
        if self._enabled.is_set():
            return STATE_ENABLED
        with self._lock:
            busy = self.stats.in_flight > 0
        return STATE_DISABLING if busy else STATE_DISABLED

    def set_enabled(self, enabled: bool) -> str:
        """Enable or disable receiving, as UpdateEventSourceMapping does; returns the state right after."""
        if enabled != self._enabled.is_set():
            if enabled:
                self._enabled.set()
            else:
                self._enabled.clear()
            self.last_modified = time.time()
            logger.info("event source %s %s", self.name, "enabled" if enabled else "disabled")
        return self.state

    @property
    def idle(self) -> bool:
        """Whether no received batch is being filled or processed (waiting for a first record is idle)."""
        with self._lock:
            return self.stats.in_flight == 0

    def start(self) -> None:
        """Start one poller per concurrent invocation."""
        for slot in range(self.settings.max_concurrency):
            thread = threading.Thread(target=self._run, name=f"{self.name}-{slot}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling; a batch being processed is finished first."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        handler: Handler | None = None  # this container's handler, built on its first batch (a cold start)
        while not self._stop.is_set():
            if not self._enabled.is_set():
                self._stop.wait(DISABLED_POLL_SECONDS)
                continue
            try:
                messages = self._gather()
                if not messages:
                    continue
                try:
                    if handler is None:
                        handler = self._factory()
                    self._invoke(handler, messages)
                finally:
                    with self._lock:
                        self.stats.in_flight -= 1
            except Exception as exc:  # the poller must survive anything: log it and keep polling
                logger.exception("event source %s failed", self.name)
                with self._lock:
                    self.stats.errors.append(f"{type(exc).__name__}: {exc}")
                self._stop.wait(1.0)

    def _receive(self, count: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=max(1, min(MAX_RECEIVE, count)),
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return messages

    def _gather(self) -> list[dict[str, Any]]:
        """One batch: wait for a first record, then fill up until the batch is full or the window closes."""
        size = self.settings.batch_size
        messages = self._receive(size)
        if not messages:
            self._stop.wait(IDLE_POLL_SECONDS)
            return []
        with self._lock:
            self.stats.in_flight += 1  # from here until the invocation is done: see `idle`
        window_closes = time.monotonic() + self.settings.batching_window_seconds
        while len(messages) < size and not self._stop.is_set():
            left = window_closes - time.monotonic()
            if left <= 0:
                break
            try:
                more = self._receive(size - len(messages))
            except Exception:
                logger.exception("%s: receive failed while filling a batch; invoking with what arrived", self.name)
                break
            messages.extend(more)
            if not more:
                self._stop.wait(min(0.25, max(0.0, window_closes - time.monotonic())))
        with self._lock:
            self.stats.received += len(messages)
        return messages

    def _invoke(self, handler: Handler, messages: list[dict[str, Any]]) -> None:
        event = sqs_event(messages, queue_arn=self._queue_arn, region=self._region)
        context = FakeLambdaContext(function_name=self.name, timeout_seconds=self.settings.timeout_seconds)
        started = time.monotonic()
        with self._lock:
            self.stats.invocations += 1
        try:
            response = handler(event, context)
        except Exception as exc:
            logger.exception("%s: invocation failed; the whole batch returns to the queue", self.name)
            self._fail_batch(messages, f"{type(exc).__name__}: {exc}")
            return
        if time.monotonic() - started > self.settings.timeout_seconds:
            self._fail_batch(messages, f"timed out after {self.settings.timeout_seconds} s")
            return
        failed = self._failed_ids(response, {m["MessageId"] for m in messages})
        if failed is None:
            self._fail_batch(messages, f"invalid partial batch response: {response!r:.200}")
            return
        done = [m for m in messages if m["MessageId"] not in failed]
        self._delete(done)
        with self._lock:
            self.stats.deleted += len(done)
            self.stats.failed_records += len(failed)

    @staticmethod
    def _failed_ids(response: Any, batch: set[str]) -> set[str] | None:
        """The failed message ids, or None when the response fails the whole batch."""
        if response is None or response == {}:
            return set()
        if not isinstance(response, dict):
            return None
        items = response.get("batchItemFailures")
        if items is None:
            return set()
        if not isinstance(items, list):
            return None
        failed = set()
        for item in items:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not identifier or identifier not in batch:
                return None
            failed.add(identifier)
        return failed

    def _fail_batch(self, messages: list[dict[str, Any]], why: str) -> None:
        with self._lock:
            self.stats.failed_batches += 1
            self.stats.failed_records += len(messages)
            self.stats.errors.append(why)
        logger.warning("%s: batch of %d failed: %s", self.name, len(messages), why)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            response = self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            for failure in response.get("Failed", []):
                logger.warning("%s: could not delete a message: %s", self.name, failure.get("Code"))
