"""EMF metrics as the handlers print them: names, dimensions (lane, category) and values, parsed back."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import SQSEvent

from mailwright.handlers import feedback as feedback_handler
from mailwright.handlers import send_worker
from mailwright.settings import FeedbackSettings
from mailwright.wiring import build_feedback_service
from mailwright_tools.events import FakeLambdaContext, sqs_event
from mailwright_tools.provision import StackResources
from tests.events import aimed, load_event
from tests.functional.harness import WorkerHarness
from tests.functional.test_send_worker import SEED_ORDER, SEED_WELCOME, newsletter, suppress, throttle_recipient

Make = Callable[[str], WorkerHarness]
Documents = dict[tuple[tuple[str, str], ...], dict[str, list[float]]]


def emf_documents(output: str) -> Documents:
    """Every EMF document printed, keyed by its dimension values (service left out), values by metric name.

    Also checks what makes a document valid EMF: one directive in the Mailwright
    namespace, one dimension set whose every key has a value, and a value for
    every metric it declares.
    """
    documents: Documents = defaultdict(dict)
    for line in output.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "Mailwright"
        (dimensions,) = directive["Dimensions"]
        assert "service" in dimensions and document["service"] == "mailwright"
        key = tuple(sorted((name, document[name]) for name in dimensions if name != "service"))
        for metric in directive["Metrics"]:
            values = document[metric["Name"]]
            assert metric["Name"] not in documents[key], f"{metric['Name']} twice for {key}"
            documents[key][metric["Name"]] = values if isinstance(values, list) else [values]
    return dict(documents)


def lane_and_category(lane: str, category: str) -> tuple[tuple[str, str], ...]:
    return (("category", category), ("lane", lane))


def test_outcomes_are_counted_per_lane_and_category(
    worker: Make, stack: StackResources, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a batch with every kind of outcome
    suppress(stack, "bounced@example.com", "BOUNCE")
    w = worker("standard")
    w.publish(
        SEED_ORDER,  # transactional, sent
        {**SEED_WELCOME, "recipient_email": "bounced@example.com"},  # transactional, suppressed
        newsletter("jane@example.com"),  # marketing, sent
        {"recipient_email": "ann@example.com", "template_id": "newsletter", "template_data": {}},  # render failure
        "this is not JSON",  # rejected before any template is known
    )
    capsys.readouterr()

    # When the worker processes it
    w.run_batch()

    # Then each (lane, category) is its own EMF document, with one value per count
    documents = emf_documents(capsys.readouterr().out)
    transactional = documents.pop(lane_and_category("standard", "transactional"))
    marketing = documents.pop(lane_and_category("standard", "marketing"))
    unknown = documents.pop(lane_and_category("standard", "unknown"))
    # The container's first batch read SES's quota for every worker: the share used, without dimensions
    assert documents.pop(()) == {"QuotaUsedPercent": [0.0]}
    assert documents == {}
    assert {name: sum(v) for name, v in transactional.items() if name != "SendLatency"} == {"Sent": 1, "Suppressed": 1}
    assert {name: sum(v) for name, v in marketing.items() if name != "SendLatency"} == {
        "Sent": 1,
        "Rejected": 1,
        "RenderFailed": 1,
    }
    assert unknown == {"Rejected": [1.0]}
    # Publish-to-send latency, one value per sent email, in milliseconds
    assert len(transactional["SendLatency"]) == len(marketing["SendLatency"]) == 1
    assert 0 <= transactional["SendLatency"][0] < 60_000


def test_ses_throttling_is_counted_per_category_and_deferrals_per_lane(
    worker: Make, capsys: pytest.CaptureFixture[str]
) -> None:
    w = worker("bulk")
    w.faults.append(throttle_recipient("busy@example.com"))
    w.publish(newsletter("busy@example.com"), newsletter("jane@example.com"))
    capsys.readouterr()

    w.run_batch()

    documents = emf_documents(capsys.readouterr().out)
    assert documents[lane_and_category("bulk", "marketing")]["Throttled"] == [1.0]
    assert documents[lane_and_category("bulk", "marketing")]["Sent"] == [1.0]
    assert documents[(("lane", "bulk"),)] == {"Deferred": [1.0]}


def test_bounces_and_complaints_are_counted_per_lane_and_category_of_the_message(
    stack: StackResources, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given SES events about a bulk newsletter (tagged by the worker) and about a message without tags
    service = build_feedback_service(
        FeedbackSettings(
            suppression_table=stack.suppression_table,
            messages_table=stack.messages_table,
            address_key_secret_arn=stack.address_key_secret_arn,
        )
    )
    monkeypatch.setattr(feedback_handler, "service", lambda: service)

    def tagged(name: str, recipients: list[str], **tags: str) -> dict[str, Any]:
        event = aimed(load_event(name), recipients=recipients, ses_message_id=f"ses-{name}-{len(recipients)}")
        event["mail"]["tags"].update({key: [value] for key, value in tags.items()})
        return event

    events = [
        tagged("event-bounce-permanent", ["a@example.com", "b@example.com"], lane="bulk", category="marketing"),
        tagged("event-complaint", ["c@example.com"], lane="bulk", category="marketing"),
        tagged("event-bounce-transient", ["d@example.com"], lane="bulk", category="marketing"),
        tagged("event-bounce-permanent", ["e@example.com"]),
    ]
    # Delivered for the last time, so events whose request was never logged are recorded, not deferred.
    messages = [
        {
            "MessageId": f"m{i}",
            "ReceiptHandle": f"r{i}",
            "Body": json.dumps(e),
            "Attributes": {"ApproximateReceiveCount": "3"},
        }
        for i, e in enumerate(events)
    ]
    capsys.readouterr()

    # When the feedback function processes them
    response = feedback_handler.handler(
        sqs_event(messages, queue_arn="arn:aws:sqs:us-east-1:123456789012:feedback"), FakeLambdaContext()
    )

    # Then hard-bounced and complained recipients are counted by the message's lane and category
    assert response["batchItemFailures"] == []
    documents = emf_documents(capsys.readouterr().out)
    assert documents.pop(lane_and_category("bulk", "marketing")) == {"Bounces": [2.0], "Complaints": [1.0]}
    assert documents.pop(lane_and_category("unknown", "unknown")) == {"Bounces": [1.0]}
    # ... and the per-type counts stay as they were, without dimensions
    totals = documents.pop(())
    assert documents == {}
    assert totals["FeedbackBounce"] == [3.0] and totals["FeedbackComplaint"] == [1.0]
    assert totals["FeedbackSoftBounces"] == [1.0]


def test_the_local_stacks_metrics_stand_in_gets_one_line_per_document(
    worker: Make, stack: StackResources, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # The local stack swaps a handler module's `metrics` for its per-container writer (a `flush()`, not
    # Powertools' flush_metrics()); grouped metrics must still come out as separate, valid documents.
    from mailwright_tools.local.observability import ContainerMetrics

    sink_path = tmp_path / "metrics.log"
    with sink_path.open("w", encoding="utf-8") as sink:
        stand_in = ContainerMetrics(namespace="Mailwright", service="mailwright", sink=sink)
        monkeypatch.setattr(send_worker, "metrics", stand_in)
        w = worker("standard")
        w.publish(SEED_ORDER, newsletter("jane@example.com"))
        messages = w.sqs.receive_message(QueueUrl=w.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])
        event = SQSEvent(sqs_event(messages["Messages"], queue_arn="arn:aws:sqs:us-east-1:123456789012:standard"))
        send_worker.handle_batch(w.service, event, FakeLambdaContext())
        stand_in.flush()  # what the local stack does at the end of an invocation

    documents = emf_documents(sink_path.read_text(encoding="utf-8"))
    assert set(documents) == {
        lane_and_category("standard", "transactional"),
        lane_and_category("standard", "marketing"),
        (),  # QuotaUsedPercent: the container's first batch read SES's quota
    }
