"""The ingest bridge handler on moto with its real adapters, and a forwarded request through the worker."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from infra.config import MailwrightConfig, bridge_environment
from mailwright.adapters.dynamodb import DynamoMessageLog
from mailwright.errors import IngestDeliveryError
from mailwright.handlers import bridge
from mailwright.request import EmailRequest
from mailwright.settings import BridgeSettings
from mailwright.wiring import build_bridge
from mailwright_tools.events import FakeLambdaContext, kafka_event, rabbitmq_event
from mailwright_tools.provision import StackResources
from tests.functional.harness import WorkerHarness

RESET = {
    "recipient_email": "kim@example.com",
    "template_id": "password_reset",
    "template_data": {"user_name": "Kim", "reset_link": "https://example.com/r", "expires_in_minutes": 15},
}


def bridge_with(
    config: MailwrightConfig, stack: StackResources, monkeypatch: pytest.MonkeyPatch, session: Any = None
) -> None:
    """The handler's service, built from the environment the CDK app gives the deployed bridge."""
    env = bridge_environment(
        config=config,
        queue_urls=dict(stack.queues),
        templates_bucket=stack.templates_bucket,
        messages_table=stack.messages_table,
    )
    service = build_bridge(BridgeSettings.from_env(env), session=session or boto3.session.Session())
    monkeypatch.setattr(bridge, "service", lambda: service)


def test_a_kafka_record_reaches_its_lane_and_is_sent_and_a_bad_one_is_logged(
    config: MailwrightConfig,
    stack: StackResources,
    worker: Callable[[str], WorkerHarness],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bridge_with(config, stack, monkeypatch)
    critical = worker("critical")
    event = kafka_event([(json.dumps(RESET).encode(), {"correlation-id": b"reset-1"}), (b"not json", {})])

    answer = bridge.handler(event, FakeLambdaContext())

    assert answer == {"source": "kafka", "records": 2, "forwarded": {"critical": 1}, "rejected": 1}
    # The password reset went to the critical lane (its template's priority) and the worker sends it.
    assert critical.run_batch()["received"] == 1
    request_id = EmailRequest.model_validate(RESET).request_id
    logged = critical.logged(request_id)
    assert logged is not None and logged["status"] == "sent"
    assert critical.ses_calls[0].to == ["kim@example.com"]
    # The bad record is in the message log under the id the worker would derive for its body.
    rejected = DynamoMessageLog(boto3.client("dynamodb"), stack.messages_table, ttl_days=1).get(
        hashlib.sha256(b"not json").hexdigest()[:32]
    )
    assert rejected is not None
    assert (rejected["status"], rejected["reason_code"]) == ("rejected", "invalid_json")


def test_a_lane_queue_that_refuses_every_entry_fails_the_batch_for_the_mapping_to_retry(
    config: MailwrightConfig, stack: StackResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = boto3.session.Session()
    sends: list[int] = []

    def refuse(params: dict[str, Any], **_: Any) -> Any:
        # SQS speaks JSON: the request body holds the entries; answer for the service, refusing each.
        entries = json.loads(params["body"])["Entries"]
        sends.append(len(entries))
        failed = [
            {"Id": e["Id"], "Code": "InternalError", "Message": "injected", "SenderFault": False} for e in entries
        ]
        ok = {"HTTPStatusCode": 200}
        return AWSResponse("https://aws.invalid", 200, {}, None), {"Failed": failed, "ResponseMetadata": ok}

    session.events.register("before-call.sqs.SendMessageBatch", refuse)
    bridge_with(config, stack, monkeypatch, session=session)
    event = rabbitmq_event([(json.dumps(RESET).encode(), {})], queue="mailwright-requests")

    with pytest.raises(IngestDeliveryError, match="not accepted by the lane queues after retries"):
        bridge.handler(event, FakeLambdaContext())
    assert sends == [1, 1, 1, 1]  # the first send and three retries
