"""The webhook sender: each endpoint's queue in, one signed POST per delivery attempt out.

An EventBridge rule per endpoint (its detail-types and metadata filter) puts
matching outcome events on the endpoint's SQS queue; this service, behind an
event source mapping per queue, attempts each one:

| the endpoint answers                         | what happens                                         |
|----------------------------------------------|------------------------------------------------------|
| 2xx                                          | delivered (a failing endpoint's count is cleared)    |
| 429, 5xx, 408, 3xx (redirects are not        | retried: the message's visibility is raised to the   |
| followed), a timeout, a refused connection,  | backoff (exponential, `Retry-After` honoured, at     |
| garbage                                      | most 12 h) and the record is reported failed         |
| 410 Gone                                     | the endpoint is suspended; the delivery archived     |
| any other 4xx                                | not retried: recorded, and the delivery archived     |
| an address that is not public (SSRF)         | not attempted: recorded, and the delivery archived   |

A delivery is retried for at least `RetryPolicy.window_seconds` (24 h) from
its first attempt (its message's SentTimestamp), then archived. An endpoint
with no successful delivery for `suspend_after_seconds` is suspended; while
suspended, deliveries are archived without an attempt (nothing waits out
SQS's retention), and `mailwright webhooks resume|replay` bring it and them
back. Every failed attempt is counted in the state table, so the CLI and the
alarm see a failing endpoint. Nothing sleeps: a waiting delivery is an
invisible SQS message. Each endpoint has its own queue and mapping (with its
own maximum concurrency), so a slow endpoint delays only its own deliveries.

`webhook-id` is the event's `event_id`: the same across retries, replays and
EventBridge redeliveries; `webhook-timestamp` and the signature are computed
afresh for each attempt (receivers reject timestamps older than 5 minutes).
The body is `{"type": <detail-type>, "timestamp": <occurred_at>, "data": <detail>}`.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from mailwright.event_settings import RetryPolicy, WebhookEndpoint
from mailwright.outcome_events import iso_time as _iso
from mailwright.ports import RetryScheduler
from mailwright.webhooks.errors import ForbiddenTargetError, TransportError
from mailwright.webhooks.ports import DeliveryArchive, EndpointState, EndpointStates, SigningKeys, Transport

logger = logging.getLogger(__name__)

# The detail-type of `mailwright webhooks test` deliveries: attempted once, never retried or archived.
WEBHOOK_TEST_TYPE = "WebhookTest"

DELIVERED = "delivered"
RETRY = "retry"
REJECTED = "rejected"
GONE = "gone"
REFUSED = "refused"
# Why a delivery was archived.
ARCHIVED_SUSPENDED = "suspended"
ARCHIVED_EXHAUSTED = "retries_exhausted"
ARCHIVED_UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Delivery:
    """One message from an endpoint's queue."""

    message_id: str
    receipt_handle: str
    body: str
    source_arn: str
    receive_count: int = 1
    # When the message was first put on the queue: the start of its retry window.
    first_sent_at: float | None = None


@dataclass(frozen=True)
class Message:
    """What a delivery posts."""

    webhook_id: str
    detail_type: str
    body: bytes

    @property
    def test(self) -> bool:
        """Whether this is a `mailwright webhooks test` delivery."""
        return self.detail_type == WEBHOOK_TEST_TYPE


@dataclass(frozen=True)
class Attempt:
    """The result of one attempt: DELIVERED, RETRY, REJECTED, GONE or REFUSED, with the status and why."""

    outcome: str
    status: int | None = None
    error: str = ""
    retry_after: float | None = None


@dataclass
class WebhookReport:
    """What a batch of deliveries did, per endpoint."""

    failed: list[str] = field(default_factory=list)
    delivered: Counter[str] = field(default_factory=Counter)
    failed_attempts: Counter[str] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)
    archived: Counter[tuple[str, str]] = field(default_factory=Counter)
    suspensions: list[str] = field(default_factory=list)
    # Each endpoint's state at the end of the batch (True: suspended), for the suspension alarm's metric.
    suspended: dict[str, bool] = field(default_factory=dict)

    def partial_batch_response(self) -> dict[str, list[dict[str, str]]]:
        """The `batchItemFailures` response Lambda's SQS event source expects."""
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in self.failed]}


def parse_message(body: str) -> Message | None:
    """The POST a queued EventBridge event becomes; None when the body is not such an event."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
        return None
    detail = event["detail"]
    detail_type = event.get("detail-type")
    webhook_id = detail.get("event_id") or event.get("id")
    if not isinstance(detail_type, str) or not isinstance(webhook_id, str) or not webhook_id:
        return None
    payload = {"type": detail_type, "timestamp": detail.get("occurred_at") or event.get("time"), "data": detail}
    return Message(
        webhook_id=webhook_id,
        detail_type=detail_type,
        body=json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
    )


def classify(status: int) -> str:
    """What an HTTP status means for the delivery."""
    if 200 <= status < 300:
        return DELIVERED
    if status == 410:
        return GONE
    if status in (408, 429) or status >= 500 or 300 <= status < 400 or status < 200:
        return RETRY
    return REJECTED


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """Seconds a Retry-After header asks to wait (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - now)
    except (TypeError, ValueError):
        return None


def backoff_seconds(failed_attempts: int, policy: RetryPolicy, rng: random.Random) -> float:
    """The wait before the next attempt after `failed_attempts` failures: exponential, jittered, capped."""
    exponent = max(0, failed_attempts - 1)
    base = policy.base_seconds * float(2 ** min(exponent, 40))
    return float(min(policy.cap_seconds, base * (1 + policy.jitter * rng.uniform(-1.0, 1.0))))


class WebhookService:
    """Attempts deliveries, schedules retries, archives what will not be attempted again, suspends endpoints."""

    def __init__(
        self,
        *,
        endpoints: Mapping[str, WebhookEndpoint],
        states: EndpointStates,
        archive: DeliveryArchive,
        keys: SigningKeys,
        transport: Transport,
        retries: Callable[[str], RetryScheduler],
        policy: RetryPolicy,
        executor: Executor | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._endpoints = endpoints
        self._states = states
        self._archive = archive
        self._keys = keys
        self._transport = transport
        self._retries = retries
        self.policy = policy
        self._executor = executor
        self._clock = clock
        self._rng = rng or random.Random()

    def process(self, deliveries: Sequence[Delivery]) -> WebhookReport:
        """Attempt a batch; never raises for one delivery's fault (that delivery is retried later)."""
        report = WebhookReport()
        states: dict[str, EndpointState | None] = {}
        for delivery in deliveries:
            endpoint = self._endpoints.get(delivery.source_arn)
            if endpoint is not None and endpoint.name not in states:
                try:
                    states[endpoint.name] = self._states.get(endpoint.name)
                except Exception:
                    logger.exception("could not read the endpoint's state", extra={"endpoint": endpoint.name})
                    states[endpoint.name] = None

        def run(delivery: Delivery) -> float | None:
            return self._handle(delivery, states, report)

        if self._executor is not None:
            futures = [(d, self._executor.submit(run, d)) for d in deliveries]
            results = [(d, f.result()) for d, f in futures]
        else:
            results = [(d, run(d)) for d in deliveries]
        delays: dict[str, list[tuple[str, int]]] = {}
        for delivery, delay in results:
            if delay is None:
                continue
            report.failed.append(delivery.message_id)
            endpoint = self._endpoints.get(delivery.source_arn)
            if endpoint is not None and delay > 0:
                delays.setdefault(endpoint.queue_url, []).append((delivery.receipt_handle, round(delay)))
        for queue_url, receipts in delays.items():
            try:
                self._retries(queue_url).delay(receipts)
            except Exception:
                # Not fatal: the message comes back after its visibility timeout anyway.
                logger.exception("could not schedule webhook retries", extra={"count": len(receipts)})
        for name, state in states.items():
            if state is not None:
                report.suspended.setdefault(name, state.suspended)
        return report

    def _handle(
        self, delivery: Delivery, states: Mapping[str, EndpointState | None], report: WebhookReport
    ) -> float | None:
        """Deliver or archive one; None when done with it, else the seconds until it is attempted again (0: default)."""
        endpoint = self._endpoints.get(delivery.source_arn)
        if endpoint is None:
            logger.error("delivery from a queue no endpoint is configured for", extra={"queue": delivery.source_arn})
            return 0.0
        state = states.get(endpoint.name)
        if state is None:
            return 0.0
        try:
            return self._deliver(delivery, endpoint, state, report)
        except Exception as exc:
            logger.exception(
                "webhook delivery not handled; it will come back",
                extra={"endpoint": endpoint.name, "message_id": delivery.message_id, "error": str(exc)},
            )
            return 0.0

    def _deliver(
        self, delivery: Delivery, endpoint: WebhookEndpoint, state: EndpointState, report: WebhookReport
    ) -> float | None:
        message = parse_message(delivery.body)
        if message is None:
            self._keep(endpoint, delivery, delivery.message_id, ARCHIVED_UNREADABLE, "not an EventBridge event", report)
            return None
        if message.test:
            attempt = self._attempt(endpoint, message)
            result = DELIVERED if attempt.outcome == DELIVERED else f"{attempt.outcome}: {attempt.error}"
            self._states.record_test(endpoint.name, webhook_id=message.webhook_id, at=self._clock(), result=result)
            return None
        if state.suspended:
            self._keep(endpoint, delivery, message.webhook_id, ARCHIVED_SUSPENDED, state.suspended_reason, report)
            return None
        attempt = self._attempt(endpoint, message)
        now = self._clock()
        log_context = {"endpoint": endpoint.name, "webhook_id": message.webhook_id, "attempt": delivery.receive_count}
        if attempt.outcome == DELIVERED:
            report.delivered[endpoint.name] += 1
            if state.failing:
                self._states.record_success(endpoint.name, at=now)
            logger.info("webhook delivered", extra={**log_context, "status": attempt.status})
            return None
        report.failed_attempts[endpoint.name] += 1
        logger.warning(
            "webhook attempt failed", extra={**log_context, "outcome": attempt.outcome, "error": attempt.error}
        )
        after = self._states.record_failure(endpoint.name, at=now, error=attempt.error)
        if attempt.outcome == GONE:
            self._suspend(endpoint, f"the endpoint answered 410 Gone ({_iso(now)})", report)
            self._keep(endpoint, delivery, message.webhook_id, GONE, attempt.error, report)
            return None
        if attempt.outcome in (REJECTED, REFUSED):
            self._keep(endpoint, delivery, message.webhook_id, attempt.outcome, attempt.error, report)
            return None
        if after.failing_since is not None and now - after.failing_since >= self.policy.suspend_after_seconds:
            hours = self.policy.suspend_after_seconds / 3600
            self._suspend(endpoint, f"no delivery succeeded for {hours:g} h; last: {attempt.error}", report)
            self._keep(endpoint, delivery, message.webhook_id, ARCHIVED_SUSPENDED, attempt.error, report)
            return None
        first = delivery.first_sent_at if delivery.first_sent_at is not None else now
        remaining = first + self.policy.window_seconds - now
        if remaining <= 0:
            self._keep(endpoint, delivery, message.webhook_id, ARCHIVED_EXHAUSTED, attempt.error, report)
            return None
        delay = backoff_seconds(delivery.receive_count, self.policy, self._rng)
        if attempt.retry_after is not None:
            delay = max(delay, attempt.retry_after)
        # The last attempt falls at the end of the window, not beyond it.
        delay = max(1.0, min(delay, self.policy.cap_seconds, remaining))
        report.retried[endpoint.name] += 1
        return delay

    def _attempt(self, endpoint: WebhookEndpoint, message: Message) -> Attempt:
        try:
            target = self._transport.resolve(endpoint.url)
        except ForbiddenTargetError as exc:
            return Attempt(REFUSED, error=f"refused: {exc}")
        timestamp = int(self._clock())
        headers = self._keys.signer(endpoint.secret_arn).headers(message.webhook_id, timestamp, message.body)
        try:
            answer = self._transport.post(
                target,
                headers,
                message.body,
                connect_timeout=self.policy.connect_timeout_seconds,
                read_timeout=self.policy.read_timeout_seconds,
            )
        except TransportError as exc:
            return Attempt(RETRY, error=str(exc))
        outcome = classify(answer.status)
        error = "" if outcome == DELIVERED else f"HTTP {answer.status}"
        if 300 <= answer.status < 400:
            error += " (redirects are not followed)"
        retry_after = retry_after_seconds(answer.headers.get("retry-after"), now=self._clock())
        return Attempt(outcome, status=answer.status, error=error, retry_after=retry_after)

    def _suspend(self, endpoint: WebhookEndpoint, reason: str, report: WebhookReport) -> None:
        self._states.suspend(endpoint.name, at=self._clock(), reason=reason)
        report.suspensions.append(endpoint.name)
        report.suspended[endpoint.name] = True
        logger.error("webhook endpoint suspended", extra={"endpoint": endpoint.name, "reason": reason})

    def _keep(
        self,
        endpoint: WebhookEndpoint,
        delivery: Delivery,
        webhook_id: str,
        reason: str,
        error: str,
        report: WebhookReport,
    ) -> None:
        """Archive a delivery that will not be attempted again (replayable with `mailwright webhooks replay`)."""
        record: dict[str, Any] = {
            "endpoint": endpoint.name,
            "webhook_id": webhook_id,
            "reason": reason,
            "error": error,
            "archived_at": _iso(self._clock()),
            "attempts": delivery.receive_count,
            "first_queued_at": _iso(delivery.first_sent_at) if delivery.first_sent_at else None,
            "body": delivery.body,
        }
        self._archive.put(endpoint.name, webhook_id, record)
        report.archived[(endpoint.name, reason)] += 1
        logger.warning(
            "webhook delivery archived", extra={"endpoint": endpoint.name, "webhook_id": webhook_id, "reason": reason}
        )
