"""DynamoDB and SES requests per email: the real handler and adapters over moto, every API call counted.

A realistic mix per lane: password resets on the critical lane, receipts and
welcomes on the standard lane, a newsletter (marketing, rate-limited to 2 a
day per user) on the bulk lane, with some suppressed recipients, opted-out
users and users past their marketing limit. Each lane is drained as its
event source mapping would: batches of the lane's batch size, partial
batch responses honoured.
"""

from __future__ import annotations

import json
import random
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes import SQSEvent

from bench.common import config, request
from bench.moto_stack import ApiLedger, MotoStack, item_size, moto_stack
from mailwright.constants import LANES, Env, Keys
from mailwright.handlers import send_worker
from mailwright.settings import FeedbackSettings
from mailwright.wiring import build_feedback_service
from mailwright_tools.events import FakeLambdaContext, sqs_event
from mailwright_tools.local.observability import WorkerOutput

# Lambda's own START, END and REPORT lines per invocation, in bytes (typical length).
PLATFORM_LOG_BYTES_PER_INVOCATION = 330


def seed_consent(stack: MotoStack, *, suppressed: list[str], opted_out: list[str], unsubscribed: list[str]) -> None:
    """Suppressions and preferences, written directly (not counted: the feedback loop and users wrote them)."""
    hasher = stack.hasher()
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    for address in suppressed:
        dynamodb.put_item(
            TableName=stack.resources.suppression_table,
            Item={
                Keys.SUPPRESSION_PK: {"S": hasher.address_hash(address)},
                "reason": {"S": "BOUNCE"},
                "scope": {"S": "all"},
            },
        )
    for user in opted_out:
        dynamodb.put_item(
            TableName=stack.resources.preferences_table,
            Item={Keys.PREFERENCES_PK: {"S": user}, "opted_out": {"SS": ["marketing"]}},
        )
    for user in unsubscribed:
        dynamodb.put_item(
            TableName=stack.resources.preferences_table,
            Item={Keys.PREFERENCES_PK: {"S": user}, "unsubscribed_all": {"BOOL": True}, "locale": {"S": "fr"}},
        )


def workload(emails: int, *, seed: int = 11) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Bodies per lane, and the consent data that shapes their outcomes."""
    rng = random.Random(seed)
    critical, standard, bulk = round(emails * 0.1), round(emails * 0.4), 0
    bulk = emails - critical - standard
    bodies: dict[str, list[str]] = {lane: [] for lane in LANES}
    for i in range(critical):
        bodies["critical"].append(json.dumps(request("password_reset", i, user=f"u{i}", idempotency_key=f"c{i}")))
    for i in range(standard):
        template = "order_confirmation" if rng.random() < 0.7 else "welcome_email"
        bodies["standard"].append(json.dumps(request(template, i, user=f"u{i}", idempotency_key=f"s{i}")))
    # A newsletter to `bulk` sends, to fewer users: some get a third one in the window and are rate-limited.
    users = round(bulk * 0.9)
    for i in range(bulk):
        n = i if i < users else rng.randrange(users)
        bodies["bulk"].append(json.dumps(request("newsletter", n, user=f"u{n}", idempotency_key=f"b{i}")))
    consent = {
        "suppressed": [f"user{n}@example.com" for n in rng.sample(range(users), round(emails * 0.03))],
        "opted_out": [f"u{n}" for n in rng.sample(range(users), round(emails * 0.03))],
        "unsubscribed": [f"u{n}" for n in rng.sample(range(users), round(emails * 0.01))],
    }
    return bodies, consent


def drain_lane(
    stack: MotoStack, lane: str, bodies: list[str], ledger: ApiLedger, output: WorkerOutput
) -> dict[str, Any]:
    """Publish `bodies` (a hundred at a time: moto's SQS slows down with deep queues) and run the lane's
    worker on them as the event source mapping would; per-batch call counts.
    """
    # Pacing is measured elsewhere; here it would only make the run slower.
    service = stack.container(lane, stack.session(observe=[ledger.record]), send_rate=1000.0)
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = stack.resources.queues[lane]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    invocations, per_batch_max = 0, Counter[str]()
    pending = list(bodies)
    while True:
        if not pending and not messages_left(sqs, url):
            break
        chunk, pending = pending[:100], pending[100:]
        for start in range(0, len(chunk), 10):
            sqs.send_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(chunk[start : start + 10])],
            )
        invocations += run_until_empty(sqs, url, arn, lane, service, ledger, output, per_batch_max)
    executor = getattr(service, "_executor", None)
    if executor is not None:
        executor.shutdown()
    return {"invocations": invocations, "per_batch_max": dict(per_batch_max)}


def messages_left(sqs: Any, url: str) -> bool:
    """Whether the queue holds any message, visible or not."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return any(int(attributes.get(name, "0")) for name in names)


def run_until_empty(
    sqs: Any,
    url: str,
    arn: str,
    lane: str,
    service: Any,
    ledger: ApiLedger,
    output: WorkerOutput,
    per_batch_max: Counter[str],
) -> int:
    """Batches until nothing is visible; returns the number of invocations."""
    lane_cfg = config().lanes[lane]
    invocations = 0
    while True:
        messages: list[dict[str, Any]] = []
        while len(messages) < lane_cfg.batch_size:
            got = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=min(10, lane_cfg.batch_size - len(messages)), AttributeNames=["All"]
            ).get("Messages", [])
            if not got:
                break
            messages.extend(got)
        if not messages:
            return invocations
        before = Counter(ledger.calls)
        context = FakeLambdaContext(function_name=f"mailwright-{lane}", timeout_seconds=lane_cfg.timeout_seconds)
        response = send_worker.handle_batch(service, SQSEvent(sqs_event(messages, queue_arn=arn)), context)
        output.metrics.flush()  # what @metrics.log_metrics does at the end of an invocation
        invocations += 1
        for key, count in (Counter(ledger.calls) - before).items():
            per_batch_max[key] = max(per_batch_max[key], count)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start:][:10])],
            )
        if failed:
            raise RuntimeError(f"{lane}: {len(failed)} records failed in a fault-free run")


# SES events per sent email, by what publishes them (infra.config's event types): what suppresses
# (always), deliveries (`event_tracking.delivery`, on by default), opens and clicks (opt-in), at rates
# typical of a mix of transactional and marketing mail. SES's Send event is not published.
FEEDBACK_GROUPS: dict[str, tuple[tuple[str, float], ...]] = {
    "suppression": (("Bounce", 0.03), ("Complaint", 0.002)),
    "delivery": (("Delivery", 0.97), ("DeliveryDelay", 0.01)),
    "opens_clicks": (("Open", 0.35), ("Click", 0.1)),
}
FEEDBACK_MIX: tuple[tuple[str, float], ...] = tuple(pair for group in FEEDBACK_GROUPS.values() for pair in group)


def feedback_events(
    sent: list[dict[str, Any]], *, mix: tuple[tuple[str, float], ...] = FEEDBACK_MIX, seed: int = 3
) -> list[dict[str, Any]]:
    """Configuration-set events (tagged as the worker tags its sends) for the sent requests, per `mix`."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for n, item in enumerate(sent):
        mail = {
            "timestamp": "2026-11-25T10:00:00.000Z",
            "messageId": item[Keys.SES_MESSAGE_ID]["S"],
            "destination": [f"user{n}@example.com"],
            "tags": {"request_id": [item[Keys.MESSAGES_PK]["S"]]},
        }
        for event_type, rate in mix:
            count = int(rate) + (rng.random() < rate - int(rate))
            for k in range(count):
                at = f"2026-11-25T10:{k + 1:02d}:00.000Z"
                detail: dict[str, Any] = {"timestamp": at}
                if event_type == "Delivery":
                    detail["recipients"] = mail["destination"]
                    detail["smtpResponse"] = "250 2.0.0 OK"
                elif event_type == "Bounce":
                    detail.update(
                        bounceType="Permanent",
                        bounceSubType="General",
                        bouncedRecipients=[{"emailAddress": mail["destination"][0]}],
                        feedbackId=f"fb-{n}",
                    )
                elif event_type == "Complaint":
                    detail.update(complainedRecipients=[{"emailAddress": mail["destination"][0]}], feedbackId=f"c-{n}")
                elif event_type == "Click":
                    detail["link"] = "https://example.com/a"
                elif event_type == "DeliveryDelay":
                    detail.update(delayType="MailboxFull", delayedRecipients=[{"emailAddress": mail["destination"][0]}])
                key = event_type[0].lower() + event_type[1:]
                events.append({"eventType": event_type, "mail": mail, key: detail})
    return events


def measure_feedback(stack: MotoStack) -> dict[str, Any]:
    """The feedback function's requests and units per SES event group, applied in turn to the sent requests."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    messages = stack.resources.messages_table
    sent = [
        item
        for item in dynamodb.scan(TableName=messages)["Items"]
        if item.get("status", {}).get("S") == "sent" and Keys.SES_MESSAGE_ID in item
    ]
    settings = FeedbackSettings.from_env(
        {
            Env.SUPPRESSION_TABLE: stack.resources.suppression_table,
            Env.MESSAGES_TABLE: messages,
            Env.ADDRESS_KEY_SECRET_ARN: stack.resources.address_key_secret_arn,
        }
    )

    def sent_item_bytes() -> int:
        items = dynamodb.scan(TableName=messages)["Items"]
        sizes = [item_size(i) for i in items if i.get("status", {}).get("S") == "sent"]
        return round(sum(sizes) / max(1, len(sizes)))

    groups: dict[str, Any] = {}
    before = sent_item_bytes()
    for n, (group, mix) in enumerate(FEEDBACK_GROUPS.items()):
        events = feedback_events(sent, mix=mix, seed=3 + n)
        ledger = ApiLedger()
        service = build_feedback_service(settings, session=stack.session(observe=[ledger.record]))
        report = service.process_events(events)
        if report.failed:
            raise RuntimeError(f"feedback: {len(report.failed)} {group} events failed in a fault-free run")
        calls = {k: v for k, v in ledger.calls.items() if k.startswith("dynamodb.")}
        after = sent_item_bytes()
        groups[group] = {
            "events_per_sent_email": round(len(events) / max(1, len(sent)), 4),
            "by_type": dict(Counter(e["eventType"] for e in events)),
            "requests_per_event": round(sum(calls.values()) / max(1, len(events)), 3),
            "write_units_per_sent_email": round(sum(ledger.write_units.values()) / max(1, len(sent)), 4),
            "read_units_per_sent_email": round(sum(ledger.read_units.values()) / max(1, len(sent)), 4),
            # What these events add to a sent request's message log item (their history entries).
            "item_bytes_added_per_sent_email": after - before,
            "by_call": {k.removeprefix("dynamodb."): v for k, v in sorted(calls.items(), key=lambda kv: -kv[1])},
        }
        before = after
    return {"sent": len(sent), "groups": groups, "sent_item_bytes_after_feedback_avg": before}


def measure(emails: int = 1200, progress: Any = print) -> dict[str, Any]:
    """Requests and capacity units per email for the mix, and the log bytes the workers write."""
    cfg = config()
    bodies, consent = workload(emails)
    with moto_stack(cfg) as stack, tempfile.TemporaryDirectory() as logs:
        resources = stack.resources
        roles = {
            resources.suppression_table: "suppression",
            resources.preferences_table: "preferences",
            resources.idempotency_table: "idempotency",
            resources.messages_table: "messages",
        }
        ledger = ApiLedger(gsi_attribute={resources.messages_table: Keys.SES_MESSAGE_ID}, roles=roles)
        seed_consent(stack, **consent)
        output = WorkerOutput(Path(logs), handler_modules=[send_worker])
        try:
            lanes = {lane: drain_lane(stack, lane, bodies[lane], ledger, output) for lane in LANES}
        finally:
            output.restore()
        log_bytes = output.log_path.stat().st_size + output.metrics_path.stat().st_size
        items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=stack.resources.messages_table)
        statuses = Counter(item["status"]["S"] for item in items["Items"])
        feedback = measure_feedback(stack)
    total = sum(len(b) for b in bodies.values())
    invocations = sum(lane["invocations"] for lane in lanes.values())
    ddb = {k: v for k, v in ledger.calls.items() if k.startswith("dynamodb.")}
    reads = sum(v for k, v in ddb.items() if k.split(":")[0] in ("dynamodb.BatchGetItem", "dynamodb.GetItem"))
    writes = sum(ddb.values()) - reads
    tables = {
        "suppression": resources.suppression_table,
        "preferences": resources.preferences_table,
        "idempotency": resources.idempotency_table,
        "messages": resources.messages_table,
    }
    batch_gets_max = {
        name: max(lane["per_batch_max"].get(f"dynamodb.BatchGetItem:{table}", 0) for lane in lanes.values())
        for name, table in tables.items()
    }
    sent = statuses.get("sent", 0)
    result = {
        "emails": total,
        "outcomes": dict(statuses),
        "invocations": invocations,
        "requests_per_email": round((reads + writes) / total, 3),
        "reads_per_email": round(reads / total, 3),
        "writes_per_email": round(writes / total, 3),
        "by_call_per_email": {
            k.removeprefix("dynamodb."): round(v / total, 3) for k, v in sorted(ddb.items(), key=lambda kv: -kv[1])
        },
        "batch_get_per_table_per_batch_max": batch_gets_max,
        "read_units_per_email": round(sum(ledger.read_units.values()) / total, 3),
        "write_units_per_email": round(sum(ledger.write_units.values()) / total, 3),
        "gsi_write_units_per_email": round(sum(ledger.gsi_write_units.values()) / total, 3),
        # What the units are for: the claim, the message log (and its SES message id index), the consent
        # lookups, the rate limits, pacing.
        "write_units_per_email_by_purpose": {
            k: round(v / total, 4) for k, v in sorted(ledger.write_units_by_purpose.items())
        },
        "read_units_per_email_by_purpose": {
            k: round(v / total, 4) for k, v in sorted(ledger.read_units_by_purpose.items())
        },
        "message_log_item_bytes_avg": round(
            sum(ledger.item_bytes.get(resources.messages_table, [0]))
            / max(1, len(ledger.item_bytes.get(resources.messages_table, [])))
        ),
        "item_bytes_avg": {
            name: round(sum(ledger.item_bytes.get(t, [0])) / max(1, len(ledger.item_bytes.get(t, []))))
            for name, t in tables.items()
        },
        "ses_calls_per_email": round(ledger.calls.get("sesv2.SendEmail", 0) / total, 3),
        "ses_calls_per_sent_email": round(ledger.calls.get("sesv2.SendEmail", 0) / max(1, sent), 3),
        "sqs_retry_calls_per_email": round(ledger.calls.get("sqs.ChangeMessageVisibilityBatch", 0) / total, 3),
        "log_bytes_per_email": round((log_bytes + PLATFORM_LOG_BYTES_PER_INVOCATION * invocations) / total, 1),
        "lanes": {lane: {"invocations": v["invocations"], "emails": len(bodies[lane])} for lane, v in lanes.items()},
        "feedback": feedback,
    }
    progress(
        f"  dynamodb: {result['requests_per_email']} requests/email "
        f"({result['reads_per_email']} reads, {result['writes_per_email']} writes), "
        f"SES {result['ses_calls_per_email']} calls/email; feedback write units/sent email: "
        + ", ".join(f"{name} {g['write_units_per_sent_email']}" for name, g in feedback["groups"].items())
    )
    return result


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
