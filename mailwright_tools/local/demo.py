"""The demo: publish a realistic mix of requests, let the stack drain, and account for every one of them.

The mix covers every shipped template in two locales (plus a regional one
that falls back), all three lanes, the SQS and EventBridge routes, the SES
mailbox simulator, users who opted out (seeded in the preferences table),
addresses on the suppression list (seeded through the suppression service),
a user over the marketing rate limit, invalid requests of every kind, exact
duplicates, idempotency-key duplicates and an idempotency-key conflict.

Accounting: each published message is looked up in the message log by its
request id (what the SDK returned; for raw bodies, what the worker derives:
the request's id, or the body hash when it does not parse). It counts as its
logged terminal state, as `duplicate` when an earlier message already
claimed that id, as `dlq` when its body waits in a dead-letter queue, and
otherwise as unaccounted.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from mailwright.constants import LANES, OUTCOME_EVENT_SOURCE, TERMINAL_STATUSES
from mailwright.request import EmailRequest
from mailwright.sdk import Publisher, template_priorities
from mailwright_tools.queues import body_request_id, peek_queue, queues_empty
from mailwright_tools.target import Target

DEFAULT_COUNT = 1000
SIMULATOR = "simulator.amazonses.com"
FIRST_NAMES = ("Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances")
STATE_DUPLICATE = "duplicate"
STATE_DLQ = "dlq"

Progress = Callable[[str, int, int], None]


_deserializer = TypeDeserializer()


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain values (numbers as float)."""
    return {key: _number(_deserializer.deserialize(value)) for key, value in item.items()}


def _number(value: Any) -> Any:
    from decimal import Decimal

    return float(value) if isinstance(value, Decimal) else value


def conflict_request_id(request: EmailRequest) -> str:
    """The id a request is logged under when its idempotency key was already used for other content."""
    return hashlib.sha256(f"{request.request_id}:{request.content_hash}".encode()).hexdigest()[:32]


@dataclass
class DemoItem:
    """One message the demo publishes."""

    scenario: str
    route: str  # "queue" (SDK to a lane queue), "bus" (SDK to EventBridge) or "raw" (plain SQS body)
    request: dict[str, Any] | None = None
    body: str | None = None
    lane: str = "standard"


@dataclass
class PublishedItem:
    """A message as published: the ids it may be logged under, in the order to look them up."""

    scenario: str
    route: str
    lane: str
    request_ids: list[str]
    published_at: float


@dataclass
class DemoPlan:
    """What the demo seeds and publishes."""

    run_id: str
    items: list[DemoItem]
    opted_out_users: dict[str, dict[str, Any]] = field(default_factory=dict)
    suppressed_addresses: list[str] = field(default_factory=list)


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _shares(count: int, shares: dict[str, float]) -> dict[str, int]:
    """How many of `count` each scenario gets: its share, and at least one when there is room."""
    sized = {name: max(1, round(count * share)) for name, share in shares.items()}
    return sized if sum(sized.values()) < count else {name: 1 for name in shares}


def build_plan(
    count: int, *, templates: dict[str, Any], seed: int | None = None, run_id: str | None = None
) -> DemoPlan:
    """The demo's requests for `count` messages (deterministic for a seed)."""
    rng = random.Random(seed)
    run = run_id or uuid.uuid4().hex[:6]
    plan = DemoPlan(run_id=run, items=[])
    template_ids = sorted(templates)
    # Lanes share the SES rate by their workers' concurrency (critical 3, standard 2, bulk 2 by default);
    # this mix keeps all three busy for about the same time.
    weights = {"password_reset": 0.40, "welcome_email": 0.14, "order_confirmation": 0.14, "newsletter": 0.32}
    weights = {t: weights.get(t, 0.1) for t in template_ids}
    locales = {"en": 0.45, "fr": 0.35, "fr-CA": 0.1, "": 0.1}
    serial = iter(range(1, 10**9))

    def data_for(template_id: str, n: int, name: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(json.dumps(templates[template_id].metadata.sample_data))
        name = name or rng.choice(FIRST_NAMES)
        if "user_name" in data:
            data["user_name"] = name
        if "order_id" in data:
            data["order_id"] = f"{run.upper()}-{n:05d}"
            data["total_amount"] = f"${rng.randint(5, 400)}.{rng.randint(0, 99):02d}"
        if "reset_link" in data:
            data["reset_link"] = f"https://your-app.com/reset-password?token={run}{n:05d}"
        if "login_link" in data:
            data["login_link"] = f"https://your-app.com/login?ref={run}{n}"
        return data

    def request(template_id: str | None = None, *, to: str | None = None, **extra: Any) -> dict[str, Any]:
        n = next(serial)
        template_id = template_id or _pick(rng, weights)
        name = rng.choice(FIRST_NAMES)
        body: dict[str, Any] = {
            "recipient_email": to or f"{name.lower()}.{run}.{n}@example.com",
            "template_id": template_id,
            "template_data": data_for(template_id, n, name),
        }
        locale = _pick(rng, locales)
        if locale:
            body["locale"] = locale
        body.update(extra)
        return body

    def add(scenario: str, route: str = "queue", **fields: Any) -> DemoItem:
        item = DemoItem(scenario=scenario, route=route, **fields)
        plan.items.append(item)
        return item

    special = _shares(
        count,
        {
            "simulator": 0.06,
            "suppressed": 0.03,
            "opted_out": 0.05,
            "rate_limited": 0.01,
            "invalid": 0.03,
            "bad_template": 0.015,
            "duplicate": 0.04,
            "idempotency": 0.015,
        },
    )
    scenarios = ["success", "bounce", "complaint", "ooto", "suppressionlist"]
    for i in range(special["simulator"]):
        scenario = scenarios[i % len(scenarios)]
        local = f"{scenario}+{run}{i}" if i >= len(scenarios) else scenario
        template = "order_confirmation" if scenario == "bounce" else None
        add(f"simulator:{scenario}", request=request(template, to=f"{local}@{SIMULATOR}"))
    for i in range(special["suppressed"]):
        address = f"suppressed.{run}.{i}@example.com"
        plan.suppressed_addresses.append(address)
        add("suppressed", request=request("newsletter", to=address))
    for i in range(special["opted_out"]):
        user = f"demo-{run}-opted-out-{i}"
        everything = i % 3 == 0
        plan.opted_out_users[user] = {"unsubscribed_all": everything, "opted_out": ["marketing"]}
        add("opted_out", request=request("newsletter", user_id=user))
        if i % 4 == 1:  # essential mail still reaches them
            add("opted_out_but_essential", request=request("password_reset", user_id=user))
    for i in range(special["rate_limited"]):
        user = f"demo-{run}-avid-reader-{i}"
        for k in range(3):  # marketing allows two a day: the third is rate limited
            data = {**data_for("newsletter", next(serial)), "headline": f"Issue {k + 1}"}
            add("rate_limit", request=request("newsletter", user_id=user, template_data=data))
    invalid_bodies = [
        '{"recipient_email": "broken@example.com", "template_id": ',  # not JSON
        json.dumps({"recipient_email": f"typo.{run}@example.com", "template_id": "welcome_email", "template_dat": {}}),
        json.dumps({"recipient_email": f"not-an-address-{run}", "template_id": "order_confirmation"}),
        json.dumps(["a", "list", "is", "not", "a", "request", run]),
        json.dumps({"recipient_email": f"x.{run}@example.com", "template_id": "welcome_email", "priority": "urgent"}),
    ]
    for i in range(special["invalid"]):
        body = invalid_bodies[i % len(invalid_bodies)]
        if i >= len(invalid_bodies):
            body = body.replace(run, f"{run}{i}") if run in body else body + " " * i
        add("invalid", route="raw", body=body)
    for i in range(special["bad_template"]):
        if i % 2:
            add("unknown_template", request=request("welcome_email") | {"template_id": "welcome_emial"})
        else:
            broken = request("order_confirmation")
            broken["template_data"].pop("total_amount")
            add("missing_variable", request=broken)
    bus_share = 0.1
    ordinary = max(0, count - len(plan.items) - special["duplicate"] - special["idempotency"])
    for _ in range(ordinary):
        route = "bus" if rng.random() < bus_share else "queue"
        extra = {"priority": "critical"} if rng.random() < 0.03 else {}
        add("ordinary", route=route, request=request(**extra))
    originals = [item for item in plan.items if item.scenario == "ordinary" and item.route == "queue"]
    for i in range(special["duplicate"]):
        original = originals[i % len(originals)] if originals else None
        if original is not None:
            add("duplicate", request=json.loads(json.dumps(original.request)))
    keyed: dict[str, Any] | None = None
    for i in range(special["idempotency"]):
        if keyed is None or i % 3 == 0:
            keyed = request("order_confirmation", idempotency_key=f"order-{run}-{i}")
            add("idempotency_key", request=keyed)
        elif i % 3 == 1:
            add("idempotency_duplicate", request=json.loads(json.dumps(keyed)))
        else:
            changed = json.loads(json.dumps(keyed))
            changed["template_data"]["total_amount"] = "$0.01"
            add("idempotency_conflict", request=changed)
    rng.shuffle(plan.items)
    del plan.items[count:]  # only a tiny count has more special cases than requests
    return plan


# -- running ------------------------------------------------------------


def seed(plan: DemoPlan, target: Target, session: Any) -> None:
    """Seed the preferences and suppressions the plan relies on."""
    dynamodb = session.client("dynamodb")
    for user_id, prefs in plan.opted_out_users.items():
        item: dict[str, Any] = {
            "user_id": {"S": user_id},
            "unsubscribed_all": {"BOOL": prefs["unsubscribed_all"]},
            "source": {"S": "demo"},
            "updated_at": {"N": f"{time.time():.3f}"},
        }
        if prefs["opted_out"]:
            item["opted_out"] = {"SS": list(prefs["opted_out"])}
        dynamodb.put_item(TableName=target.tables["preferences"], Item=item)
    if plan.suppressed_addresses:
        from mailwright.wiring import build_suppression_service

        service = build_suppression_service(
            suppression_table=target.tables["suppression"],
            address_key_secret=target.address_key_secret,
            session=session,
        )
        for address in plan.suppressed_addresses:
            service.add(address, reason="MANUAL", actor="mailwright-demo", note="seeded by the demo")


def publish(
    plan: DemoPlan,
    target: Target,
    session: Any,
    *,
    templates_dir: Path,
    progress: Progress | None = None,
) -> list[PublishedItem]:
    """Publish every item, ten per call, through the SDK (or plain SQS for raw bodies)."""
    priorities = template_priorities(templates_dir)
    sqs = session.client("sqs")
    queues = Publisher(queue_urls=target.queues, template_priorities=priorities, sqs_client=sqs)
    bus = (
        Publisher(event_bus=target.event_bus, template_priorities=priorities, events_client=session.client("events"))
        if target.event_bus
        else None
    )
    published: list[PublishedItem] = []
    total = len(plan.items)
    for start in range(0, total, 10):
        chunk = plan.items[start : start + 10]
        for route in ("queue", "bus", "raw"):
            items = [item for item in chunk if item.route == route]
            if not items:
                continue
            now = time.time()
            if route == "raw":
                entries = [{"Id": str(i), "MessageBody": item.body or ""} for i, item in enumerate(items)]
                sqs.send_message_batch(QueueUrl=target.queues["standard"], Entries=entries)
                for item in items:
                    ids = [body_request_id(item.body or "")]
                    published.append(PublishedItem(item.scenario, route, "standard", ids, now))
                continue
            publisher = bus if route == "bus" and bus is not None else queues
            requests = [item.request or {} for item in items]
            request_ids = publisher.send_batch(requests)
            for item, request_id in zip(items, request_ids, strict=True):
                model = EmailRequest.model_validate(item.request)
                lane = publisher.lane_of(model)
                ids = [request_id]
                if model.idempotency_key is not None:
                    # Whichever of two requests sharing a key loses is logged under its conflict id.
                    if route == "bus" and model.priority is None:
                        model = model.model_copy(update={"priority": lane})
                    ids.insert(0, conflict_request_id(model))
                published.append(PublishedItem(item.scenario, route, lane, ids, now))
        if progress:
            progress("published", len(published), total)
    return published


LOG_FIELDS = ("pk", "status", "lane", "reason_code", "received_at", "completed_at", "attempts")


def read_log(dynamodb: Any, table: str, request_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The message-log request items of the given ids, only the fields the report needs (BatchGetItem, 100 a call)."""
    found: dict[str, dict[str, Any]] = {}
    keys = sorted(request_ids)
    names = {f"#{i}": name for i, name in enumerate(LOG_FIELDS)}
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {
            table: {
                "Keys": [{"pk": {"S": rid}, "sk": {"S": "request"}} for rid in keys[start : start + 100]],
                "ProjectionExpression": ", ".join(names),
                "ExpressionAttributeNames": names,
            }
        }
        while request:
            response = dynamodb.batch_get_item(RequestItems=request)
            for raw in response.get("Responses", {}).get(table, []):
                item = _plain(raw)
                found[item["pk"]] = item
            request = response.get("UnprocessedKeys") or {}
    return found


@dataclass
class Accounting:
    """Where each published message ended up."""

    states: list[str]
    log: dict[str, dict[str, Any]]
    unaccounted_ids: list[str]
    # The id each message was found under (None: not found), aligned with `states`.
    found_ids: list[str | None] = field(default_factory=list)

    @property
    def outcomes(self) -> dict[str, int]:
        """Terminal state (or `duplicate`) -> messages."""
        counts = Counter(s for s in self.states if s not in (STATE_DLQ, "unaccounted"))
        return {state: counts[state] for state in (*TERMINAL_STATUSES, STATE_DUPLICATE) if counts[state]}

    @property
    def dlq(self) -> int:
        """Messages waiting in a dead-letter queue."""
        return self.states.count(STATE_DLQ)


def account(published: list[PublishedItem], log: dict[str, dict[str, Any]], dlq_ids: set[str]) -> Accounting:
    """Give each published message its state (see the module docstring)."""
    claimed: set[str] = set()
    states: list[str] = []
    unaccounted: list[str] = []
    found_ids: list[str | None] = []
    for item in published:
        state = None
        found = None
        for request_id in item.request_ids:
            entry = log.get(request_id)
            if entry is None or entry.get("status") not in TERMINAL_STATUSES:
                continue
            state = STATE_DUPLICATE if request_id in claimed else str(entry["status"])
            claimed.add(request_id)
            found = request_id
            break
        found_ids.append(found)
        if state is None and any(rid in dlq_ids for rid in item.request_ids):
            state = STATE_DLQ
        if state is None:
            state = "unaccounted"
            unaccounted.append(item.request_ids[-1])
        states.append(state)
    return Accounting(states=states, log=log, unaccounted_ids=unaccounted, found_ids=found_ids)


# Requests worth a `mailwright status` after the demo: key -> (terminal state, scenarios preferred, in order).
EXAMPLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "sent": ("sent", ("ordinary",)),
    "bounced": ("sent", ("simulator:bounce",)),  # sent, then the SES Bounce event and a suppression
    "suppressed": ("suppressed", ("suppressed",)),
    "rejected": ("rejected", ("missing_variable", "unknown_template")),
}


def examples(published: list[PublishedItem], accounting: Accounting) -> dict[str, str]:
    """A request id for each of EXAMPLES that the run produced (the preferred scenario first)."""
    chosen: dict[str, str] = {}
    for key, (state, scenarios) in EXAMPLES.items():
        candidates = [
            (item.scenario, request_id)
            for item, found, request_id in zip(published, accounting.states, accounting.found_ids, strict=True)
            if found == state and request_id is not None
        ]
        for scenario in scenarios:
            match = next((request_id for name, request_id in candidates if name == scenario), None)
            if match is not None:
                chosen[key] = match
                break
    return chosen


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def collect(target: Target, session: Any, published: list[PublishedItem]) -> Accounting:
    """Read the log and the DLQs and account for every published message."""
    ids = {rid for item in published for rid in item.request_ids}
    log = read_log(session.client("dynamodb"), target.tables["messages"], ids)
    sqs = session.client("sqs")
    dlq_ids = {body_request_id(m["Body"]) for url in target.dead_letter_queues().values() for m in peek_queue(sqs, url)}
    return account(published, log, dlq_ids)


def stack_idle(session: Any, target: Target) -> bool:
    """Whether the lane and feedback queues of a stack hold nothing (for a stack running in another process)."""
    feedback = [target.feedback_queue] if target.feedback_queue else []
    return queues_empty(session.client("sqs"), [*target.queues.values(), *feedback], waiting_ok=feedback)


def wait_for(
    target: Target,
    session: Any,
    published: list[PublishedItem],
    *,
    timeout: float,
    drained: Callable[[], bool] | None = None,
    progress: Progress | None = None,
) -> Accounting:
    """Poll until every message is accounted for and the stack is idle, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    dynamodb = session.client("dynamodb")
    log: dict[str, dict[str, Any]] = {}
    pending = {rid for item in published for rid in item.request_ids}
    while True:
        # A logged outcome is final: read only the ids still missing.
        log.update(read_log(dynamodb, target.tables["messages"], pending))
        pending -= set(log)
        accounting = account(published, log, set())
        done = len(published) - len(accounting.unaccounted_ids)
        if progress:
            progress("processed", done, len(published))
        settled = drained() if drained is not None else True
        if (not accounting.unaccounted_ids and settled) or time.monotonic() > deadline:
            return collect(target, session, published)
        time.sleep(1.0)


def suppressions_since(target: Target, session: Any, since: float) -> dict[str, int]:
    """Suppressions created since `since`, by reason (the seeded ones included)."""
    from mailwright.wiring import build_suppression_service

    service = build_suppression_service(
        suppression_table=target.tables["suppression"], address_key_secret=target.address_key_secret, session=session
    )
    counts = Counter(entry.reason for entry in service.list(limit=100000) if entry.created_at >= since)
    return dict(sorted(counts.items()))


def build_report(
    *,
    published: list[PublishedItem],
    accounting: Accounting,
    started: float,
    publish_done: float,
    finished: float,
    suppressions: dict[str, int],
    seeded_suppressions: int,
    ses_rate: float,
    configured_rate: float,
    outbox: str,
    outbox_count: int,
    target: Target,
    ses_events: dict[str, int] | None = None,
    outcome_events: dict[str, int] | None = None,
    published_types: list[str] | None = None,
) -> dict[str, Any]:
    """The demo's report, as `--json` prints it."""
    latencies: dict[str, list[float]] = {lane: [] for lane in LANES}
    sent_times = []
    for item in accounting.log.values():
        if item.get("status") == "sent" and item.get("received_at") and item.get("completed_at"):
            latencies.setdefault(str(item.get("lane")), []).append(
                float(item["completed_at"]) - float(item["received_at"])
            )
            sent_times.append(float(item["completed_at"]))
    first_publish = min((item.published_at for item in published), default=started)
    sent = len(sent_times)
    span = (max(sent_times) - first_publish) if sent_times else 0.0
    terminal = sum(count for state, count in accounting.outcomes.items() if state != STATE_DUPLICATE)
    scenarios = Counter(item.scenario.split(":")[0] for item in published)
    routes = Counter(item.route for item in published)
    lanes = Counter(item.lane for item in published)
    return {
        "published": len(published),
        "unique_requests": len({item.request_ids[-1] for item in published}),
        "outcomes": accounting.outcomes,
        "dlq": accounting.dlq,
        "unaccounted": len(accounting.unaccounted_ids),
        "unaccounted_ids": accounting.unaccounted_ids[:20],
        "latency_s": {
            lane: {
                "count": len(values),
                "p50": round(percentile(values, 0.50), 3),
                "p95": round(percentile(values, 0.95), 3),
                "p99": round(percentile(values, 0.99), 3),
            }
            for lane, values in latencies.items()
        },
        "throughput": {
            "sent": sent,
            "seconds": round(span, 2),
            "sent_per_second": round(sent / span, 2) if span > 0 else 0.0,
            "requests_per_second": round(terminal / (finished - first_publish), 2) if finished > first_publish else 0.0,
        },
        "ses_rate": {
            "per_second": ses_rate,
            "configured": configured_rate,
            "note": ""
            if ses_rate == configured_rate
            else f"local SES rate {ses_rate:g}/s instead of cdk.json's {configured_rate:g}/s",
        },
        "ses_events": dict(sorted((ses_events or {}).items())),
        # What a rule on the bus heard, by detail-type, and which detail-types the stack publishes.
        "outcome_events": dict(sorted((outcome_events or {}).items())),
        "outcome_events_published": list(published_types or []),
        "suppressions_created": suppressions,
        "suppressions_seeded": seeded_suppressions,
        "mix": {
            "scenarios": dict(sorted(scenarios.items())),
            "routes": dict(routes),
            "lanes": dict(sorted(lanes.items())),
        },
        "duration_s": {
            "total": round(finished - started, 2),
            "publish": round(publish_done - started, 2),
            "drain": round(finished - publish_done, 2),
        },
        "outbox": {"path": outbox, "emails": outbox_count},
        "target": target.describe(),
        "examples": examples(published, accounting),
    }


class EventTap:
    """A rule with an SQS target on the local bus, as a producer would subscribe: the events the demo heard.

    Counted by detail-type, each event once (delivery is at least once: duplicates share an `event_id`).
    """

    def __init__(self, target: Target, session: Any, *, name: str | None = None) -> None:
        self._sqs = session.client("sqs")
        self._events = session.client("events")
        self._bus = target.event_bus
        self._rule = name or f"mailwright-demo-events-{os.getpid()}"
        self.queue_url: str = self._sqs.create_queue(QueueName=self._rule)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._events.put_rule(
            Name=self._rule, EventBusName=self._bus, EventPattern=json.dumps({"source": [OUTCOME_EVENT_SOURCE]})
        )
        self._events.put_targets(Rule=self._rule, EventBusName=self._bus, Targets=[{"Id": "demo", "Arn": arn}])
        self.by_type: Counter[str] = Counter()
        self._seen: set[str] = set()

    def collect(self) -> int:
        """Take what the queue holds; how many new events."""
        new = 0
        while True:
            messages = self._sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return new
            for message in messages:
                event = json.loads(message["Body"])
                event_id = str(event.get("detail", {}).get("event_id") or event.get("id"))
                if event_id not in self._seen:
                    self._seen.add(event_id)
                    self.by_type[str(event.get("detail-type"))] += 1
                    new += 1
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def settle(
        self, *, pending: Callable[[], bool] = lambda: False, quiet_seconds: float = 2.0, timeout: float = 30.0
    ) -> dict[str, int]:
        """Collect until nothing is `pending` and nothing new arrived for `quiet_seconds`; counts by detail-type."""
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            if self.collect() or pending():
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_seconds:
                break
            time.sleep(0.25)
        self.collect()
        return dict(sorted(self.by_type.items()))

    def close(self) -> None:
        """Remove the rule and its queue."""
        self._events.remove_targets(Rule=self._rule, EventBusName=self._bus, Ids=["demo"])
        self._events.delete_rule(Name=self._rule, EventBusName=self._bus)
        self._sqs.delete_queue(QueueUrl=self.queue_url)
