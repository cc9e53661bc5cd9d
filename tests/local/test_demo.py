"""`mailwright local demo` end to end: every published request is accounted for, and the outbox holds real mail."""

from __future__ import annotations

import email
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from mailwright_tools.cli.local import _print_next_steps
from mailwright_tools.local.demo import Accounting, PublishedItem, account, examples
from mailwright_tools.state import StateDir
from tests.local.conftest import TEST_SES_RATE, run_cli


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], StateDir]:
    """One small demo run (its own local stack), shared by the tests below."""
    state = StateDir(tmp_path_factory.mktemp("demo"))
    result = run_cli(state, "local", "demo", "--count", "60", "--seed", "7", "--ses-rate", str(TEST_SES_RATE), "--json")
    assert result.exit_code == 0, result.stderr
    report: dict[str, Any] = result.json()
    return report, state


def test_every_published_request_is_accounted_for(demo: tuple[dict[str, Any], StateDir]) -> None:
    report, _ = demo

    assert report["published"] == 60
    assert report["unaccounted"] == 0
    assert sum(report["outcomes"].values()) + report["dlq"] == report["published"]
    for state in ("sent", "suppressed", "opted_out", "rejected", "duplicate"):
        assert report["outcomes"].get(state, 0) >= 1, state


def test_the_mailbox_simulator_feeds_back(demo: tuple[dict[str, Any], StateDir]) -> None:
    report, _ = demo

    # bounce@ became a BOUNCE suppression and complaint@ a COMPLAINT one, through SNS, SQS and the feedback function
    assert report["suppressions_created"]["BOUNCE"] >= 1
    assert report["suppressions_created"]["COMPLAINT"] >= 1
    # As deployed, the configuration set publishes no Send events, and each email is delivered or bounced
    assert "Send" not in report["ses_events"]
    assert report["ses_events"]["Delivery"] + report["ses_events"]["Bounce"] == report["outcomes"]["sent"]
    assert report["ses_events"]["Bounce"] >= 1


def test_the_report_counts_the_outcome_events_a_rule_on_the_bus_heard(demo: tuple[dict[str, Any], StateDir]) -> None:
    report, _ = demo

    # The demo's stack publishes what cdk.json's outcome_events names (the default: what went wrong), one
    # event per such outcome and per bounce; not EmailSent (one per email, opted into in context)
    heard = report["outcome_events"]
    assert "EmailSent" not in report["outcome_events_published"] and "EmailSent" not in heard
    assert heard["EmailSuppressed"] == report["outcomes"]["suppressed"]
    assert heard["EmailRejected"] >= report["outcomes"]["rejected"]
    assert heard["EmailBounced"] == report["ses_events"]["Bounce"]


def test_the_report_measures_latency_per_lane(demo: tuple[dict[str, Any], StateDir]) -> None:
    report, _ = demo

    assert set(report["latency_s"]) == {"critical", "standard", "bulk"}
    for numbers in report["latency_s"].values():
        assert 0 <= numbers["p50"] <= numbers["p95"] <= numbers["p99"]
    assert sum(n["count"] for n in report["latency_s"].values()) == report["outcomes"]["sent"]
    assert report["throughput"]["sent"] == report["outcomes"]["sent"]
    assert report["ses_rate"]["per_second"] == TEST_SES_RATE
    assert "instead of cdk.json's 14/s" in report["ses_rate"]["note"]


def test_the_outbox_holds_one_parseable_email_per_send(demo: tuple[dict[str, Any], StateDir]) -> None:
    report, state = demo

    files = sorted(state.outbox.glob("*.eml"))
    assert len(files) == report["outcomes"]["sent"] == report["outbox"]["emails"]
    index = (state.outbox / "index.html").read_text()
    lanes = set()
    for file in files:
        message: Message = email.message_from_bytes(file.read_bytes())
        assert message["From"] and message["To"] and message["Subject"]
        assert len(message["X-Mailwright-Request-Id"]) == 32
        assert f'<span class="rid">{message["X-Mailwright-Request-Id"]}</span>' in index  # the whole id, for status
        lanes.add(message["X-Mailwright-Lane"])
        parts = {part.get_content_type() for part in message.walk()}
        assert {"text/plain", "text/html"} <= parts
        assert f'href="{file.stem}.html"' in index
        assert (file.with_suffix(".html")).is_file()
    assert lanes == {"critical", "standard", "bulk"}
    marketing = [m for m in map(lambda f: email.message_from_bytes(f.read_bytes()), files) if m["List-Unsubscribe"]]
    assert marketing and all(m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" for m in marketing)
    assert Path(report["outbox"]["path"]) == state.outbox / "index.html"


def test_the_demo_stops_its_stack(demo: tuple[dict[str, Any], StateDir]) -> None:
    report, state = demo

    assert not state.local_json.exists()
    assert (state.logs / "workers.log").is_file()
    assert report["stack_stopped"] is True


def test_the_demo_ends_with_requests_to_follow_and_how_to_keep_a_stack(
    demo: tuple[dict[str, Any], StateDir], capsys: pytest.CaptureFixture[str]
) -> None:
    report, _ = demo

    # One request of each kind the run produced, each a 32-character id
    assert {"sent", "suppressed", "rejected"} <= set(report["examples"])
    assert all(len(request_id) == 32 for request_id in report["examples"].values())

    _print_next_steps(report)
    closing = capsys.readouterr().out

    assert "the outbox's unsubscribe links no longer answer" in closing
    assert "`mailwright local up`" in closing
    for key, request_id in report["examples"].items():
        assert f"mailwright status {request_id}" in closing, key

    # Against a stack that keeps running, the closing lines say the links work
    _print_next_steps({**report, "stack_stopped": False})
    assert "unsubscribe links work while it does" in capsys.readouterr().out


def test_accounting_rules() -> None:
    def item(*ids: str) -> PublishedItem:
        return PublishedItem("s", "queue", "standard", list(ids), 0.0)

    log = {"a": {"status": "sent"}, "c": {"status": "rejected"}}
    published = [item("a"), item("a"), item("x", "a"), item("c", "a"), item("d"), item("q")]

    accounting: Accounting = account(published, log, dlq_ids={"d"})

    # a first, a again (a duplicate), an idempotency loser whose conflict id was not logged (a duplicate too),
    # one whose conflict id was logged (rejected), one in a DLQ, one nowhere
    assert accounting.states == ["sent", "duplicate", "duplicate", "rejected", "dlq", "unaccounted"]
    assert accounting.outcomes == {"sent": 1, "rejected": 1, "duplicate": 2}
    assert accounting.unaccounted_ids == ["q"]
    assert accounting.found_ids == ["a", "a", "a", "c", None, None]


def test_examples_prefer_the_telling_scenario() -> None:
    published = [
        PublishedItem("simulator:success", "queue", "standard", ["s1"], 0.0),
        PublishedItem("ordinary", "queue", "standard", ["s2"], 0.0),
        PublishedItem("simulator:bounce", "queue", "standard", ["b1"], 0.0),
        PublishedItem("invalid", "raw", "standard", ["r1"], 0.0),
        PublishedItem("missing_variable", "queue", "standard", ["r2"], 0.0),
    ]
    statuses = {"s1": "sent", "s2": "sent", "b1": "sent", "r1": "rejected", "r2": "rejected"}
    log = {rid: {"status": status} for rid, status in statuses.items()}

    chosen = examples(published, account(published, log, dlq_ids=set()))

    assert chosen == {"sent": "s2", "bounced": "b1", "rejected": "r2"}
