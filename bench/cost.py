"""Cost per million emails, from the measured figures and AWS list prices (us-east-1).

Every unit price is here, once, and printed in one table in
docs/benchmarks.md. They are AWS's public on-demand list prices for
us-east-1 as compiled on PRICES_AS_OF (DynamoDB on-demand since its
2024-11-01 reduction, Lambda arm64 first tier, SQS standard beyond the free
tier); the benchmark does not fetch them, so check them before relying on
the result. Free tiers are left out.
"""

from __future__ import annotations

import math
from typing import Any

PRICES_AS_OF = "2026-11-25"
PRICES: dict[str, tuple[float, str]] = {
    "ses_per_email": (0.10 / 1000, "SES outbound email, per email (no attachments)"),
    "lambda_gb_second_arm64": (0.0000133334, "Lambda duration, arm64, per GB-second (first 7.5 billion GB-s/month)"),
    "lambda_request": (0.20 / 1e6, "Lambda invocations, per request"),
    "sqs_request": (0.40 / 1e6, "SQS standard queue, per request (each 64 KB chunk is one request)"),
    "dynamodb_wru": (0.625 / 1e6, "DynamoDB on-demand, per write request unit (1 KB)"),
    "dynamodb_rru": (0.125 / 1e6, "DynamoDB on-demand, per read request unit (4 KB strong, 2 x 4 KB eventual)"),
    "dynamodb_storage_gb_month": (0.25, "DynamoDB Standard table class storage, per GB-month"),
    "dynamodb_pitr_gb_month": (0.20, "DynamoDB point-in-time recovery (continuous backups), per GB-month"),
    "sns_publish": (0.50 / 1e6, "SNS standard topic, per publish (64 KB chunk); delivery to SQS is free"),
    "logs_ingest_gb": (0.50, "CloudWatch Logs ingestion (standard class), per GB"),
    "eventbridge_event": (1.00 / 1e6, "EventBridge PutEvents to a custom bus, per event entry (64 KB chunk)"),
}

# Assumptions the measurements cannot give; each is printed in the doc. The SES events per email and
# the DynamoDB writes they cost are measured (`bench.ddb`, its FEEDBACK_MIX of event types).
FEEDBACK_BATCH = 10  # the feedback function's event source batch size (infra.config.FEEDBACK_BATCH_SIZE)
FEEDBACK_MEMORY_GB = 0.25
FEEDBACK_SECONDS_PER_EVENT = 0.015  # estimate: at most one UpdateItem per event; not timed here
PRODUCER_SQS_REQUESTS_PER_EMAIL = 1.0  # the seed article's producer: one SendMessage per email
MESSAGE_LOG_RETENTION_MONTHS = 3.0  # message_log_ttl_days 90: items stay ~3 months
DYNAMODB_ITEM_OVERHEAD_BYTES = 100  # per item (and per index entry), as DynamoDB bills storage
INDEX_ENTRY_BYTES = 90  # a keys-only index entry: request id, sort key and SES message id
# The status API's recipient index (keys only): every logged request writes one entry of ~150 bytes
# (request id, sort key, keyed address hash, completion time) when the worker records it, 1 WRU;
# the feedback function's history appends change neither of its keys and write nothing to it.
RECIPIENT_INDEX_WRITES_PER_EMAIL = 1.0
RECIPIENT_INDEX_ENTRY_BYTES = 150

# Outcome events (mailwright.outcome_events). Per sent email, the SES-driven types follow the measured feedback
# mix (`bench.ddb`); the other outcomes are per request and not measured here: these shares are assumptions.
OUTCOME_EVENT_ASSUMED_SHARES: dict[str, float] = {
    "EmailDeliveryDelayed": 0.01,
    "EmailRejected": 0.005,
    "EmailSuppressed": 0.01,
    "EmailOptedOut": 0.005,
    "EmailRateLimited": 0.002,
    "EmailFailed": 0.0001,
}
# The SES event each feedback-driven detail-type announces (one event per logged SES event).
OUTCOME_EVENT_SES_TYPES: dict[str, str] = {
    "EmailDelivered": "Delivery",
    "EmailBounced": "Bounce",
    "EmailComplained": "Complaint",
    "EmailOpened": "Open",
    "EmailClicked": "Click",
}
# The events publisher reads the message log's stream (reads by Lambda cost nothing) in batches of up to 100;
# estimate: 2 ms of a 256 MB function per change read, most of it PutEvents calls of ten entries.
PUBLISHER_BATCH = 100
PUBLISHER_MEMORY_GB = 0.25
PUBLISHER_SECONDS_PER_CHANGE = 0.002


def price(name: str) -> float:
    """The unit price of `name`."""
    return PRICES[name][0]


def per_million(
    *,
    lambda_seconds_per_email: float,
    memory_gb: float,
    invocations_per_email: float,
    sqs_receives_per_email: float,
    ddb: dict[str, Any],
) -> dict[str, Any]:
    """Dollars per million emails by service, and the overhead beside SES in percent of SES's cost."""
    million = 1e6
    rows: dict[str, float] = {}
    rows["SES"] = price("ses_per_email") * ddb["ses_calls_per_sent_email"] * million
    worker = lambda_seconds_per_email * memory_gb * price("lambda_gb_second_arm64") * million
    worker += invocations_per_email * price("lambda_request") * million
    feedback = ddb["feedback"]
    events = feedback["events_per_sent_email"]
    feedback_lambda = events * FEEDBACK_SECONDS_PER_EVENT * FEEDBACK_MEMORY_GB * price("lambda_gb_second_arm64")
    feedback_lambda += events / FEEDBACK_BATCH * price("lambda_request")
    rows["Lambda (send worker)"] = worker
    rows["Lambda (feedback, estimated)"] = feedback_lambda * million
    sqs_requests = (
        PRODUCER_SQS_REQUESTS_PER_EMAIL
        + 2 * sqs_receives_per_email  # ReceiveMessage and DeleteMessageBatch, both ten per call
        + ddb.get("sqs_retry_calls_per_email", 0.0)
        + events * (1 + 2 / FEEDBACK_BATCH)  # SNS delivers each event with SendMessage; the feedback ESM
    )
    rows["SQS"] = sqs_requests * price("sqs_request") * million
    wru = ddb["write_units_per_email"] + ddb["gsi_write_units_per_email"] + feedback["write_units_per_sent_email"]
    rru = ddb["read_units_per_email"] + feedback["read_units_per_sent_email"]
    rows["DynamoDB requests"] = (wru * price("dynamodb_wru") + rru * price("dynamodb_rru")) * million
    # The message log keeps every request ~3 months (with its SES events), plus a keys-only index entry.
    item = feedback["sent_item_bytes_after_feedback_avg"] + DYNAMODB_ITEM_OVERHEAD_BYTES
    index = INDEX_ENTRY_BYTES + DYNAMODB_ITEM_OVERHEAD_BYTES
    table_gb_months = item * million / 1e9 * MESSAGE_LOG_RETENTION_MONTHS
    index_gb_months = index * million / 1e9 * MESSAGE_LOG_RETENTION_MONTHS
    rows["DynamoDB storage (message log, 90 days)"] = (table_gb_months + index_gb_months) * price(
        "dynamodb_storage_gb_month"
    )
    # infra/storage.py turns point-in-time recovery on for the message log (the table, not its index).
    rows["DynamoDB PITR (message log)"] = table_gb_months * price("dynamodb_pitr_gb_month")
    recipient_index_writes = RECIPIENT_INDEX_WRITES_PER_EMAIL * price("dynamodb_wru") * million
    recipient_index_entry = RECIPIENT_INDEX_ENTRY_BYTES + DYNAMODB_ITEM_OVERHEAD_BYTES
    recipient_index_gb_months = recipient_index_entry * million / 1e9 * MESSAGE_LOG_RETENTION_MONTHS
    recipient_index_storage = recipient_index_gb_months * price("dynamodb_storage_gb_month")
    rows["DynamoDB recipient index (status API: writes, 90 days)"] = recipient_index_writes + recipient_index_storage
    rows["SNS"] = events * price("sns_publish") * million
    rows["CloudWatch Logs"] = ddb["log_bytes_per_email"] * million / 1e9 * price("logs_ingest_gb")
    # Outcome events as deployed by default (outcome_events: what went wrong), and their publisher.
    events_cost = outcome_event_costs(ddb)
    rows["EventBridge (outcome events, default set)"] = events_cost["default_set_usd_per_million_emails"]
    rows["Lambda (events publisher, estimated)"] = events_cost["publisher_usd_per_million_emails"]
    overhead = sum(v for k, v in rows.items() if k != "SES")
    return {
        "rows": {k: round(v, 3) for k, v in rows.items()},
        "total": round(sum(rows.values()), 2),
        "overhead": round(overhead, 3),
        "overhead_pct": round(100 * overhead / rows["SES"], 2),
        "inputs": {
            "lambda_seconds_per_email": round(lambda_seconds_per_email, 4),
            "memory_gb": memory_gb,
            "invocations_per_email": round(invocations_per_email, 4),
            "sqs_requests_per_email": round(sqs_requests, 3),
            "dynamodb_wru_per_email": round(wru, 3),
            "dynamodb_rru_per_email": round(rru, 3),
            "feedback_events_per_email": events,
            "feedback_wru_per_email": feedback["write_units_per_sent_email"],
            "feedback_rru_per_email": feedback["read_units_per_sent_email"],
        },
    }


def outcome_event_costs(ddb: dict[str, Any]) -> dict[str, Any]:
    """Dollars per million sent emails of publishing each detail-type, of the default set, of all, and the publisher.

    PutEvents is $1 per million entries: a type published once per email (EmailSent, EmailDelivered) costs
    $1 per million emails, 1% of SES's $100; the rare ones cost cents.
    """
    from mailwright.constants import DEFAULT_OUTCOME_EVENTS, OUTCOME_DETAIL_TYPES

    feedback = ddb["feedback"]
    sent = feedback["events"] / max(feedback["events_per_sent_email"], 1e-9)
    by_ses_type = {name: count / max(sent, 1e-9) for name, count in feedback["by_type"].items()}
    shares: dict[str, float] = {"EmailSent": 1.0}
    for detail_type, ses_type in OUTCOME_EVENT_SES_TYPES.items():
        shares[detail_type] = by_ses_type.get(ses_type, 0.0)
    shares.update(OUTCOME_EVENT_ASSUMED_SHARES)
    per_type = {
        detail_type: {
            "entries_per_email": round(shares[detail_type], 4),
            "usd_per_million_emails": round(shares[detail_type] * price("eventbridge_event") * 1e6, 3),
            "measured": detail_type == "EmailSent" or detail_type in OUTCOME_EVENT_SES_TYPES,
        }
        for detail_type in OUTCOME_DETAIL_TYPES
        if detail_type in shares
    }
    # The publisher reads every write to a request item: its outcome, then each SES event appended to it.
    logged_events = sum(count for name, count in by_ses_type.items() if name != "Send")
    changes = 1.0 + logged_events
    publisher = changes / PUBLISHER_BATCH * price("lambda_request")
    publisher += changes * PUBLISHER_SECONDS_PER_CHANGE * PUBLISHER_MEMORY_GB * price("lambda_gb_second_arm64")

    def total(types: tuple[str, ...]) -> float:
        return round(sum(per_type[t]["usd_per_million_emails"] for t in types if t in per_type), 3)

    return {
        "per_type": per_type,
        "default_set": list(DEFAULT_OUTCOME_EVENTS),
        "default_set_usd_per_million_emails": total(DEFAULT_OUTCOME_EVENTS),
        "all_usd_per_million_emails": total(OUTCOME_DETAIL_TYPES),
        "publisher_usd_per_million_emails": round(publisher * 1e6, 3),
        "message_log_changes_per_email": round(changes, 3),
        "assumed_shares": dict(OUTCOME_EVENT_ASSUMED_SHARES),
    }


def estimate(
    *, lanes: dict[str, Any], throughput: dict[str, Any], cpu: dict[str, Any], ddb: dict[str, Any], memory_mb: int
) -> dict[str, Any]:
    """Two regimes: workers paced at their SES share (cdk.json, the lanes scenario) and workers not paced."""
    from bench.lanes import FULL_VCPU_MB

    memory_gb = memory_mb / 1024
    # Paced: the lanes scenario's billed seconds and invocations, all lanes together.
    invocations = sum(lanes["invocations"].values())
    emails = lanes["bulk_sent"] + lanes["critical_sent"]
    seconds = sum(lanes["billed_seconds_per_email"][lane] * _sent(lanes, lane) for lane in ("critical", "bulk"))
    receives = sum(
        math.ceil(lanes["emails_per_invocation"][lane] / 10) * lanes["invocations"][lane]
        for lane in lanes["emails_per_invocation"]
    )
    paced = per_million(
        lambda_seconds_per_email=seconds / emails,
        memory_gb=memory_gb,
        invocations_per_email=invocations / emails,
        sqs_receives_per_email=receives / emails,
        ddb=ddb,
    )
    # Not paced (traffic under the SES rate): a batch of ten takes the throughput run's time at 50 ms,
    # plus the boto3 CPU the fakes do not spend, at Lambda's CPU share for this memory size.
    at_50 = next(p for p in throughput["points"] if p["ses_latency_ms"] == 50)
    boto_cpu = max(0.0, (cpu["with_boto3"]["us_per_email"] - cpu["domain"]["us_per_email"]) / 1e6)
    unpaced_seconds = 1 / at_50["standard_mixed"]["emails_per_second"] + boto_cpu * FULL_VCPU_MB / memory_mb
    unpaced = per_million(
        lambda_seconds_per_email=unpaced_seconds,
        memory_gb=memory_gb,
        invocations_per_email=0.1,
        sqs_receives_per_email=0.1,
        ddb=ddb,
    )
    return {
        "prices_as_of": PRICES_AS_OF,
        "prices": {k: {"usd": v, "unit": d} for k, (v, d) in PRICES.items()},
        "assumptions": {
            "feedback_seconds_per_event": FEEDBACK_SECONDS_PER_EVENT,
            "producer_sqs_requests_per_email": PRODUCER_SQS_REQUESTS_PER_EMAIL,
            "message_log_retention_months": MESSAGE_LOG_RETENTION_MONTHS,
            "recipient_index_writes_per_email": RECIPIENT_INDEX_WRITES_PER_EMAIL,
            "recipient_index_entry_bytes": RECIPIENT_INDEX_ENTRY_BYTES,
        },
        "paced": paced,
        "unpaced": unpaced,
        "outcome_events": outcome_event_costs(ddb),
        "overhead_pct": paced["overhead_pct"],
    }


def _sent(lanes: dict[str, Any], lane: str) -> int:
    return int(lanes["bulk_sent"] if lane == "bulk" else lanes["critical_sent"])
