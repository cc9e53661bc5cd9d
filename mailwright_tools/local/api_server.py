"""The HTTPS API on loopback: a small threaded HTTP server in front of the API function's handler.

Each request becomes the proxy event an API Gateway REST API delivers to its
Lambda integration and goes to `mailwright.handlers.api.handle`, so the local
stack answers with the deployed code path::

    server, base_url = start(build_status_service(settings))
    urllib.request.urlopen(f"{base_url}/v1/messages/{request_id}")
    server.shutdown()
    server.server_close()

Requests are not signed here: whoever can reach the loopback port is the
platform team (the event names a local IAM caller), as the local stack's
moto endpoint accepts any credentials. Requests are answered one at a time,
as one Lambda container would (the Powertools resolver keeps the current
event on the class).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from mailwright.handlers.api import handle
from mailwright.status import StatusService

# API Gateway passes these bodies as text; others base64-encoded (binary media types are not configured).
MAX_BODY_BYTES = 64 * 1024
# The caller every loopback request is taken for: the platform team, as an IAM user would be deployed.
LOCAL_CALLER_ARN = "arn:aws:iam::123456789012:user/mailwright-local"
LOCAL_STAGE = "local"


def rest_api_event(
    method: str,
    path_and_query: str,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    caller_arn: str | None = LOCAL_CALLER_ARN,
) -> dict[str, Any]:
    """The event API Gateway's REST API (Lambda proxy integration) delivers for this request."""
    url = urlsplit(path_and_query)
    path = url.path or "/"
    single = dict(headers or {})
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(url.query, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    try:
        text: str | None = body.decode("utf-8") if body else None
        encoded = False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    request_id = f"local-{time.monotonic_ns()}"
    return {
        "resource": path,
        "path": path,
        "httpMethod": method.upper(),
        "headers": single or None,
        "multiValueHeaders": {name: [value] for name, value in single.items()} or None,
        "queryStringParameters": {key: values[-1] for key, values in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "resourcePath": path,
            "httpMethod": method.upper(),
            "path": f"/{LOCAL_STAGE}{path}",
            "stage": LOCAL_STAGE,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {
                "sourceIp": source_ip,
                "userAgent": single.get("User-Agent") or single.get("user-agent"),
                "userArn": caller_arn,
                "caller": caller_arn,
                "user": caller_arn,
                "accountId": "123456789012" if caller_arn else None,
                "apiKey": None,
                "apiKeyId": None,
            },
            "authorizer": None,
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


class _Handler(BaseHTTPRequestHandler):
    server: _ApiServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._answer(413, {"error": {"code": "too_large", "message": f"a body is at most {MAX_BODY_BYTES} bytes"}})
            return
        body = self.rfile.read(length) if length else b""
        event = rest_api_event(
            self.command, self.path, body=body, headers=dict(self.headers.items()), source_ip=self.client_address[0]
        )
        with self.server.lock:
            answer = handle(self.server.service, event)
        payload = str(answer.get("body") or "").encode("utf-8")
        if answer.get("isBase64Encoded"):
            payload = base64.b64decode(payload)
        self.send_response(int(answer["statusCode"]))
        headers: dict[str, Any] = {**(answer.get("headers") or {})}
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(str(value) for value in values)
        for name, value in headers.items():
            if name.lower() != "content-length":
                self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    # http.server dispatches on these names; every method reaches the handler, which routes it.
    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the function logs each lookup itself (without addresses)."""


class _ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], service: StatusService) -> None:
        super().__init__(address, _Handler)
        self.service = service
        self.lock = threading.Lock()


def start(service: StatusService, host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Serve `service` on a background thread; the server (shut it down when done) and its base URL (no `/v1`)."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the local API accepts unsigned requests: it binds loopback only")
    server = _ApiServer((host, port), service)
    threading.Thread(target=server.serve_forever, name="api-server", daemon=True).start()
    bound_host, bound_port = server.server_address[:2]
    shown = f"[{bound_host!s}]" if ":" in str(bound_host) else str(bound_host)
    return server, f"http://{shown}:{bound_port}"
