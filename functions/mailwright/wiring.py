"""The composition root: builds the services from settings and botocore clients, once per container."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

from mailwright.adapters.address_keys import DynamoAddressKeyMarker, SecretAddressKeys
from mailwright.adapters.aws import AwsSession, BotocoreSession, LazyClient, client_config
from mailwright.adapters.dynamodb import (
    DynamoClaimStore,
    DynamoMessageLog,
    DynamoPreferenceStore,
    DynamoRateLimiter,
    DynamoSuppressionStore,
)
from mailwright.adapters.dynamodb_digests import DynamoDigestStore
from mailwright.adapters.dynamodb_pacing import DynamoRateRegistry
from mailwright.adapters.dynamodb_schedules import DynamoScheduleStore
from mailwright.adapters.s3 import S3TemplateSource
from mailwright.adapters.scheduler import EventBridgeScheduler, ScheduleTarget
from mailwright.adapters.ses import SesAccountReader, SesEmailSender
from mailwright.adapters.sqs import SqsDeferrals, SqsRetryScheduler
from mailwright.adapters.variants import DynamoVariantLedger
from mailwright.constants import PROVIDER_KIND_MAILGUN, PROVIDER_KIND_SENDGRID
from mailwright.errors import ConfigurationError
from mailwright.pacing import AccountPacer
from mailwright.ports import AccountReader, EmailSender, Scheduler
from mailwright.scheduling import ScheduleDesk, Scheduling
from mailwright.sending import SendPolicy, SendService
from mailwright.settings import (
    ApiSettings,
    BreakerSettings,
    BridgeSettings,
    FailoverSettings,
    FeedbackSettings,
    ProviderSettings,
    ProviderWebhookSettings,
    SendGridSettings,
    SesRegionSettings,
    SmtpSettings,
    SubmissionSettings,
    UnsubscribeSettings,
    WorkerSettings,
)
from mailwright.tokens import TokenSigner, UnsubscribeClaim
from mailwright.variants import VariantService

# The other functions' services are imported where they are built: a send worker's cold start loads
# only what sending needs.
if TYPE_CHECKING:
    from mailwright.api_services import ApiServices
    from mailwright.breaker import CircuitBreaker
    from mailwright.failover import FailoverSender, ProviderEvents
    from mailwright.feedback import FeedbackService
    from mailwright.ingest_bridge import BridgeService
    from mailwright.ports import ProviderBreakerStore
    from mailwright.preference_changes import PreferenceAdmin
    from mailwright.preferences import UnsubscribeService
    from mailwright.provider_feedback import ProviderFeedbackService
    from mailwright.status import StatusService
    from mailwright.suppression import SoftBouncePolicy, SuppressionService


class SecretSigner:
    """The unsubscribe TokenSigner keyed by the secret in Secrets Manager, read on first use and kept.

    Shared by the send worker (signs links) and the unsubscribe endpoint (verifies them).
    """

    def __init__(self, client: Any, secret_arn: str) -> None:
        self._client = client
        self._secret_arn = secret_arn
        self._signer: TokenSigner | None = None
        self._lock = threading.Lock()

    def get(self) -> TokenSigner:
        """The signer; the first call reads the secret (a failure is raised and retried on the next call)."""
        if self._signer is None:
            with self._lock:
                if self._signer is None:
                    secret = self._client.get_secret_value(SecretId=self._secret_arn)["SecretString"]
                    self._signer = TokenSigner(secret.encode("utf-8"))
        return self._signer

    def verify(self, token: str) -> UnsubscribeClaim:
        """The claim of a token; raise InvalidTokenError when it is forged, garbled or expired."""
        return self.get().verify(token)


class SecretLinkMaker:
    """Signs unsubscribe links with the key in Secrets Manager, read on first use and kept."""

    def __init__(self, client: Any, secret_arn: str, base_url: str) -> None:
        self._signer = SecretSigner(client, secret_arn)
        self._base_url = base_url

    def __call__(self, user_id: str, category: str) -> dict[str, str]:
        """`unsubscribe_url` and `preferences_url` for a user and category."""
        return self._signer.get().links(self._base_url, user_id, category)


def build_send_service(
    settings: WorkerSettings,
    *,
    session: AwsSession | None = None,
    wrap_sender: Callable[[EmailSender], EmailSender] | None = None,
    account_reader: AccountReader | None = None,
    provider_events: ProviderEvents | None = None,
    scheduler: Scheduler | None = None,
) -> SendService:
    """A SendService wired to AWS; clients honour AWS_ENDPOINT_URL, so the local stack works unchanged.

    `wrap_sender` lets the local stack decorate the SES sender (outbox, mailbox simulator);
    `account_reader` replaces SES GetAccount (which the local stack's moto does not have), and
    `provider_events` take the failover metrics elsewhere than stdout.
    """
    session = session or BotocoreSession()
    pool = max(settings.send_concurrency, 10) + 4
    # SES throttling is answered by backing the record off, not by retrying in the call.
    ses = session.client("sesv2", config=client_config(max_attempts=2, pool=pool))
    dynamodb = session.client("dynamodb", config=client_config(max_attempts=5, pool=pool))
    s3 = session.client("s3", config=client_config(max_attempts=3))
    # Only retries and deferrals use the queue: most containers' first batch needs neither.
    sqs = LazyClient(partial(session.client, "sqs", config=client_config(max_attempts=3)))
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
        quiet_hours_categories=settings.quiet_hours_categories,
        digest_window_seconds=settings.digest_window_seconds,
    )
    return SendService(
        policy=policy,
        templates=S3TemplateSource(s3, settings.templates_bucket, cache_seconds=settings.template_cache_seconds),
        suppressions=DynamoSuppressionStore(dynamodb, settings.suppression_table),
        preferences=DynamoPreferenceStore(dynamodb, settings.preferences_table),
        claims=DynamoClaimStore(dynamodb, settings.idempotency_table),
        address_keys=address_keys(secrets, settings.address_key_secret_arn, dynamodb, settings.suppression_table),
        rate_limiter=DynamoRateLimiter(dynamodb, settings.idempotency_table),
        message_log=DynamoMessageLog(dynamodb, settings.messages_table, ttl_days=settings.message_log_ttl_days),
        sender=_sender(settings, session, ses, dynamodb, secrets, wrap_sender, provider_events),
        retries=SqsRetryScheduler(sqs, settings.queue_url),
        deferrals=SqsDeferrals(sqs, settings.queue_url),
        links=SecretLinkMaker(secrets, settings.unsubscribe_secret_arn, settings.unsubscribe_base_url),
        pacer=account_pacer(settings, dynamodb, account_reader or SesAccountReader(ses)),
        executor=ThreadPoolExecutor(max_workers=settings.send_concurrency, thread_name_prefix="send"),
        variants=VariantService(DynamoVariantLedger(dynamodb, settings.idempotency_table), settings.variants),
        scheduling=Scheduling(
            store=DynamoScheduleStore(
                dynamodb, messages_table=settings.messages_table, idempotency_table=settings.idempotency_table
            ),
            scheduler=scheduler or lane_scheduler(settings, session),
            lane=settings.lane,
            log_ttl_seconds=settings.message_log_ttl_days * 86400,
        ),
        digests=DynamoDigestStore(dynamodb, settings.idempotency_table),
    )


def lane_scheduler(settings: WorkerSettings, session: AwsSession) -> Scheduler | None:
    """The lane's EventBridge Scheduler adapter (its client made on first use), or None when none is configured."""
    schedules = settings.schedules
    if schedules is None:
        return None
    target = ScheduleTarget(
        group=schedules.group,
        role_arn=schedules.role_arn,
        queue_arn=schedules.queue_arn,
        dead_letter_arn=schedules.dead_letter_arn,
        kms_key_arn=schedules.kms_key_arn,
    )
    return EventBridgeScheduler(
        lambda: session.client("scheduler", config=client_config(max_attempts=3, pool=4)),
        group=schedules.group,
        target=target,
    )


def build_schedule_desk(
    *,
    messages_table: str,
    idempotency_table: str,
    schedule_group: str | None,
    session: AwsSession | None = None,
    log_ttl_days: int = 90,
) -> ScheduleDesk:
    """Cancel, reschedule and list scheduled requests (the CLI, the SDK, the API); no group: no long schedules."""
    session = session or BotocoreSession()
    dynamodb = session.client("dynamodb", config=client_config(max_attempts=5, pool=4))
    scheduler = (
        EventBridgeScheduler(
            lambda: session.client("scheduler", config=client_config(max_attempts=3, pool=4)), group=schedule_group
        )
        if schedule_group
        else None
    )
    store = DynamoScheduleStore(dynamodb, messages_table=messages_table, idempotency_table=idempotency_table)
    return ScheduleDesk(store=store, scheduler=scheduler, log_ttl_seconds=log_ttl_days * 86400)


def account_pacer(settings: WorkerSettings, dynamodb: Any, account: AccountReader) -> AccountPacer:
    """The lane's view of the account's shared token bucket (in the idempotency table) and SES's quota."""
    return AccountPacer(
        lane=settings.lane,
        registry=DynamoRateRegistry(dynamodb, settings.idempotency_table, shards=settings.pacing_shards),
        account=account,
        ceiling=settings.ses_max_send_rate,
        # Until SES has answered: the ceiling, or SES's own rate for a new account (sandbox: 1/s).
        fallback_rate=settings.ses_max_send_rate or 1.0,
        fallback_share=settings.send_rate_per_worker,
        max_wait=settings.pacing_max_wait_seconds,
        quota_holds=settings.quota_holds,
        refresh_seconds=settings.quota_refresh_seconds,
    )


def address_keys(secrets: Any, secret_arn: str, dynamodb: Any, suppression_table: str) -> SecretAddressKeys:
    """The address keyring from its secret, with the suppression table's marker of the key versions still stored."""
    return SecretAddressKeys(secrets, secret_arn, DynamoAddressKeyMarker(dynamodb, suppression_table))


def _sender(
    settings: WorkerSettings,
    session: AwsSession,
    ses: Any,
    dynamodb: Any,
    secrets: Any,
    wrap_sender: Callable[[EmailSender], EmailSender] | None,
    events: ProviderEvents | None = None,
) -> EmailSender:
    """SES (decorated by `wrap_sender`), behind the failover sender when the lane has a secondary provider."""
    primary: EmailSender = SesEmailSender(ses)
    if wrap_sender is not None:
        primary = wrap_sender(primary)
    if settings.failover is None:
        return primary
    # Only a lane with a secondary provider loads the failover modules (cold start).
    from mailwright.adapters.provider_breaker import DynamoProviderBreakerStore

    return build_failover_sender(
        settings.lane,
        settings.failover,
        settings.providers,
        primary=primary,
        store=DynamoProviderBreakerStore(dynamodb, settings.idempotency_table),
        session=session,
        secrets=secrets,
        events=events,
    )


class SecretJson:
    """A provider's secret, a JSON object in Secrets Manager, read on first use and kept for the container."""

    def __init__(self, client: Any, secret_arn: str) -> None:
        self._client = client
        self._secret_arn = secret_arn
        self._values: dict[str, str] | None = None
        self._lock = threading.Lock()

    def get(self) -> dict[str, str]:
        """The secret's fields; the first call reads it (a failure is raised, and the next call tries again)."""
        if self._values is None:
            with self._lock:
                if self._values is None:
                    raw = self._client.get_secret_value(SecretId=self._secret_arn)["SecretString"]
                    values = json.loads(raw)
                    if not isinstance(values, dict):
                        raise ConfigurationError("a provider secret must be a JSON object")
                    self._values = {str(k): str(v) for k, v in values.items()}
        return self._values

    def field(self, name: str) -> str:
        """One field of the secret; ConfigurationError if it is missing (its value never appears in errors)."""
        value = self.get().get(name)
        if not value:
            raise ConfigurationError(f"the provider secret has no {name!r}")
        return value


# The field of each webhook provider's secret that verifies its webhook.
WEBHOOK_KEYS = {PROVIDER_KIND_SENDGRID: "webhook_public_key", PROVIDER_KIND_MAILGUN: "webhook_signing_key"}


def build_provider_sender(provider: ProviderSettings, *, session: AwsSession, secrets: Any) -> EmailSender:
    """The EmailSender of a secondary provider, its credentials read from its secret on first use."""
    from mailwright.adapters.mailgun import MailgunEmailSender
    from mailwright.adapters.sendgrid import SendGridEmailSender
    from mailwright.adapters.smtp import SmtpCredentials, SmtpEmailSender

    options = provider.options
    if isinstance(options, SesRegionSettings):
        client = session.client("sesv2", region_name=options.region, config=client_config(max_attempts=2))
        return SesEmailSender(client, configuration_set=options.configuration_set, label=provider.name)
    secret = SecretJson(secrets, provider.secret_arn)
    if isinstance(options, SmtpSettings):

        def credentials() -> SmtpCredentials | None:
            values = secret.get()
            if not values.get("username"):
                return None  # a relay that trusts the sender's address (e.g. by IP) needs no AUTH
            return SmtpCredentials(values["username"], secret.field("password"))

        return SmtpEmailSender(options, credentials, name=provider.name)
    if isinstance(options, SendGridSettings):
        return SendGridEmailSender(options, lambda: secret.field("api_key"), name=provider.name)
    return MailgunEmailSender(options, lambda: secret.field("api_key"), name=provider.name)


def build_failover_sender(
    lane: str,
    failover: FailoverSettings,
    providers: tuple[ProviderSettings, ...],
    *,
    primary: EmailSender,
    store: ProviderBreakerStore,
    session: AwsSession,
    secrets: Any,
    events: ProviderEvents | None = None,
) -> FailoverSender:
    """SES behind its lane breaker, with the lane's secondary provider (paced at its own rate) behind its own."""
    from mailwright.constants import PROVIDER_SES
    from mailwright.failover import BreakerPolicy, FailoverSender, ProviderBreaker
    from mailwright.observability import ProviderMetrics
    from mailwright.pacing import Pacer

    events = events or ProviderMetrics()
    policy = BreakerPolicy.from_settings(failover)
    secondary = next(provider for provider in providers if provider.name == failover.provider)
    return FailoverSender(
        lane=lane,
        primary=primary,
        breaker=ProviderBreaker(store, lane=lane, provider=PROVIDER_SES, policy=policy, events=events),
        store=store,
        events=events,
        enabled=failover.enabled,
        secondary=build_provider_sender(secondary, session=session, secrets=secrets),
        secondary_name=secondary.name,
        secondary_breaker=ProviderBreaker(store, lane=lane, provider=secondary.name, policy=policy, events=events),
        secondary_pacer=Pacer(secondary.send_rate),
    )


def build_unsubscribe_service(
    settings: UnsubscribeSettings, *, session: AwsSession | None = None
) -> UnsubscribeService:
    """An UnsubscribeService wired to AWS (the preferences table and the signing secret), once per container."""
    from mailwright.adapters.dynamodb import DynamoPreferenceWriter
    from mailwright.preferences import PreferenceService, UnsubscribeService

    session = session or BotocoreSession()
    # A recipient is waiting for the page: fail fast rather than retry for long.
    dynamodb = session.client("dynamodb", config=client_config(max_attempts=3, pool=10, read_timeout=5.0))
    secrets = session.client("secretsmanager", config=client_config(max_attempts=3, pool=10, read_timeout=5.0))
    preferences = PreferenceService(
        DynamoPreferenceStore(dynamodb, settings.preferences_table),
        DynamoPreferenceWriter(dynamodb, settings.preferences_table),
        address_keys=address_keys(secrets, settings.address_key_secret_arn, dynamodb, settings.suppression_table),
    )
    return UnsubscribeService(preferences, SecretSigner(secrets, settings.unsubscribe_secret_arn).verify)


def build_suppression_service(
    *,
    suppression_table: str,
    address_key_secret: str,
    session: AwsSession | None = None,
    mirror_to_ses: bool = False,
    clock: Callable[[], float] = time.time,
    soft_bounce: SoftBouncePolicy | None = None,
) -> SuppressionService:
    """A SuppressionService on the suppression table; with `mirror_to_ses`, kept in step with SES's own list."""
    session = session or BotocoreSession()
    dynamodb = session.client("dynamodb", config=client_config(max_attempts=5))
    return _suppression_service(
        dynamodb, session, suppression_table, address_key_secret, mirror_to_ses, clock, soft_bounce
    )


def _suppression_service(
    dynamodb: Any,
    session: AwsSession,
    suppression_table: str,
    address_key_secret: str,
    mirror_to_ses: bool,
    clock: Callable[[], float],
    soft_bounce: SoftBouncePolicy | None,
) -> SuppressionService:
    from mailwright.adapters.dynamodb import DynamoSuppressionLedger
    from mailwright.adapters.ses import SesSuppressionMirror
    from mailwright.suppression import SuppressionService

    mirror = None
    if mirror_to_ses:
        mirror = SesSuppressionMirror(session.client("sesv2", config=client_config(max_attempts=3)))
    secrets = session.client("secretsmanager", config=client_config(max_attempts=3))
    return SuppressionService(
        DynamoSuppressionLedger(dynamodb, suppression_table),
        address_keys=address_keys(secrets, address_key_secret, dynamodb, suppression_table),
        mirror=mirror,
        soft_bounce=soft_bounce,
        clock=clock,
    )


def build_feedback_service(
    settings: FeedbackSettings,
    *,
    session: AwsSession | None = None,
    clock: Callable[[], float] = time.time,
) -> FeedbackService:
    """A FeedbackService wired to the suppression and messages tables (and SES, when mirroring)."""
    from mailwright.adapters.dynamodb import DynamoFeedbackLog
    from mailwright.feedback import FeedbackService
    from mailwright.suppression import SoftBouncePolicy

    session = session or BotocoreSession()
    dynamodb = session.client("dynamodb", config=client_config(max_attempts=5))
    soft_bounce = SoftBouncePolicy(
        threshold=settings.soft_bounce_threshold,
        window_seconds=settings.soft_bounce_window_days * 86400,
        suppression_seconds=settings.soft_bounce_suppression_days * 86400,
    )
    suppressions = _suppression_service(
        dynamodb,
        session,
        settings.suppression_table,
        settings.address_key_secret_arn,
        settings.mirror_ses_suppression,
        clock,
        soft_bounce,
    )
    log = DynamoFeedbackLog(dynamodb, settings.messages_table, ttl_days=settings.message_log_ttl_days, clock=clock)
    retries = None
    if settings.queue_url:
        retries = SqsRetryScheduler(session.client("sqs", config=client_config(max_attempts=3)), settings.queue_url)
    variants = None
    if settings.idempotency_table:
        variants = VariantService(DynamoVariantLedger(dynamodb, settings.idempotency_table), settings.variants)
    return FeedbackService(suppressions=suppressions, log=log, retries=retries, variants=variants)


def build_breaker(settings: BreakerSettings, *, session: AwsSession | None = None) -> CircuitBreaker:
    """The reputation circuit breaker, switching the lane's event source mapping through the Lambda API."""
    from mailwright.adapters.awslambda import EventSourceMappingSwitch
    from mailwright.adapters.cloudwatch import CloudWatchAlarmStates
    from mailwright.breaker import CircuitBreaker

    session = session or BotocoreSession()
    config = client_config(max_attempts=5, pool=2)
    return CircuitBreaker(
        switch=EventSourceMappingSwitch(session.client("lambda", config=config), settings.mapping_id),
        alarms=CloudWatchAlarmStates(session.client("cloudwatch", config=config)),
        watched=settings.alarm_names,
        auto_resume=settings.auto_resume,
        lane=settings.lane,
    )


def build_status_service(settings: ApiSettings, *, session: AwsSession | None = None) -> StatusService:
    """A StatusService over the message log, its recipient index and the address keyring (the API and the CLI)."""
    from mailwright.adapters.recipient_index import DynamoRecipientIndex
    from mailwright.status import StatusService

    session = session or BotocoreSession()
    # A caller is waiting: fail fast rather than retry for long.
    dynamodb = session.client("dynamodb", config=client_config(max_attempts=3, pool=10, read_timeout=5.0))
    secrets = session.client("secretsmanager", config=client_config(max_attempts=3, pool=10, read_timeout=5.0))
    return StatusService(
        # Read only: the TTL it would give new items does not matter here.
        DynamoMessageLog(dynamodb, settings.messages_table, ttl_days=1),
        DynamoRecipientIndex(dynamodb, settings.messages_table),
        address_keys(secrets, settings.address_key_secret_arn, dynamodb, settings.suppression_table),
    )


# The HTTPS API's publisher: three sends per refused entry, 50 ms then 100 ms apart.
SUBMIT_ATTEMPTS = 3
SUBMIT_RETRY_PAUSE_SECONDS = 0.05


def build_api_services(
    settings: ApiSettings, submission: SubmissionSettings, *, session: AwsSession | None = None
) -> ApiServices:
    """The HTTPS API's services: status lookups, submissions to the lane queues, and the producers' keys."""
    from mailwright.adapters.producers import DynamoProducerDirectory
    from mailwright.api_services import ApiServices
    from mailwright.sdk import Publisher
    from mailwright.submission import SubmissionService, TemplateLanes

    session = session or BotocoreSession()
    # A caller is waiting: each call fails fast, and the publisher retries refused entries itself.
    fast = client_config(max_attempts=2, pool=10, read_timeout=3.0)
    sqs = session.client("sqs", config=fast)
    templates = S3TemplateSource(
        session.client("s3", config=fast),
        submission.templates_bucket,
        cache_seconds=submission.template_cache_seconds,
    )
    publisher = Publisher(
        queue_urls=submission.lane_queue_urls,
        sqs_client=sqs,
        priority_of=TemplateLanes(templates),
        attempts=SUBMIT_ATTEMPTS,
        retry_pause=SUBMIT_RETRY_PAUSE_SECONDS,
    )
    return ApiServices(
        status=build_status_service(settings, session=session),
        submissions=SubmissionService(publisher),
        producers=DynamoProducerDirectory(session.client("dynamodb", config=fast), submission.producers_table),
        schedules=build_schedule_desk(
            messages_table=settings.messages_table,
            idempotency_table=settings.idempotency_table,
            schedule_group=settings.schedule_group or None,
            session=session,
        )
        if settings.idempotency_table
        else None,
        preferences=_api_preference_admin(settings, session) if settings.preferences_table else None,
    )


def _api_preference_admin(settings: ApiSettings, session: AwsSession) -> PreferenceAdmin:
    """The API's PreferenceAdmin: the preferences table, and the keyring for address-derived user ids."""
    from mailwright.adapters.preferences import DynamoPreferenceLedger
    from mailwright.preference_changes import PreferenceAdmin

    config = client_config(max_attempts=3, pool=10, read_timeout=5.0)
    dynamodb = session.client("dynamodb", config=config)
    keys = address_keys(
        session.client("secretsmanager", config=config),
        settings.address_key_secret_arn,
        dynamodb,
        settings.suppression_table,
    )
    return PreferenceAdmin(DynamoPreferenceLedger(dynamodb, settings.preferences_table), address_keys=keys)


def build_provider_feedback_service(
    settings: ProviderWebhookSettings,
    *,
    session: AwsSession | None = None,
    clock: Callable[[], float] = time.time,
) -> ProviderFeedbackService:
    """The provider webhook's service: the feedback service of SES feedback, plus preferences and a replay guard."""
    from mailwright.adapters.dynamodb import DynamoFeedbackLog, DynamoPreferenceWriter
    from mailwright.adapters.provider_breaker import DynamoReplayGuard
    from mailwright.feedback import FeedbackService
    from mailwright.provider_feedback import ProviderFeedbackService, WebhookProvider
    from mailwright.suppression import SoftBouncePolicy

    session = session or BotocoreSession()
    # A provider is waiting for the answer (and retries): fail fast rather than retry for long.
    config = client_config(max_attempts=3, pool=10, read_timeout=5.0)
    dynamodb = session.client("dynamodb", config=config)
    secrets = session.client("secretsmanager", config=config)
    feedback_settings = settings.feedback
    soft_bounce = SoftBouncePolicy(
        threshold=feedback_settings.soft_bounce_threshold,
        window_seconds=feedback_settings.soft_bounce_window_days * 86400,
        suppression_seconds=feedback_settings.soft_bounce_suppression_days * 86400,
    )
    suppressions = _suppression_service(
        dynamodb,
        session,
        feedback_settings.suppression_table,
        feedback_settings.address_key_secret_arn,
        feedback_settings.mirror_ses_suppression,
        clock,
        soft_bounce,
    )
    ttl_days = feedback_settings.message_log_ttl_days
    feedback = FeedbackService(
        suppressions=suppressions,
        log=DynamoFeedbackLog(dynamodb, feedback_settings.messages_table, ttl_days=ttl_days, clock=clock),
        preferences=DynamoPreferenceWriter(dynamodb, settings.preferences_table),
        requests=DynamoMessageLog(dynamodb, feedback_settings.messages_table, ttl_days=ttl_days).get,
    )
    providers = []
    for provider in settings.providers:
        if provider.kind not in WEBHOOK_KEYS:
            continue
        secret = SecretJson(secrets, provider.secret_arn)
        providers.append(
            WebhookProvider(provider.name, provider.kind, partial(secret.field, WEBHOOK_KEYS[provider.kind]))
        )
    return ProviderFeedbackService(
        feedback=feedback,
        guard=DynamoReplayGuard(dynamodb, settings.idempotency_table, clock),
        providers=providers,
        clock=clock,
    )


def build_bridge(settings: BridgeSettings, *, session: AwsSession | None = None) -> BridgeService:
    """The ingest bridge: SendMessageBatch to the lane queues, the message log, template priorities from S3."""
    from mailwright.adapters.sqs import SqsLanePublisher
    from mailwright.ingest_bridge import BridgeService, TemplatePriorities

    session = session or BotocoreSession()
    sqs = session.client("sqs", config=client_config(max_attempts=3, pool=4))
    dynamodb = session.client("dynamodb", config=client_config(max_attempts=5, pool=4))
    s3 = session.client("s3", config=client_config(max_attempts=3, pool=4))
    templates = S3TemplateSource(s3, settings.templates_bucket, cache_seconds=settings.template_cache_seconds)
    return BridgeService(
        publisher=SqsLanePublisher(sqs, settings.queue_urls),
        message_log=DynamoMessageLog(dynamodb, settings.messages_table, ttl_days=settings.message_log_ttl_days),
        template_priority=TemplatePriorities(templates),
    )
