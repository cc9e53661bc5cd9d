"""Outcome events: the message log's stream -> the events publisher -> the bus; and requests that reach a DLQ.

The publisher reads the messages table's stream (NEW_AND_OLD_IMAGES) through
an event source mapping that passes on only writes to request items (INSERT
and MODIFY of `sk = request`: no TTL deletions, no stray event items), and
puts the configured detail-types on the stack's bus. A batch it cannot
publish is retried (bisected, so one bad record is isolated) for up to the
stream's 24 hours, then named in the publisher's DLQ (alarmed); the outcomes
are in the log whatever happens to their events.

Each lane's DLQ (and the ingest DLQ) feeds the dead-letter function, which
records the request as `failed` (the stream then publishes one EmailFailed)
and moves the message, unchanged, to the lane's parked queue: that is where
`mailwright dlq list|redrive` finds it, and what the `dlq-<lane>` alarms watch.

Accounts named in `event_consumers` may create and manage their own rules on
the bus (and only the rules they created): cross-account subscription.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import MailwrightConfig
from infra.events_config import (
    DEAD_LETTER_BATCH_SIZE,
    DEAD_LETTER_MEMORY_MB,
    DEAD_LETTER_TIMEOUT_SECONDS,
    PUBLISHER_BATCH_SIZE,
    PUBLISHER_BATCHING_WINDOW_SECONDS,
    PUBLISHER_MAX_RECORD_AGE_SECONDS,
    PUBLISHER_MEMORY_MB,
    PUBLISHER_RETRY_ATTEMPTS,
    PUBLISHER_TIMEOUT_SECONDS,
    DeadLetterSource,
    dead_letter_environment,
    publisher_environment,
)
from infra.functions import python_function
from infra.nag import XRAY_REASON, acknowledge
from mailwright.constants import DEAD_LETTERS_HANDLER, EVENTS_PUBLISHER_HANDLER, MESSAGE_LOG_REQUEST_SK, Keys

# The publisher's DLQ keeps what it names as long as SQS keeps anything.
DLQ_RETENTION = Duration.days(14)
# What a consumer account may do on the bus: manage rules, and only the ones it created.
CONSUMER_RULE_ACTIONS = [
    "events:PutRule",
    "events:PutTargets",
    "events:DeleteRule",
    "events:RemoveTargets",
    "events:DisableRule",
    "events:EnableRule",
    "events:TagResource",
    "events:UntagResource",
    "events:DescribeRule",
    "events:ListTargetsByRule",
    "events:ListTagsForResource",
]


def _queue(scope: Construct, construct_id: str, why_no_dlq: str) -> sqs.Queue:
    queue = sqs.Queue(
        scope,
        construct_id,
        retention_period=DLQ_RETENTION,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
    )
    acknowledge(queue, "AwsSolutions-SQS3", why_no_dlq)
    return queue


class OutcomeEvents(Construct):
    """`publisher` (+ `publisher_dead_letter_queue`), and `dead_letters`, parking into each lane's `parked_queues`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: MailwrightConfig,
        code: lambda_.Code,
        bus: events.EventBus,
        messages: dynamodb.Table,
        lane_dead_letter_queues: Mapping[str, sqs.IQueue],
        parked_queues: Mapping[str, sqs.IQueue],
        ingest_dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self._bus = bus
        self.parked_queues = dict(parked_queues)
        self._add_publisher(config, code, bus, messages)
        self._add_consumers(config, bus)
        self._add_dead_letters(config, code, messages, lane_dead_letter_queues, ingest_dead_letter_queue)

    def _add_publisher(
        self, config: MailwrightConfig, code: lambda_.Code, bus: events.EventBus, messages: dynamodb.Table
    ) -> None:
        self.publisher_dead_letter_queue = _queue(
            self,
            "PublisherDlq",
            "This queue is itself a dead-letter queue: the on-failure destination of the events publisher's stream "
            "mapping (cdk-nag only recognises queues named in another queue's redrive policy). Alarmed on.",
        )
        self.publisher = python_function(
            self,
            "Publisher",
            log_group_id="PublisherLogs",
            description="mailwright events publisher: the message log's changes to outcome events on the bus",
            code=code,
            handler=EVENTS_PUBLISHER_HANDLER,
            timeout=Duration.seconds(PUBLISHER_TIMEOUT_SECONDS),
            memory_mb=PUBLISHER_MEMORY_MB,
            environment=publisher_environment(bus_name=bus.event_bus_name, detail_types=config.events.outcome_events),
        )
        self.publisher.add_event_source(
            event_sources.DynamoEventSource(
                messages,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=PUBLISHER_BATCH_SIZE,
                max_batching_window=Duration.seconds(PUBLISHER_BATCHING_WINDOW_SECONDS),
                # One poller per shard: a request's events go out in the order of its writes.
                parallelization_factor=1,
                bisect_batch_on_error=True,
                report_batch_item_failures=True,
                retry_attempts=PUBLISHER_RETRY_ATTEMPTS,
                max_record_age=Duration.seconds(PUBLISHER_MAX_RECORD_AGE_SECONDS),
                on_failure=event_sources.SqsDlq(self.publisher_dead_letter_queue),
                # Writes to request items only: TTL deletions and event items announce nothing.
                filters=[
                    lambda_.FilterCriteria.filter(
                        {
                            "eventName": lambda_.FilterRule.or_("INSERT", "MODIFY"),
                            "dynamodb": {
                                "Keys": {Keys.MESSAGES_SK: {"S": lambda_.FilterRule.is_equal(MESSAGE_LOG_REQUEST_SK)}}
                            },
                        }
                    )
                ],
            )
        )
        # events:PutEvents on this bus, nothing else.
        bus.grant_put_events_to(self.publisher)
        acknowledge(
            self.publisher.role or self.publisher,
            "AwsSolutions-IAM5[Resource::*]",
            f"{XRAY_REASON} The statement also holds dynamodb:ListStreams, which the stream's event source mapping "
            "needs and which has no resource-level permissions either (it lists stream ARNs, reads nothing).",
        )

    def _add_consumers(self, config: MailwrightConfig, bus: events.EventBus) -> None:
        stack = Stack.of(self)
        rules = stack.format_arn(service="events", resource="rule", resource_name=f"{bus.event_bus_name}/*")
        for account in config.events.event_consumers:
            # One statement per account: each may manage only the rules it created (events:creatorAccount),
            # so it can neither read nor change the stack's own rules or another consumer's.
            statement = iam.PolicyStatement(
                sid=f"ConsumerRules{account}",
                principals=[iam.AccountPrincipal(account)],
                actions=CONSUMER_RULE_ACTIONS,
                resources=[rules],
                conditions={"StringEqualsIfExists": {"events:creatorAccount": account}},
            )
            events.CfnEventBusPolicy(
                self,
                f"Consumer{account}",
                event_bus_name=bus.event_bus_name,
                statement_id=f"ConsumerRules{account}",
                statement=statement.to_statement_json(),
            )

    def _add_dead_letters(
        self,
        config: MailwrightConfig,
        code: lambda_.Code,
        messages: dynamodb.Table,
        lane_dead_letter_queues: Mapping[str, sqs.IQueue],
        ingest_dead_letter_queue: sqs.IQueue,
    ) -> None:
        sources = [
            DeadLetterSource(arn=dlq.queue_arn, lane=lane, parked_url=self.parked_queues[lane].queue_url)
            for lane, dlq in lane_dead_letter_queues.items()
        ]
        # Requests EventBridge could not deliver to a lane: parked on the lane their priority names.
        default_parked = self.parked_queues.get("standard") or next(iter(self.parked_queues.values()))
        sources.append(
            DeadLetterSource(arn=ingest_dead_letter_queue.queue_arn, lane="ingest", parked_url=default_parked.queue_url)
        )
        self.dead_letters = python_function(
            self,
            "DeadLetters",
            log_group_id="DeadLetterLogs",
            description="mailwright dead letters: requests in a DLQ recorded as failed (EmailFailed) and parked",
            code=code,
            handler=DEAD_LETTERS_HANDLER,
            timeout=Duration.seconds(DEAD_LETTER_TIMEOUT_SECONDS),
            memory_mb=DEAD_LETTER_MEMORY_MB,
            environment=dead_letter_environment(
                messages_table=messages.table_name,
                message_log_ttl_days=config.message_log_ttl_days,
                sources=sources,
            ),
        )
        for dlq in [*lane_dead_letter_queues.values(), ingest_dead_letter_queue]:
            self.dead_letters.add_event_source(
                event_sources.SqsEventSource(
                    dlq,
                    batch_size=DEAD_LETTER_BATCH_SIZE,
                    report_batch_item_failures=True,
                    max_concurrency=2,
                )
            )
        # One conditional UpdateItem per dead letter on the request's item: no read, put or delete.
        self.dead_letters.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[messages.table_arn])
        )
        for parked in self.parked_queues.values():
            parked.grant_send_messages(self.dead_letters)
