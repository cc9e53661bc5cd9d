"""Webhooks: per endpoint an EventBridge rule -> an SQS queue (+ DLQ) -> the sender function; state, archive, secrets.

Per endpoint in `webhooks`:

* a rule on the stack's bus matching its detail-types and metadata filter,
  targeting the endpoint's queue with the whole event (EventBridge retries a
  failed SendMessage for a day, then parks the event in the endpoint's DLQ);
* its queue (14 days' retention) and DLQ (for invocations that kept crashing
  on a delivery: its own retries never exhaust `maxReceiveCount`);
* its signing secret (`{"key": <32 letters and digits>}`, the `whsec_` key),
  readable by the sender only;
* an event source mapping with its own maximum concurrency, so a slow
  endpoint holds at most that many invocations and no other endpoint waits.

Shared: the sender function, the state table (suspended or failing endpoints,
last test) and the archive bucket (deliveries that will not be attempted
again: private, encrypted, SSL only, expired after `webhook_archive_days`).
API destinations cannot compute a Standard Webhooks signature, hence the function.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import MailwrightConfig
from infra.events_config import (
    WEBHOOK_BATCH_SIZE,
    WEBHOOK_MAX_RECEIVE_COUNT,
    WEBHOOK_MEMORY_MB,
    WEBHOOK_QUEUE_RETENTION_DAYS,
    WEBHOOK_TIMEOUT_SECONDS,
    WEBHOOK_VISIBILITY_TIMEOUT_SECONDS,
    WebhookConfig,
    WebhookTarget,
    webhook_environment,
)
from infra.functions import python_function
from infra.nag import acknowledge
from mailwright.constants import WEBHOOK_SENDER_HANDLER

# 32 letters and digits: valid base64 of a 24-byte key, so `whsec_<it>` is the Standard Webhooks secret.
SECRET_LENGTH = 32
STATE_PK = "endpoint"


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


class WebhookEndpointResources(Construct):
    """One endpoint's `queue`, `dead_letter_queue`, `secret` and `rule`."""

    def __init__(
        self, scope: Construct, construct_id: str, *, endpoint: WebhookConfig, bus: events.IEventBus, stack_name: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.endpoint = endpoint
        self.dead_letter_queue = sqs.Queue(
            self,
            "Dlq",
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself a dead-letter queue: of the endpoint's queue (redrive policy) and of its rule's "
            "SQS target. Alarmed on; `mailwright webhooks replay` sends its messages back.",
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            visibility_timeout=Duration.seconds(WEBHOOK_VISIBILITY_TIMEOUT_SECONDS),
            retention_period=Duration.days(WEBHOOK_QUEUE_RETENTION_DAYS),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=WEBHOOK_MAX_RECEIVE_COUNT
            ),
        )
        self.secret = secretsmanager.Secret(
            self,
            "SigningSecret",
            description=f"mailwright webhook signing secret of endpoint {endpoint.name} (whsec_ + key)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({}),
                generate_string_key="key",
                password_length=SECRET_LENGTH,
                exclude_punctuation=True,
                include_space=False,
            ),
            # The receiver holds this secret: deleting the stack must not silently change it.
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.secret,
            "AwsSolutions-SMG4",
            "A webhook secret is shared with the receiver, so rotation is an operator step with an overlap: "
            "`mailwright webhooks rotate` signs with old and new keys until `--finish` (see README), not a Lambda.",
        )
        pattern = endpoint.event_pattern()
        self.rule = events.Rule(
            self,
            "Rule",
            event_bus=bus,
            description=f"mailwright webhook {endpoint.name}: {', '.join(endpoint.detail_types)}",
            rule_name=f"{stack_name}-webhook-{endpoint.name}",
            event_pattern=events.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern.get("detail")
            ),
            targets=[
                targets.SqsQueue(
                    self.queue,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=185,
                    max_event_age=Duration.hours(24),
                )
            ],
        )


class Webhooks(Construct):
    """`state_table`, `archive_bucket`, per endpoint its resources (`endpoints`) and, if any, the `function`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: MailwrightConfig,
        code: lambda_.Code,
        bus: events.IEventBus,
    ) -> None:
        super().__init__(scope, construct_id)
        self.state_table = dynamodb.Table(
            self,
            "State",
            partition_key=dynamodb.Attribute(name=STATE_PK, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.state_table,
            "AwsSolutions-DDB3",
            "One item per webhook endpoint (suspended or failing, last test): rebuilt by the traffic and by "
            "`mailwright webhooks resume`; restoring it to an earlier second has no use.",
        )
        self.archive_bucket = s3.Bucket(
            self,
            "Archive",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(config.events.webhook_archive_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        acknowledge(
            self.archive_bucket,
            "AwsSolutions-S1",
            "Only the webhook sender writes here (deliveries it will not attempt again) and only operators read "
            "them back with `mailwright webhooks replay`; objects expire with webhook_archive_days. Server access "
            "logs would need a second bucket per stack for little more.",
        )
        self.endpoints: dict[str, WebhookEndpointResources] = {
            endpoint.name: WebhookEndpointResources(
                self, _pascal(endpoint.name), endpoint=endpoint, bus=bus, stack_name=config.stack_name
            )
            for endpoint in config.events.webhooks
        }
        self.function: lambda_.Function | None = None
        if self.endpoints:
            self.function = self._add_sender(config, code)

    def _add_sender(self, config: MailwrightConfig, code: lambda_.Code) -> lambda_.Function:
        function = python_function(
            self,
            "Sender",
            log_group_id="SenderLogs",
            description="mailwright webhook sender: outcome events POSTed to endpoints, signed (Standard Webhooks)",
            code=code,
            handler=WEBHOOK_SENDER_HANDLER,
            timeout=Duration.seconds(WEBHOOK_TIMEOUT_SECONDS),
            memory_mb=WEBHOOK_MEMORY_MB,
            environment=webhook_environment(
                targets=[
                    WebhookTarget(
                        name=name,
                        url=resources.endpoint.url,
                        queue_arn=resources.queue.queue_arn,
                        queue_url=resources.queue.queue_url,
                        secret_arn=resources.secret.secret_arn,
                    )
                    for name, resources in self.endpoints.items()
                ],
                state_table=self.state_table.table_name,
                archive_bucket=self.archive_bucket.bucket_name,
            ),
        )
        for resources in self.endpoints.values():
            # Consuming the queue brings ChangeMessageVisibility: retries are scheduled with it.
            function.add_event_source(
                event_sources.SqsEventSource(
                    resources.queue,
                    batch_size=WEBHOOK_BATCH_SIZE,
                    report_batch_item_failures=True,
                    max_concurrency=resources.endpoint.max_concurrency,
                )
            )
            resources.secret.grant_read(function)
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"], resources=[self.state_table.table_arn]
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[self.archive_bucket.arn_for_objects("deliveries/*")]
            )
        )
        acknowledge(
            function.role or function,
            f"AwsSolutions-IAM5[Resource::<{_logical_id(self.archive_bucket)}.Arn>/deliveries/*]",
            "The sender writes archived deliveries under deliveries/<endpoint>/<webhook-id>.json of this stack's "
            "archive bucket: the object names are the event ids, unknown in advance. PutObject only.",
        )
        return function


def _logical_id(bucket: s3.Bucket) -> str:
    child = bucket.node.default_child
    assert isinstance(child, s3.CfnBucket)
    return Stack.of(bucket).get_logical_id(child)
