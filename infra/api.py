"""The HTTPS API: a regional API Gateway REST API under /v1, in front of one Lambda function.

    POST /v1/messages                one request or a batch (the IAM route for AWS callers; no producer)
    GET  /v1/messages/{request_id}   a request's status and history
    POST /v1/messages/search         the requests sent to an address (in the body: never in a URL or a log)
    POST /v1/messages/{request_id}/cancel   cancel a scheduled request
    GET|PATCH /v1/users/{user_id}/preferences   a user's preferences; change them (audited, the caller as actor)

Every method is IAM-authorized (SigV4): callers need `execute-api:Invoke` on
it. The stage is throttled (rate and burst from the `api` context value),
writes access logs (JSON, no bodies, so no address) and execution logs at
ERROR level only (no data trace), and is traced with X-Ray when the `tracing` setting is on. API Gateway's own
errors (a refused signature, throttling, a malformed body) come back in the
function's error shape, `{"error": {"code", "message"}}`.

Producers without AWS credentials use the producers' API (infra/producer_api.py):
the same function and paths behind API keys and usage plans.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import ApiConfig
from infra.functions import LOG_RETENTION, python_function, traced
from infra.nag import acknowledge
from mailwright.constants import API_HANDLER

STAGE_NAME = "prod"
# One line of JSON per request. The path holds at most a request id; the search's address travels in
# the body, which access logs never hold.
ACCESS_LOG_FORMAT: dict[str, str] = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTimeEpoch",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "user": "$context.identity.userArn",
    "apiKeyId": "$context.identity.apiKeyId",
    "method": "$context.httpMethod",
    "resource": "$context.resourcePath",
    "path": "$context.path",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integration.latency",
    "error": "$context.error.responseType",
}


# API Gateway's own answers (no integration ran) in the function's error shape. The templates allow
# variable substitution only: the code is API Gateway's response type (ACCESS_DENIED, THROTTLED...).
def gateway_error(code: str) -> str:
    """A gateway response template: `code` and API Gateway's message in the function's error shape."""
    return '{"error": {"code": "%s", "message": $context.error.messageString}}' % code  # noqa: UP031 - a template


GATEWAY_ERRORS: dict[str, tuple[apigateway.ResponseType, str]] = {
    "Default4xx": (apigateway.ResponseType.DEFAULT_4_XX, gateway_error("$context.error.responseType")),
    "Default5xx": (apigateway.ResponseType.DEFAULT_5_XX, gateway_error("$context.error.responseType")),
    "Throttled": (apigateway.ResponseType.THROTTLED, gateway_error("throttled")),
    "BadRequestBody": (apigateway.ResponseType.BAD_REQUEST_BODY, gateway_error("invalid_body")),
}


class HttpsApi(Construct):
    """The REST API (`api`, its stage `stage`), its function (`function`) and its access log group (`access_logs`).

    The stack grants the function what it reads.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ApiConfig,
        stack_name: str,
        code: lambda_.Code,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = python_function(
            self,
            "Function",
            log_group_id="Logs",
            description="mailwright HTTPS API: takes producers' requests; their status by request id and recipient",
            code=code,
            handler=API_HANDLER,
            # A few DynamoDB reads or an SQS batch per request; API Gateway gives up on an integration after 29 s.
            timeout=Duration.seconds(10),
            memory_mb=256,
            environment=environment,
        )
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=LOG_RETENTION)
        self.api = apigateway.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{stack_name}-api",
            description="mailwright HTTPS API (/v1): submit requests, their status by id and by recipient (SigV4)",
            endpoint_configuration=apigateway.EndpointConfiguration(types=[apigateway.EndpointType.REGIONAL]),
            # API Gateway logs through one role per account and region, set in the account's settings.
            # Kept when the stack goes: other APIs of the account may log through it by then.
            cloud_watch_role=config.cloudwatch_role,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN if config.cloudwatch_role else None,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=config.throttling_rate_limit,
                throttling_burst_limit=config.throttling_burst_limit,
                access_log_destination=apigateway.LogGroupLogDestination(self.access_logs),
                access_log_format=apigateway.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT)),
                # Errors only, and never the request or response bodies (addresses, in a search).
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                # X-Ray as the functions are (the `tracing` setting): each trace is billed.
                tracing_enabled=traced(self),
            ),
            default_method_options=apigateway.MethodOptions(authorization_type=apigateway.AuthorizationType.IAM),
        )
        self.stage = self.api.deployment_stage
        # The stack outputs the URL as ApiUrl (mailwright.constants.Outputs), under a key the CLI knows.
        self.api.node.try_remove_child("Endpoint")
        # API Gateway creates its execution log group on first use, with no retention: create it first.
        execution_logs = logs.LogGroup(
            self,
            "ExecutionLogs",
            log_group_name=f"API-Gateway-Execution-Logs_{self.api.rest_api_id}/{STAGE_NAME}",
            retention=LOG_RETENTION,
        )
        self.stage.node.add_dependency(execution_logs)
        for name, (response_type, template) in GATEWAY_ERRORS.items():
            self.api.add_gateway_response(name, type=response_type, templates={"application/json": template})

        # API Gateway checks what it can before the function runs: the path's request id is there,
        # and a search body is a JSON object. The function validates everything else.
        validator = self.api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        search_body = object_model(
            self.api, "SearchBody", "A search body is a JSON object (the function checks its fields)"
        )
        submit_body = object_model(
            self.api,
            "SubmitBody",
            'One request or a batch ({"requests": [...]}), a JSON object: the function validates each',
        )
        preferences_body = object_model(
            self.api, "PreferencesBody", "A preferences change is a JSON object (the function checks its fields)"
        )
        integration = apigateway.LambdaIntegration(self.function, proxy=True)
        v1 = self.api.root.add_resource("v1")
        self.messages = v1.add_resource("messages")
        self.messages.add_method(
            "POST", integration, request_models={"application/json": submit_body}, request_validator=validator
        )
        by_id = self.messages.add_resource("{request_id}")
        by_id.add_method(
            "GET",
            integration,
            request_parameters={"method.request.path.request_id": True},
            request_validator=validator,
        )
        # Scheduled sends: cancel one (mailwright.scheduling).
        by_id.add_resource("cancel").add_method(
            "POST",
            integration,
            request_parameters={"method.request.path.request_id": True},
            request_validator=validator,
        )
        self.messages.add_resource("search").add_method(
            "POST",
            integration,
            request_models={"application/json": search_body},
            request_validator=validator,
        )
        add_preference_routes(v1, integration, body=preferences_body, validator=validator)
        self._acknowledge(config)

    @property
    def url(self) -> str:
        """The stage's base URL (paths start with /v1 after it)."""
        return self.api.url

    def _acknowledge(self, config: ApiConfig) -> None:
        if config.waf is None:
            acknowledge(
                self.stage,
                "AwsSolutions-APIG3",
                "No WAF web ACL unless api.waf is set in context: every method is IAM-authorized (SigV4) and the "
                "stage is throttled, so unsigned floods are refused by API Gateway before any integration runs.",
            )
        for method in self.api.methods:
            acknowledge(
                method,
                "AwsSolutions-COG4",
                "IAM authorization (SigV4) instead of a Cognito user pool: the callers are the platform team's "
                "roles and services, which hold AWS credentials, not end users who sign in.",
            )
        if config.cloudwatch_role:
            role = self.api.node.try_find_child("CloudWatchRole")
            assert role is not None, "RestApi(cloud_watch_role=True) creates CloudWatchRole"
            acknowledge(
                role,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "The account-wide role API Gateway writes every API's logs with (set in the account's API Gateway "
                "settings): AWS's managed policy is the one AWS documents for it, and it must cover the log "
                "groups of all the account's APIs, not only this stack's.",
            )


def object_model(api: apigateway.RestApi, construct_id: str, description: str) -> apigateway.Model:
    """A request model that only checks the body is a JSON object (the function validates its fields)."""
    return api.add_model(
        construct_id,
        content_type="application/json",
        description=description,
        schema=apigateway.JsonSchema(schema=apigateway.JsonSchemaVersion.DRAFT4, type=apigateway.JsonSchemaType.OBJECT),
    )


def add_preference_routes(
    v1: apigateway.IResource,
    integration: apigateway.Integration,
    *,
    body: apigateway.IModel,
    validator: apigateway.IRequestValidator,
) -> None:
    """GET and PATCH /v1/users/{user_id}/preferences: read a user's preferences, change them (audited)."""
    preferences = v1.add_resource("users").add_resource("{user_id}").add_resource("preferences")
    path = {"method.request.path.user_id": True}
    preferences.add_method("GET", integration, request_parameters=path, request_validator=validator)
    preferences.add_method(
        "PATCH",
        integration,
        request_parameters=path,
        request_models={"application/json": body},
        request_validator=validator,
    )
