"""The producers' API under load on loopback: latency of POST /v1/messages, and no accepted request lost.

python -m bench.api                       # 2,000 single-request POSTs from 4 threads (keep-alive connections)
python -m bench.api --requests 400        # shorter

The server is the local stack's producers' API: the loopback server with its
usage-plan gate (API key check, token bucket, quota) in front of the API
function's handler, which finds the key's producer (DynamoDB), validates the
request, takes its template's priority from the templates bucket (S3, cached)
and puts it on its lane queue with SendMessageBatch. DynamoDB, S3 and API
Gateway are moto in this process. The lane queues are an in-memory SQS with
the benches' per-call latency (IO_LATENCY_SECONDS), because moto's SQS grows
slower with every message a queue holds (it scans them on each call) and
would measure the emulator's backlog rather than the API. The clients run in
a process of their own. Every accepted request id must be on a queue exactly
once afterwards. Half the requests name their priority, half take their
template's.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import multiprocessing
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import boto3
from moto import mock_aws

from bench.common import IO_LATENCY_SECONDS, REPO, Latent, config, machine, quiet_logs
from infra.config import ProducerPlanConfig, api_environment, submission_environment
from mailwright.adapters.producers import DynamoProducerDirectory
from mailwright.adapters.s3 import S3TemplateSource
from mailwright.request import parse_request
from mailwright.sdk import Publisher
from mailwright.settings import ApiSettings, SubmissionSettings
from mailwright.submission import SubmissionService, TemplateLanes
from mailwright.wiring import SUBMIT_ATTEMPTS, SUBMIT_RETRY_PAUSE_SECONDS, build_api_services
from mailwright_tools.local import api_server
from mailwright_tools.local.usage_plans import UsagePlanGate
from mailwright_tools.producers import ProducerAdmin, ProducerTarget
from mailwright_tools.provision import provision
from mailwright_tools.provision_producers import provision_producers

PRODUCER = "bench"
# Far above the load: the bench measures the API, not its throttle.
PLAN = ProducerPlanConfig(rate_limit=10000.0, burst_limit=5000, quota_per_day=None)
TARGET_P99_MS = 100.0


class MemorySqs:
    """SendMessageBatch into in-memory queues (thread-safe): what the API sends, kept to be counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bodies: dict[str, list[str]] = {}

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        """Take every entry, as SQS does when nothing goes wrong."""
        with self._lock:
            self.bodies.setdefault(QueueUrl, []).extend(entry["MessageBody"] for entry in Entries)
        return {"Successful": [{"Id": e["Id"], "MessageId": str(uuid.uuid4())} for e in Entries], "Failed": []}


def _request(n: int) -> dict[str, Any]:
    request: dict[str, Any] = {
        "recipient_email": f"user{n}@example.com",
        "template_id": "password_reset",
        "template_data": {"user_name": f"User {n}", "reset_link": "https://example.com/r", "expires_in_minutes": 30},
        "idempotency_key": f"bench-api-{n}",
    }
    if n % 2:
        request["priority"] = "critical"
    return request


def _client(base_url: str, key: str, numbers: list[int], latencies: list[float], accepted: list[str]) -> None:
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    headers = {"Content-Type": "application/json", "x-api-key": key}
    try:
        for n in numbers:
            body = json.dumps(_request(n))
            started = time.perf_counter()
            connection.request("POST", "/v1/messages", body=body, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            latencies.append(time.perf_counter() - started)
            if answer.status != 202:
                raise RuntimeError(f"request {n}: HTTP {answer.status}: {payload[:200]!r}")
            accepted += [item["request_id"] for item in json.loads(payload)["accepted"]]
    finally:
        connection.close()


def _load(base_url: str, key: str, requests: int, threads: int) -> tuple[list[float], list[str]]:
    """The clients: `threads` keep-alive connections sharing `requests` POSTs; latencies (s) and accepted ids."""
    latencies: list[float] = []
    accepted: list[str] = []
    shares = [list(range(i, requests, threads)) for i in range(threads)]
    workers = [threading.Thread(target=_client, args=(base_url, key, share, latencies, accepted)) for share in shares]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, accepted


def measure(*, requests: int = 2000, threads: int = 4, progress: Any = print) -> dict[str, Any]:
    """Latency percentiles of single-request POSTs and the lost/duplicated count, against the loopback API."""
    settings = config()
    queues = MemorySqs()
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        resources = provision(settings, templates_dir=REPO / "templates", session=session)
        producers = provision_producers({PRODUCER: PLAN}, stack_name=settings.stack_name, session=session)
        environment = {
            **api_environment(
                messages_table=resources.messages_table,
                address_key_secret_arn=resources.address_key_secret_arn,
                suppression_table=resources.suppression_table,
            ),
            **submission_environment(
                lane_queue_urls=resources.queues,
                templates_bucket=resources.templates_bucket,
                producers_table=producers.table,
                template_cache_seconds=settings.template_cache_seconds,
            ),
        }
        services = build_api_services(
            ApiSettings.from_env(environment), SubmissionSettings.from_env(environment), session=session
        )
        publisher = Publisher(
            queue_urls=resources.queues,
            sqs_client=Latent(queues, IO_LATENCY_SECONDS),
            priority_of=TemplateLanes(
                S3TemplateSource(
                    session.client("s3"), resources.templates_bucket, cache_seconds=settings.template_cache_seconds
                )
            ),
            attempts=SUBMIT_ATTEMPTS,
            retry_pause=SUBMIT_RETRY_PAUSE_SECONDS,
        )
        services = dataclasses.replace(services, submissions=SubmissionService(publisher))
        gate = UsagePlanGate(
            session.client("apigateway"),
            plan_ids=list(producers.plans.values()),
            directory=DynamoProducerDirectory(session.client("dynamodb"), producers.table, cache_seconds=1.0),
        )
        server, base_url = api_server.start(services, gate=gate)
        try:
            admin = ProducerAdmin(
                ProducerTarget(
                    stack_name=settings.stack_name,
                    plans=producers.plans,
                    table=producers.table,
                    retirement_role_arn=producers.retirement_role_arn,
                ),
                apigateway=session.client("apigateway"),
                dynamodb=session.client("dynamodb"),
                scheduler=session.client("scheduler"),
            )
            key = admin.add(PRODUCER).value
            warm: list[str] = []
            with quiet_logs():
                # Warm up: the first requests read the template bundle and the key's producer.
                _client(base_url, key, [-1, -2], [], warm)
                # The clients run in a process of their own, as callers would: they do not share the server's GIL.
                with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as clients:
                    clients.submit(int, 0).result()  # started before the clock
                    started, cpu_started = time.perf_counter(), time.process_time()
                    latencies, accepted = clients.submit(_load, base_url, key, requests, threads).result()
                    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        finally:
            server.shutdown()
            server.server_close()
    on_queues = Counter(parse_request(body).request_id for bodies in queues.bodies.values() for body in bodies)
    ms = sorted(latency * 1000 for latency in latencies)
    quantiles = statistics.quantiles(ms, n=100, method="inclusive")
    expected = set(accepted) | set(warm)
    result = {
        "requests": requests,
        "threads": threads,
        "answered": len(ms),
        "accepted": len(accepted),
        "seconds": round(elapsed, 2),
        "requests_per_second": round(len(ms) / elapsed, 1),
        "p50_ms": round(quantiles[49], 2),
        "p95_ms": round(quantiles[94], 2),
        "p99_ms": round(quantiles[98], 2),
        "max_ms": round(ms[-1], 2),
        # The server process's CPU per request (the clients run in another process).
        "cpu_ms_per_request": round(cpu * 1000 / len(ms), 2),
        "sqs_latency_ms": IO_LATENCY_SECONDS * 1000,
        "target_p99_ms": TARGET_P99_MS,
        # Accepted but on no queue, on a queue more than once, and on a queue but never accepted.
        "lost": len(expected - set(on_queues)),
        "duplicated": sum(1 for count in on_queues.values() if count > 1),
        "unexpected": len(set(on_queues) - expected),
    }
    progress(
        f"  api: {result['answered']} POSTs from {threads} threads in {result['seconds']} s "
        f"({result['requests_per_second']}/s): p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
        f"p99 {result['p99_ms']} ms; lost {result['lost']}, duplicated {result['duplicated']}"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the API bench alone and print its results as JSON; 1 if p99 misses the target or a request was lost."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    result = measure(requests=args.requests, threads=args.threads)
    print(json.dumps({"machine": machine(), "api": result}, indent=2))
    ok = result["p99_ms"] < TARGET_P99_MS and result["lost"] == result["duplicated"] == result["unexpected"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
