"""What the local stack does after SES accepts an email: simulator events, the outbox, the event publisher."""

from __future__ import annotations

import email
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mailwright.feedback import parse_message
from mailwright.ports import OutboundEmail
from mailwright_tools.local.mailbox import LocalMailbox, SesEventPublisher
from mailwright_tools.local.outbox import Outbox
from mailwright_tools.local.ses_events import events_for, simulator_scenario


def outbound(to: str = "jane@example.com", **extra: Any) -> OutboundEmail:
    values: dict[str, Any] = {
        "from_address": "Example <no-reply@example.com>",
        "to_address": to,
        "subject": "Your order <b>XYZ</b> & more",
        "html": '<!doctype html><html lang="fr"><body><p>Bonjour</p></body></html>',
        "text": "Bonjour",
        "configuration_set": "mailwright-events",
        "headers": (
            ("List-Unsubscribe", "<https://example.com/u?token=t>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
        "tags": (("template", "newsletter"), ("category", "marketing"), ("request_id", "r" * 32), ("lane", "bulk")),
    }
    values.update(extra)
    return OutboundEmail(**values)


@pytest.mark.parametrize(
    ("address", "scenario"),
    [
        ("bounce@simulator.amazonses.com", "bounce"),
        ("bounce+newsletter-42@simulator.amazonses.com", "bounce"),
        ("Complaint+x@Simulator.AmazonSES.com", "complaint"),
        ("ooto@simulator.amazonses.com", "ooto"),
        ("suppressionlist@simulator.amazonses.com", "suppressionlist"),
        ("success+a@simulator.amazonses.com", "success"),
        ("bounced@simulator.amazonses.com", None),
        ("bounce@example.com", None),
    ],
)
def test_simulator_addresses(address: str, scenario: str | None) -> None:
    assert simulator_scenario(address) == scenario


@pytest.mark.parametrize(
    ("to", "types"),
    [
        ("jane@example.com", ["Send", "Delivery"]),
        ("success@simulator.amazonses.com", ["Send", "Delivery"]),
        ("ooto@simulator.amazonses.com", ["Send", "Delivery"]),
        ("bounce+x@simulator.amazonses.com", ["Send", "Bounce"]),
        ("suppressionlist@simulator.amazonses.com", ["Send", "Bounce"]),
        ("complaint@simulator.amazonses.com", ["Send", "Delivery", "Complaint"]),
    ],
)
def test_events_are_what_ses_publishes_and_the_feedback_parser_reads_them(to: str, types: list[str]) -> None:
    events = events_for(outbound(to), "ses-1", sent_at=1_700_000_000.5, identity="no-reply@example.com")

    assert [e["eventType"] for e in events] == types
    for event in events:
        mail = event["mail"]
        assert mail["messageId"] == "ses-1" and mail["destination"] == [to]
        assert mail["tags"]["request_id"] == ["r" * 32]
        assert mail["tags"]["category"] == ["marketing"]
        assert mail["tags"]["ses:configuration-set"] == ["mailwright-events"]
        assert mail["timestamp"] == "2023-11-14T22:13:20.500Z"
        # Through SNS, as the feedback function receives it
        envelope = {"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": json.dumps(event)}
        parsed = parse_message(envelope)
        assert parsed.event_type == event["eventType"]  # type: ignore[union-attr]
        assert parsed.request_id == "r" * 32  # type: ignore[union-attr]
    if "Bounce" in types:
        bounce = events[-1]["bounce"]
        assert bounce["bounceType"] == "Permanent"
        assert bounce["bounceSubType"] == ("OnAccountSuppressionList" if to.startswith("suppression") else "General")
        assert bounce["bouncedRecipients"][0]["emailAddress"] == to


def test_the_outbox_keeps_a_mime_message_and_lists_it(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")

    entry = outbox.add(outbound(), "ses-1", sent_at=1_700_000_000.0)
    outbox.close()

    message = email.message_from_bytes((tmp_path / "outbox" / f"{entry.stem}.eml").read_bytes())
    assert message["To"] == "jane@example.com"
    assert message["Subject"] == "Your order <b>XYZ</b> & more"
    assert message["List-Unsubscribe"] == "<https://example.com/u?token=t>"
    assert message["X-Mailwright-Request-Id"] == "r" * 32
    assert message["X-Mailwright-Lane"] == "bulk"
    assert [p.get_content_type() for p in message.walk()] == ["multipart/alternative", "text/plain", "text/html"]
    index = (tmp_path / "outbox" / "index.html").read_text()
    assert f'href="{entry.stem}.html"' in index
    assert "Your order &lt;b&gt;XYZ&lt;/b&gt; &amp; more" in index and "<b>XYZ</b>" not in index
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in index
    assert entry.locale == "fr"
    assert json.loads((tmp_path / "outbox" / "messages.json").read_text())[0]["to"] == "jane@example.com"


class FakeSns:
    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.lock = threading.Lock()

    def publish_batch(self, *, TopicArn: str, PublishBatchRequestEntries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        with self.lock:
            self.calls.append([json.loads(e["Message"]) for e in PublishBatchRequestEntries])
        return {"Successful": [{"Id": e["Id"]} for e in PublishBatchRequestEntries], "Failed": []}


def test_events_go_out_when_due_ten_at_a_time(tmp_path: Path) -> None:
    sns = FakeSns()
    # Deliveries are due 3 s after their send: far beyond the sends below, even on a machine busy with other tests.
    publisher = SesEventPublisher(sns, "arn:topic", delays={"Send": 0.0, "Delivery": 3.0})
    publisher.start()
    mailbox = LocalMailbox(outbox=Outbox(tmp_path), events=publisher, identity="example.com", region="us-east-1")
    sender = mailbox.wrap(type("Ses", (), {"send": lambda self, e: f"id-{e.to_address}"})())

    for n in range(12):
        assert sender.send(outbound(f"user{n}@example.com")) == f"id-user{n}@example.com"
    time.sleep(0.1)
    early = [e["eventType"] for call in sns.calls for e in call]
    time_to_idle = time.monotonic()
    while not mailbox.idle and time.monotonic() - time_to_idle < 15:
        time.sleep(0.05)
    publisher.close()
    mailbox.outbox.close()

    assert set(early) == {"Send"}  # deliveries wait for their delay
    assert all(len(call) <= 10 for call in sns.calls)
    assert publisher.published == {"Send": 12, "Delivery": 12}
    assert mailbox.sent == {"bulk": 12}
    assert len(list(tmp_path.glob("*.eml"))) == 12


def test_the_mailbox_publishes_only_the_configuration_sets_event_types(tmp_path: Path) -> None:
    published: list[dict[str, Any]] = []

    class Recorder:
        idle = True

        def publish(self, events: list[dict[str, Any]], *, sent_at: float | None = None) -> None:
            published.extend(events)

    mailbox = LocalMailbox(
        outbox=Outbox(tmp_path / "outbox"),
        events=Recorder(),  # type: ignore[arg-type]
        identity="no-reply@example.com",
        region="us-east-1",
        event_types=("BOUNCE", "COMPLAINT", "DELIVERY"),
    )
    mailbox.accepted(outbound("complaint@simulator.amazonses.com"), "ses-1")
    mailbox.accepted(outbound("bounce@simulator.amazonses.com"), "ses-2")
    # Send is never published, as deployed; the verdicts are
    assert [e["eventType"] for e in published] == ["Delivery", "Complaint", "Bounce"]
