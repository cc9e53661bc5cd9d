"""`mailwright send --csv` against the local stack: all-or-nothing checks, a rerun sends nothing twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailwright_tools.local.stack import LocalStack
from tests.local.conftest import Cli, wait_until

pytestmark = pytest.mark.slow

ROWS = "email,user_name,login_link,Notes\n" + "".join(
    f"csv{i}@example.com,User {i},https://example.com/l{i},internal {i}\n" for i in range(3)
)


def sent_to(local_stack: LocalStack, address: str) -> int:
    assert local_stack.mailbox is not None
    outbox = local_stack.options.state.outbox
    return sum(1 for eml in outbox.glob("*.eml") if f"To: {address}" in eml.read_text(errors="replace"))


def test_bad_rows_are_listed_by_line_and_nothing_is_published(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "recipient_email,user_name,login_link\nok@example.com,A,https://x\nnope,B,https://x\nc@example.com,C\n"
    )

    result = cli("send", "--csv", str(path), "--template", "welcome_email", "--json")

    assert result.exit_code == 2
    problems = result.json()["problems"]
    assert [p["line"] for p in problems] == [3, 4]
    assert result.json()["published"] == 0


def test_a_rerun_sends_nothing_twice_and_a_fixed_row_sends_only_itself(
    cli: Cli, local_stack: LocalStack, tmp_path: Path
) -> None:
    path = tmp_path / "launch.csv"
    path.write_text(ROWS)
    args = [
        "send",
        "--csv",
        str(path),
        "--template",
        "welcome_email",
        "--map",
        "email=recipient_email",
        "--map",
        "Notes=-",
    ]

    first = cli(*args, "--json")
    assert first.exit_code == 0, first.stderr
    assert (first.json()["published"], first.json()["lanes"]) == (3, {"standard": 3})
    assert first.json()["batch_id"] == "welcome_email-launch.csv"
    wait_until(lambda: all(sent_to(local_stack, f"csv{i}@example.com") == 1 for i in range(3)), timeout=60)

    # Published again (an interrupted run retried): the worker recognises every row.
    again = cli(*args, "--json")
    assert again.exit_code == 0 and again.json()["published"] == 3
    assert local_stack.wait_until_drained(timeout=60)
    assert [sent_to(local_stack, f"csv{i}@example.com") for i in range(3)] == [1, 1, 1]

    # One row fixed: only it is sent again.
    path.write_text(ROWS.replace("User 1,", "Userine 1,"))
    fixed = cli(*args)
    assert fixed.exit_code == 0, fixed.stderr
    assert "published 3 of 3 rows" in fixed.stdout
    wait_until(lambda: sent_to(local_stack, "csv1@example.com") == 2, timeout=60)
    assert local_stack.wait_until_drained(timeout=60)
    assert [sent_to(local_stack, f"csv{i}@example.com") for i in range(3)] == [1, 2, 1]


def test_one_request_flags_do_not_go_with_csv(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(ROWS)

    result = cli("send", "--csv", str(path), "--template", "welcome_email", "--to", "a@example.com")

    assert result.exit_code == 2
    assert "--csv takes --template" in result.stderr
