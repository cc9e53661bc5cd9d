"""Stand-ins for SendGrid's and Mailgun's send APIs on loopback that check each request against the documented shape.

Each server records every request and every way it departs from the API
reference (`violations`), and answers like the provider: SendGrid 202 with an
`X-Message-Id` header, Mailgun 200 with `{"id": "<...>", "message": "Queued.
Thank you."}`. Tests may script the next answers (`answers`: a status, or a
delay in seconds before answering 202/200).

Shapes checked (SendGrid v3 Mail Send; Mailgun messages API):

* SendGrid: POST /v3/mail/send; `Authorization: Bearer <key>`;
  `Content-Type: application/json`; `personalizations` (1..1000) each with a
  `to` list of `{email[, name]}`; `from.email`; `subject`; `content` with
  text/plain before text/html; `custom_args`, `headers` string to string;
  `categories` strings.
* Mailgun: POST /v3/<domain>/messages; `Authorization: Basic` of
  `api:<key>`; `multipart/form-data`; `from`, `to`, `subject` and `text` or
  `html`; `h:`, `v:` and `o:` prefixed fields only besides those.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mailwright.web import parse_form

MAILGUN_PLAIN_FIELDS = {"from", "to", "cc", "bcc", "subject", "text", "html", "amp-html", "template"}


@dataclass
class Captured:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, list[str]] = field(default_factory=dict)


class _Api:
    """A provider API stand-in: a ThreadingHTTPServer on 127.0.0.1, checking requests with `check`."""

    def __init__(
        self,
        key: str,
        check: Callable[[Captured, str], list[str]],
        answer: Callable[[], tuple[int, dict[str, str], bytes]],
    ) -> None:
        self.key = key
        self.requests: list[Captured] = []
        self.violations: list[str] = []
        self.answers: list[int | float] = []
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                captured = Captured(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                problems = check(captured, api.key)
                with api._lock:
                    api.requests.append(captured)
                    api.violations.extend(problems)
                    scripted = api.answers.pop(0) if api.answers else None
                if isinstance(scripted, float):
                    time.sleep(scripted)
                    scripted = None
                if problems and scripted is None:
                    self._reply(400, {"Content-Type": "application/json"}, json.dumps({"errors": problems}).encode())
                elif scripted is not None:
                    self._reply(
                        int(scripted), {"Content-Type": "application/json"}, b'{"errors":[{"message":"scripted"}]}'
                    )
                else:
                    self._reply(*answer())

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a read timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Api:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _check_sendgrid(request: Captured, key: str) -> list[str]:
    problems = []
    if request.path != "/v3/mail/send":
        problems.append(f"path {request.path}")
    if request.headers.get("authorization") != f"Bearer {key}":
        problems.append("authorization is not Bearer <api key>")
    if request.headers.get("content-type", "").split(";")[0] != "application/json":
        problems.append("content-type is not application/json")
    try:
        body = request.json = json.loads(request.body)
    except ValueError:
        return [*problems, "body is not JSON"]
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not 1 <= len(personalizations) <= 1000:
        problems.append("personalizations must hold 1 to 1000 objects")
    else:
        for p in personalizations:
            to = p.get("to")
            if not isinstance(to, list) or not to or not all(isinstance(r, dict) and r.get("email") for r in to):
                problems.append("personalizations[].to must list {email}")
            if not _strings(p.get("custom_args", {})):
                problems.append("custom_args values must be strings")
    if not isinstance(body.get("from"), dict) or not body["from"].get("email"):
        problems.append("from.email is required")
    if not isinstance(body.get("subject"), str) or not body["subject"]:
        problems.append("subject is required")
    types = [c.get("type") for c in body.get("content", []) if isinstance(c, dict)]
    if not types or types[0] != "text/plain" or "text/html" not in types:
        problems.append("content must be text/plain then text/html")
    if not _strings(body.get("headers", {})) or not _strings(body.get("custom_args", {})):
        problems.append("headers and custom_args map strings to strings")
    if not all(isinstance(c, str) for c in body.get("categories", [])):
        problems.append("categories are strings")
    return problems


def _strings(mapping: Any) -> bool:
    return isinstance(mapping, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())


def _check_mailgun(request: Captured, key: str) -> list[str]:
    problems = []
    parts = request.path.strip("/").split("/")
    if len(parts) != 3 or parts[0] != "v3" or parts[2] != "messages":
        problems.append(f"path {request.path}")
    expected = "Basic " + base64.b64encode(f"api:{key}".encode()).decode()
    if request.headers.get("authorization") != expected:
        problems.append("authorization is not Basic api:<key>")
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        problems.append("content-type is not multipart/form-data")
    form = request.form = parse_form(request.body, content_type)
    for name in ("from", "to", "subject"):
        if not form.get(name):
            problems.append(f"{name} is required")
    if not form.get("text") and not form.get("html"):
        problems.append("text or html is required")
    unknown = [n for n in form if n not in MAILGUN_PLAIN_FIELDS and not n.startswith(("h:", "v:", "o:", "t:"))]
    if unknown:
        problems.append(f"unknown fields {unknown}")
    return problems


class SendGridApi(_Api):
    """SendGrid's Mail Send API on loopback."""

    def __init__(self, key: str = "SG.test-key") -> None:
        super().__init__(key, _check_sendgrid, lambda: self._accepted())
        self.message_ids: list[str] = []

    def _accepted(self) -> tuple[int, dict[str, str], bytes]:
        message_id = uuid.uuid4().hex[:22]
        self.message_ids.append(message_id)
        return 202, {"X-Message-Id": message_id}, b""


class MailgunApi(_Api):
    """Mailgun's messages API on loopback."""

    def __init__(self, key: str = "key-test-mailgun") -> None:
        super().__init__(key, _check_mailgun, lambda: self._queued())

    def _queued(self) -> tuple[int, dict[str, str], bytes]:
        message_id = f"<{time.strftime('%Y%m%d%H%M%S')}.{uuid.uuid4().hex[:12]}@mg.example.com>"
        body = json.dumps({"id": message_id, "message": "Queued. Thank you."}).encode()
        return 200, {"Content-Type": "application/json"}, body
