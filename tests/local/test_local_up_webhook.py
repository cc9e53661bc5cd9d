"""`mailwright local up --webhook URL`: signed webhooks to a receiver, its secret in local.json."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailwright_tools.state import StateDir, live_local_stack
from tests.local.conftest import REPO, run_cli, wait_until
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver().start()
    yield found
    found.stop()


def test_local_up_delivers_signed_webhooks_to_the_url_it_was_given(tmp_path: Path, receiver: Receiver) -> None:
    state = StateDir(tmp_path / "state")
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'functions'}{os.pathsep}{REPO}"}
    command = [sys.executable, "-c", "from mailwright_tools.cli import main; main()", "--state-dir", str(state.root)]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
        [*command, "local", "up", "--ses-rate", "100", "--webhook", receiver.url("/in"), "--events", "EmailSent"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        recorded = wait_until(lambda: live_local_stack(state) or process.poll() is not None, timeout=30)
        assert process.poll() is None, process.communicate()
        # One endpoint: its secret under its name, and as `webhook_secret`
        assert recorded["webhook_secrets"] == {"local-1": recorded["webhook_secret"]}
        assert recorded["webhook_secret"].startswith("whsec_")
        assert recorded["outcome_events"] == ["EmailSent"]
        receiver.secret = recorded["webhook_secret"]
        sent = run_cli(state, "send", "--to", "alan@example.com", "--template", "welcome_email", "--json",
                       "--data", '{"user_name": "Alan", "login_link": "https://example.com/login"}')  # fmt: skip
        assert sent.exit_code == 0, sent.stderr
        request_id = sent.json()["requests"][0]["request_id"]
        wait_until(lambda: receiver.received, timeout=60)
        [delivery] = receiver.received
        assert delivery.verified is True
        assert delivery.payload["type"] == "EmailSent" and delivery.payload["data"]["request_id"] == request_id
        assert delivery.path == "/in"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "webhook local-1" in out and "Traceback" not in err


@pytest.mark.parametrize(
    ("url", "why"),
    [("http://hooks.example.com/in", "https"), ("https://10.1.2.3/in", "not a public address")],
)
def test_local_up_refuses_a_webhook_url_it_may_not_call(tmp_path: Path, url: str, why: str) -> None:
    result = run_cli(StateDir(tmp_path / "state"), "local", "up", "--webhook", url)
    assert result.exit_code == 2
    assert why in result.stderr


def test_local_up_refuses_an_unknown_detail_type(tmp_path: Path) -> None:
    result = run_cli(StateDir(tmp_path / "state"), "local", "up", "--events", "EmailSent,EmailMaybe")
    assert result.exit_code == 2 and "EmailMaybe" in result.stderr
