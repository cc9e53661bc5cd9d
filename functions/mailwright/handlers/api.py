"""The HTTPS API (API Gateway REST API, Lambda proxy integration): producers' submissions and the status API, /v1.

    POST /v1/messages                one request or a batch -> 202 SubmitResult (mailwright.submission)
    GET  /v1/messages/{request_id}   the request's status and history (MessageStatus)
    POST /v1/messages/search         {"recipient": ..., "since": ..., "limit": ..., "next": ...} -> SearchPage
    POST /v1/messages/{request_id}/cancel   cancel a scheduled request -> 200 CancelAnswer, 409 when too late
    GET  /v1/users/{user_id}/preferences    the user's preferences -> 200 UserPreferences (defaults if none)
    PATCH /v1/users/{user_id}/preferences   change them, audited -> 200 UserPreferences, 409 on a user's own choice

The search is a POST so the address travels in the body, never in a URL
that access logs keep. Every error is `{"error": {"code": ..., "message": ...}}`.
Two REST APIs front this function: one IAM-authorized (SigV4), whose caller
is the platform team, and the producers' one, where API Gateway has checked
the caller's API key and usage plan before this function runs; `viewer_of`
turns the caller's identity into a `Viewer` (an API key's producer, through
the producer directory). The local stack's loopback servers build the same
proxy events and call `handle` (mailwright_tools/local/api_server.py).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from mailwright.api_services import ApiServices
from mailwright.errors import MailwrightError, TransientError
from mailwright.observability import MetricsSink, service_logger, service_metrics, service_tracer
from mailwright.preference_changes import (
    SOURCE_API,
    PreferenceAdmin,
    PreferenceError,
    UserChoiceError,
    check_user_id,
)
from mailwright.preference_models import PreferencesUpdate, UserPreferences
from mailwright.request import describe_validation_error
from mailwright.settings import ApiSettings, SubmissionSettings
from mailwright.status import (
    PLATFORM,
    InvalidLookupError,
    RequestNotFoundError,
    StatusService,
    Viewer,
    parse_search,
)
from mailwright.status_models import ApiError, CancelAnswer, ErrorBody
from mailwright.submission import (
    InvalidRequestsError,
    QueueUnavailableError,
    SubmissionError,
)
from mailwright.submission_models import SubmitError, SubmitErrorBody, SubmitResult
from mailwright.wiring import build_api_services

logger = service_logger()
tracer = service_tracer()
metrics = service_metrics()
app = APIGatewayRestResolver()
# Powertools' exception_handler and append_context carry no annotations: strict typing reaches them through Any.
_untyped: Any = app
_Handler = TypeVar("_Handler", bound=Callable[..., Any])

JSON = "application/json"
# Answers hold request details: no cache along the way may keep them.
NO_STORE = {"Cache-Control": "no-store"}
RETRY_AFTER_SECONDS = 1
# What a Lambda authorizer in front of the function would put in its context to name the producer (none is
# deployed: API Gateway checks the keys, and the function maps a key id to its producer itself).
AUTHORIZER_PRODUCER_KEY = "producer"
# Submissions' metrics (dimension `producer`; IAM callers that name none count as IAM_CALLER).
METRIC_ACCEPTED = "ApiRequestsAccepted"
METRIC_REJECTED = "ApiRequestsRejected"
METRIC_REFUSED = "ApiRequestsRefused"
IAM_CALLER = "iam"


class AccessDeniedError(MailwrightError):
    """The caller's identity does not say whose requests it may see."""


class SubmissionsUnavailableError(MailwrightError):
    """This deployment of the function was given no submission service."""


class InvalidPreferencesError(MailwrightError):
    """A preferences body that is not JSON or not the PreferencesUpdate model: nothing was changed."""


def _on_error(exc_class: type[Exception]) -> Callable[[_Handler], _Handler]:
    register: Callable[[_Handler], _Handler] = _untyped.exception_handler(exc_class)
    return register


@cache
def service() -> ApiServices:
    """The container's services, built (and their settings checked) on the first request."""
    return build_api_services(ApiSettings.from_env(), SubmissionSettings.from_env())


# Answers are request details (masked addresses, never plain ones): not copied into traces.
@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one API Gateway proxy request."""
    try:
        return handle(service(), event, context, metrics=metrics)
    finally:
        # Only submissions count something: a lookup writes no empty metrics document.
        if metrics.metric_set:
            metrics.flush_metrics()


def handle(
    services: ApiServices, event: Mapping[str, Any], context: Any = None, *, metrics: MetricsSink | None = None
) -> dict[str, Any]:
    """Answer a REST API proxy event with `services` (the local servers and the tests call this too; one at a time).

    Submissions are counted into `metrics` when given (the Lambda handler's).
    """
    _untyped.append_context(services=services, metrics=metrics)
    return app.resolve(dict(event), context)


def viewer_of(event: APIGatewayProxyEvent) -> Viewer:
    """Who asks: the producer of the caller's API key (or an authorizer's), else an IAM caller (the platform team)."""
    request_context = event.request_context
    producer = request_context.authorizer.get(AUTHORIZER_PRODUCER_KEY)
    if producer:
        return Viewer(producer=str(producer))
    api_key_id = request_context.identity.api_key_id
    if api_key_id:
        key = _services().producers.key(api_key_id)
        if key is not None and key.active(time.time()):
            return Viewer(producer=key.producer)
        # A key that names no producer (or no longer does) must never get the platform view.
        raise AccessDeniedError("this API key names no producer")
    if request_context.identity.user_arn:
        return PLATFORM
    raise AccessDeniedError("the request carries no caller identity")


@app.post("/v1/messages")
def submit_messages() -> Response[str]:
    """Validate one request or a batch and put them on their lane queues."""
    viewer = viewer_of(app.current_event)
    submissions = _services().submissions
    if submissions is None:
        raise SubmissionsUnavailableError("this API takes no submissions")
    result = submissions.submit(_body(app.current_event), producer=viewer.producer)
    _count(viewer, result)
    logger.info(
        "requests accepted",
        producer=viewer.producer,
        accepted=len(result.accepted),
        rejected=len(result.rejected),
        failed=len(result.failed),
        request_ids=[item.request_id for item in result.accepted],
    )
    return _json(202, result)


@app.get("/v1/messages/<request_id>")
def get_message(request_id: str) -> Response[str]:
    """The status and history of one request."""
    status = _service().get(request_id, viewer_of(app.current_event))
    logger.info("request looked up", request_id=request_id, status=status.status)
    return _json(200, status)


@app.post("/v1/messages/<request_id>/cancel")
def cancel_message(request_id: str) -> Response[str]:
    """Cancel a scheduled request (or one not processed yet): 200 when cancelled, 409 (its state) when too late."""
    viewer = viewer_of(app.current_event)
    desk = _services().schedules
    if desk is None:
        raise SubmissionsUnavailableError("this API cancels nothing")
    try:
        # A producer cancels only what the log records as its own (another's is 404, as a lookup).
        _service().get(request_id, viewer)
    except RequestNotFoundError:
        if viewer.producer is not None:
            raise
    result = desk.cancel(request_id)
    logger.info("cancel asked", request_id=request_id, status=result.status, cancelled=result.changed)
    if not result.changed:
        if result.status == "sent":
            return _error(409, "already_sent", "the request was already sent; nothing was changed")
        return _error(409, "not_cancellable", f"the request is {result.status}; nothing was changed")
    return _json(200, CancelAnswer(request_id=request_id, status=result.status or "cancelled", cancelled=True))


@app.get("/v1/users/<user_id>/preferences")
def get_preferences(user_id: str) -> Response[str]:
    """A user's preferences (a user without a record has the defaults: never 404)."""
    viewer_of(app.current_event)
    state = _preferences().get(_user_id(user_id))
    logger.info("preferences looked up", stored=state.stored)
    return _json(200, UserPreferences.of(user_id, state))


@app.patch("/v1/users/<user_id>/preferences")
def change_preferences(user_id: str) -> Response[str]:
    """Change a user's preferences, audited with the caller as the actor; 409 to lift a user's own choice."""
    actor = _actor(app.current_event)
    _user_id(user_id)
    try:
        update = PreferencesUpdate.model_validate_json(_body(app.current_event) or b"")
    except ValidationError as exc:
        raise InvalidPreferencesError(describe_validation_error(exc)) from None
    result = _preferences().change(
        user_id,
        update.change(),
        actor=actor,
        source=SOURCE_API,
        note=update.note,
        override_user_choice=update.override_user_choice,
    )
    # The user id may be address-derived: the changes and who made them are enough to follow a change.
    logger.info("preferences changed", changes=list(result.changes), overrode=result.overrode_user_choice)
    return _json(200, UserPreferences.of(user_id, result.state))


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


@_on_error(UserChoiceError)
def _user_choice(exc: UserChoiceError) -> Response[str]:
    return _error(409, "user_choice", str(exc))


@_on_error(PreferenceError)
def _bad_preferences(exc: PreferenceError) -> Response[str]:
    return _error(400, "invalid_preferences", str(exc))


@_on_error(InvalidPreferencesError)
def _unreadable_preferences(exc: InvalidPreferencesError) -> Response[str]:
    return _error(400, "invalid_body", str(exc))


@_on_error(AccessDeniedError)
def _denied(exc: AccessDeniedError) -> Response[str]:
    logger.warning("caller refused", reason=str(exc))
    return _error(403, "forbidden", str(exc))


@_on_error(InvalidRequestsError)
def _invalid_requests(exc: InvalidRequestsError) -> Response[str]:
    _count_rejected(len(exc.items))
    logger.info("requests refused as invalid", invalid=len(exc.items), codes=sorted({i.code for i in exc.items}))
    body = SubmitErrorBody(error=SubmitError(code=exc.code, message=exc.message, items=exc.items))
    return _json(400, body)


@_on_error(SubmissionError)
def _unreadable_submission(exc: SubmissionError) -> Response[str]:
    return _json(400, SubmitErrorBody(error=SubmitError(code=exc.code, message=exc.message)))


@_on_error(QueueUnavailableError)
def _not_queued(exc: QueueUnavailableError) -> Response[str]:
    _count_refused(len(exc.failed))
    logger.warning("no request could be queued", failed=len(exc.failed), error=str(exc))
    answer = _error(503, "unavailable", f"nothing was queued: {exc}; submit again in a moment")
    answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return answer


@_on_error(SubmissionsUnavailableError)
def _no_submissions(exc: SubmissionsUnavailableError) -> Response[str]:
    return _error(503, "unavailable", str(exc))


@_on_error(TransientError)
def _unavailable(exc: TransientError) -> Response[str]:
    logger.warning("lookup failed for now", error=str(exc))
    answer = _error(503, "unavailable", "the message log cannot be read right now; try again in a moment")
    answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return answer


@app.not_found
def _no_route(exc: Exception) -> Response[str]:
    return _error(
        404,
        "unknown_route",
        "no such operation: POST /v1/messages, GET /v1/messages/{request_id}, POST /v1/messages/search, "
        "POST /v1/messages/{request_id}/cancel, GET|PATCH /v1/users/{user_id}/preferences",
    )


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


def _services() -> ApiServices:
    services: ApiServices = app.context["services"]
    return services


def _preferences() -> PreferenceAdmin:
    admin = _services().preferences
    if admin is None:
        raise SubmissionsUnavailableError("this API serves no preferences")
    return admin


def _user_id(user_id: str) -> str:
    """The path's user id, checked as a request's `user_id` is (400 invalid_user_id otherwise)."""
    try:
        return check_user_id(user_id)
    except PreferenceError as exc:
        raise InvalidLookupError("invalid_user_id", str(exc)) from None


def _actor(event: APIGatewayProxyEvent) -> str:
    """Who changes preferences, for the audit trail: `producer:<name>` (an API key's), else the IAM principal ARN."""
    viewer = viewer_of(event)
    if viewer.producer is not None:
        return f"producer:{viewer.producer}"
    arn = event.request_context.identity.user_arn
    if not arn:
        raise AccessDeniedError("the request carries no caller identity")
    return arn


def _service() -> StatusService:
    return _services().status


def _metrics() -> MetricsSink | None:
    sink: MetricsSink | None = app.context.get("metrics")
    return sink


def _count(viewer: Viewer, result: SubmitResult) -> None:
    sink = _metrics()
    if sink is None:
        return
    sink.add_dimension("producer", viewer.producer or IAM_CALLER)
    for name, count in (
        (METRIC_ACCEPTED, len(result.accepted)),
        (METRIC_REJECTED, len(result.rejected)),
        (METRIC_REFUSED, len(result.failed)),
    ):
        sink.add_metric(name=name, unit=MetricUnit.Count, value=count)


def _count_rejected(count: int) -> None:
    sink = _metrics()
    if sink is not None:
        sink.add_metric(name=METRIC_REJECTED, unit=MetricUnit.Count, value=count)


def _count_refused(count: int) -> None:
    sink = _metrics()
    if sink is not None:
        sink.add_metric(name=METRIC_REFUSED, unit=MetricUnit.Count, value=count)


def _json(status: int, body: BaseModel) -> Response[str]:
    return Response(status_code=status, content_type=JSON, body=body.model_dump_json(), headers=dict(NO_STORE))


def _error(status: int, code: str, message: str) -> Response[str]:
    return _json(status, ErrorBody(error=ApiError(code=code, message=message)))
