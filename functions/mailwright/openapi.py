"""The OpenAPI document of the HTTPS API, generated from the pydantic models its handler answers with.

`schemas/openapi.json` is this document (`make schema`, or `python -m
mailwright.openapi > schemas/openapi.json`); a test fails when it drifts.
Each operation is declared once in `OPERATIONS`, by its models, and the
handler (mailwright.handlers.api) routes exactly these: a new operation is
one more entry here and one more route. Every operation is served twice: on
the IAM-authorized API (SigV4, the `ApiUrl` output) and on the producers' API
(an `x-api-key` header, the `ProducerApiUrl` output).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from mailwright import __version__
from mailwright.constants import REQUEST_ID_PATTERN
from mailwright.preference_models import PreferencesUpdate, UserPreferences
from mailwright.status_models import CancelAnswer, ErrorBody, MessageStatus, SearchPage, SearchRequest
from mailwright.submission_models import Submission, SubmitErrorBody, SubmitResult

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"
SIGV4 = "sigv4"
API_KEY = "api_key"

# Every operation may answer these; the bodies are ErrorBody. API Gateway answers 403 (refused
# signature or API key), 429 (throttled, over quota) and some 5xx itself, in the same shape (its gateway responses).
COMMON_ERRORS: dict[int, str] = {
    403: "The caller may not use the API: a missing or refused SigV4 signature, a missing, unknown or revoked "
    "API key (invalid_api_key), or a key naming no producer (forbidden).",
    429: "Throttled (throttled: the stage's or the key's usage plan's rate or burst) or over the key's quota for "
    "the period (quota_exceeded); retry with backoff, or after the period.",
    500: "The request failed on the server; it was logged.",
    503: "A dependency cannot be reached right now (the message log; the lane queues, for a submission of which "
    "nothing was queued); retry after Retry-After seconds.",
}


@dataclass(frozen=True)
class Operation:
    """One operation of the API: where it is, what it takes and what it answers."""

    method: Literal["get", "post", "patch"]
    path: str
    operation_id: str
    summary: str
    description: str
    response: type[BaseModel]
    request: type[BaseModel] | None = None
    parameters: tuple[dict[str, Any], ...] = ()
    errors: dict[int, str] = field(default_factory=dict)
    # The status of a success, and the body of every error (a superset of ErrorBody where it says more).
    status: int = 200
    error_body: type[BaseModel] = ErrorBody


_USER_ID: dict[str, Any] = {
    "name": "user_id",
    "in": "path",
    "required": True,
    "description": "The user id requests carry (`user_id`), URL-encoded; 1 to 128 characters, no control characters.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": r"^[^\x00-\x1f\x7f]+$"},
}

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        method="post",
        path="/v1/messages",
        operation_id="submitMessages",
        summary="Send email: one request, or a batch of up to 100",
        description="Every request is validated at once with the request model and routed to its lane "
        "(its priority, else its template's). 202 means each request in `accepted` is on its lane queue; "
        "`failed` lists valid requests the queue refused after retries (not queued: submit them again, "
        "their request ids stay the same). A batch with an invalid request is refused whole (400, each "
        "invalid request named in `error.items`) unless it says `partial: true`: then the valid ones are "
        "queued and the invalid ones listed in `rejected`. Through the producers' API, each request is "
        "recorded with the key's producer (`producer` may be left out, or name that producer).",
        response=SubmitResult,
        request=Submission,
        status=202,
        error_body=SubmitErrorBody,
        errors={
            400: "The body is not JSON (invalid_json), not a request or batch, or a batch of no or over 100 "
            "requests (invalid_body), or requests are invalid (invalid_requests: `error.items` names each, "
            "with its index, code and reason); nothing was queued.",
        },
    ),
    Operation(
        method="get",
        path="/v1/messages/{request_id}",
        operation_id="getMessage",
        summary="A request's status and history",
        description="Its terminal state and why, how far the email got (the provider's events), and every "
        "evaluation's outcome and event by time. A producer sees only its own requests; another's is 404.",
        response=MessageStatus,
        parameters=(
            {
                "name": "request_id",
                "in": "path",
                "required": True,
                "description": "The request id `send` returned (also the `request_id` tag of the email).",
                "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
            },
        ),
        errors={
            400: "The request id is malformed (code invalid_request_id).",
            404: "No such request in the message log: not processed yet, never published, or expired (not_found).",
        },
    ),
    Operation(
        method="post",
        path="/v1/messages/search",
        operation_id="searchMessages",
        summary="The requests sent to an address, newest first",
        description="A POST, so the address stays out of URLs and access logs. Pages continue with `next` "
        "(opaque and signed: use it with the same recipient and since); a page may hold fewer than `limit` "
        "items before the last, whose `next` is null.",
        response=SearchPage,
        request=SearchRequest,
        errors={
            400: "The body is not JSON (invalid_json), breaks the schema or holds no address (invalid_body), "
            "or its `next` is not a cursor of this search (invalid_cursor).",
        },
    ),
    Operation(
        method="post",
        path="/v1/messages/{request_id}/cancel",
        operation_id="cancelMessage",
        summary="Cancel a scheduled request",
        description="Cancels a request sent with `send_at` that is still `scheduled`, or one not processed yet: "
        "it is never sent, and its status becomes `cancelled`. A producer cancels only its own requests. "
        "A request already sent, or otherwise final, is left as it is (409).",
        response=CancelAnswer,
        parameters=(
            {
                "name": "request_id",
                "in": "path",
                "required": True,
                "description": "The request id `send` returned.",
                "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
            },
        ),
        errors={
            400: "The request id is malformed (code invalid_request_id).",
            404: "Another producer's request, or (for a producer) none in the message log (not_found).",
            409: "Too late: the request was already sent (already_sent), or is in another final state or being "
            "sent right now (not_cancellable); nothing was changed.",
        },
    ),
    Operation(
        method="get",
        path="/v1/users/{user_id}/preferences",
        operation_id="getPreferences",
        summary="A user's preferences",
        description="The user's locale, time zone, quiet hours, opted-out categories and unsubscribe from all "
        "optional mail, merged over every stored form of the user id. A user without a record gets everything: "
        "the defaults are answered (200, `updated_at` null), never 404.",
        response=UserPreferences,
        parameters=(_USER_ID,),
        errors={400: "The user id is malformed (invalid_user_id)."},
    ),
    Operation(
        method="patch",
        path="/v1/users/{user_id}/preferences",
        operation_id="changePreferences",
        summary="Change a user's preferences",
        description="Applies the changes the body names (the others stay as they are) and answers the new state. "
        "Each change is kept in the user's audit trail with the caller as the actor (the IAM principal's ARN, or "
        "`producer:<name>` for an API key) and the note. A change that changes nothing writes nothing. Lifting "
        "an opt-out or unsubscribe the user made themselves needs `override_user_choice` and a `note` (else 409).",
        response=UserPreferences,
        request=PreferencesUpdate,
        parameters=(_USER_ID,),
        errors={
            400: "The body is not JSON or has an unknown field or a wrong type (invalid_body), or a value is "
            "refused: a bad time zone, quiet hours or locale, an unknown or essential category, "
            "contradictory options, an override without a note (invalid_preferences), or the user id is "
            "malformed (invalid_user_id); nothing was changed.",
            409: "The change would lift an opt-out or unsubscribe the user made themselves, without "
            "`override_user_choice` (user_choice); nothing was changed.",
        },
    ),
)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every operation, with the models' JSON Schemas as components."""
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [(ErrorBody, "serialization")]
    for operation in OPERATIONS:
        models.append((operation.response, "serialization"))
        models.append((operation.error_body, "serialization"))
        if operation.request is not None:
            models.append((operation.request, "validation"))
    refs, definitions = models_json_schema(list(dict.fromkeys(models)), ref_template=REF_TEMPLATE)
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        success = "Accepted" if operation.status == 202 else "OK"
        responses: dict[str, Any] = {
            str(operation.status): _json_content(success, refs[(operation.response, "serialization")])
        }
        for status, description in sorted({**operation.errors, **COMMON_ERRORS}.items()):
            responses[str(status)] = _json_content(description, refs[(operation.error_body, "serialization")])
        entry: dict[str, Any] = {
            "operationId": operation.operation_id,
            "summary": operation.summary,
            "description": operation.description,
            "parameters": list(operation.parameters),
            "responses": responses,
        }
        if operation.request is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(operation.request, "validation")]}},
            }
        paths.setdefault(operation.path, {})[operation.method] = entry
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "mailwright API",
            "version": __version__,
            "description": "Email requests: submit them, and ask what became of them (by request id, by "
            "recipient). Two deployed APIs serve every operation: the IAM-authorized one (the ApiUrl output), "
            "where a SigV4 signature (service execute-api) of an IAM principal allowed to invoke it is the "
            "platform team's (every request visible), and the producers' one (ProducerApiUrl), where an "
            "`x-api-key` header names a producer (its own requests only; usage plan throttles and quotas). "
            "The local stack serves both on loopback: status_api_url unsigned, api_url with api_key.",
        },
        "servers": [
            {
                "url": "https://{api_id}.execute-api.{region}.amazonaws.com/{stage}",
                "description": "A deployed stack: its ApiUrl output (SigV4) or its ProducerApiUrl output (API keys).",
                "variables": {
                    "api_id": {"default": "api_id", "description": "The stack's ApiId or ProducerApiId output."},
                    "region": {"default": "us-east-1"},
                    "stage": {"default": "prod"},
                },
            },
            {
                "url": "http://127.0.0.1:{port}",
                "description": "The local stack: status_api_url (unsigned) or api_url (x-api-key) in "
                ".mailwright/local.json.",
                "variables": {"port": {"default": "8000"}},
            },
        ],
        "security": [{SIGV4: []}, {API_KEY: []}],
        "paths": paths,
        "components": {
            "schemas": definitions["$defs"],
            "securitySchemes": {
                # How API Gateway describes IAM authorization in OpenAPI.
                SIGV4: {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                },
                # A producer's API Gateway API key, on the producers' API.
                API_KEY: {"type": "apiKey", "name": "x-api-key", "in": "header"},
            },
        },
    }


def _json_content(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def main() -> None:
    """Print the document (`python -m mailwright.openapi > schemas/openapi.json`)."""
    sys.stdout.write(json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
