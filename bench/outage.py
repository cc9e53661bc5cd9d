"""The SES-outage scenario of `make chaos`: SES fails for a minute in the middle of the traffic, a relay takes over.

Requests of every lane are published at a steady rate; in the middle of the
run SES fails every call for `outage_seconds` (HTTP 503 at the botocore edge,
through the local stack's own switch, `mailwright_tools.local.ses_outage`).
The stack is moto in-process, provisioned as the local stack provisions it;
each lane's event source is the local stack's emulator; each emulated
container runs the worker's handler body on a service from
`build_send_service`, configured from `providers`/`failover` context values as
deployed, with a real SMTP relay (aiosmtpd) on loopback as the secondary.

As the outage begins, SES first degrades: the next few calls are accepted by
SES but their answer is lost (a read timeout after the request went out),
then every call fails. Those lost answers are the crash window of a switch:
their requests must wait for SES rather than go to the relay.

Invariants (`invariants_hold`):

* 0 lost: every request ends recorded `sent` (none in a DLQ);
* critical and standard mail is sent through the relay during the outage;
* bulk is never sent by the relay, waits, and is sent by SES after it returns;
* no request is sent by both providers outside the crash window (and the only
  duplicates are SES re-sending the lost answers it had accepted: counted).

Measured: publish-to-send latency (p50/p99) per lane for requests published
during the outage, and per lane the breaker's times: first SES failure to open,
SES's return to closed (`bench.run` reports these as the failover section).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import boto3
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from botocore.exceptions import ReadTimeoutError

from bench.chaos import _depth, _dlq_ids, _NoLongPoll, _scan_log, chaos_config, request_id_of
from bench.common import REPO, percentile, request
from bench.moto_stack import MotoStack, moto_stack
from infra.config import LaneFailoverConfig, MailwrightConfig, parse_providers
from mailwright.adapters.provider_breaker import DynamoProviderBreakerStore
from mailwright.constants import LANES, PROVIDER_SES
from mailwright.handlers import send_worker
from mailwright.observability import ProviderMetrics
from mailwright.sending import SendService
from mailwright.settings import WorkerSettings
from mailwright.wiring import build_send_service
from mailwright_tools.local.event_source import EventSourceEmulator, EventSourceSettings
from mailwright_tools.local.observability import WorkerOutput
from mailwright_tools.local.relay import free_port
from mailwright_tools.local.ses_outage import SesOutage

RESULT = REPO / "bench" / "chaos_outage.json"
RELAY = "relay"
TEMPLATE_OF = {"critical": "password_reset", "standard": "order_confirmation", "bulk": "newsletter"}
LANE_SHARE = {"critical": 0.15, "standard": 0.45, "bulk": 0.40}


@dataclass(frozen=True)
class OutageSettings:
    """The traffic, the outage, and the breaker's thresholds (cdk.json's defaults unless told)."""

    requests: int = 1470
    seed: int = 1
    # Requests are published at a steady rate over this long: traffic goes on for more than a cooldown
    # after SES returns (a breaker closes on the next email), and `make chaos` keeps within 10 minutes.
    publish_seconds: float = 110.0
    outage_at: float = 30.0  # seconds after the first publish
    outage_seconds: float = 40.0
    lost_answers: int = 3  # SES calls at the outage's onset that SES accepts but whose answer is lost
    degrade_seconds: float = 2.0  # at most this long losing answers before SES fails outright
    failure_threshold: int = 5
    window_seconds: int = 30
    cooldown_seconds: int = 30
    relay_send_rate: float = 120.0  # the relay's max_send_rate, split among the workers failing over to it
    ses_rate: float = 100.0
    timeout_seconds: int = 10
    max_backoff_seconds: int = 60
    drain_timeout: float = 420.0
    report_every: float = 15.0


class RecordingRelay:
    """An SMTP relay on loopback that records when it took each request (by its X-Mailwright-Request-Id)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.accepts: list[tuple[str, str, float]] = []  # (request id, lane, when)
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, timeout=60)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook
        message = message_from_bytes(envelope.original_content or b"", policy=policy.SMTP)
        with self._lock:
            self.accepts.append(
                (str(message["X-Mailwright-Request-Id"]), str(message["X-Mailwright-Lane"]), time.time())
            )
        return "250 2.0.0 queued"


@dataclass
class Ledger:
    """What SES accepted and when, the outage's times, and the lost answers injected."""

    outage: SesOutage
    ses_accepts: list[tuple[str, str, float]] = field(default_factory=list)  # (request id, lane, when)
    first_failure: dict[str, float] = field(default_factory=dict)  # lane -> first SES call failed by the outage
    lost: list[str] = field(default_factory=list)  # request ids whose accepted send's answer was lost
    down_at: float | None = None
    up_at: float | None = None
    # While degrading, this many more accepted sends lose their answer; then SES goes down.
    degrading: bool = False
    lost_budget: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Container:
    """One emulated Lambda container: its boto3 session (outage switch, accept recorder) and its send service."""

    def __init__(self, stack: MotoStack, lane: str, ledger: Ledger, output: WorkerOutput, max_backoff: int) -> None:
        self.lane, self.ledger, self.output = lane, ledger, output
        self._local = threading.local()
        session = stack.session(observe=[self._observe], after_call=[self._after_call])
        # Registered first, so it runs first: it notes a lane's first failed call, then the switch fails it.
        ledger.outage.install(session)
        session.events.register_first("before-send.sesv2", self._before_send)
        settings = WorkerSettings.from_env(stack.environment(lane, max_backoff=max_backoff))
        self.service = build_send_service(
            settings, session=session, provider_events=ProviderMetrics(sink=output.metrics.write_document)
        )

    def _observe(self, operation: str, params: dict[str, Any]) -> None:
        if operation == "sesv2.SendEmail":
            self._local.params = params

    def _before_send(self, **_: Any) -> None:
        ledger = self.ledger
        if ledger.outage.status().state == "down":
            with ledger.lock:
                ledger.first_failure.setdefault(self.lane, time.time())

    def _after_call(self, http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        if model.name != "SendEmail" or getattr(http_response, "status_code", 200) >= 300:
            return
        params = getattr(self._local, "params", None) or {}
        tags = {t["Name"]: t["Value"] for t in params.get("EmailTags", [])}
        request_id = tags.get("request_id", "")
        ledger = self.ledger
        with ledger.lock:
            ledger.ses_accepts.append((request_id, self.lane, time.time()))
            lose = ledger.degrading and ledger.lost_budget > 0
            if lose:
                ledger.lost_budget -= 1
                ledger.lost.append(request_id)
        if lose:
            # SES took it, the worker never hears so: the answer is lost on the way back.
            raise ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com")

    def invoke(self, event: dict[str, Any], context: Any) -> Any:
        """The worker's handler body, as the local stack runs it."""
        try:
            return send_worker.handle_batch(self.service, SQSEvent(event), context)
        finally:
            self.output.metrics.flush()


def outage_config(settings: OutageSettings, *, relay_port: int, secret_arn: str) -> MailwrightConfig:
    """cdk.json's lanes (short timeouts, as `make chaos` runs them), the relay as the secondary, default failover."""
    base = chaos_config_for(settings)
    providers = parse_providers(
        [
            {
                "name": RELAY,
                "kind": "smtp",
                "secret": secret_arn,
                "max_send_rate": settings.relay_send_rate,
                "settings": {"host": "127.0.0.1", "port": relay_port, "tls": "none", "timeout_seconds": 5},
            }
        ]
    )
    failover = {
        lane: replace(
            LaneFailoverConfig(enabled=base.failover[lane].enabled),
            failure_threshold=settings.failure_threshold,
            window_seconds=settings.window_seconds,
            cooldown_seconds=settings.cooldown_seconds,
        )
        for lane in LANES
    }
    return replace(base, providers=providers, failover=failover, ses_max_send_rate=settings.ses_rate)


def chaos_config_for(settings: OutageSettings) -> MailwrightConfig:
    """`make chaos`'s lanes with this scenario's function timeout."""
    from bench.chaos import ChaosSettings

    return chaos_config(ChaosSettings(timeout_seconds=settings.timeout_seconds))


def _bodies(settings: OutageSettings) -> list[tuple[str, str]]:
    """(lane, body) for every request, in publishing order; each to its own user (no rate limit in the way)."""
    rng = random.Random(settings.seed)
    lanes = list(LANE_SHARE)
    weights = [LANE_SHARE[lane] for lane in lanes]
    bodies = []
    for n in range(settings.requests):
        lane = rng.choices(lanes, weights)[0]
        body = request(TEMPLATE_OF[lane], n, user=f"u{n}", idempotency_key=f"outage-{settings.seed}-{n}")
        bodies.append((lane, json.dumps(body)))
    return bodies


def _breaker_times(store: DynamoProviderBreakerStore, ledger: Ledger) -> dict[str, dict[str, float | None]]:
    """Per lane: first SES failure -> breaker open, and SES's return -> closed, from the breaker's history."""
    times: dict[str, dict[str, float | None]] = {}
    for lane in LANES:
        history = store.history(lane, PROVIDER_SES)
        opened = next((c.at for c in history if c.after == "open" and c.before == "closed"), None)
        closed = next(
            (c.at for c in history if c.after == "closed" and ledger.up_at is not None and c.at >= ledger.up_at), None
        )
        first = ledger.first_failure.get(lane)
        times[lane] = {
            "first_failure_to_open_s": round(opened - first, 3) if opened is not None and first is not None else None,
            "return_to_closed_s": round(closed - ledger.up_at, 3)
            if closed is not None and ledger.up_at is not None
            else None,
            "changes": len(history),  # type: ignore[dict-item]
        }
    return times


def run(settings: OutageSettings, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Publish, take SES down in the middle, bring it back, drain, check the invariants."""
    bodies = _bodies(settings)
    relay = RecordingRelay()
    relay.controller.start()
    ledger = Ledger(outage=SesOutage(), lost_budget=settings.lost_answers)
    published_at: dict[str, float] = {}
    started = time.monotonic()
    try:
        with moto_stack(chaos_config_for(settings)) as base, tempfile.TemporaryDirectory() as logs:
            secret_arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
                Name="mailwright/providers/relay", SecretString="{}"
            )["ARN"]
            cfg = outage_config(settings, relay_port=relay.port, secret_arn=secret_arn)
            stack = MotoStack(config=cfg, resources=replace(base.resources, provider_secrets={RELAY: secret_arn}))
            sqs = boto3.client("sqs", region_name="us-east-1")
            output = WorkerOutput(Path(logs), handler_modules=[send_worker])
            services: list[SendService] = []
            emulators = {
                lane: EventSourceEmulator(
                    name=f"outage-{lane}",
                    sqs=_NoLongPoll(boto3.client("sqs", region_name="us-east-1")),
                    queue_url=stack.resources.queues[lane],
                    settings=EventSourceSettings(
                        batch_size=cfg.lanes[lane].batch_size,
                        batching_window_seconds=cfg.lanes[lane].batching_window_seconds,
                        max_concurrency=cfg.lanes[lane].max_concurrency,
                        timeout_seconds=cfg.lanes[lane].timeout_seconds,
                    ),
                    handler_factory=_factory(stack, lane, ledger, output, settings.max_backoff_seconds, services),
                )
                for lane in LANES
            }
            drained = False
            try:
                for emulator in emulators.values():
                    emulator.start()
                drained = _drive(settings, stack, sqs, emulators, bodies, ledger, published_at, relay, progress)
            finally:
                for emulator in emulators.values():
                    emulator.stop()
                for service in services:
                    service.close()  # the relay connections
                output.restore()
            logged = _scan_log(stack)
            dlq = _dlq_ids(stack)
            dynamodb = boto3.client("dynamodb", region_name="us-east-1")
            store = DynamoProviderBreakerStore(dynamodb, stack.resources.idempotency_table)
            breakers = _breaker_times(store, ledger)
    finally:
        relay.controller.stop()
    result = check(settings, bodies, ledger, relay, logged, dlq, published_at)
    result.update(
        {
            "drained": drained,
            "seconds": round(time.monotonic() - started, 1),
            "settings": vars(settings),
            "breakers": breakers,
        }
    )
    result["invariants_hold"] = bool(
        drained
        and result["lost"] == 0
        and result["in_dlq"] == 0
        and all(result["sent_by_relay_during_outage"][lane] > 0 for lane in ("critical", "standard"))
        and result["bulk_sent_by_relay"] == 0
        and result["bulk_published_during_outage_sent_by_ses_after"] == result["bulk_published_during_outage"]
        and result["sent_by_both_outside_crash_window"] == 0
        and result["duplicate_sends"] == result["crash_window_duplicates"]
    )
    return result


def _factory(
    stack: MotoStack, lane: str, ledger: Ledger, output: WorkerOutput, max_backoff: int, services: list[SendService]
) -> Callable[[], Callable[[dict[str, Any], Any], Any]]:
    def cold_start() -> Callable[[dict[str, Any], Any], Any]:
        container = Container(stack, lane, ledger, output, max_backoff)
        services.append(container.service)  # closed at the end: its relay connections
        return container.invoke

    return cold_start


def _drive(
    settings: OutageSettings,
    stack: MotoStack,
    sqs: Any,
    emulators: dict[str, EventSourceEmulator],
    bodies: list[tuple[str, str]],
    ledger: Ledger,
    published_at: dict[str, float],
    relay: RecordingRelay,
    progress: Callable[[str], None],
) -> bool:
    """Publish at the scenario's rate, switch SES down and up on time, and wait for the queues to drain."""
    t0 = time.monotonic()
    interval = settings.publish_seconds / max(1, len(bodies))
    next_index, last_report = 0, 0.0
    deadline = t0 + settings.publish_seconds + settings.drain_timeout
    while time.monotonic() < deadline:
        elapsed = time.monotonic() - t0
        if not ledger.degrading and ledger.down_at is None and elapsed >= settings.outage_at:
            with ledger.lock:
                ledger.degrading = True
        with ledger.lock:
            degraded = ledger.degrading and (
                ledger.lost_budget == 0 or elapsed >= settings.outage_at + settings.degrade_seconds
            )
            if degraded:
                ledger.degrading = False
        if degraded:
            ledger.outage.down("5xx")
            ledger.down_at = time.time()
            progress(f"  outage: SES down at {elapsed:.0f} s ({len(ledger.lost)} answers lost first)")
        if (
            ledger.down_at is not None
            and ledger.up_at is None
            and time.time() - ledger.down_at >= settings.outage_seconds
        ):
            ledger.outage.up()
            ledger.up_at = time.time()
            progress(f"  outage: SES back at {elapsed:.0f} s")
        due = min(len(bodies), int(elapsed / interval) + 1)
        by_lane: dict[str, list[str]] = defaultdict(list)
        for lane, body in bodies[next_index:due]:
            by_lane[lane].append(body)
        for lane, batch in by_lane.items():
            for start in range(0, len(batch), 10):
                chunk = batch[start : start + 10]
                now = time.time()
                sqs.send_message_batch(
                    QueueUrl=stack.resources.queues[lane],
                    Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)],
                )
                for body in chunk:
                    published_at[request_id_of(body)] = now
        next_index = due
        if next_index >= len(bodies) and ledger.up_at is not None:
            depth = sum(_depth(sqs, url)[1] for url in stack.resources.queues.values())
            if not depth and all(e.idle for e in emulators.values()):
                return True
        if time.monotonic() - last_report > settings.report_every:
            last_report = time.monotonic()
            progress(
                f"  outage: {next_index:,}/{len(bodies):,} published, SES accepted {len(ledger.ses_accepts):,}, "
                f"relay {len(relay.accepts):,}, {elapsed:.0f} s"
            )
        time.sleep(min(interval, 0.2))
    return False


def check(
    settings: OutageSettings,
    bodies: list[tuple[str, str]],
    ledger: Ledger,
    relay: RecordingRelay,
    logged: dict[str, dict[str, Any]],
    dlq: set[str],
    published_at: dict[str, float],
) -> dict[str, Any]:
    """The invariants' counters and the latencies during the outage."""
    lane_of = {request_id_of(body): lane for lane, body in bodies}
    down, up = ledger.down_at or 0.0, ledger.up_at or float("inf")
    sends: dict[str, list[tuple[str, float]]] = defaultdict(list)  # request id -> [(provider, when)]
    for request_id, _, when in ledger.ses_accepts:
        sends[request_id].append((PROVIDER_SES, when))
    for request_id, _, when in relay.accepts:
        sends[request_id].append((RELAY, when))
    lost_answers = set(ledger.lost)
    both = [rid for rid, accepted in sends.items() if {p for p, _ in accepted} == {PROVIDER_SES, RELAY}]
    duplicates = sum(len(accepted) - 1 for accepted in sends.values() if len(accepted) > 1)
    crash_window = sum(
        len(accepted) - 1 for rid, accepted in sends.items() if len(accepted) > 1 and rid in lost_answers
    )
    statuses = Counter(str(logged.get(rid, {}).get("status")) for rid in lane_of)
    lost = sorted(rid for rid in lane_of if logged.get(rid, {}).get("status") != "sent" and rid not in dlq)
    during = {rid for rid, at in published_at.items() if down <= at < up}
    latency: dict[str, dict[str, float | int]] = {}
    for lane in LANES:
        values = [
            min(when for _, when in sends[rid]) - published_at[rid]
            for rid in during
            if lane_of.get(rid) == lane and sends.get(rid)
        ]
        latency[lane] = {
            "count": len(values),
            "p50": round(percentile(values, 50), 3) if values else float("nan"),
            "p99": round(percentile(values, 99), 3) if values else float("nan"),
        }
    relay_during = Counter(lane for _, lane, when in relay.accepts if down <= when < up)
    bulk_during = [rid for rid in during if lane_of.get(rid) == "bulk"]
    bulk_after = [
        rid for rid in bulk_during if sends.get(rid) and all(p == PROVIDER_SES and when >= up for p, when in sends[rid])
    ]
    drain_end = max((when for rid in bulk_during for _, when in sends.get(rid, [])), default=None)
    return {
        "published": len(lane_of),
        "outcomes": dict(statuses),
        "lost": len(lost),
        "lost_ids": lost[:20],
        "in_dlq": len(dlq & set(lane_of)),
        "ses_accepts": len(ledger.ses_accepts),
        "relay_accepts": len(relay.accepts),
        "sent_by_relay_during_outage": {lane: relay_during.get(lane, 0) for lane in LANES},
        "bulk_sent_by_relay": sum(1 for _, lane, _ in relay.accepts if lane == "bulk"),
        "bulk_published_during_outage": len(bulk_during),
        "bulk_published_during_outage_sent_by_ses_after": len(bulk_after),
        "bulk_drained_s_after_ses_returned": round(drain_end - up, 1) if drain_end and up != float("inf") else None,
        "published_during_outage": len(during),
        "latency_during_outage_s": latency,
        "lost_answers_injected": len(lost_answers),
        "sent_by_both": len(both),
        "sent_by_both_outside_crash_window": len([rid for rid in both if rid not in lost_answers]),
        "duplicate_sends": duplicates,
        "crash_window_duplicates": crash_window,
        "relay_logged_as": dict(Counter(str(logged.get(rid, {}).get("provider")) for rid, _, _ in relay.accepts)),
    }


def measure(*, quick: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """`make bench`'s failover section: the breaker's times with cdk.json's thresholds, on a shorter outage.

    Opening takes as long as `failure_threshold` failures take to arrive; closing, what is left of the
    cooldown when SES returns (the probe that fails during the outage opens it for another cooldown),
    plus the wait for the next email to probe with.
    """
    settings = (
        OutageSettings(requests=240, publish_seconds=30.0, outage_at=8.0, outage_seconds=10.0, cooldown_seconds=5)
        if quick
        # Traffic goes on for more than a cooldown after SES returns: a breaker closes on the next email.
        else OutageSettings(requests=570, publish_seconds=70.0, outage_at=10.0, outage_seconds=25.0)
    )
    result = run(settings, progress=progress)
    keys = (
        "breakers",
        "latency_during_outage_s",
        "sent_by_relay_during_outage",
        "bulk_drained_s_after_ses_returned",
        "lost",
        "sent_by_both",
        "invariants_hold",
        "seconds",
    )
    measured = {key: result[key] for key in keys}
    measured["settings"] = vars(settings)
    for lane, times in result["breakers"].items():
        progress(
            f"  failover {lane}: opened {times['first_failure_to_open_s']} s after the first SES failure, "
            f"closed {times['return_to_closed_s']} s after SES returned"
        )
    return measured


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.outage [--requests N]`: run, write bench/chaos_outage.json, exit 1 if an invariant fails."""
    parser = argparse.ArgumentParser(description="an SES outage in the middle of the traffic, with a secondary")
    parser.add_argument("--requests", type=int, default=OutageSettings.requests)
    parser.add_argument("--seed", type=int, default=OutageSettings.seed)
    args = parser.parse_args(argv)
    result = run(OutageSettings(requests=args.requests, seed=args.seed))
    RESULT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    keys = (
        "published",
        "lost",
        "in_dlq",
        "sent_by_relay_during_outage",
        "bulk_sent_by_relay",
        "latency_during_outage_s",
        "sent_by_both_outside_crash_window",
        "duplicate_sends",
        "crash_window_duplicates",
        "breakers",
        "seconds",
    )
    print(json.dumps({k: result[k] for k in keys} | {"invariants_hold": result["invariants_hold"]}, indent=2))
    print(f"wrote {RESULT.relative_to(REPO)}")
    return 0 if result["invariants_hold"] else 1


if __name__ == "__main__":
    sys.exit(main())
