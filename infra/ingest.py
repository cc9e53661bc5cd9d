"""EventBridge ingest: a custom bus whose rules route requests to the lane queues by priority."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import priority_filter
from infra.nag import acknowledge
from mailwright.constants import EVENT_DETAIL_TYPE

__all__ = ["Ingest", "priority_filter"]


class Ingest(Construct):
    """The bus (`bus`), one rule per lane (`rules`) and the DLQ of undeliverable events (`dead_letter_queue`)."""

    def __init__(self, scope: Construct, construct_id: str, *, bus_name: str, queues: Mapping[str, sqs.IQueue]) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=bus_name)
        # Events EventBridge could not put on a lane queue wait here instead of vanishing.
        self.dead_letter_queue = sqs.Queue(
            self,
            "Dlq",
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself a dead-letter queue: the one of the bus rules' SQS targets (cdk-nag only "
            "recognises queues named in another queue's redrive policy). Its messages are alarmed on and redriven.",
        )
        self.rules: dict[str, events.Rule] = {}
        for lane, queue in queues.items():
            self.rules[lane] = events.Rule(
                self,
                f"{lane.capitalize()}Rule",
                event_bus=self.bus,
                description=f"mailwright requests for the {lane} lane",
                event_pattern=events.EventPattern(
                    detail_type=[EVENT_DETAIL_TYPE],
                    detail={"priority": priority_filter(lane)},
                ),
                targets=[
                    targets.SqsQueue(
                        queue,
                        # The queue gets the request itself, exactly as a direct producer sends it.
                        message=events.RuleTargetInput.from_event_path("$.detail"),
                        dead_letter_queue=self.dead_letter_queue,
                        # EventBridge's own maximums: an SQS hiccup is retried for a day
                        # before the event is parked in the DLQ.
                        retry_attempts=185,
                        max_event_age=Duration.hours(24),
                    )
                ],
            )
