"""Encryption at rest on every queue, table, bucket and topic; TLS enforced wherever a resource policy can say so."""

from __future__ import annotations

import pytest

from tests.infra.synth import Synthesized

# Each module shares the session's synthesized stacks (see conftest.py).
pytestmark = pytest.mark.slow

DENY_PLAIN_HTTP = {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("variant", ["default", "domain"])
def test_everything_that_stores_data_is_encrypted(
    synthesized: Synthesized, domain_synthesized: Synthesized, variant: str
) -> None:
    synth = synthesized if variant == "default" else domain_synthesized

    for logical_id, queue in synth.resources("AWS::SQS::Queue").items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, logical_id
    for logical_id, table in synth.resources("AWS::DynamoDB::Table").items():
        assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True, logical_id
    for logical_id, bucket in synth.resources("AWS::S3::Bucket").items():
        assert bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"], logical_id
    topics = synth.resources("AWS::SNS::Topic")
    assert len(topics) == 2  # SES feedback, alarms
    for logical_id, topic in topics.items():
        assert "KmsMasterKeyId" in topic["Properties"], logical_id
    for logical_id, key in synth.resources("AWS::KMS::Key").items():
        assert key["Properties"]["EnableKeyRotation"] is True, logical_id


def test_queues_bucket_and_topics_refuse_plain_http(synthesized: Synthesized) -> None:
    def denied(policy_type: str, target_key: str) -> set[str]:
        found = set()
        for policy in synthesized.resources(policy_type).values():
            statements = policy["Properties"]["PolicyDocument"]["Statement"]
            if any(s["Effect"] == "Deny" and s.get("Condition") == DENY_PLAIN_HTTP for s in statements):
                targets = policy["Properties"][target_key]
                for target in targets if isinstance(targets, list) else [targets]:
                    found.add(target["Ref"])
        return found

    assert denied("AWS::SQS::QueuePolicy", "Queues") == set(synthesized.resources("AWS::SQS::Queue"))
    assert denied("AWS::SNS::TopicPolicy", "Topics") == set(synthesized.resources("AWS::SNS::Topic"))
    assert denied("AWS::S3::BucketPolicy", "Bucket") == set(synthesized.resources("AWS::S3::Bucket"))
