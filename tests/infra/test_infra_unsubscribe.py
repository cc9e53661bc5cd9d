"""The unsubscribe endpoint: a public function URL whose only authority is the signed token it checks."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from mailwright.constants import ADDRESS_KEY_MARKER, UNSUBSCRIBE_HANDLER, Env, Outputs
from tests.infra.synth import Synthesized, without_tracing

# Each module shares the session's synthesized stack (see conftest.py).
pytestmark = pytest.mark.slow

# What the endpoint does to the preferences table: read one user's items, update them.
PREFERENCE_ACTIONS = {"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _endpoint(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, resource)
        for logical_id, resource in synthesized.resources("AWS::Lambda::Function").items()
        if resource["Properties"].get("Handler") == UNSUBSCRIBE_HANDLER
    ]
    return found


def _statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    _, function = _endpoint(synthesized)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_endpoint_runs_the_shared_code_on_python_312_arm64(synthesized: Synthesized) -> None:
    _, function = _endpoint(synthesized)
    props = function["Properties"]
    worker_keys = {w["Properties"]["Code"]["S3Key"] for _, w in synthesized.workers().values()}

    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    assert props["Timeout"] <= 30
    # One code asset for every function: the stack bundles it once.
    assert worker_keys == {props["Code"]["S3Key"]}


def test_endpoint_logs_to_its_own_log_group_with_retention(synthesized: Synthesized) -> None:
    _, function = _endpoint(synthesized)
    log_group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]

    assert synthesized.resources("AWS::Logs::LogGroup")[log_group_id]["Properties"]["RetentionInDays"] == 30


def test_the_public_endpoint_has_a_concurrency_cap(synthesized: Synthesized, domain_synthesized: Synthesized) -> None:
    _, function = _endpoint(synthesized)
    _, uncapped = _endpoint(domain_synthesized)

    # cdk.json's unsubscribe.reserved_concurrency: a flood gets HTTP 429, the other functions keep their share.
    assert synthesized.config.unsubscribe.reserved_concurrency == 5
    synthesized.template.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": UNSUBSCRIBE_HANDLER, "ReservedConcurrentExecutions": 5}
    )
    assert function["Properties"]["ReservedConcurrentExecutions"] == 5
    # null: no reservation, for accounts whose concurrency limit is still 10.
    assert domain_synthesized.config.unsubscribe.reserved_concurrency is None
    assert "ReservedConcurrentExecutions" not in uncapped["Properties"]


def test_function_url_is_public_without_cors(synthesized: Synthesized) -> None:
    function_id, _ = _endpoint(synthesized)

    # Public by design: the HMAC token in the link authorises, and mail clients post without credentials.
    synthesized.template.has_resource_properties(
        "AWS::Lambda::Url",
        {"AuthType": "NONE", "TargetFunctionArn": {"Fn::GetAtt": [function_id, "Arn"]}, "Cors": Match.absent()},
    )
    synthesized.template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunctionUrl",
            "FunctionName": {"Fn::GetAtt": [function_id, "Arn"]},
            "FunctionUrlAuthType": "NONE",
            "Principal": "*",
        },
    )


def test_endpoint_is_told_only_its_table_and_secrets(synthesized: Synthesized) -> None:
    _, function = _endpoint(synthesized)
    env = function["Properties"]["Environment"]["Variables"]

    assert env[Env.PREFERENCES_TABLE] == synthesized.json["Outputs"][Outputs.PREFERENCES_TABLE]["Value"]
    assert env[Env.UNSUBSCRIBE_SECRET_ARN] == {"Ref": synthesized.secret_id("unsubscribe")}
    assert env[Env.ADDRESS_KEY_SECRET_ARN] == {"Ref": synthesized.secret_id("address keyring")}
    # The suppression table only for the address-key marker (its IAM grant reads nothing else).
    assert env[Env.SUPPRESSION_TABLE] == synthesized.json["Outputs"][Outputs.SUPPRESSION_TABLE]["Value"]
    assert not {Env.MESSAGES_TABLE, Env.QUEUE_URL} & set(env)


def test_endpoint_reads_the_secrets_and_updates_only_the_preferences_table(synthesized: Synthesized) -> None:
    secrets = [{"Ref": synthesized.secret_id("unsubscribe")}, {"Ref": synthesized.secret_id("address keyring")}]
    preferences = {"Fn::GetAtt": [synthesized.output_ref(Outputs.PREFERENCES_TABLE), "Arn"]}
    suppression = {"Fn::GetAtt": [synthesized.output_ref(Outputs.SUPPRESSION_TABLE), "Arn"]}
    # Exactly one statement may name "*": X-Ray's two actions, which have no resource type.
    statements = without_tracing(_statements(synthesized))
    logs = [s for s in statements if any(a.startswith("logs:") for a in _as_list(s["Action"]))]
    statements = [s for s in statements if s not in logs]

    assert [_as_list(s["Action"]) for s in logs] == [["logs:CreateLogStream", "logs:PutLogEvents"]]
    for statement in statements:
        actions = _as_list(statement["Action"])
        assert statement["Effect"] == "Allow"
        assert "*" not in actions and not any(a.endswith(":*") for a in actions), statement
        assert "*" not in _as_list(statement["Resource"]), statement
    secret = [s for s in statements if any(a.startswith("secretsmanager:") for a in _as_list(s["Action"]))]
    dynamodb = [s for s in statements if any(a.startswith("dynamodb:") for a in _as_list(s["Action"]))]
    other = [s for s in statements if s not in secret and s not in dynamodb]

    assert sorted((r for s in secret for r in _as_list(s["Resource"])), key=str) == sorted(secrets, key=str)
    assert all("secretsmanager:GetSecretValue" in _as_list(s["Action"]) for s in secret)
    # No Scan, Query, Put or Delete: a public endpoint never lists users nor removes their consent.
    on_preferences = [s for s in dynamodb if _as_list(s["Resource"]) == [preferences]]
    assert [set(_as_list(s["Action"])) for s in on_preferences] == [PREFERENCE_ACTIONS]
    # Of the suppression table, the address-key marker item only.
    marker = [s for s in dynamodb if s not in on_preferences]
    assert [(s["Action"], s["Resource"], s.get("Condition")) for s in marker] == [
        (
            "dynamodb:GetItem",
            suppression,
            {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [ADDRESS_KEY_MARKER]}},
        )
    ]
    assert other == []


def test_workers_link_to_the_endpoint_when_no_base_url_is_configured(synthesized: Synthesized) -> None:
    assert synthesized.config.unsubscribe_base_url == ""
    url = synthesized.json["Outputs"][Outputs.UNSUBSCRIBE_URL]["Value"]
    (url_id,) = synthesized.resources("AWS::Lambda::Url")

    assert url == {"Fn::GetAtt": [url_id, "FunctionUrl"]}
    for lane, (_, worker) in synthesized.workers().items():
        assert worker["Properties"]["Environment"]["Variables"][Env.UNSUBSCRIBE_BASE_URL] == url, lane
