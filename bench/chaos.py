"""`make chaos`: thousands of requests through the real worker with faults injected, and the invariants checked.

The stack is moto, in-process (`bench.moto_stack`), provisioned as the local
stack provisions it; each lane's event source mapping is the local stack's
`EventSourceEmulator` (real SQS semantics: batches, visibility timeouts,
receive counts, redrive to the DLQ, partial batch responses); each emulated
container runs the worker's handler body (`send_worker.handle_batch`, as the
local stack runs it) on a service from `build_send_service`, with its own
boto3 session. Faults are injected at the botocore edge of that session,
never in the runtime:

* SES throttling: a share of `SendEmail` calls answered `TooManyRequestsException`;
* SES 5xx bursts: every so many `SendEmail` calls, a run of calls answered `InternalFailure` (500);
* DynamoDB throttling: episodes during which every DynamoDB call is answered
  `ProvisionedThroughputExceededException` at the HTTP layer, so botocore's
  own retries (standard mode, 5 attempts) apply as they would in AWS;
* crash after accept: after a `SendEmail` that SES accepted, the container
  "dies" (`WorkerCrash`, a BaseException): no response, no deletes; its other
  in-flight calls fail; the batch comes back after the visibility timeout
  and the next container is a cold start;
* duplicate SQS deliveries: a share of requests is published twice;
* poison messages: bodies no worker can ever send (not JSON, nested too deeply,
  wrong shape, bad address, unknown template, missing variable, misspelt field,
  a line break for the subject header).

Invariants (`check`): every request ends in a terminal state or a DLQ; no
send to a suppressed or opted-out recipient; every duplicate send is one
whose first send was accepted by SES but never recorded (the worker crashed,
or its outcome write failed), and is counted; every poison message is
recorded as rejected with a reason.

To run it on the local stack instead (issue 5), replace `moto_stack` by the
local stack's session and resources: containers only need `session()`,
`resources` and `config`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from botocore.awsrequest import AWSResponse

from bench.common import REPO, config_with, request
from bench.moto_stack import MotoStack, moto_stack
from infra.config import MailwrightConfig
from mailwright.constants import ESSENTIAL_CATEGORIES, LANES, TERMINAL_STATUSES, Keys
from mailwright.handlers import send_worker
from mailwright.request import parse_request
from mailwright_tools.local.event_source import EventSourceEmulator, EventSourceSettings
from mailwright_tools.local.observability import WorkerOutput

RESULT = REPO / "bench" / "chaos.json"
LANE_OF = {"password_reset": "critical", "order_confirmation": "standard", "welcome_email": "standard"}
LANE_OF["newsletter"] = "bulk"
CATEGORY_OF = {
    "password_reset": "security",
    "order_confirmation": "transactional",
    "welcome_email": "transactional",
    "newsletter": "marketing",
}


class WorkerCrash(BaseException):
    """The Lambda runtime died: raised out of the handler, never caught by the domain."""


class ContainerCrashedError(RuntimeError):
    """What the event source sees of a crash: an invocation without a response."""


@dataclass(frozen=True)
class ChaosSettings:
    """How many requests, and how much of each fault."""

    requests: int = 6_000  # every fault many times over (about 12 crashes at crash_rate), within 10 minutes
    seed: int = 1
    ses_throttle_rate: float = 0.20
    ses_5xx_every: int = 1500  # SendEmail calls between two 5xx bursts
    ses_5xx_burst: int = 30  # consecutive SendEmail calls failing in a burst
    ddb_throttle_every_seconds: float = 60.0
    ddb_throttle_seconds: float = 1.5
    crash_rate: float = 0.002  # of accepted sends, followed by a crash of the container
    crash_at: tuple[int, ...] = ()  # and crashes after these accepted sends (1 = the first), whatever the rate
    duplicate_rate: float = 0.03
    poison_rate: float = 0.02
    suppressed_rate: float = 0.04
    opted_out_rate: float = 0.05
    timeout_seconds: int = 10  # short, so claims' leases (timeout + 10 s) are short
    visibility_seconds: int = 25  # longer than the lease: a crashed batch returns after its claims expired
    send_rate_per_worker: float = 100.0  # pacing is not under test here
    max_backoff_seconds: int = 40  # the backoff cap (MAILWRIGHT_MAX_BACKOFF_SECONDS), short to keep the run short
    max_queue_depth: int = 60  # moto's SQS slows down with deep queues: publish as the workers drain
    # A cap for a run that stopped making progress, not a target: a loaded machine takes longer (`seconds`).
    drain_timeout: float = 1500.0
    report_every: float = 15.0  # seconds between progress lines


def service_error(code: str, status: int, message: str = "injected by chaos") -> Any:
    """A before-call answer that makes botocore raise this service error."""
    response = AWSResponse("https://chaos.invalid", status, {}, None)
    return response, {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def http_throttle() -> AWSResponse:
    """An HTTP 400 DynamoDB throttling response, as the service sends it (botocore retries it)."""
    body = json.dumps(
        {"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", "message": "chaos"}
    ).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "chaos"}
    return AWSResponse("https://chaos.invalid", 400, headers, _Raw(body))


@dataclass
class Accept:
    """One SendEmail SES accepted."""

    request_id: str
    message_id: str
    to: str
    category: str
    container: int
    invocation: int


@dataclass
class Ledger:
    """What the faults did and what SES accepted, shared by every container."""

    settings: ChaosSettings
    rng: random.Random
    started: float = field(default_factory=time.monotonic)
    accepts: list[Accept] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    crashed: set[tuple[int, int]] = field(default_factory=set)
    write_failed: set[tuple[int, int]] = field(default_factory=set)
    ses_calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def roll(self, p: float) -> bool:
        with self.lock:
            return self.rng.random() < p

    def ddb_throttling_now(self) -> bool:
        """Whether a DynamoDB throttling episode is on (the first starts a few seconds in)."""
        s = self.settings
        phase = (time.monotonic() - self.started - 5.0) % s.ddb_throttle_every_seconds
        return time.monotonic() - self.started > 5.0 and phase < s.ddb_throttle_seconds


class Container:
    """One emulated Lambda container: its boto3 session with the fault hooks, and its send service."""

    _ids = iter(range(1, 1_000_000))

    def __init__(self, stack: MotoStack, lane: str, ledger: Ledger, output: WorkerOutput) -> None:
        self.stack, self.lane, self.ledger, self.output = stack, lane, ledger, output
        self.id = next(self._ids)
        self.invocation = 0
        self.dead = False
        self._local = threading.local()
        session = stack.session(before_call=[self._before_call], observe=[self._observe], after_call=[self._after_call])
        session.events.register_first("before-send", self._before_send)
        self.service = stack.container(
            lane,
            session,
            send_rate=ledger.settings.send_rate_per_worker,
            max_backoff=ledger.settings.max_backoff_seconds,
        )

    # -- faults at the botocore edge --------------------------------------------

    def _observe(self, operation: str, params: dict[str, Any]) -> None:
        if operation == "sesv2.SendEmail":
            self._local.params = params  # the API parameters; the after-call hook in this thread reads them
        elif operation in ("dynamodb.BatchWriteItem", "dynamodb.PutItem"):
            tables = params.get("RequestItems") or {params.get("TableName", ""): None}
            self._local.writes_log = self.stack.resources.messages_table in tables

    def _before_call(self, operation: str, params: dict[str, Any]) -> Any:
        if self.dead:
            raise WorkerCrash(f"container {self.id} is dead")
        ledger, s = self.ledger, self.ledger.settings
        if operation == "sesv2.SendEmail":
            with ledger.lock:
                ledger.ses_calls += 1
                in_burst = ledger.ses_calls % s.ses_5xx_every < s.ses_5xx_burst and ledger.ses_calls > s.ses_5xx_burst
            if in_burst:
                ledger.faults["ses_5xx"] += 1
                return service_error("InternalFailure", 500)
            if ledger.roll(s.ses_throttle_rate):
                ledger.faults["ses_throttled"] += 1
                return service_error("TooManyRequestsException", 429, "Maximum sending rate exceeded.")
        return None

    def _before_send(self, request: Any = None, event_name: str = "", **_: Any) -> Any:
        if ".dynamodb." in event_name and self.ledger.ddb_throttling_now():
            self.ledger.faults["dynamodb_throttled_attempts"] += 1
            return http_throttle()
        return None

    def _after_call(self, http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        operation = f"{model.service_model.service_name}.{model.name}"
        status = getattr(http_response, "status_code", 200)
        if operation in ("dynamodb.BatchWriteItem", "dynamodb.PutItem") and status >= 300 and self._writes_log():
            with self.ledger.lock:
                self.ledger.write_failed.add((self.id, self.invocation))
        if operation != "sesv2.SendEmail" or status >= 300:
            return
        params = getattr(self._local, "params", None) or {}
        tags = {t["Name"]: t["Value"] for t in params.get("EmailTags", [])}
        accept = Accept(
            request_id=tags.get("request_id", ""),
            message_id=str(parsed.get("MessageId", "")),
            to=params.get("Destination", {}).get("ToAddresses", [""])[0],
            category=tags.get("category", ""),
            container=self.id,
            invocation=self.invocation,
        )
        with self.ledger.lock:
            self.ledger.accepts.append(accept)
            scheduled = len(self.ledger.accepts) in self.ledger.settings.crash_at
        if not self.dead and (scheduled or self.ledger.roll(self.ledger.settings.crash_rate)):
            self.dead = True
            with self.ledger.lock:
                self.ledger.crashed.add((self.id, self.invocation))
                self.ledger.faults["crash_after_accept"] += 1
            raise WorkerCrash(f"container {self.id} died after SES accepted {accept.message_id}")

    def _writes_log(self) -> bool:
        """Whether this thread's last DynamoDB write was to the message log (an outcome, not a claim)."""
        return bool(getattr(self._local, "writes_log", False))

    # -- the handler --------------------------------------------------------------

    def invoke(self, event: dict[str, Any], context: Any) -> Any:
        """The worker's handler body, as the local stack runs it; a crash surfaces as an invocation error."""
        self.invocation += 1
        try:
            return send_worker.handle_batch(self.service, SQSEvent(event), context)
        except WorkerCrash:
            self.dead = True
            raise ContainerCrashedError(f"container {self.id} crashed") from None
        finally:
            self.output.metrics.flush()


class _NoLongPoll:
    """The event source's SQS client, polling without holding moto's lock for the long-poll wait."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def receive_message(self, **kwargs: Any) -> Any:
        wait = kwargs.pop("WaitTimeSeconds", 0)
        response = self._client.receive_message(WaitTimeSeconds=0, **kwargs)
        if not response.get("Messages"):
            # A long poll returns as soon as a message arrives; polling a few times a second is close enough.
            time.sleep(0.3 if wait else 0.1)
        return response


def handler_factory(stack: MotoStack, lane: str, ledger: Ledger, output: WorkerOutput) -> Callable[[], Any]:
    """A factory of the lane's handler: a crashed container is replaced by a cold one on the next batch."""

    def cold_start() -> Callable[[dict[str, Any], Any], Any]:
        current = [Container(stack, lane, ledger, output)]

        def invoke(event: dict[str, Any], context: Any) -> Any:
            if current[0].dead:
                current[0] = Container(stack, lane, ledger, output)
                ledger.faults["cold_starts_after_crash"] += 1
            return current[0].invoke(event, context)

        return invoke

    return cold_start


# -- the workload ---------------------------------------------------------------------

POISON = (
    "this is not json",
    "[1, 2, 3]",
    json.dumps({"recipient_email": "x@example.com"}),
    json.dumps({"recipient_email": "not an address", "template_id": "welcome_email", "template_data": {}}),
    json.dumps({"recipient_email": "p@example.com", "template_id": "no_such_template", "template_data": {}}),
    json.dumps({"recipient_email": "p@example.com", "template_id": "order_confirmation", "template_data": {}}),
    json.dumps({"recipient_email": "p@example.com", "template_id": "welcome_email", "template_dat": {}}),
    json.dumps(
        {
            "recipient_email": "p@example.com",
            "template_id": "welcome_email",
            "template_data": {"user_name": "Eve\r\nBcc: list@example.com", "login_link": "https://example.com"},
        }
    ),
    "[" * 5000 + "]" * 5000,
)


@dataclass
class Workload:
    """What is published, and the ground truth the invariants are checked against."""

    bodies: list[tuple[str, str]]  # (lane, body), duplicates included
    requests: dict[str, dict[str, Any]]  # request id -> request (valid ones)
    poison: dict[str, str]  # request id -> body
    suppressed: dict[str, str]  # address -> scope
    opted_out: dict[str, set[str]]  # user id -> categories ("*" for everything non-essential)


def request_id_of(body: str) -> str:
    """The id the worker gives a body: the request's id, or a hash of the raw body if it does not parse."""
    try:
        return parse_request(body).request_id
    except Exception:
        return hashlib.sha256(body.encode("utf-8", "replace")).hexdigest()[:32]


def workload(settings: ChaosSettings) -> Workload:
    """Requests across the lanes, some to suppressed or opted-out recipients, some poison, some duplicated."""
    rng = random.Random(settings.seed)
    templates = ["order_confirmation", "welcome_email", "password_reset", "newsletter"]
    weights = [0.35, 0.15, 0.15, 0.35]
    users = max(50, settings.requests // 3)
    suppressed: dict[str, str] = {}
    opted_out: dict[str, set[str]] = {}
    for n in rng.sample(range(users), round(users * settings.suppressed_rate)):
        suppressed[f"user{n}@example.com"] = rng.choice(["all", "non_essential"])
    for n in rng.sample(range(users), round(users * settings.opted_out_rate)):
        opted_out[f"u{n}"] = rng.choice([{"marketing"}, {"*"}])
    bodies: list[tuple[str, str]] = []
    requests: dict[str, dict[str, Any]] = {}
    poison: dict[str, str] = {}
    for i in range(settings.requests):
        if rng.random() < settings.poison_rate:
            body = rng.choice(POISON)
            # Distinct requests with the same fault: a tag in a JSON object, a suffix otherwise.
            body = body[:-1] + f', "metadata": {{"n": "p{i}"}}}}' if body.startswith("{") else f"{body} #{i}"
            poison[request_id_of(body)] = body
            bodies.append(("standard", body))
            continue
        template = rng.choices(templates, weights)[0]
        n = rng.randrange(users)
        req = request(template, n, user=f"u{n}", idempotency_key=f"chaos-{i}")
        body = json.dumps(req)
        requests[request_id_of(body)] = req
        bodies.append((LANE_OF[template], body))
        if rng.random() < settings.duplicate_rate:
            bodies.append((LANE_OF[template], body))
    rng.shuffle(bodies)
    return Workload(bodies=bodies, requests=requests, poison=poison, suppressed=suppressed, opted_out=opted_out)


def seed_consent(stack: MotoStack, work: Workload) -> None:
    """Write the suppressions and preferences the workload refers to."""
    hasher = stack.hasher()
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    for address, scope in work.suppressed.items():
        reason = "BOUNCE" if scope == "all" else "COMPLAINT"
        item = {
            Keys.SUPPRESSION_PK: {"S": hasher.address_hash(address)},
            "reason": {"S": reason},
            "scope": {"S": scope},
        }
        dynamodb.put_item(TableName=stack.resources.suppression_table, Item=item)
    for user, categories in work.opted_out.items():
        item: dict[str, Any] = {Keys.PREFERENCES_PK: {"S": user}}
        if "*" in categories:
            item["unsubscribed_all"] = {"BOOL": True}
        else:
            item["opted_out"] = {"SS": sorted(categories)}
        dynamodb.put_item(TableName=stack.resources.preferences_table, Item=item)


# -- running ------------------------------------------------------------------------------


def chaos_config(settings: ChaosSettings) -> MailwrightConfig:
    """cdk.json's lanes with a short function timeout (short leases) and enough receives to survive the faults."""
    base = config_with()
    lanes = {
        name: {
            "batch_size": lane.batch_size,
            "batching_window_seconds": lane.batching_window_seconds,
            "max_concurrency": lane.max_concurrency,
            "reserved_concurrency": lane.reserved_concurrency,
            "timeout_seconds": settings.timeout_seconds,
            "memory_mb": lane.memory_mb,
            "max_receive_count": lane.max_receive_count,
        }
        for name, lane in base.lanes.items()
    }
    return config_with(lanes=lanes)


def _depth(sqs: Any, url: str) -> tuple[int, int]:
    """Messages visible now, and all messages (visible, in flight, delayed)."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    counts = [int(attributes.get(name, "0")) for name in names]
    return counts[0], sum(counts)


def run(settings: ChaosSettings, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Publish the workload with faults on, wait until every queue is drained, check the invariants."""
    work = workload(settings)
    cfg = chaos_config(settings)
    ledger = Ledger(settings=settings, rng=random.Random(settings.seed + 1))
    started = time.monotonic()
    with moto_stack(cfg) as stack, tempfile.TemporaryDirectory() as logs:
        seed_consent(stack, work)
        sqs = boto3.client("sqs", region_name="us-east-1")
        for url in stack.resources.queues.values():
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(settings.visibility_seconds)})
        output = WorkerOutput(Path(logs), handler_modules=[send_worker])
        emulators = {
            lane: EventSourceEmulator(
                name=f"chaos-{lane}",
                sqs=_NoLongPoll(boto3.client("sqs", region_name="us-east-1")),
                queue_url=stack.resources.queues[lane],
                settings=EventSourceSettings(
                    batch_size=cfg.lanes[lane].batch_size,
                    batching_window_seconds=cfg.lanes[lane].batching_window_seconds,
                    max_concurrency=cfg.lanes[lane].max_concurrency,
                    timeout_seconds=cfg.lanes[lane].timeout_seconds,
                ),
                handler_factory=handler_factory(stack, lane, ledger, output),
            )
            for lane in LANES
        }
        try:
            for emulator in emulators.values():
                emulator.start()
            pending = list(work.bodies)
            drained = False
            deadline = time.monotonic() + settings.drain_timeout
            last_report = 0.0
            while time.monotonic() < deadline:
                depths = {lane: _depth(sqs, url) for lane, url in stack.resources.queues.items()}
                depth = {lane: total for lane, (_, total) in depths.items()}
                if pending:
                    for lane in LANES:
                        visible, total = depths[lane]
                        # Records waiting out a backoff count only against the looser cap.
                        room = min(settings.max_queue_depth - visible, 6 * settings.max_queue_depth - total)
                        batch = [b for b in pending if b[0] == lane][: max(0, room)]
                        for start in range(0, len(batch), 10):
                            chunk = batch[start : start + 10]
                            sqs.send_message_batch(
                                QueueUrl=stack.resources.queues[lane],
                                Entries=[{"Id": str(i), "MessageBody": body} for i, (_, body) in enumerate(chunk)],
                            )
                        taken = {id(b) for b in batch}
                        pending = [b for b in pending if id(b) not in taken]
                elif not any(depth.values()) and all(e.idle for e in emulators.values()):
                    drained = True
                    break
                now = time.monotonic()
                if now - last_report > settings.report_every:
                    last_report = now
                    progress(
                        f"  chaos: {len(work.bodies) - len(pending):,}/{len(work.bodies):,} published, "
                        f"queued {sum(depth.values())}, accepted {len(ledger.accepts):,}, "
                        f"{now - started:.0f} s"
                    )
                time.sleep(0.5)
        finally:
            for emulator in emulators.values():
                emulator.stop()
            output.restore()
        stats = {lane: vars(e.stats) | {"errors": len(e.stats.errors)} for lane, e in emulators.items()}
        logged = _scan_log(stack)
        dlq = _dlq_ids(stack)
        left = {lane: _depth(sqs, url)[1] for lane, url in stack.resources.queues.items()}
    result = check(work, ledger, logged, dlq)
    result.update(
        {
            "drained": drained,
            "left_in_queues": sum(left.values()),
            "seconds": round(time.monotonic() - started, 1),
            "settings": vars(settings),
            "faults": dict(sorted(ledger.faults.items())),
            "event_sources": stats,
        }
    )
    result["invariants_hold"] = bool(
        drained
        and result["lost"] == 0
        and result["sent_to_suppressed"] == 0
        and result["sent_to_opted_out"] == 0
        and result["duplicate_sends"] == result["crash_window_duplicates"]
        and result["poison_without_reason"] == 0
    )
    return result


def _scan_log(stack: MotoStack) -> dict[str, dict[str, Any]]:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    items: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {"TableName": stack.resources.messages_table}
    while True:
        page = dynamodb.scan(**kwargs)
        for item in page["Items"]:
            if item.get(Keys.MESSAGES_SK, {}).get("S") == "request":
                items[item[Keys.MESSAGES_PK]["S"]] = {k: next(iter(v.values())) for k, v in item.items()}
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _dlq_ids(stack: MotoStack) -> set[str]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    found: set[str] = set()
    for url in stack.resources.dlqs.values():
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600).get(
                "Messages", []
            )
            if not messages:
                break
            found.update(request_id_of(m["Body"]) for m in messages)
    return found


def check(work: Workload, ledger: Ledger, logged: dict[str, dict[str, Any]], dlq: set[str]) -> dict[str, Any]:
    """The invariants' counters."""
    published = set(work.requests) | set(work.poison)
    terminal = {rid for rid, item in logged.items() if item.get("status") in TERMINAL_STATUSES}
    lost = sorted(published - terminal - dlq)
    sent_to_suppressed = sent_to_opted_out = 0
    by_request: dict[str, list[Accept]] = defaultdict(list)
    for accept in ledger.accepts:
        by_request[accept.request_id].append(accept)
        essential = accept.category in ESSENTIAL_CATEGORIES
        scope = work.suppressed.get(accept.to)
        if scope == "all" or (scope == "non_essential" and not essential):
            sent_to_suppressed += 1
        req = work.requests.get(accept.request_id)
        opted = work.opted_out.get(req.get("user_id", "")) if req else None
        if opted and not essential and ("*" in opted or accept.category in opted):
            sent_to_opted_out += 1
    duplicates = explained = from_crash = from_write = 0
    for rid, accepts in by_request.items():
        extra = len(accepts) - 1
        if extra <= 0:
            continue
        duplicates += extra
        recorded = logged.get(rid, {}).get(Keys.SES_MESSAGE_ID)
        crash = write = 0
        for accept in accepts:
            if accept.message_id == recorded:
                continue
            key = (accept.container, accept.invocation)
            if key in ledger.crashed:
                crash += 1
            elif key in ledger.write_failed:
                write += 1
        covered = min(extra, crash + write)
        explained += covered
        from_crash += min(extra, crash)
        from_write += covered - min(extra, crash)
    poison_without_reason = sum(
        1
        for rid in work.poison
        if not (
            logged.get(rid, {}).get("status") == "rejected"
            and logged.get(rid, {}).get("reason_code")
            and logged.get(rid, {}).get("reason")
        )
    )
    statuses = Counter(item.get("status") for rid, item in logged.items() if rid in published)
    # Requests SES accepted at least once whose recorded state says they were not sent.
    misrecorded = Counter(
        str(logged.get(rid, {}).get("status")) for rid in by_request if logged.get(rid, {}).get("status") != "sent"
    )
    return {
        "published": len(published),
        "published_messages": len(work.bodies),
        "duplicate_deliveries_published": len(work.bodies) - len(published),
        "poison": len(work.poison),
        "outcomes": dict(statuses),
        "in_dlq": len(dlq & published),
        "lost": len(lost),
        "lost_ids": lost[:20],
        "sent_to_suppressed": sent_to_suppressed,
        "sent_to_opted_out": sent_to_opted_out,
        "ses_accepts": len(ledger.accepts),
        "duplicate_sends": duplicates,
        "crash_window_duplicates": explained,
        "crash_window_duplicates_by_cause": {"worker_crashed": from_crash, "outcome_write_failed": from_write},
        "unexplained_duplicates": duplicates - explained,
        "poison_without_reason": poison_without_reason,
        "accepted_but_recorded_as": dict(misrecorded),
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.chaos`: run the scenarios, write their JSON, exit 1 if an invariant fails.

    `faults` (this module: bench/chaos.json) and `ses-outage` (bench.outage: bench/chaos_outage.json).
    """
    parser = argparse.ArgumentParser(description="fault-injection runs of the send worker")
    parser.add_argument("--scenario", choices=("all", "faults", "ses-outage"), default="all")
    parser.add_argument("--requests", type=int, default=ChaosSettings.requests)
    parser.add_argument("--seed", type=int, default=ChaosSettings.seed)
    parser.add_argument("--outage-requests", type=int, default=None, help="requests of the SES-outage scenario")
    args = parser.parse_args(argv)
    ok = True
    if args.scenario in ("all", "faults"):
        ok = _faults(args.requests, args.seed) and ok
    if args.scenario in ("all", "ses-outage"):
        from bench import outage

        extra = ["--requests", str(args.outage_requests)] if args.outage_requests else []
        ok = outage.main(["--seed", str(args.seed), *extra]) == 0 and ok
    return 0 if ok else 1


def _faults(requests: int, seed: int) -> bool:
    """The fault-injection scenario: run it, write bench/chaos.json, print its invariants."""
    result = run(ChaosSettings(requests=requests, seed=seed))
    RESULT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    keys = (
        "published",
        "lost",
        "sent_to_suppressed",
        "sent_to_opted_out",
        "duplicate_sends",
        "crash_window_duplicates",
        "poison_without_reason",
        "in_dlq",
        "seconds",
    )
    print(json.dumps({k: result[k] for k in keys} | {"invariants_hold": result["invariants_hold"]}, indent=2))
    print(f"wrote {RESULT.relative_to(REPO)}")
    return bool(result["invariants_hold"])


if __name__ == "__main__":
    sys.exit(main())
