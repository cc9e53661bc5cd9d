"""The local stack's event source mappings behind the part of the Lambda API that reads and switches them.

Deployed, a lane is paused by disabling its worker's event source mapping
(`mailwright lanes pause`, and the reputation breaker for bulk). Locally each
mapping is an `EventSourceEmulator` in the stack's process; this small
server on loopback answers the three Lambda calls that code makes, so the
CLI in another process and the breaker use their deployed code unchanged,
pointed here instead of at Lambda:

    GET /2015-03-31/event-source-mappings/?FunctionName=F   ListEventSourceMappings
    GET /2015-03-31/event-source-mappings/UUID              GetEventSourceMapping
    PUT /2015-03-31/event-source-mappings/UUID              UpdateEventSourceMapping (Enabled only)

    server, url = start(emulators, region="us-east-1")
    boto3.client("lambda", endpoint_url=url, ...).update_event_source_mapping(UUID=uuid, Enabled=False)

`local.json` records the URL as `lambda_endpoint_url`. moto's own Lambda
mappings are not used: while one is enabled on a queue, every message sent
there is received by moto and handed to the function (in Docker).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from mailwright_tools.local.event_source import EventSourceEmulator

API_PREFIX = "/2015-03-31/event-source-mappings/"
# moto's default account: the queue ARNs of the local stack carry it too.
LOCAL_ACCOUNT = "123456789012"
MAX_BODY_BYTES = 16 * 1024


def function_arn(name: str, region: str) -> str:
    """The ARN a deployed function of this name would have in the local account."""
    return f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT}:function:{name}"


def describe_mapping(emulator: EventSourceEmulator, region: str) -> dict[str, Any]:
    """The mapping as GetEventSourceMapping describes it."""
    settings = emulator.settings
    return {
        "UUID": emulator.uuid,
        "EventSourceArn": emulator.queue_arn,
        "FunctionArn": function_arn(emulator.name, region),
        "State": emulator.state,
        "StateTransitionReason": "USER_INITIATED",
        "LastModified": emulator.last_modified,
        "BatchSize": settings.batch_size,
        "MaximumBatchingWindowInSeconds": int(settings.batching_window_seconds),
        "ScalingConfig": {"MaximumConcurrency": settings.max_concurrency},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }


def _names_function(wanted: str, emulator: EventSourceEmulator) -> bool:
    # Lambda takes a function's name, its ARN or a partial ARN (`123456789012:function:name`).
    return wanted.rsplit(":", 1)[-1] == emulator.name if ":" in wanted else wanted == emulator.name


class LaneApiError(Exception):
    """An API error: its HTTP status and Lambda's error type."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


class _Handler(BaseHTTPRequestHandler):
    server: _LaneApiServer
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, payload: dict[str, Any], error_type: str | None = None) -> None:
        body = json.dumps(payload, default=str).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise LaneApiError(413, "RequestTooLargeException", "request body too large")
            body = self.rfile.read(length) if length else b""
            status, payload = self.server.route(self.command, self.path, body)
        except LaneApiError as exc:
            self._answer(exc.status, {"Type": "User", "message": str(exc)}, exc.error_type)
            return
        self._answer(status, payload)

    do_GET = do_PUT = do_POST = do_DELETE = _serve  # noqa: N815 - http.server dispatches on these names

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the stack's terminal shows what the workers do, not API calls."""


class _LaneApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulators: Mapping[str, EventSourceEmulator], region: str) -> None:
        super().__init__(address, _Handler)
        self.emulators = dict(emulators)
        self.region = region

    def _by_uuid(self, uuid: str) -> EventSourceEmulator:
        for emulator in self.emulators.values():
            if emulator.uuid == uuid:
                return emulator
        raise LaneApiError(404, "ResourceNotFoundException", f"The resource you requested does not exist: {uuid}")

    def route(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one call: (HTTP status, JSON payload); LaneApiError for Lambda's errors."""
        url = urlsplit(path)
        if not f"{url.path}/".startswith(API_PREFIX):
            raise LaneApiError(404, "UnknownOperationException", f"the local stack serves only {API_PREFIX}")
        uuid = unquote(url.path[len(API_PREFIX) :]).strip("/")
        if not uuid and method == "GET":
            query = parse_qs(url.query)
            wanted = query.get("FunctionName", [""])[0]
            source = query.get("EventSourceArn", [""])[0]
            mappings = [
                describe_mapping(emulator, self.region)
                for emulator in self.emulators.values()
                if (not wanted or _names_function(wanted, emulator)) and (not source or source == emulator.queue_arn)
            ]
            return 200, {"EventSourceMappings": mappings}
        if uuid and method == "GET":
            return 200, describe_mapping(self._by_uuid(uuid), self.region)
        if uuid and method == "PUT":
            emulator = self._by_uuid(uuid)
            try:
                changes = json.loads(body or b"{}")
            except ValueError:
                raise LaneApiError(400, "InvalidRequestContentException", "the body is not JSON") from None
            if not isinstance(changes, dict) or not isinstance(changes.get("Enabled"), bool):
                raise LaneApiError(400, "InvalidParameterValueException", "Enabled (true or false) is required")
            others = sorted(set(changes) - {"Enabled", "FunctionName"})
            if others:
                raise LaneApiError(
                    400, "InvalidParameterValueException", f"the local stack changes only Enabled, not {others}"
                )
            emulator.set_enabled(changes["Enabled"])
            return 202, describe_mapping(emulator, self.region)
        raise LaneApiError(405, "UnknownOperationException", f"{method} {url.path} is not served locally")


def start(
    emulators: Mapping[str, EventSourceEmulator], *, region: str, host: str = "127.0.0.1", port: int = 0
) -> tuple[ThreadingHTTPServer, str]:
    """Serve the mappings on a background thread; the server (shut it down when done) and its endpoint URL."""
    server = _LaneApiServer((host, port), emulators, region)
    threading.Thread(target=server.serve_forever, name="lane-api", daemon=True).start()
    bound_host, bound_port = server.server_address[:2]
    return server, f"http://{bound_host!s}:{bound_port}"
