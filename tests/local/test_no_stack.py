"""Without any stack to talk to, every command says so in one line and exits 3; bad input is still exit 2.

A new user's machine: no AWS variables, no AWS config files, no local stack
recorded, the working directory somewhere else. Nothing here reaches the
network: botocore stops at the missing region or credentials first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import NoRegionError
from typer.testing import CliRunner

from mailwright_tools.cli import app
from tests.local.conftest import REPO, CliResult

ORDER = {"order_id": "A-1", "total_amount": "$12.50"}


@pytest.fixture
def bare_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No AWS settings at all, an empty working directory (no .mailwright/ in it); returns that directory."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("MAILWRIGHT_STATE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def mailwright(*args: str) -> CliResult:
    """The CLI as typed, in this process (the state directory is ./.mailwright)."""
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)


def one_line_error(result: CliResult) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


COMMANDS = [
    ("lanes", "status"),
    ("lanes", "pause", "bulk"),
    ("status", "0123456789abcdef0123456789abcdef"),
    ("send", "--to", "ada@example.com", "--template", "order_confirmation", "--data", json.dumps(ORDER)),
    ("dlq", "list"),
    ("suppression", "list"),
    ("templates", "upload"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_without_a_region_every_command_exits_3_in_one_line(bare_machine: Path, args: tuple[str, ...]) -> None:
    result = mailwright(*args)

    assert result.exit_code == 3
    line = one_line_error(result)
    assert "no AWS region; pass --region or set AWS_DEFAULT_REGION" in line
    assert "mailwright local up" in line


@pytest.mark.parametrize("args", COMMANDS[:3], ids=[" ".join(c[:2]) for c in COMMANDS[:3]])
def test_without_credentials_commands_exit_3_in_one_line(
    bare_machine: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")

    result = mailwright(*args)

    assert result.exit_code == 3
    assert "Unable to locate credentials" in one_line_error(result)


def test_bad_input_is_exit_2_before_any_stack_is_looked_for(bare_machine: Path) -> None:
    typo = mailwright("send", "--to", "ada@example.com", "--template", "order_confirmaton", "--data", json.dumps(ORDER))
    assert typo.exit_code == 2
    assert one_line_error(typo) == (
        "error: unknown template 'order_confirmaton' (did you mean order_confirmation?); nothing was published"
    )

    file = bare_machine / "requests.json"
    good = {"recipient_email": "ada@example.com", "template_id": "order_confirmation", "template_data": ORDER}
    file.write_text(json.dumps([{**good, "template_dat": {}}, good, {**good, "template_data": {"order_id": "1"}}]))
    invalid = mailwright("send", "--file", str(file))
    assert invalid.exit_code == 2
    line = one_line_error(invalid)
    assert "2 invalid request(s), nothing was published" in line
    assert "request 0: template_dat: Extra inputs are not permitted" in line
    assert "request 2: template order_confirmation needs template_data: total_amount" in line


def test_an_error_no_command_handled_is_one_line(bare_machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr("mailwright_tools.target.resolve_target", broken)

    result = mailwright("dlq", "list")

    assert result.exit_code == 1
    assert one_line_error(result) == "error: RuntimeError: the disk is on fire"


def test_an_aws_setup_error_anywhere_is_exit_3(bare_machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_region(*args: object, **kwargs: object) -> None:
        raise NoRegionError()

    monkeypatch.setattr("mailwright_tools.target.resolve_target", no_region)

    result = mailwright("suppression", "list")

    assert result.exit_code == 3
    assert one_line_error(result).startswith("error: no AWS region: pass --region or set AWS_DEFAULT_REGION")


def test_the_console_script_reports_no_region_in_one_line(bare_machine: Path) -> None:
    # The installed `mailwright` (its main()), as a new user first runs it
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(bare_machine),
        "PYTHONPATH": f"{REPO / 'functions'}{os.pathsep}{REPO}",
        "AWS_CONFIG_FILE": str(bare_machine / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(bare_machine / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    process = subprocess.run(
        [sys.executable, "-c", "from mailwright_tools.cli import main; main()", "lanes", "status"],
        cwd=bare_machine,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert process.returncode == 3, process.stderr
    assert one_line_error(CliResult(process.returncode, process.stdout, process.stderr))
