"""The HTTPS API (API Gateway REST API, Lambda proxy integration): the status API under /v1.

    GET  /v1/messages/{request_id}   the request's status and history (MessageStatus)
    POST /v1/messages/search         {"recipient": ..., "since": ..., "limit": ..., "next": ...} -> SearchPage

The search is a POST so the address travels in the body, never in a URL
that access logs keep. Every error is `{"error": {"code": ..., "message": ...}}`.
Deployed, every method is IAM-authorized (SigV4), so API Gateway has
checked the caller before this function runs; `viewer_of` turns its
identity into a `Viewer`. The local stack's loopback server builds the same
proxy events and calls `handle` (mailwright_tools/local/api_server.py).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from mailwright.errors import MailwrightError, TransientError
from mailwright.observability import service_logger, service_tracer
from mailwright.settings import ApiSettings
from mailwright.status import (
    PLATFORM,
    InvalidLookupError,
    RequestNotFoundError,
    StatusService,
    Viewer,
    parse_search,
)
from mailwright.status_models import ApiError, ErrorBody
from mailwright.wiring import build_status_service

logger = service_logger()
tracer = service_tracer()
app = APIGatewayRestResolver()
# Powertools' exception_handler and append_context carry no annotations: strict typing reaches them through Any.
_untyped: Any = app
_Handler = TypeVar("_Handler", bound=Callable[..., Any])

JSON = "application/json"
# Answers hold request details: no cache along the way may keep them.
NO_STORE = {"Cache-Control": "no-store"}
RETRY_AFTER_SECONDS = 1
# What a Lambda authorizer (the producers' API keys, issue 15) puts in its context to name the producer.
AUTHORIZER_PRODUCER_KEY = "producer"


class AccessDeniedError(MailwrightError):
    """The caller's identity does not say whose requests it may see."""


def _on_error(exc_class: type[Exception]) -> Callable[[_Handler], _Handler]:
    register: Callable[[_Handler], _Handler] = _untyped.exception_handler(exc_class)
    return register


@cache
def service() -> StatusService:
    """The container's status service, built (and its settings checked) on the first request."""
    return build_status_service(ApiSettings.from_env())


# Answers are request details (masked addresses, never plain ones): not copied into traces.
@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one API Gateway proxy request."""
    return handle(service(), event, context)


def handle(svc: StatusService, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Answer a REST API proxy event with `svc` (the local server and the tests call this too; one at a time)."""
    _untyped.append_context(service=svc)
    return app.resolve(dict(event), context)


def viewer_of(event: APIGatewayProxyEvent) -> Viewer:
    """Who asks: a producer named by an authorizer, else an IAM caller (the platform team)."""
    request_context = event.request_context
    producer = request_context.authorizer.get(AUTHORIZER_PRODUCER_KEY)
    if producer:
        return Viewer(producer=str(producer))
    if request_context.identity.api_key_id:
        # An API key the authorizer did not map to a producer must never get the platform view.
        raise AccessDeniedError("this API key names no producer")
    if request_context.identity.user_arn:
        return PLATFORM
    raise AccessDeniedError("the request carries no caller identity")


@app.get("/v1/messages/<request_id>")
def get_message(request_id: str) -> Response[str]:
    """The status and history of one request."""
    status = _service().get(request_id, viewer_of(app.current_event))
    logger.info("request looked up", request_id=request_id, status=status.status)
    return _json(200, status)


@app.post("/v1/messages/search")
def search_messages() -> Response[str]:
    """The requests sent to one address, newest first, a page at a time."""
    query = parse_search(_body(app.current_event))
    page = _service().search(query, viewer_of(app.current_event))
    # The address stays out of the logs; how much was found is enough to follow a search.
    logger.info("requests searched", found=len(page.items), more=page.next is not None)
    return _json(200, page)


@_on_error(InvalidLookupError)
def _invalid(exc: InvalidLookupError) -> Response[str]:
    return _error(400, exc.code, exc.message)


@_on_error(RequestNotFoundError)
def _not_found(exc: RequestNotFoundError) -> Response[str]:
    return _error(404, exc.code, exc.message)


@_on_error(AccessDeniedError)
def _denied(exc: AccessDeniedError) -> Response[str]:
    logger.warning("caller refused", reason=str(exc))
    return _error(403, "forbidden", str(exc))


@_on_error(TransientError)
def _unavailable(exc: TransientError) -> Response[str]:
    logger.warning("lookup failed for now", error=str(exc))
    answer = _error(503, "unavailable", "the message log cannot be read right now; try again in a moment")
    answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return answer


@app.not_found
def _no_route(exc: Exception) -> Response[str]:
    return _error(404, "unknown_route", "no such operation: GET /v1/messages/{request_id}, POST /v1/messages/search")


@_on_error(Exception)
def _failed(exc: Exception) -> Response[str]:
    logger.exception("request failed")
    return _error(500, "internal_error", "the request failed; it was logged")


def _body(event: APIGatewayProxyEvent) -> bytes:
    """The raw body: API Gateway passes a body that is not UTF-8 base64-encoded (decoding it is parse_search's job)."""
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return b""
    return body.encode("utf-8", "surrogatepass")


def _service() -> StatusService:
    svc: StatusService = app.context["service"]
    return svc


def _json(status: int, body: BaseModel) -> Response[str]:
    return Response(status_code=status, content_type=JSON, body=body.model_dump_json(), headers=dict(NO_STORE))


def _error(status: int, code: str, message: str) -> Response[str]:
    return _json(status, ErrorBody(error=ApiError(code=code, message=message)))
