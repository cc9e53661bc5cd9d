"""The ingest bridge: Kafka and RabbitMQ records into the lane queues, with the SDK's validation and routing.

Lambda event source mappings poll a Kafka topic (Amazon MSK or a self-managed
cluster) or an Amazon MQ for RabbitMQ queue and invoke the bridge with a batch
in the shape Lambda documents for each:

* Kafka: ``{"eventSource": "aws:kafka" | "SelfManagedKafka", "records":
  {"<topic>-<partition>": [{"topic", "partition", "offset", "timestamp",
  "value": <base64>, "headers": [{"<name>": [<byte>, ...]}, ...]}, ...]}}``;
* RabbitMQ: ``{"eventSource": "aws:rmq", "rmqMessagesByQueue":
  {"<queue>::<virtual host>": [{"basicProperties": {...}, "redelivered",
  "data": <base64>}, ...]}}``.

Each record's value is one request, exactly what a producer would put on a
lane queue. The bridge parses it with the worker's own `parse_request`, routes
it as the producer SDK does (its `priority`, else its template's priority,
else `standard`) and publishes it to that lane's queue, so every guarantee of
the lanes (DLQs, backoff, dedupe, pacing) applies unchanged.

A record that is not a valid request never blocks its partition or queue: it
is recorded `rejected` in the message log, with the reason, under the id the
worker derives for such a body (`mailwright status` finds it), and counted.
A failure of the bridge itself (a lane queue that keeps refusing, the message
log or the templates bucket unreachable) fails the whole batch, which the
event source mapping retries; a record published twice is sent once (the
worker's dedupe).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes import KafkaEvent
from aws_lambda_powertools.utilities.data_classes.rabbit_mq_event import RabbitMQEvent

from mailwright.addresses import mask_address
from mailwright.constants import DEFAULT_LANE, LANES, STATUS_REJECTED
from mailwright.errors import IngestDeliveryError, IngestEventError, RejectedError, TemplateNotFoundError
from mailwright.ports import LaneMessage, LanePublisher, MessageLog, Outcome, TemplateSource
from mailwright.request import EmailRequest, parse_request

logger = logging.getLogger(__name__)

SOURCE_KAFKA = "kafka"
SOURCE_RABBITMQ = "rabbitmq"
# What Lambda puts in `eventSource` for each kind of mapping.
EVENT_SOURCES: dict[str, str] = {
    "aws:kafka": SOURCE_KAFKA,
    "SelfManagedKafka": SOURCE_KAFKA,
    "aws:rmq": SOURCE_RABBITMQ,
}
# A lane message carries at most this much (SQS takes 256 KiB per message; the SDK keeps the same margin).
MAX_BODY_BYTES = 255 * 1024
# Headers a producer may set to find its record in the bridge's logs (names compared lower-cased).
CORRELATION_HEADERS = ("correlation-id", "correlation_id", "x-correlation-id", "message-id", "message_id")
# Amazon MQ writes a message's AMQP timestamp like "Jan 1, 1970, 12:33:41 AM" (UTC).
_RABBITMQ_TIME_FORMAT = "%b %d, %Y, %I:%M:%S %p"


@dataclass(frozen=True)
class IngestRecord:
    """One Kafka record or RabbitMQ message, decoded as far as it can be.

    `body` is the decoded value, or None when there is none to decode (then
    `problem` says why, and `raw` is the value as delivered).
    """

    source: str
    position: str
    raw: str
    body: bytes | None
    problem: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    correlation_id: str | None = None
    received_at: float | None = None

    @property
    def identity(self) -> str:
        """The id the worker derives for a body it cannot parse (a hash of the body), so `status` finds it."""
        data = self.body if self.body is not None else self.raw.encode("utf-8", "replace")
        return hashlib.sha256(data).hexdigest()[:32]


def ingest_records(event: Mapping[str, Any]) -> tuple[str, list[IngestRecord]]:
    """The source (`kafka` or `rabbitmq`) and the records of a Lambda event; IngestEventError for anything else."""
    if not isinstance(event, Mapping):
        raise IngestEventError("the event is not a JSON object")
    source = EVENT_SOURCES.get(str(event.get("eventSource")))
    try:
        if source == SOURCE_KAFKA:
            return source, kafka_records(event)
        if source == SOURCE_RABBITMQ:
            return source, rabbitmq_records(event)
    except (KeyError, TypeError, AttributeError) as exc:
        raise IngestEventError(f"a {source} event without its records ({type(exc).__name__}: {exc})") from None
    raise IngestEventError(f"eventSource {event.get('eventSource')!r} is neither Kafka nor RabbitMQ")


def kafka_records(event: Mapping[str, Any]) -> list[IngestRecord]:
    """The records of a Kafka event (MSK or self-managed), in the order Lambda delivered them."""
    records = []
    for record in KafkaEvent(dict(event)).records:
        data = record.raw_event
        headers = _kafka_headers(data.get("headers"))
        timestamp = data.get("timestamp")
        body, problem = _decode(data.get("value"), missing="the record has no value (a tombstone)")
        records.append(
            IngestRecord(
                source=SOURCE_KAFKA,
                position=f"{data.get('topic')}-{data.get('partition')}@{data.get('offset')}",
                raw=str(data.get("value") or ""),
                body=body,
                problem=problem,
                headers=headers,
                correlation_id=_correlation(headers),
                received_at=timestamp / 1000 if isinstance(timestamp, (int, float)) and timestamp > 0 else None,
            )
        )
    return records


def rabbitmq_records(event: Mapping[str, Any]) -> list[IngestRecord]:
    """The messages of an Amazon MQ for RabbitMQ event, queue by queue, in delivery order."""
    records = []
    for queue, messages in RabbitMQEvent(dict(event)).rmq_messages_by_queue.items():
        for index, message in enumerate(messages):
            data = message.raw_event
            properties = data.get("basicProperties") or {}
            headers = _rabbitmq_headers(properties.get("headers"))
            correlation = properties.get("correlationId") or properties.get("messageId") or _correlation(headers)
            body, problem = _decode(data.get("data"), missing="the message has no data")
            redelivered = " (redelivered)" if data.get("redelivered") else ""
            records.append(
                IngestRecord(
                    source=SOURCE_RABBITMQ,
                    position=f"{queue}#{index}{redelivered}",
                    raw=str(data.get("data") or ""),
                    body=body,
                    problem=problem,
                    headers=headers,
                    correlation_id=str(correlation) if correlation else None,
                    received_at=_rabbitmq_time(properties.get("timestamp")),
                )
            )
    return records


def _decode(value: Any, *, missing: str) -> tuple[bytes | None, str | None]:
    if value is None or value == "":
        return None, missing
    if not isinstance(value, str):
        return None, "the value is not base64 text"
    try:
        return base64.b64decode(value, validate=True), None
    except (binascii.Error, ValueError):
        return None, "the value is not valid base64"


def _text(raw: Any) -> str | None:
    """A header value as text: byte arrays (lists of 0-255) decoded as UTF-8, plain scalars as they are."""
    if isinstance(raw, list) and all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in raw):
        return bytes(raw).decode("utf-8", "replace")
    if isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
        return str(raw)
    return None


def _kafka_headers(raw: Any) -> dict[str, str]:
    """Kafka headers (a list of one-entry objects of byte arrays); a malformed entry is skipped, never fatal."""
    headers: dict[str, str] = {}
    for entry in raw if isinstance(raw, list) else []:
        for name, value in entry.items() if isinstance(entry, dict) else ():
            text = _text(value)
            if text is not None:
                headers[str(name).lower()] = text
    return headers


def _rabbitmq_headers(raw: Any) -> dict[str, str]:
    """AMQP headers as Amazon MQ delivers them: strings as {"bytes": [...]}, numbers as numbers."""
    headers: dict[str, str] = {}
    for name, value in raw.items() if isinstance(raw, dict) else ():
        text = _text(value.get("bytes") if isinstance(value, dict) else value)
        if text is not None:
            headers[str(name).lower()] = text
    return headers


def _correlation(headers: Mapping[str, str]) -> str | None:
    return next((headers[name] for name in CORRELATION_HEADERS if headers.get(name)), None)


def _rabbitmq_time(raw: Any) -> float | None:
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw, _RABBITMQ_TIME_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


# -- routing ------------------------------------------------------------------


def lane_for(request: EmailRequest, template_priority: Callable[[str], str | None]) -> str:
    """The lane of a request as the producer SDK routes it: its priority, its template's, else `standard`."""
    return request.priority or template_priority(request.template_id) or DEFAULT_LANE


class TemplatePriorities:
    """Each template's default priority, read from its bundle in the templates bucket (cached by the source).

    An unknown template routes to `standard`, where the worker records the
    request `rejected` (unknown template), as it does for a producer.
    """

    def __init__(self, templates: TemplateSource) -> None:
        self._templates = templates

    def __call__(self, template_id: str) -> str | None:
        """The template's priority, or None when there is no such template."""
        try:
            return self._templates.get(template_id).metadata.priority
        except TemplateNotFoundError:
            return None


# -- the service --------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    """A record that is not a valid request: logged `rejected` under `request_id`."""

    request_id: str
    reason_code: str
    reason: str
    position: str
    correlation_id: str | None = None


@dataclass
class BridgeReport:
    """What the bridge did with one batch."""

    source: str
    records: int = 0
    forwarded: dict[str, int] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The handler's response: counts only (no request content)."""
        return {
            "source": self.source,
            "records": self.records,
            "forwarded": dict(self.forwarded),
            "rejected": len(self.rejected),
        }


@dataclass(frozen=True)
class _Accepted:
    record: IngestRecord
    request: EmailRequest
    lane: str
    body: str


class BridgeService:
    """Validates and routes a batch of ingest records, publishes the valid ones, records the rejected ones."""

    def __init__(
        self,
        *,
        publisher: LanePublisher,
        message_log: MessageLog,
        template_priority: Callable[[str], str | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._publisher = publisher
        self._log = message_log
        self._template_priority = template_priority
        self._clock = clock

    def forward(self, source: str, records: Sequence[IngestRecord]) -> BridgeReport:
        """Publish the batch's valid requests and record its invalid ones; IngestDeliveryError if either fails."""
        report = BridgeReport(source=source, records=len(records))
        accepted: list[_Accepted] = []
        outcomes: list[Outcome] = []
        priorities = _BatchPriorities(self._template_priority)
        for record in records:
            try:
                accepted.append(self._accept(record, priorities))
            except RejectedError as exc:
                outcomes.append(self._rejected(record, exc, report))
        refused = self._publisher.publish(
            [LaneMessage(key=str(i), lane=item.lane, body=item.body) for i, item in enumerate(accepted)]
        )
        refused_keys = {item.key for item in refused}
        for index, item in enumerate(accepted):
            if str(index) not in refused_keys:
                report.forwarded[item.lane] = report.forwarded.get(item.lane, 0) + 1
        if outcomes:
            try:
                self._log.record(outcomes)
            except Exception as exc:
                raise IngestDeliveryError("message_log_unavailable", f"rejections not recorded: {exc}") from exc
        if refused:
            first = refused[0]
            raise IngestDeliveryError(
                "lane_refused",
                f"{len(refused)} of {len(accepted)} request(s) not accepted by the lane queues after retries "
                f"({first.code}: {first.message})",
            )
        return report

    def _accept(self, record: IngestRecord, priorities: _BatchPriorities) -> _Accepted:
        if record.body is None:
            raise RejectedError("invalid_encoding", record.problem or "the record has no value")
        request = parse_request(record.body)
        lane = lane_for(request, priorities)
        if lane not in LANES:  # a template.json the bundler accepted names only lanes; a guard all the same
            raise RejectedError("invalid_request", f"unknown priority {lane!r} for template {request.template_id!r}")
        # What the worker will parse, published as the SDK publishes it; the id is the one logged.
        body = request.model_dump_json(exclude_none=True, exclude_defaults=True)
        request = EmailRequest.model_validate_json(body)
        if len(body.encode("utf-8")) > MAX_BODY_BYTES:
            raise _TooLargeError(request, lane)
        return _Accepted(record=record, request=request, lane=lane, body=body)

    def _rejected(self, record: IngestRecord, exc: RejectedError, report: BridgeReport) -> Outcome:
        request = exc.request if isinstance(exc, _TooLargeError) else None
        request_id = request.request_id if request is not None else record.identity
        report.rejected.append(
            Rejection(
                request_id=request_id,
                reason_code=exc.code,
                reason=exc.message,
                position=record.position,
                correlation_id=record.correlation_id,
            )
        )
        return Outcome(
            request_id=request_id,
            status=STATUS_REJECTED,
            lane=exc.lane if isinstance(exc, _TooLargeError) else DEFAULT_LANE,
            reason_code=exc.code,
            reason=exc.message,
            template_id=request.template_id if request else None,
            recipient_masked=mask_address(request.recipient_email) if request else None,
            metadata=dict(request.metadata) if request else {},
            received_at=record.received_at,
            completed_at=self._clock(),
        )


class _TooLargeError(RejectedError):
    """A valid request too large for a lane message; recorded under its own id."""

    def __init__(self, request: EmailRequest, lane: str) -> None:
        super().__init__("too_large", f"larger than {MAX_BODY_BYTES // 1024} KiB, the most one lane message carries")
        self.request = request
        self.lane = lane


class _BatchPriorities:
    """Template priorities looked up once per template per batch; a lookup that fails fails the batch."""

    def __init__(self, lookup: Callable[[str], str | None]) -> None:
        self._lookup = lookup
        self._known: dict[str, str | None] = {}

    def __call__(self, template_id: str) -> str | None:
        if template_id not in self._known:
            try:
                self._known[template_id] = self._lookup(template_id)
            except Exception as exc:
                raise IngestDeliveryError("template_unavailable", f"template {template_id}: {exc}") from exc
        return self._known[template_id]
