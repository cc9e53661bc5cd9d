"""The worker's settings, parsed once from its environment at cold start."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mailwright.constants import (
    CATEGORIES,
    DEFAULT_QUIET_HOURS_CATEGORIES,
    FAILOVER_LANES,
    LANES,
    PROVIDER_KIND_SENDGRID,
    PROVIDER_KIND_SES,
    PROVIDER_KIND_SMTP,
    PROVIDER_KINDS,
    PROVIDER_SES,
    WEBHOOK_PROVIDER_KINDS,
    Env,
)
from mailwright.errors import ConfigurationError
from mailwright.variants import VariantPolicy


@dataclass(frozen=True)
class RateLimit:
    """At most `limit` emails of one category to one user per `window_seconds`."""

    limit: int
    window_seconds: int


@dataclass(frozen=True)
class ScheduleSettings:
    """Where a lane's long schedules go (mailwright.scheduling): EventBridge Scheduler group, role, target, key."""

    group: str
    role_arn: str
    queue_arn: str
    dead_letter_arn: str
    kms_key_arn: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ScheduleSettings | None:
        """All five variables, or none (no long schedules); raise ConfigurationError when only some are set."""
        keys = {
            "group": Env.SCHEDULE_GROUP,
            "role_arn": Env.SCHEDULER_ROLE_ARN,
            "queue_arn": Env.QUEUE_ARN,
            "dead_letter_arn": Env.SCHEDULE_DLQ_ARN,
            "kms_key_arn": Env.SCHEDULE_KEY_ARN,
        }
        given = {name: env.get(key, "") for name, key in keys.items()}
        if not any(given.values()):
            return None
        missing = [keys[name] for name, value in given.items() if not value]
        if missing:
            raise ConfigurationError(f"scheduled sends need every schedule variable; missing {', '.join(missing)}")
        return cls(**given)


@dataclass(frozen=True)
class WorkerSettings:
    """Everything the send worker reads from its environment."""

    lane: str
    queue_url: str
    templates_bucket: str
    preferences_table: str
    suppression_table: str
    idempotency_table: str
    messages_table: str
    configuration_set: str
    from_address: str
    unsubscribe_base_url: str
    unsubscribe_secret_arn: str
    address_key_secret_arn: str
    postal_address: str = ""
    # The share of the account rate that is safe with every worker busy: used only while the shared
    # rate registry cannot be reached (and as the account rate until SES has been asked, times workers).
    send_rate_per_worker: float = 1.0
    # The ceiling on the account rate (ses_max_send_rate); None: whatever SES allows.
    ses_max_send_rate: float | None = None
    # The longest a batch waits for a token; later tokens' mail is handed back to the queue.
    pacing_max_wait_seconds: float = 0.25
    # Items the account's token bucket is split into (one per ~500 takes a second).
    pacing_shards: int = 1
    # Share of the daily quota (Max24HourSend) from which a lane is held.
    quota_holds: dict[str, float] = field(default_factory=lambda: {"bulk": 0.90, "standard": 0.97})
    quota_refresh_seconds: float = 300.0
    send_concurrency: int = 10
    idempotency_ttl_seconds: int = 86400
    message_log_ttl_days: int = 90
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    template_cache_seconds: int = 60
    max_backoff_seconds: int = 900
    # Secondary providers and this lane's failover policy; none: SES alone.
    providers: tuple[ProviderSettings, ...] = ()
    failover: FailoverSettings | None = None
    # When A/B variants are switched off automatically, and how long their state is cached.
    variants: VariantPolicy = field(default_factory=VariantPolicy)
    # Long schedules (more than 15 minutes ahead); None: none configured (such requests are retried, not sent).
    schedules: ScheduleSettings | None = None
    # Template categories held during the recipient's quiet hours (issue 17).
    quiet_hours_categories: frozenset[str] = frozenset(DEFAULT_QUIET_HOURS_CATEGORIES)
    # Every digest template's window, overridden (the local stack's `--digest-window`); None: the templates'.
    digest_window_seconds: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        """Parse the environment; raise ConfigurationError naming every missing or bad key."""
        env = os.environ if environ is None else environ
        required = {
            "lane": Env.LANE,
            "queue_url": Env.QUEUE_URL,
            "templates_bucket": Env.TEMPLATES_BUCKET,
            "preferences_table": Env.PREFERENCES_TABLE,
            "suppression_table": Env.SUPPRESSION_TABLE,
            "idempotency_table": Env.IDEMPOTENCY_TABLE,
            "messages_table": Env.MESSAGES_TABLE,
            "configuration_set": Env.CONFIGURATION_SET,
            "from_address": Env.FROM_ADDRESS,
            "unsubscribe_base_url": Env.UNSUBSCRIBE_BASE_URL,
            "unsubscribe_secret_arn": Env.UNSUBSCRIBE_SECRET_ARN,
            "address_key_secret_arn": Env.ADDRESS_KEY_SECRET_ARN,
        }
        missing = [key for key in required.values() if not env.get(key)]
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
        values: dict[str, object] = {name: env[key] for name, key in required.items()}
        if values["lane"] not in LANES:
            raise ConfigurationError(f"{Env.LANE} must be one of {', '.join(LANES)}")
        try:
            numbers = {
                "send_rate_per_worker": float(env.get(Env.SEND_RATE_PER_WORKER, "1")),
                "pacing_max_wait_seconds": float(env.get(Env.PACING_MAX_WAIT_SECONDS, "0.25")),
                "pacing_shards": int(env.get(Env.PACING_SHARDS, "1")),
                "quota_refresh_seconds": float(env.get(Env.QUOTA_REFRESH_SECONDS, "300")),
                "send_concurrency": int(env.get(Env.SEND_CONCURRENCY, "10")),
                "idempotency_ttl_seconds": int(env.get(Env.IDEMPOTENCY_TTL_SECONDS, "86400")),
                "message_log_ttl_days": int(env.get(Env.MESSAGE_LOG_TTL_DAYS, "90")),
                "template_cache_seconds": int(env.get(Env.TEMPLATE_CACHE_SECONDS, "60")),
                "max_backoff_seconds": int(env.get(Env.MAX_BACKOFF_SECONDS, "900")),
            }
        except ValueError as exc:
            raise ConfigurationError(f"a numeric setting is not a number: {exc}") from None
        if not numbers["send_rate_per_worker"] > 0 or numbers["send_concurrency"] < 1:  # `not >` catches NaN
            raise ConfigurationError("send rate and send concurrency must be positive")
        if not 0 <= numbers["pacing_max_wait_seconds"] <= 5:
            raise ConfigurationError(f"{Env.PACING_MAX_WAIT_SECONDS} must be between 0 and 5 seconds")
        if numbers["pacing_shards"] < 1 or not numbers["quota_refresh_seconds"] >= 10:
            raise ConfigurationError(f"{Env.PACING_SHARDS} must be >= 1 and {Env.QUOTA_REFRESH_SECONDS} >= 10")
        if not 1 <= numbers["max_backoff_seconds"] <= 43200:
            raise ConfigurationError(f"{Env.MAX_BACKOFF_SECONDS} must be between 1 and 43200 (the SQS maximum)")
        providers = parse_providers(env.get(Env.PROVIDERS, ""))
        return cls(
            **values,  # type: ignore[arg-type]
            **numbers,  # type: ignore[arg-type]
            postal_address=env.get(Env.POSTAL_ADDRESS, ""),
            rate_limits=parse_rate_limits(env.get(Env.RATE_LIMITS, "")),
            ses_max_send_rate=parse_ceiling(env.get(Env.SES_MAX_SEND_RATE, "")),
            quota_holds=parse_quota_holds(env.get(Env.QUOTA_HOLDS, "")),
            providers=providers,
            failover=parse_failover(env.get(Env.FAILOVER, ""), lane=str(values["lane"]), providers=providers),
            variants=VariantPolicy.from_json(env.get(Env.VARIANTS, "")),
            schedules=ScheduleSettings.from_env(env),
            quiet_hours_categories=parse_quiet_hours_categories(env.get(Env.QUIET_HOURS_CATEGORIES)),
            digest_window_seconds=parse_digest_window(env.get(Env.DIGEST_WINDOW_SECONDS, "")),
        )


def parse_quiet_hours_categories(raw: str | None) -> frozenset[str]:
    """Comma-separated template categories held during quiet hours; unset: marketing and product, empty: none."""
    if raw is None:
        return frozenset(DEFAULT_QUIET_HOURS_CATEGORIES)
    names = {name.strip() for name in raw.split(",") if name.strip()}
    unknown = sorted(names - set(CATEGORIES))
    if unknown:
        raise ConfigurationError(f"{Env.QUIET_HOURS_CATEGORIES}: unknown categories {', '.join(unknown)}")
    return frozenset(names)


def parse_digest_window(raw: str) -> int | None:
    """The digest window override in seconds (1 to 86400); empty: each template's own."""
    if not raw.strip():
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{Env.DIGEST_WINDOW_SECONDS} must be whole seconds, got {raw!r}") from None
    if not 1 <= value <= 86400:
        raise ConfigurationError(f"{Env.DIGEST_WINDOW_SECONDS} must be between 1 and 86400, got {value}")
    return value


def parse_ceiling(raw: str) -> float | None:
    """The optional ceiling on the account's send rate: empty means none."""
    if not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(
            f"{Env.SES_MAX_SEND_RATE} must be a number of emails per second, got {raw!r}"
        ) from None
    if not value > 0:
        raise ConfigurationError(f"{Env.SES_MAX_SEND_RATE} must be positive, got {raw!r}")
    return value


def parse_quota_holds(raw: str) -> dict[str, float]:
    """Parse `{"bulk": 0.9, "standard": 0.97}`: the share of the daily quota from which each lane waits."""
    if not raw.strip():
        return {"bulk": 0.90, "standard": 0.97}
    try:
        data = json.loads(raw)
        holds = {str(lane): float(share) for lane, share in data.items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigurationError(f"{Env.QUOTA_HOLDS} is not valid: {exc}") from None
    bad = [lane for lane, share in holds.items() if lane not in LANES or not 0 < share <= 1]
    if bad:
        raise ConfigurationError(f"{Env.QUOTA_HOLDS}: a lane name and a share in (0, 1] each, not {', '.join(bad)}")
    return holds


def parse_rate_limits(raw: str) -> dict[str, RateLimit]:
    """Parse `{"marketing": {"limit": 2, "window_seconds": 86400}}`; empty means no limits."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
        limits = {
            category: RateLimit(limit=int(spec["limit"]), window_seconds=int(spec["window_seconds"]))
            for category, spec in data.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigurationError(f"{Env.RATE_LIMITS} is not valid: {exc}") from None
    bad = [category for category, limit in limits.items() if limit.limit < 1 or limit.window_seconds < 1]
    if bad:
        raise ConfigurationError(f"{Env.RATE_LIMITS}: limit and window_seconds must be positive for {', '.join(bad)}")
    return limits


@dataclass(frozen=True)
class UnsubscribeSettings:
    """Everything the unsubscribe endpoint reads from its environment.

    It needs no base URL of its own: its pages post back to the URL they were
    opened at, so they work the same behind a custom domain.
    """

    preferences_table: str
    unsubscribe_secret_arn: str
    # Links carry address-derived user keys: the keyring carries old ones forward, the
    # suppression table holds the marker of which key versions are still stored.
    address_key_secret_arn: str
    suppression_table: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> UnsubscribeSettings:
        """Parse the environment; raise ConfigurationError naming every missing key."""
        env = os.environ if environ is None else environ
        required = {
            "preferences_table": Env.PREFERENCES_TABLE,
            "unsubscribe_secret_arn": Env.UNSUBSCRIBE_SECRET_ARN,
            "address_key_secret_arn": Env.ADDRESS_KEY_SECRET_ARN,
            "suppression_table": Env.SUPPRESSION_TABLE,
        }
        missing = [key for key in required.values() if not env.get(key)]
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
        return cls(**{name: env[key] for name, key in required.items()})


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


@dataclass(frozen=True)
class FeedbackSettings:
    """Everything the feedback function reads from its environment."""

    suppression_table: str
    messages_table: str
    address_key_secret_arn: str
    message_log_ttl_days: int = 90
    soft_bounce_threshold: int = 3
    soft_bounce_window_days: int = 7
    soft_bounce_suppression_days: int = 14
    mirror_ses_suppression: bool = False
    # The feedback queue, to bring deferred events back soon; empty: they wait out the visibility timeout.
    queue_url: str = ""
    # Where A/B variants' counters live, and when complaints switch a variant off; empty: not counted.
    idempotency_table: str = ""
    variants: VariantPolicy = field(default_factory=VariantPolicy)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FeedbackSettings:
        """Parse the environment; raise ConfigurationError naming every missing or bad key."""
        env = os.environ if environ is None else environ
        required = {
            "suppression_table": Env.SUPPRESSION_TABLE,
            "messages_table": Env.MESSAGES_TABLE,
            "address_key_secret_arn": Env.ADDRESS_KEY_SECRET_ARN,
        }
        missing = [key for key in required.values() if not env.get(key)]
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
        numbers = {
            "message_log_ttl_days": Env.MESSAGE_LOG_TTL_DAYS,
            "soft_bounce_threshold": Env.SOFT_BOUNCE_THRESHOLD,
            "soft_bounce_window_days": Env.SOFT_BOUNCE_WINDOW_DAYS,
            "soft_bounce_suppression_days": Env.SOFT_BOUNCE_SUPPRESSION_DAYS,
        }
        values: dict[str, int] = {}
        for name, key in numbers.items():
            raw = env.get(key)
            try:
                values[name] = int(raw) if raw else getattr(cls, name)
            except ValueError:
                raise ConfigurationError(f"{key} must be a whole number, got {raw!r}") from None
            if values[name] < 1:
                raise ConfigurationError(f"{key} must be at least 1, got {values[name]}")
        mirror = env.get(Env.MIRROR_SES_SUPPRESSION, "").strip().lower()
        if mirror not in _TRUE | _FALSE:
            raise ConfigurationError(f"{Env.MIRROR_SES_SUPPRESSION} must be true or false, got {mirror!r}")
        return cls(
            suppression_table=env[Env.SUPPRESSION_TABLE],
            messages_table=env[Env.MESSAGES_TABLE],
            address_key_secret_arn=env[Env.ADDRESS_KEY_SECRET_ARN],
            mirror_ses_suppression=mirror in _TRUE,
            queue_url=env.get(Env.QUEUE_URL, ""),
            idempotency_table=env.get(Env.IDEMPOTENCY_TABLE, ""),
            variants=VariantPolicy.from_json(env.get(Env.VARIANTS, "")),
            **values,
        )


@dataclass(frozen=True)
class BreakerSettings:
    """Everything the reputation circuit breaker reads from its environment."""

    lane: str
    mapping_id: str
    alarm_names: frozenset[str]
    auto_resume: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BreakerSettings:
        """Parse the environment; raise ConfigurationError naming every missing or bad key."""
        env = os.environ if environ is None else environ
        required = (Env.LANE, Env.BREAKER_MAPPING_ID, Env.BREAKER_ALARMS)
        missing = [key for key in required if not env.get(key, "").strip()]
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
        if env[Env.LANE] not in LANES:
            raise ConfigurationError(f"{Env.LANE} must be one of {', '.join(LANES)}")
        alarms = frozenset(name.strip() for name in env[Env.BREAKER_ALARMS].split(",") if name.strip())
        if not alarms:
            raise ConfigurationError(f"{Env.BREAKER_ALARMS} names no alarm")
        auto_resume = env.get(Env.BREAKER_AUTO_RESUME, "").strip().lower()
        if auto_resume not in _TRUE | _FALSE:
            raise ConfigurationError(f"{Env.BREAKER_AUTO_RESUME} must be true or false, got {auto_resume!r}")
        return cls(
            lane=env[Env.LANE],
            mapping_id=env[Env.BREAKER_MAPPING_ID].strip(),
            alarm_names=alarms,
            auto_resume=auto_resume in _TRUE,
        )


@dataclass(frozen=True)
class ApiSettings:
    """Everything the HTTPS API's function reads from its environment."""

    messages_table: str
    # Lookups by recipient hash the address with the keyring; the suppression table's marker
    # says which older key versions items may still be stored under.
    address_key_secret_arn: str
    suppression_table: str
    # Cancels (scheduled sends): the dedupe claims a cancel takes, and the group whose schedules it deletes.
    idempotency_table: str = ""
    schedule_group: str = ""
    # Preferences (GET|PATCH /v1/users/{user_id}/preferences): the table, which also keeps their audit trail.
    preferences_table: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        """Parse the environment; raise ConfigurationError naming every missing key."""
        env = os.environ if environ is None else environ
        required = {
            "messages_table": Env.MESSAGES_TABLE,
            "address_key_secret_arn": Env.ADDRESS_KEY_SECRET_ARN,
            "suppression_table": Env.SUPPRESSION_TABLE,
        }
        missing = [key for key in required.values() if not env.get(key)]
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
        return cls(
            **{name: env[key] for name, key in required.items()},
            idempotency_table=env.get(Env.IDEMPOTENCY_TABLE, ""),
            schedule_group=env.get(Env.SCHEDULE_GROUP, ""),
            preferences_table=env.get(Env.PREFERENCES_TABLE, ""),
        )


@dataclass(frozen=True)
class SubmissionSettings:
    """What the HTTPS API's function reads to accept producers' requests (POST /v1/messages)."""

    # Lane -> queue URL: where accepted requests go, routed as the SDK routes them.
    lane_queue_urls: dict[str, str]
    # Templates' priorities are read from their bundles (cached like the workers' templates).
    templates_bucket: str
    # API key id -> producer.
    producers_table: str
    template_cache_seconds: int = 60

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SubmissionSettings:
        """Parse the environment; raise ConfigurationError naming every missing or bad key."""
        env = os.environ if environ is None else environ
        keys = (Env.LANE_QUEUE_URLS, Env.TEMPLATES_BUCKET, Env.PRODUCERS_TABLE)
        missing = [key for key in keys if not env.get(key)]
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
        try:
            queues = json.loads(env[Env.LANE_QUEUE_URLS])
        except ValueError:
            raise ConfigurationError(f"{Env.LANE_QUEUE_URLS} is not JSON") from None
        if not isinstance(queues, dict) or set(queues) != set(LANES) or not all(queues.values()):
            raise ConfigurationError(f"{Env.LANE_QUEUE_URLS} must map every lane ({', '.join(LANES)}) to a queue URL")
        try:
            cache_seconds = int(env.get(Env.TEMPLATE_CACHE_SECONDS, "60"))
        except ValueError:
            raise ConfigurationError(f"{Env.TEMPLATE_CACHE_SECONDS} is not a whole number of seconds") from None
        return cls(
            lane_queue_urls={str(lane): str(url) for lane, url in queues.items()},
            templates_bucket=env[Env.TEMPLATES_BUCKET],
            producers_table=env[Env.PRODUCERS_TABLE],
            template_cache_seconds=cache_seconds,
        )


# -- secondary providers and failover -------------------------------------------

# Hosts an unencrypted SMTP relay or a plain-HTTP API base URL may point at: this machine only
# (the local stack and the tests). Anything else must be encrypted.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
SMTP_TLS_MODES = ("starttls", "tls", "none")
MAILGUN_BASE_URLS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}
SENDGRID_BASE_URL = "https://api.sendgrid.com"


@dataclass(frozen=True)
class SesRegionSettings:
    """SES in another region: an identity verified there and a configuration set of its own."""

    region: str
    configuration_set: str


@dataclass(frozen=True)
class SmtpSettings:
    """An SMTP relay: STARTTLS on 587 or implicit TLS on 465; AUTH with the secret's username and password."""

    host: str
    port: int = 587
    tls: str = "starttls"
    timeout_seconds: float = 10.0
    # Connections kept open per worker (the send stage calls the relay from several threads).
    pool_size: int = 4


@dataclass(frozen=True)
class SendGridSettings:
    """SendGrid's v3 Mail Send API; the secret holds `api_key` and the webhook's `webhook_public_key`."""

    base_url: str = SENDGRID_BASE_URL
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class MailgunSettings:
    """Mailgun's messages API for one sending domain; the secret holds `api_key` and `webhook_signing_key`."""

    domain: str
    base_url: str = MAILGUN_BASE_URLS["us"]
    timeout_seconds: float = 10.0


ProviderOptions = SesRegionSettings | SmtpSettings | SendGridSettings | MailgunSettings


@dataclass(frozen=True)
class ProviderSettings:
    """One secondary provider as configured in context: what it is and where its secret lives, never the secret."""

    name: str
    kind: str
    options: ProviderOptions
    secret_arn: str = ""
    # Emails per second one worker may hand this provider (it is paced like SES).
    send_rate: float = 1.0


@dataclass(frozen=True)
class FailoverSettings:
    """A lane's failover policy and the thresholds of its provider breaker.

    The breaker opens after `failure_threshold` SES outage failures within
    `window_seconds` (at once on an account-level refusal) and probes SES again
    after `cooldown_seconds` (`account_cooldown_seconds` for an account-level
    refusal, which does not heal in seconds). While it is open, the lane's mail
    goes through `provider` when `enabled`, else it waits in the queue.
    """

    enabled: bool
    provider: str
    failure_threshold: int = 5
    window_seconds: int = 30
    cooldown_seconds: int = 30
    account_cooldown_seconds: int = 300
    # How long a worker trusts the breaker state it read before reading it again.
    refresh_seconds: float = 2.0


def _object(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ConfigurationError(f"{where} must be a JSON object")
    return value


def _text(data: Mapping[str, object], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{where}: {key} must be a non-empty string")
    return value.strip()


def _number(data: Mapping[str, object], key: str, where: str, default: float, *, minimum: float = 0.0) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > minimum:  # `not >` catches NaN
        raise ConfigurationError(f"{where}: {key} must be a number above {minimum:g}, got {value!r}")
    return float(value)


def _whole(data: Mapping[str, object], key: str, where: str, default: int, *, minimum: int = 1) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{where}: {key} must be a whole number of at least {minimum}, got {value!r}")
    return value


def _base_url(url: str, where: str) -> str:
    parts = urlsplit(url)
    local = parts.hostname in LOOPBACK_HOSTS
    if parts.scheme not in ("https", "http") or not parts.hostname or (parts.scheme == "http" and not local):
        raise ConfigurationError(f"{where}: base_url must be an https URL (plain http only on loopback), got {url!r}")
    return url.rstrip("/")


def _provider_options(kind: str, raw: Mapping[str, object], where: str) -> ProviderOptions:
    if kind == PROVIDER_KIND_SES:
        return SesRegionSettings(
            region=_text(raw, "region", where), configuration_set=_text(raw, "configuration_set", where)
        )
    timeout = _number(raw, "timeout_seconds", where, 10.0)
    if kind == PROVIDER_KIND_SMTP:
        host, tls = _text(raw, "host", where), raw.get("tls", "starttls")
        if tls not in SMTP_TLS_MODES:
            raise ConfigurationError(f"{where}: tls must be one of {', '.join(SMTP_TLS_MODES)}, got {tls!r}")
        if tls == "none" and host not in LOOPBACK_HOSTS:
            raise ConfigurationError(f"{where}: an SMTP relay without TLS is allowed on loopback only")
        port = _whole(raw, "port", where, 465 if tls == "tls" else 587)
        if port > 65535:
            raise ConfigurationError(f"{where}: port must be at most 65535")
        return SmtpSettings(
            host=host, port=port, tls=str(tls), timeout_seconds=timeout, pool_size=_whole(raw, "pool_size", where, 4)
        )
    if kind == PROVIDER_KIND_SENDGRID:
        base = _text(raw, "base_url", where, SENDGRID_BASE_URL)
        return SendGridSettings(base_url=_base_url(base, where), timeout_seconds=timeout)
    region = raw.get("region", "us")
    if region not in MAILGUN_BASE_URLS:
        raise ConfigurationError(f"{where}: region must be one of {', '.join(MAILGUN_BASE_URLS)}, got {region!r}")
    domain = _text(raw, "domain", where)
    if "/" in domain or "%" in domain:
        raise ConfigurationError(f"{where}: domain must be a bare domain name, got {domain!r}")
    base = _text(raw, "base_url", where, MAILGUN_BASE_URLS[str(region)])
    return MailgunSettings(domain=domain, base_url=_base_url(base, where), timeout_seconds=timeout)


def parse_providers(raw: str) -> tuple[ProviderSettings, ...]:
    """Parse the providers JSON list; empty means none (SES alone). Raise ConfigurationError naming the fault."""
    if not raw.strip():
        return ()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{Env.PROVIDERS} is not JSON: {exc}") from None
    if not isinstance(data, list):
        raise ConfigurationError(f"{Env.PROVIDERS} must be a JSON list of providers")
    providers: list[ProviderSettings] = []
    for index, item in enumerate(data):
        where = f"{Env.PROVIDERS}[{index}]"
        entry = _object(item, where)
        name = _text(entry, "name", where)
        where = f"{Env.PROVIDERS} provider {name!r}"
        if name == PROVIDER_SES or not all(ch.isalnum() or ch in "-_" for ch in name) or len(name) > 40:
            raise ConfigurationError(f"{where}: a name is up to 40 letters, digits, - or _, and not {PROVIDER_SES!r}")
        kind = entry.get("kind")
        if kind not in PROVIDER_KINDS:
            raise ConfigurationError(f"{where}: kind must be one of {', '.join(PROVIDER_KINDS)}, got {kind!r}")
        secret_arn = entry.get("secret_arn", "")
        if not isinstance(secret_arn, str) or (kind != PROVIDER_KIND_SES and not secret_arn.startswith("arn:")):
            raise ConfigurationError(f"{where}: secret_arn must be the ARN of its Secrets Manager secret")
        options = _provider_options(str(kind), _object(entry.get("settings", {}), f"{where} settings"), where)
        send_rate = _number(entry, "send_rate", where, 1.0)
        providers.append(ProviderSettings(name, str(kind), options, secret_arn, send_rate))
    names = [provider.name for provider in providers]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"{Env.PROVIDERS}: provider names must be unique, got {', '.join(names)}")
    return tuple(providers)


def parse_failover(raw: str, *, lane: str, providers: tuple[ProviderSettings, ...]) -> FailoverSettings | None:
    """The lane's failover policy: None without providers; by default on for critical and standard, off for bulk."""
    if not providers:
        return None
    data: dict[str, object] = {}
    if raw.strip():
        try:
            data = _object(json.loads(raw), Env.FAILOVER)
        except ValueError as exc:
            raise ConfigurationError(f"{Env.FAILOVER} is not JSON: {exc}") from None
    enabled = data.get("enabled", lane in FAILOVER_LANES)
    if not isinstance(enabled, bool):
        raise ConfigurationError(f"{Env.FAILOVER}: enabled must be true or false, got {enabled!r}")
    provider = _text(data, "provider", Env.FAILOVER, providers[0].name)
    if provider not in {p.name for p in providers}:
        raise ConfigurationError(f"{Env.FAILOVER}: provider {provider!r} is not among {Env.PROVIDERS}")
    where = Env.FAILOVER
    return FailoverSettings(
        enabled=enabled,
        provider=provider,
        failure_threshold=_whole(data, "failure_threshold", where, 5),
        window_seconds=_whole(data, "window_seconds", where, 30),
        cooldown_seconds=_whole(data, "cooldown_seconds", where, 30),
        account_cooldown_seconds=_whole(data, "account_cooldown_seconds", where, 300),
        refresh_seconds=_number(data, "refresh_seconds", where, 2.0),
    )


@dataclass(frozen=True)
class ProviderWebhookSettings:
    """Everything the provider webhook function reads: the feedback function's settings, providers, two more tables.

    The idempotency table keeps the webhook's replay guard (one item per
    provider event); the preferences table takes provider unsubscribes.
    """

    feedback: FeedbackSettings
    providers: tuple[ProviderSettings, ...]
    idempotency_table: str
    preferences_table: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProviderWebhookSettings:
        """Parse the environment; raise ConfigurationError naming every missing or bad key."""
        env = os.environ if environ is None else environ
        missing = [key for key in (Env.IDEMPOTENCY_TABLE, Env.PREFERENCES_TABLE) if not env.get(key)]
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
        providers = parse_providers(env.get(Env.PROVIDERS, ""))
        if not any(provider.kind in WEBHOOK_PROVIDER_KINDS for provider in providers):
            raise ConfigurationError(f"{Env.PROVIDERS} names no provider that posts webhooks (sendgrid, mailgun)")
        return cls(
            feedback=FeedbackSettings.from_env(env),
            providers=providers,
            idempotency_table=env[Env.IDEMPOTENCY_TABLE],
            preferences_table=env[Env.PREFERENCES_TABLE],
        )


@dataclass(frozen=True)
class BridgeSettings:
    """Everything the ingest bridge (Kafka and RabbitMQ into the lanes) reads from its environment."""

    # Lane name -> queue URL, for every lane.
    queue_urls: dict[str, str]
    # Template bundles: each template's default priority routes requests that name none.
    templates_bucket: str
    # Records that are not valid requests are logged `rejected` here.
    messages_table: str
    message_log_ttl_days: int = 90
    template_cache_seconds: int = 60

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BridgeSettings:
        """Parse the environment; raise ConfigurationError naming every missing or bad key."""
        env = os.environ if environ is None else environ
        queue_keys = {lane: Env.lane_queue_url(lane) for lane in LANES}
        required = [*queue_keys.values(), Env.TEMPLATES_BUCKET, Env.MESSAGES_TABLE]
        missing = [key for key in required if not env.get(key, "").strip()]
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
        numbers: dict[str, int] = {}
        for name, key, default in (
            ("message_log_ttl_days", Env.MESSAGE_LOG_TTL_DAYS, 90),
            ("template_cache_seconds", Env.TEMPLATE_CACHE_SECONDS, 60),
        ):
            raw = env.get(key) or str(default)
            try:
                numbers[name] = int(raw)
            except ValueError:
                raise ConfigurationError(f"{key} must be a whole number, got {raw!r}") from None
            if numbers[name] < 0:
                raise ConfigurationError(f"{key} must not be negative, got {raw!r}")
        return cls(
            queue_urls={lane: env[key].strip() for lane, key in queue_keys.items()},
            templates_bucket=env[Env.TEMPLATES_BUCKET],
            messages_table=env[Env.MESSAGES_TABLE],
            **numbers,
        )
