"""The operations dashboard: lanes (depth, age, throughput), outcomes, send latency, SES reputation, alarms.

Outcome metrics carry `lane` and `category` dimensions, so the graphs use
SEARCH expressions: one line per lane and category that actually sent
something, without listing categories here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.alarms import BOUNCE_RATE_METRIC, COMPLAINT_RATE_METRIC, SES_NAMESPACE
from infra.config import BOUNCE_RATE_ALARM, COMPLAINT_RATE_ALARM, MailwrightConfig
from mailwright.constants import (
    METRIC_FAILED_OVER,
    METRIC_PROVIDER_BREAKER_OPEN,
    METRIC_PROVIDER_BREAKER_OPENED,
    METRICS_NAMESPACE,
)

PERIOD = Duration.minutes(5)
WIDTH = 8  # three graphs a row (the grid is 24 wide)
HEIGHT = 6
# SES reviews an account at these rates.
SES_REVIEW_BOUNCE_RATE = 0.05
SES_REVIEW_COMPLAINT_RATE = 0.001


def outcome_search(metric_name: str, statistic: str = "Sum") -> cloudwatch.MathExpression:
    """Every (lane, category) series of one mailwright metric."""
    schema = f"{{{METRICS_NAMESPACE},category,lane,service}}"
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{schema} MetricName=\"{metric_name}\"', '{statistic}', {int(PERIOD.to_seconds())})",
        using_metrics={},
        label=metric_name,
        period=PERIOD,
    )


def provider_search(metric_name: str, statistic: str = "Sum", period: Duration = PERIOD) -> cloudwatch.MathExpression:
    """Every (lane, provider) series of one failover metric."""
    schema = f"{{{METRICS_NAMESPACE},lane,provider,service}}"
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{schema} MetricName=\"{metric_name}\"', '{statistic}', {int(period.to_seconds())})",
        using_metrics={},
        label=metric_name,
        period=period,
    )


class OperationsDashboard(Construct):
    """One CloudWatch dashboard (`dashboard`) for everything an operator looks at first."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: MailwrightConfig,
        queues: Mapping[str, sqs.IQueue],
        dead_letter_queues: Mapping[str, sqs.IQueue],
        alarms: Sequence[cloudwatch.IAlarm],
    ) -> None:
        super().__init__(scope, construct_id)
        # Dashboards are global to an account: the region keeps two deployments of one stack apart.
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{config.stack_name}-{Stack.of(self).region}",
            default_interval=Duration.hours(6),
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# {config.stack_name}\nLanes, outcomes, latency and SES reputation. "
                "Runbook: the README's Operations section. `mailwright lanes status` shows whether bulk is paused.",
                width=24,
                height=2,
            )
        )
        self.dashboard.add_widgets(*self._lane_widgets(queues, dead_letter_queues))
        self.dashboard.add_widgets(*self._outcome_widgets())
        self.dashboard.add_widgets(*self._reputation_widgets(config))
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24, height=4)
        )

    def add_provider_widgets(self, config: MailwrightConfig) -> None:
        """A row for secondary providers: sends per provider, failovers, and the breakers' states."""
        sent = outcome_search("Sent")
        failed_over = provider_search(METRIC_FAILED_OVER)
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown="## Secondary providers\n"
                f"Providers: {', '.join(f'{p.name} ({p.kind})' for p in config.providers)}. "
                "`mailwright providers status` shows each lane's breakers; README: Secondary providers and failover.",
                width=24,
                height=2,
            ),
            cloudwatch.GraphWidget(
                title="Sends per provider (SES: all sends less the secondaries')",
                left=[
                    cloudwatch.MathExpression(
                        expression="SUM(sent) - FILL(SUM(failed), 0)",
                        using_metrics={"sent": sent, "failed": failed_over},
                        label="ses",
                        period=PERIOD,
                    ),
                    provider_search(METRIC_FAILED_OVER),
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Failovers: breakers opened, emails sent by a secondary",
                left=[provider_search(METRIC_PROVIDER_BREAKER_OPENED)],
                right=[provider_search(METRIC_FAILED_OVER)],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Provider breakers open (1) or closed (0), as workers read them",
                left=[provider_search(METRIC_PROVIDER_BREAKER_OPEN, "Maximum", Duration.minutes(1))],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=1),
                width=WIDTH,
                height=HEIGHT,
            ),
        )

    @staticmethod
    def _lane_widgets(
        queues: Mapping[str, sqs.IQueue], dead_letter_queues: Mapping[str, sqs.IQueue]
    ) -> list[cloudwatch.IWidget]:
        one_minute = Duration.minutes(1)
        return [
            cloudwatch.GraphWidget(
                title="Queue depth (visible messages)",
                left=[
                    q.metric_approximate_number_of_messages_visible(period=one_minute, statistic="Maximum", label=name)
                    for name, q in queues.items()
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Oldest message age (s)",
                left=[
                    q.metric_approximate_age_of_oldest_message(period=one_minute, statistic="Maximum", label=name)
                    for name, q in queues.items()
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Throughput (messages consumed per minute)",
                left=[
                    q.metric_number_of_messages_deleted(period=one_minute, statistic="Sum", label=name)
                    for name, q in queues.items()
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queues (visible messages)",
                left=[
                    q.metric_approximate_number_of_messages_visible(period=one_minute, statistic="Maximum", label=name)
                    for name, q in dead_letter_queues.items()
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
        ]

    @staticmethod
    def _outcome_widgets() -> list[cloudwatch.IWidget]:
        return [
            cloudwatch.GraphWidget(
                title="Sent, by lane and category",
                left=[outcome_search("Sent")],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Not sent: suppressed, opted out, rate limited",
                left=[outcome_search(name) for name in ("Suppressed", "OptedOut", "RateLimited")],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Rejected, render failures, SES throttling",
                left=[outcome_search(name) for name in ("Rejected", "RenderFailed", "Throttled")],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Send latency, publish to SES (ms)",
                left=[outcome_search("SendLatency", "p50"), outcome_search("SendLatency", "p99")],
                width=WIDTH,
                height=HEIGHT,
            ),
        ]

    @staticmethod
    def _reputation_widgets(config: MailwrightConfig) -> list[cloudwatch.IWidget]:
        def rate(metric_name: str, label: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=SES_NAMESPACE,
                metric_name=metric_name,
                statistic="Maximum",
                period=Duration.hours(1),
                label=label,
            )

        return [
            cloudwatch.GraphWidget(
                title="SES bounce rate (account)",
                left=[rate(BOUNCE_RATE_METRIC, "bounce rate")],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=BOUNCE_RATE_ALARM, label="alarm: bulk pauses"),
                    cloudwatch.HorizontalAnnotation(value=SES_REVIEW_BOUNCE_RATE, label="SES review"),
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="SES complaint rate (account)",
                left=[rate(COMPLAINT_RATE_METRIC, "complaint rate")],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=COMPLAINT_RATE_ALARM, label="alarm: bulk pauses"),
                    cloudwatch.HorizontalAnnotation(value=SES_REVIEW_COMPLAINT_RATE, label="SES review"),
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Hard bounces and complaints, by lane and category",
                left=[outcome_search("Bounces"), outcome_search("Complaints")],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="SES sends per day, against the quota",
                left=[
                    cloudwatch.Metric(
                        namespace=SES_NAMESPACE, metric_name="Send", statistic="Sum", period=Duration.days(1)
                    )
                ],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=config.alarms.quota_threshold, label="alarm"),
                    cloudwatch.HorizontalAnnotation(value=config.alarms.ses_daily_quota, label="ses_daily_quota"),
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
        ]
