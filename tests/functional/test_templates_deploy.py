"""The templates deploy function (a custom resource, moto S3): staged bundles go live only where they changed."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from mailwright.adapters.template_store import S3TemplateStore
from mailwright.constants import TEMPLATES_STAGING_PREFIX
from mailwright.handlers import templates_deploy
from mailwright.templates.publishing import SOURCE_DEPLOY, publish
from mailwright_tools.provision import StackResources


def stage(bucket: str, **bundles: bytes) -> None:
    """What CDK's BucketDeployment does: the bundles under the staging prefix, the others pruned."""
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=TEMPLATES_STAGING_PREFIX).get("Contents", [])
    for item in listed:
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    for template_id, body in bundles.items():
        s3.put_object(Bucket=bucket, Key=f"{TEMPLATES_STAGING_PREFIX}{template_id}.json", Body=body)


def event(kind: str, bucket: str, acknowledged: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ResponseURL": "https://cloudformation-custom-resource-response.example/x",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/Mailwright/1",
        "RequestId": "r1",
        "LogicalResourceId": "TemplatesPublish",
        "ResourceProperties": {"Bucket": bucket, "Acknowledged": acknowledged or {}, "SourceDigest": "d"},
    }


def test_a_deploy_never_reverts_a_studio_version_nor_deletes(stack: StackResources) -> None:
    bucket = stack.templates_bucket
    s3 = boto3.client("s3")
    store = S3TemplateStore(s3, bucket)

    # Given the repository's bundles staged and deployed
    stage(bucket, promo=b'{"v": 1}', news=b'{"n": 1}')
    status, _, data = templates_deploy.handle(event("Create", bucket), s3)
    assert status == "SUCCESS" and data["Uploaded"] == "news,promo"
    latest = store.latest("promo")
    assert latest is not None and latest.publication.source == SOURCE_DEPLOY
    assert store.staged() == {"promo": b'{"v": 1}', "news": b'{"n": 1}'}

    # And an editor publishes promo from the studio
    studio = publish(store, "promo", b'{"v": "studio"}', note="new subject", author="Zoë")

    # When the repository changes promo, drops news, and deploys
    stage(bucket, promo=b'{"v": 2}')
    status, reason, data = templates_deploy.handle(event("Update", bucket), s3)

    # Then the studio's version stays live, the reason says so, and news is still there
    assert status == "SUCCESS" and data["Kept"] == "promo" and "mailwright templates pull" in reason
    assert store.read("promo") == b'{"v": "studio"}'
    assert store.read("news") == b'{"n": 1}'

    # When the repository has pulled that version (published.json) and deploys its own change
    status, _, data = templates_deploy.handle(event("Update", bucket, {"promo": studio}), s3)

    # Then the repository's version goes live
    assert data["Uploaded"] == "promo" and store.read("promo") == b'{"v": 2}'

    # And deleting the resource changes nothing
    assert templates_deploy.handle(event("Delete", bucket), s3)[0] == "SUCCESS"
    assert store.read("promo") == b'{"v": 2}'


def test_a_failure_is_answered_not_raised(stack: StackResources) -> None:
    status, reason, _ = templates_deploy.handle(event("Create", "no-such-bucket"), boto3.client("s3"))

    assert status == "FAILED" and "NoSuchBucket" in reason


def test_the_answer_goes_only_to_an_https_url() -> None:
    answer = event("Create", "b") | {"ResponseURL": "http://169.254.169.254/latest"}

    with pytest.raises(ValueError, match="https"):
        templates_deploy.respond(answer, "SUCCESS", "", {})
