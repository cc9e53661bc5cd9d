"""The HTTPS API: IAM-authorized methods under /v1, a throttled and logged stage, JSON gateway errors, the
recipient index, a read-only function, and alarms on its errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra.alarms import API_4XX_MIN_REQUESTS, API_4XX_RATE_PERCENT
from mailwright.constants import (
    ADDRESS_KEY_MARKER,
    API_HANDLER,
    LANES,
    RECIPIENT_INDEX,
    Env,
    Keys,
    Outputs,
)
from tests.infra.synth import Resource, Synthesized, as_list, render, role_statements, without_tracing

# Each module shares the session's synthesized stacks (see conftest.py).
pytestmark = pytest.mark.slow


def _function(synthesized: Synthesized) -> tuple[str, Resource]:
    (found,) = [
        (logical_id, resource)
        for logical_id, resource in synthesized.resources("AWS::Lambda::Function").items()
        if resource["Properties"].get("Handler") == API_HANDLER
    ]
    return found


def _api_id(synthesized: Synthesized) -> str:
    return synthesized.output_ref(Outputs.API_ID)


def _of_api(synthesized: Synthesized, resource_type: str) -> dict[str, Resource]:
    """The resources of a type that belong to the IAM-authorized API (the producers' API has its own)."""
    api = {"Ref": _api_id(synthesized)}
    return {
        logical_id: resource
        for logical_id, resource in synthesized.resources(resource_type).items()
        if resource["Properties"].get("RestApiId") == api
    }


def _stage_id(synthesized: Synthesized) -> str:
    (stage_id,) = _of_api(synthesized, "AWS::ApiGateway::Stage")
    return stage_id


def _stage(synthesized: Synthesized) -> dict[str, Any]:
    props: dict[str, Any] = _of_api(synthesized, "AWS::ApiGateway::Stage")[_stage_id(synthesized)]["Properties"]
    return props


def _methods(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """Each method by `VERB /path`, its path rebuilt from the resources' path parts."""
    resources = synthesized.resources("AWS::ApiGateway::Resource")

    def path_of(resource_id: Any) -> str:
        if isinstance(resource_id, dict) and "Fn::GetAtt" in resource_id:  # the root resource
            return ""
        props = resources[resource_id["Ref"]]["Properties"]
        return f"{path_of(props['ParentId'])}/{props['PathPart']}"

    return {
        f"{props['HttpMethod']} {path_of(props['ResourceId'])}": props
        for props in (m["Properties"] for m in _of_api(synthesized, "AWS::ApiGateway::Method").values())
    }


def test_the_api_is_regional_with_exactly_the_v1_operations(synthesized: Synthesized) -> None:
    api = synthesized.resources("AWS::ApiGateway::RestApi")[_api_id(synthesized)]

    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert set(_methods(synthesized)) == {
        "POST /v1/messages",
        "GET /v1/messages/{request_id}",
        "POST /v1/messages/search",
        # Scheduled sends: cancel one.
        "POST /v1/messages/{request_id}/cancel",
        # Users' preferences: read, change.
        "GET /v1/users/{user_id}/preferences",
        "PATCH /v1/users/{user_id}/preferences",
    }


def test_every_method_needs_a_sigv4_signature_and_proxies_to_the_api_function(synthesized: Synthesized) -> None:
    function_id, _ = _function(synthesized)

    for method in _methods(synthesized).values():
        assert method["AuthorizationType"] == "AWS_IAM"
        assert method["Integration"]["Type"] == "AWS_PROXY"
        assert f"${{{function_id}.Arn}}" in render(method["Integration"]["Uri"])


def test_api_gateway_checks_the_path_and_that_a_search_body_is_an_object(synthesized: Synthesized) -> None:
    methods = _methods(synthesized)
    (validator_id, validator), *others = _of_api(synthesized, "AWS::ApiGateway::RequestValidator").items()
    models = _of_api(synthesized, "AWS::ApiGateway::Model")
    model = models[methods["POST /v1/messages/search"]["RequestModels"]["application/json"]["Ref"]]
    submit = models[methods["POST /v1/messages"]["RequestModels"]["application/json"]["Ref"]]

    assert others == []
    assert validator["Properties"]["ValidateRequestBody"] is True
    assert validator["Properties"]["ValidateRequestParameters"] is True
    get, search = methods["GET /v1/messages/{request_id}"], methods["POST /v1/messages/search"]
    assert get["RequestParameters"] == {"method.request.path.request_id": True}
    assert get["RequestValidatorId"] == search["RequestValidatorId"] == {"Ref": validator_id}
    assert model["Properties"]["Schema"]["type"] == "object"
    # A submission is one request or a batch ({"requests": [...]}): an object; the function validates each request.
    assert submit["Properties"]["Schema"]["type"] == "object"
    assert methods["POST /v1/messages"]["RequestValidatorId"] == {"Ref": validator_id}


def test_the_stage_is_throttled_as_configured(synthesized: Synthesized, domain_synthesized: Synthesized) -> None:
    (default,) = _stage(synthesized)["MethodSettings"]
    (configured,) = _stage(domain_synthesized)["MethodSettings"]

    assert (default["ThrottlingRateLimit"], default["ThrottlingBurstLimit"]) == (50, 100)
    assert (configured["ThrottlingRateLimit"], configured["ThrottlingBurstLimit"]) == (7.5, 15)
    for setting in (default, configured):
        assert (setting["HttpMethod"], setting["ResourcePath"]) == ("*", "/*")


def test_access_logs_are_json_with_no_body_and_execution_logs_are_errors_only(synthesized: Synthesized) -> None:
    stage = _stage(synthesized)
    log_group_id = stage["AccessLogSetting"]["DestinationArn"]["Fn::GetAtt"][0]
    fields = json.loads(stage["AccessLogSetting"]["Format"])
    (settings,) = stage["MethodSettings"]

    assert synthesized.resources("AWS::Logs::LogGroup")[log_group_id]["Properties"]["RetentionInDays"] == 30
    assert {"requestId", "caller", "user", "status", "resource", "error"} <= set(fields)
    # The search's address is in its body: no access-log field may hold a body or a query string.
    assert not [value for value in fields.values() if "body" in value.lower() or "querystring" in value.lower()]
    assert (settings["LoggingLevel"], settings["DataTraceEnabled"]) == ("ERROR", False)
    assert stage.get("TracingEnabled", False) is False  # as the functions: untraced by default (test_infra_tracing)


def test_the_execution_log_group_exists_first_with_a_retention(synthesized: Synthesized) -> None:
    stage_id = _stage_id(synthesized)
    (group_id,) = [
        logical_id
        for logical_id, group in synthesized.resources("AWS::Logs::LogGroup").items()
        if "API-Gateway-Execution-Logs_" in json.dumps(group["Properties"].get("LogGroupName", ""))
        and _api_id(synthesized) in json.dumps(group["Properties"]["LogGroupName"])
    ]
    group = synthesized.resources("AWS::Logs::LogGroup")[group_id]["Properties"]

    assert render(group["LogGroupName"]) == f"API-Gateway-Execution-Logs_${{{_api_id(synthesized)}}}/prod"
    assert group["RetentionInDays"] == 30
    assert group_id in synthesized.json["Resources"][stage_id]["DependsOn"]


def test_the_logging_role_is_set_only_when_asked(synthesized: Synthesized, domain_synthesized: Synthesized) -> None:
    (account,) = synthesized.resources("AWS::ApiGateway::Account").values()
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = synthesized.json["Resources"][role_id]

    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"
    }
    # Account-wide: kept when the stack goes, other APIs may log through it.
    assert role["DeletionPolicy"] == "Retain"
    assert domain_synthesized.resources("AWS::ApiGateway::Account") == {}


def test_api_gateway_errors_come_back_in_the_functions_error_shape(synthesized: Synthesized) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]["ResponseTemplates"]["application/json"]
        for r in _of_api(synthesized, "AWS::ApiGateway::GatewayResponse").values()
    }

    assert set(responses) == {"DEFAULT_4XX", "DEFAULT_5XX", "THROTTLED", "BAD_REQUEST_BODY"}
    for response_type, template in responses.items():
        filled = template.replace("$context.error.messageString", '"Forbidden"').replace(
            "$context.error.responseType", response_type
        )
        assert set(json.loads(filled)["error"]) == {"code", "message"}
    assert '"code": "throttled"' in responses["THROTTLED"]


def test_the_recipient_index_is_keys_only_by_hash_and_completion_time(synthesized: Synthesized) -> None:
    synthesized.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "GlobalSecondaryIndexes": Match.array_with(
                [
                    {
                        "IndexName": RECIPIENT_INDEX,
                        "KeySchema": [
                            {"AttributeName": Keys.RECIPIENT_HASH, "KeyType": "HASH"},
                            {"AttributeName": Keys.COMPLETED_AT, "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    }
                ]
            ),
            "AttributeDefinitions": Match.array_with(
                [
                    {"AttributeName": Keys.RECIPIENT_HASH, "AttributeType": "S"},
                    {"AttributeName": Keys.COMPLETED_AT, "AttributeType": "N"},
                ]
            ),
        },
    )


def test_the_function_reads_the_message_log_the_keyring_templates_and_producers_and_sends_to_the_lanes(
    synthesized: Synthesized,
) -> None:
    function_id, function = _function(synthesized)
    templates = synthesized.output_ref(Outputs.TEMPLATES_BUCKET)
    producers = synthesized.output_ref(Outputs.PRODUCERS_TABLE)
    lanes = sorted(synthesized.output_ref(Outputs.queue_url(lane)) for lane in LANES)
    messages = synthesized.output_ref(Outputs.MESSAGES_TABLE)
    suppression = synthesized.output_ref(Outputs.SUPPRESSION_TABLE)
    keyring = synthesized.secret_id("address keyring")
    log_group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    group = synthesized.json["Outputs"][Outputs.SCHEDULE_GROUP]["Value"]
    schedules = f"arn:${{AWS::Partition}}:scheduler:${{AWS::Region}}:${{AWS::AccountId}}:schedule/{group}/*"
    worker_env = synthesized.workers()["standard"][1]["Properties"]["Environment"]["Variables"]
    schedules_key = worker_env[Env.SCHEDULE_KEY_ARN]["Fn::GetAtt"][0]
    idempotency = synthesized.output_ref(Outputs.IDEMPOTENCY_TABLE)
    preferences = synthesized.output_ref(Outputs.PREFERENCES_TABLE)
    scheduler_only = json.dumps({"StringLike": {"kms:ViaService": "scheduler.*.amazonaws.com"}}, sort_keys=True)

    granted = sorted(
        (
            tuple(sorted(as_list(s["Action"]))),
            tuple(sorted(render(r) for r in as_list(s["Resource"]))),
            json.dumps(s.get("Condition"), sort_keys=True),
        )
        for s in without_tracing(role_statements(synthesized, function))
    )

    assert granted == sorted(
        [
            (("logs:CreateLogStream", "logs:PutLogEvents"), (f"${{{log_group}.Arn}}",), "null"),
            # A cancel (scheduled sends): the request's claim and item in one transaction, then its schedule.
            (("dynamodb:PutItem",), (f"${{{idempotency}.Arn}}",), "null"),
            (("scheduler:DeleteSchedule",), (schedules,), "null"),
            (("kms:Decrypt", "kms:GenerateDataKey"), (f"${{{schedules_key}.Arn}}",), scheduler_only),
            (("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"), (f"${{{keyring}}}",), "null"),
            # Lookups, and a cancel's update of the request item (one statement: the same resource).
            (("dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:UpdateItem"), (f"${{{messages}.Arn}}",), "null"),
            (("dynamodb:Query",), (f"${{{messages}.Arn}}/index/{RECIPIENT_INDEX}",), "null"),
            # Preferences: a user's items and their audit trail (appended in the same transaction), the table only.
            (("dynamodb:GetItem", "dynamodb:UpdateItem"), (f"${{{preferences}.Arn}}",), "null"),
            # Submissions: the producers table one item at a time, template bundles, and the lane queues.
            (("dynamodb:GetItem",), (f"${{{producers}.Arn}}",), "null"),
            (
                ("s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"),
                (f"${{{templates}.Arn}}", f"${{{templates}.Arn}}/templates/*"),
                "null",
            ),
            (
                ("sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"),
                tuple(f"${{{queue}.Arn}}" for queue in lanes),
                "null",
            ),
            (
                ("dynamodb:GetItem",),
                (f"${{{suppression}.Arn}}",),
                json.dumps(
                    {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [ADDRESS_KEY_MARKER]}}, sort_keys=True
                ),
            ),
        ]
    )
    assert function_id


def test_the_function_runs_the_shared_code_and_is_told_where_to_read(synthesized: Synthesized) -> None:
    _, function = _function(synthesized)
    props = function["Properties"]
    worker_keys = {w["Properties"]["Code"]["S3Key"] for _, w in synthesized.workers().values()}
    variables = props["Environment"]["Variables"]

    assert (props["Runtime"], props["Architectures"]) == ("python3.12", ["arm64"])
    assert props["Timeout"] < 29  # API Gateway stops waiting at 29 s
    assert worker_keys == {props["Code"]["S3Key"]}
    assert variables[Env.MESSAGES_TABLE] == {"Ref": synthesized.output_ref(Outputs.MESSAGES_TABLE)}
    assert variables[Env.SUPPRESSION_TABLE] == {"Ref": synthesized.output_ref(Outputs.SUPPRESSION_TABLE)}
    assert variables[Env.ADDRESS_KEY_SECRET_ARN] == {"Ref": synthesized.secret_id("address keyring")}
    assert variables[Env.PRODUCERS_TABLE] == {"Ref": synthesized.output_ref(Outputs.PRODUCERS_TABLE)}
    assert variables[Env.TEMPLATES_BUCKET] == {"Ref": synthesized.output_ref(Outputs.TEMPLATES_BUCKET)}
    assert variables[Env.PREFERENCES_TABLE] == {"Ref": synthesized.output_ref(Outputs.PREFERENCES_TABLE)}
    lane_urls = render(variables[Env.LANE_QUEUE_URLS])
    for lane in LANES:
        assert f'"{lane}":"${{{synthesized.output_ref(Outputs.queue_url(lane))}}}"' in lane_urls


def _alarm(synthesized: Synthesized, name: str) -> dict[str, Any]:
    (found,) = [
        resource["Properties"]
        for resource in synthesized.resources("AWS::CloudWatch::Alarm").values()
        if resource["Properties"]["AlarmName"] == f"{synthesized.config.stack_name}-{name}"
    ]
    return found


def test_any_server_error_of_the_stage_alarms(synthesized: Synthesized) -> None:
    alarm = _alarm(synthesized, "api-5xx")
    stage_id = _stage_id(synthesized)

    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/ApiGateway", "5XXError", "Sum")
    assert {"Name": "Stage", "Value": {"Ref": stage_id}} in alarm["Dimensions"]
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["Period"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
        300,
    )
    assert alarm["AlarmActions"] == [{"Ref": synthesized.output_ref(Outputs.ALARM_TOPIC_ARN)}]


def test_a_spike_in_the_share_of_client_errors_alarms(synthesized: Synthesized) -> None:
    alarm = _alarm(synthesized, "api-4xx-rate")
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]

    assert expression["Expression"] == f"IF(requests >= {API_4XX_MIN_REQUESTS}, 100 * errors / requests, 0)"
    assert metrics["errors"]["MetricStat"]["Metric"]["MetricName"] == "4XXError"
    assert metrics["requests"]["MetricStat"]["Metric"]["MetricName"] == "Count"
    assert {m["MetricStat"]["Stat"] for m in (metrics["errors"], metrics["requests"])} == {"Sum"}
    assert (alarm["Threshold"], alarm["TreatMissingData"]) == (API_4XX_RATE_PERCENT, "notBreaching")
    assert alarm["OKActions"] == [{"Ref": synthesized.output_ref(Outputs.ALARM_TOPIC_ARN)}]


def test_the_outputs_name_the_stage_url_and_the_api(synthesized: Synthesized) -> None:
    url = render(synthesized.json["Outputs"][Outputs.API_URL]["Value"])
    stage_id = _stage_id(synthesized)

    assert url == (
        f"https://${{{_api_id(synthesized)}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/${{{stage_id}}}/"
    )
