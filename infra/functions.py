"""The common shape of mailwright's Lambda functions.

Python 3.12 on arm64, X-Ray tracing when the `tracing` setting asks for it, a
log group of its own with a retention, and a role that may write to that log
group and nothing else until the stack grants more: no
AWSLambdaBasicExecutionRole, whose logs:CreateLogGroup and logs:PutLogEvents
apply to every log group in the account.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from infra.nag import LATEST_RUNTIME_REASON, acknowledge, acknowledge_tracing
from mailwright.constants import TRACE_DISABLED_ENV

# Set on every function: pydantic looks for plugins among the installed distributions when the first model
# is built; mailwright uses none, so its cold starts skip the search.
RUNTIME_ENVIRONMENT: dict[str, str] = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}

# Long enough to investigate an incident, short enough not to hoard addresses that slipped through masking.
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
RUNTIME = lambda_.Runtime.PYTHON_3_12
# The construct-tree context key `trace_functions` sets and `python_function` reads (inherited by every child).
TRACING_CONTEXT_KEY = "mailwright:tracing"
# Untraced functions build no Powertools Tracer, so they never import the X-Ray SDK (mailwright.observability).
UNTRACED_ENVIRONMENT: dict[str, str] = {TRACE_DISABLED_ENV: "true"}


def trace_functions(scope: Construct, *, enabled: bool) -> None:
    """Have every `python_function` under `scope` traced with X-Ray (active) or not; call before adding them."""
    scope.node.set_context(TRACING_CONTEXT_KEY, enabled)


def runtime_environment(*, tracing: bool) -> dict[str, str]:
    """The variables every function gets, traced or not (the bench's cold start uses them too)."""
    return {**RUNTIME_ENVIRONMENT, **({} if tracing else UNTRACED_ENVIRONMENT)}


def traced(scope: IConstruct) -> bool:
    """Whether functions under `scope` are traced: as `trace_functions` set it above them, else not (the default)."""
    return scope.node.try_get_context(TRACING_CONTEXT_KEY) is True


def log_writer_role(scope: Construct, construct_id: str, *, log_group: logs.ILogGroup, description: str) -> iam.Role:
    """A Lambda execution role that may write to `log_group` only."""
    role = iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=description,
    )
    # The log group exists (the stack creates it), so no logs:CreateLogGroup.
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    return role


def python_function(
    scope: Construct,
    construct_id: str,
    *,
    log_group_id: str,
    description: str,
    code: lambda_.Code,
    handler: str,
    timeout: Duration,
    memory_mb: int,
    environment: Mapping[str, str],
    reserved_concurrency: int | None = None,
) -> lambda_.Function:
    """A Python function with its own log group (`log_group_id`) and role (`<construct_id>Role`), traced if asked."""
    tracing = traced(scope)
    log_group = logs.LogGroup(scope, log_group_id, retention=LOG_RETENTION)
    role = log_writer_role(scope, f"{construct_id}Role", log_group=log_group, description=description)
    function = lambda_.Function(
        scope,
        construct_id,
        description=description,
        code=code,
        handler=handler,
        runtime=RUNTIME,
        architecture=lambda_.Architecture.ARM_64,
        timeout=timeout,
        memory_size=memory_mb,
        reserved_concurrent_executions=reserved_concurrency,
        log_group=log_group,
        role=role,
        # Off: no TracingConfig (Lambda's default, PassThrough) and no X-Ray grant on the role.
        tracing=lambda_.Tracing.ACTIVE if tracing else lambda_.Tracing.DISABLED,
        environment={**runtime_environment(tracing=tracing), **environment},
    )
    acknowledge(function, "AwsSolutions-L1", LATEST_RUNTIME_REASON)
    if tracing:
        acknowledge_tracing(role)
    return function
