"""The reputation circuit breaker: SES reputation alarms pause the bulk lane's event source mapping.

CloudWatch puts every alarm state change on the account's default EventBridge
bus. A rule there matches the changes of the bounce-rate and complaint-rate
alarms (by ARN) and invokes a small function, which may do exactly one thing:
enable or disable the bulk worker's event source mapping (and read the two
alarms' states, to resume only when both are OK).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.config import MailwrightConfig, breaker_environment
from infra.functions import python_function
from mailwright.constants import BREAKER_HANDLER, BREAKER_LANE

# What CloudWatch publishes on the default bus when an alarm changes state (AWS's names).
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
ACTED_ON_STATES = ["ALARM", "OK"]


class ReputationBreaker(Construct):
    """The breaker's function (`function`) and the rule (`rule`) that feeds it alarm state changes."""

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
                    # Pausing must not be lost to a passing Lambda error: EventBridge retries for an hour.
                    retry_attempts=20,
                    max_event_age=Duration.hours(1),
                )
            ],
        )
