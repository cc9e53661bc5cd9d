"""Outcome events, dead letters and webhooks of the local stack, created with plain boto3 calls (moto).

Mirrors infra/outcome_events.py and infra/webhooks.py from the same settings
and helpers (infra.events_config): the message log's stream feeds the events
publisher, each lane's DLQ (and the ingest DLQ) the dead-letter function and
its parked queue, and each webhook endpoint gets a rule on the bus, a queue
with a DLQ and a `whsec_` secret. moto's EventBridge delivers to SQS targets,
so a rule any boto3 client creates on the local bus receives the events too.

The local webhook sender keeps the deployed retry policy's shape with shorter
delays (`LOCAL_WEBHOOK_RETRY`), and may call loopback addresses over http.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3

from infra.config import MailwrightConfig
from infra.events_config import (
    PARKING_MAX_RECEIVE_COUNT,
    WEBHOOK_MAX_RECEIVE_COUNT,
    WEBHOOK_VISIBILITY_TIMEOUT_SECONDS,
    DeadLetterSource,
    WebhookConfig,
    WebhookTarget,
    dead_letter_environment,
    publisher_environment,
    webhook_environment,
)
from mailwright.constants import LANES
from mailwright.event_settings import RetryPolicy
from mailwright.webhooks.signing import new_secret, secret_document
from mailwright_tools.provision import DLQ_RETENTION_SECONDS, StackResources, queue_arn

# The deployed policy's shape with delays a person waits for: 1 s, 2 s, 4 s... at most 30 s, for 5 minutes;
# an endpoint with no success for 5 minutes is suspended. Timeouts as deployed.
LOCAL_WEBHOOK_RETRY = RetryPolicy(
    base_seconds=1.0,
    cap_seconds=30.0,
    window_seconds=300.0,
    suspend_after_seconds=300.0,
)
STATE_PK = "endpoint"


@dataclass(frozen=True)
class LocalWebhook:
    """One webhook endpoint of the local stack."""

    name: str
    url: str
    detail_types: tuple[str, ...]
    queue_url: str
    dlq_url: str
    secret_arn: str
    # The `whsec_` secret receivers verify with (written to local.json).
    secret: str
    rule: str

    def to_json(self) -> dict[str, Any]:
        """What local.json records of it (the secret is under `webhook_secrets`)."""
        return {
            "url": self.url,
            "detail_types": list(self.detail_types),
            "queue_url": self.queue_url,
            "dlq_url": self.dlq_url,
            "secret_arn": self.secret_arn,
            "rule": self.rule,
        }


@dataclass(frozen=True)
class EventsPath:
    """The local stack's outcome events: publisher, dead letters, webhooks, and their functions' environments."""

    stream_arn: str
    detail_types: tuple[str, ...]
    publisher_environment: dict[str, str]
    parked: dict[str, str]
    # Every DLQ the dead-letter function drains, by name (the lanes', `ingest`).
    dead_letter_queues: dict[str, str]
    dead_letter_environment: dict[str, str]
    state_table: str
    archive_bucket: str
    webhooks: tuple[LocalWebhook, ...] = ()
    webhook_environment: dict[str, str] = field(default_factory=dict)


def provision_events(
    config: MailwrightConfig,
    resources: StackResources,
    *,
    session: boto3.session.Session,
    detail_types: Sequence[str] | None = None,
    webhooks: Sequence[WebhookConfig] = (),
    retry: RetryPolicy = LOCAL_WEBHOOK_RETRY,
    prefix: str = "mailwright",
) -> EventsPath:
    """Parked queues, the webhook state table and archive, and each webhook's rule, queue, DLQ and secret."""
    sqs = session.client("sqs")
    dynamodb = session.client("dynamodb")
    published = tuple(detail_types if detail_types is not None else config.events.outcome_events)
    table = dynamodb.describe_table(TableName=resources.messages_table)["Table"]
    stream_arn = str(table["LatestStreamArn"])

    parked = {
        lane: sqs.create_queue(
            QueueName=f"{prefix}-{lane}-parked",
            Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS), "SqsManagedSseEnabled": "true"},
        )["QueueUrl"]
        for lane in LANES
    }
    for lane, dlq_url in resources.dlqs.items():
        # As deployed: the parked queue is the DLQ's own dead-letter queue (a backstop).
        sqs.set_queue_attributes(
            QueueUrl=dlq_url,
            Attributes={
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": queue_arn(sqs, parked[lane]), "maxReceiveCount": PARKING_MAX_RECEIVE_COUNT}
                )
            },
        )
    drained = {**resources.dlqs}
    sources = [
        DeadLetterSource(arn=queue_arn(sqs, url), lane=lane, parked_url=parked[lane]) for lane, url in drained.items()
    ]
    if resources.ingest_dlq:
        drained["ingest"] = resources.ingest_dlq
        sources.append(
            DeadLetterSource(arn=queue_arn(sqs, resources.ingest_dlq), lane="ingest", parked_url=parked["standard"])
        )

    state_table = f"{prefix}-webhooks"
    dynamodb.create_table(
        TableName=state_table,
        KeySchema=[{"AttributeName": STATE_PK, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": STATE_PK, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    archive_bucket = f"{prefix}-webhook-archive"
    session.client("s3").create_bucket(Bucket=archive_bucket)

    hooks = tuple(_webhook(session, resources, hook, prefix=prefix) for hook in webhooks)
    environment: dict[str, str] = {}
    if hooks:
        environment = webhook_environment(
            targets=[
                WebhookTarget(
                    name=hook.name,
                    url=hook.url,
                    queue_arn=queue_arn(sqs, hook.queue_url),
                    queue_url=hook.queue_url,
                    secret_arn=hook.secret_arn,
                )
                for hook in hooks
            ],
            state_table=state_table,
            archive_bucket=archive_bucket,
            retry_json=retry.to_json(),
            allow_loopback=True,
        )
    return EventsPath(
        stream_arn=stream_arn,
        detail_types=published,
        publisher_environment=publisher_environment(bus_name=resources.event_bus, detail_types=published),
        parked=parked,
        dead_letter_queues=drained,
        dead_letter_environment=dead_letter_environment(
            messages_table=resources.messages_table,
            message_log_ttl_days=config.message_log_ttl_days,
            sources=sources,
        ),
        state_table=state_table,
        archive_bucket=archive_bucket,
        webhooks=hooks,
        webhook_environment=environment,
    )


def _webhook(
    session: boto3.session.Session, resources: StackResources, hook: WebhookConfig, *, prefix: str
) -> LocalWebhook:
    sqs = session.client("sqs")
    events = session.client("events")
    dlq_url = sqs.create_queue(
        QueueName=f"{prefix}-webhook-{hook.name}-dlq",
        Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS), "SqsManagedSseEnabled": "true"},
    )["QueueUrl"]
    dlq_arn = queue_arn(sqs, dlq_url)
    queue_url = sqs.create_queue(
        QueueName=f"{prefix}-webhook-{hook.name}",
        Attributes={
            "VisibilityTimeout": str(WEBHOOK_VISIBILITY_TIMEOUT_SECONDS),
            "MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS),
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": WEBHOOK_MAX_RECEIVE_COUNT}),
        },
    )["QueueUrl"]
    secret = new_secret()
    secret_arn = session.client("secretsmanager").create_secret(
        Name=f"{prefix}/webhook/{hook.name}", SecretString=secret_document(secret)
    )["ARN"]
    rule = f"{prefix}-webhook-{hook.name}"
    events.put_rule(
        Name=rule,
        EventBusName=resources.event_bus,
        Description=f"mailwright webhook {hook.name}",
        EventPattern=json.dumps(hook.event_pattern()),
    )
    events.put_targets(
        Rule=rule,
        EventBusName=resources.event_bus,
        Targets=[
            {
                "Id": f"webhook-{hook.name}",
                "Arn": queue_arn(sqs, queue_url),
                "DeadLetterConfig": {"Arn": dlq_arn},
                "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
            }
        ],
    )
    return LocalWebhook(
        name=hook.name,
        url=hook.url,
        detail_types=hook.detail_types,
        queue_url=queue_url,
        dlq_url=dlq_url,
        secret_arn=secret_arn,
        secret=secret,
        rule=rule,
    )
