"""The address keyring: a kept secret, read only by the functions that hash addresses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from mailwright.constants import (
    ADDRESS_KEY_MARKER,
    API_HANDLER,
    FEEDBACK_HANDLER,
    SEND_WORKER_HANDLER,
    UNSUBSCRIBE_HANDLER,
    Env,
    Outputs,
)
from tests.infra.synth import Synthesized, as_list, role_statements

pytestmark = pytest.mark.slow


def _keyring(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, resource)
        for logical_id, resource in synthesized.resources("AWS::SecretsManager::Secret").items()
        if "address keyring" in resource["Properties"].get("Description", "")
    ]
    return found


def _functions(synthesized: Synthesized, handler: str) -> list[dict[str, Any]]:
    return [
        resource
        for resource in synthesized.resources("AWS::Lambda::Function").values()
        if resource["Properties"].get("Handler") == handler
    ]


def test_keyring_is_generated_in_the_versioned_form_and_kept_on_delete(synthesized: Synthesized) -> None:
    logical_id, secret = _keyring(synthesized)
    generated = secret["Properties"]["GenerateSecretString"]

    assert json.loads(generated["SecretStringTemplate"]) == {"current": "1"}
    assert generated["GenerateStringKey"] == "1"
    assert generated["PasswordLength"] >= 32 and generated["ExcludePunctuation"] is True
    # Losing it would make every stored suppression unfindable.
    assert secret["DeletionPolicy"] == "Retain" and secret["UpdateReplacePolicy"] == "Retain"
    assert synthesized.json["Outputs"][Outputs.ADDRESS_KEY_SECRET_ARN]["Value"] == {"Ref": logical_id}


@pytest.mark.parametrize("handler", [SEND_WORKER_HANDLER, FEEDBACK_HANDLER, UNSUBSCRIBE_HANDLER])
def test_functions_that_hash_addresses_are_told_the_keyring_and_may_read_it(
    synthesized: Synthesized, handler: str
) -> None:
    logical_id, _ = _keyring(synthesized)
    functions = _functions(synthesized, handler)
    assert functions
    for function in functions:
        assert function["Properties"]["Environment"]["Variables"][Env.ADDRESS_KEY_SECRET_ARN] == {"Ref": logical_id}
        reads = [
            s
            for s in role_statements(synthesized, function)
            if "secretsmanager:GetSecretValue" in as_list(s["Action"]) and {"Ref": logical_id} in as_list(s["Resource"])
        ]
        assert reads, f"{handler} cannot read the keyring"


def test_only_those_functions_read_the_keyring(synthesized: Synthesized) -> None:
    logical_id, _ = _keyring(synthesized)
    readers = {
        resource["Properties"]["Handler"]
        for resource in synthesized.resources("AWS::Lambda::Function").values()
        if any({"Ref": logical_id} in as_list(s["Resource"]) for s in role_statements(synthesized, resource))
    }
    assert readers == {SEND_WORKER_HANDLER, FEEDBACK_HANDLER, UNSUBSCRIBE_HANDLER, API_HANDLER}


def test_the_public_endpoint_reads_only_the_marker_of_the_suppression_table(synthesized: Synthesized) -> None:
    (endpoint,) = _functions(synthesized, UNSUBSCRIBE_HANDLER)
    suppression = synthesized.output_ref(Outputs.SUPPRESSION_TABLE)
    on_suppression = [
        s
        for s in role_statements(synthesized, endpoint)
        if any(
            "Fn::GetAtt" in r and r["Fn::GetAtt"][0] == suppression
            for r in as_list(s["Resource"])
            if isinstance(r, dict)
        )
    ]
    assert on_suppression == [
        {
            "Action": "dynamodb:GetItem",
            "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [ADDRESS_KEY_MARKER]}},
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [suppression, "Arn"]},
        }
    ]
    synthesized.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": UNSUBSCRIBE_HANDLER,
            "Environment": {"Variables": Match.object_like({Env.SUPPRESSION_TABLE: {"Ref": suppression}})},
        },
    )
