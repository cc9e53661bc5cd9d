"""Scheduled sends through the real adapters: the send worker's handler over moto's SQS, DynamoDB and Scheduler.

moto stores EventBridge schedules but never runs them: the tests check what
was created (one per request, with the target, retry policy, DLQ and key) and
play the schedule's part by putting its Input on the lane queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from infra.config import MailwrightConfig
from mailwright.constants import STATUS_CANCELLED, STATUS_SCHEDULED, STATUS_SENT
from mailwright.request import parse_request
from mailwright.scheduling import ScheduleDesk, schedule_name
from mailwright.wiring import build_schedule_desk
from mailwright_tools.provision import StackResources
from tests.functional.harness import WorkerHarness

TTL_DAYS = 90


def request(key: str, *, ahead: float | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "recipient_email": "jane@example.com",
        "template_id": "order_confirmation",
        "template_data": {"order_id": "XYZ789", "total_amount": "$49.99", "customer_name": "Jane"},
        "idempotency_key": key,
        **fields,
    }
    if ahead is not None:
        body["send_at"] = datetime.fromtimestamp(time.time() + ahead, UTC).isoformat()
    return body


def rid(body: dict[str, Any]) -> str:
    return parse_request(body).request_id


def desk_for(stack: StackResources) -> ScheduleDesk:
    return build_schedule_desk(
        messages_table=stack.messages_table,
        idempotency_table=stack.idempotency_table,
        schedule_group=stack.schedule_group,
        session=boto3.session.Session(),
        log_ttl_days=TTL_DAYS,
    )


def test_long_schedule_is_one_encrypted_schedule_with_retry_and_dlq(
    worker: Callable[[str], WorkerHarness], stack: StackResources, config: MailwrightConfig
) -> None:
    lane = worker("standard")
    body = request("long", ahead=3 * 3600)
    lane.publish(body)
    assert lane.run_batch()["batchItemFailures"] == []
    lane.publish(body)  # published twice (or delivered again): still one schedule
    assert lane.run_batch()["batchItemFailures"] == []

    scheduler = boto3.client("scheduler")
    listed = scheduler.list_schedules(GroupName=stack.schedule_group)["Schedules"]
    assert [s["Name"] for s in listed] == [schedule_name(rid(body))]
    found = scheduler.get_schedule(Name=schedule_name(rid(body)), GroupName=stack.schedule_group)
    settings = stack.schedule_settings
    assert found["ActionAfterCompletion"] == "DELETE"
    assert found["KmsKeyArn"] == settings["kms_key_arn"]
    assert found["ScheduleExpression"].startswith("at(") and found["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = found["Target"]
    assert target["Arn"] == settings["queue_arn_standard"] and target["RoleArn"] == settings["role_arn"]
    assert target["DeadLetterConfig"] == {"Arn": settings["dead_letter_arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert json.loads(target["Input"]) == body

    item = lane.logged(rid(body))
    assert item is not None and item["status"] == STATUS_SCHEDULED
    send_at = parse_request(body).send_at
    assert send_at is not None and item["send_at"] == round(send_at.timestamp(), 3)
    # The record outlives the send: its TTL counts from send_at.
    assert item["expires_at"] == int(send_at.timestamp() + config.message_log_ttl_days * 86400)
    assert not lane.ses_calls


def test_short_schedule_waits_in_an_sqs_delay_and_is_listed(
    worker: Callable[[str], WorkerHarness], stack: StackResources
) -> None:
    lane = worker("standard")
    body = request("short", ahead=300, user_id="user-42")
    lane.publish(body)
    assert lane.run_batch()["batchItemFailures"] == []
    assert "sqs.SendMessageBatch" in lane.api_calls  # handed back as a new, delayed message
    assert "scheduler.CreateSchedule" not in lane.api_calls
    desk = desk_for(stack)
    listed = desk.scheduled(user_id="user-42")
    assert [(r.request_id, r.status, r.lane) for r in listed] == [(rid(body), STATUS_SCHEDULED, "standard")]
    assert desk.scheduled(user_id="someone-else") == []


def test_cancel_before_and_after_the_send(worker: Callable[[str], WorkerHarness], stack: StackResources) -> None:
    lane = worker("standard")
    held, plain = request("held", ahead=7200), request("plain")
    lane.publish(held, plain)
    lane.run_batch()
    assert [c.to for c in lane.ses_calls] == [["jane@example.com"]]
    desk = desk_for(stack)

    cancelled = desk.cancel(rid(held))
    assert (cancelled.status, cancelled.changed) == (STATUS_CANCELLED, True)
    assert boto3.client("scheduler").list_schedules(GroupName=stack.schedule_group)["Schedules"] == []
    item = lane.logged(rid(held))
    assert item is not None and item["status"] == STATUS_CANCELLED
    assert [e["status"] for e in item["history"]] == [STATUS_SCHEDULED, STATUS_CANCELLED]
    assert desk.scheduled() == []  # it left the schedule index

    # The copy EventBridge would have fired (or one still in an SQS delay) is dropped.
    lane.publish(held)
    assert lane.run_batch()["batchItemFailures"] == []
    assert len(lane.ses_calls) == 1

    late = desk.cancel(rid(plain))
    assert (late.status, late.changed) == (STATUS_SENT, False)
    sent = lane.logged(rid(plain))
    assert sent is not None and sent["status"] == STATUS_SENT


def test_cancel_key_stops_queued_and_scheduled_requests_and_reschedule_moves_one(
    worker: Callable[[str], WorkerHarness], stack: StackResources
) -> None:
    lane = worker("standard")
    desk = desk_for(stack)
    scheduled = request("k1", ahead=7200, cancel_key="order-7")
    moved = request("k2", ahead=7200)
    lane.publish(scheduled, moved)
    lane.run_batch()
    queued = request("k3", cancel_key="order-7")
    lane.publish(queued)  # published before the cancel, processed after it

    result = desk.cancel_key("order-7")
    assert [r.request_id for r in result.results if r.changed] == [rid(scheduled)]
    lane.run_batch()
    assert not lane.ses_calls
    statuses = {rid(b): (lane.logged(rid(b)) or {}).get("status") for b in (scheduled, queued)}
    assert set(statuses.values()) == {STATUS_CANCELLED}

    new_time = time.time() + 86400
    assert desk.reschedule(rid(moved), new_time).changed
    item = lane.logged(rid(moved))
    assert item is not None and item["send_at"] == round(new_time, 3)
    found = boto3.client("scheduler").get_schedule(Name=schedule_name(rid(moved)), GroupName=stack.schedule_group)
    moved_to = datetime.fromtimestamp(int(new_time + 0.999), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert found["ScheduleExpression"] == f"at({moved_to})"
    assert json.loads(found["Target"]["Input"]) == moved  # the target is kept as it was
    assert not desk.reschedule(rid(scheduled), new_time).changed  # cancelled: stays so


def test_sdk_schedules_client_lists_moves_and_cancels(
    worker: Callable[[str], WorkerHarness], stack: StackResources
) -> None:
    from mailwright.sdk import InvalidSendAtError, Schedules

    lane = worker("standard")
    body = request("sdk", ahead=7200, producer="billing", cancel_key="invoice-1")
    lane.publish(body)
    lane.run_batch()
    schedules = Schedules.from_env(
        {
            "MAILWRIGHT_MESSAGES_TABLE": stack.messages_table,
            "MAILWRIGHT_IDEMPOTENCY_TABLE": stack.idempotency_table,
            "MAILWRIGHT_SCHEDULE_GROUP": stack.schedule_group,
        },
        producer="billing",
    )
    assert [r.request_id for r in schedules.scheduled()] == [rid(body)]
    with pytest.raises(InvalidSendAtError, match="UTC offset"):
        schedules.reschedule(rid(body), "2030-01-01T00:00:00")
    assert schedules.reschedule(rid(body), datetime.fromtimestamp(time.time() + 3600, UTC)).changed
    assert [r.request_id for r in schedules.cancel_key("invoice-1").results if r.changed] == [rid(body)]
    assert schedules.scheduled() == []
