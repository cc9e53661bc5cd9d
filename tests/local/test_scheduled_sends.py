"""Scheduled sends on the local stack, through the CLI: send --send-at, status, scheduled list, reschedule, cancel."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from mailwright.scheduling import schedule_name
from mailwright_tools.local.stack import LocalStack
from tests.local.conftest import Cli, wait_until

ORDER = '{"order_id": "A-1", "total_amount": "$12.50"}'


def at(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds, UTC).isoformat(timespec="seconds")


def send(cli: Cli, *extra: str) -> str:
    result = cli("send", "--to", "ada@example.com", "--template", "order_confirmation", "--data", ORDER, *extra,
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    request_id: str = result.json()["requests"][0]["request_id"]
    return request_id


def status(cli: Cli, request_id: str) -> dict[str, Any]:
    data: dict[str, Any] = cli("status", request_id, "--json").json()
    return data


def test_send_at_a_few_seconds_ahead_is_scheduled_then_sent(cli: Cli) -> None:
    # A lead that outlasts the CLI's round trips on a busy machine, short enough to wait for.
    request_id = send(cli, "--send-at", at(12), "--idempotency-key", "soon-1")
    scheduled = wait_until(lambda: (s := status(cli, request_id))["found"] and s)
    assert scheduled["status"] == "scheduled"
    assert scheduled["why"].startswith("scheduled for ")
    shown = cli("status", request_id)
    assert shown.exit_code == 0 and "scheduled" in shown.stdout
    sent = wait_until(lambda: (s := status(cli, request_id))["status"] == "sent" and s, timeout=60)
    assert sent["history"][-1]["status"] == "sent"


def test_cancel_before_and_after(cli: Cli) -> None:
    held = send(cli, "--send-at", at(600), "--idempotency-key", "cancel-1")
    wait_until(lambda: status(cli, held).get("status") == "scheduled")
    cancelled = cli("cancel", held, "--json")
    assert cancelled.exit_code == 0 and cancelled.json() == {"request_id": held, "status": "cancelled", "changed": True}
    assert status(cli, held)["status"] == "cancelled"
    again = cli("cancel", held)
    assert again.exit_code == 1 and "cancelled" in again.stdout

    sent = send(cli, "--idempotency-key", "cancel-2")
    wait_until(lambda: status(cli, sent).get("status") == "sent")
    late = cli("cancel", sent)
    assert late.exit_code == 1 and "already sent" in late.stdout
    assert status(cli, sent)["status"] == "sent"


def test_long_schedule_list_reschedule_and_cancel_by_key(cli: Cli, local_stack: LocalStack) -> None:
    first = send(cli, "--send-at", at(7200), "--cancel-key", "order-9", "--user-id", "u-9", "--idempotency-key", "k1")
    second = send(cli, "--send-at", at(3 * 86400), "--cancel-key", "order-9", "--user-id", "u-9",
                  "--idempotency-key", "k2")  # fmt: skip
    wait_until(lambda: all(status(cli, r).get("status") == "scheduled" for r in (first, second)))
    scheduler = local_stack.session().client("scheduler")
    group = local_stack.state["schedule_group"]
    names = {s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"]}
    assert names == {schedule_name(first), schedule_name(second)}

    listed = cli("scheduled", "list", "--user", "u-9", "--json")
    assert listed.exit_code == 0
    assert [item["request_id"] for item in listed.json()["scheduled"]] == [first, second]

    moved = cli("reschedule", second, "--send-at", at(3600), "--json")
    assert moved.exit_code == 0 and moved.json()["changed"]
    assert [item["request_id"] for item in cli("scheduled", "list", "--json").json()["scheduled"]] == [second, first]

    by_key = cli("cancel", "--key", "order-9", "--json")
    assert by_key.exit_code == 0
    assert sorted(r["request_id"] for r in by_key.json()["results"] if r["changed"]) == sorted([first, second])
    assert scheduler.list_schedules(GroupName=group)["Schedules"] == []
    assert cli("scheduled", "list", "--json").json() == {"scheduled": []}
    assert {status(cli, r)["status"] for r in (first, second)} == {"cancelled"}


def test_an_emulated_schedule_puts_its_body_on_the_lane_when_due(cli: Cli, local_stack: LocalStack) -> None:
    body = {
        "recipient_email": "grace@example.com",
        "template_id": "order_confirmation",
        "template_data": json.loads(ORDER),
        "idempotency_key": "fired-1",
    }
    from mailwright.request import parse_request

    request_id = parse_request(body).request_id
    scheduler = local_stack.schedulers["standard"]
    assert scheduler.create(schedule_name(request_id), at=time.time() + 1, body=json.dumps(body))
    sent = wait_until(lambda: (s := status(cli, request_id))["found"] and s["status"] == "sent", timeout=30)
    assert sent
    assert schedule_name(request_id) in scheduler.fired
    group = local_stack.state["schedule_group"]
    assert local_stack.session().client("scheduler").list_schedules(GroupName=group)["Schedules"] == []
