"""Quiet hours and digests in the send worker's handler, in-process against moto (issue 17)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from mailwright.adapters.dynamodb_digests import DynamoDigestStore
from mailwright.constants import Env
from mailwright.ports import DIGEST_SENDING, DigestItem
from mailwright.quiet_deferral import quiet_schedule_name
from mailwright.request import parse_request
from mailwright_tools.local.scheduler import expression_time
from mailwright_tools.provision import StackResources
from tests.functional.harness import WorkerHarness

Make = Callable[[str], WorkerHarness]
NEWSLETTER = {
    "recipient_email": "night.owl@example.com",
    "template_id": "newsletter",
    "user_id": "owl",
    "template_data": {
        "user_name": "Owl",
        "headline": "News",
        "articles": [{"title": "A", "url": "https://example.com/a", "summary": "S"}],
    },
}


def digest_request(i: int) -> dict[str, Any]:
    return {
        "recipient_email": "jane@example.com",
        "template_id": "activity_digest",
        "user_id": "jane",
        "digest_key": "comments",
        "template_data": {"title": f"Comment {i}", "url": f"https://example.com/c/{i}"},
    }


def request_id(request: dict[str, Any]) -> str:
    return parse_request(json.dumps(request)).request_id


def test_a_night_in_quiet_hours_is_one_encrypted_schedule_back_to_the_lane_and_the_record_is_acked(
    worker: Make, stack: StackResources
) -> None:
    # Given a user whose quiet hours (UTC) hold the present moment, for two more hours
    now = datetime.now(UTC)
    window = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=2)):%H:%M}"
    boto3.client("dynamodb").put_item(
        TableName=stack.preferences_table,
        Item={"user_id": {"S": "owl"}, "timezone": {"S": "UTC"}, "quiet_hours": {"S": window}},
    )
    w = worker("bulk")
    w.publish(NEWSLETTER)

    response = w.run_batch()

    # The record is acked (not failed, no hop through the deferral port) and nothing was mailed
    assert response["batchItemFailures"] == [] and w.ses_calls == []
    assert "sqs.SendMessageBatch" not in w.api_calls
    attributes = w.sqs.get_queue_attributes(QueueUrl=w.queue_url, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesDelayed"]) == ("0", "0")
    # The message log shows it deferred, with the reason and the time it may go, and no terminal state
    logged = w.logged(request_id(NEWSLETTER))
    assert logged is not None and logged["status"] == "deferred" and logged["reason_code"] == "quiet_hours"
    assert logged["resume_at"] >= (now + timedelta(hours=2)).replace(second=0, microsecond=0).timestamp() - 60
    assert [entry["status"] for entry in logged["history"]] == ["deferred"]
    # One schedule at that time puts the request as published back on the bulk lane, like a scheduled send's
    scheduler = boto3.client("scheduler")
    (listed,) = scheduler.list_schedules(GroupName=stack.schedule_group)["Schedules"]
    resume_at = float(logged["resume_at"])  # the log keeps milliseconds: within a second of the schedule's
    prefix = quiet_schedule_name(request_id(NEWSLETTER), 0).removesuffix("0")
    assert listed["Name"].startswith(prefix) and abs(int(listed["Name"].removeprefix(prefix)) - resume_at) <= 1
    found = scheduler.get_schedule(Name=listed["Name"], GroupName=stack.schedule_group)
    assert abs(expression_time(found["ScheduleExpression"]) - resume_at) <= 1
    assert found["ActionAfterCompletion"] == "DELETE" and found["KmsKeyArn"] == stack.schedule_settings["kms_key_arn"]
    assert found["Target"]["Arn"] == stack.schedule_settings["queue_arn_bulk"]
    assert json.loads(found["Target"]["Input"]) == NEWSLETTER

    # Delivered again, it finds the schedule taken: still one, and acked
    w.publish(NEWSLETTER)
    assert w.run_batch()["batchItemFailures"] == []
    assert len(scheduler.list_schedules(GroupName=stack.schedule_group)["Schedules"]) == 1


def drain(w: WorkerHarness, *, seconds: float = 4.0) -> None:
    """Run batches until the queue holds nothing, delayed messages included (the flush waits a second)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert w.run_batch()["batchItemFailures"] == []
        attributes = w.sqs.get_queue_attributes(QueueUrl=w.queue_url, AttributeNames=["All"])["Attributes"]
        if attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesDelayed"] == "0":
            return
        time.sleep(0.2)
    raise AssertionError("the queue did not drain")


@pytest.fixture
def digest_worker(worker: Make, monkeypatch: pytest.MonkeyPatch) -> WorkerHarness:
    # The local stack's override: every digest window is one second.
    monkeypatch.setenv(Env.DIGEST_WINDOW_SECONDS, "1")
    return worker("bulk")  # a lane whose SES calls the harness captures (no failover wrapper)


def test_three_digest_requests_become_one_email_and_a_redelivery_changes_nothing(digest_worker: WorkerHarness) -> None:
    w = digest_worker
    requests = [digest_request(i) for i in range(3)]
    w.publish(*requests)

    assert w.run_batch()["batchItemFailures"] == []

    # Each is digested, naming the same digest email; nothing is mailed yet
    logged = [w.logged(request_id(r)) for r in requests]
    assert {item["status"] for item in logged if item} == {"digested"}
    (digest_id,) = {item["digest_id"] for item in logged if item}
    assert w.ses_calls == []

    # When the window ends, its flush sends one email listing the three
    drain(w)
    (call,) = w.ses_calls
    assert all(f"Comment {i}" in call.text for i in range(3)) and call.subject == "3 new updates for you"
    digest = w.logged(digest_id)
    assert digest is not None and digest["status"] == "sent" and digest["template_id"] == "activity_digest"

    # A redelivered request is a duplicate: no new window, no second email
    w.publish(requests[0])
    drain(w)
    assert len(w.ses_calls) == 1
    assert w.logged(request_id(requests[0]))["digest_id"] == digest_id  # type: ignore[index]


def test_the_dynamodb_store_folds_once_closes_once_and_opens_the_next_window(stack: StackResources) -> None:
    store = DynamoDigestStore(boto3.client("dynamodb"), stack.idempotency_table)

    def fold(rid: str, at: float = 1000.0) -> Any:
        return store.fold(
            "k",
            DigestItem(request_id=rid, at=at, data={"title": rid}),
            window_seconds=60,
            max_items=2,
            email={"recipient_email": "jane@example.com", "metadata": {}},
            ttl_seconds=3600,
        )

    first = fold("r1")
    assert first.opened and first.window.number == 0 and not first.window.full
    second = fold("r2", 1001.0)
    assert not second.opened and second.window.full
    assert [i.request_id for i in second.window.items] == ["r1", "r2"]
    # A request seen before is found where it went, never added twice
    again = fold("r1")
    assert again.again and [i.request_id for i in again.window.items] == ["r1", "r2"]
    # The full window takes no more: the next request opens window 1
    third = fold("r3")
    assert third.opened and third.window.number == 1
    # Closing happens once; a second close returns the same closed window
    closed = store.close("k", 0)
    assert closed is not None and closed.state == DIGEST_SENDING
    assert store.close("k", 0) == closed
    assert store.close("k", 7) is None
    # A request redelivered after its window closed is still not listed again
    assert fold("r2").window.number == 0
