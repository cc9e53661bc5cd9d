"""The worker's settings, parsed from the environment the CDK app (or the local stack) gives it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.config import WorkerResources, load_config, worker_environment
from mailwright.constants import LANES, Env
from mailwright.errors import ConfigurationError
from mailwright.settings import RateLimit, WorkerSettings, parse_rate_limits

REPO = Path(__file__).resolve().parents[2]
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/mailwright-standard"
RESOURCES = WorkerResources(
    templates_bucket="mailwright-templates",
    preferences_table="mailwright-preferences",
    suppression_table="mailwright-suppression",
    idempotency_table="mailwright-idempotency",
    messages_table="mailwright-messages",
    configuration_set="mailwright-events",
    unsubscribe_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:mailwright/unsubscribe",
    address_key_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:mailwright/address-keyring",
    unsubscribe_base_url="https://abc123.lambda-url.us-east-1.on.aws/",
)
REQUIRED = [
    Env.LANE,
    Env.QUEUE_URL,
    Env.TEMPLATES_BUCKET,
    Env.PREFERENCES_TABLE,
    Env.SUPPRESSION_TABLE,
    Env.IDEMPOTENCY_TABLE,
    Env.MESSAGES_TABLE,
    Env.CONFIGURATION_SET,
    Env.FROM_ADDRESS,
    Env.UNSUBSCRIBE_BASE_URL,
    Env.UNSUBSCRIBE_SECRET_ARN,
    Env.ADDRESS_KEY_SECRET_ARN,
]


def environment(lane: str = "standard") -> dict[str, str]:
    """The environment a lane's worker gets from the repository's cdk.json."""
    config = load_config(REPO / "cdk.json")
    return worker_environment(config=config, lane=config.lanes[lane], queue_url=QUEUE_URL, resources=RESOURCES)


@pytest.mark.parametrize("lane", LANES)
def test_full_environment_parses(lane: str) -> None:
    config = load_config(REPO / "cdk.json")

    settings = WorkerSettings.from_env(environment(lane))

    assert settings.lane == lane
    assert settings.queue_url == QUEUE_URL
    assert settings.messages_table == RESOURCES.messages_table
    assert settings.from_address == config.from_address
    assert settings.unsubscribe_base_url == (config.unsubscribe_base_url or RESOURCES.unsubscribe_base_url)
    assert settings.postal_address == config.postal_address
    assert settings.send_rate_per_worker == config.send_rate_per_worker
    assert settings.ses_max_send_rate == config.ses_max_send_rate
    assert settings.pacing_max_wait_seconds == config.lanes[lane].pacing_max_wait
    assert settings.quota_holds == config.quota_holds
    assert settings.pacing_shards == config.pacing_shards
    assert settings.idempotency_ttl_seconds == config.idempotency_ttl_hours * 3600
    assert settings.message_log_ttl_days == config.message_log_ttl_days
    assert settings.template_cache_seconds == config.template_cache_seconds
    assert settings.rate_limits == {
        name: RateLimit(limit.limit, limit.window_seconds) for name, limit in config.rate_limits.items()
    }
    assert 1 <= settings.max_backoff_seconds <= 43200
    assert 1 <= settings.send_concurrency <= config.lanes[lane].batch_size


def test_defaults_apply_to_optional_keys() -> None:
    env = {key: value for key, value in environment().items() if key in REQUIRED}
    settings = WorkerSettings.from_env(env)
    assert (settings.send_rate_per_worker, settings.send_concurrency) == (1.0, 10)
    assert (settings.template_cache_seconds, settings.max_backoff_seconds) == (60, 900)
    assert settings.rate_limits == {}
    assert settings.postal_address == ""
    # No ceiling: SES's own MaxSendRate decides; bulk held at 90% of the daily quota, standard at 97%
    assert settings.ses_max_send_rate is None
    assert settings.quota_holds == {"bulk": 0.9, "standard": 0.97}


def test_every_missing_key_is_named_at_once() -> None:
    env = environment()
    for key in (Env.QUEUE_URL, Env.MESSAGES_TABLE, Env.UNSUBSCRIBE_SECRET_ARN):
        del env[key]
    env[Env.FROM_ADDRESS] = ""

    with pytest.raises(ConfigurationError) as caught:
        WorkerSettings.from_env(env)

    for key in (Env.QUEUE_URL, Env.MESSAGES_TABLE, Env.UNSUBSCRIBE_SECRET_ARN, Env.FROM_ADDRESS):
        assert key in str(caught.value)
    assert Env.LANE not in str(caught.value)


def test_empty_environment_names_every_required_key() -> None:
    with pytest.raises(ConfigurationError) as caught:
        WorkerSettings.from_env({})
    assert all(key in str(caught.value) for key in REQUIRED)


def test_unknown_lane_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=Env.LANE):
        WorkerSettings.from_env({**environment(), Env.LANE: "express"})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (Env.SEND_RATE_PER_WORKER, "fast"),
        (Env.SEND_RATE_PER_WORKER, "0"),
        (Env.SEND_RATE_PER_WORKER, "-2"),
        (Env.SEND_RATE_PER_WORKER, "nan"),
        (Env.SES_MAX_SEND_RATE, "-1"),
        (Env.SES_MAX_SEND_RATE, "nan"),
        (Env.SES_MAX_SEND_RATE, "fourteen"),
        (Env.PACING_MAX_WAIT_SECONDS, "-0.1"),
        (Env.PACING_MAX_WAIT_SECONDS, "60"),
        (Env.PACING_SHARDS, "0"),
        (Env.QUOTA_HOLDS, '{"bulk": 1.5}'),
        (Env.QUOTA_HOLDS, '{"express": 0.5}'),
        (Env.QUOTA_HOLDS, "[0.9]"),
        (Env.QUOTA_REFRESH_SECONDS, "1"),
        (Env.SEND_CONCURRENCY, "1.5"),
        (Env.SEND_CONCURRENCY, "0"),
        (Env.IDEMPOTENCY_TTL_SECONDS, "a day"),
        (Env.MESSAGE_LOG_TTL_DAYS, ""),
        (Env.TEMPLATE_CACHE_SECONDS, "x"),
        (Env.MAX_BACKOFF_SECONDS, "15m"),
    ],
)
def test_bad_numbers_are_configuration_errors(key: str, value: str) -> None:
    with pytest.raises(ConfigurationError):
        WorkerSettings.from_env({**environment(), key: value})


@pytest.mark.parametrize("value", ["0", "-1", "43201", "86400"])
def test_max_backoff_outside_the_sqs_range_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match=Env.MAX_BACKOFF_SECONDS):
        WorkerSettings.from_env({**environment(), Env.MAX_BACKOFF_SECONDS: value})


@pytest.mark.parametrize("value", ["1", "900", "43200"])
def test_max_backoff_inside_the_sqs_range_is_accepted(value: str) -> None:
    assert WorkerSettings.from_env({**environment(), Env.MAX_BACKOFF_SECONDS: value}).max_backoff_seconds == int(value)


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        "null",
        '{"marketing": 5}',
        '{"marketing": {"limit": 2}}',
        '{"marketing": {"window_seconds": 60}}',
        '{"marketing": {"limit": "two", "window_seconds": 60}}',
        '{"marketing": {"limit": 2, "window_seconds": 0}}',
        '{"marketing": {"limit": 0, "window_seconds": 60}}',
        '{"marketing": {"limit": 2, "window_seconds": -60}}',
    ],
)
def test_bad_rate_limits_are_configuration_errors(raw: str) -> None:
    with pytest.raises(ConfigurationError, match=Env.RATE_LIMITS):
        WorkerSettings.from_env({**environment(), Env.RATE_LIMITS: raw})


@pytest.mark.parametrize("raw", ["", "  ", "{}"])
def test_empty_rate_limits_mean_none(raw: str) -> None:
    assert parse_rate_limits(raw) == {}


def test_rate_limits_parse() -> None:
    raw = json.dumps(
        {"marketing": {"limit": 2, "window_seconds": 86400}, "product": {"limit": 5, "window_seconds": 3600}}
    )
    assert parse_rate_limits(raw) == {"marketing": RateLimit(2, 86400), "product": RateLimit(5, 3600)}
