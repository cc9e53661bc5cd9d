"""The `api.producers` (usage plans) and `api.waf` context values: parsed, defaulted, and refused with the key named."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import (
    DEFAULT_PRODUCER_BURST_LIMIT,
    DEFAULT_PRODUCER_QUOTA_PER_DAY,
    DEFAULT_PRODUCER_RATE_LIMIT,
    LOCAL_PRODUCER,
    ConfigError,
    ProducerPlanConfig,
    WafConfig,
    local_producers,
    parse_config,
    producer_plan_name,
    submission_environment,
)
from mailwright.constants import Env
from mailwright.settings import SubmissionSettings

REPO = Path(__file__).resolve().parents[2]
CONTEXT: dict[str, Any] = json.loads((REPO / "cdk.json").read_text(encoding="utf-8"))["context"]["mailwright"]


def api(**settings: Any) -> dict[str, Any]:
    raw = copy.deepcopy(CONTEXT)
    raw["api"] = {**raw.get("api", {}), **settings}
    return raw


def test_no_producers_and_no_waf_by_default() -> None:
    config = parse_config(copy.deepcopy(CONTEXT))

    assert (config.api.producers, config.api.waf) == ({}, None)
    # The local stack always has the `local` producer (its key is `api_key` in local.json), unthrottled by quota.
    assert set(local_producers(config)) == {LOCAL_PRODUCER}
    assert local_producers(config)[LOCAL_PRODUCER].quota_per_day is None


def test_producers_get_their_plans_and_the_defaults() -> None:
    producers = parse_config(
        api(producers={"billing": {"rate_limit": 2.5, "burst_limit": 5, "quota_per_day": None}, "crm": {}})
    ).api.producers

    assert producers == {
        "billing": ProducerPlanConfig(rate_limit=2.5, burst_limit=5, quota_per_day=None),
        "crm": ProducerPlanConfig(
            rate_limit=DEFAULT_PRODUCER_RATE_LIMIT,
            burst_limit=DEFAULT_PRODUCER_BURST_LIMIT,
            quota_per_day=DEFAULT_PRODUCER_QUOTA_PER_DAY,
        ),
    }
    assert producer_plan_name("mailwright", "crm") == "mailwright-producer-crm"


def test_a_declared_local_producer_keeps_its_own_plan_locally() -> None:
    config = parse_config(api(producers={"local": {"quota_per_day": 7}}))

    assert local_producers(config)[LOCAL_PRODUCER].quota_per_day == 7


@pytest.mark.parametrize(
    ("producers", "named"),
    [
        ([], "api.producers must be an object"),
        ({"Billing": {}}, "'Billing' is not a producer name"),
        ({"a" * 65: {}}, "is not a producer name"),
        ({"billing": []}, "api.producers.billing must be an object"),
        ({"billing": {"rate": 1}}, "api.producers.billing: unknown settings ['rate']"),
        ({"billing": {"rate_limit": 0}}, "api.producers.billing.rate_limit"),
        ({"billing": {"rate_limit": True}}, "api.producers.billing.rate_limit"),
        ({"billing": {"burst_limit": 0}}, "api.producers.billing.burst_limit"),
        ({"billing": {"burst_limit": 6000}}, "api.producers.billing.burst_limit is at most"),
        ({"billing": {"quota_per_day": -1}}, "api.producers.billing.quota_per_day"),
        ({"billing": {"quota_per_day": "lots"}}, "api.producers.billing.quota_per_day"),
    ],
)
def test_bad_producers_are_refused_naming_the_key(producers: Any, named: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(api(producers=producers))

    assert named in str(refused.value)


def test_waf_is_off_on_or_configured() -> None:
    assert parse_config(api(waf=False)).api.waf is None
    assert parse_config(api(waf=True)).api.waf == WafConfig()
    assert parse_config(api(waf={"rate_limit": 200, "window_seconds": 120})).api.waf == WafConfig(200, 120)


@pytest.mark.parametrize(
    ("waf", "named"),
    [
        ("yes", "api.waf must be true, false or an object"),
        ({"limit": 100}, "api.waf: unknown settings ['limit']"),
        ({"rate_limit": 5}, "api.waf.rate_limit"),
        ({"window_seconds": 30}, "api.waf.window_seconds must be one of 60, 120, 300, 600"),
        ({"window_seconds": True}, "api.waf.window_seconds"),
    ],
)
def test_bad_waf_settings_are_refused_naming_the_key(waf: Any, named: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(api(waf=waf))

    assert named in str(refused.value)


def test_the_api_functions_submission_environment_is_what_it_reads() -> None:
    queues = {"critical": "https://sqs/c", "standard": "https://sqs/s", "bulk": "https://sqs/b"}

    env = submission_environment(
        lane_queue_urls=queues, templates_bucket="bucket", producers_table="producers", template_cache_seconds=30
    )

    assert set(env) == {Env.LANE_QUEUE_URLS, Env.TEMPLATES_BUCKET, Env.TEMPLATE_CACHE_SECONDS, Env.PRODUCERS_TABLE}
    settings = SubmissionSettings.from_env(env)
    assert (settings.lane_queue_urls, settings.producers_table, settings.template_cache_seconds) == (
        queues,
        "producers",
        30,
    )
