"""An emulated Amazon MQ for RabbitMQ event source mapping: a real broker's queue into the ingest bridge.

`mailwright local up --rabbitmq amqp://USER:PASS@HOST:PORT/` polls one queue
of a RabbitMQ broker (`mailwright-requests` unless `--rabbitmq-queue` names
another) the way Lambda's mapping does, and invokes the bridge in-process with
the event Lambda would deliver:

* one poller: Lambda runs one concurrent invocation per Amazon MQ mapping on
  RabbitMQ, so messages are forwarded in order;
* a batch is gathered until it holds `batch_size` messages (100, the
  mapping's default) or the batching window (0.5 s, its default) closes;
* the event is `rmqMessagesByQueue` keyed `<queue>::<virtual host>`, each
  message's body base64 in `data` and its AMQP properties in
  `basicProperties` (string headers as `{"bytes": [...]}`);
* a batch the bridge returns from is acknowledged; one it fails on (or takes
  longer than the function's timeout for) is rejected back to the queue, so
  the broker redelivers it (`redelivered: true`), as a mapping does.

The queue is declared durable if it does not exist (a local convenience; the
deployed mapping needs it to exist). The broker is the user's: nothing here
starts or stops it.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infra.config import BRIDGE_TIMEOUT_SECONDS
from mailwright_tools.events import FakeLambdaContext, rabbitmq_event

logger = logging.getLogger(__name__)

DEFAULT_QUEUE = "mailwright-requests"
# The Amazon MQ mapping's defaults.
DEFAULT_BATCH_SIZE = 100
DEFAULT_BATCHING_WINDOW_SECONDS = 0.5
# An empty queue is asked again after this long.
IDLE_POLL_SECONDS = 0.2
# After a failed batch (or a lost connection), wait before trying again rather than spin.
RETRY_PAUSE_SECONDS = 1.0

Handler = Callable[[dict[str, Any], FakeLambdaContext], Any]


class RabbitMQUrlError(ValueError):
    """The broker URL given to `--rabbitmq` is not an amqp:// or amqps:// URL."""


@dataclass(frozen=True)
class RabbitMQSourceSettings:
    """Where to poll, and the mapping's batching."""

    url: str
    queue: str = DEFAULT_QUEUE
    batch_size: int = DEFAULT_BATCH_SIZE
    batching_window_seconds: float = DEFAULT_BATCHING_WINDOW_SECONDS
    timeout_seconds: float = BRIDGE_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        if urllib.parse.urlsplit(self.url).scheme not in ("amqp", "amqps"):
            raise RabbitMQUrlError(f"{redacted(self.url)} is not an amqp:// (or amqps://) URL")

    @property
    def virtual_host(self) -> str:
        """The URL's virtual host ("/" when the URL's path is empty or "/")."""
        path = urllib.parse.urlsplit(self.url).path
        return urllib.parse.unquote(path[1:]) if len(path) > 1 else "/"


def redacted(url: str) -> str:
    """The URL without its password, for logs, the banner and local.json."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


@dataclass
class RabbitMQSourceStats:
    """What the mapping did so far."""

    received: int = 0
    invocations: int = 0
    acked: int = 0
    requeued: int = 0
    failed_batches: int = 0
    backlog: int = 0
    errors: list[str] = field(default_factory=list)


class RabbitMQEventSource:
    """Polls one RabbitMQ queue with one poller and invokes a handler with Amazon MQ events."""

    def __init__(self, *, name: str, settings: RabbitMQSourceSettings, handler_factory: Callable[[], Handler]) -> None:
        import pika

        self.name = name
        self.settings = settings
        self._parameters = pika.URLParameters(settings.url)
        self._factory = handler_factory
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._in_flight = False
        self._connected = threading.Event()
        self.stats = RabbitMQSourceStats()

    @property
    def idle(self) -> bool:
        """Whether no batch is being processed and the queue held nothing at the last look."""
        with self._lock:
            return not self._in_flight and self.stats.backlog == 0

    def start(self, *, connect_timeout: float = 10.0) -> None:
        """Connect (a broker that cannot be reached fails here, with why), then poll in the background."""
        connection = self._connect()
        self._thread = threading.Thread(target=self._run, args=(connection,), name=self.name, daemon=True)
        self._thread.start()
        if not self._connected.wait(connect_timeout):
            raise OSError(f"RabbitMQ at {redacted(self.settings.url)} did not answer in {connect_timeout:g} s")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling; a batch being processed is finished (acknowledged or requeued) first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the poller ---------------------------------------------------------

    def _connect(self) -> Any:
        import pika
        import pika.exceptions

        try:
            connection = pika.BlockingConnection(self._parameters)
        except pika.exceptions.AMQPError as exc:
            raise OSError(f"could not connect to RabbitMQ at {redacted(self.settings.url)}: {exc!r}") from None
        return connection

    def _run(self, connection: Any) -> None:
        while not self._stop.is_set():
            try:
                if connection is None or not connection.is_open:
                    connection = self._connect()
                channel = connection.channel()
                channel.queue_declare(queue=self.settings.queue, durable=True)
                channel.basic_qos(prefetch_count=self.settings.batch_size)
                self._connected.set()
                self._poll(channel)
            except Exception as exc:  # the poller must survive anything: log it, reconnect, keep polling
                logger.exception("%s: polling %s failed", self.name, self.settings.queue)
                with self._lock:
                    self.stats.errors.append(f"{type(exc).__name__}: {exc}")
                    self._in_flight = False
                # Closing the connection hands every unacknowledged message back to the queue.
                _close(connection)
                connection = None
                self._stop.wait(RETRY_PAUSE_SECONDS)
        _close(connection)

    def _poll(self, channel: Any) -> None:
        handler: Handler | None = None  # the container's handler, built on its first batch (a cold start)
        while not self._stop.is_set():
            batch = self._gather(channel)
            if not batch:
                depth = channel.queue_declare(queue=self.settings.queue, passive=True).method.message_count
                with self._lock:
                    self.stats.backlog = depth
                self._stop.wait(IDLE_POLL_SECONDS)
                continue
            try:
                if handler is None:
                    handler = self._factory()
                ok = self._invoke(handler, batch)
                last_tag = batch[-1][0].delivery_tag
                if ok:
                    channel.basic_ack(delivery_tag=last_tag, multiple=True)
                else:
                    channel.basic_nack(delivery_tag=last_tag, multiple=True, requeue=True)
                with self._lock:
                    if ok:
                        self.stats.acked += len(batch)
                    else:
                        self.stats.requeued += len(batch)
            finally:
                with self._lock:
                    self._in_flight = False
            if not ok:
                self._stop.wait(RETRY_PAUSE_SECONDS)

    def _gather(self, channel: Any) -> list[tuple[Any, Any, bytes]]:
        """One batch: the first message, then more until the batch is full or the window closes."""
        method, properties, body = channel.basic_get(queue=self.settings.queue, auto_ack=False)
        if method is None:
            return []
        with self._lock:
            self._in_flight = True
            self.stats.backlog = method.message_count
        batch = [(method, properties, body)]
        window_closes = time.monotonic() + self.settings.batching_window_seconds
        while len(batch) < self.settings.batch_size and time.monotonic() < window_closes:
            method, properties, body = channel.basic_get(queue=self.settings.queue, auto_ack=False)
            if method is None:
                self._stop.wait(min(0.05, max(0.0, window_closes - time.monotonic())))
                continue
            batch.append((method, properties, body))
        with self._lock:
            self.stats.received += len(batch)
        return batch

    def _invoke(self, handler: Handler, batch: list[tuple[Any, Any, bytes]]) -> bool:
        event = rabbitmq_event(
            [(body, _properties(method, properties)) for method, properties, body in batch],
            queue=self.settings.queue,
            virtual_host=self.settings.virtual_host,
        )
        context = FakeLambdaContext(function_name=self.name, timeout_seconds=self.settings.timeout_seconds)
        started = time.monotonic()
        with self._lock:
            self.stats.invocations += 1
        try:
            handler(event, context)
        except Exception as exc:
            logger.exception("%s: invocation failed; the batch goes back to the queue", self.name)
            self._failed(f"{type(exc).__name__}: {exc}")
            return False
        if time.monotonic() - started > self.settings.timeout_seconds:
            self._failed(f"timed out after {self.settings.timeout_seconds} s")
            return False
        return True

    def _failed(self, why: str) -> None:
        with self._lock:
            self.stats.failed_batches += 1
            self.stats.errors.append(why)


def _close(connection: Any) -> None:
    try:
        if connection is not None and connection.is_open:
            connection.close()
    except Exception:  # already broken: nothing left to hand back
        logger.debug("closing a broken RabbitMQ connection failed", exc_info=True)


def _properties(method: Any, properties: Any) -> dict[str, Any]:
    """A message's AMQP properties by pika's names, and whether the broker redelivered it."""
    names = (
        "content_type",
        "content_encoding",
        "headers",
        "delivery_mode",
        "priority",
        "correlation_id",
        "reply_to",
        "expiration",
        "message_id",
        "timestamp",
        "type",
        "user_id",
        "app_id",
        "cluster_id",
    )
    found = {name: getattr(properties, name, None) for name in names}
    found["redelivered"] = bool(method.redelivered)
    return found
