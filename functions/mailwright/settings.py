"""The worker's settings, parsed once from its environment at cold start."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from mailwright.constants import LANES, Env
from mailwright.errors import ConfigurationError


@dataclass(frozen=True)
class RateLimit:
    """At most `limit` emails of one category to one user per `window_seconds`."""

    limit: int
    window_seconds: int


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
        return cls(
            **values,  # type: ignore[arg-type]
            **numbers,  # type: ignore[arg-type]
            postal_address=env.get(Env.POSTAL_ADDRESS, ""),
            rate_limits=parse_rate_limits(env.get(Env.RATE_LIMITS, "")),
            ses_max_send_rate=parse_ceiling(env.get(Env.SES_MAX_SEND_RATE, "")),
            quota_holds=parse_quota_holds(env.get(Env.QUOTA_HOLDS, "")),
        )


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
