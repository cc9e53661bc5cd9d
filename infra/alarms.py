"""CloudWatch alarms, all notifying one encrypted SNS topic (with an email subscription when `alarm_email` is set).

| alarm                         | metric                                         | fires when                        |
|-------------------------------|------------------------------------------------|-----------------------------------|
| `<stack>-dlq-<queue>`         | SQS ApproximateNumberOfMessagesVisible (max)   | >= 1 message, any minute          |
| `<stack>-age-<queue>`         | SQS ApproximateAgeOfOldestMessage (max)        | > max_message_age_seconds, 3 min  |
| `<stack>-errors-<function>`   | Lambda Errors (sum)                            | >= 1 in 5 min                     |
| `<stack>-throttles-<function>`| Lambda Throttles (sum)                         | >= 1 in 5 min                     |
| `<stack>-ses-bounce-rate`     | AWS/SES Reputation.BounceRate (max, 1 h)       | >= 4 % (SES reviews at 5 %)       |
| `<stack>-ses-complaint-rate`  | AWS/SES Reputation.ComplaintRate (max, 1 h)    | >= 0.08 % (SES reviews at 0.1 %)  |
| `<stack>-ses-daily-quota`     | AWS/SES Send (sum over one day)                | >= 80 % of ses_daily_quota        |
| `<stack>-ses-quota-hold`      | Mailwright QuotaUsedPercent (max, 15 min)      | >= the bulk lane's quota hold     |
| `<stack>-api-5xx`             | AWS/ApiGateway 5XXError of the stage (sum)     | >= 1 in 5 min                     |
| `<stack>-api-4xx-rate`        | 4XXError / Count of the stage, in percent      | >= 25 % of >= 20 requests, 5 min  |
| `<stack>-provider-breaker-<lane>` | Mailwright ProviderBreakerOpen, SES (max, 1 min) | open for alarm_after_minutes  |
| `<stack>-age-<lane>-dlq`      | SQS ApproximateAgeOfOldestMessage (max)        | > 10 min, 3 min                   |
| `<stack>-webhook-<name>-suspended` | Mailwright WebhookSuspended (max, 5 min)  | the endpoint is suspended         |
| `<stack>-variant-disabled`    | Mailwright VariantDisabled (sum, 5 min)        | >= 1: an A/B variant switched off |

Queues: the lanes', `feedback`, `ingest` (DLQ only), `breaker` (DLQ only) and, with `ingest.kafka`, `kafka`
(the Kafka mapping's on-failure queue); with outcome events (infra/outcome_events.py) each lane's
`dlq-<lane>` alarm watches its parked queue, `age-<lane>-dlq` its DLQ (which the dead-letter function
drains), `dlq-events-publisher` the publisher's DLQ, and each webhook endpoint has `dlq-webhook-<name>`
and `webhook-<name>-suspended`.
Functions: the lane workers and `feedback` (fed by SQS), `unsubscribe` (a public
URL), `breaker` (invoked by EventBridge), `api` (behind API Gateway),
`events-publisher`, `dead-letters` and `webhook-sender`, with secondary
providers `provider-webhook` (a public URL), and with Kafka or RabbitMQ
ingest `bridge`; each alarm's description says what its failure means for
the mail and what to do. The provider breaker alarms exist only with
`providers` in context.
The two reputation alarms also drive the bulk lane's circuit breaker (infra/breaker.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.breaker import FUNCTION_MAX_EVENT_AGE_HOURS, FUNCTION_RETRY_ATTEMPTS
from infra.config import (
    BOUNCE_RATE_ALARM,
    COMPLAINT_RATE_ALARM,
    QUOTA_ALARM_RATIO,
    MailwrightConfig,
    lane_provider,
)
from infra.topics import encrypted_topic
from mailwright.constants import (
    LANES,
    METRIC_PROVIDER_BREAKER_OPEN,
    METRIC_VARIANT_DISABLED,
    METRICS_NAMESPACE,
    PROVIDER_SES,
    QUOTA_USED_METRIC,
    SERVICE_NAME,
)

SES_NAMESPACE = "AWS/SES"
# SES publishes its reputation rates account-wide with no dimensions: the rates its review looks at.
BOUNCE_RATE_METRIC = "Reputation.BounceRate"
COMPLAINT_RATE_METRIC = "Reputation.ComplaintRate"
# A queue's metrics arrive once a minute; a function's are summed over five.
QUEUE_PERIOD = Duration.minutes(1)
FUNCTION_PERIOD = Duration.minutes(5)
# How many consecutive minutes a queue's oldest message must be too old.
AGE_EVALUATION_PERIODS = 3
# The reputation rates move slowly (SES computes them over a representative volume, not a window).
REPUTATION_PERIOD = Duration.hours(1)
# SES's sending quota is a rolling 24 hours; one day is also the longest period an alarm may have.
QUOTA_PERIOD = Duration.days(1)
# The workers report SES's own figure (SentLast24Hours / Max24HourSend) each time one reads it, every
# 5 minutes and every 30 s near a hold: 15 minutes always holds a report.
QUOTA_USED_PERIOD = Duration.minutes(15)
# The HTTPS API: a share of client errors this high, over at least this many requests in five
# minutes, is a spike (a client gone wrong, refused signatures, throttling, someone probing ids).
API_4XX_RATE_PERCENT = 25
API_4XX_MIN_REQUESTS = 20
# Workers report a breaker's state every 30 s while their lane sends: one-minute periods always have one.
BREAKER_STATE_PERIOD = Duration.minutes(1)


@dataclass(frozen=True)
class MonitoredQueues:
    """The queues the alarms watch, by name: lanes (`critical`...), `feedback` and, for DLQs, `ingest`."""

    queues: Mapping[str, sqs.IQueue]
    dead_letter_queues: Mapping[str, sqs.IQueue]


class Alarms(Construct):
    """The alarm topic (`topic`, encrypted with `key`) and every alarm (`alarms`, by short name)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: MailwrightConfig, watched: MonitoredQueues
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = config.stack_name
        stack = Stack.of(self)

        # CloudWatch publishes the alarms: the topic's key must let it in (infra.topics).
        self.key, self.topic = encrypted_topic(
            self,
            publisher="cloudwatch.amazonaws.com",
            key_description="Encrypts the mailwright alarm topic",
            key_statement_sid="AllowCloudWatchAlarmsToUseTheKey",
            display_name="mailwright alarms",
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        if config.alarms.email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarms.email))
        self._action = cloudwatch_actions.SnsAction(self.topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        for name, dlq in watched.dead_letter_queues.items():
            self._dead_letter_queue(
                name,
                dlq,
                description=f"Messages wait in the {name} dead-letter queue. Look with `mailwright dlq list --lane "
                f"{name}`, fix the cause, then `mailwright dlq redrive --lane {name}`.",
            )
        for name, queue in watched.queues.items():
            self._queue_age(name, queue, config.alarms.max_message_age_seconds[name])
        self.bounce_rate = self._reputation(
            "ses-bounce-rate",
            BOUNCE_RATE_METRIC,
            BOUNCE_RATE_ALARM,
            "SES bounce rate >= 4% (SES reviews the account at 5%). The bulk lane is paused. Find the source "
            "(a list import? one template?) in the dashboard's Bounces by lane and category, fix it, then "
            "`mailwright lanes resume bulk`.",
        )
        self.complaint_rate = self._reputation(
            "ses-complaint-rate",
            COMPLAINT_RATE_METRIC,
            COMPLAINT_RATE_ALARM,
            "SES complaint rate >= 0.08% (SES reviews the account at 0.1%). The bulk lane is paused. Check "
            "Complaints by category, consent and unsubscribe links of recent campaigns, then "
            "`mailwright lanes resume bulk`.",
        )
        self.quota = self._add(
            "ses-daily-quota",
            cloudwatch.Metric(namespace=SES_NAMESPACE, metric_name="Send", statistic="Sum", period=QUOTA_PERIOD),
            threshold=config.alarms.quota_threshold,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=f"Sends in the last day reached {QUOTA_ALARM_RATIO:.0%} of ses_daily_quota "
            f"({config.alarms.ses_daily_quota}). Ask AWS for a higher quota, or slow bulk sending "
            "(`mailwright lanes pause bulk`), before SES starts refusing mail.",
        )
        # SES's own count against its own quota (GetAccount), as the workers report it: pacing holds the
        # lowest lane (bulk) from this share on, so critical mail keeps the rest of the day's quota.
        hold = min(config.quota_holds.values(), default=1.0)
        self.quota_hold = self._add(
            "ses-quota-hold",
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=QUOTA_USED_METRIC,
                dimensions_map={"service": SERVICE_NAME},
                statistic="Maximum",
                period=QUOTA_USED_PERIOD,
            ),
            threshold=round(100 * hold, 2),
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=f"SES reports {hold:.0%} of the account's 24-hour quota used: mailwright holds "
            f"{', '.join(sorted(lane for lane, share in config.quota_holds.items() if share <= hold))} mail "
            "(it waits in its queue and is sent as the quota frees up). Ask AWS for a higher quota if this "
            "is the new normal.",
        )

    @property
    def reputation_alarms(self) -> list[cloudwatch.Alarm]:
        """The alarms the reputation circuit breaker follows."""
        return [self.bounce_rate, self.complaint_rate]

    def watch_functions(self, functions: Mapping[str, lambda_.IFunction]) -> None:
        """Errors and throttles alarms for the functions an SQS queue feeds, by short name (`critical-worker`...)."""
        for name, function in functions.items():
            self._function_alarms(
                name,
                function,
                on_error=f"The {name} function failed an invocation (a crash or timeout, not a rejected request): "
                "its batch returns to the queue, is retried, and ends in the dead-letter queue if it keeps failing. "
                "Read its log group for the error.",
                on_throttle=f"Lambda throttled the {name} function: its messages wait in the queue. The account's "
                "concurrency is exhausted, or reserved concurrency is below the event source's maximum concurrency.",
            )

    def watch_unsubscribe_endpoint(self, function: lambda_.IFunction, *, reserved_concurrency: int | None) -> None:
        """Errors and throttles alarms for the public unsubscribe endpoint (`unsubscribe`)."""
        cap = (
            f"its reserved concurrency (unsubscribe.reserved_concurrency, {reserved_concurrency})"
            if reserved_concurrency is not None
            else "the account's unreserved concurrency (unsubscribe.reserved_concurrency is null)"
        )
        self._function_alarms(
            "unsubscribe",
            function,
            on_error="The unsubscribe endpoint failed a request (a crash or timeout; a bad or expired link is not an "
            "error): the caller got an HTTP 5xx and the opt-out may not be recorded. Nothing retries it: the "
            "recipient must use the link again. Read its log group for the error.",
            on_throttle=f"The unsubscribe endpoint was called beyond {cap}: those callers got HTTP 429 and nothing "
            "was recorded for them. A burst of clicks after a campaign, or a flood of requests: check the function's "
            "invocations and its log group; if the traffic is genuine, raise unsubscribe.reserved_concurrency.",
        )

    def watch_producer_api(self, stage: apigateway.Stage) -> None:
        """Server errors of the producers' API stage (its function is watched with the IAM API's, `api`)."""
        self._add(
            "producer-api-5xx",
            stage.metric_server_error(period=FUNCTION_PERIOD, statistic="Sum"),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description="The producers' API answered HTTP 5xx: its function failed (errors-api), no request of a "
            "submission could be queued (503: SQS refused them; the producer was told to retry), or the message log "
            "could not be read. Read the API function's log group and the stage's access log (`error`, `apiKeyId`).",
        )

    def watch_api(self, stage: apigateway.Stage, function: lambda_.IFunction) -> None:
        """Server errors and client-error spikes of the HTTPS API's stage, and its function's errors (`api`)."""
        self._add(
            "api-5xx",
            stage.metric_server_error(period=FUNCTION_PERIOD, statistic="Sum"),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description="The HTTPS API answered HTTP 5xx: its function failed (errors-api), the message log could not "
            "be read (503, DynamoDB throttled or unreachable), or API Gateway itself failed. Read the API "
            "function's log group and the stage's access log (the `error` field).",
        )
        self._add(
            "api-4xx-rate",
            cloudwatch.MathExpression(
                expression=f"IF(requests >= {API_4XX_MIN_REQUESTS}, 100 * errors / requests, 0)",
                using_metrics={
                    "errors": stage.metric_client_error(period=FUNCTION_PERIOD, statistic="Sum"),
                    "requests": stage.metric_count(period=FUNCTION_PERIOD, statistic="Sum"),
                },
                label="4xx share of API requests (%)",
                period=FUNCTION_PERIOD,
            ),
            threshold=API_4XX_RATE_PERCENT,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=f"At least {API_4XX_RATE_PERCENT}% of the HTTPS API's requests in 5 minutes got HTTP 4xx: "
            "a client sending bad requests, refused signatures (403), throttling (429: see api.throttling_*), or "
            "someone probing request ids (404). The stage's access log names the callers and the error types.",
        )
        self._function_alarms(
            "api",
            function,
            on_error="The HTTPS API's function failed a request (a crash or timeout): the caller got HTTP 5xx. "
            "Nothing is lost (the API only reads); read its log group for the error.",
            on_throttle="Lambda throttled the HTTPS API's function: callers got HTTP 5xx. The account's "
            "concurrency is exhausted; the stage's throttle (api.throttling_*) keeps the API itself below it.",
        )

    def watch_breaker(self, function: lambda_.IFunction, *, dead_letter_queue: sqs.IQueue) -> None:
        """Errors, throttles and dead-letter alarms for the reputation circuit breaker (`breaker`)."""
        self._dead_letter_queue(
            "breaker",
            dead_letter_queue,
            # Not requests but alarm state changes, with no queue to send them back to.
            description="A reputation alarm's state change waits in the breaker's dead-letter queue: EventBridge "
            "could not deliver it, or the breaker failed on it, so the bulk lane may not have been paused or "
            "resumed. Check `mailwright lanes status` and the reputation alarms, pause or resume bulk by hand, "
            "read the breaker's log group and `mailwright dlq list --lane breaker`, then purge the queue.",
        )
        self._function_alarms(
            "breaker",
            function,
            on_error="The breaker failed on a reputation alarm's state change (a crash or timeout): Lambda retries "
            f"it {FUNCTION_RETRY_ATTEMPTS} times, then the event goes to the breaker's dead-letter queue "
            "(dlq-breaker), and the bulk lane may not have been paused or resumed. Check `mailwright lanes status` "
            "and read the breaker's log group.",
            on_throttle="Lambda throttled the breaker: the account's concurrency is exhausted. Lambda retries the "
            f"state change for up to {FUNCTION_MAX_EVENT_AGE_HOURS} hours (then dead-letters it); meanwhile the bulk "
            "lane is not paused or resumed: check `mailwright lanes status` and the reputation alarms, and pause "
            "bulk by hand (`mailwright lanes pause bulk`) if one is in ALARM.",
        )

    def watch_provider_breakers(self, config: MailwrightConfig) -> None:
        """One alarm per lane on SES's provider breaker staying open (`provider-breaker-<lane>`), with providers."""
        for lane in LANES:
            provider = lane_provider(config, lane)
            if provider is None:
                continue
            settings = config.failover[lane]
            minutes = settings.alarm_after_minutes
            where = (
                f"its mail goes out through {provider.name}"
                if settings.enabled
                else "its mail waits in the queue (this lane does not fail over)"
            )
            self._add(
                f"provider-breaker-{lane}",
                cloudwatch.Metric(
                    namespace=METRICS_NAMESPACE,
                    metric_name=METRIC_PROVIDER_BREAKER_OPEN,
                    dimensions_map={"service": SERVICE_NAME, "lane": lane, "provider": PROVIDER_SES},
                    statistic="Maximum",
                    period=BREAKER_STATE_PERIOD,
                ),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=minutes,
                # Workers report the state only while the lane sends: a quiet minute neither trips nor clears
                # the alarm (CloudWatch looks further back for the minutes that were reported).
                missing=cloudwatch.TreatMissingData.IGNORE,
                description=f"SES's breaker on the {lane} lane has been open for {minutes} minutes: {where}. "
                "SES is failing (5xx, timeouts) or refusing the account (sending paused, daily quota used up): "
                "check the AWS Health Dashboard and `aws sesv2 get-account`, and `mailwright providers status` "
                "for the reason. The breaker probes SES and closes by itself once SES answers; "
                f"`mailwright providers restore {lane}` closes it by hand.",
            )

    def watch_variants(self) -> None:
        """One alarm for every template's A/B variants: a variant was switched off automatically.

        The workers and the feedback function count VariantDisabled once without template and variant,
        so one alarm covers variants that do not exist yet (one alarm per variant would need a deploy per
        template change); the per-variant counts, the logs and `mailwright templates report` say which.
        """
        self._add(
            "variant-disabled",
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=METRIC_VARIANT_DISABLED,
                dimensions_map={"service": SERVICE_NAME},
                statistic="Sum",
                period=FUNCTION_PERIOD,
            ),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description="An A/B variant of a template was switched off: its complaint rate or rendering-failure "
            "rate passed the `variants` thresholds in context, and its recipients now get the other variants. "
            "`mailwright templates report <template>` shows which variant, its counts and why; the workers' and "
            'the feedback function\'s logs say "variant switched off". Fix or retire the variant, then '
            "`mailwright templates variant <template> <variant> on`.",
        )

    def watch_provider_webhook(self, function: lambda_.IFunction, *, reserved_concurrency: int | None) -> None:
        """Errors and throttles alarms for the public provider webhook (`provider-webhook`)."""
        cap = (
            f"its reserved concurrency (provider_webhook.reserved_concurrency, {reserved_concurrency})"
            if reserved_concurrency is not None
            else "the account's unreserved concurrency (provider_webhook.reserved_concurrency is null)"
        )
        self._function_alarms(
            "provider-webhook",
            function,
            on_error="The provider webhook failed a request (a crash or timeout; a forged or unsigned request is "
            "not an error): the provider got an HTTP 5xx and retries it (SendGrid for 24 hours, Mailgun for 8), "
            "so nothing is lost yet. Read its log group for the error.",
            on_throttle=f"The provider webhook was called beyond {cap}: those posts got HTTP 429 and the providers "
            "retry them. A burst of events after a campaign, or a flood of forged posts (the WebhookRefused "
            "metric): check its log group; if the traffic is genuine, raise provider_webhook.reserved_concurrency.",
        )

    def watch_bridge(self, function: lambda_.IFunction, *, kafka_failures: sqs.IQueue | None) -> None:
        """Errors and throttles of the ingest bridge (`bridge`), and the Kafka mapping's failure queue (`kafka`)."""
        self._function_alarms(
            "bridge",
            function,
            on_error="The ingest bridge failed a batch (a lane queue kept refusing, or the message log or the "
            "templates bucket was unreachable; an invalid record is never an error): the event source mapping "
            "retries it. Kafka gives up after ingest.kafka.retry_attempts (see dlq-kafka); RabbitMQ redelivers "
            "it from the broker. Read the bridge's log group for the error.",
            on_throttle="Lambda throttled the ingest bridge: records wait in Kafka or RabbitMQ (nothing is lost, "
            "latency grows). The account's concurrency is exhausted.",
        )
        if kafka_failures is not None:
            self._dead_letter_queue(
                "kafka",
                kafka_failures,
                description="The Kafka event source mapping gave up on a batch (retries exhausted or records older "
                "than ingest.kafka.max_record_age_seconds) and skipped it. Each message names the topic, partition "
                "and offsets: read them from the topic and publish them again once the bridge's errors are fixed "
                "(duplicates are sent once), then delete the message (the queue is the stack output "
                "KafkaFailureQueueUrl: `aws sqs receive-message --queue-url URL`).",
            )

    def watch_outcome_events(
        self,
        *,
        publisher: lambda_.IFunction,
        publisher_dead_letter_queue: sqs.IQueue,
        dead_letters: lambda_.IFunction,
        drained_dead_letter_queues: Mapping[str, sqs.IQueue],
    ) -> None:
        """Alarms of the events publisher (`events-publisher`) and the dead-letter function (`dead-letters`)."""
        self._dead_letter_queue(
            "events-publisher",
            publisher_dead_letter_queue,
            description="The events publisher gave up on message-log changes after retrying them for up to a day: "
            "their outcome events were not published (the outcomes themselves are in the message log). Each "
            "message names the stream records; read the publisher's log group for why (EventBridge refusing? a "
            "bus policy?), then purge the queue once consumers have been told.",
        )
        self._function_alarms(
            "events-publisher",
            publisher,
            on_error="The events publisher failed an invocation: its batch of message-log changes is retried "
            "(bisected) from the stream, so events are late, not lost, unless it keeps failing for a day "
            "(dlq-events-publisher). Read its log group.",
            on_throttle="Lambda throttled the events publisher: outcome events wait in the message log's stream "
            "(24 hours). The account's concurrency is exhausted.",
        )
        self._function_alarms(
            "dead-letters",
            dead_letters,
            on_error="The dead-letter function failed an invocation: those requests stay in their DLQ and are "
            "tried again, so EmailFailed is late, not lost. Read its log group.",
            on_throttle="Lambda throttled the dead-letter function: dead letters wait in their DLQ.",
        )
        for name, dlq in drained_dead_letter_queues.items():
            self._add(
                f"age-{name}-dlq",
                dlq.metric_approximate_age_of_oldest_message(period=QUEUE_PERIOD, statistic="Maximum"),
                threshold=600,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=AGE_EVALUATION_PERIODS,
                missing=cloudwatch.TreatMissingData.NOT_BREACHING,
                description=f"A message waits in the {name} dead-letter queue for more than 10 minutes: the "
                "dead-letter function is not moving it to the parked queue (no EmailFailed yet). Read the "
                "dead-letters function's log group; `mailwright dlq list` shows both queues.",
            )

    def watch_webhooks(
        self,
        *,
        function: lambda_.IFunction,
        dead_letter_queues: Mapping[str, sqs.IQueue],
        namespace: str,
        service: str,
    ) -> None:
        """Alarms of the webhook sender and of each endpoint: its DLQ, and whether it is suspended."""
        self._function_alarms(
            "webhook-sender",
            function,
            on_error="The webhook sender failed an invocation: its deliveries return to their endpoint's queue "
            "and are tried again (after maxReceiveCount, the endpoint's DLQ). Read its log group.",
            on_throttle="Lambda throttled the webhook sender: deliveries wait in their endpoints' queues.",
        )
        for name, dlq in dead_letter_queues.items():
            self._dead_letter_queue(
                f"webhook-{name}",
                dlq,
                description=f"Deliveries to webhook endpoint {name} wait in its dead-letter queue: the sender kept "
                "failing on them, or EventBridge could not queue them. Read the webhook sender's log group, then "
                f"`mailwright webhooks replay {name}`.",
            )
            self._add(
                f"webhook-{name}-suspended",
                cloudwatch.Metric(
                    namespace=namespace,
                    metric_name="WebhookSuspended",
                    dimensions_map={"service": service, "endpoint": name},
                    statistic="Maximum",
                    period=FUNCTION_PERIOD,
                ),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                # The sender reports the state with every batch; no traffic keeps the last state.
                missing=cloudwatch.TreatMissingData.IGNORE,
                description=f"Webhook endpoint {name} is suspended (it answered 410 Gone, or no delivery got through "
                "for a day): its deliveries are archived, none is attempted. `mailwright webhooks list` says why; "
                f"once it answers again, `mailwright webhooks resume {name}` then `mailwright webhooks replay {name}`.",
            )

    def _function_alarms(self, name: str, function: lambda_.IFunction, *, on_error: str, on_throttle: str) -> None:
        self._add(
            f"errors-{name}",
            function.metric_errors(period=FUNCTION_PERIOD, statistic="Sum"),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=on_error,
        )
        self._add(
            f"throttles-{name}",
            function.metric_throttles(period=FUNCTION_PERIOD, statistic="Sum"),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=on_throttle,
        )

    def _dead_letter_queue(self, name: str, dlq: sqs.IQueue, *, description: str) -> None:
        self._add(
            f"dlq-{name}",
            dlq.metric_approximate_number_of_messages_visible(period=QUEUE_PERIOD, statistic="Maximum"),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            # An empty, idle queue stops reporting: no data means nothing is waiting.
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=description,
        )

    def _queue_age(self, name: str, queue: sqs.IQueue, seconds: int) -> None:
        self._add(
            f"age-{name}",
            queue.metric_approximate_age_of_oldest_message(period=QUEUE_PERIOD, statistic="Maximum"),
            threshold=seconds,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=AGE_EVALUATION_PERIODS,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=f"The oldest message in the {name} queue is older than {seconds} s: its function is "
            "failing, throttled, paused (`mailwright lanes status`) or too slow for the traffic.",
        )

    def _reputation(self, short_name: str, metric_name: str, threshold: float, description: str) -> cloudwatch.Alarm:
        return self._add(
            short_name,
            cloudwatch.Metric(
                namespace=SES_NAMESPACE, metric_name=metric_name, statistic="Maximum", period=REPUTATION_PERIOD
            ),
            threshold=threshold,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            # A gap in the data (SES publishes these sparsely) neither trips nor releases the breaker.
            missing=cloudwatch.TreatMissingData.IGNORE,
            description=description,
        )

    def _add(
        self,
        short_name: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        evaluation_periods: int,
        missing: cloudwatch.TreatMissingData,
        description: str,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            "".join(part.capitalize() for part in short_name.split("-")),
            alarm_name=f"{self._prefix}-{short_name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            treat_missing_data=missing,
        )
        # Both ways: the all-clear matters too (and says when a paused lane may be resumed).
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms[short_name] = alarm
        return alarm
