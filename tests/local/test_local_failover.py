"""The local stack's secondary provider, its SES outage switch, and `mailwright providers`, end to end.

The stack runs as `mailwright local up` runs it: the loopback SMTP relay is the
secondary (a `providers` entry of kind smtp, credentials in Secrets Manager),
cdk.json's failover per lane (critical and standard fail over, bulk waits),
with a breaker quicker than the default so the test waits seconds, not minutes.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from infra.config import load_config
from mailwright.failover import BreakerPolicy
from mailwright_tools.local.relay import LOCAL_RELAY_NAME, PROVIDER_HEADER
from mailwright_tools.local.stack import LocalStack, LocalStackOptions
from mailwright_tools.state import StateDir
from tests.local.conftest import REPO, TEST_SES_RATE, Cli, run_cli, wait_until

RESET = {"user_name": "Ada", "reset_link": "https://example.com/r", "expires_in_minutes": 30}
ORDER = {"order_id": "A-1", "total_amount": "$12.50"}
NEWS = {
    "user_name": "Ada",
    "headline": "News",
    "articles": [{"title": "Hello", "url": "https://example.com/a", "summary": "A summary."}],
}
TEMPLATES = {
    "critical": ("password_reset", RESET),
    "standard": ("order_confirmation", ORDER),
    "bulk": ("newsletter", NEWS),
}


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A local stack with its secondary, and breakers that open after 2 failures and probe after 2 s."""
    config = load_config(REPO / "cdk.json")
    failover = {
        lane: dataclasses.replace(settings, failure_threshold=2, cooldown_seconds=2)
        for lane, settings in config.failover.items()
    }
    state = StateDir(tmp_path_factory.mktemp("state-failover"))
    stack = LocalStack(
        LocalStackOptions(state=state, config=dataclasses.replace(config, failover=failover), ses_rate=TEST_SES_RATE)
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def publish(cli: Cli, lane: str, to: str) -> str:
    template, data = TEMPLATES[lane]
    result = cli("send", "--to", to, "--template", template, "--data", json.dumps(data), "--json")
    assert result.exit_code == 0, result.stderr
    request_id: str = result.json()["requests"][0]["request_id"]
    return request_id


def logged(cli: Cli, request_id: str) -> dict[str, Any] | None:
    data: dict[str, Any] = cli("status", request_id, "--json").json()
    return data if data["found"] and data.get("status") else None


def outbox_headers(stack: LocalStack, request_id: str) -> Any:
    assert stack.outbox is not None
    for entry in stack.outbox.entries:
        if entry.request_id == request_id:
            raw = (stack.outbox.directory / f"{entry.stem}.eml").read_bytes()
            return entry, message_from_bytes(raw, policy=policy.default)
    return None


def providers_status(cli: Cli) -> dict[str, dict[str, Any]]:
    result = cli("providers", "status", "--json")
    assert result.exit_code == 0, result.stderr
    return {lane["lane"]: lane for lane in result.json()["lanes"]}


def test_local_up_runs_a_loopback_smtp_relay_as_the_secondary(local_stack: LocalStack, cli: Cli) -> None:
    state = local_stack.state
    assert state["providers"] == [{"name": LOCAL_RELAY_NAME, "kind": "smtp"}]
    assert state["failover"] == {
        "critical": {"enabled": True, "provider": LOCAL_RELAY_NAME},
        "standard": {"enabled": True, "provider": LOCAL_RELAY_NAME},
        "bulk": {"enabled": False, "provider": LOCAL_RELAY_NAME},
    }
    assert state["secondary_smtp"].startswith("127.0.0.1:")
    # Configured as a deployed relay is: the provider list, with its secret's ARN, never the password.
    env = local_stack.lane_environment("critical")
    (provider,) = json.loads(env["MAILWRIGHT_PROVIDERS"])
    assert provider["kind"] == "smtp" and provider["secret_arn"].startswith("arn:aws:secretsmanager:")
    assert provider["settings"]["host"] == "127.0.0.1" and "password" not in json.dumps(provider)

    lanes = providers_status(cli)
    assert {lane: status["sending_through"] for lane, status in lanes.items()} == {
        "critical": "ses",
        "standard": "ses",
        "bulk": "ses",
    }

    # SES mail lands in the outbox saying so.
    request_id = publish(cli, "critical", "calm@example.com")
    entry, message = wait_until(lambda: outbox_headers(local_stack, request_id))
    assert entry.provider == "ses" and message[PROVIDER_HEADER] == "ses"


def test_an_ses_outage_sends_critical_and_standard_through_the_relay_and_bulk_waits(
    local_stack: LocalStack, cli: Cli
) -> None:
    # Given SES down, as an outage (503s)
    down = cli("local", "ses", "down", "--json")
    assert down.exit_code == 0, down.stderr
    assert down.json()["state"] == "down"
    try:
        # When mail of every lane arrives
        ids = {lane: [publish(cli, lane, f"{lane}{n}@example.com") for n in range(4)] for lane in TEMPLATES}

        # Then critical and standard mail goes out through the relay, its log naming the provider
        for lane in ("critical", "standard"):
            for request_id in ids[lane]:
                entry, message = wait_until(lambda rid=request_id: outbox_headers(local_stack, rid), timeout=40)
                assert entry.provider == LOCAL_RELAY_NAME and message[PROVIDER_HEADER] == LOCAL_RELAY_NAME
                assert message["X-Mailwright-Request-Id"] == request_id
                record = wait_until(lambda rid=request_id: logged(cli, rid))
                assert (record["status"], record["provider"]) == ("sent", LOCAL_RELAY_NAME)
        lanes = providers_status(cli)
        assert lanes["critical"]["breakers"]["ses"]["state"] in ("open", "half_open")
        assert lanes["critical"]["sending_through"] == LOCAL_RELAY_NAME
        # And bulk mail waits: nothing of it was sent by anyone
        assert not [rid for rid in ids["bulk"] if outbox_headers(local_stack, rid) or logged(cli, rid)]
        assert cli("local", "ses", "status", "--json").json()["failed_attempts"] > 0
    finally:
        up = cli("local", "ses", "up", "--json")
        assert up.exit_code == 0 and up.json()["state"] == "up"

    # When SES is back, bulk drains through SES and the breakers close on their next probe
    for request_id in ids["bulk"]:
        record = wait_until(lambda rid=request_id: logged(cli, rid), timeout=60)
        assert (record["status"], record["provider"]) == ("sent", "ses")
    after = publish(cli, "critical", "after@example.com")
    wait_until(lambda: (logged(cli, after) or {}).get("provider") == "ses", timeout=30)
    lanes = wait_until(lambda: (s := providers_status(cli)) and s["critical"]["sending_through"] == "ses" and s)
    history = [(c["provider"], c["before"], c["after"]) for c in lanes["critical"]["history"]]
    assert ("ses", "closed", "open") in history and history[-1] == ("ses", "half_open", "closed")
    # Nothing was sent twice: every request of the outage has exactly one email in the outbox.
    assert local_stack.outbox is not None
    counted: dict[str, int] = {}
    for entry in local_stack.outbox.entries:
        counted[entry.request_id] = counted.get(entry.request_id, 0) + 1
    assert all(counted.get(rid) == 1 for lane in ids.values() for rid in lane)


def test_failover_and_restore_by_hand_switch_the_lane_and_are_audited(local_stack: LocalStack, cli: Cli) -> None:
    # When an operator moves critical mail off SES by hand
    moved = cli("providers", "failover", "critical", "--note", "SES eu-west-1 degraded", "--actor", "ops@example")
    assert moved.exit_code == 0, moved.stderr
    assert f"mail goes through {LOCAL_RELAY_NAME}" in moved.stdout
    # Workers read the breaker through a short cache: a switch by hand reaches them within that time.
    time.sleep(BreakerPolicy().refresh_seconds + 0.5)
    try:
        # Then critical mail goes through the relay, and stays there (no probe) until restored
        request_id = publish(cli, "critical", "byhand@example.com")
        record = wait_until(lambda: logged(cli, request_id), timeout=30)
        assert record["provider"] == LOCAL_RELAY_NAME
        ses = providers_status(cli)["critical"]["breakers"]["ses"]
        assert ses["state"] == "open" and ses["by_hand"] and ses["actor"] == "ops@example"
    finally:
        restored = cli("providers", "restore", "critical", "--note", "SES healthy", "--actor", "ops@example", "--json")
        assert restored.exit_code == 0, restored.stderr
    assert restored.json()["sending_through"] == "ses"
    time.sleep(BreakerPolicy().refresh_seconds + 0.5)
    request_id = publish(cli, "critical", "restored@example.com")
    assert wait_until(lambda: logged(cli, request_id), timeout=30)["provider"] == "ses"

    # And both changes are in the breaker's history, with who and why
    history = providers_status(cli)["critical"]["history"]
    by_hand = [(c["after"], c["actor"], c["reason"]) for c in history if c["actor"]]
    assert by_hand[-2:] == [
        ("open", "ops@example", "failed over by hand: SES eu-west-1 degraded"),
        ("closed", "ops@example", "restored by hand: SES healthy"),
    ]
    text = cli("providers", "status").stdout
    assert "failed over by hand: SES eu-west-1 degraded" in text and "by ops@example" in text


def test_bad_lanes_and_modes_are_usage_errors(cli: Cli) -> None:
    assert cli("providers", "failover", "urgent").exit_code == 2
    assert cli("providers", "restore", "critical", "--provider", "sendgrid").exit_code == 2
    assert cli("local", "ses", "down", "--mode", "flaky").exit_code == 2


def test_without_a_local_stack_the_ses_switch_says_so(tmp_path: Path) -> None:
    result = run_cli(StateDir(tmp_path), "local", "ses", "down")

    assert result.exit_code == 3
    assert "no local stack is running" in result.stderr
