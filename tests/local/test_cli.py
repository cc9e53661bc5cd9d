"""Every `mailwright` command against a running local stack, through the CLI as a user runs it."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailwright.constants import LANES
from mailwright.ports import OutboundEmail
from mailwright_tools.cli.templates import chromium_path
from mailwright_tools.local.ses_events import events_for
from mailwright_tools.local.stack import LocalStack
from mailwright_tools.queues import body_request_id, queue_depth
from mailwright_tools.state import StateDir
from tests.local.conftest import REPO, Cli, run_cli, wait_until

ORDER = '{"order_id": "A-1", "total_amount": "$12.50"}'
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def status_of(cli: Cli, request_id: str) -> dict[str, Any]:
    result = cli("status", request_id, "--json")
    data: dict[str, Any] = result.json()
    return data


def settled(cli: Cli, request_id: str) -> dict[str, Any] | None:
    data = status_of(cli, request_id)
    return data if data["found"] else None


def lanes_depth(local_stack: LocalStack) -> int:
    """Messages in the lane queues: visible, in flight or delayed."""
    sqs = local_stack.session().client("sqs")
    return sum(queue_depth(sqs, url) for url in local_stack.state["queues"].values())


def lane_states(cli: Cli) -> dict[str, str]:
    result = cli("lanes", "status", "--json")
    assert result.exit_code == 0, result.stderr
    return {lane["lane"]: lane["state"] for lane in result.json()["lanes"]}


@pytest.fixture
def standard_paused(cli: Cli) -> Iterator[None]:
    """The standard lane paused for the test, resumed after it whatever happens."""
    paused = cli("lanes", "pause", "standard", "--json")
    assert paused.exit_code == 0, paused.stderr
    try:
        yield
    finally:
        cli("lanes", "resume", "standard")


# -- send and status ----------------------------------------------------------


def test_send_from_flags_is_sent_and_status_tells_its_history(cli: Cli) -> None:
    # Given a request built from flags
    result = cli(
        "send", "--to", "Ada@Example.com", "--template", "order_confirmation", "--data", ORDER,
        "--locale", "fr-CA", "--metadata", "campaign=spring", "--json",
    )  # fmt: skip

    # Then it is published to its template's lane and its id returned
    assert result.exit_code == 0, result.stderr
    published = result.json()
    assert published["published"] == 1
    (request,) = published["requests"]
    assert request["lane"] == "standard"
    assert request["recipient"] == "ada@example.com"

    # And status shows it sent, with the SES events that followed
    status = wait_until(lambda: settled(cli, request["request_id"]))
    assert status["status"] == "sent"
    assert status["why"] is None
    assert status["locale"] == "fr"
    assert status["metadata"] == {"campaign": "spring"}
    events = wait_until(
        lambda: [e for e in status_of(cli, request["request_id"])["events"] if e.get("type") == "Delivery"]
    )
    assert events


def test_send_through_the_bus_routes_by_the_templates_priority(cli: Cli) -> None:
    data = '{"user_name": "Grace", "reset_link": "https://example.com/r", "expires_in_minutes": 15}'

    result = cli(
        "send", "--to", "grace@example.com", "--template", "password_reset", "--data", data, "--via", "bus", "--json"
    )

    assert result.exit_code == 0, result.stderr
    request_id = result.json()["requests"][0]["request_id"]
    status = wait_until(lambda: settled(cli, request_id))
    assert (status["status"], status["lane"]) == ("sent", "critical")


def test_send_file_with_an_invalid_request_publishes_nothing(cli: Cli, local_stack: LocalStack, tmp_path: Path) -> None:
    good = {"recipient_email": "linus@example.com", "template_id": "welcome_email", "template_data": {}}
    bad = {"recipient_email": "linus@example.com", "template_id": "welcome_email", "template_dat": {}}
    file = tmp_path / "requests.json"
    file.write_text(json.dumps([good, bad]))

    result = cli("send", "--file", str(file))

    assert result.exit_code == 2
    assert "request 1: template_dat: Extra inputs are not permitted" in result.stderr
    assert "nothing was published" in result.stderr
    sqs = local_stack.session().client("sqs")
    assert sqs.receive_message(QueueUrl=local_stack.state["queues"]["standard"]).get("Messages", []) == []


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (
            ("--template", "order_confirmaton", "--data", ORDER),
            "unknown template 'order_confirmaton' (did you mean order_confirmation?)",
        ),
        (
            ("--template", "order_confirmation", "--data", '{"order_id": "A-2"}'),
            "template order_confirmation needs template_data: total_amount",
        ),
    ],
    ids=["template-typo", "missing-variable"],
)
def test_send_checks_the_template_first_and_publishes_nothing(
    cli: Cli, local_stack: LocalStack, args: tuple[str, ...], problem: str
) -> None:
    # Given a running stack with nothing queued
    wait_until(lambda: lanes_depth(local_stack) == 0)

    result = cli("send", "--to", "grace@example.com", *args)

    # Then the problem is named before anything is published
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {problem}; nothing was published"
    assert "published" not in result.stdout
    assert lanes_depth(local_stack) == 0


def test_send_file_lists_every_template_problem(cli: Cli, local_stack: LocalStack, tmp_path: Path) -> None:
    data = json.loads(ORDER)
    good = {"recipient_email": "ada@example.com", "template_id": "order_confirmation", "template_data": data}
    typo = {**good, "template_id": "welcome_emial"}
    missing = {**good, "template_data": {}}
    file = tmp_path / "requests.json"
    file.write_text(json.dumps([good, typo, missing]))
    wait_until(lambda: lanes_depth(local_stack) == 0)

    result = cli("send", "--file", str(file))

    assert result.exit_code == 2
    assert "2 invalid request(s), nothing was published" in result.stderr
    assert "request 1: unknown template 'welcome_emial' (did you mean welcome_email?)" in result.stderr
    assert "request 2: template order_confirmation needs template_data: order_id, total_amount" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert lanes_depth(local_stack) == 0


def test_send_needs_a_recipient_and_a_template(cli: Cli) -> None:
    result = cli("send", "--template", "welcome_email")

    assert result.exit_code == 2
    assert "--to and --template are required" in result.stderr


def test_status_of_a_rejected_request_says_why(cli: Cli, local_stack: LocalStack) -> None:
    # Given a plain producer's body that names a template that does not exist
    body = json.dumps({"recipient_email": "dennis@example.com", "template_id": "no_such_template"})
    local_stack.session().client("sqs").send_message(QueueUrl=local_stack.state["queues"]["standard"], MessageBody=body)

    status = wait_until(lambda: settled(cli, body_request_id(body)))

    assert status["status"] == "rejected"
    assert status["reason_code"] == "unknown_template"
    assert "no template 'no_such_template'" in status["why"]
    human = cli("status", body_request_id(body))
    assert "rejected" in human.stdout and "unknown_template" in human.stdout


def test_status_of_an_unknown_request_exits_1(cli: Cli, local_stack: LocalStack) -> None:
    wait_until(lambda: lanes_depth(local_stack) == 0)

    result = cli("status", "0" * 32, "--json")

    assert result.exit_code == 1
    assert result.json()["found"] is False
    assert result.json()["why"] == (
        "not in the message log or any dead-letter queue: not processed yet, never published, or expired "
        "(--wait waits for it)"
    )


def test_status_right_after_send_says_not_processed_yet_and_wait_follows_it(cli: Cli, standard_paused: None) -> None:
    # Given an order confirmation waiting in the paused standard lane
    sent = cli("send", "--to", "linus@example.com", "--template", "order_confirmation", "--data", ORDER, "--json")
    assert sent.exit_code == 0, sent.stderr
    request_id = sent.json()["requests"][0]["request_id"]

    # Then status says it is most likely not processed yet, and exits 1
    early = cli("status", request_id, "--json")
    assert early.exit_code == 1
    assert early.json()["why"].startswith("not in the message log yet: most likely not processed yet")
    assert early.json()["pending_in_lanes"]["standard"] == 1

    # And a wait that runs out exits 1 saying how long it waited
    short = cli("status", request_id, "--wait", "--timeout", "1")
    assert short.exit_code == 1
    assert "not in the message log after waiting 1 s" in short.stdout

    # When the lane resumes, --wait follows the request to its terminal state and exits 0
    assert cli("lanes", "resume", "standard").exit_code == 0
    waited = cli("status", request_id, "--wait", "--timeout", "30", "--json")
    assert waited.exit_code == 0, waited.stdout
    assert waited.json()["status"] == "sent"


def test_status_wait_exits_1_for_an_id_nobody_published(cli: Cli) -> None:
    result = cli("status", "f" * 32, "--wait", "--timeout", "1")

    assert result.exit_code == 1
    assert "not in the message log or any dead-letter queue after waiting 1 s" in result.stdout


def test_status_takes_the_id_prefix_the_outbox_shows(cli: Cli, local_stack: LocalStack) -> None:
    sent = cli("send", "--to", "katherine@example.com", "--template", "order_confirmation", "--data", ORDER, "--json")
    request_id = sent.json()["requests"][0]["request_id"]
    wait_until(lambda: settled(cli, request_id))

    # The 12 characters of an outbox file name, and the whole id in its index
    by_prefix = cli("status", request_id[:12], "--json")
    assert by_prefix.exit_code == 0, by_prefix.stderr
    assert by_prefix.json()["request_id"] == request_id
    outbox = local_stack.options.state.outbox
    assert list(outbox.glob(f"*-{request_id[:12]}.eml"))
    assert f'<span class="rid">{request_id}</span>' in (outbox / "index.html").read_text()

    # A prefix two requests share is refused, naming them
    dynamodb = local_stack.session().client("dynamodb")
    for twin in ("abcdef0123", "abcdef0124"):
        item = {"pk": {"S": twin + "0" * 22}, "sk": {"S": "request"}, "status": {"S": "sent"}}
        dynamodb.put_item(TableName=local_stack.state["tables"]["messages"], Item=item)
    ambiguous = cli("status", "abcdef012")
    assert ambiguous.exit_code == 2
    assert "'abcdef012' is the start of 2 request ids" in ambiguous.stderr


def test_status_reads_like_a_timeline(cli: Cli) -> None:
    # Given an email to the mailbox simulator's bounce address: sent, then bounced
    sent = cli("send", "--to", "bounce@simulator.amazonses.com", "--template", "order_confirmation",
               "--data", ORDER, "--json")  # fmt: skip
    request_id = sent.json()["requests"][0]["request_id"]
    wait_until(lambda: status_of(cli, request_id).get("delivery") == "bounced")

    human = cli("status", request_id)

    # Then one line per entry: ISO time, status, and the event's details, no raw JSON
    lines = human.stdout.splitlines()
    history = lines[lines.index("history (UTC):") + 1 :]
    assert [line.split()[1] for line in history] == ["sent", "bounced"]
    assert all(ISO_TIME.fullmatch(line.split()[0]) for line in history)
    assert "Bounce · to b***@simulator.amazonses.com · bounce_type: Permanent" in history[1]
    assert "{" not in human.stdout
    assert re.search(r"completed_at\s+" + ISO_TIME.pattern, human.stdout)
    # And --json keeps every field, each time beside its ISO form
    data = status_of(cli, request_id)
    bounce = next(event for event in data["events"] if event["type"] == "Bounce")
    assert bounce["recipients"] == ["b***@simulator.amazonses.com"]
    assert ISO_TIME.fullmatch(bounce["at_iso"]) and isinstance(bounce["at"], float)
    assert ISO_TIME.fullmatch(data["completed_at_iso"])


def test_status_of_a_suppressed_request_says_why_once(cli: Cli) -> None:
    assert cli("suppression", "add", "dennis.r@example.com").exit_code == 0
    sent = cli("send", "--to", "dennis.r@example.com", "--template", "order_confirmation", "--data", ORDER, "--json")
    request_id = sent.json()["requests"][0]["request_id"]

    status = wait_until(lambda: settled(cli, request_id))

    assert status["status"] == "suppressed"
    assert status["why"] == "address suppressed (MANUAL)"
    assert "why: address suppressed (MANUAL)\n" in cli("status", request_id).stdout


# -- suppression --------------------------------------------------------------


def test_suppression_add_check_list_remove(cli: Cli) -> None:
    address = "Margaret@Example.com"

    added = cli("suppression", "add", address, "--note", "asked by phone", "--actor", "ops-team", "--json")
    assert added.exit_code == 0, added.stderr
    assert added.json()["reason"] == "MANUAL"

    check = cli("suppression", "check", address.lower(), "--json").json()
    assert check["suppressed"] is True
    assert check["reason"] == "MANUAL"
    assert check["address"] == "m***@example.com"
    assert [h["actor"] for h in check["history"]] == ["ops-team"]

    listed = cli("suppression", "list", "--json").json()
    (entry,) = [e for e in listed["suppressions"] if e["address"] == "m***@example.com"]
    # Stored under a keyed hash of the stack's keyring, never the plain SHA-256 anyone could compute.
    assert entry["address_hash"].startswith("k1-")
    assert hashlib.sha256(address.lower().encode()).hexdigest() not in entry["address_hash"]

    removed = cli("suppression", "remove", address, "--note", "consent renewed", "--json")
    assert removed.exit_code == 0, removed.stderr
    after = cli("suppression", "check", address, "--json").json()
    assert (after["suppressed"], after["reason"]) == (False, None)
    assert [h["action"] for h in after["history"]] == ["add", "remove"]


def test_removing_a_complaint_needs_force(cli: Cli) -> None:
    address = "barbara@example.com"
    assert cli("suppression", "add", address, "--reason", "complaint").exit_code == 0

    refused = cli("suppression", "remove", address)
    assert refused.exit_code == 1
    assert "--force" in refused.stderr

    forced = cli("suppression", "remove", address, "--force", "--note", "asked again", "--json")
    assert forced.exit_code == 0, forced.stderr
    assert forced.json()["reason"] == "COMPLAINT"
    assert cli("suppression", "check", address, "--json").json()["suppressed"] is False


def test_removing_what_is_not_suppressed_exits_1(cli: Cli) -> None:
    result = cli("suppression", "remove", "nobody@example.com")

    assert result.exit_code == 1
    assert "is not suppressed" in result.stderr


# -- dead-letter queues -------------------------------------------------------


def test_dlq_list_and_redrive(cli: Cli, local_stack: LocalStack) -> None:
    # Given a request that ended in the standard lane's DLQ
    body = json.dumps(
        {"recipient_email": "ken@example.com", "template_id": "order_confirmation", "template_data": json.loads(ORDER)}
    )
    sqs = local_stack.session().client("sqs")
    sqs.send_message(QueueUrl=local_stack.state["dlqs"]["standard"], MessageBody=body)

    # When listing the DLQs, it is there with its request id (moved by the dead-letter function, which
    # recorded it as failed, to the lane's parked queue), and still there afterwards
    wait_until(lambda: cli("dlq", "list", "--json").json()["queues"]["standard-parked"]["count"] == 1)
    listed = cli("dlq", "list", "--json").json()
    assert listed["total"] == 1
    (message,) = listed["queues"]["standard-parked"]["messages"]
    assert message["request_id"] == body_request_id(body)
    assert message["recipient"] == "k***@example.com"
    assert cli("dlq", "list", "--lane", "standard", "--json").json()["total"] == 1
    assert cli("status", body_request_id(body), "--json").json()["status"] == "failed"

    # When redriving it, it goes back to its queue, unchanged, and gets sent
    redriven = cli("dlq", "redrive", "--lane", "standard", "--json")
    assert redriven.exit_code == 0, redriven.stderr
    assert redriven.json()["moved"] == 1

    def outcome() -> dict[str, Any] | None:  # the log says `failed` until the redriven request's outcome replaces it
        found = settled(cli, body_request_id(body))
        return found if found and found["status"] != "failed" else None

    status = wait_until(outcome)
    assert status["status"] == "sent"
    assert cli("dlq", "list", "--json").json()["total"] == 0


def test_dlq_with_an_unknown_lane_exits_2(cli: Cli) -> None:
    result = cli("dlq", "list", "--lane", "urgent")

    assert result.exit_code == 2
    assert "no dead-letter queue 'urgent'" in result.stderr


# -- feedback replay ----------------------------------------------------------


def _bounce_events(address: str) -> list[dict[str, Any]]:
    email = OutboundEmail(
        from_address="no-reply@example.com",
        to_address="bounce@simulator.amazonses.com",
        subject="Hello",
        html="<p>Hi</p>",
        text="Hi",
        configuration_set="mailwright-events",
        tags=(("request_id", "f" * 32), ("category", "transactional")),
    )
    send, bounce = events_for(email, "ses-message-1", sent_at=1_700_000_000.0, identity="no-reply@example.com")
    bounce["bounce"]["bouncedRecipients"][0]["emailAddress"] = address
    envelope = {
        "Type": "Notification",
        "MessageId": "sns-1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:mailwright-ses-events",
        "Message": json.dumps(bounce),
    }
    return [send, envelope]


def test_feedback_replay_applies_raw_events_and_sns_envelopes(cli: Cli, tmp_path: Path) -> None:
    file = tmp_path / "events.json"
    file.write_text(json.dumps(_bounce_events("frances@example.com")))

    result = cli("feedback", "replay", str(file), "--json")

    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert (report["processed"], report["suppressed"], report["ignored"], report["errors"]) == (2, 1, 0, 0)
    check = cli("suppression", "check", "frances@example.com", "--json").json()
    assert (check["suppressed"], check["reason"]) == (True, "BOUNCE")


def test_feedback_replay_of_a_single_unreadable_event_exits_1(cli: Cli, tmp_path: Path) -> None:
    file = tmp_path / "event.json"
    file.write_text(json.dumps({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": "{oops"}))

    result = cli("feedback", "replay", str(file), "--json")

    assert result.exit_code == 1
    assert result.json()["errors"] == 1


# -- lanes and the breaker ----------------------------------------------------


def test_lanes_pause_and_resume_the_local_event_sources(cli: Cli, standard_paused: None) -> None:
    status = cli("lanes", "status", "--json").json()
    assert {lane["lane"]: lane["paused"] for lane in status["lanes"]} == {
        "critical": False,
        "standard": True,
        "bulk": False,
    }
    assert status["target"].startswith("local stack at http://127.0.0.1:")
    assert {lane["function_name"] for lane in status["lanes"]} == {f"mailwright-{n}-worker" for n in LANES}

    resumed = cli("lanes", "resume", "standard", "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.json()["lane"]["state"] == "Enabled"
    assert lane_states(cli)["standard"] == "Enabled"

    unknown = cli("lanes", "pause", "urgent")
    assert unknown.exit_code == 2
    assert "unknown lane 'urgent'" in unknown.stderr


def test_a_reputation_alarm_pauses_bulk_on_the_local_stack(cli: Cli, local_stack: LocalStack) -> None:
    cloudwatch = local_stack.session().client("cloudwatch")
    alarm = f"{local_stack.config.stack_name}-ses-complaint-rate"
    try:
        # When the complaint-rate alarm goes to ALARM
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="trying the breaker")

        # Then the breaker pauses bulk, and only bulk
        wait_until(lambda: lane_states(cli)["bulk"] == "Disabled")
        assert lane_states(cli) == {"critical": "Enabled", "standard": "Enabled", "bulk": "Disabled"}
        assert cli("lanes", "status", "--json").json()["reputation_alarms"][alarm] == "ALARM"

        # And resuming while the alarm fires warns that the breaker will not pause again by itself
        resumed = cli("lanes", "resume", "bulk")
        assert resumed.exit_code == 0, resumed.stderr
        assert f"warning: {alarm} still in ALARM" in resumed.stdout
        assert lane_states(cli)["bulk"] == "Enabled"
    finally:
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="test over")
        cli("lanes", "resume", "bulk")
    assert [o.action for o in local_stack.breaker.outcomes if o.alarm_name == alarm][:1] == ["paused"]


# -- templates ----------------------------------------------------------------


def test_templates_validate_passes_the_shipped_templates(cli: Cli) -> None:
    result = cli("templates", "validate", "--json")

    assert result.exit_code == 0, result.stdout
    report = result.json()
    assert report["ok"] is True
    assert {(t["template"], t["locale"]) for t in report["templates"]} >= {
        ("newsletter", "fr"),
        ("welcome_email", "en"),
    }


def test_templates_validate_reports_file_and_line(cli: Cli, tmp_path: Path) -> None:
    shutil.copytree(REPO / "templates", tmp_path, dirs_exist_ok=True)
    for other in ("newsletter", "order_confirmation", "password_reset"):
        shutil.rmtree(tmp_path / other)
    (tmp_path / "welcome_email" / "en" / "body.html").write_text("<p>\n{{ user_name }}\n{{ missing_thing }}\n</p>\n")
    (tmp_path / "welcome_email" / "fr" / "body.txt").write_text("Bonjour\n{{ user_name | shout }}\n")
    (tmp_path / "welcome_email" / "fr" / "subject.txt").write_text("{{ ''.__class__.__mro__ }}")

    result = cli("templates", "validate", "--templates-dir", str(tmp_path), "--json")

    assert result.exit_code == 1
    problems = {
        (p["file"], p["line"], p["message"].split(":")[0]) for t in result.json()["templates"] for p in t["problems"]
    }
    assert ("welcome_email/en/body.html", 3, "missing variable") in problems
    # The stricter check names the variable template.json should declare, at the same line.
    assert any(
        file == "welcome_email/en/body.html" and line == 3 and "uses 'missing_thing'" in message
        for file, line, message in problems
    )
    assert ("welcome_email/fr/body.txt", 2, "No filter named 'shout'.") in problems
    assert ("welcome_email/fr/subject.txt", 1, "blocked by the sandbox") in problems
    human = cli("templates", "validate", "--templates-dir", str(tmp_path))
    assert "welcome_email/en/body.html:3" in human.stdout


def test_templates_preview_writes_html_text_and_subject(cli: Cli, local_stack: LocalStack, tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"order_id": "Z-9", "total_amount": "42 €"}))

    result = cli("templates", "preview", "order_confirmation", "--locale", "fr-CA", "--data", str(data), "--json")

    assert result.exit_code == 0, result.stderr
    preview = result.json()
    assert preview["locale"] == "fr"
    assert "Z-9" in preview["subject"]
    html = Path(preview["files"]["html"]).read_text()
    assert "42 €" in html
    assert Path(preview["files"]["html"]).parent == local_stack.options.state.preview


def test_templates_preview_png(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    if chromium_path() is None:
        monkeypatch.setenv("MAILWRIGHT_CHROMIUM", "/nonexistent/chromium")
        monkeypatch.setenv("PATH", "/nonexistent")
        result = cli("templates", "preview", "newsletter", "--png")
        assert result.exit_code == 1
        assert "--png needs Chromium" in result.stderr
        return
    result = cli("templates", "preview", "newsletter", "--png", "--json")
    assert result.exit_code == 0, result.stderr
    assert Path(result.json()["files"]["png"]).read_bytes().startswith(b"\x89PNG")


def test_templates_preview_of_an_unknown_template_exits_2(cli: Cli) -> None:
    result = cli("templates", "preview", "nope")

    assert result.exit_code == 2
    assert "no template 'nope'" in result.stderr


def test_templates_upload_puts_new_versions_in_the_bucket(cli: Cli, local_stack: LocalStack) -> None:
    result = cli("templates", "upload", "--json")

    assert result.exit_code == 0, result.stderr
    uploaded = result.json()
    assert uploaded["bucket"] == local_stack.state["templates_bucket"]
    assert set(uploaded["uploaded"]) == {
        "activity_digest",
        "newsletter",
        "order_confirmation",
        "password_reset",
        "welcome_email",
    }
    s3 = local_stack.session().client("s3")
    versions = s3.list_object_versions(Bucket=uploaded["bucket"], Prefix="templates/welcome_email.json")["Versions"]
    assert uploaded["uploaded"]["welcome_email"] in {v["VersionId"] for v in versions}
    assert len(versions) >= 2  # the one `local up` uploaded, and this one


# -- targets ------------------------------------------------------------------


def test_without_a_local_stack_or_a_deployed_one_commands_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens here: CloudFormation answers at once that it cannot be reached.
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", "http://127.0.0.1:9")

    result = run_cli(StateDir(tmp_path), "--stack-name", "Nowhere", "dlq", "list")

    assert result.exit_code == 3
    assert "stack 'Nowhere' could not be read" in result.stderr
