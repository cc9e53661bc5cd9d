"""The reputation circuit breaker: SES reputation alarms pause the bulk lane's event source mapping.

CloudWatch puts every alarm state change on the account's default EventBridge
bus. A rule there matches the changes of the bounce-rate and complaint-rate
alarms (by ARN) and invokes a small function, which may do exactly one thing:
enable or disable the bulk worker's event source mapping (and read the two
alarms' states, to resume only when both are OK).

A state change that never reaches the function, or that the function fails
on, would leave the bulk lane running through a reputation alarm: both land
in the breaker's dead-letter queue (alarmed as `dlq-breaker`). EventBridge
invokes Lambda asynchronously, so there are two ways to fail: EventBridge
cannot hand the event to Lambda (the rule target's retries and DLQ), or
Lambda accepted it and every attempt of the function failed (the function's
asynchronous retries and its on-failure destination, the same queue).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import MailwrightConfig, breaker_environment
from infra.functions import python_function
from infra.nag import acknowledge
from mailwright.constants import BREAKER_HANDLER, BREAKER_LANE

# What CloudWatch publishes on the default bus when an alarm changes state (AWS's names).
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
ACTED_ON_STATES = ["ALARM", "OK"]
# Pausing must not be lost to a passing error: EventBridge retries delivery for an hour...
DELIVERY_RETRY_ATTEMPTS = 20
DELIVERY_MAX_EVENT_AGE = Duration.hours(1)
# ...and Lambda retries a failed invocation twice (its own maximum), and a throttled one for
# up to six hours (its own maximum too), before the event is dead-lettered.
FUNCTION_RETRY_ATTEMPTS = 2
FUNCTION_MAX_EVENT_AGE_HOURS = 6
# Long enough for an operator to read why the lane was not paused or resumed.
DLQ_RETENTION = Duration.days(14)


class ReputationBreaker(Construct):
    """The breaker's function (`function`), the rule that feeds it (`rule`), and its `dead_letter_queue`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: MailwrightConfig,
        code: lambda_.Code,
        mapping_id: str,
        alarms: Sequence[cloudwatch.IAlarm],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.mapping_arn = stack.format_arn(
            service="lambda",
            resource="event-source-mapping",
            resource_name=mapping_id,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
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
            "This queue is itself a dead-letter queue: of the breaker rule's Lambda target and the breaker "
            "function's failed asynchronous invocations (cdk-nag only recognises queues named in another queue's "
            "redrive policy). Its messages are alarmed on (dlq-breaker).",
        )
        self.function = python_function(
            self,
            "Function",
            log_group_id="Logs",
            description=f"mailwright breaker: pauses the {BREAKER_LANE} lane while SES reputation alarms fire",
            code=code,
            handler=BREAKER_HANDLER,
            timeout=Duration.seconds(30),
            memory_mb=256,
            environment=breaker_environment(
                config=config, mapping_id=mapping_id, alarm_names=[alarm.alarm_name for alarm in alarms]
            ),
        )
        # Lambda's own retries of a failed invocation; then the event goes to the DLQ, not nowhere.
        self.function.configure_async_invoke(
            retry_attempts=FUNCTION_RETRY_ATTEMPTS,
            max_event_age=Duration.hours(FUNCTION_MAX_EVENT_AGE_HOURS),
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
        )
        # One mapping, the bulk lane's: the breaker can never stop critical or standard mail.
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"],
                resources=[self.mapping_arn],
            )
        )
        # Resuming waits until every watched alarm is OK.
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"], resources=[a.alarm_arn for a in alarms])
        )
        self.rule = events.Rule(
            self,
            "AlarmStateChanges",
            description=f"SES reputation alarm state changes: pause or resume the {BREAKER_LANE} lane",
            # The account's default bus, where CloudWatch publishes alarm state changes.
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=[ALARM_STATE_CHANGE],
                resources=[alarm.alarm_arn for alarm in alarms],
                # INSUFFICIENT_DATA neither pauses nor resumes: no need to invoke anything.
                detail={"state": {"value": ACTED_ON_STATES}},
            ),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    retry_attempts=DELIVERY_RETRY_ATTEMPTS,
                    max_event_age=DELIVERY_MAX_EVENT_AGE,
                    # Events EventBridge could not deliver; CDK adds the queue policy letting this rule send.
                    dead_letter_queue=self.dead_letter_queue,
                )
            ],
        )
