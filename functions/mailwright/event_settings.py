"""Settings of the functions that tell producers what happened, parsed once from their environment.

The events publisher (the message log's stream to the bus), the dead-letter
function (EmailFailed, then the parked queue) and the webhook sender. The CDK
app and the local stack write these variables (infra/hearing.py); each
`from_env` raises ConfigurationError naming every missing or bad key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailwright.constants import Env
from mailwright.errors import ConfigurationError
from mailwright.outcome_events import DETAIL_TYPES

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _required(env: Mapping[str, str], *keys: str) -> None:
    missing = [key for key in keys if not env.get(key, "").strip()]
    if missing:
        raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")


def _json(env: Mapping[str, str], key: str) -> Any:
    try:
        return json.loads(env[key])
    except ValueError as exc:
        raise ConfigurationError(f"{key} is not JSON: {exc}") from None


def parse_detail_types(raw: str, *, key: str = Env.OUTCOME_EVENTS) -> frozenset[str]:
    """A comma-separated list of detail-types (empty: none); ConfigurationError names an unknown one."""
    types = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = sorted(types - set(DETAIL_TYPES))
    if unknown:
        raise ConfigurationError(f"{key}: unknown detail-types {', '.join(unknown)}")
    return types


@dataclass(frozen=True)
class PublisherSettings:
    """The events publisher: which bus, and which detail-types go on it."""

    event_bus_name: str
    detail_types: frozenset[str]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PublisherSettings:
        """Parse the environment."""
        env = _environ(environ)
        _required(env, Env.EVENT_BUS_NAME)
        return cls(
            event_bus_name=env[Env.EVENT_BUS_NAME].strip(),
            detail_types=parse_detail_types(env.get(Env.OUTCOME_EVENTS, "")),
        )


@dataclass(frozen=True)
class DeadLetterQueue:
    """A dead-letter queue the dead-letter function drains: the lane it serves and where it parks messages."""

    arn: str
    lane: str
    # The lane's parked queue: what `mailwright dlq list|redrive` reads. The ingest DLQ parks by priority.
    parked_url: str


@dataclass(frozen=True)
class DeadLetterSettings:
    """The dead-letter function: the message log, and each DLQ it drains (by ARN)."""

    messages_table: str
    queues: dict[str, DeadLetterQueue]
    # Parked queue URL by lane, for requests from the ingest DLQ (they never reached a lane).
    parked_by_lane: dict[str, str]
    message_log_ttl_days: int = 90

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DeadLetterSettings:
        """Parse the environment: DEAD_LETTER_QUEUES is `[{"arn", "lane", "parked_url"}, ...]`."""
        env = _environ(environ)
        _required(env, Env.MESSAGES_TABLE, Env.DEAD_LETTER_QUEUES)
        raw = _json(env, Env.DEAD_LETTER_QUEUES)
        try:
            queues = [
                DeadLetterQueue(arn=str(q["arn"]), lane=str(q["lane"]), parked_url=str(q["parked_url"])) for q in raw
            ]
        except (TypeError, KeyError) as exc:
            raise ConfigurationError(
                f"{Env.DEAD_LETTER_QUEUES}: each entry needs arn, lane, parked_url ({exc})"
            ) from None
        ttl = env.get(Env.MESSAGE_LOG_TTL_DAYS, "90")
        if not ttl.isdigit() or int(ttl) < 1:
            raise ConfigurationError(f"{Env.MESSAGE_LOG_TTL_DAYS} must be a whole number >= 1, got {ttl!r}")
        return cls(
            messages_table=env[Env.MESSAGES_TABLE],
            queues={q.arn: q for q in queues},
            parked_by_lane={q.lane: q.parked_url for q in queues if q.lane != "ingest"},
            message_log_ttl_days=int(ttl),
        )


@dataclass(frozen=True)
class WebhookEndpoint:
    """One webhook endpoint as the sender knows it."""

    name: str
    url: str
    queue_arn: str
    queue_url: str
    secret_arn: str


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed delivery is attempted again: exponential backoff, for at least `window_seconds`.

    Attempt n (n >= 1 failed so far) waits `base_seconds * 2**(n-1)` (at most
    `cap_seconds`, the longest SQS keeps a message invisible), +-`jitter`. A
    delivery first tried more than `window_seconds` ago is archived instead; an
    endpoint with no successful delivery for `suspend_after_seconds` is suspended.
    """

    base_seconds: float = 30.0
    cap_seconds: float = 43200.0
    window_seconds: float = 86400.0
    suspend_after_seconds: float = 86400.0
    jitter: float = 0.2
    # Per attempt: connecting, then each read of the answer.
    connect_timeout_seconds: float = 3.0
    read_timeout_seconds: float = 5.0

    def to_json(self) -> str:
        """The form the environment carries."""
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> RetryPolicy:
        """Parse `to_json`'s form; unknown keys or non-positive numbers raise ConfigurationError."""
        try:
            data = json.loads(raw) if raw.strip() else {}
            policy = cls(**{key: float(value) for key, value in data.items()})
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"{Env.WEBHOOK_RETRY} is not valid: {exc}") from None
        numbers = [v for k, v in policy.__dict__.items() if k != "jitter"]
        if not all(number > 0 for number in numbers) or not 0 <= policy.jitter < 1:
            raise ConfigurationError(f"{Env.WEBHOOK_RETRY}: every duration must be positive and jitter in [0, 1)")
        if policy.cap_seconds > 43200:
            raise ConfigurationError(f"{Env.WEBHOOK_RETRY}: cap_seconds is at most 43200 (the SQS maximum)")
        return policy


@dataclass(frozen=True)
class WebhookSettings:
    """The webhook sender: its endpoints (by queue ARN), their state table and archive, the retry policy."""

    endpoints: dict[str, WebhookEndpoint]
    state_table: str
    archive_bucket: str
    retry: RetryPolicy
    # The local stack only: http:// and loopback addresses are allowed (never in a deployed stack).
    allow_loopback: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebhookSettings:
        """Parse the environment: WEBHOOK_ENDPOINTS is `[{"name", "url", "queue_arn", "queue_url", "secret_arn"}]`."""
        env = _environ(environ)
        _required(env, Env.WEBHOOK_ENDPOINTS, Env.WEBHOOK_STATE_TABLE, Env.WEBHOOK_ARCHIVE_BUCKET)
        raw = _json(env, Env.WEBHOOK_ENDPOINTS)
        try:
            endpoints = [
                WebhookEndpoint(
                    name=str(e["name"]),
                    url=str(e["url"]),
                    queue_arn=str(e["queue_arn"]),
                    queue_url=str(e["queue_url"]),
                    secret_arn=str(e["secret_arn"]),
                )
                for e in raw
            ]
        except (TypeError, KeyError) as exc:
            raise ConfigurationError(
                f"{Env.WEBHOOK_ENDPOINTS}: each entry needs name, url, queue_arn, queue_url, secret_arn ({exc})"
            ) from None
        loopback = env.get(Env.WEBHOOK_ALLOW_LOOPBACK, "").strip().lower()
        if loopback not in _TRUE | _FALSE:
            raise ConfigurationError(f"{Env.WEBHOOK_ALLOW_LOOPBACK} must be true or false, got {loopback!r}")
        return cls(
            endpoints={e.queue_arn: e for e in endpoints},
            state_table=env[Env.WEBHOOK_STATE_TABLE],
            archive_bucket=env[Env.WEBHOOK_ARCHIVE_BUCKET],
            retry=RetryPolicy.from_json(env.get(Env.WEBHOOK_RETRY, "")),
            allow_loopback=loopback in _TRUE,
        )
