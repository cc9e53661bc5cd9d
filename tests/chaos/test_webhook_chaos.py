"""Webhook chaos, small: an endpoint that is down, then flaky, then fine loses no event, and slows no other endpoint.

The webhook sender runs as deployed (its event source mapping emulated, SQS,
DynamoDB, S3 and Secrets Manager in moto, real HTTP on loopback) with the
retry policy's delays shortened. Endpoint `flaky` refuses connections for a
few seconds, then answers 500 or garbage about a third of the time;
endpoint `steady` answers 200. Both subscribe to the same events.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from moto import mock_aws

from infra.events_config import WebhookTarget, webhook_environment
from mailwright.event_settings import RetryPolicy, WebhookSettings
from mailwright.event_wiring import build_webhook_service
from mailwright.handlers import webhooks
from mailwright.webhooks.signing import new_secret, secret_document
from mailwright_tools.local.event_source import EventSourceEmulator, EventSourceSettings
from mailwright_tools.local.observability import WorkerOutput
from tests.webhook_receiver import Receiver, free_port

pytestmark = pytest.mark.slow

EVENTS = 60
DOWN_SECONDS = 4.0
POLICY = RetryPolicy(base_seconds=0.5, cap_seconds=2.0, window_seconds=120.0, suspend_after_seconds=120.0)


class Flaky(Receiver):
    """A receiver that answers 500 or garbage to about a third of the requests (the rest 200)."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self._rng = rng
        self._pick = threading.Lock()

    def next_answer(self) -> Any:
        with self._pick:
            roll = self._rng.random()
        return 500 if roll < 0.2 else "garbage" if roll < 0.33 else 200


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    # As the local stack runs it: each emulated container gets its own metric set, flushed per invocation.
    output = WorkerOutput(tmp_path, handler_modules=[webhooks])
    with mock_aws():
        sqs, s3 = boto3.client("sqs"), boto3.client("s3")
        dynamodb, secrets = boto3.client("dynamodb"), boto3.client("secretsmanager")
        dynamodb.create_table(
            TableName="webhooks",
            KeySchema=[{"AttributeName": "endpoint", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "endpoint", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        s3.create_bucket(Bucket="archive")
        steady = Receiver().start()
        flaky = Flaky(random.Random(5))
        flaky_port = free_port()
        endpoints: dict[str, Any] = {}
        for name, url in (("steady", steady.url("/in")), ("flaky", f"http://127.0.0.1:{flaky_port}/in")):
            queue_url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            secret = new_secret()
            secret_arn = secrets.create_secret(Name=name, SecretString=secret_document(secret))["ARN"]
            endpoints[name] = {
                "url": url,
                "queue_url": queue_url,
                "arn": arn,
                "secret": secret,
                "secret_arn": secret_arn,
            }
        steady.secret, flaky.secret = endpoints["steady"]["secret"], endpoints["flaky"]["secret"]
        settings = WebhookSettings.from_env(
            webhook_environment(
                targets=[
                    WebhookTarget(name, e["url"], e["arn"], e["queue_url"], e["secret_arn"])
                    for name, e in endpoints.items()
                ],
                state_table="webhooks",
                archive_bucket="archive",
                retry_json=POLICY.to_json(),
                allow_loopback=True,
            )
        )
        service = build_webhook_service(settings, session=boto3.session.Session())

        def invoke(event: dict[str, Any], context: Any) -> Any:
            try:
                return webhooks.handle_batch(service, SQSEvent(event))
            finally:
                output.metrics.flush()

        mapping = EventSourceSettings(batch_size=10, batching_window_seconds=0, max_concurrency=2, timeout_seconds=30)
        emulators = [
            EventSourceEmulator(
                name=f"webhook-{name}",
                sqs=sqs,
                queue_url=e["queue_url"],
                settings=mapping,
                handler_factory=lambda: invoke,
            )
            for name, e in endpoints.items()
        ]
        try:
            yield {
                "sqs": sqs,
                "s3": s3,
                "dynamodb": dynamodb,
                "endpoints": endpoints,
                "steady": steady,
                "flaky": flaky,
                "flaky_port": flaky_port,
                "emulators": emulators,
            }
        finally:
            for emulator in emulators:
                emulator.stop()
            steady.stop()
            flaky.stop()
            output.restore()


def test_a_down_then_flaky_endpoint_loses_no_event_and_slows_no_other(world: dict[str, Any]) -> None:
    sqs = world["sqs"]
    ids = [f"{n:032x}" for n in range(1, EVENTS + 1)]
    for event_id in ids:  # as each endpoint's rule puts every matching event on its queue
        detail = {"event_id": event_id, "request_id": event_id[-8:], "occurred_at": "2026-01-01T00:00:00.000Z"}
        body = json.dumps({"id": event_id, "detail-type": "EmailBounced", "source": "mailwright", "detail": detail})
        for endpoint in world["endpoints"].values():
            sqs.send_message(QueueUrl=endpoint["queue_url"], MessageBody=body)
    started = time.monotonic()
    for emulator in world["emulators"]:
        emulator.start()
    steady, flaky = world["steady"], world["flaky"]
    # The steady endpoint gets everything while the other one is down (and being attempted all along)
    deadline = started + 60
    while set(steady.ids()) < set(ids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert set(steady.ids()) == set(ids)

    # ...and every event was attempted on the down one (on a busy machine the steady endpoint may be done
    # first: the down one's attempts are awaited, and it stays down meanwhile).
    def flaky_state() -> dict[str, Any]:
        item: dict[str, Any] = world["dynamodb"].get_item(TableName="webhooks", Key={"endpoint": {"S": "flaky"}})[
            "Item"
        ]
        return item

    while int(flaky_state()["failures"]["N"]) < EVENTS and time.monotonic() < deadline:
        time.sleep(0.1)
    state = flaky_state()
    assert int(state["failures"]["N"]) >= EVENTS and "connection_refused" in state["last_error"]["S"]
    # The flaky one comes up, answering badly a third of the time
    time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - started)))
    flaky.behaviour = _Scripted(flaky)
    flaky.start(world["flaky_port"])
    deadline = time.monotonic() + 150  # retries included: a run here has taken 78 s

    def delivered() -> set[str | None]:
        return {r.headers.get("webhook-id") for r in flaky.received if r.verified}

    def queued() -> int:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        url = world["endpoints"]["flaky"]["queue_url"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(attributes.get(name, "0")) for name in names)

    # Done when the queue is empty: an event answered badly is received, then retried from the queue until a 2xx.
    while (not set(ids) <= delivered() or queued()) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert queued() == 0, "the flaky endpoint's queue did not drain"
    assert delivered() >= set(ids), f"lost: {sorted(set(ids) - delivered())[:5]}"
    # Nothing was given up on: no archived delivery, no dead letter; every request carried a valid signature
    assert world["s3"].list_objects_v2(Bucket="archive").get("KeyCount", 0) == 0
    assert all(r.verified for r in flaky.received) and all(r.verified for r in steady.received)
    failed = len(flaky.received) - len(set(r.headers.get("webhook-id") for r in flaky.received))
    assert failed > 0, "the flaky endpoint never misbehaved: the test proved nothing"


class _Scripted(dict[str, Any]):
    """The flaky receiver's behaviour table: every lookup rolls its next answer."""

    def __init__(self, receiver: Flaky) -> None:
        super().__init__()
        self._receiver = receiver

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._receiver.next_answer()
