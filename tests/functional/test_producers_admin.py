"""`ProducerAdmin` against moto: keys issued and named in the producers table before they join a plan, rotations
scheduling the old key's deletion with EventBridge Scheduler, revocation, and the sweep of overdue keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.config import ProducerPlanConfig
from mailwright.adapters.producers import DynamoProducerDirectory
from mailwright.constants import Keys
from mailwright_tools.producers import NoKeysError, ProducerAdmin, ProducersError, ProducerTarget
from mailwright_tools.provision_producers import ProducerResources, provision_producers

NOW = 1_800_000_000.0
HOUR = 3600.0


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def aws() -> Iterator[boto3.session.Session]:
    with mock_aws():
        yield boto3.session.Session(region_name="eu-west-1")


@pytest.fixture
def resources(aws: boto3.session.Session) -> ProducerResources:
    plans = {
        "billing": ProducerPlanConfig(rate_limit=5.0, burst_limit=10, quota_per_day=100),
        "crm": ProducerPlanConfig(),
    }
    return provision_producers(plans, stack_name="mailwright", session=aws)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def admin(aws: boto3.session.Session, resources: ProducerResources, clock: Clock) -> ProducerAdmin:
    target = ProducerTarget(
        stack_name="mailwright",
        plans=resources.plans,
        table=resources.table,
        retirement_role_arn=resources.retirement_role_arn,
        api_url="https://api.example.com/prod",
    )
    return ProducerAdmin(
        target,
        apigateway=aws.client("apigateway"),
        dynamodb=aws.client("dynamodb"),
        scheduler=aws.client("scheduler"),
        clock=clock,
    )


def _item(aws: boto3.session.Session, table: str, key_id: str) -> dict[str, Any]:
    item: dict[str, Any] = aws.client("dynamodb").get_item(TableName=table, Key={Keys.PRODUCERS_PK: {"S": key_id}})
    return item.get("Item") or {}


def _plan_keys(aws: boto3.session.Session, plan_id: str) -> list[str]:
    return [k["id"] for k in aws.client("apigateway").get_usage_plan_keys(usagePlanId=plan_id)["items"]]


def test_a_new_key_is_named_in_the_table_and_on_its_producers_plan_only(
    admin: ProducerAdmin, aws: boto3.session.Session, resources: ProducerResources
) -> None:
    issued = admin.add("billing")

    key = aws.client("apigateway").get_api_key(apiKey=issued.api_key_id, includeValue=True)
    assert key["value"] == issued.value
    assert key["tags"] == {"mailwright:producer": "billing", "mailwright:stack": "mailwright"}
    assert _plan_keys(aws, resources.plans["billing"]) == [issued.api_key_id]
    assert _plan_keys(aws, resources.plans["crm"]) == []
    item = _item(aws, resources.table, issued.api_key_id)
    assert item["producer"] == {"S": "billing"}
    # Only the id is stored: never the value.
    assert issued.value not in json.dumps(item)
    found = DynamoProducerDirectory(aws.client("dynamodb"), resources.table).key(issued.api_key_id)
    assert found is not None and (found.producer, found.retires_at) == ("billing", None)


def test_add_refuses_an_undeclared_producer_and_a_second_first_key(admin: ProducerAdmin) -> None:
    admin.add("crm")

    with pytest.raises(ProducersError, match="not a declared producer"):
        admin.add("marketing")
    with pytest.raises(ProducersError, match="rotate"):
        admin.add("crm")
    with pytest.raises(NoKeysError):
        admin.rotate("billing", overlap_seconds=HOUR)


def test_a_rotation_schedules_the_old_keys_deletion_at_the_end_of_the_overlap(
    admin: ProducerAdmin, aws: boto3.session.Session, resources: ProducerResources
) -> None:
    old = admin.add("billing")

    new = admin.rotate("billing", overlap_seconds=24 * HOUR)

    (retiring,) = new.retiring
    assert (retiring.api_key_id, retiring.retires_at) == (old.api_key_id, NOW + 24 * HOUR)
    assert sorted(_plan_keys(aws, resources.plans["billing"])) == sorted([old.api_key_id, new.api_key_id])
    item = _item(aws, resources.table, old.api_key_id)
    assert float(item["retires_at"]["N"]) == NOW + 24 * HOUR
    assert int(item[Keys.TTL]["N"]) > NOW + 24 * HOUR
    schedule = aws.client("scheduler").get_schedule(Name=f"mailwright-retire-key-{old.api_key_id}")
    assert schedule["ScheduleExpression"] == "at(2027-01-16T08:00:00)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:apigateway:deleteApiKey"
    assert schedule["Target"]["RoleArn"] == resources.retirement_role_arn
    assert json.loads(schedule["Target"]["Input"]) == {"ApiKey": old.api_key_id}
    # The directory stops naming the old key's producer at that time, whatever happens to the schedule.
    found = DynamoProducerDirectory(aws.client("dynamodb"), resources.table).key(old.api_key_id)
    assert found is not None and found.active(NOW + 24 * HOUR - 1) and not found.active(NOW + 24 * HOUR)


def test_a_second_rotation_never_extends_an_old_keys_time(admin: ProducerAdmin, clock: Clock) -> None:
    first = admin.add("billing")
    admin.rotate("billing", overlap_seconds=HOUR)
    clock.now += 60

    again = admin.rotate("billing", overlap_seconds=24 * HOUR)

    times = {key.api_key_id: key.retires_at for key in again.retiring}
    assert times[first.api_key_id] == NOW + HOUR
    assert len(times) == 2


def test_a_rotation_without_overlap_deletes_the_old_key_at_once(
    admin: ProducerAdmin, aws: boto3.session.Session, resources: ProducerResources
) -> None:
    old = admin.add("billing")

    new = admin.rotate("billing", overlap_seconds=0)

    assert _plan_keys(aws, resources.plans["billing"]) == [new.api_key_id]
    assert _item(aws, resources.table, old.api_key_id) == {}
    ids = [k["id"] for k in aws.client("apigateway").get_api_keys()["items"]]
    assert old.api_key_id not in ids


def test_revoke_deletes_one_key_or_all(
    admin: ProducerAdmin, aws: boto3.session.Session, resources: ProducerResources
) -> None:
    first = admin.add("billing")
    second = admin.rotate("billing", overlap_seconds=HOUR)

    assert admin.revoke("billing", api_key_id=first.api_key_id) == [first.api_key_id]
    with pytest.raises(NoKeysError):
        admin.revoke("billing", api_key_id=first.api_key_id)
    assert admin.revoke("billing") == [second.api_key_id]
    assert _plan_keys(aws, resources.plans["billing"]) == []
    with pytest.raises(NoKeysError):
        admin.revoke("billing")


def test_the_sweep_deletes_keys_whose_overlap_ended_and_nothing_else(
    admin: ProducerAdmin, aws: boto3.session.Session, resources: ProducerResources, clock: Clock
) -> None:
    old = admin.add("billing")
    new = admin.rotate("billing", overlap_seconds=HOUR)

    assert admin.sweep() == []
    clock.now += HOUR

    assert admin.sweep() == [old.api_key_id]
    assert _plan_keys(aws, resources.plans["billing"]) == [new.api_key_id]
    assert admin.sweep() == []


def test_list_shows_each_plans_limits_and_keys(admin: ProducerAdmin) -> None:
    issued = admin.add("billing")

    billing, crm = admin.describe()

    assert (billing.name, billing.rate_limit, billing.burst_limit) == ("billing", 5.0, 10)
    assert (billing.quota_limit, billing.quota_period) == (100, "DAY")
    assert [key.api_key_id for key in billing.keys] == [issued.api_key_id]
    assert (crm.name, crm.keys) == ("crm", [])
    assert issued.value not in json.dumps([billing.as_dict(), crm.as_dict()])
