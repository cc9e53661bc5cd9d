"""A/B variants against moto: the worker's log and tags, the ledger's conditional writes, feedback's first events."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner, Result

from mailwright.adapters.dynamodb import DynamoFeedbackLog
from mailwright.adapters.variants import DynamoVariantLedger
from mailwright.constants import METRICS_NAMESPACE, VARIANT_METRICS, Outputs
from mailwright.ports import APPEND_OK, FeedbackRecord, first_of_status
from mailwright.variants import SwitchedOff, VariantCounts
from mailwright_tools import variant_report
from mailwright_tools.cli import app
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


# -- templates report --------------------------------------------------------------------------------


def test_the_report_counts_each_variant_from_the_message_log(
    worker: Make, stack: StackResources, tmp_path: Path
) -> None:
    # Given ten recipients mailed, a delivery of every request and a complaint about one "short" email
    publish_variant_template(stack, tmp_path)
    requests = [request(n) for n in range(10)]
    w = worker("standard")
    w.publish(*requests)
    w.run_batch()
    log = DynamoFeedbackLog(boto3.client("dynamodb"), stack.messages_table, ttl_days=1)
    variants = {request_id(r): w.logged(request_id(r))["variant"] for r in requests}  # type: ignore[index]
    complained = next(rid for rid, variant in variants.items() if variant == "short")
    for n, rid in enumerate(variants):
        log.append(rid, FeedbackRecord(key=f"{n}#Delivery", event_type="Delivery", status="delivered", rank=2,
                                       at=2_000_000_000.0 + n, ses_message_id=f"ses-{n}"))  # fmt: skip
    log.append(complained, FeedbackRecord(key="c#Complaint", event_type="Complaint", status="complained", rank=7,
                                          at=2_000_000_100.0, ses_message_id="ses-c"))  # fmt: skip

    # When the report reads the message log
    items = variant_report.scan_message_log(boto3.client("dynamodb"), stack.messages_table, "promo", since=0.0)
    tallies = variant_report.tally_message_log(items)

    # Then each variant has its own sends and deliveries, and the complaint is the short one's
    for name in ("control", "short"):
        sent = list(variants.values()).count(name)
        assert tallies[name].counts["sent"] == tallies[name].counts["delivered"] == sent
    assert tallies["short"].counts["complained"] == 1 and tallies["control"].counts["complained"] == 0
    # And a window starting after the sends counts nothing
    late = variant_report.scan_message_log(boto3.client("dynamodb"), stack.messages_table, "promo", since=4e9)
    assert late == []


def put_variant_metrics(cloudwatch: Any, template: str, variant: str, **counts: int) -> None:
    """What the workers' and the feedback function's EMF documents become: counts under service/template/variant."""
    dimensions = [
        {"Name": "service", "Value": "mailwright"},
        {"Name": "template", "Value": template},
        {"Name": "variant", "Value": variant},
    ]
    cloudwatch.put_metric_data(
        Namespace=METRICS_NAMESPACE,
        MetricData=[
            {"MetricName": VARIANT_METRICS[kind], "Dimensions": dimensions, "Value": value, "Unit": "Count"}
            for kind, value in counts.items()
        ],
    )


STACK = "Mailwright"


@pytest.fixture
def deployed(stack: StackResources) -> StackResources:
    """A CloudFormation stack naming the moto resources, so the CLI reads them as a deployed stack."""
    outputs = {
        Outputs.MESSAGES_TABLE: stack.messages_table,
        Outputs.IDEMPOTENCY_TABLE: stack.idempotency_table,
        Outputs.queue_url("standard"): stack.queues["standard"],
    }
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "stack-marker"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    return stack


def cli(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--state-dir", str(tmp_path), "--stack-name", STACK, "templates", *args])


def test_report_on_a_deployed_stack_reads_the_variant_metrics(deployed: StackResources, tmp_path: Path) -> None:
    # Given a week of counts: "short" opened far more often, and one more template's counts beside
    cloudwatch = boto3.client("cloudwatch")
    put_variant_metrics(cloudwatch, "promo", "control", sent=600, delivered=590, opened=120, complained=1)
    put_variant_metrics(cloudwatch, "promo", "short", sent=400, delivered=396, opened=130)
    put_variant_metrics(cloudwatch, "promo", "short", sent=200, delivered=198, opened=50)
    put_variant_metrics(cloudwatch, "welcome", "short", sent=9999)
    ledger = DynamoVariantLedger(boto3.client("dynamodb"), deployed.idempotency_table)
    ledger.add(
        "promo", {"control": VariantCounts(sent=600), "short": VariantCounts(sent=600)}, names=("control", "short")
    )

    result = cli(tmp_path, "report", "promo", "--since", "1d", "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["source"] == "CloudWatch metrics" and data["control"] == "control"
    control, short = data["variants"]
    assert (control["sent"], control["opened"], control["complained"]) == (600, 120, 1)
    assert (short["sent"], short["delivered"], short["opened"]) == (600, 594, 180)
    opened = short["comparisons"]["opened"]
    assert opened["test"] == "z-test" and opened["significant"] is True
    assert opened["difference"] == pytest.approx(0.1)
    assert short["comparisons"]["complained"]["test"] == "fisher"
    assert short["comparisons"]["complained"]["significant"] is False
    # And the human form says the same
    text = cli(tmp_path, "report", "promo")
    assert text.exit_code == 0, text.output
    assert "short opened: 30.00% vs 20.00% (+10.00 points)" in text.stdout and "z-test" in text.stdout


def test_a_variant_is_switched_off_and_on_by_hand(deployed: StackResources, tmp_path: Path) -> None:
    ledger = DynamoVariantLedger(boto3.client("dynamodb"), deployed.idempotency_table)
    ledger.add("promo", {"control": VariantCounts(sent=5), "short": VariantCounts(sent=5)}, names=("control", "short"))

    off = cli(tmp_path, "variant", "promo", "short", "off")
    last = cli(tmp_path, "variant", "promo", "control", "off")
    unknown = cli(tmp_path, "variant", "promo", "long", "off")
    report = json.loads(cli(tmp_path, "report", "promo", "--json").stdout)

    assert off.exit_code == 0, off.output
    assert last.exit_code == 1 and "last variant on" in last.stderr
    assert unknown.exit_code == 1 and "no variant 'long'" in unknown.stderr
    assert report["variants"][1]["off"].startswith("manual")
    assert ledger.read("promo").off.keys() == {"short"}

    on = cli(tmp_path, "variant", "promo", "short", "on")

    assert on.exit_code == 0 and ledger.read("promo").off == {}
    assert ledger.read("promo").count("short").sent == 0  # counts start again
