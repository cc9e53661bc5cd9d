"""The bodies of `POST /v1/messages`: what producers submit and what the API answers.

One request is an `EmailRequest`; a batch is a `MessageBatch` of up to 100.
The answer is a `SubmitResult` (202), or a `SubmitErrorBody` (400) naming
each invalid request and why. The OpenAPI document (`mailwright.openapi`)
is generated from these models, like the status API's (`status_models`).
This module needs pydantic alone, so the producer SDK can import it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, RootModel

from mailwright.constants import LANES, MAX_API_BATCH, REQUEST_ID_PATTERN
from mailwright.request import EmailRequest
from mailwright.status_models import ApiError

_RESPONSE = ConfigDict(extra="ignore", frozen=True)
LANE_PATTERN = "^(" + "|".join(LANES) + ")$"


class MessageBatch(BaseModel):
    """Up to 100 requests in one call; nothing is queued if any is invalid, unless `partial` is true."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: list[EmailRequest] = Field(min_length=1, max_length=MAX_API_BATCH)
    partial: bool = Field(
        default=False,
        description="Queue the valid requests even when others are invalid (they are listed in `rejected`).",
    )


class Submission(RootModel[EmailRequest | MessageBatch]):
    """What `POST /v1/messages` takes: one request, or a batch of them."""


class AcceptedRequest(BaseModel):
    """A request that is on its lane queue: the worker takes it from there."""

    model_config = _RESPONSE

    index: int = Field(ge=0, description="Its position in the batch (0 for a single request).")
    request_id: str = Field(pattern=REQUEST_ID_PATTERN, description="What GET /v1/messages/{request_id} takes.")
    lane: str = Field(pattern=LANE_PATTERN)


class RejectedRequest(BaseModel):
    """A request that is invalid as written: fix it and submit it again."""

    model_config = _RESPONSE

    index: int = Field(ge=0)
    code: str = Field(description="invalid_request, invalid_address, producer_mismatch, too_large...")
    reason: str = Field(description="Which field is wrong and why, e.g. `recipient_email: ...`.")


class FailedRequest(BaseModel):
    """A valid request the lane queue refused even after retries: not queued; submitting it again is safe."""

    model_config = _RESPONSE

    index: int = Field(ge=0)
    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    code: str = Field(description="The queue's refusal, e.g. InternalError or ServiceUnavailable.")
    reason: str


class SubmitResult(BaseModel):
    """202: every request in `accepted` is on a lane queue; `rejected` (partial batches) and `failed` are not."""

    model_config = _RESPONSE

    accepted: list[AcceptedRequest]
    rejected: list[RejectedRequest] = Field(default_factory=list)
    failed: list[FailedRequest] = Field(default_factory=list)


class SubmitError(ApiError):
    """An error that may name the requests it is about (`items`, for code invalid_requests)."""

    items: list[RejectedRequest] = Field(default_factory=list)


class SubmitErrorBody(BaseModel):
    """Every error answer of `POST /v1/messages`: the status API's shape, with the invalid requests listed."""

    model_config = _RESPONSE

    error: SubmitError
