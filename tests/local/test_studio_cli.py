"""`mailwright studio` against the local stack: a test email of an edit reaches the outbox, a publish the next send."""

from __future__ import annotations

import email
import email.policy
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailwright_tools.local.stack import LocalStack
from tests.local.conftest import REPO, Cli, wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Client:
    """The page's session: its cookie and CSRF token, and JSON calls as its script makes them."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        with urllib.request.urlopen(base_url, timeout=10) as answer:  # noqa: S310 - loopback
            self.cookie = answer.headers["Set-Cookie"].split(";")[0]
            page = answer.read().decode()
        self.token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base_url + path, timeout=30) as answer:  # noqa: S310 - loopback
            return json.loads(answer.read())

    def post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(  # noqa: S310 - loopback
            self.base_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Cookie": self.cookie, "X-CSRF-Token": self.token},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - loopback
            return json.loads(answer.read())


@pytest.fixture
def studio(local_stack: LocalStack) -> Iterator[Client]:
    """`mailwright studio` in its own process, on the local stack's state directory."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-c", "from mailwright_tools.cli import main; main()",
         "--state-dir", str(local_stack.options.state.root), "studio", "--port", str(port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "functions"), str(REPO)])},
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(base_url, timeout=2):
                return True
        except OSError:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            return False

    try:
        wait_until(answers, timeout=60)
        yield Client(base_url)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()


def outbox_subject(local_stack: LocalStack, request_id: str) -> str | None:
    found = list(Path(local_stack.options.state.outbox).glob(f"*-{request_id[:12]}.eml"))
    if not found:
        return None
    message = email.message_from_bytes(found[0].read_bytes(), policy=email.policy.default)
    return str(message["Subject"])


def test_a_test_email_reaches_the_outbox_and_a_publish_the_next_send(
    studio: Client, cli: Cli, local_stack: LocalStack
) -> None:
    listing = studio.get("api/templates")
    assert "welcome_email" in listing["templates"] and "local stack" in listing["target"]
    parts = studio.get("api/templates/welcome_email")["locales"]["en"]
    edit = {**parts, "subject": "Studio says hi, {{ user_name }}"}
    body = {"template": "welcome_email", "locale": "en", "parts": edit}

    # A test email of the unpublished edit, with the sample data
    sent = studio.post("api/test-send", {**body, "to": "editor@example.com"})
    assert sent["template_version"].startswith("draft:")
    assert wait_until(lambda: outbox_subject(local_stack, sent["request_id"]), timeout=60) == "Studio says hi, John"

    # Published: the next request sends the new subject with its own data
    published = studio.post("api/publish", {**body, "note": "friendlier subject", "author": "Zoë"})
    assert published["versions"][0]["note"] == "friendlier subject"
    result = cli("send", "--to", "ada@example.com", "--template", "welcome_email",
                 "--data", '{"user_name": "Ada", "login_link": "https://example.com/login"}', "--json")  # fmt: skip
    request_id = result.json()["requests"][0]["request_id"]
    assert wait_until(lambda: outbox_subject(local_stack, request_id), timeout=60) == "Studio says hi, Ada"

    # And `templates versions` lists the studio's version first
    versions = cli("templates", "versions", "welcome_email", "--json").json()["versions"]
    assert (versions[0]["source"], versions[0]["author"]) == ("studio", "Zoë")


def test_templates_report_counts_variants_from_the_local_message_log(
    cli: Cli, local_stack: LocalStack, tmp_path: Path
) -> None:
    # Given a template with two variants uploaded to the local stack
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates" / "_layouts", templates / "_layouts")
    (templates / "promo" / "en").mkdir(parents=True)
    meta = {"category": "transactional", "required_variables": ["name"], "sample_data": {"name": "Jo"},
            "variants": [{"name": "control"}, {"name": "short"}]}  # fmt: skip
    (templates / "promo" / "template.json").write_text(json.dumps(meta), encoding="utf-8")
    for name, text in {"subject.txt": "Your news, {{ name }}", "subject.short.txt": "News!",
                       "body.html": "<p>Hi {{ name }}</p>", "body.txt": "Hi {{ name }}"}.items():  # fmt: skip
        (templates / "promo" / "en" / name).write_text(text, encoding="utf-8")
    uploaded = cli("templates", "upload", "--templates-dir", str(templates), "--json")
    assert uploaded.exit_code == 0, uploaded.stderr

    # When six readers are mailed
    ids = []
    for n in range(6):
        sent = cli("send", "--to", f"reader{n}@example.com", "--template", "promo", "--data", '{"name": "Jo"}',
                   "--no-template-check", "--json")  # fmt: skip
        ids.append(sent.json()["requests"][0]["request_id"])
    for request_id in ids:
        wait_until(functools.partial(outbox_subject, local_stack, request_id), timeout=60)

    # Then the report counts each variant's sends from the message log, the control first
    report = cli("templates", "report", "promo", "--since", "1h", "--json")
    assert report.exit_code == 0, report.stderr
    data = report.json()
    assert data["source"] == "message log" and data["control"] == "control"
    assert [v["variant"] for v in data["variants"]] == ["control", "short"]
    assert sum(v["sent"] for v in data["variants"]) == 6
    subjects = [outbox_subject(local_stack, rid) for rid in ids]
    assert data["variants"][1]["sent"] == subjects.count("News!")
