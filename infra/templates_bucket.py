"""The templates bucket, filled at deploy time with one JSON bundle per template."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra.functions import LOG_RETENTION, log_writer_role
from infra.nag import acknowledge
from mailwright.constants import TEMPLATES_PREFIX

# CDK's BucketDeployment function (one per stack, shared by every deployment of this memory size).
_DEPLOYMENT_HANDLER_PREFIX = "Custom::CDKBucketDeployment"
_CDK_DEPLOYMENT = "CDK's BucketDeployment custom resource"


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
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "Only CloudFormation deployments write here and only the workers read; every change is an object "
            "version (kept 90 days) and a stack update in CloudTrail. Server access logs would need a second "
            "bucket per stack for little more.",
        )
        self.key_prefix = TEMPLATES_PREFIX
        # CDK's deployment function gets its own log group (with retention) and a role without the
        # AWSLambdaBasicExecutionRole managed policy.
        log_group = logs.LogGroup(self, "DeploymentLogs", retention=LOG_RETENTION)
        role = log_writer_role(
            self, "DeploymentRole", log_group=log_group, description="mailwright: copies template bundles to S3"
        )
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
            role=role,
            log_group=log_group,
        )
        self._acknowledge_deployment(role)

    def grant_read_templates(self, grantee: iam.IGrantable) -> None:
        """Let `grantee` read template bundles (any version) under the prefix, and nothing else in the bucket."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                # ListBucket lets a missing template answer 404 (unknown_template, final) instead of
                # 403 (retried until the DLQ).
                actions=["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"],
                resources=[self.bucket.bucket_arn, self.bucket.arn_for_objects(f"{self.key_prefix}*")],
            )
        )
        role = getattr(grantee, "role", None)
        acknowledge(
            role if isinstance(role, Construct) else self,
            f"AwsSolutions-IAM5[Resource::<{self._bucket_logical_id()}.Arn>/{self.key_prefix}*]",
            f"Template bundles are objects under {self.key_prefix} named by template id, which is data: "
            "the grant is limited to that prefix of this stack's bucket, read-only.",
        )

    def _bucket_logical_id(self) -> str:
        resource = self.bucket.node.default_child
        assert isinstance(resource, s3.CfnBucket)
        return Stack.of(self).get_logical_id(resource)

    def _acknowledge_deployment(self, role: iam.Role) -> None:
        why = f"{_CDK_DEPLOYMENT} grants itself these to copy and prune objects; CDK offers no narrower grant."
        for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*"):
            acknowledge(role, f"AwsSolutions-IAM5[Action::{action}]", why)
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{self._bucket_logical_id()}.Arn>/*]",
            f"{_CDK_DEPLOYMENT} writes the bundles into this stack's templates bucket (it prunes under the prefix).",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]",
            f"{_CDK_DEPLOYMENT} reads the uploaded asset zip from the CDK bootstrap bucket; the object key "
            "is an asset hash known only at deploy time.",
        )
        stack = Stack.of(self)
        for child in stack.node.children:
            if child.node.id.startswith(_DEPLOYMENT_HANDLER_PREFIX):
                acknowledge(
                    child,
                    "AwsSolutions-L1",
                    f"{_CDK_DEPLOYMENT}'s function: aws-cdk-lib chooses and upgrades its runtime, not this app.",
                )
