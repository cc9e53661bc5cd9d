"""Digests: requests with the same user and `digest_key` within a template's window become one email.

A request names a digest template (template.json `digest`: window_seconds,
max_items, item_variables) and a `digest_key`. The worker folds it into the
user's open window for that key (`DigestStore.fold`: idempotent per request
id, so a redelivered request is never listed twice) and records it
`digested`, naming the digest email's request id. The request that opens a
window enqueues a *flush* message through the deferral port, delayed to the
window's end (at most 900 s a hop: a longer window sends the flush on again).
When the flush comes due, or at once when the window reaches max_items, the
window is closed (open -> sending, once) and the digest email is built as an
ordinary request (template data `items`: the folded requests' data, oldest
first; a deterministic idempotency key) that goes through the rest of the
pipeline: its dedupe claim sends it once, and suppression, consent and quiet
hours apply to the recipient once. A request arriving after its window closed
opens a new one.

Example::

    >>> body = {"recipient_email": "jane@example.com", "template_id": "activity_digest",
    ...         "digest_key": "comments", "template_data": {"title": "New comment", "url": "https://..."}}
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mailwright.errors import RejectedError, TransientError
from mailwright.ports import DIGEST_OPEN, Deferral, Deferrals, DigestItem, DigestStore, DigestWindow
from mailwright.request import EmailRequest

if TYPE_CHECKING:
    from mailwright.sending import QueueRecord
    from mailwright.templates import TemplateBundle

logger = logging.getLogger(__name__)

# A flush message's body: {"mailwright_digest_flush": {"key": ..., "n": ...}}. No request has this field.
FLUSH_FIELD = "mailwright_digest_flush"
# The deferral reason of flush messages.
REASON_DIGEST_WINDOW = "digest_window"
# SQS's longest message delay.
MAX_FLUSH_DELAY_SECONDS = 900
# With at most 50 items a window (templates.model.MAX_DIGEST_ITEMS), this keeps a window's DynamoDB item
# under its 400 KB limit: 50 x 6 KB of JSON, plus the recipient's fields.
MAX_DIGEST_ITEM_BYTES = 6000


def digest_key(user_key: str, key: str) -> str:
    """The store's key of a user's digest `key`: a hash, so neither the user id nor the key is stored plainly."""
    return hashlib.sha256(f"{user_key}\n{key}".encode()).hexdigest()[:32]


def digest_email_id(key: str, number: int, producer: str | None) -> str:
    """The request id of window `number`'s digest email: the same however often the window is flushed."""
    return EmailRequest.model_construct(idempotency_key=_idempotency_key(key, number), producer=producer).request_id


def _idempotency_key(key: str, number: int) -> str:
    return f"digest:{key}:{number}"


def flush_body(key: str, number: int) -> str:
    """The body of the message that flushes window `number` of `key`."""
    return json.dumps({FLUSH_FIELD: {"key": key, "n": number}}, separators=(",", ":"))


def parse_flush(body: str) -> tuple[str, int] | None:
    """(key, window number) of a flush message's body; None for any other body."""
    if FLUSH_FIELD not in body[:64]:
        return None
    try:
        data = json.loads(body)
        flush = data[FLUSH_FIELD]
        return str(flush["key"]), int(flush["n"])
    except (ValueError, TypeError, KeyError):
        return None


def digest_request(window: DigestWindow) -> dict[str, Any]:
    """The digest email of a closed window, as a request: the opener's fields and `items`, the data folded in."""
    body = {k: v for k, v in window.email.items() if v not in (None, "", {})}
    body["template_data"] = {"items": [dict(item.data) for item in window.items]}
    body["idempotency_key"] = _idempotency_key(window.key, window.number)
    return body


class DigestService:
    """Folds requests into digest windows and turns due windows into digest emails (see the module docstring)."""

    def __init__(
        self,
        store: DigestStore,
        deferrals: Deferrals,
        *,
        window_override: int | None = None,
        ttl_seconds: int = 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._deferrals = deferrals
        self._window_override = window_override
        self._ttl_seconds = ttl_seconds
        self._clock = clock

    def fold(self, request: EmailRequest, request_id: str, user_key: str, bundle: TemplateBundle) -> str:
        """Fold a request into its digest; the digest email's request id. RejectedError for a request that cannot be."""
        spec = bundle.metadata.digest
        if spec is None or request.digest_key is None:
            raise RejectedError("not_a_digest", f"template {bundle.template_id} takes no digest_key (no `digest`)")
        missing = sorted(set(spec.item_variables) - set(request.template_data))
        if missing:
            raise RejectedError("missing_variable", f"a digest item needs {', '.join(missing)}")
        size = len(json.dumps(request.template_data, sort_keys=True, default=str).encode())
        if size > MAX_DIGEST_ITEM_BYTES:
            why = f"template_data is {size} bytes; a digest item holds at most {MAX_DIGEST_ITEM_BYTES}"
            raise RejectedError("digest_item_too_large", why)
        key = digest_key(user_key, request.digest_key)
        now = self._clock()
        window_seconds = self._window_override or spec.window_seconds
        email = {
            "recipient_email": request.recipient_email,
            "template_id": request.template_id,
            "template_version": request.template_version,
            "user_id": request.user_id,
            "locale": request.locale,
            "timezone": request.timezone,
            "producer": request.producer,
            "metadata": dict(request.metadata),
        }
        item = DigestItem(
            request_id=request_id, at=now, data=json.loads(json.dumps(request.template_data, default=str))
        )
        folded = self._store.fold(
            key,
            item,
            window_seconds=window_seconds,
            max_items=spec.max_items,
            email=email,
            ttl_seconds=self._ttl_seconds,
        )
        window = folded.window
        # The opener sends the flush for the window's end; a full window is flushed at once. A request seen
        # before sends it again, in case the delivery that folded it died before its flush was enqueued.
        if folded.opened or folded.again or window.full:
            self._enqueue_flush(window, now, source=request_id)
        return digest_email_id(window.key, window.number, window.email.get("producer"))

    def open_flushes(self, records: Sequence[QueueRecord]) -> tuple[list[QueueRecord], list[str]]:
        """The batch with each due flush replaced by its digest email's record; flushes not due go back to wait.

        Returns the records to process and the message ids of flushes that
        could not be handled now (to be retried).
        """
        kept: list[QueueRecord] = []
        failed: list[str] = []
        for record in records:
            flush = parse_flush(record.body)
            if flush is None:
                kept.append(record)
                continue
            try:
                body = self._flush(record, *flush)
            except Exception as exc:
                log = logger.warning if isinstance(exc, TransientError) else logger.exception
                log("digest flush will be retried", extra={"message_id": record.message_id, "error": str(exc)})
                failed.append(record.message_id)
                continue
            if body is not None:
                kept.append(replace(record, body=json.dumps(body, separators=(",", ":"))))
        return kept, failed

    def _flush(self, record: QueueRecord, key: str, number: int) -> dict[str, Any] | None:
        """The digest request of a due window (closing it), or None when the flush waits or has nothing to do."""
        window = self._store.read(key, number)
        if window is None:
            logger.warning("digest window not found (expired?)", extra={"digest": f"{key}#{number}"})
            return None
        now = self._clock()
        if window.state == DIGEST_OPEN and now < window.closes_at and not window.full:
            self._enqueue_flush(window, now, source=record.message_id, deferrals=record.deferrals + 1)
            return None
        closed = self._store.close(key, number) if window.state == DIGEST_OPEN else window
        if closed is None:
            return None
        return digest_request(closed)

    def _enqueue_flush(self, window: DigestWindow, now: float, *, source: str, deferrals: int = 1) -> None:
        seconds = 0 if window.full else max(0, min(MAX_FLUSH_DELAY_SECONDS, math.ceil(window.closes_at - now)))
        deferral = Deferral(
            message_id=f"flush-{source}",
            body=flush_body(window.key, window.number),
            seconds=seconds,
            reason=REASON_DIGEST_WINDOW,
            deferrals=deferrals,
            published_at=window.opened_at,
        )
        if self._deferrals.defer([deferral]):
            raise TransientError("digest_flush_failed", "could not enqueue the digest's flush message")
