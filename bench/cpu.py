"""CPU cost per email in the worker: the domain on zero-latency fakes, and the whole worker with boto3.

The second figure runs the real adapters (botocore serialisation, request
signing, response parsing) against canned responses handed back from a
`before-send` hook, so no network, no moto and no waiting is measured: only
the CPU the worker itself spends.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.awsrequest import AWSResponse

from bench.common import MIX, SAMPLES, config, lane_environment, median, mixed_requests
from infra.config import MAX_SEND_CONCURRENCY
from mailwright.constants import ADDRESS_KEY_MARKER
from mailwright.pacing import Pacer
from mailwright.request import parse_request
from mailwright.sending import SendService
from mailwright.settings import RateLimit, WorkerSettings
from mailwright.templates import Renderer, TemplateBundle
from mailwright.tokens import TokenSigner
from mailwright.wiring import build_send_service
from mailwright_tools.fakes import (
    DEFAULT_SIGNING_KEY,
    FAKE_HASHER,
    FakeTemplateSource,
    build_fake_service,
    queue_record,
)

TEMPLATES = FakeTemplateSource.from_directory()
BATCH = 10


def _cpu(fn: Callable[[], Any], repeat: int) -> float:
    """CPU seconds per call of `fn`, over `repeat` calls."""
    start = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - start) / repeat


def _batches(bodies: list[str]) -> list[list[Any]]:
    return [
        [queue_record(b, message_id=f"m{i + j}") for j, b in enumerate(bodies[i : i + BATCH])]
        for i in range(0, len(bodies), BATCH)
    ]


def domain_cpu(emails: int = 3000) -> dict[str, Any]:
    """CPU per email of SendService.process on fakes that answer at once (thread pool as deployed)."""
    cfg = config()
    service, world = build_fake_service(
        lane="standard",
        templates=TEMPLATES,
        rate_limits={k: RateLimit(v.limit, v.window_seconds) for k, v in cfg.rate_limits.items()},
        pacer=Pacer(1e9, burst=1e9),
        max_workers=min(cfg.lanes["standard"].batch_size, MAX_SEND_CONCURRENCY),
    )
    try:
        warm = _batches(mixed_requests(200, start=10_000_000))
        for batch in warm:
            service.process(batch)
        samples = []
        for round_ in range(3):
            batches = _batches(mixed_requests(emails, start=round_ * 1_000_000))
            start = time.process_time()
            for batch in batches:
                service.process(batch)
            samples.append((time.process_time() - start) / emails)
        sent = len(world.sender.sent)
    finally:
        world.close()
    return {"us_per_email": round(median(samples) * 1e6), "samples_us": [round(s * 1e6) for s in samples], "sent": sent}


def stage_cpu(repeat: int = 2000) -> dict[str, Any]:
    """CPU per call of the pipeline's CPU-heavy steps, weighted by the request mix."""
    renderer = Renderer()
    signer = TokenSigner(DEFAULT_SIGNING_KEY)
    parse_us = render_us = 0.0
    for template_id, weight in MIX:
        body = json.dumps(
            {
                "recipient_email": "jane@example.com",
                "template_id": template_id,
                "template_data": SAMPLES[template_id],
                "idempotency_key": "k",
            }
        )
        request = parse_request(body)
        bundle: TemplateBundle = TEMPLATES.get(template_id)
        provided = {"recipient_email": request.recipient_email, "postal_address": "x"}
        if not bundle.metadata.essential:
            provided.update(signer.links("https://example.com/u", "user-1", bundle.metadata.category))

        def parse(body: str = body) -> Any:
            request = parse_request(body)
            return request.request_id, request.content_hash, FAKE_HASHER.address_hashes(request.recipient_email)

        def render(bundle: TemplateBundle = bundle, request: Any = request, provided: Any = provided) -> Any:
            return renderer.render(bundle, locale=None, data=request.template_data, provided=provided)

        render()  # compile once; the worker caches compiled templates
        parse_us += weight * _cpu(parse, repeat) * 1e6
        render_us += weight * _cpu(render, repeat) * 1e6
    marketing = sum(w for name, w in MIX if not TEMPLATES.get(name).metadata.essential)
    links_us = marketing * _cpu(lambda: signer.links("https://example.com/u", "user-1", "marketing"), repeat) * 1e6
    return {
        "parse_validate_ids_us": round(parse_us),
        "render_us": round(render_us),
        "unsubscribe_links_us": round(links_us),
    }


# -- the whole worker with boto3, against canned responses ---------------------------


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Any:
        contents = self.read()
        while contents:
            yield contents
            contents = self.read()


class CannedAws:
    """A `before-send` hook answering every call the worker makes with a minimal valid response."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self._bundles = {
            f"templates/{b.template_id}.json": b.to_json().encode() for b in (TEMPLATES.get(t) for t, _ in MIX)
        }

    def __call__(self, request: Any, event_name: str = "", **_: Any) -> AWSResponse:
        operation = ".".join(event_name.split(".")[-2:])
        self.calls[operation] = self.calls.get(operation, 0) + 1
        headers = {"x-amzn-RequestId": "bench", "Content-Type": "application/x-amz-json-1.0"}
        body: Any
        if operation == "dynamodb.BatchGetItem":
            tables = json.loads(request.body)["RequestItems"]
            body = {"Responses": {table: [] for table in tables}, "UnprocessedKeys": {}}
        elif operation == "dynamodb.BatchWriteItem":
            body = {"UnprocessedItems": {}}
        elif operation == "dynamodb.GetItem" and ADDRESS_KEY_MARKER in request.body.decode():
            # A stack whose stored hashes all use the current key version (as provisioned, or migrated).
            body = {"Item": {"readable_from": {"N": "1"}}}
        elif operation.startswith("dynamodb."):
            body = {}
        elif operation == "sesv2.SendEmail":
            body = {"MessageId": uuid.uuid4().hex}
            headers["Content-Type"] = "application/json"
        elif operation == "sqs.ChangeMessageVisibilityBatch":
            body = {"Successful": [], "Failed": []}
        elif operation.endswith(".GetSecretValue"):
            secret_id = json.loads(request.body)["SecretId"]
            # The address keyring is JSON (a version and its key); the unsubscribe key is a plain string.
            value = json.dumps({"current": "1", "1": "k" * 48}) if "address" in secret_id else "k" * 48
            body = {"ARN": "arn:secret", "Name": "key", "SecretString": value}
        elif operation == "s3.GetObject":
            path = urlsplit(request.url).path.lstrip("/")
            data = next(body for key, body in self._bundles.items() if path.endswith(key))
            headers = {"ETag": '"etag"', "x-amz-version-id": "v1", "Content-Length": str(len(data))}
            return AWSResponse(request.url, 200, headers, _Raw(data))
        else:
            raise AssertionError(f"no canned response for {operation}")
        return AWSResponse(request.url, 200, headers, _Raw(json.dumps(body).encode()))


def canned_service(lane: str = "standard") -> tuple[SendService, CannedAws]:
    """The worker's SendService built by `build_send_service`, its clients answered by `CannedAws`."""
    env = lane_environment(lane, queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/bench", prefix="bench")
    settings = WorkerSettings.from_env(env)
    canned = CannedAws()
    fake_key = "bench"
    session = boto3.session.Session(aws_access_key_id=fake_key, aws_secret_access_key=fake_key, region_name="us-east-1")
    session.events.register("before-send", canned)
    service = build_send_service(settings, session=session)
    # Pacing is measured elsewhere; here it would only add sleeps.
    service._pacer = Pacer(1e9, burst=1e9)
    return service, canned


def worker_cpu(emails: int = 2000) -> dict[str, Any]:
    """CPU per email of the deployed wiring (boto3 clients and adapters), canned responses, no I/O wait."""
    service, canned = canned_service()
    executor = service._executor
    try:
        for batch in _batches(mixed_requests(200, start=20_000_000)):
            service.process(batch)
        samples = []
        for round_ in range(3):
            batches = _batches(mixed_requests(emails, start=30_000_000 + round_ * 1_000_000))
            start = time.process_time()
            for batch in batches:
                service.process(batch)
            samples.append((time.process_time() - start) / emails)
    finally:
        if isinstance(executor, ThreadPoolExecutor):
            executor.shutdown()
    return {
        "us_per_email": round(median(samples) * 1e6),
        "samples_us": [round(s * 1e6) for s in samples],
        "calls": dict(sorted(canned.calls.items())),
    }


def measure(progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Both CPU figures and the per-step breakdown."""
    domain = domain_cpu(2000)
    progress(f"  cpu: domain {domain['us_per_email']} us/email")
    stages = stage_cpu()
    worker = worker_cpu()
    progress(f"  cpu: worker with boto3 {worker['us_per_email']} us/email")
    return {"domain": domain, "stages": stages, "with_boto3": worker, "us_per_email": worker["us_per_email"]}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
