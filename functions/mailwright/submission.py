"""Requests submitted over HTTPS (`POST /v1/messages`): validated at once, then put on their lane queues.

A body is one request or a batch (`{"requests": [...], "partial": false}`,
up to 100). Every request is validated with the one request model and routed
as the SDK routes (`mailwright.sdk.Publisher`: its `priority`, else its
template's, read from the templates bucket by `TemplateLanes`). A batch with
an invalid request queues nothing and names each invalid one, unless it asks
for `partial` acceptance. The valid requests go to the lane queues with
SendMessageBatch; entries the queue refuses are retried, and those still
refused come back in `failed`: a request is reported `accepted` only once it
is on its queue, and nothing is accepted silently in part.

The producer behind an API key is written into each request (`producer`), so
the worker logs it, tags the email with it and scopes the request id by it.
A request through the API may leave `producer` out or name its own; an IAM
caller, trusted like any queue publisher, may name one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from mailwright.constants import MAX_API_BATCH
from mailwright.errors import MailwrightError, TemplateNotFoundError
from mailwright.ports import TemplateSource
from mailwright.request import describe_validation_error
from mailwright.sdk import Publisher
from mailwright.submission_models import AcceptedRequest, FailedRequest, RejectedRequest, SubmitResult

logger = logging.getLogger(__name__)

# How long a submission may spend putting requests on queues (retries included) before it reports the rest
# as failed: well inside the function's timeout and API Gateway's 29 s.
DEFAULT_PUBLISH_SECONDS = 8.0
# A template that does not exist is asked for again after this long (it may be uploaded meanwhile).
MISSING_TEMPLATE_SECONDS = 60.0


class SubmissionError(MailwrightError):
    """The body cannot be read as a submission at all; `code` names why (invalid_json, invalid_body)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidRequestsError(SubmissionError):
    """Requests of the submission are invalid, so nothing was queued; `items` names each and why."""

    def __init__(self, items: list[RejectedRequest], total: int) -> None:
        count = f"{len(items)} of {total} requests are" if total > 1 else "the request is"
        super().__init__("invalid_requests", f"{count} invalid; nothing was queued")
        self.items = items


class QueueUnavailableError(MailwrightError):
    """No request could be put on its lane queue (after retries); `failed` lists them."""

    def __init__(self, failed: list[FailedRequest]) -> None:
        super().__init__(f"the lane queues refused every request ({failed[0].code}: {failed[0].reason})")
        self.failed = failed


class _Batch(BaseModel):
    """The envelope of a batch; each request in it is validated on its own, so each can be named."""

    model_config = ConfigDict(extra="forbid")

    requests: list[Any] = Field(min_length=1, max_length=MAX_API_BATCH)
    partial: StrictBool = False


def parse_submission(body: bytes | str | None) -> tuple[list[Any], bool]:
    """The requests of a body and whether it asks for partial acceptance; SubmissionError when unreadable."""
    try:
        data = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise SubmissionError("invalid_json", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise SubmissionError(
            "invalid_body", 'the body is one request (a JSON object) or a batch: {"requests": [...], "partial": false}'
        )
    if "requests" not in data:
        return [data], False
    try:
        batch = _Batch.model_validate(data)
    except ValidationError as exc:
        raise SubmissionError("invalid_body", describe_validation_error(exc)) from None
    return batch.requests, batch.partial


class TemplateLanes:
    """A template's lane (its `priority`), read from its bundle in the templates bucket; None when unknown.

    The template source caches bundles (and asks S3 whether the latest changed
    after its cache time), so routing follows templates uploaded after the
    deployment. A template that does not exist, or cannot be read right now,
    leaves the request to the default lane: routing never refuses a request
    (the worker records an unknown template as `rejected`, and evaluates it
    again once it exists).
    """

    def __init__(
        self,
        templates: TemplateSource,
        *,
        missing_seconds: float = MISSING_TEMPLATE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._templates = templates
        self._missing_seconds = missing_seconds
        self._clock = clock
        self._missing: dict[tuple[str, str | None], float] = {}
        self._lock = threading.Lock()

    def __call__(self, template_id: str, version: str | None = None) -> str | None:
        """The template's priority, or None."""
        key = (template_id, version)
        now = self._clock()
        with self._lock:
            if self._missing.get(key, 0.0) > now:
                return None
        try:
            return self._templates.get(template_id, version).metadata.priority
        except TemplateNotFoundError:
            with self._lock:
                self._missing[key] = now + self._missing_seconds
            return None
        except Exception as exc:  # the bucket cannot be read: route by default rather than refuse
            logger.warning("template priority unavailable", extra={"template_id": template_id, "error": str(exc)})
            return None


class SubmissionService:
    """Validates submitted requests and puts them on their lane queues through a Publisher."""

    def __init__(
        self,
        publisher: Publisher,
        *,
        publish_seconds: float = DEFAULT_PUBLISH_SECONDS,
    ) -> None:
        self._publisher = publisher
        self._publish_seconds = publish_seconds

    def submit(self, body: bytes | str | None, *, producer: str | None) -> SubmitResult:
        """Validate and queue a body's requests for `producer` (None: an IAM caller); raise as the module says."""
        items, partial = parse_submission(body)
        rejected: list[RejectedRequest] = []
        # (position in the body, the request as the producer is recorded on it)
        candidates: list[tuple[int, dict[str, Any]]] = []
        for index, raw in enumerate(items):
            if not isinstance(raw, dict):
                rejected.append(
                    RejectedRequest(index=index, code="invalid_request", reason="a request is a JSON object")
                )
                continue
            if producer is not None:
                named = raw.get("producer")
                if named is not None and named != producer:
                    reason = f"producer: this API key publishes as {producer!r}; leave producer out or name that one"
                    rejected.append(RejectedRequest(index=index, code="producer_mismatch", reason=reason))
                    continue
                raw = {**raw, "producer": producer}
            candidates.append((index, raw))
        batch = self._publisher.prepare([raw for _, raw in candidates])
        rejected += [
            RejectedRequest(index=candidates[p.index][0], code=p.code, reason=p.reason) for p in batch.problems
        ]
        rejected.sort(key=lambda item: item.index)
        if rejected and (not partial or not batch.requests):
            raise InvalidRequestsError(rejected, total=len(items))
        refused = {
            entry.index: entry for entry in self._publisher.publish(batch.requests, within=self._publish_seconds)
        }
        accepted, failed = [], []
        for item in batch.requests:
            index = candidates[item.index][0]
            if item.index in refused:
                entry = refused[item.index]
                failed.append(
                    FailedRequest(
                        index=index, request_id=item.request.request_id, code=entry.code, reason=entry.message
                    )
                )
            else:
                accepted.append(AcceptedRequest(index=index, request_id=item.request.request_id, lane=item.lane))
        if not accepted:
            raise QueueUnavailableError(failed)
        return SubmitResult(accepted=accepted, rejected=rejected, failed=failed)
