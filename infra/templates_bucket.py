"""The templates bucket, filled at deploy time with one JSON bundle per template."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from mailwright.constants import TEMPLATES_PREFIX


class TemplatesBucket(Construct):
    """A private, versioned bucket (`bucket`) and the deployment of `source` under the templates prefix."""

    def __init__(self, scope: Construct, construct_id: str, *, source: s3deploy.ISource) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            # A bad template deploy is undone by restoring the previous object version.
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                # Keep a few old versions to roll back to, not every edit forever.
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(90),
                    noncurrent_versions_to_retain=10,
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
        )
        self.key_prefix = TEMPLATES_PREFIX
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Deployment",
            destination_bucket=self.bucket,
            sources=[source],
            destination_key_prefix=TEMPLATES_PREFIX,
            # Pruning only touches keys under the prefix; versioning keeps what it removes.
            prune=True,
            content_type="application/json",
            memory_limit=256,
        )
