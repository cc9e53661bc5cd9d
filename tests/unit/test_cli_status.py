"""How `mailwright status` words a request: why it was not sent, its history lines, its times."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from mailwright_tools.cli.operations import _full_request_id, _timeline, _timeline_line, _why_not_sent, _with_iso_times
from mailwright_tools.target import Target


@pytest.mark.parametrize(
    ("item", "why"),
    [
        ({"status": "sent"}, None),
        ({"status": "suppressed", "reason_code": "suppressed", "reason": "address suppressed (MANUAL)"},
         "address suppressed (MANUAL)"),
        ({"status": "rejected", "reason_code": "unknown_template", "reason": "no template 'x'"},
         "no template 'x' (unknown_template)"),
        ({"status": "rejected", "reason_code": "missing_variable", "reason": "missing_variable: total"},
         "missing_variable: total"),
        ({"status": "opted_out", "reason_code": "opted_out"}, "opted_out"),
    ],
    ids=["sent", "suppressed", "rejected", "code-in-reason", "no-reason"],
)  # fmt: skip
def test_why_names_the_reason_once(item: dict[str, Any], why: str | None) -> None:
    assert _why_not_sent(item) == why


def test_every_history_entry_is_a_line_whatever_it_holds() -> None:
    # A request rejected, fixed and evaluated again: one worker entry per evaluation, then an SES event
    result = {
        "history": [
            {"status": "rejected", "at": 1_700_000_000.5, "evaluation": 1, "reason_code": "unknown_template"},
            {"status": "sent", "at": 1_700_000_100.25, "evaluation": 2},
            {"event": "Delivery", "status": "delivered", "at": 1_700_000_101.0},
        ],
        "events": [
            {"type": "Delivery", "status": "delivered", "at": 1_700_000_101.0, "rank": 2,
             "recipients": ["j***@example.com"], "detail": {"smtp_response": "250 OK"}},
        ],
    }  # fmt: skip

    lines = [_timeline_line(entry) for entry in _timeline(result)]

    assert lines == [
        "2023-11-14T22:13:20.500Z  rejected     evaluation: 1 · reason_code: unknown_template",
        "2023-11-14T22:15:00.250Z  sent         evaluation: 2",
        "2023-11-14T22:15:01.000Z  delivered    Delivery · to j***@example.com · smtp_response: 250 OK",
    ]


def test_json_keeps_epoch_times_and_adds_iso_twins() -> None:
    result = _with_iso_times({"completed_at": 0.0, "history": [{"at": 1.5, "status": "sent"}], "at": "not a time"})

    assert result == {
        "completed_at": 0.0,
        "completed_at_iso": "1970-01-01T00:00:00.000Z",
        "history": [{"at": 1.5, "at_iso": "1970-01-01T00:00:01.500Z", "status": "sent"}],
        "at": "not a time",
    }


def test_a_prefix_is_refused_on_a_deployed_stack_without_scanning(capsys: pytest.CaptureFixture[str]) -> None:
    deployed = Target("deployed", "Mailwright", "eu-west-1", None, {}, {}, {"messages": "t"}, "bucket")

    class NoScan:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the table was read: {name}")

    assert _full_request_id(deployed, NoScan(), "0" * 32) == "0" * 32  # a whole id is taken as it is
    assert _full_request_id(deployed, NoScan(), "ses-message-id") == "ses-message-id"
    with pytest.raises(typer.Exit) as refused:
        _full_request_id(deployed, NoScan(), "0123456789ab")
    assert refused.value.exit_code == 2
    assert "give the whole 32-character request id" in capsys.readouterr().err
