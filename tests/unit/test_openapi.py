"""The OpenAPI document: committed as generated, valid OpenAPI 3.1, and true to what the handler routes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from mailwright.api_services import ApiServices
from mailwright.constants import REQUEST_ID_PATTERN
from mailwright.handlers import api
from mailwright.openapi import OPERATIONS, openapi_document
from mailwright.status import StatusService
from mailwright_tools.fakes import FakeMessageLog, FakeRecipientIndex, StaticAddressKeys
from mailwright_tools.local.api_server import rest_api_event
from tests.unit.submission_fakes import FakeSqs, submission_service

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "openapi.json"


def test_the_committed_document_is_the_generated_one() -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))

    assert committed == openapi_document(), "schemas/openapi.json drifted from the models: run `make schema`"


def test_the_document_is_valid_openapi_31() -> None:
    validate(openapi_document())  # raises on any violation of the OpenAPI 3.1 schema


def test_every_operation_takes_sigv4_or_an_api_key_and_answers_errors_in_one_shape() -> None:
    document = openapi_document()
    schemes = document["components"]["securitySchemes"]

    assert document["security"] == [{"sigv4": []}, {"api_key": []}]
    assert schemes["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert (schemes["api_key"]["name"], schemes["api_key"]["in"]) == ("x-api-key", "header")
    for operations in document["paths"].values():
        for operation in operations.values():
            errors = {status: answer for status, answer in operation["responses"].items() if status[0] != "2"}
            assert {"403", "429", "500", "503"} <= set(errors)
            refs = {answer["content"]["application/json"]["schema"]["$ref"] for answer in errors.values()}
            assert refs <= {"#/components/schemas/ErrorBody", "#/components/schemas/SubmitErrorBody"}
            assert len(refs) == 1


def test_submit_error_bodies_are_status_error_bodies_with_items() -> None:
    schemas = openapi_document()["components"]["schemas"]

    assert set(schemas["ApiError"]["properties"]) < set(schemas["SubmitError"]["properties"])
    assert schemas["SubmitError"]["properties"]["items"]["items"] == {"$ref": "#/components/schemas/RejectedRequest"}


def test_submissions_take_one_request_or_a_batch_of_up_to_100() -> None:
    document = openapi_document()
    submit = document["paths"]["/v1/messages"]["post"]
    batch = document["components"]["schemas"]["MessageBatch"]

    assert submit["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Submission"}
    assert {ref["$ref"] for ref in document["components"]["schemas"]["Submission"]["anyOf"]} == {
        "#/components/schemas/EmailRequest",
        "#/components/schemas/MessageBatch",
    }
    assert (batch["properties"]["requests"]["minItems"], batch["properties"]["requests"]["maxItems"]) == (1, 100)
    assert set(submit["responses"]) >= {"202", "400"}
    assert "200" not in submit["responses"]


def test_the_path_parameter_has_the_request_id_pattern() -> None:
    (parameter,) = openapi_document()["paths"]["/v1/messages/{request_id}"]["get"]["parameters"]

    assert parameter["schema"]["pattern"] == REQUEST_ID_PATTERN


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
def test_the_handler_routes_every_documented_operation(operation: object) -> None:
    from mailwright.openapi import Operation

    assert isinstance(operation, Operation)
    log = FakeMessageLog()
    services = ApiServices(
        status=StatusService(log, FakeRecipientIndex(log), StaticAddressKeys()),
        submissions=submission_service(FakeSqs()),
    )
    path = operation.path.replace("{request_id}", "ab" * 16).replace("{user_id}", "user-42")
    bodies = {
        "changePreferences": {"timezone": "Europe/Paris"},
        "searchMessages": {"recipient": "jane@example.com"},
        "submitMessages": {"recipient_email": "jane@example.com", "template_id": "welcome_email"},
    }
    body = json.dumps(bodies[operation.operation_id]).encode() if operation.request else b""

    answer = api.handle(services, rest_api_event(operation.method.upper(), path, body=body))

    code = json.loads(answer["body"]).get("error", {}).get("code")
    assert code != "unknown_route"
    documented = openapi_document()["paths"][operation.path][operation.method]["responses"]
    assert str(answer["statusCode"]) in documented
