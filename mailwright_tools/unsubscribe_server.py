"""The unsubscribe endpoint on loopback: a small threaded HTTP server in front of the Lambda handler.

Each request becomes the payload format 2.0 event a Lambda function URL
would deliver and goes to `mailwright.handlers.unsubscribe.handle`, so the
local stack and the browser tests run the deployed code path::

    server, base_url = start(build_unsubscribe_service(settings))
    ...  # links signed for base_url now open the preference page
    server.shutdown()
    server.server_close()
"""

from __future__ import annotations

import base64
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from mailwright.handlers.unsubscribe import handle
from mailwright.preferences import UnsubscribeService

# Bodies of these types reach the function as text; anything else base64-encoded, as Lambda does.
_TEXT_TYPES = ("text/", "application/x-www-form-urlencoded", "application/json")
MAX_BODY_BYTES = 64 * 1024


def function_url_event(
    method: str,
    path_and_query: str = "/",
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The event a Lambda function URL delivers for this request (payload format 2.0)."""
    url = urlsplit(path_and_query)
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    content_type = lowered.get("content-type", "")
    as_text = not body or content_type.startswith(_TEXT_TYPES)
    query: dict[str, str] = {}
    for key, value in parse_qsl(url.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": url.path or "/",
        "rawQueryString": url.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": lowered.get("host", "localhost"),
            "http": {
                "method": method.upper(),
                "path": url.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": f"local-{time.monotonic_ns()}",
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": not as_text,
    }
    if query:
        event["queryStringParameters"] = query
    if body:
        event["body"] = body.decode("utf-8", "replace") if as_text else base64.b64encode(body).decode("ascii")
    return event


class _Handler(BaseHTTPRequestHandler):
    server: _UnsubscribeServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else b""
        event = function_url_event(
            self.command, self.path, body=body, headers=dict(self.headers.items()), source_ip=self.client_address[0]
        )
        answer = handle(self.server.service, event)
        payload = str(answer.get("body") or "").encode("utf-8")
        self.send_response(int(answer["statusCode"]))
        for name, value in (answer.get("headers") or {}).items():
            self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    # http.server dispatches on these names; every method reaches the handler, which answers 405 itself.
    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines carry tokens, which have no place in a terminal scrollback."""


class _UnsubscribeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], service: UnsubscribeService) -> None:
        super().__init__(address, _Handler)
        self.service = service


def start(service: UnsubscribeService, host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Serve `service` on a background thread; the server (shut it down when done) and its base URL."""
    server = _UnsubscribeServer((host, port), service)
    threading.Thread(target=server.serve_forever, name="unsubscribe-server", daemon=True).start()
    bound_host, bound_port = server.server_address[:2]
    return server, f"http://{bound_host!s}:{bound_port}/"
