"""Re-evaluating rejected requests and reading older address-key versions, through the DynamoDB adapters (moto)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import boto3

from mailwright.adapters.address_keys import DynamoAddressKeyMarker, SecretAddressKeys
from mailwright.adapters.dynamodb import (
    DynamoClaimStore,
    DynamoMessageLog,
    DynamoRateLimiter,
    DynamoSuppressionLedger,
)
from mailwright.address_keys import AddressHasher, AddressKeyring, legacy_address_hash
from mailwright.ports import Outcome
from mailwright.request import parse_request
from mailwright.settings import RateLimit
from mailwright.suppression import SuppressionService
from mailwright_tools.fakes import StaticAddressKeys
from mailwright_tools.provision import StackResources, upload_templates
from tests.functional.harness import WorkerHarness

Make = Callable[[str], WorkerHarness]
REPO = Path(__file__).resolve().parents[2]
ORDER = {
    "recipient_email": "jane.smith@example.com",
    "template_id": "order_confirmation_v2",
    "template_data": {"order_id": "XYZ789", "total_amount": "$49.99"},
}


def test_a_rejected_request_is_sent_once_its_template_is_uploaded(
    worker: Make, stack: StackResources, tmp_path: Path
) -> None:
    w = worker("standard")
    rid = parse_request(json.dumps(ORDER)).request_id

    # Given a request for a template nobody uploaded yet: rejected
    w.publish(ORDER)
    w.run_batch()
    first = w.logged(rid)
    assert first is not None and (first["status"], first["reason_code"]) == ("rejected", "unknown_template")

    # When the template is uploaded and the producer publishes the same request again
    (tmp_path / "order_confirmation_v2").mkdir()
    for item in (REPO / "templates" / "order_confirmation").rglob("*"):
        target = tmp_path / "order_confirmation_v2" / item.relative_to(REPO / "templates" / "order_confirmation")
        if item.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(item.read_bytes())
    shutil.copytree(REPO / "templates" / "_layouts", tmp_path / "_layouts")  # the layout the template extends
    shutil.copytree(REPO / "templates" / "_partials", tmp_path / "_partials")
    upload_templates(boto3.client("s3"), stack.templates_bucket, tmp_path)
    w.publish(ORDER)
    w.run_batch()

    # Then it is sent: its state is the second evaluation's, the history keeps the first
    logged = w.logged(rid)
    assert logged is not None
    assert (logged["status"], logged["evaluation"], logged.get("reason_code")) == ("sent", 2, None)
    assert [(h["status"], h["evaluation"]) for h in logged["history"]] == [("rejected", 1), ("sent", 2)]
    assert len(w.ses_calls) == 1

    # And a third publication is a duplicate
    w.publish(ORDER)
    w.run_batch()
    assert len(w.ses_calls) == 1


def test_reclaim_is_conditional_on_the_lease_it_read(stack: StackResources) -> None:
    claims = DynamoClaimStore(boto3.client("dynamodb"), stack.idempotency_table)
    assert claims.claim("r1", "h", lease_seconds=60, ttl_seconds=3600).won
    existing = claims.claim("r1", "h", lease_seconds=60, ttl_seconds=3600).existing
    assert existing is not None and existing.evaluation == 1

    assert claims.reclaim(existing, evaluation=2, lease_seconds=60, ttl_seconds=3600) is not None
    assert claims.reclaim(existing, evaluation=2, lease_seconds=60, ttl_seconds=3600) is None
    again = claims.claim("r1", "h", lease_seconds=60, ttl_seconds=3600).existing
    assert again is not None and again.evaluation == 2


def test_a_later_evaluation_replaces_the_state_and_an_older_one_changes_nothing(stack: StackResources) -> None:
    log = DynamoMessageLog(boto3.client("dynamodb"), stack.messages_table, ttl_days=1)
    rejected = Outcome(
        "r1", "rejected", "standard", reason_code="unknown_template", reason="no template", completed_at=1.0
    )
    sent = Outcome("r1", "sent", "standard", ses_message_id="ses-1", completed_at=2.0, evaluation=2)
    log.record([rejected])
    log.record([sent])
    log.record([Outcome("r1", "rejected", "standard", reason_code="x", completed_at=3.0, evaluation=2)])

    item = log.get("r1")
    assert item is not None
    assert (item["status"], item["evaluation"], item["ses_message_id"]) == ("sent", 2, "ses-1")
    assert "reason_code" not in item and "reason" not in item
    assert [(h["status"], h["evaluation"]) for h in item["history"]] == [("rejected", 1), ("sent", 2)]
    assert log.states(["r1", "r2"])["r1"].evaluation == 2 and "r2" not in log.states(["r1", "r2"])


# -- before the migration: items under older key versions ------------------------------


def test_keyring_and_marker_come_from_the_stack(stack: StackResources) -> None:
    secrets, dynamodb = boto3.client("secretsmanager"), boto3.client("dynamodb")
    marker = DynamoAddressKeyMarker(dynamodb, stack.suppression_table)
    keys = SecretAddressKeys(secrets, stack.address_key_secret_arn, marker, refresh_seconds=0)
    # The local stack is provisioned fresh: nothing older than version 1 is stored.
    assert keys.hasher().readable_from == 1 and keys.hasher().current == 1
    marker.set_readable_from(0, at=time.time(), actor="test")
    assert keys.hasher().readable_from == 0


def test_the_rate_limiter_counts_slots_taken_under_an_older_key(stack: StackResources) -> None:
    limiter = DynamoRateLimiter(boto3.client("dynamodb"), stack.idempotency_table)
    limit = RateLimit(limit=2, window_seconds=86400)
    now = 86400 * 20000 + 5
    legacy, current = "addr:" + "a" * 40, "addr:k1-" + "b" * 40
    assert limiter.acquire(legacy, "marketing", limit, now=now, request_id="old-1")

    def acquire(request_id: str) -> bool:
        return limiter.acquire(current, "marketing", limit, now=now, request_id=request_id, older_user_ids=[legacy])

    assert acquire("old-1")  # counted before the key changed: its slot, not a new one
    assert acquire("new-1")
    assert not acquire("new-2")  # old-1 and new-1 fill the window


def test_a_change_to_a_legacy_suppression_is_written_under_the_current_key(stack: StackResources) -> None:
    dynamodb = boto3.client("dynamodb")
    ledger = DynamoSuppressionLedger(dynamodb, stack.suppression_table)
    legacy = legacy_address_hash("jane@example.com")
    dynamodb.put_item(
        TableName=stack.suppression_table,
        Item={"address_hash": {"S": legacy}, "reason": {"S": "BOUNCE"}, "scope": {"S": "all"}},
    )
    hasher = AddressHasher(AddressKeyring({1: b"functional-test-key-0123456789"}, current=1), readable_from=0)
    service = SuppressionService(ledger, address_keys=StaticAddressKeys(hasher))

    assert service.check("jane@example.com") is not None
    entry = service.add("jane@example.com", reason="COMPLAINT", actor="ops")

    assert entry.address_hash == hasher.address_hash("jane@example.com") and entry.reason == "BOUNCE"
    assert ledger.get(entry.address_hash) is not None
    # Nothing is deleted here (the feedback function may not delete): the migration folds the old item in.
    assert ledger.get(legacy) is not None
