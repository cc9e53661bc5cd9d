"""The local outbox: every email the local stack sends, as a real MIME message and a browsable page.

Each email becomes `<n>-<template>-<request id>.eml` (open it in any mail
client) and `.html` (its HTML part), and `index.html` lists them all with a
preview pane. The index is rewritten in the background, at most every two
seconds, so a burst of mail costs one rewrite, not one per email.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from mailwright.ports import OutboundEmail
from mailwright_tools.local.ses_events import simulator_scenario

INDEX = "index.html"
# CRLF like mail on the wire; lines up to RFC 5322's 998 characters, so a long List-Unsubscribe URL
# stays one readable `<https://...>` instead of being folded into encoded words.
MESSAGE_POLICY = policy.SMTP.clone(max_line_length=998)
MANIFEST = "messages.json"
_LANG = re.compile(r"<html[^>]*\blang=\"([A-Za-z-]+)\"", re.IGNORECASE)
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class OutboxEntry:
    """One email in the outbox, as the index shows it."""

    stem: str
    sent_at: float
    subject: str
    to: str
    from_address: str
    lane: str
    template: str
    category: str
    locale: str
    request_id: str
    ses_message_id: str
    simulator: str
    unsubscribe: str
    # Who delivered it: `ses`, or the secondary provider's name (the local relay).
    provider: str = "ses"


def build_message(email: OutboundEmail, ses_message_id: str, *, sent_at: float) -> EmailMessage:
    """The MIME message SES would deliver: headers, a text part and an HTML alternative."""
    tags = dict(email.tags)
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["From"] = email.from_address
    message["To"] = email.to_address
    message["Subject"] = email.subject
    message["Date"] = format_datetime(datetime.fromtimestamp(sent_at).astimezone())
    message["Message-ID"] = make_msgid(idstring=ses_message_id[:40], domain="email.amazonses.com")
    for name, value in email.headers:
        message[name] = value
    message["X-Mailwright-Request-Id"] = tags.get("request_id", "")
    message["X-Mailwright-Lane"] = tags.get("lane", "")
    message["X-Mailwright-Template"] = tags.get("template", "")
    message["X-SES-Message-ID"] = ses_message_id
    message["X-SES-CONFIGURATION-SET"] = email.configuration_set
    # Mail a secondary provider delivered carries that provider's name instead (mailwright_tools.local.relay).
    message["X-Mailwright-Provider"] = "ses"
    message.set_content(email.text, subtype="plain", charset="utf-8")
    message.add_alternative(email.html, subtype="html", charset="utf-8")
    return message


class Outbox:
    """Writes sent emails under `directory` and keeps `index.html` current."""

    def __init__(self, directory: Path, *, refresh_seconds: float = 2.0, clear: bool = True) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        if clear:  # a new stack starts with an empty outbox: old mail belongs to a stack that is gone
            for old in (*directory.glob("*.eml"), *directory.glob("*.html"), directory / MANIFEST):
                old.unlink(missing_ok=True)
        self._refresh_seconds = refresh_seconds
        self._entries: list[OutboxEntry] = []
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sequence = 0
        self.write_index()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def entries(self) -> list[OutboxEntry]:
        """The emails so far, oldest first."""
        with self._lock:
            return list(self._entries)

    def start(self) -> None:
        """Rewrite the index in the background whenever mail arrived."""
        self._thread = threading.Thread(target=self._refresh_loop, name="outbox-index", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the background writer and write the final index."""
        self._stopping.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.write_index()

    def add(self, email: OutboundEmail, ses_message_id: str, *, sent_at: float | None = None) -> OutboxEntry:
        """Store one sent email (.eml and .html); the index follows shortly."""
        sent_at = time.time() if sent_at is None else sent_at
        tags = dict(email.tags)
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
        request_id = tags.get("request_id", "")
        stem = f"{sequence:05d}-{_SAFE.sub('_', tags.get('template', 'email'))}-{request_id[:12] or 'unknown'}"
        message = build_message(email, ses_message_id, sent_at=sent_at)
        (self.directory / f"{stem}.eml").write_bytes(message.as_bytes())
        (self.directory / f"{stem}.html").write_text(email.html, encoding="utf-8")
        language = _LANG.search(email.html)
        entry = OutboxEntry(
            stem=stem,
            sent_at=sent_at,
            subject=email.subject,
            to=email.to_address,
            from_address=email.from_address,
            lane=tags.get("lane", ""),
            template=tags.get("template", ""),
            category=tags.get("category", ""),
            locale=language.group(1) if language else "",
            request_id=request_id,
            ses_message_id=ses_message_id,
            simulator=simulator_scenario(email.to_address) or "",
            unsubscribe=dict(email.headers).get("List-Unsubscribe", "").strip("<>"),
        )
        with self._lock:
            self._entries.append(entry)
        self._dirty.set()
        return entry

    def add_received(self, message: EmailMessage, *, provider: str, sent_at: float | None = None) -> OutboxEntry:
        """Store one email a secondary provider received (.eml as received, .html its HTML part)."""
        sent_at = time.time() if sent_at is None else sent_at
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
        request_id = str(message.get("X-Mailwright-Request-Id", ""))
        template = str(message.get("X-Mailwright-Template", ""))
        stem = f"{sequence:05d}-{_SAFE.sub('_', template or 'email')}-{request_id[:12] or 'unknown'}"
        html_part = message.get_body(preferencelist=("html",))
        html_text = html_part.get_content() if isinstance(html_part, EmailMessage) else ""
        (self.directory / f"{stem}.eml").write_bytes(message.as_bytes(policy=MESSAGE_POLICY))
        (self.directory / f"{stem}.html").write_text(html_text, encoding="utf-8")
        language = _LANG.search(html_text)
        to = str(message.get("To", ""))
        entry = OutboxEntry(
            stem=stem,
            sent_at=sent_at,
            subject=str(message.get("Subject", "")),
            to=to,
            from_address=str(message.get("From", "")),
            lane=str(message.get("X-Mailwright-Lane", "")),
            template=template,
            category=str(message.get("X-Mailwright-Category", "")),
            locale=language.group(1) if language else "",
            request_id=request_id,
            ses_message_id=str(message.get("Message-ID", "")).strip("<>"),
            simulator=simulator_scenario(to) or "",
            unsubscribe=str(message.get("List-Unsubscribe", "")).strip("<>"),
            provider=provider,
        )
        with self._lock:
            self._entries.append(entry)
        self._dirty.set()
        return entry

    def _refresh_loop(self) -> None:
        while not self._stopping.is_set():
            self._dirty.wait()
            if self._stopping.is_set():
                return
            self._dirty.clear()
            self.write_index()
            self._stopping.wait(self._refresh_seconds)

    def write_index(self) -> None:
        """Write index.html (and messages.json, the same list for scripts), atomically."""
        entries = self.entries
        for name, content in (
            (INDEX, render_index(entries)),
            (MANIFEST, json.dumps([asdict(e) for e in entries], indent=1) + "\n"),
        ):
            temporary = self.directory / f".{name}.tmp"
            temporary.write_text(content, encoding="utf-8")
            temporary.replace(self.directory / name)


_LANE_COLOURS = {"critical": "#b91c1c", "standard": "#1d4ed8", "bulk": "#047857"}
_SIMULATOR_COLOURS = {"bounce": "#b45309", "complaint": "#7c2d12", "suppressionlist": "#6b21a8"}

_STYLE = """
:root { color-scheme: light; --line: #e5e7eb; --muted: #6b7280; --ink: #111827; --bg: #f3f4f6; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: var(--bg); height: 100vh; display: flex; flex-direction: column; }
header { background: #111827; color: #f9fafb; padding: 12px 20px; display: flex; gap: 16px; align-items: center;
         flex-wrap: wrap; }
header h1 { font-size: 17px; margin: 0; font-weight: 600; letter-spacing: .2px; }
header .counts { display: flex; gap: 8px; flex-wrap: wrap; }
header .count { background: #374151; border-radius: 999px; padding: 2px 10px; font-size: 12px; }
header input { margin-left: auto; min-width: 260px; padding: 7px 10px; border-radius: 6px; border: 0;
               font: inherit; }
main { flex: 1; display: grid; grid-template-columns: minmax(340px, 36%) 1fr; min-height: 0; }
nav { overflow-y: auto; border-right: 1px solid var(--line); background: #fff; }
nav .row { padding: 10px 16px; border-bottom: 1px solid var(--line); }
nav .row:hover { background: #f9fafb; }
nav .row.active { background: #eff6ff; box-shadow: inset 3px 0 0 #2563eb; }
nav a.open { display: block; color: inherit; text-decoration: none; outline: none; }
.links a { color: #2563eb; }
.subject { font-weight: 600; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.to { color: var(--muted); font-size: 13px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.meta { display: flex; gap: 6px; flex-wrap: wrap; margin-top: 4px; align-items: center; }
.chip { font-size: 11px; border-radius: 4px; padding: 1px 6px; background: #f3f4f6; color: #374151;
        border: 1px solid var(--line); }
.chip.lane { color: #fff; border: 0; }
.chip.sim { color: #fff; border: 0; }
.time { margin-left: auto; color: var(--muted); font-size: 12px; }
.links { font-size: 12px; margin-top: 4px; color: var(--muted); }
.links span { margin-right: 10px; }
.links .rid { font-family: ui-monospace, monospace; user-select: all; word-break: break-all; }
section { display: flex; flex-direction: column; min-height: 0; }
section .bar { padding: 8px 16px; background: #fff; border-bottom: 1px solid var(--line); color: var(--muted);
               font-size: 13px; }
iframe { flex: 1; width: 100%; border: 0; background: #fff; }
.empty { padding: 40px; color: var(--muted); text-align: center; }
"""

_SCRIPT = """
const rows = Array.from(document.querySelectorAll('nav .row'));
const search = document.getElementById('q');
const bar = document.getElementById('bar');
function select(row) {
  rows.forEach(r => r.classList.remove('active'));
  row.classList.add('active');
  bar.textContent = row.dataset.title;
}
rows.forEach(r => r.querySelector('a.open').addEventListener('click', () => select(r)));
if (rows.length) { select(rows[0]); }
search.addEventListener('input', () => {
  const q = search.value.toLowerCase();
  rows.forEach(r => { r.style.display = r.dataset.search.includes(q) ? '' : 'none'; });
});
"""


def _chip(text: str, *, colour: str | None = None, kind: str = "") -> str:
    style = f' style="background:{colour}"' if colour else ""
    return f'<span class="chip {kind}"{style}>{html.escape(text)}</span>'


def render_index(entries: list[OutboxEntry]) -> str:
    """The outbox page: newest first, a preview pane, a filter box; works from file:// with no server."""
    newest = list(reversed(entries))
    lanes: dict[str, int] = {}
    for entry in entries:
        lanes[entry.lane] = lanes.get(entry.lane, 0) + 1
    counts = "".join(
        f'<span class="count">{html.escape(lane or "?")}: {count}</span>' for lane, count in sorted(lanes.items())
    )
    rows = []
    for entry in newest:
        e = html.escape
        when = datetime.fromtimestamp(entry.sent_at).strftime("%H:%M:%S")
        chips = [_chip(entry.lane, colour=_LANE_COLOURS.get(entry.lane, "#4b5563"), kind="lane")]
        chips += [_chip(entry.template), _chip(entry.locale or "?"), _chip(entry.category)]
        if entry.provider != "ses":
            chips.append(_chip(f"via {entry.provider}", colour="#7c3aed", kind="sim"))
        if entry.simulator:
            chips.append(
                _chip(
                    f"simulator: {entry.simulator}",
                    colour=_SIMULATOR_COLOURS.get(entry.simulator, "#4b5563"),
                    kind="sim",
                )
            )
        title = f"{entry.subject} — to {entry.to} · {entry.lane} · {entry.template} · request {entry.request_id}"
        search = " ".join([entry.subject, entry.to, entry.lane, entry.template, entry.locale, entry.request_id]).lower()
        unsubscribe = (
            f'<span><a href="{e(entry.unsubscribe)}" target="_blank" rel="noopener">unsubscribe link</a></span>'
            if entry.unsubscribe
            else ""
        )
        rows.append(
            f'<div class="row" data-title="{e(title)}" data-search="{e(search)}">'
            f'<a class="open" href="{e(entry.stem)}.html" target="preview">'
            f'<div class="subject">{e(entry.subject)}</div>'
            f'<div class="to">to {e(entry.to)}</div>'
            f'<div class="meta">{"".join(chips)}<span class="time">{when}</span></div></a>'
            # The whole id, as `mailwright status` takes it (a click selects it for copying).
            f'<div class="links"><span>request <span class="rid">{e(entry.request_id)}</span></span>'
            f'<span><a href="{e(entry.stem)}.eml" download>.eml</a></span>{unsubscribe}</div>'
            "</div>"
        )
    first = f"{html.escape(newest[0].stem)}.html" if newest else "about:blank"
    body = "".join(rows) if rows else '<div class="empty">No mail yet. Publish a request and reload.</div>'
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>mailwright outbox ({len(entries)})</title><style>{_STYLE}</style></head><body>"
        f'<header><h1>mailwright outbox</h1><div class="counts"><span class="count">{len(entries)} emails</span>'
        f'{counts}</div><input id="q" type="search" placeholder="Filter by subject, recipient, lane, template…">'
        "</header><main>"
        f"<nav>{body}</nav>"
        '<section><div class="bar" id="bar">Rewritten as mail arrives: reload to see new mail.</div>'
        # Sandboxed: the email's HTML runs no script and cannot reach this page; links open in a new tab.
        f'<iframe name="preview" src="{first}" sandbox="allow-popups allow-popups-to-escape-sandbox" '
        'title="Email preview"></iframe></section>'
        f"</main><script>{_SCRIPT}</script></body></html>\n"
    )
