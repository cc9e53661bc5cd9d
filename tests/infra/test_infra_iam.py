"""Least privilege: what each worker's role may do, statement by statement."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match

from mailwright.constants import LANES, TEMPLATES_PREFIX, Outputs
from tests.infra.synth import Synthesized, as_list, is_tracing_statement, render, without_tracing

# Each module shares the session's synthesized stack (see conftest.py).
pytestmark = pytest.mark.slow

ARN_PREFIX = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}"
WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _worker_statements(synthesized: Synthesized, lane: str) -> list[dict[str, Any]]:
    _, worker = synthesized.workers()[lane]
    role_id = worker["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert statements, f"no policy attached to the {lane} worker's role"
    return statements


def _ses_arns(synthesized: Synthesized, identity: str) -> list[str]:
    (configuration_set_id,) = synthesized.resources("AWS::SES::ConfigurationSet")
    return sorted([f"{ARN_PREFIX}:identity/{identity}", f"{ARN_PREFIX}:configuration-set/${{{configuration_set_id}}}"])


@pytest.mark.parametrize("lane", LANES)
def test_worker_may_read_the_ses_quota_and_nothing_else_on_any_resource(synthesized: Synthesized, lane: str) -> None:
    # SES GetAccount (the send rate and daily quota pacing follows) has no resource type: its own statement.
    statements = without_tracing(_worker_statements(synthesized, lane))
    (quota,) = [s for s in statements if "*" in _as_list(s["Resource"])]
    assert quota.get("Sid") == "ReadSesSendingQuota"
    assert _as_list(quota["Action"]) == ["ses:GetAccount"]


@pytest.mark.parametrize("lane", LANES)
def test_worker_policy_has_no_wildcard_actions_or_resources(synthesized: Synthesized, lane: str) -> None:
    # Only X-Ray's two actions and SES GetAccount may name "*": they have no resource type.
    statements = without_tracing(_worker_statements(synthesized, lane))
    for statement in [s for s in statements if s.get("Sid") != "ReadSesSendingQuota"]:
        actions = _as_list(statement["Action"])
        assert statement["Effect"] == "Allow"
        assert not any("*" in action for action in actions), statement
        assert "*" not in _as_list(statement["Resource"]), statement


@pytest.mark.parametrize("lane", LANES)
def test_worker_may_write_only_to_its_own_log_group(synthesized: Synthesized, lane: str) -> None:
    _, worker = synthesized.workers()[lane]
    log_group = worker["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    logs = [
        s for s in _worker_statements(synthesized, lane) if any(a.startswith("logs:") for a in as_list(s["Action"]))
    ]
    role_id = worker["Properties"]["Role"]["Fn::GetAtt"][0]

    assert logs == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [log_group, "Arn"]},
        }
    ]
    # No AWSLambdaBasicExecutionRole: it may write to every log group in the account.
    assert "ManagedPolicyArns" not in synthesized.resources("AWS::IAM::Role")[role_id]["Properties"]


# What CDK's BucketDeployment grants itself to copy and prune objects (acknowledged in infra/templates_bucket.py).
CDK_DEPLOYMENT_WILDCARDS = {"s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*"}


def _deployment_role(synthesized: Synthesized) -> str:
    (deployment,) = synthesized.resources("Custom::CDKBucketDeployment").values()
    function_id = deployment["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
    role: str = synthesized.resources("AWS::Lambda::Function")[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role


def test_no_statement_in_the_stack_has_a_wildcard_action_but_cdks_own(synthesized: Synthesized) -> None:
    deployment_role = _deployment_role(synthesized)
    cdk_wildcards: set[str] = set()
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        roles = [r["Ref"] for r in policy["Properties"]["Roles"]]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            wildcards = {action for action in as_list(statement["Action"]) if "*" in action}
            if roles == [deployment_role]:
                cdk_wildcards |= wildcards
            else:
                assert not wildcards, statement
            if "*" in as_list(statement["Resource"]):
                # X-Ray's, SES GetAccount's (pacing reads the account's quota) and the events publisher's
                # dynamodb:ListStreams (its stream mapping): none has a resource type.
                quota = statement.get("Sid") == "ReadSesSendingQuota" and as_list(statement["Action"]) == [
                    "ses:GetAccount"
                ]
                listed = [a for a in as_list(statement["Action"]) if a != "dynamodb:ListStreams"]
                # Untraced functions (the `tracing` default) have no X-Ray grant: ListStreams alone is left.
                assert not listed or is_tracing_statement({**statement, "Action": listed}) or quota, statement

    assert cdk_wildcards == CDK_DEPLOYMENT_WILDCARDS


def test_cdks_deployment_function_logs_to_a_group_with_retention(synthesized: Synthesized) -> None:
    role_id = _deployment_role(synthesized)
    (function,) = [
        f
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if f["Properties"]["Role"]["Fn::GetAtt"][0] == role_id
    ]
    log_group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]

    assert synthesized.resources("AWS::Logs::LogGroup")[log_group]["Properties"]["RetentionInDays"] == 30
    assert "ManagedPolicyArns" not in synthesized.resources("AWS::IAM::Role")[role_id]["Properties"]


def test_every_log_group_has_a_retention(synthesized: Synthesized) -> None:
    log_groups = synthesized.resources("AWS::Logs::LogGroup")

    assert log_groups
    assert all(group["Properties"].get("RetentionInDays") for group in log_groups.values())
    # ... and every function logs to one of them, not to an implicit group that keeps logs forever.
    for function in synthesized.resources("AWS::Lambda::Function").values():
        assert function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] in log_groups


@pytest.mark.parametrize("lane", LANES)
def test_worker_may_send_only_as_its_identity_through_its_configuration_set(
    synthesized: Synthesized, lane: str
) -> None:
    # (beside the read of the account's quota, test_worker_may_read_the_ses_quota_and_nothing_else_on_any_resource)
    ses = [
        s
        for s in _worker_statements(synthesized, lane)
        if any(a.startswith("ses:") for a in _as_list(s["Action"])) and s.get("Sid") != "ReadSesSendingQuota"
    ]

    assert len(ses) == 1
    assert _as_list(ses[0]["Action"]) == ["ses:SendEmail"]
    assert sorted(render(_as_list(ses[0]["Resource"]))) == _ses_arns(synthesized, synthesized.config.sender)


def test_domain_identity_uses_easy_dkim_and_scopes_send_email(domain_synthesized: Synthesized) -> None:
    domain_synthesized.template.has_resource_properties(
        "AWS::SES::EmailIdentity",
        {"EmailIdentity": "example.com", "DkimSigningAttributes": Match.absent()},
    )
    ses = [s for s in _worker_statements(domain_synthesized, "critical") if _as_list(s["Action"]) == ["ses:SendEmail"]]
    # While the account is in the SES sandbox, SendEmail is authorised against each recipient identity too.
    recipients = [f"{ARN_PREFIX}:identity/{identity}" for identity in domain_synthesized.config.sandbox_recipients]

    assert recipients
    assert sorted(render(_as_list(ses[0]["Resource"]))) == sorted(
        [*_ses_arns(domain_synthesized, "example.com"), *recipients]
    )


@pytest.mark.parametrize("lane", LANES)
def test_worker_consumes_only_its_own_queue(synthesized: Synthesized, lane: str) -> None:
    own_queue = {"Fn::GetAtt": [synthesized.queue_of(lane)[0], "Arn"]}
    sqs = [s for s in _worker_statements(synthesized, lane) if any(a.startswith("sqs:") for a in _as_list(s["Action"]))]

    assert sqs
    assert all(_as_list(statement["Resource"]) == [own_queue] for statement in sqs)
    actions = {action for statement in sqs for action in _as_list(statement["Action"])}
    # The worker backs a failed record off by changing its visibility, and hands paced mail back to its
    # own queue as new, delayed messages (SendMessage): to no other queue.
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage"} <= actions
    assert not any(action.endswith("*") for action in actions)


@pytest.mark.parametrize("lane", LANES)
def test_worker_only_reads_consent_and_suppression(synthesized: Synthesized, lane: str) -> None:
    read_only = [
        {"Fn::GetAtt": [synthesized.output_ref(key), "Arn"]}
        for key in (Outputs.PREFERENCES_TABLE, Outputs.SUPPRESSION_TABLE)
    ]
    read_write = [
        {"Fn::GetAtt": [synthesized.output_ref(key), "Arn"]}
        for key in (Outputs.IDEMPOTENCY_TABLE, Outputs.MESSAGES_TABLE)
    ]
    statements = _worker_statements(synthesized, lane)

    for statement in statements:
        resources = _as_list(statement["Resource"])
        if any(arn in resources for arn in read_only):
            assert not WRITE_ACTIONS & set(_as_list(statement["Action"])), statement
    writes = [s for s in statements if set(_as_list(s["Action"])) >= WRITE_ACTIONS]
    assert all(arn in _as_list(s["Resource"]) for arn in read_write for s in writes)
    assert writes


@pytest.mark.parametrize("lane", LANES)
def test_worker_reads_templates_under_the_prefix_and_the_secret(synthesized: Synthesized, lane: str) -> None:
    bucket_id = synthesized.output_ref(Outputs.TEMPLATES_BUCKET)
    secret_id = synthesized.secret_id("unsubscribe")
    statements = _worker_statements(synthesized, lane)

    s3 = [s for s in statements if any(a.startswith("s3:") for a in _as_list(s["Action"]))]
    assert len(s3) == 1
    assert not any(a.startswith(("s3:Put", "s3:Delete")) for a in _as_list(s3[0]["Action"]))
    object_arns = [r for r in render(_as_list(s3[0]["Resource"])) if "/" in r]
    assert object_arns == [f"${{{bucket_id}.Arn}}/{TEMPLATES_PREFIX}*"]
    assert any(
        {"Ref": secret_id} in _as_list(s["Resource"]) and "secretsmanager:GetSecretValue" in _as_list(s["Action"])
        for s in statements
    )


def test_the_templates_deploy_function_never_deletes_and_stays_in_the_prefix(synthesized: Synthesized) -> None:
    bucket_id = synthesized.output_ref(Outputs.TEMPLATES_BUCKET)
    (publish,) = synthesized.resources("Custom::MailwrightTemplates").values()
    function_id = publish["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
    role_id = synthesized.resources("AWS::Lambda::Function")[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if [r["Ref"] for r in policy["Properties"]["Roles"]] == [role_id]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    s3 = [s for s in statements if any(a.startswith("s3:") for a in _as_list(s["Action"]))]

    actions = {a for s in s3 for a in _as_list(s["Action"])}
    assert actions == {"s3:ListBucket", "s3:GetObject", "s3:PutObject"}
    object_arns = {r for s in s3 for r in render(_as_list(s["Resource"])) if "/" in r}
    assert object_arns == {
        f"${{{bucket_id}.Arn}}/{TEMPLATES_PREFIX}*",
        f"${{{bucket_id}.Arn}}/{TEMPLATES_PREFIX}_deploy/*",
    }


def test_stack_synthesizes_without_warnings_or_errors(synthesized: Synthesized) -> None:
    annotations = Annotations.from_stack(synthesized.stack)

    assert annotations.find_error("*", Match.any_value()) == []
    assert annotations.find_warning("*", Match.any_value()) == []
