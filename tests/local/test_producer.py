"""Producers that know nothing of mailwright: plain boto3, pointed at the local stack with AWS_ENDPOINT_URL."""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from email.message import Message

from mailwright_tools.local.stack import LocalStack
from mailwright_tools.queues import body_request_id
from tests.local.conftest import run_cli, wait_until

# The seed article's producer, as printed there, with only its queue URL filled in.
SEED_PRODUCER = textwrap.dedent(
    """
    import json
    import boto3
    # Initialize SQS client (ensure AWS credentials are configured)
    sqs = boto3.client('sqs', region_name='us-east-1')
    queue_url = {queue_url!r}
    def send_email_request_to_queue(recipient_email, template_id, template_data):
        message_body = {{
            'recipient_email': recipient_email,
            'template_id': template_id,
            'template_data': template_data
        }}
        try:
            response = sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=json.dumps(message_body)
            )
            print(f"Message sent to SQS: {{response['MessageId']}}")
        except Exception as e:
            print(f"Error sending message to SQS: {{e}}")
    # Example usage:
    send_email_request_to_queue(
        'john.doe@example.com',
        'welcome_email',
        {{'user_name': 'John', 'login_link': 'https://your-app.com/login'}}
    )
    send_email_request_to_queue(
        'jane.smith@example.com',
        'order_confirmation',
        {{'order_id': 'XYZ789', 'total_amount': '$49.99'}}
    )
    """
)

BUS_PRODUCER = textwrap.dedent(
    """
    import json
    import boto3
    request = {{"recipient_email": "katherine@example.com", "template_id": "password_reset", "priority": "critical",
               "template_data": {{"user_name": "Katherine", "reset_link": "https://x.test/r",
                                  "expires_in_minutes": 5}}}}
    response = boto3.client("events", region_name="us-east-1").put_events(
        Entries=[{{"EventBusName": {bus!r}, "Source": "shop.accounts", "DetailType": "EmailRequested",
                   "Detail": json.dumps(request)}}]
    )
    assert response["FailedEntryCount"] == 0, response
    """
)


def run_producer(code: str, stack: LocalStack) -> subprocess.CompletedProcess[str]:
    """Run producer code in a fresh Python whose only hint of the local stack is AWS_ENDPOINT_URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAILWRIGHT_"))}
    env.update(
        AWS_ENDPOINT_URL=stack.state["endpoint_url"],
        AWS_ACCESS_KEY_ID="anything",
        AWS_SECRET_ACCESS_KEY="anything",
    )
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def outbox_messages(stack: LocalStack) -> dict[str, Message]:
    """The outbox's emails by recipient."""
    return {
        str(message["To"]): message
        for message in (email.message_from_bytes(p.read_bytes()) for p in stack.options.state.outbox.glob("*.eml"))
    }


def test_the_seed_articles_producer_works_unchanged(local_stack: LocalStack) -> None:
    done = run_producer(SEED_PRODUCER.format(queue_url=local_stack.state["queues"]["standard"]), local_stack)

    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Message sent to SQS:") == 2
    mail = wait_until(lambda: {"john.doe@example.com", "jane.smith@example.com"} <= set(outbox_messages(local_stack)))
    assert mail
    welcome = outbox_messages(local_stack)["john.doe@example.com"]
    order = outbox_messages(local_stack)["jane.smith@example.com"]
    assert "John" in welcome["Subject"]
    assert "XYZ789" in order["Subject"]
    html = next(p for p in order.walk() if p.get_content_type() == "text/html").get_payload(decode=True)
    assert b"$49.99" in html
    assert order["X-Mailwright-Lane"] == "standard"


def test_a_plain_eventbridge_producer_is_routed_by_priority(local_stack: LocalStack) -> None:
    done = run_producer(BUS_PRODUCER.format(bus=local_stack.state["event_bus"]), local_stack)

    assert done.returncode == 0, done.stderr
    wait_until(lambda: "katherine@example.com" in outbox_messages(local_stack))
    assert outbox_messages(local_stack)["katherine@example.com"]["X-Mailwright-Lane"] == "critical"


def test_local_json_names_everything_a_producer_needs(local_stack: LocalStack) -> None:
    recorded = json.loads(local_stack.options.state.local_json.read_text())

    assert recorded["endpoint_url"].startswith("http://127.0.0.1:")
    assert recorded["region"] == "us-east-1"
    assert set(recorded["queues"]) == {"critical", "standard", "bulk"}
    assert set(recorded["dlqs"]) == {"critical", "standard", "bulk"}
    assert set(recorded["tables"]) == {"preferences", "suppression", "idempotency", "messages"}
    assert recorded["feedback_queue"] and recorded["templates_bucket"] and recorded["pid"] == os.getpid()


def test_unsubscribe_links_in_the_outbox_work(local_stack: LocalStack) -> None:
    # Given a newsletter in the outbox, for a user
    request = {
        "recipient_email": "barbara@example.com",
        "user_id": "user-barbara",
        "template_id": "newsletter",
        "template_data": {"user_name": "Barbara", "headline": "News", "articles": []},
    }
    sqs = local_stack.session().client("sqs")
    sqs.send_message(QueueUrl=local_stack.state["queues"]["bulk"], MessageBody=json.dumps(request))
    message = wait_until(lambda: outbox_messages(local_stack).get("barbara@example.com"))
    link = str(message["List-Unsubscribe"]).strip("<>")
    assert link.startswith(local_stack.state["unsubscribe_url"])

    # The link opens the preference page, and a one-click POST (RFC 8058) unsubscribes
    with urllib.request.urlopen(link, timeout=10) as page:  # noqa: S310 - the local endpoint
        assert page.status == 200
        assert "text/html" in page.headers["Content-Type"]
    one_click = urllib.request.Request(link, data=b"List-Unsubscribe=One-Click", method="POST")  # noqa: S310
    with urllib.request.urlopen(one_click, timeout=10) as answer:  # noqa: S310
        assert answer.status == 200

    # So the next newsletter to that user is not sent
    again = {**request, "template_data": {**request["template_data"], "headline": "More news"}}
    sqs.send_message(QueueUrl=local_stack.state["queues"]["bulk"], MessageBody=json.dumps(again))
    request_id = body_request_id(json.dumps(again))
    status = wait_until(lambda: run_cli(local_stack.options.state, "status", request_id, "--json").json().get("status"))
    assert status == "opted_out"
