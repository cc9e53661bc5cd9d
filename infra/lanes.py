"""The lane queues: one SQS queue and one dead-letter queue per lane."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import LaneConfig

# The longest SQS keeps a message: time for an operator to look and redrive.
DLQ_RETENTION = Duration.days(14)
# Long enough to ride out a weekend-long SES or downstream outage.
QUEUE_RETENTION = Duration.days(4)


class LaneQueues(Construct):
    """Each lane's queue and DLQ, keyed by lane name in `queues` and `dead_letter_queues`."""

    def __init__(self, scope: Construct, construct_id: str, *, lanes: Mapping[str, LaneConfig]) -> None:
        super().__init__(scope, construct_id)
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        for name, lane in lanes.items():
            lane_id = name.capitalize()
            dlq = sqs.Queue(
                self,
                f"{lane_id}Dlq",
                retention_period=DLQ_RETENTION,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
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
