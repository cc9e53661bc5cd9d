"""The shipped templates in headless Chromium at a phone's width (375 px) and a desktop pane's (800 px).

Each rendered email is loaded as a page and screenshotted at both widths; the
assertions are what the layout promises: nothing scrolls sideways on a phone,
the narrow-screen @media rules apply, the card stays 600 px wide and centred
on a wide pane, the preheader never shows, buttons are tap-sized, and the
dark-mode colours switch in when the reader's system is dark.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright

from mailwright.templates import Renderer, TemplateBundle, load_template_tree
from mailwright_tools.fakes import TEMPLATES_DIR
from mailwright_tools.template_checks import provided_variables
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.slow

SHIPPED = load_template_tree(TEMPLATES_DIR)
CASES = [(template_id, locale) for template_id, bundle in sorted(SHIPPED.items()) for locale in sorted(bundle.locales)]
PHONE, DESKTOP = 375, 800
# Where the screenshots go, for a person to look at after a run.
SCREENSHOTS = Path("/tmp/mailwright-template-screenshots")


def rendered_html(bundle: TemplateBundle, locale: str) -> str:
    """The HTML part with the sample data and what the worker provides."""
    provided = provided_variables(
        bundle,
        recipient="jane.doe@example.com",
        postal_address="Example Co., 1 Example Street, Springfield, IL 62701, USA",
        base_url="https://mail.example.com/unsubscribe",
    )
    return Renderer().render(bundle, locale=locale, data=dict(bundle.metadata.sample_data), provided=provided).html


@pytest.fixture(scope="module")
def chromium(driver: Playwright) -> Iterator[Browser]:
    """One headless Chromium for the module (the system binary, as every browser test uses)."""
    browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A page with JavaScript on, so the test can measure the layout (the email itself has no script)."""
    context = chromium.new_context(viewport={"width": PHONE, "height": 800}, color_scheme="light")
    yield context.new_page()
    context.close()


def box(page: Page, selector: str) -> dict[str, float]:
    """The bounding box of the first element matching `selector`."""
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not laid out"
    return dict(found)


@pytest.mark.parametrize(("template_id", "locale"), CASES)
def test_the_layout_at_phone_and_desktop_widths(page: Page, template_id: str, locale: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_content(rendered_html(SHIPPED[template_id], locale))

    # At 375 px: no sideways scrolling, the card fills the width, the @media rules apply
    page.set_viewport_size({"width": PHONE, "height": 800})
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE
    assert box(page, ".mw-card")["width"] == pytest.approx(PHONE, abs=1)
    assert page.eval_on_selector(".mw-h1", "e => getComputedStyle(e).fontSize") == "20px"
    assert page.eval_on_selector(".mw-pad", "e => getComputedStyle(e).paddingLeft") == "20px"
    if page.locator(".mw-button a").count():
        assert box(page, ".mw-button")["height"] >= 40  # a finger-sized target
    page.screenshot(path=str(SCREENSHOTS / f"{template_id}.{locale}.{PHONE}.png"), full_page=True)

    # At 800 px: a 600 px card, centred, with the desktop sizes
    page.set_viewport_size({"width": DESKTOP, "height": 1000})
    card = box(page, ".mw-card")
    assert card["width"] == pytest.approx(600, abs=1)
    assert card["x"] == pytest.approx((DESKTOP - 600) / 2, abs=1)
    assert page.eval_on_selector(".mw-h1", "e => getComputedStyle(e).fontSize") == "22px"
    page.screenshot(path=str(SCREENSHOTS / f"{template_id}.{locale}.{DESKTOP}.png"), full_page=True)

    # The preheader is for the inbox list only, at every width
    assert page.locator(".mw-preheader").count() == 1
    assert not page.locator(".mw-preheader").is_visible()
    assert page.locator(".mw-preheader").bounding_box() is None  # takes no space
    assert (page.locator(".mw-preheader").text_content() or "").strip()  # but the inbox reads its text


def test_dark_mode_switches_the_colours(chromium: Browser) -> None:
    context = chromium.new_context(viewport={"width": DESKTOP, "height": 1000}, color_scheme="dark")
    try:
        page = context.new_page()
        page.set_content(rendered_html(SHIPPED["newsletter"], "en"))
        card = page.eval_on_selector(".mw-card", "e => getComputedStyle(e).backgroundColor")
        text = page.eval_on_selector(".mw-text", "e => getComputedStyle(e).color")
        assert card == "rgb(31, 41, 55)"  # brand.dark_card
        assert text == "rgb(243, 244, 246)"  # brand.dark_text
    finally:
        context.close()
