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

`Publisher.prepare` and `Publisher.publish` are the two halves of
`send_batch` for callers that keep the valid requests of a batch with some
invalid ones (the HTTPS API's partial acceptance).

The returned request id is the one the worker logs the request under (the
`messages` table key and the `request_id` tag on the email). `StatusClient`
(from `mailwright.status_client`, re-exported here) asks the status API what
became of it. `Preferences` (from `mailwright.preference_client`) reads and
changes users' preferences, each change audited. `Schedules` (from
`mailwright.schedule_client`) cancels, reschedules and lists requests sent
with `send_at` (or `cancel_key`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from mailwright.constants import DEFAULT_LANE, EVENT_DETAIL_TYPE, LANES
from mailwright.errors import MailwrightError
from mailwright.preference_client import PreferenceError, PreferencesClient, UserChoiceError
from mailwright.request import EmailRequest, describe_validation_error
from mailwright.schedule_client import InvalidSendAtError, SchedulesClient
from mailwright.status_client import MessageNotFoundError, StatusApiError, StatusClient

__all__ = [
    "FailedEntry",
    "InvalidRequestError",
    "InvalidSendAtError",
    "MessageNotFoundError",
    "PartialBatchError",
    "PreferenceError",
    "Preferences",
    "PreferencesClient",
    "PreparedBatch",
    "PreparedRequest",
    "Problem",
    "Publisher",
    "Schedules",
    "SchedulesClient",
    "StatusApiError",
    "StatusClient",
    "UserChoiceError",
    "send",
    "send_batch",
    "template_priorities",
]

# Users' preferences, read and changed by the producer (see mailwright.preference_client).
Preferences = PreferencesClient
# Scheduled sends (a request's `send_at`, `cancel_key`), cancelled, moved and listed (see mailwright.schedule_client).
Schedules = SchedulesClient

# SQS and EventBridge both take at most 10 entries and 256 KiB per call.
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024
# The most one request may carry once published (room is left for the entry's other fields).
MAX_REQUEST_BYTES = MAX_BATCH_BYTES - 1024
# Sends per refused entry: the first and one retry.
DEFAULT_ATTEMPTS = 2
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
class PreparedRequest:
    """A valid request ready to publish: its index in the input, the request as the worker will parse it, its lane."""

    index: int
    request: EmailRequest
    lane: str
    body: str


@dataclass(frozen=True)
class Problem:
    """Why the request at `index` cannot be published: a `code` (invalid_request, invalid_address...) and a reason."""

    index: int
    code: str
    reason: str


@dataclass(frozen=True)
class PreparedBatch:
    """The requests of a batch that can be published, and what is wrong with the others."""

    requests: list[PreparedRequest]
    problems: list[Problem]


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
    route on it), so it is written into the published request. `priority_of`
    (template id, pinned version -> lane or None) is asked before
    `template_priorities`, for callers that read templates where they live.

    An entry the service refuses is sent again, `attempts` sends in all, after
    `retry_pause` seconds (doubled for each further attempt).
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
        priority_of: Callable[[str, str | None], str | None] | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
        retry_pause: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
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
        if attempts < 1:
            raise ValueError("attempts is at least 1")
        self._priorities = dict(template_priorities or {})
        self._priority_of = priority_of
        self._attempts = attempts
        self._retry_pause = retry_pause
        self._sleep = sleep
        self._clock = clock
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
        if request.priority:
            return request.priority
        found = self._priority_of(request.template_id, request.template_version) if self._priority_of else None
        return found or self._priorities.get(request.template_id, DEFAULT_LANE)

    def send(self, request: RequestLike) -> str:
        """Validate and publish one request; return its request id."""
        return self.send_batch([request])[0]

    def send_batch(self, requests: Iterable[RequestLike]) -> list[str]:
        """Validate every request, then publish them; return the request ids in input order."""
        batch = self.prepare(list(requests))
        if batch.problems:
            raise InvalidRequestError([(problem.index, problem.reason) for problem in batch.problems])
        failed = self.publish(batch.requests)
        request_ids = [item.request.request_id for item in batch.requests]
        if failed:
            raise PartialBatchError(failed, request_ids)
        return request_ids

    # -- validation -----------------------------------------------------

    def prepare(self, requests: Sequence[RequestLike]) -> PreparedBatch:
        """Validate and route every request; publish nothing. Indexes are positions in `requests`."""
        prepared, problems = [], []
        for index, raw in enumerate(requests):
            item = self._prepare_one(index, raw)
            if isinstance(item, Problem):
                problems.append(item)
            else:
                prepared.append(item)
        return PreparedBatch(prepared, problems)

    def _prepare_one(self, index: int, raw: RequestLike) -> PreparedRequest | Problem:
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
            bad_address = any(e["loc"] == ("recipient_email",) and e["type"] != "missing" for e in exc.errors())
            return Problem(
                index, "invalid_address" if bad_address else "invalid_request", describe_validation_error(exc)
            )
        except (TypeError, ValueError) as exc:
            return Problem(index, "invalid_request", f"not a request object ({exc})")
        if lane not in LANES:
            return Problem(index, "unknown_priority", f"unknown priority {lane!r} for template {request.template_id!r}")
        if not self._event_bus and not self._queue_url and lane not in self._queue_urls:
            return Problem(index, "no_queue", f"no queue URL for the {lane} lane")
        if len(body.encode("utf-8")) > MAX_REQUEST_BYTES:
            return Problem(index, "too_large", "larger than 255 KiB, the most one message may carry")
        return PreparedRequest(index=index, request=request, lane=lane, body=body)

    # -- publishing -----------------------------------------------------

    def publish(self, prepared: Sequence[PreparedRequest], *, within: float | None = None) -> list[FailedEntry]:
        """Publish prepared requests in batches, retry refused entries; return those still refused, by index.

        With `within` (seconds), no call starts after that long: what is left is returned as refused (`timeout`).
        """
        call = self._put_events if self._event_bus else self._send_messages
        deadline = None if within is None else self._clock() + within
        failed: list[FailedEntry] = []
        for chunk in _chunks(list(prepared), by_lane=not self._event_bus and not self._queue_url):
            pending: list[PreparedRequest] = chunk
            refused: dict[int, tuple[str, str]] = {item.index: _TIMED_OUT for item in chunk}
            for attempt in range(self._attempts):
                if attempt and self._retry_pause:
                    self._sleep(self._retry_pause * 2 ** (attempt - 1))
                if deadline is not None and self._clock() >= deadline:
                    break
                refused = call(pending)
                pending = [item for item in pending if item.index in refused]
                if not pending:
                    break
            failed.extend(FailedEntry(item.index, item.request.request_id, *refused[item.index]) for item in pending)
        return sorted(failed, key=lambda entry: entry.index)

    def _send_messages(self, chunk: list[PreparedRequest]) -> dict[int, tuple[str, str]]:
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

    def _put_events(self, chunk: list[PreparedRequest]) -> dict[int, tuple[str, str]]:
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


# What an entry left unsent by `publish(within=...)` is refused with.
_TIMED_OUT = ("timeout", "not sent: the time for publishing ran out")


def _call_error(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, ClientError):
        error: Any = exc.response.get("Error", {})
        return str(error.get("Code", "ClientError")), str(error.get("Message", exc))
    return type(exc).__name__, str(exc)


def _chunks(prepared: list[PreparedRequest], *, by_lane: bool) -> list[list[PreparedRequest]]:
    """Batches of at most 10 entries and 256 KiB, one lane per batch when publishing to lane queues."""
    groups: dict[str, list[PreparedRequest]] = {}
    for item in prepared:
        groups.setdefault(item.lane if by_lane else "", []).append(item)
    chunks: list[list[PreparedRequest]] = []
    for items in groups.values():
        current: list[PreparedRequest] = []
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
