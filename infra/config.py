"""Deployment settings, read from the `mailwright` CDK context value.

Pure Python on purpose: the CDK app and the local stack read the same
settings through this module, so a lane runs locally exactly as deployed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailwright.constants import (
    BREAKER_LANE,
    CATEGORIES,
    DEFAULT_LANE,
    LANES,
    METRICS_NAMESPACE,
    SERVICE_NAME,
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
        return DEFAULT_PACING_MAX_WAIT_SECONDS.get(self.name, 0.25)

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

DEFAULT_PACING_MAX_WAIT_SECONDS: dict[str, float] = {"critical": 1.0, "standard": 0.25, "bulk": 0.0}
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
    # SES sandbox: the recipient identities (addresses or domains) workers may send to meanwhile.
    sandbox_recipients: tuple[str, ...] = ()
    # With a domain: the custom MAIL FROM domain (bounces return there; SPF aligns with it).
    mail_from_domain: str = ""
    # SES events published to the feedback path beyond those that suppress (EVENT_TYPES_SUPPRESSION):
    # deliveries (Delivery, DeliveryDelay, Subscription) by default, opens and clicks when opted in.
    track_delivery: bool = True
    track_opens_clicks: bool = False
    # Pacing: items the account's token bucket is split into, the daily-quota holds, how often SES is asked.
    pacing_shards: int = 1
    quota_holds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_QUOTA_HOLDS))
    quota_refresh_seconds: int = 300
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
    }
    feedback = _feedback_settings(raw)
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
        sandbox_recipients=_sandbox_recipients(raw),
        mail_from_domain=_mail_from_domain(raw, domain),
        **_event_tracking(raw),
        pacing_shards=_positive_int(raw, "pacing_shards", 1, where=CONTEXT_KEY),
        quota_holds=_quota_holds(raw),
        quota_refresh_seconds=_positive_int(raw, "quota_refresh_seconds", 300, minimum=10, where=CONTEXT_KEY),
        extra={k: v for k, v in raw.items() if k not in known},
        **feedback,
    )


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
        # Powertools: one service name and metrics namespace across lanes.
        "POWERTOOLS_SERVICE_NAME": "mailwright",
        "POWERTOOLS_METRICS_NAMESPACE": "Mailwright",
        "POWERTOOLS_LOG_LEVEL": "INFO",
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
