"""The unsubscribe endpoint's handler, on in-memory preferences: what each request may and may not change."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from mailwright.handlers.unsubscribe import handle
from mailwright.ports import Preferences
from mailwright.preferences import UnsubscribeService
from mailwright.tokens import TokenSigner
from mailwright_tools.unsubscribe_server import function_url_event
from tests.unit.unsubscribe_fakes import NOW, MemoryPreferences, build

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
USER = "user-1"


@pytest.fixture
def world() -> tuple[UnsubscribeService, MemoryPreferences, TokenSigner]:
    """The service, its preferences and the signer of its links."""
    return build()


def get(svc: UnsubscribeService, query: str) -> dict[str, Any]:
    return handle(svc, function_url_event("GET", f"/?{query}"))


def post(svc: UnsubscribeService, query: str, body: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return handle(svc, function_url_event("POST", f"/?{query}", body=body.encode(), headers=headers or FORM))


def token_for(signer: TokenSigner, category: str = "marketing", **kwargs: Any) -> str:
    return signer.sign(USER, category, **kwargs)


def checked_boxes(html: str) -> dict[str, bool]:
    """Each `receive` checkbox's value and whether it is checked."""
    boxes = re.findall(r'<input type="checkbox"[^>]*name="receive"[^>]*>', html)
    return {re.search(r'value="([^"]+)"', box).group(1): " checked" in box for box in boxes}  # type: ignore[union-attr]


# -- GET: shows, never changes ------------------------------------------------


def test_get_shows_the_offer_and_every_category_and_changes_nothing(world: Any) -> None:
    svc, memory, signer = world
    memory.put(USER, opted_out={"product"}, email="jane@example.com")

    answer = get(svc, f"token={token_for(signer)}")

    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == "text/html; charset=utf-8"
    page = answer["body"]
    assert "Unsubscribe from newsletter and offers?" in page
    assert checked_boxes(page) == {"product": False, "marketing": True}
    assert "Account security" in page and "Orders and account activity" in page and "Always on" in page
    assert memory.writes == 0
    assert memory.items[USER]["opted_out"] == {"product"}
    # The page never shows the recipient's address.
    assert "jane@example.com" not in page


def test_preferences_view_has_no_one_click_offer(world: Any) -> None:
    svc, _, signer = world

    page = get(svc, f"token={token_for(signer)}&view=preferences")["body"]

    assert "Unsubscribe from newsletter and offers?" not in page
    assert "Save preferences" in page
    assert checked_boxes(page) == {"product": True, "marketing": True}


def test_a_user_who_unsubscribed_from_all_sees_every_optional_box_unticked(world: Any) -> None:
    svc, memory, signer = world
    memory.put(USER, unsubscribed_all=True)

    page = get(svc, f"token={token_for(signer)}&view=preferences")["body"]

    assert checked_boxes(page) == {"product": False, "marketing": False}
    assert "unsubscribed from all non-essential email" in page


def test_head_answers_like_get_without_a_body(world: Any) -> None:
    svc, memory, signer = world

    answer = handle(svc, function_url_event("HEAD", f"/?token={token_for(signer)}"))

    assert (answer["statusCode"], answer["body"]) == (200, "")
    assert memory.writes == 0


def test_every_answer_carries_the_security_headers(world: Any) -> None:
    svc, _, signer = world
    answers = [
        get(svc, f"token={token_for(signer)}"),
        get(svc, "token=garbage"),
        post(svc, f"token={token_for(signer)}", "List-Unsubscribe=One-Click"),
        handle(svc, function_url_event("DELETE", "/")),
    ]

    for answer in answers:
        headers = answer["headers"]
        assert headers["Content-Security-Policy"].startswith("default-src 'none'; style-src 'unsafe-inline'")
        assert "form-action 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Cache-Control"] == "no-store"
        assert "Set-Cookie" not in headers and "Location" not in headers


# -- bad tokens and methods -------------------------------------------------------


def _flip_tag(token: str) -> str:
    """The token with its last character (part of the authentication tag) changed."""
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def _other_user(token: str, signer: TokenSigner) -> str:
    """This token's nonce and first bytes of ciphertext, spliced onto another user's token."""
    other = signer.sign("user-2", "marketing")
    return token[:30] + other[30:]


@pytest.mark.parametrize("tamper", ["signature", "payload", "truncated", "missing", "appended"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_tampered_token_gets_an_error_page_and_changes_nothing(world: Any, tamper: str, method: str) -> None:
    svc, memory, signer = world
    token = token_for(signer)
    bad = {
        "signature": _flip_tag(token),
        "payload": _other_user(token, signer),
        "truncated": token[:-5],
        "missing": "",
        # Characters outside base64url must not be skipped by the decoder.
        "appended": token + "!!",
    }[tamper]

    answer = get(svc, f"token={bad}") if method == "GET" else post(svc, f"token={bad}", "List-Unsubscribe=One-Click")

    assert answer["statusCode"] == 400
    assert answer["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert "This link is not valid" in answer["body"]
    assert "Nothing was changed" in answer["body"]
    assert memory.writes == 0 and memory.items == {}


def test_expired_token_gets_its_own_error_page_and_changes_nothing(world: Any) -> None:
    svc, memory, signer = world
    expired = token_for(signer, now=NOW - 400 * 86400)

    for answer in (
        get(svc, f"token={expired}"),
        post(svc, f"token={expired}", "List-Unsubscribe=One-Click"),
        post(svc, "", f"token={expired}&action=save"),
    ):
        assert answer["statusCode"] == 400
        assert "This link has expired" in answer["body"]
    assert memory.writes == 0


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_not_allowed(world: Any, method: str) -> None:
    svc, memory, signer = world

    answer = handle(svc, function_url_event(method, f"/?token={token_for(signer)}"))

    assert answer["statusCode"] == 405
    assert answer["headers"]["Allow"] == "GET, HEAD, POST"
    assert memory.writes == 0


# -- RFC 8058 one-click ---------------------------------------------------------------


def _assert_one_click_answer(answer: dict[str, Any]) -> None:
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"].startswith("text/plain")
    assert "Location" not in answer["headers"]


def test_one_click_post_opts_out_of_the_links_category(world: Any) -> None:
    svc, memory, signer = world
    memory.put(USER, opted_out={"product"}, locale="fr", email="jane@example.com")

    answer = post(svc, f"token={token_for(signer)}", "List-Unsubscribe=One-Click")

    _assert_one_click_answer(answer)
    item = memory.items[USER]
    assert item["opted_out"] == {"product", "marketing"}
    assert (item["source"], item["updated_at"]) == ("one_click", NOW)
    assert (item["locale"], item["email"]) == ("fr", "jane@example.com")


def test_one_click_post_as_multipart_form_data(world: Any) -> None:
    # The example request of RFC 8058, section 8.1.
    svc, memory, signer = world
    boundary = "---FormBoundaryjWmhtjORrn"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    )

    answer = post(
        svc, f"token={token_for(signer)}", body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )

    _assert_one_click_answer(answer)
    assert memory.items[USER]["opted_out"] == {"marketing"}


def test_one_click_post_with_a_base64_body(world: Any) -> None:
    svc, memory, signer = world
    event = function_url_event("POST", f"/?token={token_for(signer, 'product')}")
    event.update(body=base64.b64encode(b"List-Unsubscribe=One-Click").decode(), isBase64Encoded=True)
    event["headers"]["content-type"] = "application/x-www-form-urlencoded"

    _assert_one_click_answer(handle(svc, event))
    assert memory.items[USER]["opted_out"] == {"product"}


def test_one_click_for_an_essential_category_is_refused(world: Any) -> None:
    svc, memory, signer = world

    answer = post(svc, f"token={token_for(signer, 'security')}", "List-Unsubscribe=One-Click")

    assert answer["statusCode"] == 400
    assert "cannot be turned off" in answer["body"]
    assert memory.writes == 0


def test_one_click_for_an_unknown_category_is_refused(world: Any) -> None:
    svc, memory, signer = world

    answer = post(svc, f"token={token_for(signer, 'retired-category')}", "List-Unsubscribe=One-Click")

    assert answer["statusCode"] == 400
    assert "a kind of email we do not send" in answer["body"]
    assert memory.writes == 0


# -- the page's form -------------------------------------------------------------------


def test_page_unsubscribe_button_opts_out_of_the_links_category(world: Any) -> None:
    svc, memory, signer = world

    answer = post(svc, "", f"token={token_for(signer)}&action=unsubscribe")

    assert answer["statusCode"] == 200
    assert "you are unsubscribed from newsletter and offers" in answer["body"]
    assert memory.items[USER]["opted_out"] == {"marketing"}
    assert memory.items[USER]["source"] == "preference_center"


def test_saving_the_form_applies_the_ticked_boxes(world: Any) -> None:
    svc, memory, signer = world
    memory.put(USER, unsubscribed_all=True, locale="fr")

    answer = post(svc, f"token={token_for(signer)}&view=preferences", "action=save&receive=product")

    assert answer["statusCode"] == 200
    assert "Your preferences are saved." in answer["body"]
    assert checked_boxes(answer["body"]) == {"product": True, "marketing": False}
    item = memory.items[USER]
    assert (item["opted_out"], item["unsubscribed_all"]) == ({"marketing"}, False)
    assert (item["source"], item["locale"]) == ("preference_center", "fr")


def test_essential_categories_in_the_form_are_ignored(world: Any) -> None:
    # A hand-made form cannot opt out of security mail: unticking everything
    # turns off only the optional categories, and naming essential ones changes nothing.
    svc, memory, signer = world

    post(svc, "", f"token={token_for(signer)}&action=save&receive=security")

    assert memory.items[USER]["opted_out"] == {"product", "marketing"}
    preferences = Preferences(USER, opted_out=frozenset(memory.items[USER]["opted_out"]))
    assert preferences.allows("security") and preferences.allows("transactional")


def test_ticking_everything_removes_the_opt_outs(world: Any) -> None:
    svc, memory, signer = world
    memory.put(USER, opted_out={"marketing"})

    post(svc, "", f"token={token_for(signer)}&action=save&receive=product&receive=marketing")

    assert "opted_out" not in memory.items[USER]  # DynamoDB has no empty sets
    assert memory.items[USER]["unsubscribed_all"] is False


def test_unsubscribe_from_all_non_essential_mail(world: Any) -> None:
    svc, memory, signer = world

    answer = post(svc, "", f"token={token_for(signer)}&action=unsubscribe_all&receive=product")

    assert "unsubscribed from all non-essential email" in answer["body"]
    assert memory.items[USER]["unsubscribed_all"] is True
    assert checked_boxes(answer["body"]) == {"product": False, "marketing": False}


def test_the_token_may_come_in_the_form_or_the_query(world: Any) -> None:
    svc, memory, signer = world

    post(svc, f"token={token_for(signer)}", "action=save&receive=marketing")
    assert memory.items[USER]["opted_out"] == {"product"}

    post(svc, "", f"token={token_for(signer)}&action=save&receive=product")
    assert memory.items[USER]["opted_out"] == {"marketing"}


@pytest.mark.parametrize("body", ["", "action=delete_everything", "List-Unsubscribe=Two-Clicks"])
def test_a_post_that_is_neither_one_click_nor_the_form_changes_nothing(world: Any, body: str) -> None:
    svc, memory, signer = world

    answer = post(svc, f"token={token_for(signer)}", body)

    assert answer["statusCode"] == 400
    assert memory.writes == 0


def test_a_failing_store_gets_a_try_again_page(world: Any) -> None:
    svc, memory, signer = world

    def broken(*_: Any, **__: Any) -> Preferences:
        raise ConnectionError("dynamodb unreachable")

    memory.add_opt_out = broken  # type: ignore[method-assign]

    answer = post(svc, f"token={token_for(signer)}", "List-Unsubscribe=One-Click")

    assert answer["statusCode"] == 503
    assert answer["headers"]["Retry-After"] == "60"
    assert "try again" in answer["body"]


# -- the page itself -----------------------------------------------------------------------


class _Inputs(HTMLParser):
    """Collects inputs, labels and the html element's lang."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.inputs: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html":
            self.lang = values.get("lang")
        if tag == "input":
            self.inputs.append(values)
        if tag == "label" and values.get("for"):
            self.label_for.add(str(values["for"]))
        for name in ("src", "href"):
            if values.get(name):
                self.external.append(str(values[name]))
        if tag == "script":
            self.external.append("script")


def test_page_is_labelled_and_self_contained(world: Any) -> None:
    svc, _, signer = world
    parser = _Inputs()

    parser.feed(get(svc, f"token={token_for(signer)}")["body"])

    assert parser.lang == "en"
    visible = [i for i in parser.inputs if i.get("type") != "hidden"]
    assert visible and all(i.get("id") in parser.label_for for i in visible)
    # No scripts, stylesheets, images or fonts: nothing to load from anywhere.
    assert parser.external == []


def test_token_is_escaped_into_the_hidden_field(world: Any) -> None:
    svc, _, signer = world
    token = token_for(signer)

    page = get(svc, f"token={token}")["body"]

    assert page.count(f'<input type="hidden" name="token" value="{token}">') == 2
