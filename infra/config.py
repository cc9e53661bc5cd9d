"""Deployment settings, read from the `mailwright` CDK context value.

Pure Python on purpose: the CDK app and the local stack read the same
settings through this module, so a lane runs locally exactly as deployed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.events_config import KNOWN_KEYS as EVENTS_KEYS
from infra.events_config import EventsConfig, EventsConfigError, parse_events_config
from mailwright.constants import (
    BREAKER_LANE,
    CATEGORIES,
    DEFAULT_LANE,
    DEFAULT_QUIET_HOURS_CATEGORIES,
    ESSENTIAL_CATEGORIES,
    FAILOVER_LANES,
    LANES,
    METRICS_NAMESPACE,
    PRODUCER_PATTERN,
    PROVIDER_KIND_MAILGUN,
    PROVIDER_KIND_SENDGRID,
    PROVIDER_KIND_SES,
    PROVIDER_KIND_SMTP,
    PROVIDER_KINDS,
    PROVIDER_SES,
    SERVICE_NAME,
    WEBHOOK_PROVIDER_KINDS,
    Env,
)

CONTEXT_KEY = "mailwright"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class ConfigError(ValueError):
    """The `mailwright` context value is missing a setting or holds a bad one."""


@dataclass(frozen=True)
class LaneConfig:
    """How one lane's worker consumes its queue."""

    name: str
    batch_size: int = 10
    batching_window_seconds: int = 0
    max_concurrency: int = 2
    reserved_concurrency: int | None = 2
    timeout_seconds: int = 30
    memory_mb: int = 512
    max_receive_count: int = 8
    # The longest a batch waits for a send token before handing the rest back to the queue
    # (None: the lane's default in DEFAULT_PACING_MAX_WAIT_SECONDS).
    pacing_max_wait_seconds: float | None = None

    @property
    def pacing_max_wait(self) -> float:
        """This lane's pacing wait, in seconds."""
        if self.pacing_max_wait_seconds is not None:
            return self.pacing_max_wait_seconds
        return DEFAULT_PACING_MAX_WAIT_SECONDS.get(self.name, 0.1)

    @property
    def visibility_timeout_seconds(self) -> int:
        """Six times the function timeout, as AWS advises for SQS event sources."""
        return 6 * self.timeout_seconds


@dataclass(frozen=True)
class RateLimit:
    """At most `limit` emails of one category to one user per window."""

    limit: int
    window_seconds: int


# How long a batch may wait for send tokens by default. Waiting is billed and a deferral costs
# about a millisecond, so lanes wait little; critical mail waits up to a second rather than
# coming back a second later.
# SES event types (SESv2 names) the configuration set may publish. Those that suppress an address or
# reject a request always go to the feedback path; the engagement ones are optional (`event_tracking`),
# and Send events are never published: the worker records the send itself when SES accepts it.
EVENT_TYPES_SUPPRESSION: tuple[str, ...] = ("BOUNCE", "COMPLAINT", "REJECT", "RENDERING_FAILURE")
EVENT_TYPES_DELIVERY: tuple[str, ...] = ("DELIVERY", "DELIVERY_DELAY", "SUBSCRIPTION")
EVENT_TYPES_OPENS_CLICKS: tuple[str, ...] = ("OPEN", "CLICK")
EVENT_TYPES_ALL: tuple[str, ...] = (
    "DELIVERY",
    "BOUNCE",
    "COMPLAINT",
    "REJECT",
    "OPEN",
    "CLICK",
    "DELIVERY_DELAY",
    "RENDERING_FAILURE",
    "SUBSCRIPTION",
)

DEFAULT_PACING_MAX_WAIT_SECONDS: dict[str, float] = {"critical": 0.2, "standard": 0.1, "bulk": 0.1}
# Shares of SES's daily quota (Max24HourSend) from which a lane's mail is held back, so critical
# mail keeps the rest; the quota-hold alarm fires at the lowest.
DEFAULT_QUOTA_HOLDS: dict[str, float] = {"bulk": 0.90, "standard": 0.97}

# SES reviews an account at a 5% bounce rate or a 0.1% complaint rate (account-wide, over a
# representative volume); mailwright alarms, and pauses the bulk lane, a step before.
BOUNCE_RATE_ALARM = 0.04
COMPLAINT_RATE_ALARM = 0.0008
# The sending-quota alarm fires when a day's sends reach this share of `ses_daily_quota`.
QUOTA_ALARM_RATIO = 0.8
# Oldest-message age (seconds) above which a queue's alarm fires: password resets must not wait.
DEFAULT_MAX_MESSAGE_AGE_SECONDS: dict[str, int] = {"critical": 60, "standard": 300, "bulk": 3600, "feedback": 1800}
AGE_ALARM_QUEUES: tuple[str, ...] = (*LANES, "feedback")


@dataclass(frozen=True)
class AlarmConfig:
    """Where alarms go and when they fire (the `alarm_email`, `max_message_age_seconds`... context values)."""

    email: str = ""
    max_message_age_seconds: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_MESSAGE_AGE_SECONDS))
    ses_daily_quota: int = 50000
    # Resume the bulk lane by itself once the reputation alarms clear (default: an operator resumes it).
    auto_resume_bulk: bool = False

    @property
    def quota_threshold(self) -> float:
        """Sends within a day at which the quota alarm fires."""
        return self.ses_daily_quota * QUOTA_ALARM_RATIO


# The public unsubscribe endpoint's share of the account's concurrency: enough for a burst of
# clicks after a campaign, small enough that a flood cannot starve the workers, feedback and breaker.
DEFAULT_UNSUBSCRIBE_RESERVED_CONCURRENCY = 5


@dataclass(frozen=True)
class UnsubscribeConfig:
    """The public unsubscribe endpoint (the `unsubscribe` context value)."""

    # None: no reservation (an account limited to 10 concurrent executions cannot reserve any).
    reserved_concurrency: int | None = DEFAULT_UNSUBSCRIBE_RESERVED_CONCURRENCY


# The HTTPS API's stage throttle: a status lookup is a support tool's question, not traffic.
# API Gateway's account-wide default (10,000 requests/s, burst 5,000) caps both.
DEFAULT_API_RATE_LIMIT = 50.0
DEFAULT_API_BURST_LIMIT = 100
API_MAX_RATE_LIMIT = 10000.0
API_MAX_BURST_LIMIT = 5000


# A producer's usage plan unless context says otherwise: protection for the platform, not a billing meter.
DEFAULT_PRODUCER_RATE_LIMIT = 10.0
DEFAULT_PRODUCER_BURST_LIMIT = 20
DEFAULT_PRODUCER_QUOTA_PER_DAY = 10000
# AWS WAF's rate-based rule: requests per client IP within the evaluation window, and the windows it offers.
DEFAULT_WAF_RATE_LIMIT = 1000
DEFAULT_WAF_WINDOW_SECONDS = 300
WAF_WINDOWS_SECONDS = (60, 120, 300, 600)
WAF_MIN_RATE_LIMIT = 10
# The producer the local stack makes a key for (`api_key` in .mailwright/local.json), unless context declares it.
LOCAL_PRODUCER = "local"


@dataclass(frozen=True)
class ProducerPlanConfig:
    """One producer's usage plan: steady rate and burst (requests per second), and requests per UTC day.

    API Gateway applies these per API key, best effort: a protection, not a meter to bill by.
    """

    rate_limit: float = DEFAULT_PRODUCER_RATE_LIMIT
    burst_limit: int = DEFAULT_PRODUCER_BURST_LIMIT
    # None: no daily quota.
    quota_per_day: int | None = DEFAULT_PRODUCER_QUOTA_PER_DAY


@dataclass(frozen=True)
class WafConfig:
    """AWS WAF in front of the APIs: block a client IP above `rate_limit` requests per `window_seconds`."""

    rate_limit: int = DEFAULT_WAF_RATE_LIMIT
    window_seconds: int = DEFAULT_WAF_WINDOW_SECONDS


@dataclass(frozen=True)
class ApiConfig:
    """The HTTPS APIs (the `api` context value): stage throttle, logging role, producers' plans, WAF."""

    # Requests per second (steady) and the burst above it, for each API's whole stage.
    throttling_rate_limit: float = DEFAULT_API_RATE_LIMIT
    throttling_burst_limit: int = DEFAULT_API_BURST_LIMIT
    # API Gateway writes its logs with one role per account and region: create it and set it in
    # the account's API Gateway settings, unless the account has one already (false).
    cloudwatch_role: bool = True
    # The producers of the producers' API, each with its usage plan; their keys come from `mailwright producers`.
    producers: dict[str, ProducerPlanConfig] = field(default_factory=dict)
    # AWS WAF's rate-based rule in front of both APIs' stages; None: no web ACL.
    waf: WafConfig | None = None


# Kafka: bounded retries need the mapping's provisioned mode (its error-handling controls exist only there).
KAFKA_AUTH_MSK = ("iam",)
KAFKA_AUTH_SELF_MANAGED = ("sasl_scram_512", "sasl_scram_256", "mtls")
_KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_KAFKA_SERVER = re.compile(r"^[A-Za-z0-9.-]+:\d{1,5}$")
_MSK_CLUSTER_ARN = re.compile(r"^arn:aws[a-z-]*:kafka:[a-z0-9-]+:\d{12}:cluster/[^/\s]+/[^/\s]+$")
_MQ_BROKER_ARN = re.compile(r"^arn:aws[a-z-]*:mq:[a-z0-9-]+:\d{12}:broker:[^:\s]+:b-[0-9a-f-]+$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:\S+$")
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/\S+$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]+$")
_SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]+$")
STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST")


@dataclass(frozen=True)
class KafkaIngestConfig:
    """A Kafka topic the bridge reads (`ingest.kafka`): an MSK cluster, or a self-managed cluster's brokers."""

    topic: str
    consumer_group: str = "mailwright"
    # Exactly one of the two: MSK (IAM authentication) or self-managed brokers (SASL/SCRAM or mTLS).
    cluster_arn: str = ""
    bootstrap_servers: tuple[str, ...] = ()
    auth: str = "iam"
    # SASL/SCRAM credentials, or the client certificate and key for mTLS (self-managed only).
    secret_arn: str = ""
    # The customer managed key that encrypts that secret, if any: the mapping needs kms:Decrypt on it.
    secret_kms_key_arn: str = ""
    # Self-managed brokers inside a VPC: the mapping's network interfaces go in these.
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    starting_position: str = "TRIM_HORIZON"
    batch_size: int = 100
    batching_window_seconds: int = 1
    # A failing batch is retried this often (split in two each time), then recorded in the on-failure queue...
    retry_attempts: int = 3
    # ...as is a record older than this: a partition is never blocked for good.
    max_record_age_seconds: int = 21600
    # Provisioned mode: the minimum is paid for around the clock (Event Poller Units).
    minimum_pollers: int = 1
    maximum_pollers: int = 2

    @property
    def managed(self) -> bool:
        """Whether the cluster is Amazon MSK (else self-managed brokers)."""
        return bool(self.cluster_arn)


@dataclass(frozen=True)
class RabbitMQIngestConfig:
    """An Amazon MQ for RabbitMQ queue the bridge reads (`ingest.rabbitmq`)."""

    broker_arn: str
    secret_arn: str
    queue: str = "mailwright-requests"
    virtual_host: str = "/"
    secret_kms_key_arn: str = ""
    batch_size: int = 100
    batching_window_seconds: int = 1


@dataclass(frozen=True)
class IngestConfig:
    """The optional doors beside SQS and EventBridge: Kafka and RabbitMQ, each through the ingest bridge."""

    kafka: KafkaIngestConfig | None = None
    rabbitmq: RabbitMQIngestConfig | None = None

    @property
    def enabled(self) -> bool:
        """Whether the stack needs the ingest bridge at all."""
        return self.kafka is not None or self.rabbitmq is not None


@dataclass(frozen=True)
class VariantsConfig:
    """The `variants` context value: when an A/B variant is switched off automatically.

    The runtime's `mailwright.variants.VariantPolicy` reads the JSON this writes (infra never imports it).
    """

    # Complaints per email sent above which a variant is switched off (SES reviews accounts at 0.5%).
    max_complaint_rate: float = 0.003
    # Requests that fail to render per request the variant was drawn for.
    max_render_failure_rate: float = 0.02
    # No verdict before this many emails of the variant (sent, or sent + failed to render).
    min_volume: int = 500
    # How long a worker trusts the variants' state it read: a switch-off reaches every worker within it.
    cache_seconds: int = 30

    def to_json(self) -> str:
        """The environment variable's value (Env.VARIANTS)."""
        return json.dumps(
            {
                "max_complaint_rate": self.max_complaint_rate,
                "max_render_failure_rate": self.max_render_failure_rate,
                "min_volume": self.min_volume,
                "cache_seconds": self.cache_seconds,
            },
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class MailwrightConfig:
    """Everything a deployment of mailwright can be told."""

    sender: str
    domain: str
    postal_address: str
    unsubscribe_base_url: str
    # A ceiling on the account rate mailwright uses (None: whatever SES's MaxSendRate allows).
    ses_max_send_rate: float | None
    idempotency_ttl_hours: int
    message_log_ttl_days: int
    rate_limits: dict[str, RateLimit]
    lanes: dict[str, LaneConfig]
    stack_name: str = "Mailwright"
    # How long a worker trusts a cached template before asking S3 for its ETag again.
    template_cache_seconds: int = 60
    # SES feedback: this many transient bounces within the window suppress an
    # address as SOFT_BOUNCE for `soft_bounce_suppression_days`.
    soft_bounce_threshold: int = 3
    soft_bounce_window_days: int = 7
    soft_bounce_suppression_days: int = 14
    # Also keep SES's account-level suppression list in step with ours.
    mirror_ses_suppression_list: bool = False
    # Operations: alarm routing and thresholds, and the reputation circuit breaker.
    alarms: AlarmConfig = field(default_factory=AlarmConfig)
    # The public unsubscribe endpoint's concurrency cap.
    unsubscribe: UnsubscribeConfig = field(default_factory=UnsubscribeConfig)
    # The HTTPS API: stage throttle and logging role.
    api: ApiConfig = field(default_factory=ApiConfig)
    # SES sandbox: the recipient identities (addresses or domains) workers may send to meanwhile.
    sandbox_recipients: tuple[str, ...] = ()
    # With a domain: the custom MAIL FROM domain (bounces return there; SPF aligns with it).
    mail_from_domain: str = ""
    # Point-in-time recovery (continuous backups) of the message log; the suppression list and
    # preferences always have it. Off: a bad write or delete of the log cannot be undone to the second.
    message_log_backups: bool = False
    # SES events published to the feedback path beyond those that suppress (EVENT_TYPES_SUPPRESSION):
    # deliveries (Delivery, DeliveryDelay, Subscription) by default, opens and clicks when opted in.
    track_delivery: bool = True
    track_opens_clicks: bool = False
    # Pacing: items the account's token bucket is split into, the daily-quota holds, how often SES is asked.
    pacing_shards: int = 1
    quota_holds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_QUOTA_HOLDS))
    quota_refresh_seconds: int = 300
    # Secondary providers (none: SES alone, as without them), each lane's failover, and their webhook.
    providers: tuple[ProviderConfig, ...] = ()
    failover: dict[str, LaneFailoverConfig] = field(default_factory=lambda: default_failover())
    provider_webhook: ProviderWebhookConfig = field(default_factory=lambda: ProviderWebhookConfig())
    # A/B variants: the automatic switch-off's thresholds.
    variants: VariantsConfig = field(default_factory=VariantsConfig)
    # Kafka and RabbitMQ into the lanes through the ingest bridge (absent: no bridge).
    ingest: IngestConfig = field(default_factory=IngestConfig)
    # Outcome events on the bus, the accounts that may subscribe, and webhooks (infra.events_config).
    events: EventsConfig = field(default_factory=EventsConfig)
    # Template categories held during a recipient's quiet hours (issue 17); essential ones never are.
    quiet_hours_categories: tuple[str, ...] = tuple(c for c in CATEGORIES if c in DEFAULT_QUIET_HOURS_CATEGORIES)
    # X-Ray active tracing of every function (off: no traces billed, and no X-Ray SDK loaded at cold start).
    tracing: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def from_address(self) -> str:
        """The address mail is sent from: the sender, which must sit in the domain when one is set."""
        return self.sender

    @property
    def identity(self) -> str:
        """The SES identity the workers may send as: the domain if set, else the sender address."""
        return self.domain or self.sender

    @property
    def total_max_concurrency(self) -> int:
        """How many workers may send at once, across all lanes."""
        return sum(lane.max_concurrency for lane in self.lanes.values())

    @property
    def send_rate_per_worker(self) -> float:
        """Each worker's share of the account rate with every worker busy: the pace while the shared bucket is
        out of reach (the ceiling, or SES's sandbox rate of 1/s without one, split across all workers)."""
        return (self.ses_max_send_rate or 1.0) / self.total_max_concurrency

    @property
    def published_event_types(self) -> tuple[str, ...]:
        """The SES event types (SESv2 names) the configuration set publishes, in EVENT_TYPES_ALL's order."""
        wanted = set(EVENT_TYPES_SUPPRESSION)
        if self.track_delivery:
            wanted.update(EVENT_TYPES_DELIVERY)
        if self.track_opens_clicks:
            wanted.update(EVENT_TYPES_OPENS_CLICKS)
        return tuple(event for event in EVENT_TYPES_ALL if event in wanted)

    def quota_holds_json(self) -> str:
        """The quota holds as the JSON the worker reads from its environment."""
        return json.dumps(dict(sorted(self.quota_holds.items())), separators=(",", ":"))

    def rate_limits_json(self) -> str:
        """Rate limits as the JSON the worker reads from its environment."""
        return json.dumps(
            {
                name: {"limit": r.limit, "window_seconds": r.window_seconds}
                for name, r in sorted(self.rate_limits.items())
            },
            separators=(",", ":"),
        )


def _positive_int(raw: dict[str, Any], key: str, default: int, *, minimum: int = 1, where: str) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}.{key} must be a whole number >= {minimum}, got {value!r}")
    return value


def _lane(name: str, raw: dict[str, Any]) -> LaneConfig:
    where = f"{CONTEXT_KEY}.lanes.{name}"
    unknown = set(raw) - {f for f in LaneConfig.__dataclass_fields__ if f != "name"}
    if unknown:
        raise ConfigError(f"{where}: unknown settings {sorted(unknown)}")
    defaults = LaneConfig(name=name)
    batch_size = _positive_int(raw, "batch_size", defaults.batch_size, where=where)
    window = _positive_int(raw, "batching_window_seconds", defaults.batching_window_seconds, minimum=0, where=where)
    if batch_size > 10 and window == 0:
        raise ConfigError(f"{where}: batch_size above 10 needs batching_window_seconds >= 1 (an SQS rule)")
    if batch_size > 10000 or window > 300:
        raise ConfigError(f"{where}: batch_size is at most 10000 and batching_window_seconds at most 300")
    max_concurrency = _positive_int(raw, "max_concurrency", defaults.max_concurrency, minimum=2, where=where)
    reserved = raw.get("reserved_concurrency", max_concurrency)
    if reserved is not None:
        reserved = _positive_int(raw, "reserved_concurrency", max_concurrency, where=where)
        if reserved < max_concurrency:
            raise ConfigError(
                f"{where}: reserved_concurrency ({reserved}) must be >= max_concurrency ({max_concurrency})"
            )
    timeout = _positive_int(raw, "timeout_seconds", defaults.timeout_seconds, where=where)
    if timeout > 900:
        raise ConfigError(f"{where}.timeout_seconds is at most 900")
    wait = raw.get("pacing_max_wait_seconds")
    if wait is not None and (isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= 5):
        raise ConfigError(f"{where}.pacing_max_wait_seconds must be a number of seconds from 0 to 5, got {wait!r}")
    return LaneConfig(
        name=name,
        batch_size=batch_size,
        batching_window_seconds=window,
        max_concurrency=max_concurrency,
        reserved_concurrency=reserved,
        timeout_seconds=timeout,
        memory_mb=_positive_int(raw, "memory_mb", defaults.memory_mb, minimum=128, where=where),
        max_receive_count=_positive_int(raw, "max_receive_count", defaults.max_receive_count, minimum=5, where=where),
        pacing_max_wait_seconds=None if wait is None else float(wait),
    )


def parse_config(raw: dict[str, Any]) -> MailwrightConfig:
    """Validate the `mailwright` context value and fill in defaults; raise ConfigError on bad input."""
    if not isinstance(raw, dict):
        raise ConfigError(f"context value {CONTEXT_KEY!r} must be an object")
    sender = str(raw.get("sender", "")).strip().lower()
    if not _EMAIL.match(sender):
        raise ConfigError(f"{CONTEXT_KEY}.sender must be an email address, got {sender!r}")
    domain = str(raw.get("domain") or "").strip().lower()
    if domain:
        if not _DOMAIN.match(domain):
            raise ConfigError(f"{CONTEXT_KEY}.domain is not a domain name: {domain!r}")
        if not sender.endswith("@" + domain):
            raise ConfigError(f"{CONTEXT_KEY}.sender ({sender}) must be an address at {CONTEXT_KEY}.domain ({domain})")
    url = str(raw.get("unsubscribe_base_url", "")).strip()
    if url and not url.startswith("https://"):
        raise ConfigError(f"{CONTEXT_KEY}.unsubscribe_base_url must start with https://")
    rate = raw.get("ses_max_send_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0):
        raise ConfigError(f"{CONTEXT_KEY}.ses_max_send_rate must be a positive number or null, got {rate!r}")

    rate_limits: dict[str, RateLimit] = {}
    for category, limit in (raw.get("rate_limits") or {}).items():
        if category not in CATEGORIES:
            raise ConfigError(
                f"{CONTEXT_KEY}.rate_limits: unknown category {category!r}; known: {', '.join(CATEGORIES)}"
            )
        if not isinstance(limit, dict):
            raise ConfigError(f"{CONTEXT_KEY}.rate_limits.{category} must be an object with limit and window_seconds")
        where = f"{CONTEXT_KEY}.rate_limits.{category}"
        rate_limits[category] = RateLimit(
            limit=_positive_int(limit, "limit", 0, where=where),
            window_seconds=_positive_int(limit, "window_seconds", 0, minimum=60, where=where),
        )

    lanes_raw = raw.get("lanes") or {}
    unknown_lanes = set(lanes_raw) - set(LANES)
    if unknown_lanes:
        raise ConfigError(f"{CONTEXT_KEY}.lanes: unknown lanes {sorted(unknown_lanes)}; lanes are {', '.join(LANES)}")
    lanes = {name: _lane(name, lanes_raw.get(name) or {}) for name in LANES}

    known = {
        "stack_name",
        "sender",
        "domain",
        "postal_address",
        "unsubscribe_base_url",
        "ses_max_send_rate",
        "idempotency_ttl_hours",
        "message_log_ttl_days",
        "rate_limits",
        "lanes",
        "template_cache_seconds",
        "soft_bounce_threshold",
        "soft_bounce_window_days",
        "soft_bounce_suppression_days",
        "mirror_ses_suppression_list",
        "alarm_email",
        "max_message_age_seconds",
        "ses_daily_quota",
        "auto_resume_bulk",
        "sandbox_recipients",
        "mail_from_domain",
        "event_tracking",
        "pacing_shards",
        "quota_holds",
        "quota_refresh_seconds",
        "unsubscribe",
        "api",
        "providers",
        "failover",
        "provider_webhook",
        "variants",
        "ingest",
        "quiet_hours_categories",
        "tracing",
        "message_log_backups",
        *EVENTS_KEYS,
    }
    feedback = _feedback_settings(raw)
    providers = parse_providers(raw.get("providers"))
    try:
        events = parse_events_config(raw)
    except EventsConfigError as exc:
        raise ConfigError(str(exc)) from None
    return MailwrightConfig(
        stack_name=str(raw.get("stack_name") or "Mailwright"),
        sender=sender,
        domain=domain,
        postal_address=str(raw.get("postal_address", "")).strip(),
        unsubscribe_base_url=url,
        ses_max_send_rate=None if rate is None else float(rate),
        idempotency_ttl_hours=_positive_int(raw, "idempotency_ttl_hours", 24, where=CONTEXT_KEY),
        message_log_ttl_days=_positive_int(raw, "message_log_ttl_days", 30, where=CONTEXT_KEY),
        template_cache_seconds=_positive_int(raw, "template_cache_seconds", 60, minimum=0, where=CONTEXT_KEY),
        rate_limits=rate_limits,
        lanes=lanes,
        alarms=_alarm_settings(raw),
        unsubscribe=_unsubscribe_settings(raw),
        api=_api_settings(raw),
        ingest=_ingest_settings(raw),
        sandbox_recipients=_sandbox_recipients(raw),
        mail_from_domain=_mail_from_domain(raw, domain),
        **_event_tracking(raw),
        pacing_shards=_positive_int(raw, "pacing_shards", 1, where=CONTEXT_KEY),
        quota_holds=_quota_holds(raw),
        quota_refresh_seconds=_positive_int(raw, "quota_refresh_seconds", 300, minimum=10, where=CONTEXT_KEY),
        providers=providers,
        failover=parse_failover(raw.get("failover"), providers),
        provider_webhook=_provider_webhook_settings(raw),
        variants=_variants_settings(raw),
        events=events,
        quiet_hours_categories=_quiet_hours_categories(raw),
        tracing=_flag(raw, "tracing"),
        message_log_backups=_flag(raw, "message_log_backups"),
        extra={k: v for k, v in raw.items() if k not in known},
        **feedback,
    )


def _flag(raw: dict[str, Any], key: str) -> bool:
    """A true-or-false setting, false when absent (`tracing`, `message_log_backups`)."""
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{CONTEXT_KEY}.{key} must be true or false, got {value!r}")
    return value


def _quiet_hours_categories(raw: dict[str, Any]) -> tuple[str, ...]:
    value = raw.get("quiet_hours_categories")
    if value is None:
        value = list(DEFAULT_QUIET_HOURS_CATEGORIES)
    where = f"{CONTEXT_KEY}.quiet_hours_categories"
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f'{where} must be a list of template categories, e.g. ["marketing", "product"]')
    unknown = sorted(set(value) - set(CATEGORIES))
    if unknown:
        raise ConfigError(f"{where}: unknown categories {unknown}; known: {', '.join(CATEGORIES)}")
    essential = sorted(set(value) & ESSENTIAL_CATEGORIES)
    if essential:
        raise ConfigError(f"{where}: {', '.join(essential)} mail always goes at once and cannot be held")
    return tuple(category for category in CATEGORIES if category in value)


def _alarm_settings(raw: dict[str, Any]) -> AlarmConfig:
    email = str(raw.get("alarm_email") or "").strip()
    if email and not _EMAIL.match(email):
        raise ConfigError(f"{CONTEXT_KEY}.alarm_email must be an email address, got {email!r}")
    ages_raw = raw.get("max_message_age_seconds") or {}
    if not isinstance(ages_raw, dict):
        raise ConfigError(f'{CONTEXT_KEY}.max_message_age_seconds must be an object, e.g. {{"critical": 60}}')
    unknown = set(ages_raw) - set(AGE_ALARM_QUEUES)
    if unknown:
        raise ConfigError(
            f"{CONTEXT_KEY}.max_message_age_seconds: unknown queues {sorted(unknown)}; "
            f"known: {', '.join(AGE_ALARM_QUEUES)}"
        )
    where = f"{CONTEXT_KEY}.max_message_age_seconds"
    ages = {
        queue: _positive_int(ages_raw, queue, DEFAULT_MAX_MESSAGE_AGE_SECONDS[queue], minimum=60, where=where)
        for queue in AGE_ALARM_QUEUES
    }
    auto_resume = raw.get("auto_resume_bulk", False)
    if not isinstance(auto_resume, bool):
        raise ConfigError(f"{CONTEXT_KEY}.auto_resume_bulk must be true or false, got {auto_resume!r}")
    return AlarmConfig(
        email=email,
        max_message_age_seconds=ages,
        ses_daily_quota=_positive_int(raw, "ses_daily_quota", 50000, where=CONTEXT_KEY),
        auto_resume_bulk=auto_resume,
    )


def _quota_holds(raw: dict[str, Any]) -> dict[str, float]:
    holds = raw.get("quota_holds")
    if holds is None:
        return dict(DEFAULT_QUOTA_HOLDS)
    where = f"{CONTEXT_KEY}.quota_holds"
    if not isinstance(holds, dict):
        raise ConfigError(f'{where} must be an object, e.g. {{"bulk": 0.9, "standard": 0.97}}')
    parsed: dict[str, float] = {}
    for lane, share in holds.items():
        if lane not in LANES:
            raise ConfigError(f"{where}: unknown lane {lane!r}; lanes are {', '.join(LANES)}")
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
            raise ConfigError(f"{where}.{lane} must be a share of the daily quota in (0, 1], got {share!r}")
        parsed[lane] = float(share)
    return parsed


def _event_tracking(raw: dict[str, Any]) -> dict[str, bool]:
    where = f"{CONTEXT_KEY}.event_tracking"
    settings = raw.get("event_tracking")
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise ConfigError(f'{where} must be an object, e.g. {{"delivery": true, "opens_clicks": false}}')
    unknown = set(settings) - {"delivery", "opens_clicks"}
    if unknown:
        raise ConfigError(f"{where}: unknown settings {sorted(unknown)}; the settings are delivery and opens_clicks")
    parsed: dict[str, bool] = {}
    for key, field_name in (("delivery", "track_delivery"), ("opens_clicks", "track_opens_clicks")):
        if key in settings:
            if not isinstance(settings[key], bool):
                raise ConfigError(f"{where}.{key} must be true or false, got {settings[key]!r}")
            parsed[field_name] = settings[key]
    return parsed


def _unsubscribe_settings(raw: dict[str, Any]) -> UnsubscribeConfig:
    where = f"{CONTEXT_KEY}.unsubscribe"
    settings = raw.get("unsubscribe")
    if settings is None:
        return UnsubscribeConfig()
    if not isinstance(settings, dict):
        raise ConfigError(f'{where} must be an object, e.g. {{"reserved_concurrency": 5}}')
    unknown = set(settings) - set(UnsubscribeConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"{where}: unknown settings {sorted(unknown)}")
    if settings.get("reserved_concurrency", DEFAULT_UNSUBSCRIBE_RESERVED_CONCURRENCY) is None:
        return UnsubscribeConfig(reserved_concurrency=None)
    return UnsubscribeConfig(
        reserved_concurrency=_positive_int(
            settings, "reserved_concurrency", DEFAULT_UNSUBSCRIBE_RESERVED_CONCURRENCY, where=where
        )
    )


def _api_settings(raw: dict[str, Any]) -> ApiConfig:
    where = f"{CONTEXT_KEY}.api"
    settings = raw.get("api")
    if settings is None:
        return ApiConfig()
    if not isinstance(settings, dict):
        raise ConfigError(f'{where} must be an object, e.g. {{"throttling_rate_limit": 50}}')
    unknown = set(settings) - set(ApiConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"{where}: unknown settings {sorted(unknown)}")
    rate = settings.get("throttling_rate_limit", DEFAULT_API_RATE_LIMIT)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= API_MAX_RATE_LIMIT:
        raise ConfigError(
            f"{where}.throttling_rate_limit must be a number of requests per second above 0 and at most "
            f"{API_MAX_RATE_LIMIT:g}, got {rate!r}"
        )
    burst = _positive_int(settings, "throttling_burst_limit", DEFAULT_API_BURST_LIMIT, where=where)
    if burst > API_MAX_BURST_LIMIT:
        raise ConfigError(f"{where}.throttling_burst_limit is at most {API_MAX_BURST_LIMIT}, got {burst}")
    role = settings.get("cloudwatch_role", True)
    if not isinstance(role, bool):
        raise ConfigError(f"{where}.cloudwatch_role must be true or false, got {role!r}")
    return ApiConfig(
        throttling_rate_limit=float(rate),
        throttling_burst_limit=burst,
        cloudwatch_role=role,
        producers=parse_producers(settings.get("producers"), where=f"{where}.producers"),
        waf=parse_waf(settings.get("waf"), where=f"{where}.waf"),
    )


# -- the producers' API (issue 15): producers' usage plans and WAF ----------------

_PRODUCER_NAME = re.compile(PRODUCER_PATTERN)


def parse_producers(raw: Any, *, where: str) -> dict[str, ProducerPlanConfig]:
    """`api.producers`: {name: {"rate_limit", "burst_limit", "quota_per_day"}}; ConfigError naming the key."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f'{where} must be an object, e.g. {{"billing": {{"rate_limit": 10, "quota_per_day": 5000}}}}')
    plans = {}
    for name, plan in raw.items():
        if not isinstance(name, str) or not _PRODUCER_NAME.match(name):
            raise ConfigError(
                f"{where}: {name!r} is not a producer name (lower-case letters, digits, _ and -, at most 64)"
            )
        plans[name] = _producer_plan({} if plan is None else plan, where=f"{where}.{name}")
    return plans


def _producer_plan(raw: Any, *, where: str) -> ProducerPlanConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f'{where} must be an object, e.g. {{"rate_limit": 10, "burst_limit": 20}}')
    unknown = set(raw) - set(ProducerPlanConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"{where}: unknown settings {sorted(unknown)}")
    rate = raw.get("rate_limit", DEFAULT_PRODUCER_RATE_LIMIT)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= API_MAX_RATE_LIMIT:
        raise ConfigError(
            f"{where}.rate_limit must be a number of requests per second above 0 and at most "
            f"{API_MAX_RATE_LIMIT:g}, got {rate!r}"
        )
    burst = _positive_int(raw, "burst_limit", DEFAULT_PRODUCER_BURST_LIMIT, where=where)
    if burst > API_MAX_BURST_LIMIT:
        raise ConfigError(f"{where}.burst_limit is at most {API_MAX_BURST_LIMIT}, got {burst}")
    quota: int | None = None
    if raw.get("quota_per_day", DEFAULT_PRODUCER_QUOTA_PER_DAY) is not None:
        quota = _positive_int(raw, "quota_per_day", DEFAULT_PRODUCER_QUOTA_PER_DAY, where=where)
    return ProducerPlanConfig(rate_limit=float(rate), burst_limit=burst, quota_per_day=quota)


def parse_waf(raw: Any, *, where: str) -> WafConfig | None:
    """`api.waf`: false or absent (none), true (the defaults), or {"rate_limit", "window_seconds"}."""
    if raw is None or raw is False:
        return None
    if raw is True:
        return WafConfig()
    if not isinstance(raw, dict):
        raise ConfigError(f'{where} must be true, false or an object, e.g. {{"rate_limit": 1000}}')
    unknown = set(raw) - set(WafConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"{where}: unknown settings {sorted(unknown)}")
    limit = _positive_int(raw, "rate_limit", DEFAULT_WAF_RATE_LIMIT, minimum=WAF_MIN_RATE_LIMIT, where=where)
    window = raw.get("window_seconds", DEFAULT_WAF_WINDOW_SECONDS)
    if window not in WAF_WINDOWS_SECONDS or isinstance(window, bool):
        raise ConfigError(
            f"{where}.window_seconds must be one of {', '.join(map(str, WAF_WINDOWS_SECONDS))}, got {window!r}"
        )
    return WafConfig(rate_limit=limit, window_seconds=int(window))


def producer_plan_name(stack_name: str, producer: str) -> str:
    """The name of a producer's usage plan on the producers' API (deployed and local)."""
    return f"{stack_name}-producer-{producer}"


def local_producers(config: MailwrightConfig) -> dict[str, ProducerPlanConfig]:
    """The producers the local stack declares: context's, and the `local` one (`api_key`) unless context has it."""
    return {LOCAL_PRODUCER: ProducerPlanConfig(rate_limit=100.0, burst_limit=200, quota_per_day=None)} | dict(
        config.api.producers
    )


def submission_environment(
    *, lane_queue_urls: Mapping[str, str], templates_bucket: str, producers_table: str, template_cache_seconds: int
) -> dict[str, str]:
    """What the HTTPS API's function reads, beyond api_environment, to take producers' requests."""
    return {
        # Accepted requests go straight onto their lane queue (JSON, lane -> URL).
        Env.LANE_QUEUE_URLS: json.dumps(dict(lane_queue_urls), sort_keys=True, separators=(",", ":")),
        # A template's lane is its bundle's priority, read from the bucket and cached this long.
        Env.TEMPLATES_BUCKET: templates_bucket,
        Env.TEMPLATE_CACHE_SECONDS: str(template_cache_seconds),
        # API key id -> producer.
        Env.PRODUCERS_TABLE: producers_table,
    }


def _variants_settings(raw: dict[str, Any]) -> VariantsConfig:
    where = f"{CONTEXT_KEY}.variants"
    settings = raw.get("variants")
    if settings is None:
        return VariantsConfig()
    if not isinstance(settings, dict):
        raise ConfigError(f'{where} must be an object, e.g. {{"max_complaint_rate": 0.003}}')
    unknown = set(settings) - set(VariantsConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"{where}: unknown settings {sorted(unknown)}")
    defaults = VariantsConfig()
    rates: dict[str, float] = {}
    for key in ("max_complaint_rate", "max_render_failure_rate"):
        value = settings.get(key, getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ConfigError(f"{where}.{key} must be a fraction above 0 and at most 1 (0.003 is 0.3%), got {value!r}")
        rates[key] = float(value)
    return VariantsConfig(
        **rates,
        min_volume=_positive_int(settings, "min_volume", defaults.min_volume, where=where),
        cache_seconds=_positive_int(settings, "cache_seconds", defaults.cache_seconds, minimum=0, where=where),
    )


def _sandbox_recipients(raw: dict[str, Any]) -> tuple[str, ...]:
    values = raw.get("sandbox_recipients") or []
    if not isinstance(values, list):
        raise ConfigError(f"{CONTEXT_KEY}.sandbox_recipients must be a list of addresses or domains")
    recipients: list[str] = []
    for value in values:
        identity = str(value).strip().lower()
        if not (_EMAIL.match(identity) or _DOMAIN.match(identity)):
            raise ConfigError(f"{CONTEXT_KEY}.sandbox_recipients: {value!r} is neither an address nor a domain")
        if identity not in recipients:
            recipients.append(identity)
    return tuple(recipients)


def _mail_from_domain(raw: dict[str, Any], domain: str) -> str:
    value = str(raw.get("mail_from_domain") or "").strip().lower()
    if not domain:
        if value:
            raise ConfigError(f"{CONTEXT_KEY}.mail_from_domain needs {CONTEXT_KEY}.domain")
        return ""
    value = value or f"mail.{domain}"
    if not _DOMAIN.match(value) or not value.endswith("." + domain):
        raise ConfigError(f"{CONTEXT_KEY}.mail_from_domain must be a subdomain of {domain}, got {value!r}")
    return value


def _ingest_settings(raw: dict[str, Any]) -> IngestConfig:
    where = f"{CONTEXT_KEY}.ingest"
    settings = raw.get("ingest")
    if settings is None:
        return IngestConfig()
    if not isinstance(settings, dict):
        raise ConfigError(f"{where} must be an object with kafka and/or rabbitmq")
    unknown = set(settings) - {"kafka", "rabbitmq"}
    if unknown:
        raise ConfigError(f"{where}: unknown settings {sorted(unknown)}; known: kafka, rabbitmq")
    kafka = settings.get("kafka")
    rabbitmq = settings.get("rabbitmq")
    return IngestConfig(
        kafka=None if kafka is None else _kafka_settings(kafka, f"{where}.kafka"),
        rabbitmq=None if rabbitmq is None else _rabbitmq_settings(rabbitmq, f"{where}.rabbitmq"),
    )


def _object_with(raw: Any, where: str, fields: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be an object")
    unknown = set(raw) - {name for name in fields if name != "managed"}
    if unknown:
        raise ConfigError(f"{where}: unknown settings {sorted(unknown)}")
    return raw


def _matching(raw: dict[str, Any], key: str, pattern: re.Pattern[str], what: str, where: str) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str) or (value and not pattern.match(value)):
        raise ConfigError(f"{where}.{key} must be {what}, got {value!r}")
    return value


def _matching_list(raw: dict[str, Any], key: str, pattern: re.Pattern[str], what: str, where: str) -> tuple[str, ...]:
    values = raw.get(key) or []
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",") if v.strip()]
    if not isinstance(values, list) or not all(isinstance(v, str) and pattern.match(v) for v in values):
        raise ConfigError(f"{where}.{key} must be a list of {what}, got {raw.get(key)!r}")
    return tuple(values)


def _kafka_settings(raw: Any, where: str) -> KafkaIngestConfig:
    raw = _object_with(raw, where, KafkaIngestConfig.__dataclass_fields__)
    defaults = KafkaIngestConfig(topic="-")
    topic = _matching(raw, "topic", _KAFKA_TOPIC, "a Kafka topic name", where)
    if not topic:
        raise ConfigError(f"{where}.topic is required (the topic producers publish requests to)")
    group = _matching(raw, "consumer_group", _KAFKA_TOPIC, "a consumer group id", where) or defaults.consumer_group
    cluster_arn = _matching(raw, "cluster_arn", _MSK_CLUSTER_ARN, "an MSK cluster ARN", where)
    servers = _matching_list(raw, "bootstrap_servers", _KAFKA_SERVER, "host:port", where)
    if bool(cluster_arn) == bool(servers):
        raise ConfigError(f"{where}: give cluster_arn (Amazon MSK) or bootstrap_servers (self-managed), not both")
    allowed = KAFKA_AUTH_MSK if cluster_arn else KAFKA_AUTH_SELF_MANAGED
    auth = raw.get("auth", allowed[0])
    if auth not in allowed:
        kind = "an MSK cluster" if cluster_arn else "self-managed brokers"
        raise ConfigError(f"{where}.auth for {kind} is one of {', '.join(allowed)}, got {auth!r}")
    secret = _matching(raw, "secret_arn", _SECRET_ARN, "a Secrets Manager secret ARN", where)
    if cluster_arn and secret:
        raise ConfigError(f"{where}.secret_arn: an MSK cluster is read with IAM authentication, no secret")
    if not cluster_arn and not secret:
        raise ConfigError(f"{where}.secret_arn is required for {auth} (the credentials or client certificate)")
    subnets = _matching_list(raw, "subnet_ids", _SUBNET, "subnet ids", where)
    groups = _matching_list(raw, "security_group_ids", _SECURITY_GROUP, "security group ids", where)
    if cluster_arn and (subnets or groups):
        raise ConfigError(f"{where}: an MSK cluster's network comes from the cluster; subnet_ids are for self-managed")
    if bool(subnets) != bool(groups):
        raise ConfigError(f"{where}: subnet_ids and security_group_ids go together")
    position = raw.get("starting_position", defaults.starting_position)
    if position not in STARTING_POSITIONS:
        raise ConfigError(f"{where}.starting_position is one of {', '.join(STARTING_POSITIONS)}, got {position!r}")
    batch_size = _positive_int(raw, "batch_size", defaults.batch_size, where=where)
    window = _positive_int(raw, "batching_window_seconds", defaults.batching_window_seconds, minimum=0, where=where)
    retries = _positive_int(raw, "retry_attempts", defaults.retry_attempts, minimum=0, where=where)
    age = _positive_int(raw, "max_record_age_seconds", defaults.max_record_age_seconds, minimum=60, where=where)
    low = _positive_int(raw, "minimum_pollers", defaults.minimum_pollers, where=where)
    high = _positive_int(raw, "maximum_pollers", max(low, defaults.maximum_pollers), where=where)
    if batch_size > 10000 or window > 300 or retries > 10000 or age > 604800 or low > 200 or high > 2000:
        raise ConfigError(
            f"{where}: batch_size is at most 10000, batching_window_seconds 300, retry_attempts 10000, "
            "max_record_age_seconds 604800, minimum_pollers 200 and maximum_pollers 2000 (Lambda's limits)"
        )
    if high < low:
        raise ConfigError(f"{where}: maximum_pollers ({high}) must be >= minimum_pollers ({low})")
    return KafkaIngestConfig(
        topic=topic,
        consumer_group=group,
        cluster_arn=cluster_arn,
        bootstrap_servers=servers,
        auth=auth,
        secret_arn=secret,
        secret_kms_key_arn=_matching(raw, "secret_kms_key_arn", _KMS_KEY_ARN, "a KMS key ARN", where),
        subnet_ids=subnets,
        security_group_ids=groups,
        starting_position=position,
        batch_size=batch_size,
        batching_window_seconds=window,
        retry_attempts=retries,
        max_record_age_seconds=age,
        minimum_pollers=low,
        maximum_pollers=high,
    )


def _rabbitmq_settings(raw: Any, where: str) -> RabbitMQIngestConfig:
    raw = _object_with(raw, where, RabbitMQIngestConfig.__dataclass_fields__)
    broker = _matching(raw, "broker_arn", _MQ_BROKER_ARN, "an Amazon MQ broker ARN", where)
    secret = _matching(raw, "secret_arn", _SECRET_ARN, "a Secrets Manager secret ARN", where)
    if not broker or not secret:
        raise ConfigError(f"{where}: broker_arn and secret_arn (the broker user's credentials) are required")
    defaults = RabbitMQIngestConfig(broker_arn=broker, secret_arn=secret)
    queue = raw.get("queue", defaults.queue)
    vhost = raw.get("virtual_host", defaults.virtual_host)
    for key, value in (("queue", queue), ("virtual_host", vhost)):
        if not isinstance(value, str) or not 0 < len(value) <= 255 or any(ch.isspace() for ch in value):
            raise ConfigError(f"{where}.{key} must be a name of 1 to 255 characters without spaces, got {value!r}")
    batch_size = _positive_int(raw, "batch_size", defaults.batch_size, where=where)
    window = _positive_int(raw, "batching_window_seconds", defaults.batching_window_seconds, minimum=0, where=where)
    if batch_size > 10000 or window > 300:
        raise ConfigError(f"{where}: batch_size is at most 10000 and batching_window_seconds at most 300")
    return RabbitMQIngestConfig(
        broker_arn=broker,
        secret_arn=secret,
        queue=queue,
        virtual_host=vhost,
        secret_kms_key_arn=_matching(raw, "secret_kms_key_arn", _KMS_KEY_ARN, "a KMS key ARN", where),
        batch_size=batch_size,
        batching_window_seconds=window,
    )


def _feedback_settings(raw: dict[str, Any]) -> dict[str, Any]:
    threshold = _positive_int(raw, "soft_bounce_threshold", 3, where=CONTEXT_KEY)
    window = _positive_int(raw, "soft_bounce_window_days", 7, where=CONTEXT_KEY)
    suppression = _positive_int(raw, "soft_bounce_suppression_days", 14, where=CONTEXT_KEY)
    # The feedback function keeps the last SOFT_BOUNCE_KEEP (100) soft bounces per address.
    if threshold > 100:
        raise ConfigError(f"{CONTEXT_KEY}.soft_bounce_threshold is at most 100, got {threshold}")
    if window > 365 or suppression > 365:
        raise ConfigError(f"{CONTEXT_KEY}.soft_bounce_window_days and soft_bounce_suppression_days are at most 365")
    mirror = raw.get("mirror_ses_suppression_list", False)
    if not isinstance(mirror, bool):
        raise ConfigError(f"{CONTEXT_KEY}.mirror_ses_suppression_list must be true or false, got {mirror!r}")
    return {
        "soft_bounce_threshold": threshold,
        "soft_bounce_window_days": window,
        "soft_bounce_suppression_days": suppression,
        "mirror_ses_suppression_list": mirror,
    }


def priority_filter(lane: str) -> list[Any]:
    """The `detail.priority` pattern of the bus rule that routes a request to `lane` (deployed and local)."""
    if lane != DEFAULT_LANE:
        return [lane]
    # Missing or unknown priorities land in the default lane rather than
    # nowhere: the worker then records them as rejected, with the reason.
    others = [name for name in LANES if name != DEFAULT_LANE]
    return [{"anything-but": others}, {"exists": False}]


def load_config(cdk_json: Path) -> MailwrightConfig:
    """Read the settings from a cdk.json file, as the local stack does."""
    data = json.loads(cdk_json.read_text(encoding="utf-8"))
    return parse_config(data.get("context", {}).get(CONTEXT_KEY, {}))


# ChangeMessageVisibility refuses anything longer.
SQS_MAX_VISIBILITY_SECONDS = 43200
# The worker sends a batch with at most this many SES calls in flight.
MAX_SEND_CONCURRENCY = 25


@dataclass(frozen=True)
class WorkerResources:
    """Names of the shared resources every worker is told about."""

    templates_bucket: str
    preferences_table: str
    suppression_table: str
    idempotency_table: str
    messages_table: str
    configuration_set: str
    unsubscribe_secret_arn: str
    address_key_secret_arn: str
    # The stack's own unsubscribe endpoint (the function URL); links point here
    # unless `unsubscribe_base_url` in the settings names a custom domain.
    unsubscribe_base_url: str = ""
    # Secondary providers' secrets by provider name: ARNs (CDK tokens deployed), never their values.
    provider_secrets: Mapping[str, str] = field(default_factory=dict)


def max_backoff_seconds(lane: LaneConfig) -> int:
    """The longest a throttled record is put back, within what SQS allows."""
    return min(SQS_MAX_VISIBILITY_SECONDS, 10 * lane.visibility_timeout_seconds)


def worker_environment(
    *, config: MailwrightConfig, lane: LaneConfig, queue_url: str, resources: WorkerResources
) -> dict[str, str]:
    """The environment of one lane's worker; deployed (CDK tokens) and local workers get the same."""
    return {
        # Which lane this worker drains: tags metrics and logs.
        Env.LANE: lane.name,
        # Its own queue: failed records are backed off with ChangeMessageVisibility.
        Env.QUEUE_URL: queue_url,
        # Where template bundles live, under TEMPLATES_PREFIX.
        Env.TEMPLATES_BUCKET: resources.templates_bucket,
        # Consent: per-user opt-outs and global unsubscribe.
        Env.PREFERENCES_TABLE: resources.preferences_table,
        # Addresses that bounced or complained are never mailed again.
        Env.SUPPRESSION_TABLE: resources.suppression_table,
        # Dedupe by idempotency key.
        Env.IDEMPOTENCY_TABLE: resources.idempotency_table,
        # The message log: every request's terminal state.
        Env.MESSAGES_TABLE: resources.messages_table,
        # Sent with every message so SES feedback and reputation metrics flow.
        Env.CONFIGURATION_SET: resources.configuration_set,
        # Must match the SES identity the worker may send as.
        Env.FROM_ADDRESS: config.from_address,
        # List-Unsubscribe links point here: the configured URL, else the stack's endpoint.
        Env.UNSUBSCRIBE_BASE_URL: config.unsubscribe_base_url or resources.unsubscribe_base_url,
        # The key of those links, read once per cold start.
        Env.UNSUBSCRIBE_SECRET_ARN: resources.unsubscribe_secret_arn,
        # The keys of address hashes (suppressions, user keys), re-read every few minutes.
        Env.ADDRESS_KEY_SECRET_ARN: resources.address_key_secret_arn,
        # Bulk mail must carry a physical address (CAN-SPAM).
        Env.POSTAL_ADDRESS: config.postal_address,
        # The pace that keeps all workers under the ceiling while the shared token bucket is unreachable.
        Env.SEND_RATE_PER_WORKER: str(config.send_rate_per_worker),
        # The ceiling on the account rate (empty: SES's MaxSendRate, read with GetAccount, decides).
        Env.SES_MAX_SEND_RATE: "" if config.ses_max_send_rate is None else str(config.ses_max_send_rate),
        # The longest a batch waits for send tokens; later mail is handed back to this queue with a delay.
        Env.PACING_MAX_WAIT_SECONDS: str(lane.pacing_max_wait),
        # Items the account's token bucket is split into (more for fleets of hundreds of workers).
        Env.PACING_SHARDS: str(config.pacing_shards),
        # Shares of the daily quota from which each lane's mail is held back, as JSON.
        Env.QUOTA_HOLDS: config.quota_holds_json(),
        # How old SES's quota, as shared between workers, may be before one worker asks SES again.
        Env.QUOTA_REFRESH_SECONDS: str(config.quota_refresh_seconds),
        # Parallel SES calls within one batch; more than the batch would idle.
        Env.SEND_CONCURRENCY: str(min(lane.batch_size, MAX_SEND_CONCURRENCY)),
        # How long a sent request's idempotency key blocks a duplicate.
        Env.IDEMPOTENCY_TTL_SECONDS: str(config.idempotency_ttl_hours * 3600),
        # How long the message log remembers a request.
        Env.MESSAGE_LOG_TTL_DAYS: str(config.message_log_ttl_days),
        # Per-user, per-category limits as JSON.
        Env.RATE_LIMITS: config.rate_limits_json(),
        # How long a cached template is trusted before its ETag is checked again.
        Env.TEMPLATE_CACHE_SECONDS: str(config.template_cache_seconds),
        # Cap on the backoff of a throttled record (SQS allows at most 12 hours).
        Env.MAX_BACKOFF_SECONDS: str(max_backoff_seconds(lane)),
        # When an A/B variant is switched off (its counters and state live in the idempotency table).
        Env.VARIANTS: config.variants.to_json(),
        # Template categories held while the recipient is in quiet hours (comma-separated; empty: none).
        Env.QUIET_HOURS_CATEGORIES: ",".join(config.quiet_hours_categories),
        # Powertools: one service name and metrics namespace across lanes.
        "POWERTOOLS_SERVICE_NAME": "mailwright",
        "POWERTOOLS_METRICS_NAMESPACE": "Mailwright",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        # Secondary providers and this lane's failover (none without `providers` in context).
        **failover_environment(config=config, lane=lane.name, secrets=resources.provider_secrets),
    }


def schedule_environment(
    *, group: str, role_arn: str, queue_arn: str, dead_letter_arn: str, kms_key_arn: str
) -> dict[str, str]:
    """A lane worker's scheduled-send settings (mailwright.settings.ScheduleSettings); deployed and local alike."""
    return {
        # The EventBridge Scheduler group its long schedules (more than 15 minutes ahead) are created in.
        Env.SCHEDULE_GROUP: group,
        # The role the schedules send to the lane queue with (the worker may pass only this role).
        Env.SCHEDULER_ROLE_ARN: role_arn,
        # The schedules' target: this lane's own queue.
        Env.QUEUE_ARN: queue_arn,
        # Where EventBridge puts what it could not deliver (alarmed).
        Env.SCHEDULE_DLQ_ARN: dead_letter_arn,
        # The customer managed key the schedules (which hold the request) are encrypted with.
        Env.SCHEDULE_KEY_ARN: kms_key_arn,
    }


def unsubscribe_environment(
    *, preferences_table: str, unsubscribe_secret_arn: str, address_key_secret_arn: str, suppression_table: str
) -> dict[str, str]:
    """The environment of the unsubscribe endpoint's function; the local server's service reads the same."""
    return {
        # Consent: the endpoint reads and updates one user's item.
        Env.PREFERENCES_TABLE: preferences_table,
        # The key that proves a link genuine, read once per cold start.
        Env.UNSUBSCRIBE_SECRET_ARN: unsubscribe_secret_arn,
        # Address-derived user ids in old links are carried forward to the current key version...
        Env.ADDRESS_KEY_SECRET_ARN: address_key_secret_arn,
        # ...and the suppression table's marker says which versions are still stored.
        Env.SUPPRESSION_TABLE: suppression_table,
        "POWERTOOLS_SERVICE_NAME": "mailwright",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def api_environment(*, messages_table: str, address_key_secret_arn: str, suppression_table: str) -> dict[str, str]:
    """The environment of the HTTPS API's function; the local API server's service reads the same."""
    return {
        # The message log and its recipient index: what the status API reads.
        Env.MESSAGES_TABLE: messages_table,
        # Lookups by recipient hash the address with the keyring...
        Env.ADDRESS_KEY_SECRET_ARN: address_key_secret_arn,
        # ...and the suppression table's marker says which older key versions are still stored.
        Env.SUPPRESSION_TABLE: suppression_table,
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


# The feedback function and its queue, deployed and local alike.
FEEDBACK_TIMEOUT_SECONDS = 30
FEEDBACK_MEMORY_MB = 256
FEEDBACK_BATCH_SIZE = 10
# Bounce storms after a newsletter are absorbed by the queue, not by more concurrency.
FEEDBACK_MAX_CONCURRENCY = 2
# Above the feedback service's match attempts (3): an event whose request is not
# logged yet is retried a few times before it is recorded without one.
FEEDBACK_MAX_RECEIVE_COUNT = 8
# Six times the function timeout, as for the lanes; also the delay between match attempts.
FEEDBACK_VISIBILITY_TIMEOUT_SECONDS = 6 * FEEDBACK_TIMEOUT_SECONDS


@dataclass(frozen=True)
class FeedbackResources:
    """Names of the resources the feedback function is told about."""

    suppression_table: str
    messages_table: str
    address_key_secret_arn: str
    queue_url: str = ""
    # Where A/B variants' counters live (empty: complaints are not counted per variant).
    idempotency_table: str = ""


def feedback_environment(*, config: MailwrightConfig, resources: FeedbackResources) -> dict[str, str]:
    """The environment of the feedback function; deployed (CDK tokens) and local functions get the same."""
    return {
        # Bounces and complaints suppress addresses here (audit trails and soft-bounce counts too).
        Env.SUPPRESSION_TABLE: resources.suppression_table,
        # ...under keyed address hashes.
        Env.ADDRESS_KEY_SECRET_ARN: resources.address_key_secret_arn,
        # Every event is appended to its request's history here.
        Env.MESSAGES_TABLE: resources.messages_table,
        # Event items expire with the requests they belong to.
        Env.MESSAGE_LOG_TTL_DAYS: str(config.message_log_ttl_days),
        # This many transient bounces within the window suppress an address...
        Env.SOFT_BOUNCE_THRESHOLD: str(config.soft_bounce_threshold),
        # ...where the window is this many days...
        Env.SOFT_BOUNCE_WINDOW_DAYS: str(config.soft_bounce_window_days),
        # ...for this many days.
        Env.SOFT_BOUNCE_SUPPRESSION_DAYS: str(config.soft_bounce_suppression_days),
        # Also put hard bounces and manual suppressions on SES's account-level list.
        Env.MIRROR_SES_SUPPRESSION: "true" if config.mirror_ses_suppression_list else "false",
        # Its own queue: events that beat their request's log entry come back in seconds.
        Env.QUEUE_URL: resources.queue_url,
        # Complaints about an A/B variant count against it here, and may switch it off.
        **(
            {Env.IDEMPOTENCY_TABLE: resources.idempotency_table, Env.VARIANTS: config.variants.to_json()}
            if resources.idempotency_table
            else {}
        ),
        # Powertools: the same service name and metrics namespace as the workers.
        "POWERTOOLS_SERVICE_NAME": "mailwright",
        "POWERTOOLS_METRICS_NAMESPACE": "Mailwright",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def breaker_environment(*, config: MailwrightConfig, mapping_id: str, alarm_names: list[str]) -> dict[str, str]:
    """The environment of the reputation circuit breaker's function."""
    return {
        # The lane the breaker pauses; it tags the breaker's logs and metrics too.
        Env.LANE: BREAKER_LANE,
        # That lane's event source mapping (its UUID), the only one the breaker may switch.
        Env.BREAKER_MAPPING_ID: mapping_id,
        # The alarms whose state changes pause and resume it, comma-separated.
        Env.BREAKER_ALARMS: ",".join(alarm_names),
        # Resume by itself when every one of them is OK again (else an operator resumes it).
        Env.BREAKER_AUTO_RESUME: "true" if config.alarms.auto_resume_bulk else "false",
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


# -- secondary providers and failover ----------------------------------------------
#
# `providers` lists the secondaries (none by default: SES alone); `failover` says, per lane, whether its
# mail moves to one while SES's breaker is open, and the breaker's thresholds. The runtime reads both
# from MAILWRIGHT_PROVIDERS and MAILWRIGHT_FAILOVER (mailwright.settings parses them again at cold start;
# tests/unit/test_infra_providers.py holds the two parsers to one contract). Credentials stay in Secrets
# Manager, in secrets the user creates: the context names them, never holds them.

# Hosts an SMTP relay may be reached in clear on: this machine only (the local stack and the tests).
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
SMTP_TLS_MODES = ("starttls", "tls", "none")
MAILGUN_REGIONS = ("us", "eu")
# A provider's name is its metric dimension, its webhook path and its message-log value.
_PROVIDER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
# A secret's name as Secrets Manager allows it...
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
# ...and its complete ARN, with the six characters Secrets Manager appends to the name.
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$")
# A name that ends like that suffix would be taken for a partial ARN's suffix by Secrets Manager.
_SUFFIX_LIKE = re.compile(r"-[A-Za-z0-9]{6}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_SNS_ARN = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,256})$")
# Emails per second a secondary takes when `max_send_rate` is not given: modest, as a secondary that
# suddenly sends thousands looks like a spammer to mailbox providers (README: warm-up).
DEFAULT_PROVIDER_SEND_RATE = 5.0
# Each kind's `settings` keys.
PROVIDER_SETTINGS: dict[str, frozenset[str]] = {
    PROVIDER_KIND_SMTP: frozenset({"host", "port", "tls", "timeout_seconds", "pool_size"}),
    PROVIDER_KIND_SENDGRID: frozenset({"base_url", "timeout_seconds"}),
    PROVIDER_KIND_MAILGUN: frozenset({"domain", "region", "base_url", "timeout_seconds"}),
    PROVIDER_KIND_SES: frozenset({"region", "configuration_set", "feedback_topic_arn"}),
}
_PROVIDER_KEYS = frozenset({"name", "kind", "secret", "webhook_secret", "max_send_rate", "settings"})
# The provider webhook's share of the account's concurrency, as the unsubscribe endpoint's: it is public.
DEFAULT_PROVIDER_WEBHOOK_RESERVED_CONCURRENCY = 5


@dataclass(frozen=True)
class ProviderConfig:
    """One secondary provider: its name and kind, the secrets that hold its credentials, its settings."""

    name: str
    kind: str
    # The secret's name or complete ARN (none for SES in another region: the workers' role sends there).
    secret: str = ""
    # SendGrid and Mailgun: a secret of its own for the webhook's verification key, so the public
    # webhook function never reads the sending credentials ("": the key is in `secret`).
    webhook_secret: str = ""
    # Emails per second the whole deployment may hand it; split among the workers that fail over to it.
    max_send_rate: float = DEFAULT_PROVIDER_SEND_RATE
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def posts_webhooks(self) -> bool:
        """Whether it reports feedback to the provider webhook (SendGrid, Mailgun)."""
        return self.kind in WEBHOOK_PROVIDER_KINDS

    @property
    def region(self) -> str:
        """The other region SES sends from (kind ses_region), else ""."""
        return str(self.settings.get("region", "")) if self.kind == PROVIDER_KIND_SES else ""


@dataclass(frozen=True)
class LaneFailoverConfig:
    """One lane's failover: whether its mail moves to `provider` while SES's breaker is open, and when that opens."""

    enabled: bool
    # "": the first provider listed.
    provider: str = ""
    failure_threshold: int = 5
    window_seconds: int = 30
    cooldown_seconds: int = 30
    account_cooldown_seconds: int = 300
    # The alarm fires when SES's breaker of this lane has been open this long (while the lane sends).
    alarm_after_minutes: int = 15


@dataclass(frozen=True)
class ProviderWebhookConfig:
    """The provider webhook function (the `provider_webhook` context value)."""

    # None: no reservation (an account limited to 10 concurrent executions cannot reserve any).
    reserved_concurrency: int | None = DEFAULT_PROVIDER_WEBHOOK_RESERVED_CONCURRENCY


def default_failover() -> dict[str, LaneFailoverConfig]:
    """Each lane's failover when the context says nothing: critical and standard fail over, bulk waits."""
    return {lane: LaneFailoverConfig(enabled=lane in FAILOVER_LANES) for lane in LANES}


def _secret_reference(value: Any, where: str) -> str:
    text = str(value or "").strip()
    if text.startswith("arn:"):
        if not _SECRET_ARN.match(text):
            raise ConfigError(
                f"{where} must be a secret's complete ARN (with the six characters Secrets Manager appends), "
                f"or its name; got {text!r}"
            )
        return text
    if not _SECRET_NAME.match(text):
        raise ConfigError(f"{where} must be the name or complete ARN of a Secrets Manager secret, got {text!r}")
    if _SUFFIX_LIKE.search(text):
        raise ConfigError(
            f"{where}: a secret name ending in '-' and six characters ({text!r}) is ambiguous to Secrets Manager; "
            "give its complete ARN instead"
        )
    return text


def _provider_number(raw: dict[str, Any], key: str, default: float, where: str) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:  # `not >` catches NaN
        raise ConfigError(f"{where}.{key} must be a positive number, got {value!r}")
    return float(value)


def _https_url(value: Any, where: str) -> str:
    text = str(value).strip()
    if not (text.startswith("https://") or re.match(r"^http://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?(/|$)", text)):
        raise ConfigError(f"{where} must be an https URL (plain http on loopback only), got {text!r}")
    return text


def _provider_settings(kind: str, raw: Any, where: str) -> dict[str, Any]:
    """A provider's `settings`, checked as the runtime will check them, with defaults left to the runtime."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be an object")
    unknown = set(raw) - PROVIDER_SETTINGS[kind]
    if unknown:
        raise ConfigError(f"{where}: unknown settings {sorted(unknown)}; known: {sorted(PROVIDER_SETTINGS[kind])}")
    settings = dict(raw)
    if "timeout_seconds" in settings:
        _provider_number(settings, "timeout_seconds", 10, where)
    if "base_url" in settings:
        settings["base_url"] = _https_url(settings["base_url"], f"{where}.base_url")
    if kind == PROVIDER_KIND_SMTP:
        host = str(settings.get("host") or "").strip()
        if not host:
            raise ConfigError(f"{where}.host is required (the relay's host name)")
        tls = settings.get("tls", "starttls")
        if tls not in SMTP_TLS_MODES:
            raise ConfigError(f"{where}.tls must be one of {', '.join(SMTP_TLS_MODES)}, got {tls!r}")
        if tls == "none" and host not in LOOPBACK_HOSTS:
            raise ConfigError(f"{where}: an SMTP relay without TLS is allowed on loopback only")
        port = _positive_int(settings, "port", 465 if tls == "tls" else 587, where=where)
        if port > 65535:
            raise ConfigError(f"{where}.port must be at most 65535")
        _positive_int(settings, "pool_size", 4, where=where)
    elif kind == PROVIDER_KIND_MAILGUN:
        domain = str(settings.get("domain") or "").strip().lower()
        if not _DOMAIN.match(domain):
            raise ConfigError(f"{where}.domain must be the Mailgun sending domain, got {domain!r}")
        if settings.get("region", "us") not in MAILGUN_REGIONS:
            raise ConfigError(f"{where}.region must be one of {', '.join(MAILGUN_REGIONS)}")
    elif kind == PROVIDER_KIND_SES:
        region = str(settings.get("region") or "")
        if not _REGION.match(region):
            raise ConfigError(f"{where}.region must be an AWS region such as eu-west-1, got {region!r}")
        if not str(settings.get("configuration_set") or "").strip():
            raise ConfigError(f"{where}.configuration_set is required (the configuration set in {region})")
        topic = settings.get("feedback_topic_arn")
        if topic is not None:
            match = _SNS_ARN.match(str(topic))
            if not match or match.group(1) != region:
                raise ConfigError(f"{where}.feedback_topic_arn must be an SNS topic ARN in {region}, got {topic!r}")
    return settings


def parse_providers(raw: Any) -> tuple[ProviderConfig, ...]:
    """The `providers` context value: a list of secondary providers (empty or absent: none)."""
    where = f"{CONTEXT_KEY}.providers"
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where} must be a list of providers")
    providers: list[ProviderConfig] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}[{index}] must be an object with name, kind and settings")
        name = str(entry.get("name") or "")
        if not _PROVIDER_NAME.match(name) or name == PROVIDER_SES:
            raise ConfigError(
                f"{where}[{index}].name must be up to 40 letters, digits, - or _, "
                f"and not {PROVIDER_SES!r}; got {name!r}"
            )
        at = f"{where}.{name}"
        unknown = set(entry) - _PROVIDER_KEYS
        if unknown:
            raise ConfigError(f"{at}: unknown keys {sorted(unknown)}; known: {sorted(_PROVIDER_KEYS)}")
        kind = entry.get("kind")
        if kind not in PROVIDER_KINDS:
            raise ConfigError(f"{at}.kind must be one of {', '.join(PROVIDER_KINDS)}, got {kind!r}")
        if kind == PROVIDER_KIND_SES:
            if entry.get("secret") or entry.get("webhook_secret"):
                raise ConfigError(f"{at}: SES in another region needs no secret (the workers' role sends there)")
            secret = ""
        else:
            if not entry.get("secret"):
                raise ConfigError(f"{at}.secret is required: the name or ARN of the secret with its credentials")
            secret = _secret_reference(entry["secret"], f"{at}.secret")
        webhook_secret = ""
        if entry.get("webhook_secret"):
            if kind not in WEBHOOK_PROVIDER_KINDS:
                raise ConfigError(f"{at}.webhook_secret: only {', '.join(WEBHOOK_PROVIDER_KINDS)} post webhooks")
            webhook_secret = _secret_reference(entry["webhook_secret"], f"{at}.webhook_secret")
        providers.append(
            ProviderConfig(
                name=name,
                kind=str(kind),
                secret=secret,
                webhook_secret=webhook_secret,
                max_send_rate=_provider_number(entry, "max_send_rate", DEFAULT_PROVIDER_SEND_RATE, at),
                settings=_provider_settings(str(kind), entry.get("settings"), f"{at}.settings"),
            )
        )
    names = [provider.name for provider in providers]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: provider names must be unique, got {', '.join(names)}")
    return tuple(providers)


def parse_failover(raw: Any, providers: tuple[ProviderConfig, ...]) -> dict[str, LaneFailoverConfig]:
    """The `failover` context value: per lane, true/false or an object; defaults for the lanes it leaves out."""
    where = f"{CONTEXT_KEY}.failover"
    lanes = default_failover()
    if raw is None:
        return lanes
    if not isinstance(raw, dict):
        raise ConfigError(f'{where} must be an object by lane, e.g. {{"bulk": {{"enabled": true}}}}')
    unknown = set(raw) - set(LANES)
    if unknown:
        raise ConfigError(f"{where}: unknown lanes {sorted(unknown)}; lanes are {', '.join(LANES)}")
    names = {provider.name for provider in providers}
    fields = set(LaneFailoverConfig.__dataclass_fields__)
    for lane, value in raw.items():
        at = f"{where}.{lane}"
        if isinstance(value, bool):
            value = {"enabled": value}
        if not isinstance(value, dict):
            raise ConfigError(f"{at} must be true, false or an object")
        unknown = set(value) - fields
        if unknown:
            raise ConfigError(f"{at}: unknown settings {sorted(unknown)}; known: {sorted(fields)}")
        enabled = value.get("enabled", lanes[lane].enabled)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{at}.enabled must be true or false, got {enabled!r}")
        provider = str(value.get("provider") or "")
        if provider and provider not in names:
            raise ConfigError(f"{at}.provider {provider!r} is not among {CONTEXT_KEY}.providers")
        defaults = LaneFailoverConfig(enabled=enabled)
        lanes[lane] = LaneFailoverConfig(
            enabled=enabled,
            provider=provider,
            **{
                name: _positive_int(value, name, getattr(defaults, name), where=at)
                for name in (
                    "failure_threshold",
                    "window_seconds",
                    "cooldown_seconds",
                    "account_cooldown_seconds",
                    "alarm_after_minutes",
                )
            },
        )
    return lanes


def _provider_webhook_settings(raw: dict[str, Any]) -> ProviderWebhookConfig:
    where = f"{CONTEXT_KEY}.provider_webhook"
    settings = raw.get("provider_webhook")
    if settings is None:
        return ProviderWebhookConfig()
    if not isinstance(settings, dict):
        raise ConfigError(f'{where} must be an object, e.g. {{"reserved_concurrency": 5}}')
    unknown = set(settings) - set(ProviderWebhookConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"{where}: unknown settings {sorted(unknown)}")
    if "reserved_concurrency" in settings and settings["reserved_concurrency"] is None:
        return ProviderWebhookConfig(reserved_concurrency=None)
    default = DEFAULT_PROVIDER_WEBHOOK_RESERVED_CONCURRENCY
    return ProviderWebhookConfig(
        reserved_concurrency=_positive_int(settings, "reserved_concurrency", default, where=where)
    )


def lane_provider(config: MailwrightConfig, lane: str) -> ProviderConfig | None:
    """The provider `lane` fails over to (None without providers)."""
    if not config.providers:
        return None
    wanted = config.failover[lane].provider or config.providers[0].name
    return next(provider for provider in config.providers if provider.name == wanted)


def failover_lanes(config: MailwrightConfig, provider: str) -> list[str]:
    """The lanes whose mail moves to `provider` while SES's breaker is open."""
    return [
        lane
        for lane in LANES
        if config.failover[lane].enabled
        and (found := lane_provider(config, lane)) is not None
        and found.name == provider
    ]


def provider_send_rate_per_worker(config: MailwrightConfig, provider: ProviderConfig) -> float:
    """Each worker's share of a provider's `max_send_rate`: split among the workers of the lanes failing over to it."""
    workers = sum(config.lanes[lane].max_concurrency for lane in failover_lanes(config, provider.name))
    return provider.max_send_rate / workers if workers else provider.max_send_rate


def providers_json(config: MailwrightConfig, secrets: Mapping[str, str], *, webhooks_only: bool = False) -> str:
    """MAILWRIGHT_PROVIDERS: the providers as the runtime reads them, secrets by ARN (`secrets`: name -> ARN)."""
    entries = []
    for provider in config.providers:
        if webhooks_only and not provider.posts_webhooks:
            continue
        entry: dict[str, Any] = {
            "name": provider.name,
            "kind": provider.kind,
            "send_rate": round(provider_send_rate_per_worker(config, provider), 6),
            "settings": {k: v for k, v in provider.settings.items() if k != "feedback_topic_arn"},
        }
        if provider.secret:
            entry["secret_arn"] = secrets[provider.name]
        entries.append(entry)
    return json.dumps(entries, separators=(",", ":"))


def failover_json(config: MailwrightConfig, lane: str) -> str:
    """MAILWRIGHT_FAILOVER of one lane's worker."""
    settings = config.failover[lane]
    provider = lane_provider(config, lane)
    return json.dumps(
        {
            "enabled": settings.enabled,
            "provider": provider.name if provider else "",
            "failure_threshold": settings.failure_threshold,
            "window_seconds": settings.window_seconds,
            "cooldown_seconds": settings.cooldown_seconds,
            "account_cooldown_seconds": settings.account_cooldown_seconds,
        },
        separators=(",", ":"),
    )


def failover_environment(*, config: MailwrightConfig, lane: str, secrets: Mapping[str, str]) -> dict[str, str]:
    """A lane worker's provider variables: none without providers (SES alone, exactly as before)."""
    if not config.providers:
        return {}
    return {
        # The secondaries, with their secrets' ARNs (never a secret value); parsed once at cold start.
        Env.PROVIDERS: providers_json(config, secrets),
        # Whether this lane fails over, to which provider, and its breaker's thresholds.
        Env.FAILOVER: failover_json(config, lane),
    }


@dataclass(frozen=True)
class ProviderWebhookResources:
    """Names of the resources the provider webhook function is told about."""

    feedback: FeedbackResources
    idempotency_table: str
    preferences_table: str
    # The secret holding each webhook provider's verification key (its `webhook_secret`, else its `secret`), by name.
    webhook_secrets: Mapping[str, str] = field(default_factory=dict)


def provider_webhook_environment(*, config: MailwrightConfig, resources: ProviderWebhookResources) -> dict[str, str]:
    """The environment of the provider webhook function; the feedback function's, plus providers and two tables."""
    return {
        **feedback_environment(config=config, resources=resources.feedback),
        # The webhook providers, each named with the secret of its verification key as its secret: with a
        # webhook_secret configured, this function never reads the sending credentials.
        Env.PROVIDERS: providers_json(config, resources.webhook_secrets, webhooks_only=True),
        # Its replay guard: one item per provider event (or Mailgun signature token) already applied.
        Env.IDEMPOTENCY_TABLE: resources.idempotency_table,
        # Provider unsubscribes opt the user out of the email's category here.
        Env.PREFERENCES_TABLE: resources.preferences_table,
    }


# The ingest bridge: a small function; a batch of 100 records is a handful of SQS calls.
BRIDGE_TIMEOUT_SECONDS = 60
BRIDGE_MEMORY_MB = 256


def bridge_environment(
    *, config: MailwrightConfig, queue_urls: dict[str, str], templates_bucket: str, messages_table: str
) -> dict[str, str]:
    """The environment of the ingest bridge; deployed (CDK tokens) and local bridges get the same."""
    return {
        # Where each lane's requests go (the producer SDK reads the same variables).
        **{Env.lane_queue_url(lane): url for lane, url in queue_urls.items()},
        # Template bundles: a request without a priority goes to its template's lane, as the SDK routes it.
        Env.TEMPLATES_BUCKET: templates_bucket,
        # How long a template's priority is trusted before its ETag is checked again.
        Env.TEMPLATE_CACHE_SECONDS: str(config.template_cache_seconds),
        # Records that are not valid requests are logged `rejected` here, for `mailwright status`...
        Env.MESSAGES_TABLE: messages_table,
        # ...for as long as the workers keep their entries.
        Env.MESSAGE_LOG_TTL_DAYS: str(config.message_log_ttl_days),
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
