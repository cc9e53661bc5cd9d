"""Failover in the send worker's handler, in-process against moto, with a real SMTP relay on loopback as the secondary.

SES is made to fail through botocore hooks; the relay (aiosmtpd, STARTTLS and
AUTH) is configured as deployed: the providers JSON in the environment, its
credentials in Secrets Manager, the breaker in the idempotency table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest

from mailwright.adapters.provider_breaker import DynamoProviderBreakerStore
from mailwright.constants import Env
from mailwright.ports import BREAKER_CLOSED, BREAKER_OPEN, BreakerChange
from mailwright_tools.provision import StackResources
from tests.functional.harness import WorkerHarness, service_error
from tests.functional.relays import PASSWORD, USERNAME, Certificate, Relay
from tests.functional.test_send_worker import password_reset, request_id

Make = Callable[[str], WorkerHarness]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return Certificate.create(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def relay(certificate: Certificate, monkeypatch: pytest.MonkeyPatch) -> Iterator[Relay]:
    # The worker trusts the system's CAs: point them at the test certificate, as a private CA would be.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert_file))
    with Relay("starttls", certificate) as running:
        yield running


@pytest.fixture
def failover_worker(
    worker: Make, stack: StackResources, relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Make]:
    """Make a lane's worker with the relay as its secondary: `failover_worker("critical")`."""
    secret_arn = boto3.client("secretsmanager").create_secret(
        Name="mailwright/providers/relay", SecretString=json.dumps({"username": USERNAME, "password": PASSWORD})
    )["ARN"]
    providers = [
        {
            "name": "relay",
            "kind": "smtp",
            "secret_arn": secret_arn,
            "send_rate": 50,
            "settings": {"host": "127.0.0.1", "port": relay.port, "tls": "starttls", "timeout_seconds": 5},
        }
    ]
    monkeypatch.setenv(Env.PROVIDERS, json.dumps(providers))
    # Fast breaker: a second's cooldown, state re-read every 50 ms.
    policy = {"failure_threshold": 2, "cooldown_seconds": 1, "account_cooldown_seconds": 1, "refresh_seconds": 0.05}
    monkeypatch.setenv(Env.FAILOVER, json.dumps(policy))
    made: list[WorkerHarness] = []

    def make(lane: str) -> WorkerHarness:
        made.append(worker(lane))
        return made[-1]

    yield make
    for harness in made:  # QUIT the relay's pooled connections before the relay stops
        harness.service._sender.close()  # type: ignore[attr-defined]


def ses_fails(code: str, status: int) -> Callable[[str, dict[str, Any]], Any]:
    def fault(operation: str, params: dict[str, Any]) -> Any:
        return service_error(code, status, "injected outage") if operation == "sesv2.SendEmail" else None

    return fault


def breaker_state(stack: StackResources, lane: str) -> str:
    return DynamoProviderBreakerStore(boto3.client("dynamodb"), stack.idempotency_table).read(lane, "ses").state


def test_while_ses_is_paused_critical_mail_goes_out_through_the_relay_and_comes_back_to_ses(
    failover_worker: Make, stack: StackResources, relay: Relay
) -> None:
    w = failover_worker("critical")
    w.faults.append(ses_fails("SendingPausedException", 400))
    requests = [password_reset(f"user{i}@example.com") for i in range(5)]
    w.publish(*requests)

    response = w.run_batch()

    assert response["batchItemFailures"] == [] and response["received"] == 5
    assert len(relay.handler.messages) == 5
    assert breaker_state(stack, "critical") == BREAKER_OPEN
    for request in requests:
        logged = w.logged(request_id(request))
        assert logged is not None and logged["status"] == "sent" and logged["provider"] == "relay"
        assert logged["ses_message_id"].endswith("@example.com")  # the relay's Message-ID
    delivered = relay.handler.parsed()
    assert {m["To"] for m in delivered} == {f"user{i}@example.com" for i in range(5)}
    assert all(m["X-Mailwright-Lane"] == "critical" for m in delivered)

    # SES returns; after the cooldown one probe goes to SES and closes the breaker.
    w.faults.clear()
    time.sleep(1.2)
    w.publish(password_reset("probe@example.com"))
    w.run_batch()
    assert breaker_state(stack, "critical") == BREAKER_CLOSED
    w.publish(password_reset("after@example.com"))
    w.run_batch()
    logged = w.logged(request_id(password_reset("after@example.com")))
    assert logged is not None and logged["provider"] == "ses"
    assert len(relay.handler.messages) == 5
    # The relay's credentials and the address keyring were read from Secrets Manager once each for the
    # container (password resets carry no unsubscribe link, so that key is never read).
    assert w.api_calls.count("secretsmanager.GetSecretValue") == 2


def delayed(w: Any) -> int:
    """Messages of the worker's queue that wait out a delay (deferred mail)."""
    attributes = w.sqs.get_queue_attributes(QueueUrl=w.queue_url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


def test_the_bulk_lane_waits_for_ses_and_then_drains(
    failover_worker: Make, stack: StackResources, relay: Relay
) -> None:
    w = failover_worker("bulk")
    w.service.policy = replace(w.service.policy, max_backoff_seconds=1)  # the waits' delays: a second
    w.faults.append(ses_fails("SendingPausedException", 400))
    requests = [password_reset(f"user{i}@example.com") for i in range(3)]
    w.publish(*requests)

    paused = w.run_batch()

    # Waiting for SES is not a failure: the records go back to the queue as new, delayed messages.
    assert paused["batchItemFailures"] == [] and relay.handler.messages == []
    assert delayed(w) == 3
    assert all(w.logged(request_id(r)) is None for r in requests)
    assert breaker_state(stack, "bulk") == BREAKER_OPEN

    # SES returns: after the cooldown one email probes it; the rest wait for the probe's answer.
    w.faults.clear()
    time.sleep(1.2)
    probed = w.run_batch()
    assert probed["received"] == 3 and probed["batchItemFailures"] == []
    assert breaker_state(stack, "bulk") == BREAKER_CLOSED
    for _ in range(3):
        time.sleep(1.1)
        if w.run_batch()["received"] == 0:
            break
    logged = [w.logged(request_id(r)) for r in requests]
    assert {entry["provider"] for entry in logged} == {"ses"}  # type: ignore[index]
    # However long they waited, no receive was spent toward the DLQ.
    assert {entry["attempts"] for entry in logged} == {1}  # type: ignore[index]
    assert relay.handler.messages == [] and breaker_state(stack, "bulk") == BREAKER_CLOSED


def test_repeated_server_errors_open_the_breaker_and_rate_throttling_does_not(
    failover_worker: Make, stack: StackResources, relay: Relay
) -> None:
    w = failover_worker("standard")
    w.faults.append(ses_fails("TooManyRequestsException", 429))  # "Maximum sending rate exceeded"
    w.publish(password_reset("a@example.com"), password_reset("b@example.com"))
    throttled = w.run_batch()
    # A throttle is pacing's: the records come back as new, delayed messages, and the breaker stays closed.
    assert throttled["batchItemFailures"] == [] and delayed(w) == 2
    assert breaker_state(stack, "standard") == BREAKER_CLOSED

    w.faults[:] = [ses_fails("InternalFailure", 500)]
    time.sleep(3.1)  # the throttled records' delay (1 to 3 s)
    w.run_batch()

    assert breaker_state(stack, "standard") == BREAKER_OPEN
    w.end_backoff()
    w.run_batch()
    assert {m["To"] for m in relay.handler.parsed()} == {"a@example.com", "b@example.com"}


def test_a_breakers_history_keeps_its_last_fifty_changes_in_the_idempotency_table(stack: StackResources) -> None:
    store = DynamoProviderBreakerStore(boto3.client("dynamodb"), stack.idempotency_table)

    for n in range(55):
        after = BREAKER_OPEN if n % 2 == 0 else BREAKER_CLOSED
        before = BREAKER_CLOSED if n % 2 == 0 else BREAKER_OPEN
        store.record_change(
            BreakerChange("critical", "ses", before, after, reason=f"change {n}", actor="cli:ops" if n else "", at=n)
        )

    history = store.history("critical", "ses")
    assert len(history) == 50
    assert [c.reason for c in history[:2]] == ["change 5", "change 6"] and history[-1].reason == "change 54"
    assert history[-1] == BreakerChange("critical", "ses", BREAKER_CLOSED, BREAKER_OPEN, "change 54", "cli:ops", 54.0)
    assert store.history("critical", "relay") == [] and store.history("bulk", "ses") == []
