"""The producers' API: a second REST API in front of the HTTPS API's function, where callers present API keys.

    POST /v1/messages                one request or a batch (x-api-key)
    GET  /v1/messages/{request_id}   the status of one of the producer's own requests
    POST /v1/messages/search         the producer's own requests to an address
    POST /v1/messages/{request_id}/cancel   cancel one of the producer's own scheduled requests
    GET|PATCH /v1/users/{user_id}/preferences   a user's preferences; change them (audited as producer:<name>)

Every method requires an API key (header `x-api-key`). Each producer declared
in context (`api.producers`) gets a usage plan on the stage: rate, burst and
a daily quota per key, which API Gateway enforces best effort (a protection
for the platform, not a meter to bill by). No key is in the template: `mailwright
producers add|rotate` creates them with API Gateway (which generates the
value), records each key's id and producer in the producers table
(`ProducersTable`), and only then attaches the key to its producer's plan.
The function maps `identity.apiKeyId` to the producer and refuses a key that
names none, so a key never gets the platform's view.

Rotated keys are deleted by EventBridge Scheduler one-time schedules, run with
the key-retirement role (apigateway:DELETE on API keys, nothing else).

With `api.waf` in context, an AWS WAF web ACL with a rate-based rule per
client IP is associated with this stage and the IAM-authorized API's.
"""

from __future__ import annotations

import json

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.api import (
    ACCESS_LOG_FORMAT,
    GATEWAY_ERRORS,
    STAGE_NAME,
    add_preference_routes,
    gateway_error,
    object_model,
)
from infra.config import ApiConfig, ProducerPlanConfig, WafConfig, producer_plan_name
from infra.functions import LOG_RETENTION, traced
from infra.nag import acknowledge
from mailwright.constants import Keys

# API Gateway's answers for a refused key and an exhausted quota, in the function's error shape (the local
# producers' API answers with the same codes: mailwright_tools/local/usage_plans.py).
KEY_ERRORS: dict[str, tuple[apigateway.ResponseType, str]] = {
    "InvalidApiKey": (apigateway.ResponseType.INVALID_API_KEY, gateway_error("invalid_api_key")),
    "QuotaExceeded": (apigateway.ResponseType.QUOTA_EXCEEDED, gateway_error("quota_exceeded")),
}
WAF_RULE_NAME = "RateLimitPerIp"


class ProducersTable(Construct):
    """The producers table (`table`): one item per API key id naming its producer; rotated keys' items expire."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # Key ids and producer names only (never a key's value); kept with the stack's other tables.
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=Keys.PRODUCERS_PK, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=Keys.TTL,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )


class ProducerApi(Construct):
    """The producers' REST API (`api`, stage `stage`), a usage plan per producer (`plans`), the retirement role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ApiConfig,
        stack_name: str,
        function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=LOG_RETENTION)
        self.api = apigateway.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{stack_name}-producer-api",
            description="mailwright producers' API (/v1): submit requests and follow them, with an API key",
            endpoint_configuration=apigateway.EndpointConfiguration(types=[apigateway.EndpointType.REGIONAL]),
            # The account's API Gateway logging role is the IAM-authorized API's concern (api.cloudwatch_role).
            cloud_watch_role=False,
            api_key_source_type=apigateway.ApiKeySourceType.HEADER,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=config.throttling_rate_limit,
                throttling_burst_limit=config.throttling_burst_limit,
                access_log_destination=apigateway.LogGroupLogDestination(self.access_logs),
                access_log_format=apigateway.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT)),
                # Errors only, never the bodies (requests hold addresses and variables).
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                # X-Ray as the functions are (the `tracing` setting): each trace is billed.
                tracing_enabled=traced(self),
            ),
            default_method_options=apigateway.MethodOptions(api_key_required=True),
        )
        self.stage = self.api.deployment_stage
        self.api.node.try_remove_child("Endpoint")
        execution_logs = logs.LogGroup(
            self,
            "ExecutionLogs",
            log_group_name=f"API-Gateway-Execution-Logs_{self.api.rest_api_id}/{STAGE_NAME}",
            retention=LOG_RETENTION,
        )
        self.stage.node.add_dependency(execution_logs)
        for name, (response_type, template) in {**GATEWAY_ERRORS, **KEY_ERRORS}.items():
            self.api.add_gateway_response(name, type=response_type, templates={"application/json": template})

        validator = self.api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        body = object_model(
            self.api, "Body", "A JSON object (the function validates it: requests, a search, a preferences change)"
        )
        integration = apigateway.LambdaIntegration(function, proxy=True)
        v1 = self.api.root.add_resource("v1")
        messages = v1.add_resource("messages")
        messages.add_method("POST", integration, request_models={"application/json": body}, request_validator=validator)
        by_id = messages.add_resource("{request_id}")
        by_id.add_method(
            "GET",
            integration,
            request_parameters={"method.request.path.request_id": True},
            request_validator=validator,
        )
        # Scheduled sends: cancel one of the producer's own (mailwright.scheduling).
        by_id.add_resource("cancel").add_method(
            "POST",
            integration,
            request_parameters={"method.request.path.request_id": True},
            request_validator=validator,
        )
        messages.add_resource("search").add_method(
            "POST", integration, request_models={"application/json": body}, request_validator=validator
        )
        add_preference_routes(v1, integration, body=body, validator=validator)

        self.plans = {
            name: self._usage_plan(name, plan, stack_name=stack_name) for name, plan in config.producers.items()
        }
        self.retirement_role = self._retirement_role()
        self._acknowledge(waf=config.waf is not None)

    @property
    def url(self) -> str:
        """The stage's base URL (paths start with /v1 after it)."""
        return self.api.url

    def _usage_plan(self, name: str, plan: ProducerPlanConfig, *, stack_name: str) -> apigateway.UsagePlan:
        return self.api.add_usage_plan(
            f"Plan-{name}",
            name=producer_plan_name(stack_name, name),
            description=f"mailwright producer {name}: best-effort protection of the platform, not billing",
            throttle=apigateway.ThrottleSettings(rate_limit=plan.rate_limit, burst_limit=plan.burst_limit),
            quota=apigateway.QuotaSettings(limit=plan.quota_per_day, period=apigateway.Period.DAY)
            if plan.quota_per_day is not None
            else None,
            api_stages=[apigateway.UsagePlanPerApiStage(api=self.api, stage=self.stage)],
        )

    def _retirement_role(self) -> iam.Role:
        """The role EventBridge Scheduler deletes a rotated key with: DeleteApiKey on this region's keys only."""
        stack = Stack.of(self)
        role = iam.Role(
            self,
            "KeyRetirementRole",
            description="EventBridge Scheduler deletes rotated producer API keys with it (mailwright producers)",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["apigateway:DELETE"],
                resources=[f"arn:{stack.partition}:apigateway:{stack.region}::/apikeys/*"],
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:apigateway:<AWS::Region>::/apikeys/*]",
            "Keys are created after deployment by `mailwright producers` (their ids are unknown here); the role "
            "may only DELETE API keys, which is what a rotation's schedule does with the old key.",
        )
        return role

    def _acknowledge(self, *, waf: bool) -> None:
        if not waf:
            acknowledge(
                self.stage,
                "AwsSolutions-APIG3",
                "No WAF web ACL unless api.waf is set in context: every method needs an API key on a usage plan "
                "(rate, burst, daily quota per producer) and the stage is throttled.",
            )
        for method in self.api.methods:
            acknowledge(
                method,
                "AwsSolutions-APIG4",
                "Producers identify with API keys on usage plans: API Gateway refuses a missing or unknown key, and "
                "the function refuses a key the producers table does not name; services holding AWS credentials use "
                "the IAM-authorized API instead.",
            )
            acknowledge(
                method,
                "AwsSolutions-COG4",
                "API keys instead of a Cognito user pool: the callers are producer services, not users who sign in.",
            )


class RateLimitWaf(Construct):
    """A regional AWS WAF web ACL (`web_acl`): blocks a client IP above the rate; associated with `stages`."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: WafConfig, stack_name: str, stages: list[apigateway.Stage]
    ) -> None:
        super().__init__(scope, construct_id)
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=f"{stack_name}-api",
            description="mailwright APIs: a rate-based rule per client IP",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{stack_name}-api"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name=WAF_RULE_NAME,
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            aggregate_key_type="IP",
                            limit=config.rate_limit,
                            evaluation_window_sec=config.window_seconds,
                        )
                    ),
                    visibility_config=_visibility(f"{stack_name}-api-rate-per-ip"),
                )
            ],
        )
        for index, stage in enumerate(stages):
            association = wafv2.CfnWebACLAssociation(
                self, f"Association{index}", resource_arn=stage.stage_arn, web_acl_arn=self.web_acl.attr_arn
            )
            association.node.add_dependency(stage)


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=True
    )
