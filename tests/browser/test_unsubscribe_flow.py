"""The unsubscribe flow end to end: a real email's links, opened in headless Chromium, change the next send."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from mailwright_tools.provision import StackResources
from tests.browser.conftest import email_link
from tests.functional.harness import WorkerHarness
from tests.functional.test_send_worker import newsletter, password_reset, request_id

pytestmark = pytest.mark.slow

Make = Callable[[str], WorkerHarness]
USER = "user-browser"
SCREENSHOT = "/tmp/mailwright-preferences.png"


def preferences_item(stack: StackResources) -> dict[str, Any] | None:
    """The user's raw preferences item, or None."""
    response = boto3.client("dynamodb").get_item(TableName=stack.preferences_table, Key={"user_id": {"S": USER}})
    return response.get("Item")


def sent_newsletter(linked_worker: Make) -> tuple[WorkerHarness, str]:
    """Send one newsletter through the bulk worker; the worker and the email's HTML."""
    bulk = linked_worker("bulk")
    bulk.publish(newsletter("jane@example.com", user_id=USER))
    assert bulk.run_batch()["batchItemFailures"] == []
    (call,) = bulk.ses_calls
    return bulk, call.html


def recording(browser: BrowserContext) -> tuple[Page, list[str]]:
    """A new page and the URL of every request it makes."""
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    return page, requests


def assert_next_sends(bulk: WorkerHarness, linked_worker: Make) -> None:
    """The next newsletter ends opted out without reaching SES; a password reset is still sent."""
    sends_before = len(bulk.ses_calls)
    second = newsletter("jane@example.com", user_id=USER, idempotency_key="newsletter-2")
    bulk.publish(second)
    bulk.run_batch()
    assert len(bulk.ses_calls) == sends_before
    assert bulk.logged(request_id(second))["status"] == "opted_out"  # type: ignore[index]

    critical = linked_worker("critical")
    reset = password_reset("jane@example.com", user_id=USER)
    critical.publish(reset)
    critical.run_batch()
    assert [call.tags["template"] for call in critical.ses_calls] == ["password_reset"]
    assert critical.logged(request_id(reset))["status"] == "sent"  # type: ignore[index]


def test_preference_center_turns_a_category_off_for_the_next_send(
    linked_worker: Make, stack: StackResources, browser: BrowserContext, endpoint: str
) -> None:
    # Given a newsletter whose preferences link points at the endpoint
    bulk, email_html = sent_newsletter(linked_worker)
    link = email_link(email_html, "Manage your email preferences")
    assert link.startswith(endpoint) and "view=preferences" in link

    # When the recipient opens it, unticks the newsletter and saves
    page, requests = recording(browser)
    page.goto(link)
    assert preferences_item(stack) is None  # opening the page changed nothing
    newsletter_box = page.get_by_label("Newsletter and offers")
    expect(newsletter_box).to_be_checked()
    newsletter_box.uncheck()
    page.get_by_role("button", name="Save preferences").click()

    # Then the page confirms, with the new state
    expect(page.get_by_role("status")).to_contain_text("Your preferences are saved.")
    expect(page.get_by_label("Newsletter and offers")).not_to_be_checked()
    expect(page.get_by_label("Product updates")).to_be_checked()
    page.screenshot(path=SCREENSHOT, full_page=True)
    assert requests and all(url.startswith(endpoint) for url in requests), requests

    # And the preferences table holds the choice, with when and how it was made
    item = preferences_item(stack)
    assert item is not None
    assert item["opted_out"] == {"SS": ["marketing"]}
    assert item["unsubscribed_all"] == {"BOOL": False}
    assert item["source"] == {"S": "preference_center"} and float(item["updated_at"]["N"]) > 0

    # And it takes effect for the very next send
    assert_next_sends(bulk, linked_worker)


def test_unsubscribe_link_asks_before_it_changes_anything(
    linked_worker: Make, stack: StackResources, browser: BrowserContext
) -> None:
    bulk, email_html = sent_newsletter(linked_worker)
    page, _ = recording(browser)

    # Opening the link (as a mail scanner would) only shows the offer
    page.goto(email_link(email_html, "Unsubscribe from this newsletter"))
    expect(page.get_by_role("heading", name="Unsubscribe from newsletter and offers?")).to_be_visible()
    assert preferences_item(stack) is None

    # The clearly labelled button unsubscribes
    page.get_by_role("button", name="Unsubscribe from newsletter and offers").click()
    expect(page.get_by_role("status")).to_contain_text("you are unsubscribed from newsletter and offers")
    item = preferences_item(stack)
    assert item is not None and item["opted_out"] == {"SS": ["marketing"]}
    assert_next_sends(bulk, linked_worker)


def test_rfc_8058_one_click_post_to_the_header_link(linked_worker: Make, stack: StackResources) -> None:
    bulk = linked_worker("bulk")
    bulk.publish(newsletter("jane@example.com", user_id=USER))
    bulk.run_batch()
    (call,) = bulk.ses_calls
    assert call.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = urlsplit(call.headers["List-Unsubscribe"][1:-1])

    # A mail client's one-click POST: the header's URL, RFC 8058's body, no cookies, no redirects followed
    connection = http.client.HTTPConnection(url.netloc, timeout=10)
    try:
        connection.request(
            "POST",
            f"{url.path}?{url.query}",
            body="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()

    assert answer.status == 200 and answer.getheader("Location") is None
    assert body == b"You are unsubscribed.\n"
    item = preferences_item(stack)
    assert item is not None
    assert item["opted_out"] == {"SS": ["marketing"]}
    assert item["source"] == {"S": "one_click"}
    assert_next_sends(bulk, linked_worker)


def test_preference_page_accessibility_smoke(linked_worker: Make, endpoint: str, browser: BrowserContext) -> None:
    _, email_html = sent_newsletter(linked_worker)
    link = email_link(email_html, "Unsubscribe from this newsletter")
    page, requests = recording(browser)
    page.goto(link)

    assert page.locator("html").get_attribute("lang") == "en"
    assert page.title() == "Email preferences"
    assert page.locator("script, link[rel=stylesheet], img, iframe").count() == 0
    inputs = page.locator("input:not([type=hidden])")
    assert inputs.count() >= 2
    for index in range(inputs.count()):
        field = inputs.nth(index)
        labels = page.locator(f"label[for='{field.get_attribute('id')}']")
        assert labels.count() == 1, field.get_attribute("id")
    assert page.locator("fieldset legend").count() >= 1
    for button in page.get_by_role("button").all():
        assert button.inner_text().strip()
    # Keyboard users see where they are.
    page.keyboard.press("Tab")
    outline = page.locator(":focus").evaluate("element => getComputedStyle(element).outlineStyle")
    assert outline not in ("", "none")
    assert all(url.startswith(endpoint) for url in requests), requests
