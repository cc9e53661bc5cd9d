"""`mailwright local up --digest-window 2`: three sends with one digest key become one email within seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mailwright_tools.state import StateDir, live_local_stack
from tests.local.conftest import REPO, run_cli, wait_until


def test_three_sends_with_one_digest_key_become_one_email(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'functions'}{os.pathsep}{REPO}"}
    command = [sys.executable, "-c", "from mailwright_tools.cli import main; main()", "--state-dir", str(state.root)]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
        [*command, "local", "up", "--ses-rate", "100", "--no-secondary", "--digest-window", "2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: live_local_stack(state) or process.poll() is not None, timeout=30)
        assert process.poll() is None, process.communicate()

        # When three activity items for one user and key are sent (in one call: three CLI runs may take longer
        # than the window on a busy machine, and would rightly make two digests)
        requests = [
            {
                "recipient_email": "ada@example.com",
                "template_id": "activity_digest",
                "user_id": "ada",
                "digest_key": "comments",
                "template_data": {"title": f"Comment {i}", "url": f"https://example.com/c/{i}"},
            }
            for i in range(3)
        ]
        batch = tmp_path / "requests.json"
        batch.write_text(json.dumps(requests), encoding="utf-8")
        sent = run_cli(state, "send", "--file", str(batch), "--json")
        assert sent.exit_code == 0, sent.stderr
        ids = [request["request_id"] for request in sent.json()["requests"]]
        assert len(ids) == 3

        # Then each is digested into the same email, which goes out once the 2-second window ends
        statuses = [wait_until(lambda rid=rid: _digested(state, rid), timeout=20) for rid in ids]
        assert len({status["digest_id"] for status in statuses}) == 1
        emails = wait_until(lambda: list(state.outbox.glob("*-activity_digest-*.eml")), timeout=20)
        (email,) = emails
        text = email.read_text(encoding="utf-8", errors="replace")
        assert all(f"Comment {i}" in text for i in range(3))
        digest = run_cli(state, "status", statuses[0]["digest_id"], "--json").json()
        assert digest["status"] == "sent"
    finally:
        if process.poll() is None:
            process.terminate()
            process.communicate(timeout=30)


def _digested(state: StateDir, request_id: str) -> dict[str, str] | None:
    result = run_cli(state, "status", request_id, "--json").json()
    return result if result.get("status") == "digested" else None
