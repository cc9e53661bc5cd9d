"""Cost per million emails, from the measured figures and AWS list prices (us-east-1).

Every unit price is here, once, and printed in one table in
docs/benchmarks.md. They are AWS's public on-demand list prices for
us-east-1 as compiled on PRICES_AS_OF (DynamoDB on-demand since its
2024-11-01 reduction, Lambda arm64 first tier, SQS standard beyond the free
tier); the benchmark does not fetch them, so check them before relying on
the result. Free tiers are left out.

The table has two parts:

* the **core**, as issue 14 defines it: the send path (the producer's
  request, the lane queue, the worker, the dedupe claim and the outcome,
  the message log with its storage and backups) and the suppression
  feedback (bounces, complaints, rejects, rendering failures), in two
  regimes, paced (the lanes scenario, cdk.json's settings) and unpaced;
* **feature lines**, one per feature that can be turned on or off, per
  million emails, each saying whether cdk.json's default configuration has
  it. `FEATURES` is the list: a feature adds its line with `feature(...)`
  (a name, the setting that turns it on, whether the default has it, and a
  function from the measurements to US dollars per million emails).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
    "eventbridge_opt_in_event": (
        1.00 / 1e6,
        "EventBridge, AWS opt-in data events ingested on the default bus (what an SES configuration set's "
        "EventBridge destination sends), per event; same-account rules and targets add nothing",
    ),
    "logs_ingest_gb": (0.50, "CloudWatch Logs ingestion (standard class), per GB"),
    "eventbridge_event": (1.00 / 1e6, "EventBridge PutEvents to a custom bus, per event entry (64 KB chunk)"),
}

# Assumptions the measurements cannot give; each is printed in the doc. The SES events per email and
# the DynamoDB units they cost are measured (`bench.ddb`, its FEEDBACK_GROUPS of event types).
FEEDBACK_BATCH = 10  # the feedback function's event source batch size (infra.config.FEEDBACK_BATCH_SIZE)
FEEDBACK_MEMORY_GB = 0.25
FEEDBACK_SECONDS_PER_EVENT = 0.015  # estimate: at most a few DynamoDB calls per event; not timed here
# Unpaced: every request published alone (one SendMessage, or a SendMessageBatch of one entry: the SDK's `send`,
# the bus's SQS target). The batching doors (the SDK's send_batch, `mailwright send --file/--csv`, the CSV door,
# POST /v1/messages with several requests) put ten per SendMessageBatch: the lanes scenario publishes its bulk
# backlog that way (bench.lanes.PRODUCER_BATCH) and its critical mail one request each.
PRODUCER_SQS_REQUESTS_PER_EMAIL = 1.0
DYNAMODB_ITEM_OVERHEAD_BYTES = 100  # per item (and per index entry), as DynamoDB bills storage
INDEX_ENTRY_BYTES = 90  # a keys-only index entry: request id, sort key and SES message id
DAYS_PER_MONTH = 30.4
MILLION = 1e6
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


@dataclass(frozen=True)
class Inputs:
    """What the measurements give the cost model, per email (regime-specific figures apart)."""

    ddb: dict[str, Any]  # bench.ddb: requests, units by purpose, item sizes, feedback per event group
    memory_gb: float
    retention_months: float  # the message log's TTL (cdk.json message_log_ttl_days) in months
    # The message log's point-in-time recovery (cdk.json message_log_backups).
    message_log_backups: bool = False

    @property
    def write_units(self) -> dict[str, float]:
        """Write units per email by purpose (claim, messages, index:ses_message_id, rate_limit, pacing)."""
        units: dict[str, float] = self.ddb["write_units_per_email_by_purpose"]
        return units

    @property
    def read_units(self) -> dict[str, float]:
        """Read units per email by purpose (suppression, preferences, rate_limit, pacing...)."""
        units: dict[str, float] = self.ddb["read_units_per_email_by_purpose"]
        return units

    def feedback(self, group: str) -> dict[str, Any]:
        """The feedback function's figures for one event group (suppression, delivery, opens_clicks)."""
        figures: dict[str, Any] = self.ddb["feedback"]["groups"][group]
        return figures

    @property
    def backup_price(self) -> float:
        """Point-in-time recovery of the message log per GB-month: its price when message_log_backups is on, else 0."""
        return price("dynamodb_pitr_gb_month") if self.message_log_backups else 0.0

    def storage_per_million(self, item_bytes: float) -> float:
        """Storage (and backups, when on) of `item_bytes` per email, kept for the retention, per million."""
        gb_months = item_bytes * MILLION / 1e9 * self.retention_months
        return gb_months * (price("dynamodb_storage_gb_month") + self.backup_price)


def events_per_million(inputs: Inputs, group: str, *, route: str = "sns") -> dict[str, float]:
    """What one group of SES events costs per million emails: transport, the feedback function, its writes."""
    figures = inputs.feedback(group)
    events = figures["events_per_sent_email"] * inputs.ddb["ses_calls_per_sent_email"]
    # SES -> SNS (or the default bus) -> SQS SendMessage; the feedback mapping's receives and deletes.
    transport = price("sns_publish") if route == "sns" else price("eventbridge_opt_in_event")
    transport += price("sqs_request") * (1 + 2 / FEEDBACK_BATCH)
    function = FEEDBACK_SECONDS_PER_EVENT * FEEDBACK_MEMORY_GB * price("lambda_gb_second_arm64")
    function += price("lambda_request") / FEEDBACK_BATCH
    dynamodb = figures["write_units_per_sent_email"] * price("dynamodb_wru")
    dynamodb += figures["read_units_per_sent_email"] * price("dynamodb_rru")
    return {
        "transport": events * transport * MILLION,
        "function": events * function * MILLION,
        "dynamodb": dynamodb * MILLION,
        # Their history entries stay in the message log as long as the request does.
        "storage": inputs.storage_per_million(figures["item_bytes_added_per_sent_email"]),
    }


def core(
    inputs: Inputs,
    *,
    lambda_seconds_per_email: float,
    invocations_per_email: float,
    sqs_requests_per_email: float,
    pacing_writes_per_email: float | None = None,
) -> dict[str, Any]:
    """The core's US dollars per million emails by row, and its share of SES's price."""
    d = inputs.ddb
    rows: dict[str, float] = {}
    rows["SES"] = price("ses_per_email") * d["ses_calls_per_sent_email"] * MILLION
    worker = lambda_seconds_per_email * inputs.memory_gb * price("lambda_gb_second_arm64")
    worker += invocations_per_email * price("lambda_request")
    rows["Lambda (send worker)"] = worker * MILLION
    rows["SQS (producer, lane queue, deferrals, retries)"] = sqs_requests_per_email * price("sqs_request") * MILLION
    pacing = inputs.write_units.get("pacing", 0.0) if pacing_writes_per_email is None else pacing_writes_per_email
    wru = inputs.write_units.get("claim", 0.0) + inputs.write_units.get("messages", 0.0) + pacing
    rru = sum(units for purpose, units in inputs.read_units.items() if purpose != "rate_limit")
    rows["DynamoDB requests (claim, outcome, consent lookups, pacing)"] = (
        wru * price("dynamodb_wru") + rru * price("dynamodb_rru")
    ) * MILLION
    item = d["message_log_item_bytes_avg"] + DYNAMODB_ITEM_OVERHEAD_BYTES
    gb_months = item * MILLION / 1e9 * inputs.retention_months
    days = round(inputs.retention_months * DAYS_PER_MONTH)
    rows[f"DynamoDB storage (message log, {days} days)"] = gb_months * price("dynamodb_storage_gb_month")
    # message_log_backups (off by default): 0 here when off; `message_log_backups_usd` in the result says what on costs.
    rows["DynamoDB PITR (message log, message_log_backups)"] = gb_months * inputs.backup_price
    suppression = events_per_million(inputs, "suppression")
    rows["Suppression feedback (SNS, SQS, Lambda, DynamoDB)"] = sum(suppression.values())
    rows["CloudWatch Logs"] = d["log_bytes_per_email"] * MILLION / 1e9 * price("logs_ingest_gb")
    overhead = sum(v for k, v in rows.items() if k != "SES")
    return {
        "rows": {k: round(v, 3) for k, v in rows.items()},
        "total": round(sum(rows.values()), 2),
        "overhead": round(overhead, 3),
        "overhead_pct": round(100 * overhead / rows["SES"], 2),
        "message_log_backups_usd": round(gb_months * price("dynamodb_pitr_gb_month"), 3),
        "inputs": {
            "lambda_seconds_per_email": round(lambda_seconds_per_email, 4),
            "memory_gb": inputs.memory_gb,
            "invocations_per_email": round(invocations_per_email, 4),
            "sqs_requests_per_email": round(sqs_requests_per_email, 3),
            "dynamodb_wru_per_email": round(wru, 3),
            "dynamodb_rru_per_email": round(rru, 3),
            "suppression_events_per_email": inputs.feedback("suppression")["events_per_sent_email"],
        },
    }


# -- feature lines ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Feature:
    """One line of the feature table: what it is, the setting that turns it on, whether cdk.json has it on."""

    name: str
    setting: str
    default: bool
    per_million: Callable[[Inputs], float]
    notes: str = ""


FEATURES: list[Feature] = []


def feature(name: str, *, setting: str, default: bool, notes: str = "") -> Callable[[Callable[[Inputs], float]], Any]:
    """Register a feature line (a decorator on its per-million function)."""

    def register(per_million: Callable[[Inputs], float]) -> Callable[[Inputs], float]:
        FEATURES.append(Feature(name, setting, default, per_million, notes))
        return per_million

    return register


@feature(
    "Delivery tracking (Delivery, DeliveryDelay, Subscription events)",
    setting="event_tracking.delivery",
    default=True,
    notes="SNS, SQS, the feedback function and one history append per event, kept with the request",
)
def _delivery_tracking(inputs: Inputs) -> float:
    return sum(events_per_million(inputs, "delivery").values())


@feature(
    "Open and click tracking (Open, Click events)",
    setting="event_tracking.opens_clicks",
    default=False,
    notes="opt-in; opens and clicks repeat, a request's history keeps 16 entries",
)
def _opens_clicks(inputs: Inputs) -> float:
    return sum(events_per_million(inputs, "opens_clicks").values())


@feature(
    "Per-user rate limits",
    setting="rate_limits",
    default=True,
    notes="a counter per user, category and window: one conditional write per limited email",
)
def _rate_limits(inputs: Inputs) -> float:
    wru = inputs.write_units.get("rate_limit", 0.0)
    rru = inputs.read_units.get("rate_limit", 0.0)
    return (wru * price("dynamodb_wru") + rru * price("dynamodb_rru")) * MILLION


@feature(
    "SES message id index (lookups by SES message id)",
    setting="(always, until a release drops it)",
    default=True,
    notes="keys only; feedback finds requests by their request_id tag and needs it only for untagged events",
)
def _ses_message_id_index(inputs: Inputs) -> float:
    writes = inputs.write_units.get("index:ses_message_id", 0.0) * price("dynamodb_wru") * MILLION
    sent_share = inputs.ddb["ses_calls_per_email"]  # only sent requests carry an SES message id
    entry = (INDEX_ENTRY_BYTES + DYNAMODB_ITEM_OVERHEAD_BYTES) * sent_share
    gb_months = entry * MILLION / 1e9 * inputs.retention_months
    return writes + gb_months * price("dynamodb_storage_gb_month")


def outcome_event_costs(ddb: dict[str, Any]) -> dict[str, Any]:
    """Dollars per million sent emails of publishing each detail-type, of the default set, of all, and the publisher.

    PutEvents is $1 per million entries: a type published once per email (EmailSent, EmailDelivered) costs
    $1 per million emails, 1% of SES's $100; the rare ones cost cents.
    """
    from mailwright.constants import DEFAULT_OUTCOME_EVENTS, OUTCOME_DETAIL_TYPES

    feedback = ddb["feedback"]
    sent = max(float(feedback["sent"]), 1e-9)
    counts: dict[str, float] = {}
    for group in feedback["groups"].values():
        for name, count in group["by_type"].items():
            counts[name] = counts.get(name, 0.0) + count
    by_ses_type = {name: count / sent for name, count in counts.items()}
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


@feature(
    "Outcome events (the default set) and their publisher",
    setting="outcome_events",
    default=True,
    notes="PutEvents at $1 per million entries for what went wrong; the publisher reads the log's stream",
)
def _outcome_events(inputs: Inputs) -> float:
    events = outcome_event_costs(inputs.ddb)
    return float(events["default_set_usd_per_million_emails"] + events["publisher_usd_per_million_emails"])


@feature(
    "Recipient index (the status API's search by recipient)",
    setting="(always: the status API)",
    default=True,
    notes="keys only: one entry of ~150 bytes per logged request, kept as long as the request",
)
def _recipient_index(inputs: Inputs) -> float:
    writes = RECIPIENT_INDEX_WRITES_PER_EMAIL * price("dynamodb_wru") * MILLION
    entry = RECIPIENT_INDEX_ENTRY_BYTES + DYNAMODB_ITEM_OVERHEAD_BYTES
    return writes + entry * MILLION / 1e9 * inputs.retention_months * price("dynamodb_storage_gb_month")


def features(inputs: Inputs) -> list[dict[str, Any]]:
    """Every feature line, US dollars and percent of SES's price per million emails."""
    ses = price("ses_per_email") * MILLION
    lines = []
    for line in FEATURES:
        usd = line.per_million(inputs)
        lines.append(
            {
                "name": line.name,
                "setting": line.setting,
                "default": line.default,
                "usd_per_million": round(usd, 3),
                "pct": round(100 * usd / ses, 2),
                "notes": line.notes,
            }
        )
    return lines


def engagement_route(inputs: Inputs) -> dict[str, Any]:
    """Delivery events through SNS (as deployed) against SES's EventBridge destination, per million emails."""
    sns = events_per_million(inputs, "delivery", route="sns")["transport"]
    eventbridge = events_per_million(inputs, "delivery", route="eventbridge")["transport"]
    return {
        "sns_per_million_emails": round(sns, 3),
        "eventbridge_per_million_emails": round(eventbridge, 3),
        "chosen": "sns" if sns <= eventbridge else "eventbridge",
    }


def estimate(
    *,
    lanes: dict[str, Any],
    throughput: dict[str, Any],
    cpu: dict[str, Any],
    ddb: dict[str, Any],
    memory_mb: int,
    retention_days: int,
    message_log_backups: bool = False,
) -> dict[str, Any]:
    """The core in two regimes (paced: the lanes scenario; unpaced), the feature lines, the default's total."""
    from bench.lanes import FULL_VCPU_MB

    inputs = Inputs(
        ddb=ddb,
        memory_gb=memory_mb / 1024,
        retention_months=retention_days / DAYS_PER_MONTH,
        message_log_backups=message_log_backups,
    )
    # Paced: the lanes scenario's billed seconds, invocations and SQS requests (deferrals included).
    sent = lanes["bulk_sent"] + lanes["critical_sent"]
    paced = core(
        inputs,
        lambda_seconds_per_email=lanes["billed_seconds_per_sent_email"],
        invocations_per_email=sum(lanes["invocations"].values()) / sent,
        sqs_requests_per_email=lanes["sqs_requests"] / sent + ddb.get("sqs_retry_calls_per_email", 0.0),
        # The shared bucket's and the schedules' writes (one unit each: the items are small).
        pacing_writes_per_email=sum(lanes["registry_writes"].values()) / sent,
    )
    # Not paced (traffic under the SES rate): a batch of ten takes the throughput run's time at 50 ms,
    # plus the boto3 CPU the fakes do not spend, at Lambda's CPU share for this memory size.
    at_50 = next(p for p in throughput["points"] if p["ses_latency_ms"] == 50)
    boto_cpu = max(0.0, (cpu["with_boto3"]["us_per_email"] - cpu["domain"]["us_per_email"]) / 1e6)
    unpaced_seconds = 1 / at_50["standard_mixed"]["emails_per_second"] + boto_cpu * FULL_VCPU_MB / memory_mb
    unpaced = core(
        inputs,
        lambda_seconds_per_email=unpaced_seconds,
        invocations_per_email=0.1,
        # The producer's SendMessage, and the mapping's ReceiveMessage and DeleteMessageBatch at ten a call.
        sqs_requests_per_email=PRODUCER_SQS_REQUESTS_PER_EMAIL + 0.2 + ddb.get("sqs_retry_calls_per_email", 0.0),
    )
    lines = features(inputs)
    default_usd = paced["overhead"] + sum(line["usd_per_million"] for line in lines if line["default"])
    ses = price("ses_per_email") * MILLION
    return {
        "prices_as_of": PRICES_AS_OF,
        "prices": {k: {"usd": v, "unit": d} for k, (v, d) in PRICES.items()},
        "assumptions": {
            "feedback_seconds_per_event": FEEDBACK_SECONDS_PER_EVENT,
            "producer_sqs_requests_per_email": PRODUCER_SQS_REQUESTS_PER_EMAIL,
            # Paced: the lanes scenario's producer requests (the bulk backlog ten per SendMessageBatch).
            "producer_sqs_requests_per_email_paced": round(lanes.get("producer_sqs_requests", sent) / sent, 3),
            "producer_batch_paced_bulk": lanes.get("producer_batch", 1),
            "message_log_retention_days": retention_days,
            "message_log_backups": message_log_backups,
            "recipient_index_writes_per_email": RECIPIENT_INDEX_WRITES_PER_EMAIL,
            "recipient_index_entry_bytes": RECIPIENT_INDEX_ENTRY_BYTES,
        },
        "paced": paced,
        "unpaced": unpaced,
        # The core, paced (the worse regime), as issue 14's target reads it.
        "overhead_pct": max(paced["overhead_pct"], unpaced["overhead_pct"]),
        "features": lines,
        "default_config_usd": round(default_usd, 3),
        "default_config_pct": round(100 * default_usd / ses, 2),
        "engagement_route": engagement_route(inputs),
        "outcome_events": outcome_event_costs(ddb),
    }
