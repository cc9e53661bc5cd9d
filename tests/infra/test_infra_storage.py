"""Tables, the templates bucket and the unsubscribe secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk.assertions import Match, Template

from infra.templates_bucket import acknowledged_versions, source_digest
from mailwright.constants import (
    SES_MESSAGE_ID_INDEX,
    TEMPLATES_DEPLOY_HANDLER,
    TEMPLATES_STAGING_PREFIX,
    Keys,
    Outputs,
)
from tests.infra.synth import Resource, Synthesized

# Each module shares the session's synthesized stack (see conftest.py).
pytestmark = pytest.mark.slow

PITR_ON = {"PointInTimeRecoveryEnabled": True}


def _table(synthesized: Synthesized, output_key: str) -> Resource:
    resource = synthesized.resources("AWS::DynamoDB::Table")[synthesized.output_ref(output_key)]
    return resource


@pytest.mark.parametrize(
    ("output_key", "keys"),
    [
        (Outputs.PREFERENCES_TABLE, [{"AttributeName": Keys.PREFERENCES_PK, "KeyType": "HASH"}]),
        (Outputs.SUPPRESSION_TABLE, [{"AttributeName": Keys.SUPPRESSION_PK, "KeyType": "HASH"}]),
        (Outputs.IDEMPOTENCY_TABLE, [{"AttributeName": Keys.IDEMPOTENCY_PK, "KeyType": "HASH"}]),
        (
            Outputs.MESSAGES_TABLE,
            [
                {"AttributeName": Keys.MESSAGES_PK, "KeyType": "HASH"},
                {"AttributeName": Keys.MESSAGES_SK, "KeyType": "RANGE"},
            ],
        ),
    ],
)
def test_table_is_on_demand_encrypted_and_keyed(
    synthesized: Synthesized, output_key: str, keys: list[dict[str, str]]
) -> None:
    props = _table(synthesized, output_key)["Properties"]

    assert props["KeySchema"] == keys
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {"SSEEnabled": True}


@pytest.mark.parametrize("output_key", [Outputs.PREFERENCES_TABLE, Outputs.SUPPRESSION_TABLE])
def test_consent_and_suppression_survive_mistakes(synthesized: Synthesized, output_key: str) -> None:
    table = _table(synthesized, output_key)

    assert table["Properties"]["PointInTimeRecoverySpecification"] == PITR_ON
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_message_log_backups_are_a_setting(synthesized: Synthesized, domain_synthesized: Synthesized) -> None:
    # Off by default (cdk.json): the log expires by TTL; the consent tables above keep theirs always
    default = _table(synthesized, Outputs.MESSAGES_TABLE)
    assert "PointInTimeRecoverySpecification" not in default["Properties"]
    assert default["DeletionPolicy"] == "Retain"
    # message_log_backups: true turns point-in-time recovery on
    backed_up = _table(domain_synthesized, Outputs.MESSAGES_TABLE)
    assert backed_up["Properties"]["PointInTimeRecoverySpecification"] == PITR_ON


@pytest.mark.parametrize("output_key", [Outputs.SUPPRESSION_TABLE, Outputs.IDEMPOTENCY_TABLE, Outputs.MESSAGES_TABLE])
def test_expiring_tables_have_ttl(synthesized: Synthesized, output_key: str) -> None:
    props = _table(synthesized, output_key)["Properties"]

    assert props["TimeToLiveSpecification"] == {"AttributeName": Keys.TTL, "Enabled": True}


def test_preferences_never_expire(synthesized: Synthesized) -> None:
    assert "TimeToLiveSpecification" not in _table(synthesized, Outputs.PREFERENCES_TABLE)["Properties"]


def test_message_log_is_indexed_by_ses_message_id(template: Template) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "GlobalSecondaryIndexes": Match.array_with(
                [
                    {
                        "IndexName": SES_MESSAGE_ID_INDEX,
                        "KeySchema": [{"AttributeName": Keys.SES_MESSAGE_ID, "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    }
                ]
            ),
            "AttributeDefinitions": Match.array_with([{"AttributeName": Keys.SES_MESSAGE_ID, "AttributeType": "S"}]),
        },
    )


def test_templates_bucket_is_private_versioned_and_encrypted(synthesized: Synthesized) -> None:
    bucket_id = synthesized.output_ref(Outputs.TEMPLATES_BUCKET)
    props = synthesized.resources("AWS::S3::Bucket")[bucket_id]["Properties"]

    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    synthesized.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_templates_are_staged_then_published_by_the_deploy_function(synthesized: Synthesized) -> None:
    bucket = {"Ref": synthesized.output_ref(Outputs.TEMPLATES_BUCKET)}
    # CDK's deployment prunes only the staging prefix, never the live bundles
    synthesized.template.has_resource_properties(
        "Custom::CDKBucketDeployment",
        {"DestinationBucketName": bucket, "DestinationBucketKeyPrefix": TEMPLATES_STAGING_PREFIX, "Prune": True},
    )
    (publish_id, publish) = next(iter(synthesized.resources("Custom::MailwrightTemplates").items()))
    properties = publish["Properties"]
    assert properties["Bucket"] == bucket
    assert properties["Acknowledged"] == acknowledged_versions()
    assert properties["SourceDigest"] == source_digest()
    # It runs after the staging, by the templates deploy function
    (deployment_id,) = synthesized.resources("Custom::CDKBucketDeployment")
    assert deployment_id in publish["DependsOn"]
    function_id = properties["ServiceToken"]["Fn::GetAtt"][0]
    function = synthesized.resources("AWS::Lambda::Function")[function_id]["Properties"]
    assert function["Handler"] == TEMPLATES_DEPLOY_HANDLER and publish_id


def test_the_source_digest_follows_the_templates(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.txt").write_text("one", encoding="utf-8")
    before = source_digest(tmp_path, ())
    (tmp_path / "t" / "a.txt").write_text("two", encoding="utf-8")

    assert source_digest(tmp_path, ()) != before


def test_unsubscribe_secret_is_generated(template: Template) -> None:
    template.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {"GenerateSecretString": Match.object_like({"PasswordLength": 64, "ExcludePunctuation": True})},
    )
