"""The producers' API's resources on the local (moto) endpoint: the producers table, the API and its usage plans.

moto stores API Gateway's REST APIs, keys and usage plans without serving
them: the local producers' API server (`mailwright_tools.local.api_server`
with a `UsagePlanGate`) reads them, and `mailwright producers` manages keys
here exactly as on a deployed stack. The key-retirement role exists so a
rotation's EventBridge Scheduler schedule can name it (moto does not run
schedules: the gate takes a retired key as deleted at its time).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3

from infra.config import ProducerPlanConfig, producer_plan_name
from mailwright.constants import Keys
from mailwright_tools.local.api_server import LOCAL_STAGE
from mailwright_tools.producers import PRODUCER_TAG


@dataclass(frozen=True)
class ProducerResources:
    """The producers table, the producers' API (id and stage), each producer's usage plan, the retirement role."""

    table: str
    api_id: str
    stage: str
    plans: dict[str, str]
    retirement_role_arn: str


def provision_producers(
    plans: Mapping[str, ProducerPlanConfig],
    *,
    stack_name: str,
    session: boto3.session.Session,
    prefix: str = "mailwright",
) -> ProducerResources:
    """Create the table, the REST API, one usage plan per producer (as infra/producer_api.py), and the role."""
    table = f"{prefix}-producers"
    dynamodb = session.client("dynamodb")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": Keys.PRODUCERS_PK, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": Keys.PRODUCERS_PK, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": Keys.TTL})
    apigateway = session.client("apigateway")
    api_id = str(apigateway.create_rest_api(name=f"{stack_name}-producer-api")["id"])
    created = {
        name: str(
            apigateway.create_usage_plan(
                name=producer_plan_name(stack_name, name),
                apiStages=[{"apiId": api_id, "stage": LOCAL_STAGE}],
                tags={PRODUCER_TAG: name},
                **usage_plan_limits(plan),
            )["id"]
        )
        for name, plan in plans.items()
    }
    role = session.client("iam").create_role(
        RoleName=f"{prefix}-key-retirement",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    return ProducerResources(
        table=table, api_id=api_id, stage=LOCAL_STAGE, plans=created, retirement_role_arn=str(role["Role"]["Arn"])
    )


def usage_plan_limits(plan: ProducerPlanConfig) -> dict[str, Any]:
    """CreateUsagePlan's throttle and quota for a producer's plan (a quota of none: no quota)."""
    limits: dict[str, Any] = {"throttle": {"rateLimit": plan.rate_limit, "burstLimit": plan.burst_limit}}
    if plan.quota_per_day is not None:
        limits["quota"] = {"limit": plan.quota_per_day, "period": "DAY", "offset": 0}
    return limits
