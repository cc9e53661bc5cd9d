"""A webhook endpoint's rule, as deployed, matched by EventBridge (moto) against outcome events of two producers."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws

from infra.events_config import WebhookConfig


def _event(producer: str | None, tenant: str) -> dict[str, str]:
    detail = {"request_id": "0" * 32, "status": "bounced", "metadata": {"tenant": tenant}, "producer": producer}
    return {"Source": "mailwright", "DetailType": "EmailBounced", "Detail": json.dumps(detail), "EventBusName": "bus"}


def test_an_endpoint_for_one_producer_hears_only_that_producers_events() -> None:
    hook = WebhookConfig(
        name="billing", url="https://hooks.example.com/in", detail_types=("EmailBounced",), producers=("billing",)
    )
    with mock_aws():
        events = boto3.client("events", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        events.create_event_bus(Name="bus")
        queue_url = sqs.create_queue(QueueName="hook")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="hook", EventBusName="bus", EventPattern=json.dumps(hook.event_pattern()))
        events.put_targets(Rule="hook", EventBusName="bus", Targets=[{"Id": "q", "Arn": queue_arn}])

        events.put_events(Entries=[_event("billing", "a"), _event("crm", "b"), _event(None, "c")])

        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        tenants = [json.loads(m["Body"])["detail"]["metadata"]["tenant"] for m in received.get("Messages", [])]
        assert tenants == ["a"]
