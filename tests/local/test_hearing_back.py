"""Hearing back on the local stack: every detail-type reaches a rule on the local bus, webhooks arrive signed,
an endpoint that is down for a while loses nothing, and `mailwright webhooks` manages the endpoints."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import jsonschema
import pytest
from standardwebhooks.webhooks import Webhook

from infra.config import load_config
from mailwright.outcome_events import DETAIL_TYPES, RESERVED_DETAIL_TYPES, detail_json_schema
from mailwright.request import parse_request
from mailwright.wiring import build_schedule_desk, build_suppression_service
from mailwright_tools.local.stack import LocalStack, LocalStackOptions
from mailwright_tools.state import StateDir
from tests.local.conftest import REPO, TEST_SES_RATE, CliResult, run_cli, wait_until
from tests.webhook_receiver import Receiver, free_port

pytestmark = pytest.mark.slow

PUBLISHED = tuple(t for t in DETAIL_TYPES if t not in RESERVED_DETAIL_TYPES)
WELCOME = {"template_id": "welcome_email", "template_data": {"user_name": "Jo", "login_link": "https://x.io/l"}}
DEAD = {"recipient_email": "dead@example.com", **WELCOME, "metadata": {"tenant": "acme"}}
NEWSLETTER = {
    "template_id": "newsletter",
    "template_data": {
        "user_name": "Jo",
        "headline": "News",
        "articles": [{"title": "A", "url": "https://x.io/a", "summary": "S"}],
    },
}


class Endpoints:
    """The two webhook receivers: `good` answers 200; `flaky` is down (nothing listens) until brought up."""

    def __init__(self) -> None:
        self.good = Receiver().start()
        self.flaky_port = free_port()
        self.flaky = Receiver()

    def bring_up_flaky(self, secret: str) -> None:
        self.flaky.secret = secret
        self.flaky.start(self.flaky_port)

    def stop(self) -> None:
        self.good.stop()
        self.flaky.stop()


@pytest.fixture(scope="module")
def endpoints() -> Iterator[Endpoints]:
    found = Endpoints()
    yield found
    found.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, endpoints: Endpoints) -> Iterator[LocalStack]:
    state = StateDir(tmp_path_factory.mktemp("hearing"))
    options = LocalStackOptions(
        state=state,
        config=load_config(REPO / "cdk.json"),
        ses_rate=TEST_SES_RATE,
        outcome_events=DETAIL_TYPES,
        webhooks=(endpoints.good.url("/hook"), f"http://127.0.0.1:{endpoints.flaky_port}/hook"),
    )
    running = LocalStack(options)
    running.start()
    endpoints.good.secret = running.state["webhook_secrets"]["local-1"]
    try:
        yield running
    finally:
        running.stop()


class Tap:
    """A producer's rule with an SQS target, made with plain boto3 against the local endpoint."""

    def __init__(self, stack: LocalStack, name: str, pattern: dict[str, Any]) -> None:
        kwargs = {"endpoint_url": stack.endpoint_url, "region_name": stack.options.region}
        self.sqs = boto3.client("sqs", **kwargs)
        events = boto3.client("events", **kwargs)
        self.url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=name, EventBusName=stack.state["event_bus"], EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, EventBusName=stack.state["event_bus"], Targets=[{"Id": "q", "Arn": arn}])
        self.events: list[dict[str, Any]] = []

    def collect(self) -> list[dict[str, Any]]:
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return self.events
            for message in messages:
                self.events.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def types(self) -> set[str]:
        return {event["detail-type"] for event in self.collect()}


def send(stack: LocalStack, lane: str, **request: Any) -> str:
    """Put a request on a lane queue as the seed producer does; its request id."""
    body = json.dumps(request)
    stack.session().client("sqs").send_message(QueueUrl=stack.state["queues"][lane], MessageBody=body)
    return parse_request(body).request_id


def ses_event(stack: LocalStack, request_id: str, event_type: str, key: str, body: dict[str, Any]) -> None:
    """Publish an SES event about a sent request on the feedback topic, as SES would."""
    item = (
        stack.session()
        .client("dynamodb")
        .get_item(TableName=stack.state["tables"]["messages"], Key={"pk": {"S": request_id}, "sk": {"S": "request"}})[
            "Item"
        ]
    )
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    event = {
        "eventType": event_type,
        "mail": {
            "messageId": item["ses_message_id"]["S"],
            "timestamp": now,
            "destination": ["someone@example.com"],
            "tags": {"request_id": [request_id]},
        },
        key: {"timestamp": now, **body},
    }
    stack.session().client("sns").publish(TopicArn=stack.state["feedback_topic_arn"], Message=json.dumps(event))


@pytest.fixture(scope="module")
def heard(stack: LocalStack, endpoints: Endpoints) -> dict[str, Any]:
    """Every kind of outcome produced once, and what a rule on the bus and one on `tenant=acme` heard."""
    everything = Tap(stack, "everything", {"source": ["mailwright"]})
    acme = Tap(stack, "acme", {"source": ["mailwright"], "detail": {"metadata": {"tenant": ["acme"]}}})
    session = stack.session()
    build_suppression_service(
        suppression_table=stack.state["tables"]["suppression"],
        address_key_secret=stack.state["address_key_secret_arn"],
        session=session,
    ).add("blocked@example.com", reason="MANUAL", actor="test", note="test")
    session.client("dynamodb").put_item(
        TableName=stack.state["tables"]["preferences"],
        Item={"user_id": {"S": "u-opted"}, "opted_out": {"SS": ["marketing"]}, "unsubscribed_all": {"BOOL": False}},
    )
    acme_tag = {"metadata": {"tenant": "acme"}}
    sent = send(stack, "critical", recipient_email="ana@example.com", **WELCOME, **acme_tag)
    send(stack, "critical", recipient_email="bounce@simulator.amazonses.com", **WELCOME, **acme_tag)
    send(stack, "critical", recipient_email="complaint@simulator.amazonses.com", **WELCOME)
    send(stack, "standard", recipient_email="ana@example.com", template_id="no_such_template", metadata={"tenant": "x"})
    send(stack, "standard", recipient_email="blocked@example.com", **WELCOME)
    send(stack, "bulk", recipient_email="opted@example.com", user_id="u-opted", **NEWSLETTER)
    # Folded into a digest (EmailDigested); its digest email waits for the template's window
    send(stack, "standard", recipient_email="dee@example.com", template_id="activity_digest", user_id="u-digest",
         digest_key="comments", template_data={"title": "New comment", "url": "https://x.io/c/1"})  # fmt: skip
    for n in range(3):  # marketing allows 2 a day per user (cdk.json): the third is rate limited
        send(stack, "bulk", recipient_email="rl@example.com", user_id="u-rl", idempotency_key=f"rl-{n}", **NEWSLETTER)
    # A request that reached a DLQ (whatever ended its attempts)
    stack.session().client("sqs").send_message(
        QueueUrl=stack.state["dlqs"]["bulk"],
        MessageBody=json.dumps(DEAD),
    )
    # A scheduled send (EmailScheduled), then cancelled (EmailCancelled).
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    scheduled = send(stack, "standard", recipient_email="ana@example.com", send_at=later, **WELCOME)
    wait_until(lambda: "EmailSent" in everything.types() and "EmailScheduled" in everything.types(), timeout=60)
    build_schedule_desk(
        messages_table=stack.state["tables"]["messages"],
        idempotency_table=stack.state["tables"]["idempotency"],
        schedule_group=stack.state["schedule_group"],
        session=session,
    ).cancel(scheduled)
    ses_event(stack, sent, "Open", "open", {"userAgent": "test", "ipAddress": "192.0.2.1"})
    ses_event(stack, sent, "Click", "click", {"link": "https://x.io/a?token=secret", "ipAddress": "192.0.2.1"})
    ses_event(
        stack,
        sent,
        "DeliveryDelay",
        "deliveryDelay",
        {"delayType": "MailboxFull", "delayedRecipients": [{"emailAddress": "ana@example.com", "status": "4.2.2"}]},
    )
    deadline = time.monotonic() + 90
    while not set(PUBLISHED) <= everything.types():
        if time.monotonic() > deadline:
            pytest.fail(f"never heard {sorted(set(PUBLISHED) - everything.types())}")
        time.sleep(0.5)
    return {"everything": everything.collect(), "acme": acme.collect(), "sent": sent}


def test_every_detail_type_reaches_a_rule_on_the_local_bus(heard: dict[str, Any]) -> None:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in heard["everything"]:
        by_type.setdefault(event["detail-type"], []).append(event)
    assert set(by_type) == set(PUBLISHED)
    for detail_type, events in by_type.items():
        for event in events:
            assert event["source"] == "mailwright"
            jsonschema.validate(event["detail"], detail_json_schema(detail_type))
    assert by_type["EmailBounced"][0]["detail"]["bounce_type"] == "Permanent"
    assert by_type["EmailFailed"][0]["detail"]["reason_code"] == "dead_lettered"
    assert by_type["EmailRateLimited"][0]["detail"]["category"] == "marketing"
    clicked = by_type["EmailClicked"][0]["detail"]
    assert clicked["request_id"] == heard["sent"] and clicked["details"]["link"] == "https://x.io/a"


def test_no_event_holds_a_recipient_address(heard: dict[str, Any]) -> None:
    text = json.dumps(heard["everything"])
    for address in ("ana@example.com", "blocked@example.com", "rl@example.com", "dead@example.com", "bounce@simulator"):
        assert address not in text


def test_a_rule_on_a_producers_metadata_hears_only_its_mail(heard: dict[str, Any]) -> None:
    acme = heard["acme"]
    assert {e["detail-type"] for e in acme} >= {"EmailSent", "EmailBounced", "EmailFailed", "EmailOpened"}
    assert all(e["detail"]["metadata"] == {"tenant": "acme"} for e in acme)


def test_webhooks_arrive_signed_with_the_event_id(heard: dict[str, Any], endpoints: Endpoints) -> None:
    ids = {e["detail"]["event_id"] for e in heard["everything"]}
    wait_until(lambda: ids <= set(endpoints.good.ids()), timeout=60)
    for request in endpoints.good.received:
        assert request.verified is True
        assert request.headers["webhook-id"] == request.payload["data"]["event_id"]
    assert {r.payload["type"] for r in endpoints.good.received} >= set(PUBLISHED)


def test_local_json_names_the_webhook_secrets(stack: LocalStack) -> None:
    recorded = stack.options.state.read_local()
    assert recorded is not None
    assert set(recorded["webhook_secrets"]) == {"local-1", "local-2"}
    assert all(secret.startswith("whsec_") for secret in recorded["webhook_secrets"].values())
    assert "webhook_secret" not in recorded  # two endpoints: no single one to name
    assert recorded["outcome_events"] == list(DETAIL_TYPES)
    assert set(recorded["parked_dlqs"]) == {"critical", "standard", "bulk"}


def test_an_endpoint_down_for_a_while_loses_no_event(
    stack: LocalStack, heard: dict[str, Any], endpoints: Endpoints
) -> None:
    # Given local-2's endpoint refused connections for everything so far (each attempt failed and was backed off)
    cli = _cli(stack)
    listed = {e["name"]: e for e in cli("webhooks", "list", "--json").json()["endpoints"]}
    assert listed["local-2"]["state"]["failures"] >= 1 and listed["local-2"]["state"]["failing_since"]
    # When it comes back
    endpoints.bring_up_flaky(stack.state["webhook_secrets"]["local-2"])
    # Then every event reaches it, signed, and it is no longer failing
    ids = {e["detail"]["event_id"] for e in heard["everything"]}
    wait_until(lambda: ids <= set(endpoints.flaky.ids()), timeout=90)
    assert all(r.verified for r in endpoints.flaky.received)
    wait_until(lambda: not _state(cli, "local-2")["failing_since"], timeout=30)


def test_webhooks_test_sends_a_signed_test_delivery(stack: LocalStack, endpoints: Endpoints) -> None:
    result = _cli(stack)("webhooks", "test", "local-1", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.json()["delivered"] is True
    [test] = [r for r in endpoints.good.received if r.payload["type"] == "WebhookTest"]
    assert test.verified is True and test.headers["webhook-id"] == result.json()["webhook_id"]


def test_a_gone_endpoint_is_suspended_then_resumed_and_replayed(stack: LocalStack, endpoints: Endpoints) -> None:
    cli = _cli(stack)
    endpoints.good.behaviour["/hook"] = 410
    first = send(stack, "critical", recipient_email="g1@example.com", template_id="gone_1", metadata={"tenant": "g"})
    wait_until(lambda: _state(cli, "local-1")["state"] == "suspended", timeout=60)
    second = send(stack, "critical", recipient_email="g2@example.com", template_id="gone_2", metadata={"tenant": "g"})
    wait_until(lambda: _view(cli, "local-1")["archived"] >= 2, timeout=60)
    # Suspended, nothing is attempted: the second request's event was archived without a POST
    attempted = [r.payload["data"]["request_id"] for r in endpoints.good.received if r.payload["type"] != "WebhookTest"]
    assert first in attempted and second not in attempted
    refused = cli("webhooks", "replay", "local-1")
    assert refused.exit_code == 1 and "resume" in refused.stderr
    endpoints.good.behaviour["/hook"] = 200
    assert cli("webhooks", "resume", "local-1").exit_code == 0
    replayed = cli("webhooks", "replay", "local-1", "--json")
    assert replayed.exit_code == 0 and replayed.json()["archived"] >= 2
    wait_until(
        lambda: (
            {first, second}
            <= {r.payload["data"].get("request_id") for r in endpoints.good.received[-10:] if r.verified}
        ),
        timeout=60,
    )
    assert _view(cli, "local-1")["archived"] == 0


def test_a_rotation_keeps_both_secrets_until_finished(stack: LocalStack) -> None:
    # (Signing with both during the overlap: tests/unit/test_webhook_signing.py, with the reference library.)
    cli = _cli(stack)
    old = stack.state["webhook_secrets"]["local-2"]
    rotated = cli("webhooks", "rotate", "local-2", "--json")
    assert rotated.exit_code == 0
    new = rotated.json()["secret"]
    assert new != old and rotated.json()["signing_with"] == 2
    assert cli("webhooks", "rotate", "local-2").exit_code == 1  # already rotating
    finished = cli("webhooks", "rotate", "local-2", "--finish", "--json")
    assert finished.exit_code == 0 and finished.json()["secret"] == new and finished.json()["signing_with"] == 1
    Webhook(new)  # a well-formed whsec_ secret the reference library takes


def test_dead_letters_are_parked_and_redriven_with_the_dlq_commands(stack: LocalStack, heard: dict[str, Any]) -> None:
    cli = _cli(stack)
    status = cli("status", parse_request(json.dumps(DEAD)).request_id, "--json").json()
    assert status["status"] == "failed" and "dlq redrive --lane bulk" in status["reason"]
    listed = cli("dlq", "list", "--lane", "bulk", "--json").json()
    assert set(listed["queues"]) == {"bulk", "bulk-parked"}
    assert listed["queues"]["bulk-parked"]["count"] == 1 and listed["queues"]["bulk"]["count"] == 0
    redriven = cli("dlq", "redrive", "--lane", "bulk", "--json")
    assert redriven.exit_code == 0 and redriven.json()["queues"]["bulk-parked"]["moved"] == 1


def test_an_unknown_endpoint_is_a_usage_error(stack: LocalStack) -> None:
    result = _cli(stack)("webhooks", "resume", "nope")
    assert result.exit_code == 2 and "local-1" in result.stderr


# -- helpers ---------------------------------------------------------------------------------------------------


def _cli(stack: LocalStack) -> Any:
    def invoke(*args: str) -> CliResult:
        return run_cli(stack.options.state, *args)

    return invoke


def _view(cli: Any, name: str) -> dict[str, Any]:
    endpoints = {e["name"]: e for e in cli("webhooks", "list", "--json").json()["endpoints"]}
    return dict(endpoints[name])


def _state(cli: Any, name: str) -> dict[str, Any]:
    return dict(_view(cli, name)["state"])
