"""Alarms: every queue, function and SES limit watched, each alarm notifying the encrypted alarm topic."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra.config import BOUNCE_RATE_ALARM, COMPLAINT_RATE_ALARM, DEFAULT_MAX_MESSAGE_AGE_SECONDS
from mailwright.constants import (
    API_HANDLER,
    BREAKER_HANDLER,
    DEAD_LETTERS_HANDLER,
    EVENTS_PUBLISHER_HANDLER,
    FEEDBACK_HANDLER,
    LANES,
    UNSUBSCRIBE_HANDLER,
    Env,
    Outputs,
)
from tests.infra.synth import Resource, Synthesized, render

# Each module shares the session's synthesized stacks (see conftest.py).
pytestmark = pytest.mark.slow

# The rates at which SES puts an account under review.
SES_REVIEW_BOUNCE_RATE = 0.05
SES_REVIEW_COMPLAINT_RATE = 0.001


def _alarm(synthesized: Synthesized, name: str) -> dict[str, Any]:
    found = [
        resource["Properties"]
        for resource in synthesized.resources("AWS::CloudWatch::Alarm").values()
        if resource["Properties"]["AlarmName"] == f"{synthesized.config.stack_name}-{name}"
    ]
    assert len(found) == 1, f"no alarm {name}"
    return found[0]


def _function_id(synthesized: Synthesized, handler: str) -> str:
    (found,) = [
        logical_id
        for logical_id, resource in synthesized.resources("AWS::Lambda::Function").items()
        if resource["Properties"].get("Handler") == handler
    ]
    return found


def _functions(synthesized: Synthesized) -> dict[str, str]:
    """Each function's short name in the alarm names, and its logical id."""
    functions = {f"{lane}-worker": logical_id for lane, (logical_id, _) in synthesized.workers().items()}
    functions["feedback"] = _function_id(synthesized, FEEDBACK_HANDLER)
    functions["unsubscribe"] = _function_id(synthesized, UNSUBSCRIBE_HANDLER)
    functions["breaker"] = _function_id(synthesized, BREAKER_HANDLER)
    functions["api"] = _function_id(synthesized, API_HANDLER)
    functions["events-publisher"] = _function_id(synthesized, EVENTS_PUBLISHER_HANDLER)
    functions["dead-letters"] = _function_id(synthesized, DEAD_LETTERS_HANDLER)
    return functions


def _dead_letter_queues(synthesized: Synthesized) -> dict[str, str]:
    # A lane's dead letters wait in its parked queue once the dead-letter function recorded them (EmailFailed).
    queues = {lane: synthesized.output_ref(Outputs.parked_dlq_url(lane)) for lane in LANES}
    queues["feedback"] = synthesized.output_ref(Outputs.FEEDBACK_DLQ_URL)
    queues["ingest"] = synthesized.output_ref(Outputs.INGEST_DLQ_URL)
    queues["breaker"] = synthesized.output_ref(Outputs.BREAKER_DLQ_URL)
    # What EventBridge Scheduler could not deliver at a request's send_at (named in the workers' environment).
    worker_env = synthesized.workers()["standard"][1]["Properties"]["Environment"]["Variables"]
    queues["schedules"] = worker_env[Env.SCHEDULE_DLQ_ARN]["Fn::GetAtt"][0]
    return queues


def _topic_id(synthesized: Synthesized) -> str:
    return synthesized.output_ref(Outputs.ALARM_TOPIC_ARN)


def _notifies_the_topic(synthesized: Synthesized, alarm: dict[str, Any]) -> None:
    topic = {"Ref": _topic_id(synthesized)}
    assert alarm["AlarmActions"] == [topic]
    assert alarm["OKActions"] == [topic]
    assert alarm.get("ActionsEnabled", True) is True
    # What to do when it fires, in the notification itself.
    assert len(alarm["AlarmDescription"]) > 40


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(synthesized: Synthesized) -> None:
    topic = synthesized.resources("AWS::SNS::Topic")[_topic_id(synthesized)]["Properties"]
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = synthesized.resources("AWS::KMS::Key")[key_id]["Properties"]

    assert key["EnableKeyRotation"] is True
    (cloudwatch,) = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert sorted(cloudwatch["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_only_this_accounts_alarms_may_publish_and_only_over_tls(synthesized: Synthesized) -> None:
    topic_id = _topic_id(synthesized)
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synthesized.resources("AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_id} in p["Properties"]["Topics"]
    ]

    (allow,) = [s for s in policy if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert render(allow["Condition"]["ArnLike"]["aws:SourceArn"]) == (
        "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"
    )
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy)


def test_alarm_email_subscribes_to_the_topic_only_when_set(
    synthesized: Synthesized, domain_synthesized: Synthesized
) -> None:
    assert synthesized.resources("AWS::SNS::Subscription") != {}  # the feedback queue's
    assert not [
        s for s in synthesized.resources("AWS::SNS::Subscription").values() if s["Properties"]["Protocol"] == "email"
    ]
    domain_synthesized.template.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": {"Ref": _topic_id(domain_synthesized)}},
    )


def test_the_stack_has_exactly_the_documented_alarms(synthesized: Synthesized) -> None:
    prefix = synthesized.config.stack_name
    names = {
        resource["Properties"]["AlarmName"] for resource in synthesized.resources("AWS::CloudWatch::Alarm").values()
    }
    expected = {
        *(f"{prefix}-dlq-{queue}" for queue in (*LANES, "feedback", "ingest", "breaker", "schedules")),
        *(f"{prefix}-age-{queue}" for queue in (*LANES, "feedback")),
        *(f"{prefix}-age-{lane}-dlq" for lane in LANES),
        f"{prefix}-dlq-events-publisher",
        *(f"{prefix}-{kind}-{name}" for kind in ("errors", "throttles") for name in _functions(synthesized)),
        f"{prefix}-ses-bounce-rate",
        f"{prefix}-ses-complaint-rate",
        f"{prefix}-ses-daily-quota",
        f"{prefix}-ses-quota-hold",
        f"{prefix}-api-5xx",
        f"{prefix}-api-4xx-rate",
        f"{prefix}-variant-disabled",
        f"{prefix}-producer-api-5xx",
    }

    assert names == expected


def test_a_variant_switched_off_alarms_and_says_how_to_see_why(synthesized: Synthesized) -> None:
    alarm = _alarm(synthesized, "variant-disabled")

    assert alarm["Namespace"] == "Mailwright" and alarm["MetricName"] == "VariantDisabled"
    # Counted once without template and variant, so one alarm covers variants declared after the deploy
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "mailwright"}]
    assert alarm["Statistic"] == "Sum" and alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert "mailwright templates report" in alarm["AlarmDescription"]
    assert "mailwright templates variant" in alarm["AlarmDescription"]


@pytest.mark.parametrize("queue", [*LANES, "feedback", "ingest", "breaker", "schedules"])
def test_any_message_in_a_dead_letter_queue_alarms(synthesized: Synthesized, queue: str) -> None:
    alarm = _alarm(synthesized, f"dlq-{queue}")

    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [_dead_letter_queues(synthesized)[queue], "QueueName"]}}
    ]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Maximum", 60, 1)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    # An empty DLQ goes quiet: no data is no message.
    assert alarm["TreatMissingData"] == "notBreaching"
    _notifies_the_topic(synthesized, alarm)


@pytest.mark.parametrize("queue", [*LANES, "feedback"])
def test_a_queue_whose_oldest_message_is_too_old_alarms(synthesized: Synthesized, queue: str) -> None:
    alarm = _alarm(synthesized, f"age-{queue}")
    queue_id = (
        synthesized.output_ref(Outputs.FEEDBACK_QUEUE_URL) if queue == "feedback" else synthesized.queue_of(queue)[0]
    )

    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Maximum", 60, 3)
    assert alarm["Threshold"] == synthesized.config.alarms.max_message_age_seconds[queue]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    _notifies_the_topic(synthesized, alarm)


def test_age_thresholds_default_tightest_for_critical(synthesized: Synthesized) -> None:
    thresholds = {lane: _alarm(synthesized, f"age-{lane}")["Threshold"] for lane in LANES}

    assert thresholds == {"critical": 60, "standard": 300, "bulk": 3600}
    assert thresholds["critical"] == min(thresholds.values())
    assert _alarm(synthesized, "age-feedback")["Threshold"] == DEFAULT_MAX_MESSAGE_AGE_SECONDS["feedback"]


def test_age_thresholds_follow_the_context(domain_synthesized: Synthesized) -> None:
    # cdk.json's defaults, overridden per queue by max_message_age_seconds.
    assert _alarm(domain_synthesized, "age-critical")["Threshold"] == 120
    assert _alarm(domain_synthesized, "age-feedback")["Threshold"] == 600
    assert _alarm(domain_synthesized, "age-bulk")["Threshold"] == 3600


@pytest.mark.parametrize("kind", ["errors", "throttles"])
def test_every_function_alarms_on_errors_and_throttles(synthesized: Synthesized, kind: str) -> None:
    for name, function_id in _functions(synthesized).items():
        alarm = _alarm(synthesized, f"{kind}-{name}")

        assert alarm["Namespace"] == "AWS/Lambda"
        assert alarm["MetricName"] == kind.capitalize()
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
        assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 300, 1)
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
        assert alarm["TreatMissingData"] == "notBreaching"
        _notifies_the_topic(synthesized, alarm)


@pytest.mark.parametrize(
    ("name", "metric", "threshold", "ses_review"),
    [
        ("ses-bounce-rate", "Reputation.BounceRate", BOUNCE_RATE_ALARM, SES_REVIEW_BOUNCE_RATE),
        ("ses-complaint-rate", "Reputation.ComplaintRate", COMPLAINT_RATE_ALARM, SES_REVIEW_COMPLAINT_RATE),
    ],
)
def test_reputation_alarms_fire_before_ses_reviews_the_account(
    synthesized: Synthesized, name: str, metric: str, threshold: float, ses_review: float
) -> None:
    alarm = _alarm(synthesized, name)

    # The account-level rates SES's review looks at: published without dimensions.
    assert alarm["Namespace"] == "AWS/SES"
    assert alarm["MetricName"] == metric
    assert "Dimensions" not in alarm
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Maximum", 3600, 1)
    assert alarm["Threshold"] == threshold < ses_review
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # A gap in SES's data neither trips nor releases the breaker.
    assert alarm["TreatMissingData"] == "ignore"
    _notifies_the_topic(synthesized, alarm)


def test_reputation_thresholds_are_four_percent_and_eight_hundredths(synthesized: Synthesized) -> None:
    assert _alarm(synthesized, "ses-bounce-rate")["Threshold"] == 0.04
    assert _alarm(synthesized, "ses-complaint-rate")["Threshold"] == 0.0008


@pytest.mark.parametrize(("variant", "quota"), [("default", 50000), ("domain", 200000)])
def test_sending_close_to_the_daily_quota_alarms(
    synthesized: Synthesized, domain_synthesized: Synthesized, variant: str, quota: int
) -> None:
    stack = synthesized if variant == "default" else domain_synthesized
    alarm = _alarm(stack, "ses-daily-quota")

    assert stack.config.alarms.ses_daily_quota == quota
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SES", "Send")
    assert "Dimensions" not in alarm
    # One datapoint summing a whole day: CloudWatch's longest alarm window for a sum like SES's 24-hour quota.
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 86400, 1)
    assert alarm["Period"] * alarm["EvaluationPeriods"] <= 86400
    assert alarm["Threshold"] == 0.8 * quota
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    _notifies_the_topic(stack, alarm)


def test_the_quota_hold_alarms_when_bulk_mail_is_held(synthesized: Synthesized) -> None:
    alarm = _alarm(synthesized, "ses-quota-hold")

    # The workers' report of SES's own count against its own quota (GetAccount), per service
    assert (alarm["Namespace"], alarm["MetricName"]) == ("Mailwright", "QuotaUsedPercent")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "mailwright"}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Maximum", 900, 1)
    # From the lowest hold on (bulk, 90% by default) mail is held back: the alarm says so
    assert alarm["Threshold"] == 100 * min(synthesized.config.quota_holds.values()) == 90
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert "bulk" in alarm["AlarmDescription"]
    _notifies_the_topic(synthesized, alarm)


def test_alarm_topic_output_names_the_topic(synthesized: Synthesized) -> None:
    topic: Resource = synthesized.resources("AWS::SNS::Topic")[_topic_id(synthesized)]

    assert topic["Properties"]["DisplayName"] == "mailwright alarms"
    synthesized.template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"AlarmActions": [{"Ref": _topic_id(synthesized)}], "MetricName": Match.any_value()}
    )


@pytest.mark.parametrize("queue", [*LANES, "feedback"])
def test_a_dead_letter_queue_alarm_says_how_to_list_and_redrive(synthesized: Synthesized, queue: str) -> None:
    description = _alarm(synthesized, f"dlq-{queue}")["AlarmDescription"]

    # The commands as the CLI takes them (the queue is an option).
    assert f"`mailwright dlq list --lane {queue}`" in description
    assert f"`mailwright dlq redrive --lane {queue}`" in description


def test_the_breaker_dead_letter_alarm_says_the_lane_may_not_have_switched(synthesized: Synthesized) -> None:
    description = _alarm(synthesized, "dlq-breaker")["AlarmDescription"]

    # Its messages are alarm state changes, not requests: there is nothing to redrive.
    assert "may not have been paused or resumed" in description
    assert "`mailwright lanes status`" in description
    assert "`mailwright dlq list --lane breaker`" in description
    assert "redrive" not in description


@pytest.mark.parametrize("name", ["critical-worker", "standard-worker", "bulk-worker", "feedback"])
def test_a_queue_fed_function_error_returns_its_batch_to_the_queue(synthesized: Synthesized, name: str) -> None:
    description = _alarm(synthesized, f"errors-{name}")["AlarmDescription"]

    assert "its batch returns to the queue" in description
    assert "dead-letter queue" in description


def test_the_unsubscribe_error_alarm_says_the_caller_got_an_error(synthesized: Synthesized) -> None:
    description = _alarm(synthesized, "errors-unsubscribe")["AlarmDescription"]

    # A function URL has no queue: the caller got the error and nothing retries it.
    assert "batch" not in description and "queue" not in description
    assert "HTTP 5xx" in description
    assert "Nothing retries it" in description


def test_the_unsubscribe_throttle_alarm_names_its_cap(
    synthesized: Synthesized, domain_synthesized: Synthesized
) -> None:
    capped = _alarm(synthesized, "throttles-unsubscribe")
    uncapped = _alarm(domain_synthesized, "throttles-unsubscribe")

    assert (capped["MetricName"], capped["Threshold"], capped["Period"]) == ("Throttles", 1, 300)
    assert "HTTP 429" in capped["AlarmDescription"]
    assert "unsubscribe.reserved_concurrency, 5)" in capped["AlarmDescription"]
    assert "unsubscribe.reserved_concurrency is null" in uncapped["AlarmDescription"]


def test_the_breaker_error_alarm_says_the_event_is_dead_lettered(synthesized: Synthesized) -> None:
    errors = _alarm(synthesized, "errors-breaker")["AlarmDescription"]
    throttles = _alarm(synthesized, "throttles-breaker")["AlarmDescription"]

    # EventBridge invokes the breaker asynchronously: Lambda retries, then the breaker's DLQ.
    assert "batch" not in errors
    assert "retries it 2 times" in errors
    assert "dlq-breaker" in errors
    assert "up to 6 hours" in throttles
    assert "`mailwright lanes pause bulk`" in throttles
