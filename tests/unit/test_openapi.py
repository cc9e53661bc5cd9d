"""The OpenAPI document: committed as generated, valid OpenAPI 3.1, and true to what the handler routes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from mailwright.constants import REQUEST_ID_PATTERN
from mailwright.handlers import api
from mailwright.openapi import OPERATIONS, openapi_document
from mailwright.status import StatusService
from mailwright_tools.fakes import FakeMessageLog, FakeRecipientIndex, StaticAddressKeys
from mailwright_tools.local.api_server import rest_api_event

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "openapi.json"


def test_the_committed_document_is_the_generated_one() -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))

    assert committed == openapi_document(), "schemas/openapi.json drifted from the models: run `make schema`"


def test_the_document_is_valid_openapi_31() -> None:
    validate(openapi_document())  # raises on any violation of the OpenAPI 3.1 schema


def test_every_operation_needs_sigv4_and_answers_errors_in_one_shape() -> None:
    document = openapi_document()

    assert document["security"] == [{"sigv4": []}]
    assert document["components"]["securitySchemes"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    for operations in document["paths"].values():
        for operation in operations.values():
            errors = {status: answer for status, answer in operation["responses"].items() if status != "200"}
            assert {"403", "429", "500", "503"} <= set(errors)
            refs = {answer["content"]["application/json"]["schema"]["$ref"] for answer in errors.values()}
            assert refs == {"#/components/schemas/ErrorBody"}


def test_the_path_parameter_has_the_request_id_pattern() -> None:
    (parameter,) = openapi_document()["paths"]["/v1/messages/{request_id}"]["get"]["parameters"]

    assert parameter["schema"]["pattern"] == REQUEST_ID_PATTERN


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
def test_the_handler_routes_every_documented_operation(operation: object) -> None:
    from mailwright.openapi import Operation

    assert isinstance(operation, Operation)
    log = FakeMessageLog()
    svc = StatusService(log, FakeRecipientIndex(log), StaticAddressKeys())
    path = operation.path.replace("{request_id}", "ab" * 16)
    body = json.dumps({"recipient": "jane@example.com"}).encode() if operation.request else b""

    answer = api.handle(svc, rest_api_event(operation.method.upper(), path, body=body))

    code = json.loads(answer["body"]).get("error", {}).get("code")
    assert code != "unknown_route"
    documented = openapi_document()["paths"][operation.path][operation.method]["responses"]
    assert str(answer["statusCode"]) in documented
