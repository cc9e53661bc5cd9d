"""The templates bucket, filled at deploy time with one JSON bundle per template.

The deploy never reverts or deletes what the template studio published:
CDK's BucketDeployment stages the repository's bundles under
`templates/_deploy/` (pruned there only), then the templates deploy function
(a custom resource, mailwright.handlers.templates_deploy) writes each to its
live key only where it changed, and never over a studio version the
repository has not pulled (`published.json`). Nothing live is pruned.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra.bundling import FUNCTIONS_DIR, TEMPLATES_DIR
from infra.functions import LOG_RETENTION, log_writer_role, python_function
from infra.nag import acknowledge
from mailwright.constants import PUBLISHED_FILE, TEMPLATES_DEPLOY_HANDLER, TEMPLATES_PREFIX, TEMPLATES_STAGING_PREFIX

# What the bundles are made from: a change to any of these deploys the templates again.
_BUNDLE_INPUTS = (FUNCTIONS_DIR / "mailwright" / "templates", FUNCTIONS_DIR / "mailwright" / "handlebars")


def source_digest(templates_dir: Path = TEMPLATES_DIR, inputs: tuple[Path, ...] = _BUNDLE_INPUTS) -> str:
    """SHA-256 over the templates and the bundler's code (file names and contents)."""
    digest = hashlib.sha256()
    for root in (templates_dir, *inputs):
        for file in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def acknowledged_versions(templates_dir: Path = TEMPLATES_DIR) -> dict[str, str]:
    """The studio versions the repository has pulled: template id -> the version its published.json names."""
    found: dict[str, str] = {}
    for marker in sorted(templates_dir.glob(f"*/{PUBLISHED_FILE}")):
        version = json.loads(marker.read_text(encoding="utf-8")).get("version")
        if isinstance(version, str) and version:
            found[marker.parent.name] = version
    return found


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
            # Staged, not live: the templates deploy function publishes what changed (see the module).
            destination_key_prefix=TEMPLATES_STAGING_PREFIX,
            # Pruning only touches the staging prefix, so a template removed from the repository
            # stops being staged; its live bundle stays.
            prune=True,
            content_type="application/json",
            memory_limit=256,
            role=role,
            log_group=log_group,
        )
        self._acknowledge_deployment(role)

    def publish_with(
        self,
        code: lambda_.Code,
        *,
        templates_dir: Path = TEMPLATES_DIR,
    ) -> CustomResource:
        """The templates deploy function and its custom resource, run after every staging of the bundles."""
        function = python_function(
            Construct(self, "Deploy"),
            "Function",
            log_group_id="Logs",
            description="mailwright: publishes changed template bundles, never over a studio version",
            code=code,
            handler=TEMPLATES_DEPLOY_HANDLER,
            timeout=Duration.minutes(5),
            memory_mb=256,
            environment={},
        )
        staged = self.bucket.arn_for_objects(f"{TEMPLATES_STAGING_PREFIX}*")
        live = self.bucket.arn_for_objects(f"{self.key_prefix}*")
        function.add_to_role_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn]))
        function.add_to_role_policy(
            # Reads the staged bundles and the live ones' metadata (HEAD), writes new live versions.
            iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"], resources=[staged, live])
        )
        acknowledge(
            function.role if isinstance(function.role, Construct) else function,
            f"AwsSolutions-IAM5[Resource::<{self._bucket_logical_id()}.Arn>/{self.key_prefix}*]",
            f"Template bundles are objects under {self.key_prefix} named by template id, which is data: the "
            "deploy function reads and writes only that prefix of this stack's bucket, and never deletes.",
        )
        acknowledge(
            function.role if isinstance(function.role, Construct) else function,
            f"AwsSolutions-IAM5[Resource::<{self._bucket_logical_id()}.Arn>/{TEMPLATES_STAGING_PREFIX}*]",
            "The bundles CDK's deployment staged for the deploy function, named by template id: read only.",
        )
        resource = CustomResource(
            self,
            "Publish",
            service_token=function.function_arn,
            resource_type="Custom::MailwrightTemplates",
            properties={
                "Bucket": self.bucket.bucket_name,
                "Acknowledged": acknowledged_versions(templates_dir),
                "SourceDigest": source_digest(templates_dir),
            },
        )
        resource.node.add_dependency(self.deployment)
        self.deploy_function = function
        return resource

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
