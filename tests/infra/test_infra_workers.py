"""Send workers: one arm64 Python 3.12 function per lane, fed by its own queue, told where everything is."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from infra.config import MAX_SEND_CONCURRENCY, MailwrightConfig
from mailwright.constants import FEEDBACK_HANDLER, LANES, SEND_WORKER_HANDLER, Env, Outputs
from mailwright.settings import WorkerSettings
from tests.infra.synth import Synthesized

# Each module shares the session's synthesized stack (see conftest.py).
pytestmark = pytest.mark.slow

SQS_MAX_VISIBILITY_SECONDS = 43200


def test_each_lane_has_one_worker(synthesized: Synthesized) -> None:
    assert sorted(synthesized.workers()) == sorted(LANES)


@pytest.mark.parametrize("lane", LANES)
def test_worker_runs_python_312_on_arm64(synthesized: Synthesized, config: MailwrightConfig, lane: str) -> None:
    _, worker = synthesized.workers()[lane]
    props = worker["Properties"]
    settings = config.lanes[lane]

    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == SEND_WORKER_HANDLER
    assert props["Timeout"] == settings.timeout_seconds
    assert props["MemorySize"] == settings.memory_mb


@pytest.mark.parametrize("lane", LANES)
def test_worker_logs_to_its_own_log_group_with_retention(synthesized: Synthesized, lane: str) -> None:
    _, worker = synthesized.workers()[lane]
    log_group_id = worker["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]

    assert synthesized.resources("AWS::Logs::LogGroup")[log_group_id]["Properties"]["RetentionInDays"] == 30


@pytest.mark.parametrize("lane", LANES)
def test_worker_environment_names_every_setting_for_its_lane(
    synthesized: Synthesized, config: MailwrightConfig, lane: str
) -> None:
    _, worker = synthesized.workers()[lane]
    env = worker["Properties"]["Environment"]["Variables"]
    settings = config.lanes[lane]
    secrets = synthesized.resources("AWS::SecretsManager::Secret")
    outputs = synthesized.json["Outputs"]

    # Every key but those only the feedback function reads (test_infra_feedback.py checks those).
    feedback_only = {
        Env.SOFT_BOUNCE_THRESHOLD,
        Env.SOFT_BOUNCE_WINDOW_DAYS,
        Env.SOFT_BOUNCE_SUPPRESSION_DAYS,
        Env.MIRROR_SES_SUPPRESSION,
    }
    # ... and those only the reputation breaker reads (test_infra_breaker.py).
    breaker_only = {Env.BREAKER_MAPPING_ID, Env.BREAKER_ALARMS, Env.BREAKER_AUTO_RESUME}
    # ... and those set only with secondary providers (test_infra_providers.py).
    providers_only = {Env.PROVIDERS, Env.FAILOVER}
    # ... and those only the HTTPS API's function reads (test_infra_api.py).
    api_only = {Env.LANE_QUEUE_URLS, Env.PRODUCERS_TABLE}
    declared = {value for name, value in vars(Env).items() if name.isupper()}
    # ... and those of the events publisher, the dead-letter function and the webhook sender
    # (test_infra_outcome_events.py).
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
    # ... and the local stack's digest window override (test_timing_config.py).
    local_only = {Env.DIGEST_WINDOW_SECONDS}
    keys = declared - feedback_only - breaker_only - providers_only - events_only - api_only - local_only
    assert keys <= set(env), f"missing: {sorted(keys - set(env))}"
    assert env[Env.QUIET_HOURS_CATEGORIES] == "product,marketing"
    assert env[Env.LANE] == lane
    assert env[Env.QUEUE_URL] == outputs[Outputs.queue_url(lane)]["Value"]
    assert env[Env.TEMPLATES_BUCKET] == outputs[Outputs.TEMPLATES_BUCKET]["Value"]
    assert env[Env.PREFERENCES_TABLE] == outputs[Outputs.PREFERENCES_TABLE]["Value"]
    assert env[Env.SUPPRESSION_TABLE] == outputs[Outputs.SUPPRESSION_TABLE]["Value"]
    assert env[Env.IDEMPOTENCY_TABLE] == outputs[Outputs.IDEMPOTENCY_TABLE]["Value"]
    assert env[Env.MESSAGES_TABLE] == outputs[Outputs.MESSAGES_TABLE]["Value"]
    assert env[Env.CONFIGURATION_SET] == outputs[Outputs.CONFIGURATION_SET]["Value"]
    assert env[Env.UNSUBSCRIBE_SECRET_ARN] == {"Ref": next(iter(secrets))}
    assert env[Env.FROM_ADDRESS] == config.from_address
    # cdk.json names no custom domain, so links point at the stack's endpoint (see test_infra_unsubscribe.py).
    assert env[Env.UNSUBSCRIBE_BASE_URL] == (config.unsubscribe_base_url or outputs[Outputs.UNSUBSCRIBE_URL]["Value"])
    assert env[Env.POSTAL_ADDRESS] == config.postal_address
    assert float(env[Env.SEND_RATE_PER_WORKER]) == config.send_rate_per_worker
    # Pacing: the optional ceiling, the lane's wait for tokens, the bucket's shards, the daily-quota holds
    assert env[Env.SES_MAX_SEND_RATE] == ("" if config.ses_max_send_rate is None else str(config.ses_max_send_rate))
    assert float(env[Env.PACING_MAX_WAIT_SECONDS]) == settings.pacing_max_wait
    assert int(env[Env.PACING_SHARDS]) == config.pacing_shards
    assert json.loads(env[Env.QUOTA_HOLDS]) == config.quota_holds
    assert float(env[Env.QUOTA_REFRESH_SECONDS]) == config.quota_refresh_seconds
    assert int(env[Env.SEND_CONCURRENCY]) == min(settings.batch_size, MAX_SEND_CONCURRENCY)
    assert int(env[Env.IDEMPOTENCY_TTL_SECONDS]) == config.idempotency_ttl_hours * 3600
    assert int(env[Env.MESSAGE_LOG_TTL_DAYS]) == config.message_log_ttl_days
    assert int(env[Env.TEMPLATE_CACHE_SECONDS]) == config.template_cache_seconds
    assert json.loads(env[Env.RATE_LIMITS]) == json.loads(config.rate_limits_json())
    assert settings.visibility_timeout_seconds <= int(env[Env.MAX_BACKOFF_SECONDS]) <= SQS_MAX_VISIBILITY_SECONDS
    assert env["POWERTOOLS_SERVICE_NAME"] == "mailwright"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Mailwright"
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"


def test_every_function_skips_pydantics_plugin_search_at_cold_start(synthesized: Synthesized) -> None:
    for function in synthesized.resources("AWS::Lambda::Function").values():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        if "POWERTOOLS_SERVICE_NAME" in variables:  # mailwright's own (not the CDK's helper functions)
            assert variables.get("PYDANTIC_DISABLE_PLUGINS") == "__all__", function["Properties"].get("Description")


def test_lane_workers_together_stay_under_the_ses_send_rate(synthesized: Synthesized, config: MailwrightConfig) -> None:
    total = 0.0
    for lane, (_, worker) in synthesized.workers().items():
        rate = float(worker["Properties"]["Environment"]["Variables"][Env.SEND_RATE_PER_WORKER])
        total += rate * config.lanes[lane].max_concurrency

    # The fallback shares (used only while the shared bucket is unreachable) stay under the ceiling
    assert config.ses_max_send_rate is not None
    assert total <= config.ses_max_send_rate


@pytest.mark.parametrize("lane", LANES)
def test_worker_settings_parse_the_environment(synthesized: Synthesized, lane: str) -> None:
    # The runtime's own parser is the contract: tokens stand in for deploy-time names.
    _, worker = synthesized.workers()[lane]
    env = {
        key: value if isinstance(value, str) else f"resolved-{key.lower()}"
        for key, value in worker["Properties"]["Environment"]["Variables"].items()
    }

    settings = WorkerSettings.from_env(env)

    assert settings.lane == lane


@pytest.mark.parametrize("lane", LANES)
def test_event_source_reports_partial_failures_and_caps_concurrency(
    synthesized: Synthesized, config: MailwrightConfig, lane: str
) -> None:
    settings = config.lanes[lane]
    queue_id, _ = synthesized.queue_of(lane)
    function_id, worker = synthesized.workers()[lane]

    synthesized.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
            "FunctionName": {"Ref": function_id},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": settings.max_concurrency},
            "BatchSize": settings.batch_size,
            "MaximumBatchingWindowInSeconds": settings.batching_window_seconds or Match.absent(),
        },
    )
    reserved = worker["Properties"].get("ReservedConcurrentExecutions")
    if settings.reserved_concurrency is None:
        assert reserved is None
    else:
        # Reserved concurrency below MaximumConcurrency makes SQS overpull and throttle into the DLQ.
        assert reserved == settings.reserved_concurrency >= settings.max_concurrency


def test_each_queue_feeds_exactly_one_worker(synthesized: Synthesized) -> None:
    functions = synthesized.resources("AWS::Lambda::Function")
    sources = [
        m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
        for m in synthesized.resources("AWS::Lambda::EventSourceMapping").values()
        # The DLQs feed the dead-letter function and the message log's stream the events publisher.
        if functions[m["Properties"]["FunctionName"]["Ref"]]["Properties"]["Handler"]
        in (SEND_WORKER_HANDLER, FEEDBACK_HANDLER)
    ]

    # ... and the feedback queue feeds the feedback function (test_infra_feedback.py).
    expected = [*(synthesized.queue_of(lane)[0] for lane in LANES), synthesized.output_ref(Outputs.FEEDBACK_QUEUE_URL)]
    assert sorted(sources) == sorted(expected)


def test_workers_share_one_code_asset(synthesized: Synthesized) -> None:
    keys = {worker["Properties"]["Code"]["S3Key"] for _, worker in synthesized.workers().values()}

    assert len(keys) == 1
