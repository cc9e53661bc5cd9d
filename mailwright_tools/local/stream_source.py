"""An emulated Lambda DynamoDB stream event source mapping, for the events publisher running in-process.

moto keeps a table's stream (one shard) and serves it through the DynamoDB
Streams API, but invokes no function without Docker, so the local stack reads
the stream itself, the way the deployed mapping does:

* records in order, up to `batch_size` per invocation, gathered for up to the
  batching window;
* the mapping's filter (writes to request items: INSERT and MODIFY of
  `sk = request`) applied before the invocation, as Lambda applies it;
* a partial batch response (`batchItemFailures` naming sequence numbers)
  makes it read again from the first failed record, after a pause; after
  `max_retries` tries of the same record it is skipped and counted (the
  deployed mapping would name it in the publisher's DLQ).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailwright.constants import MESSAGE_LOG_REQUEST_SK, Keys
from mailwright_tools.events import FakeLambdaContext

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], FakeLambdaContext], Any]
# The stream is read again this often when it had nothing new (as the SQS event sources poll an empty queue),
# and every quarter second while a batch fills: each read is an HTTP call to moto, which costs the stack CPU.
IDLE_POLL_SECONDS = 1.0
FILL_POLL_SECONDS = 0.25
RETRY_PAUSE_SECONDS = 0.5


def request_write(record: dict[str, Any]) -> bool:
    """The deployed mapping's filter: an INSERT or MODIFY of a request item."""
    keys = record.get("dynamodb", {}).get("Keys", {})
    return record.get("eventName") in ("INSERT", "MODIFY") and keys.get(Keys.MESSAGES_SK) == {
        "S": MESSAGE_LOG_REQUEST_SK
    }


@dataclass
class StreamSourceStats:
    """What the mapping did so far."""

    read: int = 0
    invocations: int = 0
    retried_batches: int = 0
    skipped_records: int = 0
    errors: list[str] = field(default_factory=list)


class StreamSourceEmulator:
    """Reads one DynamoDB stream from its start and invokes a handler with stream events, in order."""

    def __init__(
        self,
        *,
        name: str,
        streams: Any,
        stream_arn: str,
        handler_factory: Callable[[], Handler],
        batch_size: int = 100,
        batching_window_seconds: float = 1.0,
        max_retries: int = 10,
        timeout_seconds: float = 60.0,
        record_filter: Callable[[dict[str, Any]], bool] = request_write,
    ) -> None:
        self.name = name
        self._streams = streams
        self._stream_arn = stream_arn
        self._factory = handler_factory
        self._batch_size = batch_size
        self._window = batching_window_seconds
        self._max_retries = max_retries
        self._timeout = timeout_seconds
        self._filter = record_filter
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._busy = False
        self._caught_up = False
        self.stats = StreamSourceStats()

    @property
    def idle(self) -> bool:
        """Whether the last read found nothing new and nothing is being processed."""
        with self._lock:
            return self._caught_up and not self._busy

    def start(self) -> None:
        """Start reading."""
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop reading; a batch being processed is finished first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _iterator(self, *, after: str | None = None, at: str | None = None) -> str:
        shard = self._streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
        params: dict[str, Any] = {"StreamArn": self._stream_arn, "ShardId": shard}
        if at is not None:
            params.update(ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=at)
        elif after is not None:
            params.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
        else:
            params["ShardIteratorType"] = "TRIM_HORIZON"
        return str(self._streams.get_shard_iterator(**params)["ShardIterator"])

    def _run(self) -> None:
        handler: Handler | None = None
        iterator: str | None = None
        tries: dict[str, int] = {}
        while not self._stop.is_set():
            try:
                if iterator is None:
                    iterator = self._iterator()
                records, iterator = self._gather(iterator)
                if not records:
                    with self._lock:
                        self._caught_up = True
                    self._stop.wait(IDLE_POLL_SECONDS)
                    continue
                wanted = [r for r in records if self._filter(r)]
                if not wanted:
                    continue
                if handler is None:
                    handler = self._factory()
                failed_at = self._invoke(handler, wanted)
                if failed_at is None:
                    continue
                tries[failed_at] = tries.get(failed_at, 0) + 1
                if tries[failed_at] > self._max_retries:
                    with self._lock:
                        self.stats.skipped_records += 1
                        self.stats.errors.append(f"skipped record {failed_at} after {self._max_retries} retries")
                    logger.error("%s: gave up on record %s", self.name, failed_at)
                    iterator = self._iterator(after=failed_at)
                else:
                    with self._lock:
                        self.stats.retried_batches += 1
                    self._stop.wait(RETRY_PAUSE_SECONDS)
                    iterator = self._iterator(at=failed_at)
            except Exception as exc:  # the reader must survive anything: log it and read again
                logger.exception("stream source %s failed", self.name)
                with self._lock:
                    self.stats.errors.append(f"{type(exc).__name__}: {exc}")
                iterator = None
                self._stop.wait(1.0)
            finally:
                with self._lock:
                    self._busy = False

    def _gather(self, iterator: str) -> tuple[list[dict[str, Any]], str]:
        """Up to a batch of records: what the stream holds now, topped up until the window closes."""
        response = self._streams.get_records(ShardIterator=iterator, Limit=self._batch_size)
        records: list[dict[str, Any]] = list(response.get("Records", []))
        iterator = response.get("NextShardIterator") or iterator
        if not records:
            return records, iterator
        with self._lock:
            self._busy = True
            self._caught_up = False
        closes = time.monotonic() + self._window
        while len(records) < self._batch_size and time.monotonic() < closes and not self._stop.is_set():
            self._stop.wait(min(FILL_POLL_SECONDS, max(0.0, closes - time.monotonic())))
            more = self._streams.get_records(ShardIterator=iterator, Limit=self._batch_size - len(records))
            records.extend(more.get("Records", []))
            iterator = more.get("NextShardIterator") or iterator
        with self._lock:
            self.stats.read += len(records)
        return records, iterator

    def _invoke(self, handler: Handler, records: list[dict[str, Any]]) -> str | None:
        """Invoke with the batch; the sequence number to read again from, or None when it all succeeded."""
        event = {"Records": [{**r, "eventSourceARN": self._stream_arn} for r in records]}
        with self._lock:
            self.stats.invocations += 1
        try:
            response = handler(event, FakeLambdaContext(function_name=self.name, timeout_seconds=self._timeout))
        except Exception as exc:
            logger.exception("%s: invocation failed; the batch is read again", self.name)
            with self._lock:
                self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            return str(records[0]["dynamodb"]["SequenceNumber"])
        failures = (response or {}).get("batchItemFailures") or []
        failed = [str(f.get("itemIdentifier")) for f in failures if isinstance(f, dict)]
        if not failed:
            return None
        order = [str(r["dynamodb"]["SequenceNumber"]) for r in records]
        return min(failed, key=lambda sequence: order.index(sequence) if sequence in order else -1)
