"""Producer SDK: validate email requests, then publish them to a lane queue or the EventBridge bus.

It needs only boto3 and the request model, so any Python service can use it::

    from mailwright.sdk import send, send_batch

    request_id = send(
        {"recipient_email": "jane@example.com", "template_id": "order_confirmation",
         "template_data": {"order_id": "XYZ789", "total_amount": "$49.99"}},
        queue_urls={"standard": STANDARD_QUEUE_URL},
    )
    ids = send_batch(requests, event_bus="Mailwright")

Every request is validated before anything is published: one invalid request
raises `InvalidRequestError` naming its index and reason, and nothing is sent.
A batch is published ten entries per call; entries the service did not accept
are retried once, and those still refused raise `PartialBatchError`, which
names them (and the request ids that were accepted).

The returned request id is the one the worker logs the request under (the
`messages` table key and the `request_id` tag on the email). `StatusClient`
(from `mailwright.status_client`, re-exported here) asks the status API what
became of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from mailwright.constants import DEFAULT_LANE, EVENT_DETAIL_TYPE, LANES
from mailwright.errors import MailwrightError
from mailwright.request import EmailRequest, describe_validation_error
from mailwright.status_client import MessageNotFoundError, StatusApiError, StatusClient

__all__ = [
    "FailedEntry",
    "InvalidRequestError",
    "MessageNotFoundError",
    "PartialBatchError",
    "Publisher",
    "StatusApiError",
    "StatusClient",
    "send",
    "send_batch",
    "template_priorities",
]

# SQS and EventBridge both take at most 10 entries and 256 KiB per call.
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024
DEFAULT_SOURCE = "mailwright.sdk"

# Where `Publisher.from_env()` (and `send()` without a target) finds the stack.
ENV_EVENT_BUS = "MAILWRIGHT_EVENT_BUS"
ENV_QUEUE_URL = "MAILWRIGHT_{lane}_QUEUE_URL"

RequestLike = EmailRequest | Mapping[str, Any]


class InvalidRequestError(MailwrightError, ValueError):
    """One or more requests are invalid; nothing was published. `problems` holds (index, reason) pairs."""

    def __init__(self, problems: Sequence[tuple[int, str]]) -> None:
        self.problems = list(problems)
        shown = "; ".join(f"request {index}: {reason}" for index, reason in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"{len(self.problems)} invalid request(s), nothing was published: {shown}{more}")

    @property
    def index(self) -> int:
        """Index of the first invalid request."""
        return self.problems[0][0]

    @property
    def reason(self) -> str:
        """Why the first invalid request is invalid."""
        return self.problems[0][1]


@dataclass(frozen=True)
class FailedEntry:
    """A request the service did not accept, even after one retry."""

    index: int
    request_id: str
    code: str
    message: str


class PartialBatchError(MailwrightError):
    """Some requests of a batch were not accepted after a retry; the others were published.

    `failed` lists the refused ones; `request_ids` holds every request id in
    input order (`accepted` only those that were published).
    """

    def __init__(self, failed: Sequence[FailedEntry], request_ids: Sequence[str]) -> None:
        self.failed = list(failed)
        self.request_ids = list(request_ids)
        refused = {entry.index for entry in self.failed}
        self.accepted = [rid for index, rid in enumerate(self.request_ids) if index not in refused]
        shown = "; ".join(f"request {e.index} ({e.code}: {e.message})" for e in self.failed[:5])
        more = f" (and {len(self.failed) - 5} more)" if len(self.failed) > 5 else ""
        super().__init__(
            f"{len(self.failed)} of {len(self.request_ids)} request(s) were not accepted after a retry: {shown}{more}"
        )


@dataclass(frozen=True)
class _Prepared:
    index: int
    request: EmailRequest
    lane: str
    body: str


def template_priorities(templates_dir: Path) -> dict[str, str]:
    """The default priority of each template in a `templates/` directory (template id -> lane)."""
    priorities = {}
    for meta in sorted(templates_dir.glob("*/template.json")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        priorities[meta.parent.name] = str(data.get("priority", DEFAULT_LANE))
    return priorities


class Publisher:
    """Publishes validated requests to lane queues (`queue_urls`, or one `queue_url`) or to an EventBridge bus.

    The lane of a request is its `priority`, else its template's default
    priority when `template_priorities` knows the template, else `standard`.
    Through EventBridge the lane travels as `detail.priority` (the bus rules
    route on it), so it is written into the published request.
    """

    def __init__(
        self,
        *,
        queue_urls: Mapping[str, str] | None = None,
        queue_url: str | None = None,
        event_bus: str | None = None,
        template_priorities: Mapping[str, str] | None = None,
        source: str = DEFAULT_SOURCE,
        session: boto3.session.Session | None = None,
        sqs_client: Any = None,
        events_client: Any = None,
    ) -> None:
        given = [
            name
            for name, value in (("queue_urls", queue_urls), ("queue_url", queue_url), ("event_bus", event_bus))
            if value
        ]
        if len(given) != 1:
            raise ValueError("give exactly one of queue_urls, queue_url or event_bus")
        unknown = set(queue_urls or {}) - set(LANES)
        if unknown:
            raise ValueError(f"unknown lanes {sorted(unknown)}; lanes are {', '.join(LANES)}")
        self._queue_urls = dict(queue_urls or {})
        self._queue_url = queue_url
        self._event_bus = event_bus
        self._priorities = dict(template_priorities or {})
        self._source = source
        session = session or boto3.session.Session()
        self._sqs = sqs_client
        self._events = events_client
        if event_bus and self._events is None:
            self._events = session.client("events")
        if not event_bus and self._sqs is None:
            self._sqs = session.client("sqs")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Publisher:
        """A publisher for the bus in MAILWRIGHT_EVENT_BUS, else the queues in MAILWRIGHT_<LANE>_QUEUE_URL."""
        env = os.environ if environ is None else environ
        if env.get(ENV_EVENT_BUS):
            return cls(event_bus=env[ENV_EVENT_BUS], **kwargs)
        queues = {lane: env[key] for lane in LANES if env.get(key := ENV_QUEUE_URL.format(lane=lane.upper()))}
        if not queues:
            names = ", ".join([ENV_EVENT_BUS, *(ENV_QUEUE_URL.format(lane=lane.upper()) for lane in LANES)])
            raise ValueError(f"no mailwright target: pass queue_urls, queue_url or event_bus, or set one of {names}")
        return cls(queue_urls=queues, **kwargs)

    def lane_of(self, request: EmailRequest) -> str:
        """The lane a request travels in."""
        return request.priority or self._priorities.get(request.template_id, DEFAULT_LANE)

    def send(self, request: RequestLike) -> str:
        """Validate and publish one request; return its request id."""
        return self.send_batch([request])[0]

    def send_batch(self, requests: Iterable[RequestLike]) -> list[str]:
        """Validate every request, then publish them; return the request ids in input order."""
        prepared = self._prepare(list(requests))
        if self._event_bus:
            failed = self._publish(prepared, self._put_events)
        else:
            failed = self._publish(prepared, self._send_messages)
        request_ids = [item.request.request_id for item in prepared]
        if failed:
            raise PartialBatchError(sorted(failed, key=lambda entry: entry.index), request_ids)
        return request_ids

    # -- validation -----------------------------------------------------

    def _prepare(self, requests: list[RequestLike]) -> list[_Prepared]:
        prepared, problems = [], []
        for index, raw in enumerate(requests):
            try:
                request = raw if isinstance(raw, EmailRequest) else EmailRequest.model_validate(dict(raw))
                lane = self.lane_of(request)
                if self._event_bus and request.priority is None:
                    request = request.model_copy(update={"priority": lane})
                # Publish what the worker will parse, and take the id from that parse, so the id
                # returned is the id logged (values such as dates become JSON strings on the way).
                body = request.model_dump_json(exclude_none=True, exclude_defaults=True)
                request = EmailRequest.model_validate_json(body)
            except ValidationError as exc:
                problems.append((index, describe_validation_error(exc)))
                continue
            except (TypeError, ValueError) as exc:
                problems.append((index, f"not a request object ({exc})"))
                continue
            if lane not in LANES:
                problems.append((index, f"unknown priority {lane!r} for template {request.template_id!r}"))
                continue
            if not self._event_bus and not self._queue_url and lane not in self._queue_urls:
                problems.append((index, f"no queue URL for the {lane} lane"))
                continue
            if len(body.encode("utf-8")) > MAX_BATCH_BYTES - 1024:
                problems.append((index, "larger than 255 KiB, the most one message may carry"))
                continue
            prepared.append(_Prepared(index=index, request=request, lane=lane, body=body))
        if problems:
            raise InvalidRequestError(problems)
        return prepared

    # -- publishing -----------------------------------------------------

    def _publish(self, prepared: list[_Prepared], call: Any) -> list[FailedEntry]:
        """Publish in batches, retry the refused entries once, return those still refused."""
        failed: list[FailedEntry] = []
        for chunk in _chunks(prepared, by_lane=not self._event_bus and not self._queue_url):
            refused = call(chunk)
            if refused:
                again = [item for item in chunk if item.index in refused]
                refused = call(again)
                failed.extend(
                    FailedEntry(item.index, item.request.request_id, *refused[item.index])
                    for item in again
                    if item.index in refused
                )
        return failed

    def _send_messages(self, chunk: list[_Prepared]) -> dict[int, tuple[str, str]]:
        queue_url = self._queue_url or self._queue_urls[chunk[0].lane]
        entries = [{"Id": str(item.index), "MessageBody": item.body} for item in chunk]
        try:
            response = self._sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            return {item.index: _call_error(exc) for item in chunk}
        return {
            int(failure["Id"]): (str(failure.get("Code", "Failed")), str(failure.get("Message", "")))
            for failure in response.get("Failed", [])
        }

    def _put_events(self, chunk: list[_Prepared]) -> dict[int, tuple[str, str]]:
        entries = [
            {
                "EventBusName": self._event_bus,
                "Source": self._source,
                "DetailType": EVENT_DETAIL_TYPE,
                "Detail": item.body,
            }
            for item in chunk
        ]
        try:
            response = self._events.put_events(Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            return {item.index: _call_error(exc) for item in chunk}
        # Results come back in the order of the entries; a failed one carries an ErrorCode.
        return {
            item.index: (str(result["ErrorCode"]), str(result.get("ErrorMessage", "")))
            for item, result in zip(chunk, response.get("Entries", []), strict=False)
            if result.get("ErrorCode")
        }


def _call_error(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, ClientError):
        error: Any = exc.response.get("Error", {})
        return str(error.get("Code", "ClientError")), str(error.get("Message", exc))
    return type(exc).__name__, str(exc)


def _chunks(prepared: list[_Prepared], *, by_lane: bool) -> list[list[_Prepared]]:
    """Batches of at most 10 entries and 256 KiB, one lane per batch when publishing to lane queues."""
    groups: dict[str, list[_Prepared]] = {}
    for item in prepared:
        groups.setdefault(item.lane if by_lane else "", []).append(item)
    chunks: list[list[_Prepared]] = []
    for items in groups.values():
        current: list[_Prepared] = []
        size = 0
        for item in items:
            item_size = len(item.body.encode("utf-8")) + 256  # entry overhead: id, bus, source, detail-type
            if current and (len(current) == MAX_BATCH_ENTRIES or size + item_size > MAX_BATCH_BYTES):
                chunks.append(current)
                current, size = [], 0
            current.append(item)
            size += item_size
        if current:
            chunks.append(current)
    return chunks


def send(request: RequestLike, **target: Any) -> str:
    """Validate and publish one request; return its request id.

    `target` is what `Publisher` takes (`queue_urls=`, `queue_url=` or
    `event_bus=`, optionally `template_priorities=`, `session=`...); without
    one, the environment names it (see `Publisher.from_env`).
    """
    publisher = Publisher(**target) if _names_target(target) else Publisher.from_env(**target)
    return publisher.send(request)


def send_batch(requests: Iterable[RequestLike], **target: Any) -> list[str]:
    """Validate every request, then publish them in batches of ten; return the request ids in input order."""
    publisher = Publisher(**target) if _names_target(target) else Publisher.from_env(**target)
    return publisher.send_batch(requests)


def _names_target(target: Mapping[str, Any]) -> bool:
    return any(target.get(key) for key in ("queue_urls", "queue_url", "event_bus"))
