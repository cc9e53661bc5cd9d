"""The producers' API: API-key methods on the same function, a usage plan per declared producer, no key in the
template, the key-retirement role, the producers table, the WAF option and the 5xx alarm."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import producer_plan_name
from mailwright.constants import API_HANDLER, Keys, Outputs
from tests.infra.synth import Resource, Synthesized, as_list, render

pytestmark = pytest.mark.slow


def _api_id(synthesized: Synthesized) -> str:
    return synthesized.output_ref(Outputs.PRODUCER_API_ID)


def _of_api(synthesized: Synthesized, resource_type: str) -> dict[str, Resource]:
    api = {"Ref": _api_id(synthesized)}
    return {
        logical_id: resource
        for logical_id, resource in synthesized.resources(resource_type).items()
        if resource["Properties"].get("RestApiId") == api
    }


def _methods(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    resources = synthesized.resources("AWS::ApiGateway::Resource")

    def path_of(resource_id: Any) -> str:
        if isinstance(resource_id, dict) and "Fn::GetAtt" in resource_id:
            return ""
        props = resources[resource_id["Ref"]]["Properties"]
        return f"{path_of(props['ParentId'])}/{props['PathPart']}"

    return {
        f"{props['HttpMethod']} {path_of(props['ResourceId'])}": props
        for props in (m["Properties"] for m in _of_api(synthesized, "AWS::ApiGateway::Method").values())
    }


def _plans(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        resource["Properties"]["UsagePlanName"]: resource["Properties"]
        for resource in synthesized.resources("AWS::ApiGateway::UsagePlan").values()
    }


def test_every_method_needs_an_api_key_and_proxies_to_the_api_function(synthesized: Synthesized) -> None:
    (function_id,) = [
        logical_id
        for logical_id, resource in synthesized.resources("AWS::Lambda::Function").items()
        if resource["Properties"].get("Handler") == API_HANDLER
    ]
    methods = _methods(synthesized)
    api = synthesized.resources("AWS::ApiGateway::RestApi")[_api_id(synthesized)]["Properties"]

    assert set(methods) == {
        "POST /v1/messages",
        "GET /v1/messages/{request_id}",
        "POST /v1/messages/search",
        "POST /v1/messages/{request_id}/cancel",
        "GET /v1/users/{user_id}/preferences",
        "PATCH /v1/users/{user_id}/preferences",
    }
    assert api["ApiKeySourceType"] == "HEADER"
    for method in methods.values():
        assert method["ApiKeyRequired"] is True
        assert method["AuthorizationType"] == "NONE"
        assert method["Integration"]["Type"] == "AWS_PROXY"
        assert f"${{{function_id}.Arn}}" in render(method["Integration"]["Uri"])
    # API Gateway may call the function from this API's methods (and the IAM API's), nothing else.
    permitted = [
        render(p["Properties"]["SourceArn"])
        for p in synthesized.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    assert any(f"${{{_api_id(synthesized)}}}/" in arn and "/POST/v1/messages" in arn for arn in permitted)


def test_no_api_key_is_in_the_template(synthesized: Synthesized, domain_synthesized: Synthesized) -> None:
    # Keys are created by `mailwright producers` (API Gateway generates the value): never a template value.
    for synth in (synthesized, domain_synthesized):
        assert synth.resources("AWS::ApiGateway::ApiKey") == {}
        assert synth.resources("AWS::ApiGateway::UsagePlanKey") == {}


def test_each_declared_producer_has_a_usage_plan_with_its_limits(
    synthesized: Synthesized, domain_synthesized: Synthesized
) -> None:
    stack_name = domain_synthesized.config.stack_name
    plans = _plans(domain_synthesized)
    billing, crm = plans[producer_plan_name(stack_name, "billing")], plans[producer_plan_name(stack_name, "crm")]
    stage_ids = list(_of_api(domain_synthesized, "AWS::ApiGateway::Stage"))

    assert _plans(synthesized) == {}  # cdk.json declares no producer
    assert set(plans) == {producer_plan_name(stack_name, "billing"), producer_plan_name(stack_name, "crm")}
    assert billing["Throttle"] == {"RateLimit": 5, "BurstLimit": 10}
    assert billing["Quota"] == {"Limit": 2000, "Period": "DAY"}
    assert crm["Throttle"] == {"RateLimit": 10, "BurstLimit": 20}
    assert crm["Quota"] == {"Limit": 10000, "Period": "DAY"}
    for plan in (billing, crm):
        (stage,) = plan["ApiStages"]
        assert stage["ApiId"] == {"Ref": _api_id(domain_synthesized)}
        assert stage["Stage"] == {"Ref": stage_ids[0]}
    outputs = render(domain_synthesized.json["Outputs"][Outputs.PRODUCER_PLANS]["Value"])
    assert '"billing":"${' in outputs and '"crm":"${' in outputs


def test_refused_keys_and_quotas_answer_in_the_functions_error_shape(synthesized: Synthesized) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]["ResponseTemplates"]["application/json"]
        for r in _of_api(synthesized, "AWS::ApiGateway::GatewayResponse").values()
    }

    assert {"INVALID_API_KEY", "QUOTA_EXCEEDED", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    for response_type, template in responses.items():
        filled = template.replace("$context.error.messageString", '"Forbidden"').replace(
            "$context.error.responseType", response_type
        )
        assert set(json.loads(filled)["error"]) == {"code", "message"}
    assert '"code": "invalid_api_key"' in responses["INVALID_API_KEY"]
    assert '"code": "quota_exceeded"' in responses["QUOTA_EXCEEDED"]


def test_the_stage_logs_without_bodies_and_is_throttled(synthesized: Synthesized) -> None:
    (stage,) = [s["Properties"] for s in _of_api(synthesized, "AWS::ApiGateway::Stage").values()]
    (settings,) = stage["MethodSettings"]
    fields = json.loads(stage["AccessLogSetting"]["Format"])

    assert "apiKeyId" in fields
    assert not [value for value in fields.values() if "body" in value.lower()]
    assert (settings["LoggingLevel"], settings["DataTraceEnabled"]) == ("ERROR", False)
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (50, 100)
    assert stage.get("TracingEnabled", False) is False  # as the functions: untraced by default (test_infra_tracing)


def test_the_producers_table_is_keyed_by_api_key_id_encrypted_and_expires_retired_keys(
    synthesized: Synthesized,
) -> None:
    table = synthesized.resources("AWS::DynamoDB::Table")[synthesized.output_ref(Outputs.PRODUCERS_TABLE)]
    props = table["Properties"]

    assert props["KeySchema"] == [{"AttributeName": Keys.PRODUCERS_PK, "KeyType": "HASH"}]
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": Keys.TTL, "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionPolicy"] == "Retain"


def test_the_key_retirement_role_may_only_delete_api_keys_for_the_scheduler(synthesized: Synthesized) -> None:
    role_id = synthesized.output_ref(Outputs.KEY_RETIREMENT_ROLE_ARN)
    role = synthesized.resources("AWS::IAM::Role")[role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    statements = [
        statement
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]

    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    assert [(as_list(s["Action"]), [render(r) for r in as_list(s["Resource"])]) for s in statements] == [
        (["apigateway:DELETE"], ["arn:${AWS::Partition}:apigateway:${AWS::Region}::/apikeys/*"])
    ]


def test_waf_is_an_option_with_a_rate_based_rule_on_both_stages(
    synthesized: Synthesized, domain_synthesized: Synthesized
) -> None:
    (acl_id, acl), *others = domain_synthesized.resources("AWS::WAFv2::WebACL").items()
    (rule,) = acl["Properties"]["Rules"]
    associated = {
        a["Properties"]["ResourceArn"]["Fn::Join"][1][-1]["Ref"] if "Fn::Join" in a["Properties"]["ResourceArn"] else ""
        for a in domain_synthesized.resources("AWS::WAFv2::WebACLAssociation").values()
    }
    stages = set(domain_synthesized.resources("AWS::ApiGateway::Stage"))

    assert synthesized.resources("AWS::WAFv2::WebACL") == {}
    assert others == []
    assert acl["Properties"]["Scope"] == "REGIONAL"
    assert acl["Properties"]["DefaultAction"] == {"Allow": {}}
    assert rule["Action"] == {"Block": {}}
    assert rule["Statement"]["RateBasedStatement"] == {
        "AggregateKeyType": "IP",
        "Limit": 500,
        "EvaluationWindowSec": 60,
    }
    assert len(stages) == 2
    assert associated == stages
    for association in domain_synthesized.resources("AWS::WAFv2::WebACLAssociation").values():
        assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}


def test_any_server_error_of_the_producers_stage_alarms(synthesized: Synthesized) -> None:
    (alarm,) = [
        a["Properties"]
        for a in synthesized.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == f"{synthesized.config.stack_name}-producer-api-5xx"
    ]
    (stage_id,) = _of_api(synthesized, "AWS::ApiGateway::Stage")

    assert (alarm["MetricName"], alarm["Threshold"]) == ("5XXError", 1)
    assert {"Name": "Stage", "Value": {"Ref": stage_id}} in alarm["Dimensions"]
    assert {"Name": "ApiName", "Value": f"{synthesized.config.stack_name}-producer-api"} in alarm["Dimensions"]
