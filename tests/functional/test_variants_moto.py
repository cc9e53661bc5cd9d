"""A/B variants against moto: the worker's log and tags, the ledger's conditional writes, feedback's first events."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3

from mailwright.adapters.dynamodb import DynamoFeedbackLog
from mailwright.adapters.variants import DynamoVariantLedger
from mailwright.ports import APPEND_OK, FeedbackRecord, first_of_status
from mailwright.variants import SwitchedOff, VariantCounts
from mailwright_tools.provision import StackResources, upload_templates
from tests.functional.test_send_worker import Make, request_id

SHIPPED = Path(__file__).resolve().parents[2] / "templates"


def publish_variant_template(stack: StackResources, tmp_path: Path) -> None:
    """Upload `promo`: two variants, `short` with a subject of its own."""
    shutil.copytree(SHIPPED / "_layouts", tmp_path / "_layouts")
    path = tmp_path / "promo"
    (path / "en").mkdir(parents=True)
    meta = {
        "category": "transactional",
        "required_variables": ["name"],
        "sample_data": {"name": "Jo"},
        "variants": [{"name": "control", "weight": 1}, {"name": "short", "weight": 1}],
    }
    (path / "template.json").write_text(json.dumps(meta), encoding="utf-8")
    (path / "en" / "subject.txt").write_text("Your news, {{ name }}", encoding="utf-8")
    (path / "en" / "subject.short.txt").write_text("News!", encoding="utf-8")
    (path / "en" / "body.html").write_text("<p>Hi {{ name }}</p>", encoding="utf-8")
    (path / "en" / "body.txt").write_text("Hi {{ name }}", encoding="utf-8")
    upload_templates(boto3.client("s3"), stack.templates_bucket, tmp_path)


def request(n: int) -> dict[str, Any]:
    return {"recipient_email": f"reader{n}@example.com", "template_id": "promo", "template_data": {"name": "Jo"}}


def test_the_worker_logs_tags_and_counts_each_variant(worker: Make, stack: StackResources, tmp_path: Path) -> None:
    # Given a template with two variants in the bucket
    publish_variant_template(stack, tmp_path)
    requests = [request(n) for n in range(10)]

    # When ten recipients are mailed
    w = worker("standard")
    w.publish(*requests)
    assert w.run_batch()["batchItemFailures"] == []

    # Then each email carries its variant as a tag, with that variant's subject
    assert len(w.ses_calls) == 10
    for call in w.ses_calls:
        assert call.subject == ("News!" if call.tags["variant"] == "short" else "Your news, Jo")
    # And the message log records the same variant for each request
    variants = {request_id(r): w.logged(request_id(r))["variant"] for r in requests}  # type: ignore[index]
    tagged = {call.tags["request_id"]: call.tags["variant"] for call in w.ses_calls}
    assert variants == tagged and set(variants.values()) == {"control", "short"}
    # And the ledger counted the sends per variant, with the template's variant names
    state = DynamoVariantLedger(boto3.client("dynamodb"), stack.idempotency_table).read("promo")
    assert state.names == ("control", "short")
    sent = {name: state.count(name).sent for name in state.names}
    assert sent == {name: list(variants.values()).count(name) for name in ("control", "short")}


def test_the_ledger_switches_off_conditionally(stack: StackResources) -> None:
    ledger = DynamoVariantLedger(boto3.client("dynamodb"), stack.idempotency_table)
    off = SwitchedOff(reason="complaint_rate", at=1_700_000_000.5, actor="feedback", note="3 complaints in 500 sent")

    after = ledger.add(
        "promo", {"a": VariantCounts(sent=5), "b": VariantCounts(sent=3, complaints=1)}, names=("a", "b")
    )
    again = ledger.add("promo", {"b": VariantCounts(complaints=2)})

    assert after.count("b") == VariantCounts(sent=3, complaints=1)
    assert again.count("b") == VariantCounts(sent=3, complaints=3) and again.names == ("a", "b")
    assert ledger.switch_off("promo", "b", off, others=["a"]) is True
    assert ledger.switch_off("promo", "b", off, others=["a"]) is False  # already off
    assert ledger.switch_off("promo", "a", off, others=["b"]) is False  # the last one on stays on
    state = ledger.read("promo")
    assert set(state.off) == {"b"} and state.off["b"] == off
    assert ledger.switch_on("promo", "b") is True
    assert ledger.switch_on("promo", "b") is False
    state = ledger.read("promo")
    assert state.off == {} and state.count("b") == VariantCounts() and state.count("a").sent == 5


def test_feedback_appends_say_which_is_the_first_of_its_status(
    worker: Make, stack: StackResources, tmp_path: Path
) -> None:
    publish_variant_template(stack, tmp_path)
    w = worker("standard")
    w.publish(request(1))
    w.run_batch()
    rid = request_id(request(1))
    log = DynamoFeedbackLog(boto3.client("dynamodb"), stack.messages_table, ttl_days=1)

    def record(n: int, status: str = "opened", event_type: str = "Open") -> FeedbackRecord:
        at = 1_700_000_000.0 + n
        return FeedbackRecord(key=f"{at}#{event_type}#{n}", event_type=event_type, status=status, rank=3, at=at,
                              ses_message_id="ses-1")  # fmt: skip

    first, second = log.append(rid, record(1)), log.append(rid, record(2))
    delivered = log.append(rid, record(3, "delivered", "Delivery"))

    assert first == second == delivered == APPEND_OK
    assert (first_of_status(first), first_of_status(second), first_of_status(delivered)) == (True, False, True)
    assert not first_of_status(log.append(rid, record(1)))  # a redelivery is a duplicate, not a first
