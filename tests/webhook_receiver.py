"""A webhook receiver on loopback for the tests: records what arrives, answers as told, can misbehave.

`behaviour` per path: an HTTP status (int), `"redirect"` (302 to /elsewhere),
`"garbage"` (bytes that are not HTTP, then close) or `"hang"` (read the
request, answer nothing until the test ends). Requests are verified with the
Standard Webhooks reference library when a secret is given.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool | None = None

    @property
    def payload(self) -> dict[str, Any]:
        """The JSON body."""
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Receiver:
    """The server, what it received, and how it answers."""

    behaviour: dict[str, Any] = field(default_factory=dict)
    default: Any = 200
    secret: str | None = None
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        """The port it listens on."""
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, path: str = "/hook") -> str:
        """Its URL (http, loopback)."""
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self, port: int = 0) -> Receiver:
        """Listen on 127.0.0.1 (any free port by default)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                verified = None
                if receiver.secret:
                    try:
                        Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                        verified = True
                    except WebhookVerificationError:
                        verified = False
                with receiver._lock:
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body, verified))
                what = receiver.behaviour.get(self.path, receiver.default)
                if what == "hang":
                    receiver._release.wait(30)
                    return
                if what == "garbage":
                    self.wfile.write(b"\x00\x01 this is not HTTP\r\n\r\n")
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if what == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(int(what))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening (hanging requests are let go)."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        """The webhook-id of every request received, in order."""
        with self._lock:
            return [r.headers.get("webhook-id", "") for r in self.received]


def free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
