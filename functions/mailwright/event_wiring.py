"""The composition root of the functions that tell producers what happened: publisher, dead letters, webhooks."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import boto3

from mailwright.adapters.aws import client_config
from mailwright.adapters.dead_letters import DynamoFailureLog, SqsParkingLot
from mailwright.adapters.eventbridge import EventBridgeBus
from mailwright.adapters.sqs import SqsRetryScheduler
from mailwright.adapters.webhooks import DynamoEndpointStates, S3DeliveryArchive, SecretSigningKeys
from mailwright.dead_letters import DeadLetterService
from mailwright.event_settings import DeadLetterSettings, PublisherSettings, WebhookSettings
from mailwright.ports import RetryScheduler
from mailwright.publishing import EventPublisher
from mailwright.webhooks.service import WebhookService
from mailwright.webhooks.transport import HttpTransport

# Deliveries of one batch attempted at once (a batch holds at most ten).
WEBHOOK_CONCURRENCY = 10


def build_event_publisher(
    settings: PublisherSettings, *, session: boto3.session.Session | None = None
) -> EventPublisher:
    """The events publisher, putting on the settings' bus; clients honour AWS_ENDPOINT_URL (the local stack)."""
    session = session or boto3.session.Session()
    events = session.client("events", config=client_config(max_attempts=3, pool=4))
    return EventPublisher(EventBridgeBus(events, settings.event_bus_name), detail_types=settings.detail_types)


def build_dead_letter_service(
    settings: DeadLetterSettings, *, session: boto3.session.Session | None = None
) -> DeadLetterService:
    """The dead-letter service: the message log and the parked queues."""
    session = session or boto3.session.Session()
    dynamodb = session.client("dynamodb", config=client_config(max_attempts=5, pool=4))
    sqs = session.client("sqs", config=client_config(max_attempts=5, pool=4))
    return DeadLetterService(
        queues=settings.queues,
        parked_by_lane=settings.parked_by_lane,
        log=DynamoFailureLog(dynamodb, settings.messages_table, ttl_days=settings.message_log_ttl_days),
        parking=SqsParkingLot(sqs),
        clock=time.time,
    )


def build_webhook_service(settings: WebhookSettings, *, session: boto3.session.Session | None = None) -> WebhookService:
    """The webhook sender: endpoint state, archive, signing keys, and the guarded HTTP transport."""
    session = session or boto3.session.Session()
    pool = WEBHOOK_CONCURRENCY + 2
    dynamodb = session.client("dynamodb", config=client_config(max_attempts=5, pool=pool))
    sqs = session.client("sqs", config=client_config(max_attempts=3, pool=4))

    @cache
    def retries(queue_url: str) -> RetryScheduler:
        return SqsRetryScheduler(sqs, queue_url)

    return WebhookService(
        endpoints=settings.endpoints,
        states=DynamoEndpointStates(dynamodb, settings.state_table),
        archive=S3DeliveryArchive(
            session.client("s3", config=client_config(max_attempts=5, pool=pool)), settings.archive_bucket
        ),
        keys=SecretSigningKeys(session.client("secretsmanager", config=client_config(max_attempts=3, pool=4))),
        transport=HttpTransport(allow_loopback=settings.allow_loopback),
        retries=retries,
        policy=settings.retry,
        executor=ThreadPoolExecutor(max_workers=WEBHOOK_CONCURRENCY, thread_name_prefix="webhook"),
    )
