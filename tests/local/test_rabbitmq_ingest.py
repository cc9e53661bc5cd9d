"""RabbitMQ into the lanes on the local stack: a real broker, a real AMQP client, the bridge as Lambda invokes it."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from infra.config import load_config
from mailwright.request import EmailRequest
from mailwright_tools.events import FakeLambdaContext
from mailwright_tools.local.rabbitmq import RabbitMQEventSource, RabbitMQSourceSettings
from mailwright_tools.local.stack import LocalStack, LocalStackOptions
from mailwright_tools.state import StateDir
from tests.local.conftest import REPO, TEST_SES_RATE, run_cli, wait_until
from tests.local.rabbitmq_broker import RabbitMQBroker

pytestmark = pytest.mark.slow

QUEUE = "mailwright-requests-test"
WELCOME = {
    "recipient_email": "rita@example.com",
    "template_id": "welcome_email",
    "template_data": {"user_name": "Rita", "login_link": "https://example.com/login"},
}
RESET = {
    "recipient_email": "rob@example.com",
    "template_id": "password_reset",
    "template_data": {"user_name": "Rob", "reset_link": "https://example.com/r", "expires_in_minutes": 30},
}


def publish(url: str, queue: str, *messages: tuple[bytes, pika.BasicProperties | None]) -> None:
    """Publish with a real AMQP client, as a producer service would, to the default exchange."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.queue_declare(queue=queue, durable=True)
        for body, properties in messages:
            channel.basic_publish(exchange="", routing_key=queue, body=body, properties=properties)
    finally:
        connection.close()


@pytest.fixture(scope="module")
def rabbit_stack(rabbitmq_broker: RabbitMQBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The local stack with its RabbitMQ door on the test broker's queue."""
    state = StateDir(tmp_path_factory.mktemp("state-rabbitmq"))
    options = LocalStackOptions(
        state=state,
        config=load_config(REPO / "cdk.json"),
        ses_rate=TEST_SES_RATE,
        rabbitmq_url=rabbitmq_broker.url,
        rabbitmq_queue=QUEUE,
    )
    stack = LocalStack(options)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def status(stack: LocalStack, request_id: str) -> dict[str, Any] | None:
    result = run_cli(stack.options.state, "status", request_id, "--json")
    data: dict[str, Any] = result.json()
    return data if data.get("found") and data.get("status") else None


def test_requests_published_to_rabbitmq_are_sent_and_invalid_ones_are_rejected_without_blocking(
    rabbit_stack: LocalStack, rabbitmq_broker: RabbitMQBroker
) -> None:
    not_json = b"{this is not a request"
    welcome = json.dumps(WELCOME).encode()
    reset = json.dumps(RESET).encode()

    publish(
        rabbitmq_broker.url,
        QUEUE,
        (welcome, pika.BasicProperties(content_type="application/json", correlation_id="signup-7")),
        (not_json, pika.BasicProperties(headers={"tenant": "acme"})),
        (reset, None),
    )

    sent_ids = [EmailRequest.model_validate(r).request_id for r in (WELCOME, RESET)]
    for request_id in sent_ids:
        found = wait_until(lambda rid=request_id: status(rabbit_stack, rid), timeout=60)
        assert found["status"] == "sent"
    assert {status(rabbit_stack, rid)["lane"] for rid in sent_ids} == {"standard", "critical"}  # type: ignore[index]
    # The invalid message is logged under the id the worker derives for that body, with the reason.
    rejected = wait_until(lambda: status(rabbit_stack, hashlib.sha256(not_json).hexdigest()[:32]), timeout=30)
    assert (rejected["status"], rejected["reason_code"]) == ("rejected", "invalid_json")
    # Everything was acknowledged: the queue is empty and nothing was requeued.
    wait_until(lambda: rabbit_stack.rabbitmq is not None and rabbit_stack.rabbitmq.idle, timeout=30)
    assert rabbit_stack.rabbitmq is not None
    assert (rabbit_stack.rabbitmq.stats.acked, rabbit_stack.rabbitmq.stats.requeued) == (3, 0)
    recorded = json.loads(rabbit_stack.options.state.local_json.read_text())
    assert recorded["rabbitmq"] == {"url": rabbitmq_broker.url.replace("guest:guest", "guest:***"), "queue": QUEUE}
    assert rabbit_stack.wait_until_drained(timeout=60)


def test_a_batch_the_bridge_fails_goes_back_to_the_broker_and_is_redelivered(rabbitmq_broker: RabbitMQBroker) -> None:
    # Given a bridge that fails its first invocation
    events: list[dict[str, Any]] = []
    done = threading.Event()

    def factory() -> Any:
        def invoke(event: dict[str, Any], context: FakeLambdaContext) -> dict[str, Any]:
            events.append(event)
            if len(events) == 1:
                raise RuntimeError("injected bridge failure")
            done.set()
            return {}

        return invoke

    queue = "mailwright-redelivery-test"
    source = RabbitMQEventSource(
        name="bridge-test",
        settings=RabbitMQSourceSettings(url=rabbitmq_broker.url, queue=queue, batching_window_seconds=0.3),
        handler_factory=factory,
    )
    publish(rabbitmq_broker.url, queue, *[(f"message {i}".encode(), None) for i in range(3)])
    source.start()
    try:
        # Then the same batch comes back, marked redelivered, and is acknowledged once handled
        assert done.wait(30), source.stats
        wait_until(lambda: source.idle, timeout=30)
    finally:
        source.stop()
    first, second = ([m for ms in e["rmqMessagesByQueue"].values() for m in ms] for e in events[:2])
    assert [m["data"] for m in first] == [m["data"] for m in second]
    assert list(events[0]["rmqMessagesByQueue"]) == [f"{queue}::/"]
    assert [m["redelivered"] for m in second] == [True, True, True]
    assert (source.stats.requeued, source.stats.acked, source.stats.failed_batches) == (3, 3, 1)


def test_local_up_refuses_a_url_that_is_not_amqp(tmp_path: Any) -> None:
    result = run_cli(StateDir(tmp_path / "state"), "local", "up", "--rabbitmq", "http://guest:secret@127.0.0.1:5672/")

    assert result.exit_code == 2
    assert "not an amqp:// (or amqps://) URL" in result.stderr
    assert "secret" not in result.stderr


def test_local_up_says_when_the_broker_cannot_be_reached(tmp_path: Any) -> None:
    from tests.local.rabbitmq_broker import free_port

    url = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    result = run_cli(StateDir(tmp_path / "state"), "local", "up", "--rabbitmq", url)

    assert result.exit_code == 1
    assert "could not connect to RabbitMQ" in result.stderr
