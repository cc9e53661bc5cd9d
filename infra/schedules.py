"""Scheduled sends: the EventBridge Scheduler group, key, role and dead-letter queue of the long schedules.

A request whose `send_at` is more than 15 minutes ahead is held by a one-time
schedule the send worker creates in this group (mailwright.scheduling): at
the time, EventBridge Scheduler puts the request on its lane queue with the
execution role, which may send to the lane queues and to the schedules' DLQ,
and decrypt with the key, nothing else. The schedules hold the request
(recipient address included), so they are encrypted with a customer managed
key, rotated yearly. What EventBridge could not deliver after its retries
lands in the DLQ, which is alarmed (`dlq-schedules`).

The workers may create, move and delete schedules in this group only, and pass
this role only; the HTTPS API may delete them (a cancel).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import schedule_environment
from infra.lanes import DLQ_RETENTION
from infra.nag import acknowledge


class ScheduledSends(Construct):
    """The group, key (`key`), execution role (`role`) and DLQ (`dead_letter_queue`) of the long schedules."""

    def __init__(
        self, scope: Construct, construct_id: str, *, stack_name: str, queues: Mapping[str, sqs.IQueue]
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self._queues = dict(queues)
        self.group_name = f"{stack_name}-schedules"
        self.group = scheduler.CfnScheduleGroup(self, "Group", name=self.group_name)
        self.group_arn = self.group.attr_arn
        self.key = kms.Key(
            self,
            "Key",
            description=f"{stack_name}: encrypts the scheduled-send schedules (they hold the email requests)",
            enable_key_rotation=True,
        )
        self.dead_letter_queue = sqs.Queue(
            self,
            "Dlq",
            retention_period=DLQ_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the schedules' target (EventBridge Scheduler's "
            "DeadLetterConfig, which cdk-nag cannot see); it is alarmed at its first message (dlq-schedules).",
        )
        self.role = iam.Role(
            self,
            "Role",
            description="EventBridge Scheduler puts scheduled email requests on their lane queue with it",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    # Only schedules of this group may act as this role.
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:scheduler:{stack.region}:{stack.account}:"
                        f"schedule/{self.group_name}/*"
                    },
                },
            ),
        )
        for queue in queues.values():
            queue.grant_send_messages(self.role)
        self.dead_letter_queue.grant_send_messages(self.role)
        # The schedule's target input is decrypted with the key when it runs.
        self.key.grant_decrypt(self.role)

    @property
    def schedules_arn(self) -> str:
        """The ARN pattern of this group's schedules."""
        stack = Stack.of(self)
        return f"arn:{stack.partition}:scheduler:{stack.region}:{stack.account}:schedule/{self.group_name}/*"

    def environment(self, lane: str) -> dict[str, str]:
        """A lane worker's scheduled-send environment (mailwright.settings.ScheduleSettings)."""
        return schedule_environment(
            group=self.group_name,
            role_arn=self.role.role_arn,
            queue_arn=self._queues[lane].queue_arn,
            dead_letter_arn=self.dead_letter_queue.queue_arn,
            kms_key_arn=self.key.key_arn,
        )

    def grant_scheduling(self, grantee: iam.IGrantable) -> None:
        """Create, read, move and delete this group's schedules, passing the execution role, with the key."""
        actions = ["CreateSchedule", "GetSchedule", "UpdateSchedule", "DeleteSchedule"]
        self._grant_schedules(grantee, [f"scheduler:{action}" for action in actions])
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["iam:PassRole"],
            resource_arns=[self.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
        )

    def grant_cancel(self, grantee: iam.IGrantable) -> None:
        """Delete this group's schedules (a cancel's best-effort cleanup)."""
        self._grant_schedules(grantee, ["scheduler:DeleteSchedule"])

    def _grant_schedules(self, grantee: iam.IGrantable, actions: list[str]) -> None:
        iam.Grant.add_to_principal(grantee=grantee, actions=actions, resource_arns=[self.schedules_arn])
        # EventBridge Scheduler encrypts and decrypts a schedule with the caller's access to the key.
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resource_arns=[self.key.key_arn],
            conditions={"StringLike": {"kms:ViaService": "scheduler.*.amazonaws.com"}},
        )
        if isinstance(grantee, Construct):
            role = getattr(grantee, "role", None) or grantee
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:"
                f"schedule/{self.group_name}/*]",
                "Schedules are named after request ids at run time; the grant is on this stack's schedule group only.",
            )
