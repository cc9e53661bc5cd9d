"""The lane queues: one SQS queue, one dead-letter queue and one parked queue per lane.

The dead-letter function (infra/outcome_events.py) records each dead letter
as failed (EmailFailed) and moves it to the lane's parked queue; the parked
queue is also the DLQ's own dead-letter queue, a backstop for messages the
function keeps failing on, and that makes it a queue SQS's message move task
(`mailwright dlq redrive`) accepts as a source.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import LaneConfig
from infra.events_config import PARKING_MAX_RECEIVE_COUNT

# The longest SQS keeps a message: time for an operator to look and redrive.
DLQ_RETENTION = Duration.days(14)
# Long enough to ride out a weekend-long SES or downstream outage.
QUEUE_RETENTION = Duration.days(4)


class LaneQueues(Construct):
    """Per lane (by name) its queue, DLQ and parked queue: `queues`, `dead_letter_queues`, `parked_queues`."""

    def __init__(self, scope: Construct, construct_id: str, *, lanes: Mapping[str, LaneConfig]) -> None:
        super().__init__(scope, construct_id)
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        self.parked_queues: dict[str, sqs.Queue] = {}
        for name, lane in lanes.items():
            lane_id = name.capitalize()
            parked = sqs.Queue(
                self,
                f"{lane_id}Parked",
                # Counted from when the dead-letter function parked it.
                retention_period=DLQ_RETENTION,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
            )
            dlq = sqs.Queue(
                self,
                f"{lane_id}Dlq",
                retention_period=DLQ_RETENTION,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                dead_letter_queue=sqs.DeadLetterQueue(queue=parked, max_receive_count=PARKING_MAX_RECEIVE_COUNT),
            )
            self.queues[name] = sqs.Queue(
                self,
                f"{lane_id}Queue",
                # A message stays invisible for a whole batch's worth of retries
                # inside one invocation, as AWS advises for Lambda event sources.
                visibility_timeout=Duration.seconds(lane.visibility_timeout_seconds),
                retention_period=QUEUE_RETENTION,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                # Throttled sends are backed off and received again, so the count
                # must tolerate several throttles before a message is given up on.
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=lane.max_receive_count),
            )
            self.dead_letter_queues[name] = dlq
            self.parked_queues[name] = parked
