"""`mailwright local up` as a user runs it: a process that serves until Ctrl-C, found by other commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailwright_tools.state import StateDir, endpoint_answers, live_local_stack
from tests.local.conftest import REPO, run_cli, wait_until


@pytest.fixture
def local_up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], StateDir]]:
    """`mailwright local up` in a child process, on any free loopback port."""
    state = StateDir(tmp_path / "state")
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'functions'}{os.pathsep}{REPO}"}
    command = [sys.executable, "-c", "from mailwright_tools.cli import main; main()", "--state-dir", str(state.root)]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
        [*command, "local", "up", "--ses-rate", "100"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: live_local_stack(state) or process.poll() is not None, timeout=30)
        assert process.poll() is None, process.communicate()
        yield process, state
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_local_up_serves_until_interrupted(local_up: tuple[subprocess.Popen[str], StateDir]) -> None:
    process, state = local_up
    recorded = json.loads(state.local_json.read_text())
    assert recorded["endpoint_url"].startswith("http://127.0.0.1:")
    assert recorded["pid"] == process.pid

    # Other commands, in other processes, find it through local.json
    sent = run_cli(state, "send", "--to", "alan@example.com", "--template", "welcome_email", "--json",
                   "--data", '{"user_name": "Alan", "login_link": "https://example.com/login"}')  # fmt: skip
    assert sent.exit_code == 0, sent.stderr
    request_id = sent.json()["requests"][0]["request_id"]
    wait_until(lambda: run_cli(state, "status", request_id, "--json").json()["found"])
    assert list(state.outbox.glob("*-welcome_email-*.eml"))

    # A second stack on the same state directory is refused
    again = run_cli(state, "local", "up")
    assert again.exit_code == 1
    assert "a local stack is already running" in again.stderr

    # Ctrl-C stops it cleanly: exit 0, the record removed, the port closed
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "mailwright local stack" in out
    assert "are lost when this stack stops" in out
    assert not state.local_json.exists()
    assert not endpoint_answers(recorded["endpoint_url"])
    assert "Traceback" not in err
