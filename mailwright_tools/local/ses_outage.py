"""An SES outage on demand for the local stack: `mailwright local ses down|up|status`.

Every boto3 session the local stack's functions use (`LocalStack.session()`)
carries a `before-send` hook on SES v2. While SES is "down", the hook answers
each HTTP attempt as an outage would, before anything reaches moto:

* `5xx` (default): HTTP 503 ServiceUnavailable, as SES answers when it is degraded;
* `connection`: the connection is refused (botocore's EndpointConnectionError).

botocore's retries, the SES adapter's error classification, the provider
breakers, failover and the probes that close the breakers then run exactly as
they do deployed. Nothing reaches moto while SES is down, so SES accepts no
email then (no email is sent twice by a switch).

The switch lives in the stack's process; this small server on loopback makes it
reachable from another one (the CLI), as the lanes' mappings are
(`mailwright_tools.local.lane_api`). local.json records its URL as `ses_control_url`.

    GET  /ses                                   {"state": "up", ...}
    PUT  /ses  {"state": "down", "mode": "5xx"} {"state": "down", ...}
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import EndpointConnectionError

MODES = ("5xx", "connection")
PATH = "/ses"
MAX_BODY_BYTES = 4096


class _Raw:
    """The raw body botocore reads a response from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return io.BytesIO(self._body).read()


@dataclass(frozen=True)
class SesState:
    """Whether the local SES answers, since when, how, and how many attempts it failed since going down."""

    state: str
    mode: str
    since: float
    failed_attempts: int

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for the API and `--json`."""
        return {
            "state": self.state,
            "mode": self.mode,
            "since": self.since,
            "failed_attempts": self.failed_attempts,
        }


class SesOutage:
    """The switch: `down(mode)` and `up()`; `install(session)` makes a session's SES calls obey it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down = False
        self._mode = MODES[0]
        self._since = time.time()
        self._failed = 0

    def down(self, mode: str = MODES[0]) -> SesState:
        """Make every SES call fail from now on."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        with self._lock:
            if not self._down or mode != self._mode:
                self._down, self._mode, self._since, self._failed = True, mode, time.time(), 0
        return self.status()

    def up(self) -> SesState:
        """Let SES calls through again."""
        with self._lock:
            if self._down:
                self._down, self._since = False, time.time()
        return self.status()

    def status(self) -> SesState:
        """The switch's state now."""
        with self._lock:
            return SesState("down" if self._down else "up", self._mode, self._since, self._failed)

    def install(self, session: Any) -> None:
        """Register the hook on `session` (before any of its clients exists: clients copy their session's hooks).

        First among the `before-send` handlers: moto in-process (`mock_aws`) answers there too, and an
        outage must answer before it does.
        """
        session.events.register_first("before-send.sesv2", self._before_send)

    def _before_send(self, request: Any = None, **_: Any) -> AWSResponse | None:
        with self._lock:
            if not self._down:
                return None
            self._failed += 1
            mode = self._mode
        url = str(getattr(request, "url", "https://email.local"))
        if mode == "connection":
            raise EndpointConnectionError(endpoint_url=url)
        body = json.dumps({"message": "Service Unavailable (local SES is down: `mailwright local ses up`)"}).encode()
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/json"
        headers["x-amzn-ErrorType"] = "ServiceUnavailable"
        return AWSResponse(url, 503, headers, _Raw(body))


class _Handler(BaseHTTPRequestHandler):
    server: _SesServer
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path != PATH:
            self._answer(404, {"message": f"only {PATH} is served"})
            return
        self._answer(200, self.server.outage.status().as_dict())

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.path != PATH or length > MAX_BODY_BYTES:
            self._answer(404 if self.path != PATH else 413, {"message": "bad request"})
            return
        try:
            change = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(change, dict):
                raise ValueError("not an object")
            if change.get("state") == "down":
                state = self.server.outage.down(str(change.get("mode") or MODES[0]))
            elif change.get("state") == "up":
                state = self.server.outage.up()
            else:
                raise ValueError('state must be "down" or "up"')
        except ValueError as exc:
            self._answer(400, {"message": str(exc)})
            return
        self._answer(200, state.as_dict())

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the stack's terminal shows what the workers do, not API calls."""


class _SesServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], outage: SesOutage) -> None:
        super().__init__(address, _Handler)
        self.outage = outage


def start(outage: SesOutage, *, host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Serve the switch on a background thread; the server (shut it down when done) and its URL."""
    server = _SesServer((host, port), outage)
    threading.Thread(target=server.serve_forever, name="ses-switch", daemon=True).start()
    bound_host, bound_port = server.server_address[:2]
    return server, f"http://{bound_host!s}:{bound_port}{PATH}"


class SesSwitchError(Exception):
    """The switch of a running local stack could not be reached, or refused the change."""


def remote(url: str, change: dict[str, str] | None = None, *, timeout: float = 5.0) -> dict[str, Any]:
    """Read (no `change`) or change the switch of the local stack serving `url`; its state after."""
    if not url.startswith("http://127.0.0.1:") and not url.startswith("http://localhost:"):
        raise SesSwitchError(f"not a local stack's switch: {url!r}")
    data = json.dumps(change).encode() if change is not None else None
    request = urllib.request.Request(  # noqa: S310 - loopback only, checked above
        url, data=data, method="PUT" if change is not None else "GET", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")
        with contextlib.suppress(ValueError, KeyError, TypeError):  # not our JSON: the text as it came
            text = str(json.loads(text)["message"])
        raise SesSwitchError(f"the local stack refused: {text}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SesSwitchError(f"the local stack's SES switch at {url} did not answer: {exc}") from None
    return answer
