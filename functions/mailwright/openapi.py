"""The OpenAPI document of the HTTPS API, generated from the pydantic models its handler answers with.

`schemas/openapi.json` is this document (`make schema`, or `python -m
mailwright.openapi > schemas/openapi.json`); a test fails when it drifts.
Each operation is declared once in `OPERATIONS`, by its models, and the
handler (mailwright.handlers.api) routes exactly these: a new operation
(the producers' POST /v1/messages) is one more entry here and one more route.
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
from mailwright.status_models import ErrorBody, MessageStatus, SearchPage, SearchRequest

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"
SIGV4 = "sigv4"

# Every operation may answer these; the bodies are ErrorBody. API Gateway answers 403 (refused
# signature), 429 (throttled) and some 5xx itself, in the same shape (its gateway responses).
COMMON_ERRORS: dict[int, str] = {
    403: "The caller may not use the API (a missing or refused SigV4 signature; an API key naming no producer).",
    429: "Throttled: the stage's rate or burst limit was reached; retry with backoff.",
    500: "The request failed on the server; it was logged.",
    503: "The message log cannot be read right now (throttled or unreachable); retry after Retry-After seconds.",
}


@dataclass(frozen=True)
class Operation:
    """One operation of the API: where it is, what it takes and what it answers."""

    method: Literal["get", "post"]
    path: str
    operation_id: str
    summary: str
    description: str
    response: type[BaseModel]
    request: type[BaseModel] | None = None
    parameters: tuple[dict[str, Any], ...] = ()
    errors: dict[int, str] = field(default_factory=dict)


OPERATIONS: tuple[Operation, ...] = (
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
)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every operation, with the models' JSON Schemas as components."""
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [(ErrorBody, "serialization")]
    for operation in OPERATIONS:
        models.append((operation.response, "serialization"))
        if operation.request is not None:
            models.append((operation.request, "validation"))
    refs, definitions = models_json_schema(models, ref_template=REF_TEMPLATE)
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        responses: dict[str, Any] = {"200": _json_content("OK", refs[(operation.response, "serialization")])}
        for status, description in sorted({**operation.errors, **COMMON_ERRORS}.items()):
            responses[str(status)] = _json_content(description, refs[(ErrorBody, "serialization")])
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
            "description": "The status of email requests: by request id, and by recipient. Deployed, every "
            "operation needs a SigV4 signature (service execute-api) of an IAM principal allowed to invoke "
            "it; the local stack's API on loopback accepts unsigned requests.",
        },
        "servers": [
            {
                "url": "https://{api_id}.execute-api.{region}.amazonaws.com/{stage}",
                "description": "A deployed stack: its ApiUrl output.",
                "variables": {
                    "api_id": {"default": "api_id", "description": "The stack's ApiId output."},
                    "region": {"default": "us-east-1"},
                    "stage": {"default": "prod"},
                },
            },
            {
                "url": "http://127.0.0.1:{port}",
                "description": "The local stack: status_api_url in .mailwright/local.json.",
                "variables": {"port": {"default": "8000"}},
            },
        ],
        "security": [{SIGV4: []}],
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
                }
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
