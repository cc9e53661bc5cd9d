"""SES feedback: configuration set events -> SNS topic -> SQS queue (+ DLQ) -> feedback function.

SQS sits between SNS and the function so that a burst of bounces after a
newsletter waits in a queue instead of being throttled away, and so that a
message the function cannot read ends in a DLQ instead of vanishing.
"""

from __future__ import annotations

from dataclasses import replace

from aws_cdk import Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import (
    FEEDBACK_BATCH_SIZE,
    FEEDBACK_MAX_CONCURRENCY,
    FEEDBACK_MAX_RECEIVE_COUNT,
    FEEDBACK_MEMORY_MB,
    FEEDBACK_TIMEOUT_SECONDS,
    FEEDBACK_VISIBILITY_TIMEOUT_SECONDS,
    FeedbackResources,
    MailwrightConfig,
    feedback_environment,
)
from infra.functions import python_function
from infra.topics import encrypted_topic
from mailwright.constants import FEEDBACK_HANDLER

# SESv2 event type names (infra.config) to the CDK's: which events go to the topic is a setting.
SES_EVENTS: dict[str, ses.EmailSendingEvent] = {
    "DELIVERY": ses.EmailSendingEvent.DELIVERY,
    "BOUNCE": ses.EmailSendingEvent.BOUNCE,
    "COMPLAINT": ses.EmailSendingEvent.COMPLAINT,
    "REJECT": ses.EmailSendingEvent.REJECT,
    "OPEN": ses.EmailSendingEvent.OPEN,
    "CLICK": ses.EmailSendingEvent.CLICK,
    "DELIVERY_DELAY": ses.EmailSendingEvent.DELIVERY_DELAY,
    "RENDERING_FAILURE": ses.EmailSendingEvent.RENDERING_FAILURE,
    "SUBSCRIPTION": ses.EmailSendingEvent.SUBSCRIPTION,
}
DLQ_RETENTION = Duration.days(14)
# Feedback is the service's memory of bad addresses: keep it as long as SQS allows.
QUEUE_RETENTION = Duration.days(14)


class Feedback(Construct):
    """The feedback path: `key`, `topic`, `queue`, `dead_letter_queue`, `function`, `event_destination`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: MailwrightConfig,
        code: lambda_.Code,
        configuration_set: ses.IConfigurationSet,
        resources: FeedbackResources,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        configuration_set_arn = stack.format_arn(
            service="ses", resource="configuration-set", resource_name=configuration_set.configuration_set_name
        )

        # SES publishes the events: the topic's key lets it in for this configuration set only (infra.topics).
        self.key, self.topic = encrypted_topic(
            self,
            publisher="ses.amazonaws.com",
            key_description="Encrypts the mailwright SES feedback topic",
            key_statement_sid="AllowSesToPublishToTheEncryptedTopic",
            key_conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": configuration_set_arn},
            },
        )

        self.dead_letter_queue = sqs.Queue(
            self,
            "Dlq",
            retention_period=DLQ_RETENTION,
            # SQS-managed keys work with SNS; a queue under alias/aws/sqs could not receive from it.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            visibility_timeout=Duration.seconds(FEEDBACK_VISIBILITY_TIMEOUT_SECONDS),
            retention_period=QUEUE_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=FEEDBACK_MAX_RECEIVE_COUNT
            ),
        )
        # Raw message delivery off: the function reads the SNS envelope (and raw events too).
        # Messages SNS cannot deliver to the queue wait in the DLQ as well.
        self.topic.add_subscription(
            subscriptions.SqsSubscription(
                self.queue, raw_message_delivery=False, dead_letter_queue=self.dead_letter_queue
            )
        )

        # The destination also adds the topic policy: only ses.amazonaws.com may publish, for
        # this account (aws:SourceAccount) and this configuration set (aws:SourceArn).
        self.event_destination = ses.ConfigurationSetEventDestination(
            self,
            "EventDestination",
            configuration_set=configuration_set,
            destination=ses.EventDestination.sns_topic(self.topic),
            # Bounces, complaints, rejects and rendering failures always; deliveries, opens and clicks
            # as `event_tracking` says (opens and clicks are opt-in); never Send (the worker logs it).
            events=[SES_EVENTS[name] for name in config.published_event_types],
            enabled=True,
        )

        self.function = python_function(
            self,
            "Worker",
            log_group_id="Logs",
            description="mailwright feedback: SES events to suppressions and the message log",
            code=code,
            handler=FEEDBACK_HANDLER,
            timeout=Duration.seconds(FEEDBACK_TIMEOUT_SECONDS),
            memory_mb=FEEDBACK_MEMORY_MB,
            environment=feedback_environment(
                config=config, resources=replace(resources, queue_url=self.queue.queue_url)
            ),
        )
        self.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=FEEDBACK_BATCH_SIZE,
                # Only failed records go back to the queue, not the whole batch.
                report_batch_item_failures=True,
                max_concurrency=FEEDBACK_MAX_CONCURRENCY,
            )
        )
