"""Deployment settings from the `mailwright` CDK context value (infra/config.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import (
    MAX_SEND_CONCURRENCY,
    ConfigError,
    LaneConfig,
    WorkerResources,
    load_config,
    max_backoff_seconds,
    parse_config,
    worker_environment,
)
from mailwright.constants import LANES, Env

REPO = Path(__file__).resolve().parents[2]
CONTEXT: dict[str, Any] = json.loads((REPO / "cdk.json").read_text(encoding="utf-8"))["context"]["mailwright"]
RESOURCES = WorkerResources(
    templates_bucket="b",
    preferences_table="p",
    suppression_table="s",
    idempotency_table="i",
    messages_table="m",
    configuration_set="c",
    unsubscribe_secret_arn="arn",
    address_key_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:mailwright/address-keyring",
    unsubscribe_base_url="https://abc123.lambda-url.us-east-1.on.aws/",
)


def context(**changes: Any) -> dict[str, Any]:
    """A deep copy of the cdk.json context with top-level keys replaced."""
    raw = copy.deepcopy(CONTEXT)
    raw.update(changes)
    return raw


def with_lane(lane: str, **settings: Any) -> dict[str, Any]:
    """The cdk.json context with one lane's settings changed."""
    raw = context()
    raw["lanes"][lane].update(settings)
    return raw


def env_keys() -> set[str]:
    """Every environment variable key declared in `Env` that a send worker reads."""
    # Read by the feedback function only (tests/unit/test_feedback_settings.py covers them).
    feedback_only = {
        Env.SOFT_BOUNCE_THRESHOLD,
        Env.SOFT_BOUNCE_WINDOW_DAYS,
        Env.SOFT_BOUNCE_SUPPRESSION_DAYS,
        Env.MIRROR_SES_SUPPRESSION,
    }
    # Read by the reputation circuit breaker only (tests/unit/test_breaker.py covers them).
    breaker_only = {Env.BREAKER_MAPPING_ID, Env.BREAKER_ALARMS, Env.BREAKER_AUTO_RESUME}
    # Optional: unset means SES alone (tests/unit/test_provider_settings.py covers them).
    providers_only = {Env.PROVIDERS, Env.FAILOVER}
    # Read by the HTTPS API's function only (tests/unit/test_infra_config_producers.py covers them).
    api_only = {Env.LANE_QUEUE_URLS, Env.PRODUCERS_TABLE}
    # Read by the events publisher, the dead-letter function and the webhook sender (test_event_settings.py).
    events_only = {
        Env.EVENT_BUS_NAME,
        Env.OUTCOME_EVENTS,
        Env.DEAD_LETTER_QUEUES,
        Env.WEBHOOK_ENDPOINTS,
        Env.WEBHOOK_STATE_TABLE,
        Env.WEBHOOK_ARCHIVE_BUCKET,
        Env.WEBHOOK_RETRY,
        Env.WEBHOOK_ALLOW_LOOPBACK,
    }
    # Scheduled sends: set by the CDK app beside worker_environment (schedule_environment, infra/schedules.py).
    schedules_only = {
        Env.SCHEDULE_GROUP,
        Env.SCHEDULER_ROLE_ARN,
        Env.QUEUE_ARN,
        Env.SCHEDULE_DLQ_ARN,
        Env.SCHEDULE_KEY_ARN,
    }
    # The local stack's digest window override; a deployed worker uses each template's (test_timing_config.py).
    local_only = {Env.DIGEST_WINDOW_SECONDS}
    declared = {value for name, value in vars(Env).items() if name.isupper() and isinstance(value, str)}
    return (
        declared - feedback_only - breaker_only - providers_only - events_only - api_only - schedules_only - local_only
    )


def test_cdk_json_context_parses() -> None:
    config = parse_config(CONTEXT)

    assert config.sender == "no-reply@example.com"
    assert config.identity == config.sender  # no domain: the sender address is the SES identity
    assert config.unsubscribe_base_url == ""  # links point at the stack's own endpoint
    assert set(config.lanes) == set(LANES)
    # A bulk batch is what one take of the shared bucket sends at cdk.json's 14/s (docs/benchmarks.md)
    assert config.lanes["bulk"].batch_size == 10
    assert config.lanes["bulk"].batching_window_seconds >= 1
    assert all(lane.max_receive_count >= 5 for lane in config.lanes.values())
    assert config.rate_limits["marketing"].limit == 2
    assert config.extra == {}


def test_load_config_reads_the_same_settings() -> None:
    assert load_config(REPO / "cdk.json") == parse_config(CONTEXT)


def test_defaults_fill_an_almost_empty_context() -> None:
    config = parse_config({"sender": "Ops@Example.com"})
    assert config.sender == "ops@example.com"
    assert config.lanes["standard"] == LaneConfig(name="standard")
    assert config.rate_limits == {}
    assert config.ses_max_send_rate is None  # no ceiling: SES's MaxSendRate decides


def test_domain_makes_the_identity() -> None:
    config = parse_config(context(domain="Example.com", sender="no-reply@example.com"))
    assert config.identity == "example.com"


@pytest.mark.parametrize("sender", ["", "no-reply", "no reply@example.com", "a@b", "@example.com"])
def test_bad_sender_is_refused(sender: str) -> None:
    with pytest.raises(ConfigError, match="sender"):
        parse_config(context(sender=sender))


def test_sender_outside_the_domain_is_refused() -> None:
    with pytest.raises(ConfigError, match="must be an address at"):
        parse_config(context(domain="example.org", sender="no-reply@example.com"))


def test_subdomain_sender_is_not_in_the_domain() -> None:
    with pytest.raises(ConfigError):
        parse_config(context(domain="example.com", sender="no-reply@mail.example.com"))


def test_bad_domain_is_refused() -> None:
    with pytest.raises(ConfigError, match="domain"):
        parse_config(context(domain="not a domain", sender="a@example.com"))


def test_plain_http_unsubscribe_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="https"):
        parse_config(context(unsubscribe_base_url="http://example.com/u"))


@pytest.mark.parametrize("rate", [0, -1, "14", True])
def test_bad_send_rate_is_refused(rate: object) -> None:
    with pytest.raises(ConfigError, match="ses_max_send_rate"):
        parse_config(context(ses_max_send_rate=rate))


@pytest.mark.parametrize("count", [1, 4])
def test_max_receive_count_below_five_is_refused(count: int) -> None:
    with pytest.raises(ConfigError, match="max_receive_count"):
        parse_config(with_lane("critical", max_receive_count=count))


def test_reserved_concurrency_below_max_concurrency_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"reserved_concurrency \(2\) must be >= max_concurrency \(3\)"):
        parse_config(with_lane("critical", max_concurrency=3, reserved_concurrency=2))


def test_reserved_concurrency_may_be_switched_off() -> None:
    assert parse_config(with_lane("bulk", reserved_concurrency=None)).lanes["bulk"].reserved_concurrency is None


def test_max_concurrency_below_two_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_concurrency"):
        parse_config(with_lane("standard", max_concurrency=1, reserved_concurrency=1))


def test_batch_above_ten_needs_a_batching_window() -> None:
    with pytest.raises(ConfigError, match="batching_window_seconds >= 1"):
        parse_config(with_lane("bulk", batch_size=11, batching_window_seconds=0))
    assert parse_config(with_lane("bulk", batch_size=11, batching_window_seconds=1)).lanes["bulk"].batch_size == 11


@pytest.mark.parametrize(
    "settings",
    [
        {"batch_size": 0},
        {"batch_size": 10001, "batching_window_seconds": 1},
        {"timeout_seconds": 901},
        {"memory_mb": 64},
    ],
)
def test_lane_settings_out_of_range_are_refused(settings: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match=r"lanes\.standard"):
        parse_config(with_lane("standard", **settings))


def test_unknown_lane_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown settings"):
        parse_config(with_lane("standard", batchsize=5))


def test_unknown_lane_is_refused() -> None:
    raw = context()
    raw["lanes"]["express"] = {}
    with pytest.raises(ConfigError, match="unknown lanes"):
        parse_config(raw)


def test_rate_limit_of_unknown_category_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown category 'newsletters'"):
        parse_config(context(rate_limits={"newsletters": {"limit": 1, "window_seconds": 3600}}))


@pytest.mark.parametrize("limit", [{"limit": 0, "window_seconds": 3600}, {"limit": 1, "window_seconds": 30}, 5])
def test_bad_rate_limit_is_refused(limit: object) -> None:
    with pytest.raises(ConfigError, match="rate_limits"):
        parse_config(context(rate_limits={"marketing": limit}))


def test_unknown_top_level_keys_are_kept_aside() -> None:
    assert parse_config(context(feature_flag=True)).extra == {"feature_flag": True}


def test_send_rate_per_worker_shares_the_ses_rate_across_all_workers() -> None:
    # Given cdk.json: 14 sends/s for the account; 4 + 2 + 2 workers may run at once
    config = parse_config(CONTEXT)

    assert config.total_max_concurrency == 8
    assert config.send_rate_per_worker == 1.75
    assert config.send_rate_per_worker * config.total_max_concurrency <= config.ses_max_send_rate


def test_ses_max_send_rate_is_an_optional_ceiling() -> None:
    assert parse_config(CONTEXT).ses_max_send_rate == 14.0
    config = parse_config(context(ses_max_send_rate=None))
    assert config.ses_max_send_rate is None
    # Without a ceiling the fallback share assumes SES's sandbox rate, 1/s, across every worker
    assert config.send_rate_per_worker == 1 / config.total_max_concurrency


def test_pacing_settings_have_defaults_per_lane_and_are_checked() -> None:
    config = parse_config(CONTEXT)
    assert {name: lane.pacing_max_wait for name, lane in config.lanes.items()} == {
        "critical": 0.2,
        "standard": 0.1,
        "bulk": 0.1,
    }
    assert config.quota_holds == {"bulk": 0.9, "standard": 0.97}
    assert (config.pacing_shards, config.quota_refresh_seconds) == (1, 300)
    custom = parse_config(context(quota_holds={"bulk": 0.8}, pacing_shards=4))
    assert (custom.quota_holds, custom.pacing_shards) == ({"bulk": 0.8}, 4)
    for bad in ({"quota_holds": {"bulk": 0}}, {"quota_holds": {"express": 0.5}}, {"pacing_shards": 0}):
        with pytest.raises(ConfigError):
            parse_config(context(**bad))
    lanes = {"bulk": {"batch_size": 10, "pacing_max_wait_seconds": 9}}
    with pytest.raises(ConfigError, match="pacing_max_wait_seconds"):
        parse_config(context(lanes=lanes))


@pytest.mark.parametrize("rate", [10, 0.01, 1])
def test_send_rate_per_worker_never_exceeds_the_account_rate_nor_drops_to_zero(rate: float) -> None:
    config = parse_config(context(ses_max_send_rate=rate))
    assert config.send_rate_per_worker > 0
    assert config.send_rate_per_worker * config.total_max_concurrency <= rate


def test_visibility_timeout_is_six_times_the_function_timeout() -> None:
    assert LaneConfig(name="bulk", timeout_seconds=120).visibility_timeout_seconds == 720


def test_rate_limits_json_is_what_the_worker_reads() -> None:
    config = parse_config(CONTEXT)
    assert json.loads(config.rate_limits_json()) == {
        "marketing": {"limit": 2, "window_seconds": 86400},
        "product": {"limit": 5, "window_seconds": 86400},
    }


@pytest.mark.parametrize("lane", LANES)
def test_worker_environment_sets_every_env_key(lane: str) -> None:
    config = parse_config(CONTEXT)
    env = worker_environment(config=config, lane=config.lanes[lane], queue_url="q", resources=RESOURCES)
    missing = env_keys() - set(env)
    assert not missing, f"worker_environment does not set {sorted(missing)}"
    assert all(isinstance(value, str) for value in env.values())


def test_send_concurrency_is_capped_for_large_batches() -> None:
    config = parse_config(context(lanes={"bulk": {"batch_size": 100, "batching_window_seconds": 5}}))
    env = worker_environment(config=config, lane=config.lanes["bulk"], queue_url="q", resources=RESOURCES)
    assert env[Env.SEND_CONCURRENCY] == str(MAX_SEND_CONCURRENCY)


def test_worker_environment_carries_the_lane_settings() -> None:
    config = parse_config(context(template_cache_seconds=300))
    env = worker_environment(config=config, lane=config.lanes["bulk"], queue_url="q", resources=RESOURCES)
    assert env[Env.LANE] == "bulk"
    assert env[Env.QUEUE_URL] == "q"
    assert env[Env.SEND_CONCURRENCY] == "10"  # one SES call in flight per record of the batch
    assert env[Env.MAX_BACKOFF_SECONDS] == str(10 * config.lanes["bulk"].visibility_timeout_seconds)
    assert env[Env.TEMPLATES_BUCKET] == RESOURCES.templates_bucket
    assert env.get(Env.TEMPLATE_CACHE_SECONDS) == "300"


@pytest.mark.parametrize(("timeout", "cap"), [(30, 1800), (600, 36000), (900, 43200)])
def test_max_backoff_is_ten_visibility_timeouts_within_the_sqs_limit(timeout: int, cap: int) -> None:
    assert max_backoff_seconds(LaneConfig(name="standard", timeout_seconds=timeout)) == cap


# -- A/B variants -------------------------------------------------------------------------------------


def test_variants_context_reaches_the_workers_as_the_runtimes_policy() -> None:
    from mailwright.variants import VariantPolicy

    config = parse_config(context(variants={"max_complaint_rate": 0.001, "min_volume": 200, "cache_seconds": 10}))
    env = worker_environment(config=config, lane=config.lanes["standard"], queue_url="q", resources=RESOURCES)

    policy = VariantPolicy.from_json(env[Env.VARIANTS])
    assert (policy.max_complaint_rate, policy.min_volume, policy.cache_seconds) == (0.001, 200, 10)
    assert policy.max_render_failure_rate == VariantPolicy().max_render_failure_rate  # the default where unset
    assert VariantPolicy.from_json(parse_config(context()).variants.to_json()) == VariantPolicy()  # same defaults


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ("0.003", "variants must be an object"),
        ({"max_complaint_rate": 0}, r"variants.max_complaint_rate must be a fraction"),
        ({"max_render_failure_rate": 2}, r"variants.max_render_failure_rate must be a fraction"),
        ({"min_volume": 0}, "min_volume"),
        ({"max_complaints": 0.1}, "unknown settings"),
    ],
)
def test_bad_variants_settings_name_the_key(variants: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(context(variants=variants))


def test_event_tracking_publishes_deliveries_by_default_and_opens_and_clicks_when_opted_in() -> None:
    config = parse_config(CONTEXT)
    assert config.published_event_types == (
        "DELIVERY",
        "BOUNCE",
        "COMPLAINT",
        "REJECT",
        "DELIVERY_DELAY",
        "RENDERING_FAILURE",
        "SUBSCRIPTION",
    )
    opted = parse_config(context(event_tracking={"delivery": False, "opens_clicks": True}))
    assert opted.published_event_types == ("BOUNCE", "COMPLAINT", "REJECT", "OPEN", "CLICK", "RENDERING_FAILURE")
    # What suppresses an address is never optional, and SES's Send event is never published
    assert "SEND" not in parse_config(context(event_tracking={"opens_clicks": True})).published_event_types
    for bad, message in (
        ({"event_tracking": "all"}, "must be an object"),
        ({"event_tracking": {"opens": True}}, "unknown settings"),
        ({"event_tracking": {"delivery": "yes"}}, "delivery must be true or false"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_config(context(**bad))


def test_message_log_backups_default_off_and_must_be_a_boolean() -> None:
    assert parse_config(context()).message_log_backups is False
    assert parse_config(context(message_log_backups=True)).message_log_backups is True
    with pytest.raises(ConfigError, match="message_log_backups must be true or false"):
        parse_config(context(message_log_backups="yes"))
