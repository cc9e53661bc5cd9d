"""The operations dashboard: lanes, outcomes, send latency, SES reputation and every alarm."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailwright.constants import LANES, Env, Outputs
from tests.infra.synth import Synthesized, render

# Each module shares the session's synthesized stack (see conftest.py).
pytestmark = pytest.mark.slow

OUTCOME_METRICS = ("Sent", "Suppressed", "OptedOut", "RateLimited", "Rejected", "RenderFailed", "Throttled")
SEARCH_SCHEMA = "{Mailwright,category,lane,service}"


@pytest.fixture(scope="module")
def dashboard(synthesized: Synthesized) -> dict[str, Any]:
    """The dashboard body, with CloudFormation references flattened to `${...}`."""
    (resource,) = synthesized.resources("AWS::CloudWatch::Dashboard").values()
    body: dict[str, Any] = json.loads(render(resource["Properties"]["DashboardBody"]))
    return body


def _widget(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    (found,) = [w["properties"] for w in dashboard["widgets"] if w["properties"].get("title") == title]
    return found


def _queue_metrics(widget: dict[str, Any], metric_name: str) -> list[str]:
    return [m[3] for m in widget["metrics"] if m[:3] == ["AWS/SQS", metric_name, "QueueName"]]


def _expressions(dashboard: dict[str, Any]) -> list[str]:
    return [
        metric[0]["expression"]
        for widget in dashboard["widgets"]
        for metric in widget["properties"].get("metrics", [])
        if isinstance(metric[0], dict) and "expression" in metric[0]
    ]


def test_the_dashboard_is_named_after_the_stack_and_region(synthesized: Synthesized) -> None:
    (resource,) = synthesized.resources("AWS::CloudWatch::Dashboard").values()

    # Dashboards are global to an account: two regions' deployments must not collide.
    assert render(resource["Properties"]["DashboardName"]) == f"{synthesized.config.stack_name}-${{AWS::Region}}"
    assert synthesized.json["Outputs"][Outputs.DASHBOARD_NAME]["Value"] == {
        "Ref": next(iter(synthesized.resources("AWS::CloudWatch::Dashboard")))
    }


def test_lanes_show_depth_age_and_throughput(synthesized: Synthesized, dashboard: dict[str, Any]) -> None:
    lanes = [f"${{{synthesized.queue_of(lane)[0]}.QueueName}}" for lane in LANES]
    feedback = f"${{{synthesized.output_ref(Outputs.FEEDBACK_QUEUE_URL)}.QueueName}}"

    for title, metric in (
        ("Queue depth (visible messages)", "ApproximateNumberOfMessagesVisible"),
        ("Oldest message age (s)", "ApproximateAgeOfOldestMessage"),
        ("Throughput (messages consumed per minute)", "NumberOfMessagesDeleted"),
    ):
        assert _queue_metrics(_widget(dashboard, title), metric) == [*lanes, feedback], title


def test_every_dead_letter_queue_is_on_the_dashboard(synthesized: Synthesized, dashboard: dict[str, Any]) -> None:
    # A lane's dead letters wait in its parked queue (the dead-letter function drains the DLQ into it).
    dlqs = [synthesized.output_ref(Outputs.parked_dlq_url(lane)) for lane in LANES]
    dlqs += [synthesized.output_ref(key) for key in (Outputs.FEEDBACK_DLQ_URL, Outputs.INGEST_DLQ_URL)]
    # The scheduled sends' target DLQ (what EventBridge Scheduler could not deliver), named in the workers' environment.
    _, worker = synthesized.workers()["standard"]
    dlqs.append(worker["Properties"]["Environment"]["Variables"][Env.SCHEDULE_DLQ_ARN]["Fn::GetAtt"][0])
    dlqs.append(synthesized.output_ref(Outputs.BREAKER_DLQ_URL))
    widget = _widget(dashboard, "Dead-letter queues (visible messages)")

    assert _queue_metrics(widget, "ApproximateNumberOfMessagesVisible") == [f"${{{q}.QueueName}}" for q in dlqs]


@pytest.mark.parametrize("metric", [*OUTCOME_METRICS, "Bounces", "Complaints"])
def test_outcomes_are_graphed_per_lane_and_category(dashboard: dict[str, Any], metric: str) -> None:
    assert f"SEARCH('{SEARCH_SCHEMA} MetricName=\"{metric}\"', 'Sum', 300)" in _expressions(dashboard)


def test_send_latency_is_graphed_as_median_and_p99(dashboard: dict[str, Any]) -> None:
    widget = _widget(dashboard, "Send latency, publish to SES (ms)")
    expressions = [metric[0]["expression"] for metric in widget["metrics"]]

    assert expressions == [
        f"SEARCH('{SEARCH_SCHEMA} MetricName=\"SendLatency\"', '{stat}', 300)" for stat in ("p50", "p99")
    ]


@pytest.mark.parametrize(
    ("title", "metric", "alarm", "review"),
    [
        ("SES bounce rate (account)", "Reputation.BounceRate", 0.04, 0.05),
        ("SES complaint rate (account)", "Reputation.ComplaintRate", 0.0008, 0.001),
    ],
)
def test_reputation_is_graphed_against_the_alarm_and_ses_review(
    dashboard: dict[str, Any], title: str, metric: str, alarm: float, review: float
) -> None:
    widget = _widget(dashboard, title)

    assert [m[:2] for m in widget["metrics"]] == [["AWS/SES", metric]]
    assert sorted(a["value"] for a in widget["annotations"]["horizontal"]) == [alarm, review]


def test_daily_sends_are_graphed_against_the_quota(synthesized: Synthesized, dashboard: dict[str, Any]) -> None:
    widget = _widget(dashboard, "SES sends per day, against the quota")
    quota = synthesized.config.alarms.ses_daily_quota

    assert [m[:2] for m in widget["metrics"]] == [["AWS/SES", "Send"]]
    assert sorted(a["value"] for a in widget["annotations"]["horizontal"]) == [0.8 * quota, quota]


def test_every_alarm_is_on_the_dashboard(synthesized: Synthesized, dashboard: dict[str, Any]) -> None:
    widget = _widget(dashboard, "Alarms")

    assert sorted(widget["alarms"]) == sorted(
        f"${{{logical_id}.Arn}}" for logical_id in synthesized.resources("AWS::CloudWatch::Alarm")
    )
