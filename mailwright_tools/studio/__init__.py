"""The template studio: a local web page where a content editor edits, previews, checks and publishes templates.

`mailwright studio` serves it on loopback only. The page is server-rendered
HTML with one small script (no build step, no CDN); every request but the
page itself is JSON.

Security, as on any loopback service a browser can reach:

* the server binds 127.0.0.1 and answers only requests whose Host is that
  address or `localhost` on its port (no DNS rebinding);
* the page sets a session cookie (HttpOnly, SameSite=Strict) and embeds a
  CSRF token derived from it (HMAC under a key made at start); every POST must
  carry that token in `X-CSRF-Token` and a JSON content type, so another site
  cannot post a form to it;
* a Content-Security-Policy allows scripts and connections to this origin
  only; the previews are `srcdoc` iframes with an empty `sandbox` (no script,
  no same origin, no forms), so a template's HTML cannot act on the page.

What it does (`Studio`): lists the templates (the latest published version
of each in the templates bucket, else `templates/`), renders an edit of one
locale's subject, HTML and text with the template's sample data and runs
`templates validate`'s checks on it, publishes it as a new S3 version with a
change note (mailwright.templates.publishing), lists versions and restores
one (publishing its content again as a new version).
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from mailwright.errors import TemplateFormatError
from mailwright.templates import (
    PARTS,
    LocaleParts,
    Renderer,
    TemplateBundle,
    assemble_bundle,
    load_template_dir,
    read_shared,
    template_dirs,
)
from mailwright.templates.publishing import TemplateStore, publish
from mailwright_tools.template_checks import (
    SAMPLE_RECIPIENT,
    Problem,
    check_bundle,
    problem_from,
    provided_variables,
    render_parts,
)

SESSION_COOKIE = "mailwright_studio"
CSRF_HEADER = "X-CSRF-Token"
MAX_BODY_BYTES = 512 * 1024
VERSIONS_SHOWN = 10
SECURITY_HEADERS: dict[str, str] = {
    # Email HTML is styled inline, so previews need inline styles; scripts come only from this origin.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
        "connect-src 'self'; frame-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
STATIC_TYPES = {"studio.js": "text/javascript; charset=utf-8", "studio.css": "text/css; charset=utf-8"}


class StudioError(Exception):
    """A request the studio refuses, with the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {"file": problem.file, "line": problem.line, "message": problem.message, "text": str(problem)}


@dataclass
class Studio:
    """What the page asks for, independent of HTTP."""

    templates_dir: Path | None
    store: TemplateStore | None
    postal_address: str
    base_url: str
    target: str = ""
    author: str = field(default_factory=lambda: getpass.getuser())
    # Publishes one request to the stack (the producer SDK); its request id. None: no test emails.
    sender: Callable[[dict[str, Any]], str] | None = None

    def _repository_ids(self) -> set[str]:
        if self.templates_dir is None or not self.templates_dir.is_dir():
            return set()
        return {path.name for path in template_dirs(self.templates_dir)}

    def template_ids(self) -> list[str]:
        """The templates to pick from: published ones and the repository's."""
        ids = set(self.store.template_ids()) if self.store is not None else set()
        return sorted(ids | self._repository_ids())

    def load(self, template_id: str) -> TemplateBundle:
        """The template as it is live (its latest version), else as the repository has it."""
        if self.store is not None and self.store.latest(template_id) is not None:
            return TemplateBundle.model_validate_json(self.store.read(template_id))
        if self.templates_dir is None or template_id not in self._repository_ids():
            raise StudioError(f"no template {template_id!r}", 404)
        return load_template_dir(self.templates_dir / template_id)

    def describe(self, template_id: str) -> dict[str, Any]:
        """A template's locales and their parts, for the editor."""
        bundle = self.load(template_id)
        return {
            "template": template_id,
            "category": bundle.metadata.category,
            "engine": bundle.metadata.engine,
            "default_locale": bundle.metadata.default_locale,
            "locales": {
                locale: {part: getattr(parts, part) for part in PARTS}
                for locale, parts in sorted(bundle.locales.items())
            },
            "versions": self.versions(template_id),
        }

    def edited(self, template_id: str, locale: str, parts: Mapping[str, Any]) -> TemplateBundle:
        """The template with one locale's subject, HTML and text replaced; StudioError naming a malformed part."""
        bundle = self.load(template_id)
        if locale not in bundle.locales:
            raise StudioError(f"{template_id} has no locale {locale!r}")
        values = {part: parts.get(part) for part in PARTS}
        texts = {part: value for part, value in values.items() if isinstance(value, str)}
        if len(texts) != len(PARTS):
            raise StudioError("subject, html and text are each required, as text")
        locales = dict(bundle.locales)
        locales[locale] = LocaleParts(**texts, variants=bundle.locales[locale].variants)
        shared = {**(read_shared(self.templates_dir) if self.templates_dir else {}), **bundle.shared}
        return assemble_bundle(template_id, bundle.metadata, locales, shared)

    def preview(self, template_id: str, locale: str, parts: Mapping[str, Any]) -> dict[str, Any]:
        """Render the edit with the sample data and run the checks; what the preview and the error list show."""
        try:
            bundle = self.edited(template_id, locale, parts)
        except TemplateFormatError as exc:
            problem = problem_from(exc, f"{template_id}/{locale}")
            return {"ok": False, "rendered": {}, "problems": [_problem_json(problem)], "warnings": []}
        renderer = Renderer()
        provided = provided_variables(
            bundle, recipient=SAMPLE_RECIPIENT, postal_address=self.postal_address, base_url=self.base_url
        )
        rendered, _ = render_parts(renderer, bundle, locale, dict(bundle.metadata.sample_data), provided)
        checks = [
            check
            for check in check_bundle(
                bundle, postal_address=self.postal_address, base_url=self.base_url, renderer=renderer
            )
            if check.locale == locale and check.variant is None
        ]
        problems = [_problem_json(p) for check in checks for p in check.problems]
        warnings = [_problem_json(p) for check in checks for p in check.warnings]
        return {"ok": not problems, "rendered": rendered, "problems": problems, "warnings": warnings}

    def _store(self) -> TemplateStore:
        if self.store is None:
            raise StudioError("no stack to publish to: start the local stack (mailwright local up) or deploy", 409)
        return self.store

    def publish(
        self, template_id: str, locale: str, parts: Mapping[str, Any], note: str, author: str
    ) -> dict[str, Any]:
        """Publish the edit as the template's new version, if it passes the checks."""
        store = self._store()
        result = self.preview(template_id, locale, parts)
        if not result["ok"]:
            raise StudioError("not published: " + "; ".join(p["text"] for p in result["problems"]), 422)
        if not note.strip():
            raise StudioError("not published: a change note is required (what changed and why)", 422)
        bundle = self.edited(template_id, locale, parts)
        version = publish(store, template_id, bundle.to_json().encode("utf-8"), note=note, author=author or self.author)
        return {"template": template_id, "version": version, "versions": self.versions(template_id)}

    def test_send(self, template_id: str, locale: str, parts: Mapping[str, Any], to: str) -> dict[str, Any]:
        """Send the edit, unpublished, to `to` through the stack, with the sample data and a `studio_test` tag."""
        store = self._store()
        if self.sender is None:
            raise StudioError("no stack to send through", 409)
        if "@" not in to or len(to) > 254:
            raise StudioError("give the address to send the test to")
        result = self.preview(template_id, locale, parts)
        if not result["ok"]:
            raise StudioError("not sent: " + "; ".join(p["text"] for p in result["problems"]), 422)
        bundle = self.edited(template_id, locale, parts)
        draft = store.put_draft(template_id, bundle.to_json().encode("utf-8"))
        request = {
            "recipient_email": to.strip(),
            "template_id": template_id,
            "template_data": dict(bundle.metadata.sample_data),
            "locale": locale,
            "template_version": draft,
            "metadata": {"studio_test": "true"},
            # Every click is a new email, not a duplicate of the last one.
            "idempotency_key": f"studio-{uuid.uuid4()}",
        }
        try:
            request_id = self.sender(request)
        except Exception as exc:
            raise StudioError(f"not sent: {exc}", 502) from None
        return {"template": template_id, "request_id": request_id, "template_version": draft, "to": to.strip()}

    def versions(self, template_id: str) -> list[dict[str, Any]]:
        """The template's latest versions, newest first (none without a stack)."""
        if self.store is None:
            return []
        return [version.to_json() for version in self.store.versions(template_id, limit=VERSIONS_SHOWN)]

    def restore(self, template_id: str, version_id: str, author: str) -> dict[str, Any]:
        """Publish an earlier version's content again, as the new latest version."""
        store = self._store()
        try:
            body = store.read(template_id, version_id)
        except KeyError as exc:
            raise StudioError(str(exc), 404) from None
        version = publish(
            store,
            template_id,
            body,
            note=f"restored version {version_id}",
            author=author or self.author,
            restored_from=version_id,
        )
        return {"template": template_id, "version": version, "versions": self.versions(template_id)}


# -- HTTP ------------------------------------------------------------------------------------------------


def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


class StudioServer(ThreadingHTTPServer):
    """The studio on loopback; `csrf_token(session)` is what the page embeds for its session cookie."""

    daemon_threads = True

    def __init__(self, studio: Studio, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.studio = studio
        self._key = secrets.token_bytes(32)

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>/"""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"

    def csrf_token(self, session: str) -> str:
        """The token a session's page sends back in X-CSRF-Token."""
        return hmac.new(self._key, session.encode("utf-8"), hashlib.sha256).hexdigest()

    def allowed_hosts(self) -> set[str]:
        """Host headers this server answers (loopback names on its port)."""
        port = self.server_address[1]
        return {f"127.0.0.1:{port}", f"localhost:{port}"}


class _Handler(BaseHTTPRequestHandler):
    server: StudioServer
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {**SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode("utf-8"), "application/json")

    def _session(self) -> str | None:
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE and value:
                return value
        return None

    def _host_ok(self) -> bool:
        return (self.headers.get("Host") or "") in self.server.allowed_hosts()

    def do_GET(self) -> None:
        if not self._host_ok():
            self._send(421, b"wrong host", "text/plain; charset=utf-8")
            return
        path = self.path.split("?", 1)[0]
        try:
            if path == "/":
                self._page()
            elif path.startswith("/static/") and path[len("/static/") :] in STATIC_TYPES:
                name = path[len("/static/") :]
                self._send(200, _static(name).encode("utf-8"), STATIC_TYPES[name])
            elif path == "/favicon.ico":
                self._send(204, b"", "image/x-icon")
            elif path == "/api/templates":
                self._json(200, {"templates": self.server.studio.template_ids(), "target": self.server.studio.target})
            elif path.startswith("/api/templates/"):
                self._json(200, self.server.studio.describe(path[len("/api/templates/") :]))
            else:
                self._json(404, {"error": "not found"})
        except StudioError as exc:
            self._json(exc.status, {"error": str(exc)})

    def _page(self) -> None:
        session = self._session() or secrets.token_urlsafe(32)
        page = _static("studio.html").replace("{{csrf}}", self.server.csrf_token(session))
        cookie = f"{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/"
        self._send(200, page.encode("utf-8"), "text/html; charset=utf-8", {"Set-Cookie": cookie})

    def do_POST(self) -> None:
        if not self._host_ok():
            self._send(421, b"wrong host", "text/plain; charset=utf-8")
            return
        session = self._session()
        token = self.headers.get(CSRF_HEADER) or ""
        if session is None or not hmac.compare_digest(token, self.server.csrf_token(session)):
            self._json(403, {"error": "missing or wrong CSRF token: reload the page"})
            return
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            self._json(415, {"error": "JSON only"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._json(413, {"error": "too large"})
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise StudioError("a JSON object is expected")
            self._json(200, self._post(self.path, body))
        except StudioError as exc:
            self._json(exc.status, {"error": str(exc)})
        except ValueError as exc:
            self._json(400, {"error": f"bad request: {exc}"})

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        studio = self.server.studio
        template_id, locale = str(body.get("template", "")), str(body.get("locale", ""))
        parts = body.get("parts") or {}
        if path == "/api/preview":
            return studio.preview(template_id, locale, parts)
        if path == "/api/publish":
            return studio.publish(template_id, locale, parts, str(body.get("note", "")), str(body.get("author", "")))
        if path == "/api/test-send":
            return studio.test_send(template_id, locale, parts, str(body.get("to", "")))
        if path == "/api/restore":
            return studio.restore(template_id, str(body.get("version", "")), str(body.get("author", "")))
        raise StudioError("not found", 404)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the terminal shows the URL, not every keystroke's preview."""


def start(studio: Studio, host: str = "127.0.0.1", port: int = 0) -> StudioServer:
    """Serve the studio on a background thread; shut it down with `shutdown()` and `server_close()`."""
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError("the studio serves loopback only")
    server = StudioServer(studio, "127.0.0.1", port)
    threading.Thread(target=server.serve_forever, name="template-studio", daemon=True).start()
    return server
