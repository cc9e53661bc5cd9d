"""The template studio in headless Chromium, on the moto stack: edit, preview, a validation error, publish, send."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import boto3
import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, expect

from infra.config import MailwrightConfig
from mailwright.adapters.template_store import S3TemplateStore
from mailwright.sdk import Publisher
from mailwright_tools.provision import StackResources
from mailwright_tools.studio import CSRF_HEADER, Studio, StudioServer, start
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.functional.harness import WorkerHarness

REPO = Path(__file__).resolve().parents[2]
# The README's screenshot: `MAILWRIGHT_STUDIO_SCREENSHOT=docs/studio.png pytest tests/browser/test_studio.py`
# writes it; otherwise the screenshot goes to the test's temporary directory.
SCREENSHOT_ENV = "MAILWRIGHT_STUDIO_SCREENSHOT"


@pytest.fixture
def studio(stack: StackResources) -> Iterator[StudioServer]:
    """The studio on loopback, publishing to the moto stack's templates bucket and its lane queues."""
    store = S3TemplateStore(boto3.client("s3"), stack.templates_bucket)
    publisher = Publisher(queue_urls=stack.queues)
    server = start(
        Studio(
            REPO / "templates",
            store,
            postal_address="Example Co., 1 Example Street, Springfield, USA",
            base_url="https://example.com/unsubscribe",
            target="publishes to the test stack",
            author="tester",
            sender=lambda request: publisher.send_batch([request])[0],
        )
    )
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def scripted(driver: Playwright, tmp_path: Path) -> Iterator[BrowserContext]:
    """Headless Chromium with JavaScript on (the studio is an editor, not a page for recipients)."""
    context = driver.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1600, "height": 1000},
    )
    yield context
    context.close()


def preview_frame_text(page: Page, frame_id: str) -> str:
    text: str = page.frame_locator(f"#{frame_id}").locator("body").inner_text()
    return text


def test_edit_preview_validate_publish_and_the_next_send_uses_it(
    studio: StudioServer,
    scripted: BrowserContext,
    config: MailwrightConfig,
    stack: StackResources,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    page = scripted.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(studio.base_url)

    # Open welcome_email in English: its parts are in the editor and the preview shows the sample data
    page.select_option("#template", "welcome_email")
    expect(page.locator("#subject")).to_have_value("Welcome aboard, {{ user_name }}")
    expect(page.locator("#preview-subject")).to_have_text("Welcome aboard, John")
    expect(page.locator("#status")).to_have_text("Passes the checks")

    # Edit the HTML: the preview at both widths changes as one types
    html = page.locator("#html").input_value()
    page.fill("#html", html.replace("Thanks for signing up.", "Thanks for signing up, {{ user_name }}.", 1))
    expect(page.frame_locator("#preview-desktop").locator("body")).to_contain_text("Thanks for signing up, John.")
    expect(page.frame_locator("#preview-mobile").locator("body")).to_contain_text("Thanks for signing up, John.")
    assert page.locator("#preview-mobile").get_attribute("sandbox") == ""
    assert page.locator("#preview-mobile").get_attribute("width") == "375"

    # A variable the template does not declare is an error inline, and publishing is off
    page.fill("#subject", "Welcome, {{ nickname }}")
    expect(page.locator("#problems li").first).to_contain_text("nickname")
    expect(page.locator("#publish")).to_be_disabled()

    # Fixed: a test email of the unpublished edit goes through the stack, with the sample data and a tag
    page.fill("#subject", "You're in, {{ user_name }}!")
    expect(page.locator("#preview-subject")).to_have_text("You're in, John!")
    expect(page.locator("#publish")).to_be_enabled()
    worker = WorkerHarness(config=config, resources=stack, lane="standard", monkeypatch=monkeypatch)
    page.fill("#test-to", "editor@example.com")
    page.click("#test-send")
    expect(page.locator("#test-sent")).to_contain_text("Test sent to editor@example.com")
    worker.run_batch()
    (test_email,) = worker.ses_calls
    assert test_email.subject == "You're in, John!" and test_email.tags["studio_test"] == "true"
    assert test_email.to == ["editor@example.com"]
    store = S3TemplateStore(boto3.client("s3"), stack.templates_bucket)
    live = store.latest("welcome_email")
    assert live is not None and live.publication.source == "deploy"  # the test published nothing

    # With a change note: published as a new version
    page.fill("#note", "A warmer subject")
    page.fill("#author", "Zoë")
    screenshot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "studio.png")
    page.screenshot(path=str(screenshot), full_page=False)
    assert screenshot.stat().st_size > 10_000
    page.click("#publish")
    expect(page.locator("#published")).to_contain_text("Published version")
    expect(page.locator("#versions li").first).to_contain_text("Zoë: A warmer subject")
    expect(page.locator("#versions li").first).to_contain_text("(live)")
    latest = store.latest("welcome_email")
    assert latest is not None and latest.publication.source == "studio" and latest.publication.author == "Zoë"

    # The next send on the stack uses the new version
    worker.ses_calls.clear()
    worker.publish(
        {"recipient_email": "new.user@example.com", "template_id": "welcome_email",
         "template_data": {"user_name": "Ada", "login_link": "https://example.com/login"}}
    )  # fmt: skip
    worker.run_batch()
    (sent,) = worker.ses_calls
    assert sent.subject == "You're in, Ada!"
    assert "Thanks for signing up, Ada." in sent.html

    # Restore the previous version: one click, and it is live again as a newer version
    page.locator("#versions li").nth(1).locator("button").click()
    expect(page.locator("#published")).to_contain_text("Restored")
    expect(page.locator("#subject")).to_have_value("Welcome aboard, {{ user_name }}")
    restored = store.latest("welcome_email")
    assert restored is not None and restored.publication.restored_from
    assert errors == []


def post(server: StudioServer, path: str, body: Mapping[str, object], headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(  # noqa: S310 - loopback
        server.base_url + path.lstrip("/"), data=json.dumps(body).encode(), method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_posts_need_the_sessions_csrf_token_and_a_loopback_host(studio: StudioServer) -> None:
    session = "abc"
    good = {"Content-Type": "application/json", "Cookie": f"mailwright_studio={session}",
            CSRF_HEADER: studio.csrf_token(session)}  # fmt: skip
    body = {"template": "welcome_email", "locale": "en", "parts": {"subject": "x", "html": "y", "text": "z"}}

    assert post(studio, "/api/preview", body, good)[0] == 200
    assert post(studio, "/api/preview", body, {**good, CSRF_HEADER: "0" * 64})[0] == 403
    assert post(studio, "/api/preview", body, {**good, "Cookie": "mailwright_studio=other"})[0] == 403
    assert post(studio, "/api/preview", body, {**good, "Content-Type": "text/plain"})[0] == 415
    assert post(studio, "/api/preview", body, {**good, "Host": "evil.example:80"})[0] == 421
    # A publish without a note is refused, and nothing is written
    status, answer = post(
        studio,
        "/api/publish",
        {
            **body,
            "parts": {"subject": "Hi {{ user_name }}", "html": "<p>{{ login_link }}</p>", "text": "{{ login_link }}"},
        },
        good,
    )
    assert status == 422 and "change note" in answer


def test_the_page_sets_its_policy_and_a_strict_cookie(studio: StudioServer) -> None:
    with urllib.request.urlopen(studio.base_url, timeout=10) as answer:  # noqa: S310 - loopback
        headers = answer.headers
        page = answer.read().decode()

    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    session = headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    assert f'content="{studio.csrf_token(session)}"' in page
    assert "<script>" not in page  # no inline script: the policy allows none
