"""Browser tests: the moto stack, the unsubscribe endpoint on loopback and headless Chromium.

Chromium is the system package (`/usr/bin/chromium`, or MAILWRIGHT_CHROMIUM),
driven by Playwright; Playwright's own browser download is never used. When
Chromium is missing the tests fail, not skip: `make test` installs it first (`make deps`).
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from playwright.sync_api import BrowserContext, Playwright, sync_playwright

from infra.config import MailwrightConfig
from mailwright.settings import UnsubscribeSettings
from mailwright.wiring import build_unsubscribe_service
from mailwright_tools.provision import StackResources
from mailwright_tools.unsubscribe_server import start

# The functional tests' moto stack, shared rather than rebuilt.
from tests.functional.conftest import config, stack  # noqa: F401
from tests.functional.harness import WorkerHarness

CHROMIUM = Path(os.environ.get("MAILWRIGHT_CHROMIUM", "/usr/bin/chromium"))
# Playwright adds --headless and the --user-data-dir of the persistent context itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def endpoint(stack: StackResources) -> Iterator[str]:  # noqa: F811 - the imported fixture
    """The unsubscribe endpoint on loopback, on the moto stack; its base URL."""
    settings = UnsubscribeSettings(
        stack.preferences_table, stack.unsubscribe_secret_arn, stack.address_key_secret_arn, stack.suppression_table
    )
    server, base_url = start(build_unsubscribe_service(settings, session=boto3.session.Session()))
    yield base_url
    server.shutdown()
    server.server_close()


@pytest.fixture
def linked_worker(
    config: MailwrightConfig,  # noqa: F811 - the imported fixture
    stack: StackResources,  # noqa: F811 - the imported fixture
    endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str], WorkerHarness]:
    """Make a lane's worker whose unsubscribe links point at the local endpoint."""
    resources = replace(stack, unsubscribe_base_url=endpoint)
    settings = replace(config, unsubscribe_base_url="")  # no custom domain: the stack's own endpoint

    def make(lane: str) -> WorkerHarness:
        return WorkerHarness(config=settings, resources=resources, lane=lane, monkeypatch=monkeypatch)

    return make


@pytest.fixture(scope="session")
def driver() -> Iterator[Playwright]:
    """Playwright's driver, started once."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the browser tests need it. Install it with "
            "`apt-get install -y chromium` (.ci/run does) or point MAILWRIGHT_CHROMIUM at a Chromium binary."
        )
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser(driver: Playwright, tmp_path: Path) -> Iterator[BrowserContext]:
    """Headless Chromium with a fresh profile and JavaScript off: the pages must work without it."""
    context = driver.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        java_script_enabled=False,
    )
    yield context
    context.close()


def email_link(email_html: str, text: str) -> str:
    """The href of the link with this text in a rendered email."""
    found = re.search(rf'<a href="([^"]+)"[^>]*>{re.escape(text)}</a>', email_html)
    assert found, f"no link {text!r} in the email"
    return html.unescape(found.group(1))
