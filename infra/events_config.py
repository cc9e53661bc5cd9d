"""Settings of outcome events and webhooks (`outcome_events`, `event_consumers`, `webhooks`, `webhook_archive_days`).

Pure Python, like infra.config (which calls `parse_events_config`): the CDK
app and the local stack read the same settings and build the functions'
environments with the same functions below.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mailwright.constants import (
    DEFAULT_OUTCOME_EVENTS,
    METRICS_NAMESPACE,
    OUTCOME_DETAIL_TYPES,
    OUTCOME_EVENT_SOURCE,
    PRODUCER_PATTERN,
    SERVICE_NAME,
    Env,
)

CONTEXT_KEY = "mailwright"
# Endpoint names become parts of resource names, alarm names and archive keys.
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
_ACCOUNT = re.compile(r"^\d{12}$")
_METADATA_TEXT = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_PRODUCER = re.compile(PRODUCER_PATTERN)
MAX_WEBHOOKS = 20
MAX_WEBHOOK_CONCURRENCY = 20
DEFAULT_WEBHOOK_CONCURRENCY = 2
DEFAULT_ARCHIVE_DAYS = 365

# The events publisher reads the message log's stream: up to 100 changes per invocation, gathered for up
# to a second. A batch EventBridge keeps refusing is retried (bisected) this many times, for at most the
# stream's retention, then named in the publisher's DLQ; the outcomes stay in the log regardless.
PUBLISHER_BATCH_SIZE = 100
PUBLISHER_BATCHING_WINDOW_SECONDS = 1
PUBLISHER_RETRY_ATTEMPTS = 50
PUBLISHER_MAX_RECORD_AGE_SECONDS = 86400
PUBLISHER_TIMEOUT_SECONDS = 60
PUBLISHER_MEMORY_MB = 256
# A lane's DLQ redrives to its parked queue after this many receives (by the dead-letter function, every 30 s
# while it fails on a message): a backstop, and what makes the parked queue a source SQS's move task accepts.
PARKING_MAX_RECEIVE_COUNT = 100
# The dead-letter function: its timeout stays under the DLQs' visibility timeout (30 s, SQS's default).
DEAD_LETTER_TIMEOUT_SECONDS = 20
DEAD_LETTER_MEMORY_MB = 256
DEAD_LETTER_BATCH_SIZE = 10
# The webhook sender: ten deliveries per invocation, attempted at once, each with short timeouts.
WEBHOOK_BATCH_SIZE = 10
WEBHOOK_TIMEOUT_SECONDS = 60
WEBHOOK_MEMORY_MB = 256
WEBHOOK_VISIBILITY_TIMEOUT_SECONDS = 6 * WEBHOOK_TIMEOUT_SECONDS
# Attempts over the 24-hour window are about thirteen; the rest is room for invocations that crashed.
WEBHOOK_MAX_RECEIVE_COUNT = 50
# How long SQS keeps an endpoint's deliveries (its maximum); past the retry window they are archived anyway.
WEBHOOK_QUEUE_RETENTION_DAYS = 14


class EventsConfigError(ValueError):
    """A setting of outcome events or webhooks is bad (infra.config raises it as its ConfigError)."""


@dataclass(frozen=True)
class WebhookConfig:
    """One webhook endpoint: where, which detail-types, and whose mail (producers, a metadata filter)."""

    name: str
    url: str
    detail_types: tuple[str, ...]
    # metadata key -> the values that match (any of them); empty: every request's events.
    metadata: dict[str, tuple[str, ...]] = field(default_factory=dict)
    max_concurrency: int = DEFAULT_WEBHOOK_CONCURRENCY
    # The producers (HTTPS API key names, or the `producer` a request names) whose events match; empty: any.
    producers: tuple[str, ...] = ()

    def event_pattern(self) -> dict[str, Any]:
        """The EventBridge pattern of this endpoint's rule (the deployed and the local stack use the same)."""
        return event_pattern(self.detail_types, self.metadata, self.producers)


def event_pattern(
    detail_types: tuple[str, ...], metadata: dict[str, tuple[str, ...]], producers: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A rule pattern for mailwright outcome events of these detail-types whose producer and metadata match."""
    pattern: dict[str, Any] = {"source": [OUTCOME_EVENT_SOURCE], "detail-type": list(detail_types)}
    detail: dict[str, Any] = {}
    if producers:
        detail["producer"] = list(producers)
    if metadata:
        detail["metadata"] = {key: list(values) for key, values in sorted(metadata.items())}
    if detail:
        pattern["detail"] = detail
    return pattern


@dataclass(frozen=True)
class EventsConfig:
    """What the stack tells producers, and who may listen."""

    outcome_events: tuple[str, ...] = DEFAULT_OUTCOME_EVENTS
    # Accounts allowed to create rules on the bus (cross-account subscription).
    event_consumers: tuple[str, ...] = ()
    webhooks: tuple[WebhookConfig, ...] = ()
    webhook_archive_days: int = DEFAULT_ARCHIVE_DAYS


KNOWN_KEYS = frozenset({"outcome_events", "event_consumers", "webhooks", "webhook_archive_days"})


def parse_events_config(raw: dict[str, Any]) -> EventsConfig:
    """Validate the events and webhooks settings of the `mailwright` context value; EventsConfigError names the key."""
    events = _outcome_events(raw.get("outcome_events"))
    consumers = raw.get("event_consumers") or []
    if not isinstance(consumers, list) or not all(isinstance(c, str) and _ACCOUNT.match(c) for c in consumers):
        raise EventsConfigError(f"{CONTEXT_KEY}.event_consumers must be a list of 12-digit AWS account ids")
    days = raw.get("webhook_archive_days", DEFAULT_ARCHIVE_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
        raise EventsConfigError(f"{CONTEXT_KEY}.webhook_archive_days must be a whole number of days, 1 to 3650")
    hooks_raw = raw.get("webhooks") or []
    if not isinstance(hooks_raw, list):
        raise EventsConfigError(f"{CONTEXT_KEY}.webhooks must be a list of endpoints")
    if len(hooks_raw) > MAX_WEBHOOKS:
        raise EventsConfigError(f"{CONTEXT_KEY}.webhooks: at most {MAX_WEBHOOKS} endpoints")
    hooks = tuple(_webhook(index, value, events) for index, value in enumerate(hooks_raw))
    names = [hook.name for hook in hooks]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise EventsConfigError(f"{CONTEXT_KEY}.webhooks: endpoint names must be unique ({', '.join(duplicates)})")
    return EventsConfig(
        outcome_events=events,
        event_consumers=tuple(dict.fromkeys(consumers)),
        webhooks=hooks,
        webhook_archive_days=days,
    )


def _outcome_events(value: Any) -> tuple[str, ...]:
    where = f"{CONTEXT_KEY}.outcome_events"
    if value is None:
        return DEFAULT_OUTCOME_EVENTS
    if value == "all":
        return OUTCOME_DETAIL_TYPES
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise EventsConfigError(f'{where} must be a list of detail-types (or "all")')
    unknown = [v for v in value if v not in OUTCOME_DETAIL_TYPES]
    if unknown:
        raise EventsConfigError(f"{where}: unknown detail-types {unknown}; known: {', '.join(OUTCOME_DETAIL_TYPES)}")
    return tuple(dict.fromkeys(value))


def _webhook(index: int, raw: Any, published: tuple[str, ...]) -> WebhookConfig:
    where = f"{CONTEXT_KEY}.webhooks[{index}]"
    if not isinstance(raw, dict):
        raise EventsConfigError(f"{where} must be an object with name, url and detail_types")
    unknown = set(raw) - {"name", "url", "detail_types", "metadata", "producers", "max_concurrency"}
    if unknown:
        raise EventsConfigError(f"{where}: unknown settings {sorted(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise EventsConfigError(f"{where}.name must be 1-32 lower-case letters, digits and dashes, got {name!r}")
    where = f"{CONTEXT_KEY}.webhooks[{name}]"
    url = raw.get("url")
    if not isinstance(url, str):
        raise EventsConfigError(f"{where}.url must be an https URL")
    check_endpoint_url(url, where=f"{where}.url")
    types = raw.get("detail_types", list(published))
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        raise EventsConfigError(f"{where}.detail_types must be a non-empty list of detail-types")
    not_published = [t for t in types if t not in published]
    if not_published:
        raise EventsConfigError(
            f"{where}.detail_types: {', '.join(not_published)} not published; add to {CONTEXT_KEY}.outcome_events "
            "(each published type costs $1 per million events)"
        )
    metadata_raw = raw.get("metadata") or {}
    if not isinstance(metadata_raw, dict):
        raise EventsConfigError(f'{where}.metadata must be an object, e.g. {{"tenant": "acme"}}')
    metadata: dict[str, tuple[str, ...]] = {}
    for key, value in metadata_raw.items():
        values = value if isinstance(value, list) else [value]
        if (
            not _METADATA_TEXT.match(str(key))
            or not values
            or not all(isinstance(v, str) and _METADATA_TEXT.match(v) for v in values)
        ):
            raise EventsConfigError(
                f"{where}.metadata.{key}: keys and values are metadata tags (letters, digits, _ and -), "
                "a value or a list of values"
            )
        metadata[str(key)] = tuple(values)
    producers = raw.get("producers") or []
    if not isinstance(producers, list) or not all(isinstance(p, str) and _PRODUCER.match(p) for p in producers):
        raise EventsConfigError(
            f"{where}.producers must be a list of producer names (lower-case letters, digits, _ and -), "
            'e.g. ["billing"]'
        )
    concurrency = raw.get("max_concurrency", DEFAULT_WEBHOOK_CONCURRENCY)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise EventsConfigError(f"{where}.max_concurrency must be a whole number")
    if not 2 <= concurrency <= MAX_WEBHOOK_CONCURRENCY:
        raise EventsConfigError(f"{where}.max_concurrency is 2 to {MAX_WEBHOOK_CONCURRENCY} (Lambda's minimum is 2)")
    return WebhookConfig(
        name=name,
        url=url,
        detail_types=tuple(dict.fromkeys(types)),
        metadata=metadata,
        max_concurrency=concurrency,
        producers=tuple(dict.fromkeys(producers)),
    )


def check_endpoint_url(url: str, *, where: str, allow_loopback: bool = False) -> None:
    """An endpoint URL a deployed stack may call: https, a host, no credentials, no literal non-public address.

    Host names are checked again at every delivery, against the addresses they resolve to.
    """
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise EventsConfigError(f"{where} is not a URL: {exc}") from None
    host = (parts.hostname or "").rstrip(".").lower()
    loopback_name = host == "localhost" or host.endswith(".localhost")
    literal = None
    try:
        literal = ipaddress.ip_address(host)
        if isinstance(literal, ipaddress.IPv6Address) and literal.ipv4_mapped is not None:
            literal = literal.ipv4_mapped
    except ValueError:
        pass
    loopback = loopback_name or (literal is not None and literal.is_loopback)
    if not host or parts.username or parts.password:
        raise EventsConfigError(f"{where} needs a host and may not carry credentials")
    if parts.scheme != "https" and not (allow_loopback and loopback and parts.scheme == "http"):
        raise EventsConfigError(f"{where} must start with https:// ({url!r})")
    if loopback and not allow_loopback:
        raise EventsConfigError(f"{where}: {host} is a loopback address; webhooks go to public endpoints")
    if literal is not None and not loopback and (not literal.is_global or literal.is_multicast):
        raise EventsConfigError(f"{where}: {host} is not a public address (no server-side request forgery)")


# -- the functions' environments ---------------------------------------------------------------------------------


def publisher_environment(*, bus_name: str, detail_types: tuple[str, ...]) -> dict[str, str]:
    """The events publisher's environment (mailwright.event_settings.PublisherSettings)."""
    return {
        # Where outcome events go: the stack's own bus, the one producers put requests on.
        Env.EVENT_BUS_NAME: bus_name,
        # Which detail-types are put on it (outcome_events): the others are derived and dropped.
        Env.OUTCOME_EVENTS: ",".join(detail_types),
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


@dataclass(frozen=True)
class DeadLetterSource:
    """A DLQ the dead-letter function drains: its ARN, the lane it serves (or `ingest`), the parked queue."""

    arn: str
    lane: str
    parked_url: str


def dead_letter_environment(
    *, messages_table: str, message_log_ttl_days: int, sources: list[DeadLetterSource]
) -> dict[str, str]:
    """The dead-letter function's environment (mailwright.event_settings.DeadLetterSettings)."""
    return {
        # The failure is recorded on the request's item, which the stream turns into EmailFailed.
        Env.MESSAGES_TABLE: messages_table,
        # Items it creates expire with the rest of the log.
        Env.MESSAGE_LOG_TTL_DAYS: str(message_log_ttl_days),
        # Each DLQ it drains, with its lane and the parked queue its messages move to.
        Env.DEAD_LETTER_QUEUES: json.dumps(
            [{"arn": s.arn, "lane": s.lane, "parked_url": s.parked_url} for s in sources], separators=(",", ":")
        ),
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


@dataclass(frozen=True)
class WebhookTarget:
    """A webhook endpoint as deployed: its URL, queue and secret."""

    name: str
    url: str
    queue_arn: str
    queue_url: str
    secret_arn: str


def webhook_environment(
    *,
    targets: list[WebhookTarget],
    state_table: str,
    archive_bucket: str,
    retry_json: str = "",
    allow_loopback: bool = False,
) -> dict[str, str]:
    """The webhook sender's environment (mailwright.event_settings.WebhookSettings)."""
    environment = {
        # Each endpoint: the queue its rule fills (the sender tells them apart by it) and its signing secret.
        Env.WEBHOOK_ENDPOINTS: json.dumps(
            [
                {
                    "name": t.name,
                    "url": t.url,
                    "queue_arn": t.queue_arn,
                    "queue_url": t.queue_url,
                    "secret_arn": t.secret_arn,
                }
                for t in targets
            ],
            separators=(",", ":"),
        ),
        # Suspended or failing endpoints, and the last test delivery's result.
        Env.WEBHOOK_STATE_TABLE: state_table,
        # Deliveries that will not be attempted again, kept for `mailwright webhooks replay`.
        Env.WEBHOOK_ARCHIVE_BUCKET: archive_bucket,
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    if retry_json:
        # The local stack's shortened delays; a deployed stack keeps the defaults (24 h of retries).
        environment[Env.WEBHOOK_RETRY] = retry_json
    if allow_loopback:
        environment[Env.WEBHOOK_ALLOW_LOOPBACK] = "true"
    return environment
