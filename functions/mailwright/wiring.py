"""The composition root: builds the send service from settings and boto3 clients, once per container."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from mailwright.adapters.aws import client_config
from mailwright.adapters.dynamodb import (
    DynamoClaimStore,
    DynamoMessageLog,
    DynamoPreferenceStore,
    DynamoRateLimiter,
    DynamoSuppressionStore,
)
from mailwright.adapters.s3 import S3TemplateSource
from mailwright.adapters.ses import SesEmailSender
from mailwright.adapters.sqs import SqsRetryScheduler
from mailwright.pacing import Pacer
from mailwright.ports import EmailSender
from mailwright.sending import SendPolicy, SendService
from mailwright.settings import WorkerSettings
from mailwright.tokens import TokenSigner


class SecretLinkMaker:
    """Signs unsubscribe links with the key in Secrets Manager, read on first use and kept."""

    def __init__(self, client: Any, secret_arn: str, base_url: str) -> None:
        self._client = client
        self._secret_arn = secret_arn
        self._base_url = base_url
        self._signer: TokenSigner | None = None
        self._lock = threading.Lock()

    def __call__(self, user_id: str, category: str) -> dict[str, str]:
        """`unsubscribe_url` and `preferences_url` for a user and category."""
        if self._signer is None:
            with self._lock:
                if self._signer is None:
                    secret = self._client.get_secret_value(SecretId=self._secret_arn)["SecretString"]
                    self._signer = TokenSigner(secret.encode("utf-8"))
        return self._signer.links(self._base_url, user_id, category)


def build_send_service(
    settings: WorkerSettings,
    *,
    session: boto3.session.Session | None = None,
    wrap_sender: Callable[[EmailSender], EmailSender] | None = None,
) -> SendService:
    """A SendService wired to AWS; clients honour AWS_ENDPOINT_URL, so the local stack works unchanged.

    `wrap_sender` lets the local stack decorate the SES sender (outbox, mailbox simulator).
    """
    session = session or boto3.session.Session()
    pool = max(settings.send_concurrency, 10) + 4
    # SES throttling is answered by backing the record off, not by retrying in the call.
    ses = session.client("sesv2", config=client_config(max_attempts=2, pool=pool))
    dynamodb = session.client("dynamodb", config=client_config(max_attempts=5, pool=pool))
    s3 = session.client("s3", config=client_config(max_attempts=3))
    sqs = session.client("sqs", config=client_config(max_attempts=3))
    secrets = session.client("secretsmanager", config=client_config(max_attempts=3))
    policy = SendPolicy(
        lane=settings.lane,
        from_address=settings.from_address,
        configuration_set=settings.configuration_set,
        unsubscribe_base_url=settings.unsubscribe_base_url,
        postal_address=settings.postal_address,
        idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
        rate_limits=settings.rate_limits,
        max_backoff_seconds=settings.max_backoff_seconds,
    )
    return SendService(
        policy=policy,
        templates=S3TemplateSource(s3, settings.templates_bucket, cache_seconds=settings.template_cache_seconds),
        suppressions=DynamoSuppressionStore(dynamodb, settings.suppression_table),
        preferences=DynamoPreferenceStore(dynamodb, settings.preferences_table),
        claims=DynamoClaimStore(dynamodb, settings.idempotency_table),
        rate_limiter=DynamoRateLimiter(dynamodb, settings.idempotency_table),
        message_log=DynamoMessageLog(dynamodb, settings.messages_table, ttl_days=settings.message_log_ttl_days),
        sender=wrap_sender(SesEmailSender(ses)) if wrap_sender else SesEmailSender(ses),
        retries=SqsRetryScheduler(sqs, settings.queue_url),
        links=SecretLinkMaker(secrets, settings.unsubscribe_secret_arn, settings.unsubscribe_base_url),
        pacer=Pacer(settings.send_rate_per_worker),
        executor=ThreadPoolExecutor(max_workers=settings.send_concurrency, thread_name_prefix="send"),
    )
