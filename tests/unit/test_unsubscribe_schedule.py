"""The preference page's time zone and quiet hours: shown, saved, refused when invalid, kept by older forms."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mailwright.preferences import UnsubscribeService
from mailwright.tokens import TokenSigner
from mailwright.web import SECURITY_HEADERS
from tests.unit.test_unsubscribe_handler import USER, get, post, token_for
from tests.unit.unsubscribe_fakes import MemoryPreferences, build


@pytest.fixture
def world() -> tuple[UnsubscribeService, MemoryPreferences, TokenSigner]:
    """The service, its preferences and the signer of its links."""
    return build()


def selected_zone(html: str) -> str | None:
    select = re.search(r'<select id="timezone" name="timezone">(.*?)</select>', html, re.S)
    assert select, "the page has a time zone field"
    chosen = re.findall(r"<option(?: value=\"([^\"]*)\")? selected>([^<]*)</option>", select.group(1))
    assert len(chosen) == 1
    value, text = chosen[0]
    return None if value == "" and text == "Not set" else text


def time_value(html: str, name: str) -> str:
    found = re.search(rf'<input type="time" id="[^"]+" name="{name}"[^>]*value="([^"]*)"', html)
    assert found, f"the page has a {name} field"
    return found.group(1)


def test_the_page_shows_the_stored_time_zone_and_quiet_hours(world: Any) -> None:
    svc, memory, signer = world
    memory.put(USER, timezone="America/New_York", quiet_hours="22:00-07:30")

    page = get(svc, f"token={token_for(signer)}")["body"]

    assert selected_zone(page) == "America/New_York"
    assert (time_value(page, "quiet_start"), time_value(page, "quiet_end")) == ("22:00", "07:30")
    # The fields sit in the form that carries the token, posting back to the page's own URL
    form = page[page.index('<fieldset class="schedule">') - 2000 : page.index('<fieldset class="schedule">')]
    assert '<input type="hidden" name="token"' in form and '<form method="post">' in form


def test_a_user_without_them_sees_not_set_and_empty_times(world: Any) -> None:
    svc, _, signer = world

    page = get(svc, f"token={token_for(signer)}")["body"]

    assert selected_zone(page) is None
    assert (time_value(page, "quiet_start"), time_value(page, "quiet_end")) == ("", "")


def test_saving_sets_time_zone_and_quiet_hours(world: Any) -> None:
    svc, memory, signer = world
    memory.put(USER, locale="fr", email="jane@example.com")

    answer = post(
        svc,
        f"token={token_for(signer)}",
        "action=save&receive=product&receive=marketing&timezone=Europe%2FParis&quiet_start=21:00&quiet_end=08:00",
    )

    assert answer["statusCode"] == 200
    assert answer["headers"] | SECURITY_HEADERS == answer["headers"]  # the same CSP and headers as every answer
    item = memory.items[USER]
    assert (item["timezone"], item["quiet_hours"]) == ("Europe/Paris", "21:00-08:00")
    assert (item["locale"], item["email"]) == ("fr", "jane@example.com")
    assert selected_zone(answer["body"]) == "Europe/Paris"
    assert time_value(answer["body"], "quiet_end") == "08:00"


def test_seconds_from_a_browser_are_dropped(world: Any) -> None:
    svc, memory, signer = world

    post(svc, f"token={token_for(signer)}", "action=save&timezone=UTC&quiet_start=21:00:00&quiet_end=08:00:00")

    assert memory.items[USER]["quiet_hours"] == "21:00-08:00"


def test_empty_fields_clear_them(world: Any) -> None:
    svc, memory, signer = world
    memory.put(USER, timezone="Europe/Paris", quiet_hours="21:00-08:00")

    post(svc, f"token={token_for(signer)}", "action=save&timezone=&quiet_start=&quiet_end=")

    assert "timezone" not in memory.items[USER] and "quiet_hours" not in memory.items[USER]


def test_a_form_without_the_fields_keeps_them(world: Any) -> None:
    # A page rendered before the fields existed (or a hand-made form) changes only the categories.
    svc, memory, signer = world
    memory.put(USER, timezone="Europe/Paris", quiet_hours="21:00-08:00")

    post(svc, f"token={token_for(signer)}", "action=save&receive=product")

    assert (memory.items[USER]["timezone"], memory.items[USER]["quiet_hours"]) == ("Europe/Paris", "21:00-08:00")
    assert memory.items[USER]["opted_out"] == {"marketing"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("timezone=Mars%2FBase&quiet_start=21:00&quiet_end=08:00", "not an IANA time zone"),
        ("timezone=UTC&quiet_start=21:00&quiet_end=", "need both a start and an end"),
        ("timezone=UTC&quiet_start=21:00&quiet_end=21:00", "must start and end at different times"),
        ("timezone=UTC&quiet_start=9pm&quiet_end=8am", "quiet hours look like"),
    ],
)
def test_invalid_values_change_nothing(world: Any, body: str, message: str) -> None:
    svc, memory, signer = world
    memory.put(USER, opted_out={"product"}, timezone="Asia/Tokyo")

    answer = post(svc, f"token={token_for(signer)}", f"action=save&receive=product&receive=marketing&{body}")

    assert answer["statusCode"] == 400
    assert "These settings were not saved" in answer["body"] and message in answer["body"]
    assert memory.writes == 0
    assert memory.items[USER]["opted_out"] == {"product"} and memory.items[USER]["timezone"] == "Asia/Tokyo"


def test_a_forged_token_is_refused_before_the_fields_are_read(world: Any) -> None:
    svc, memory, _ = world

    answer = post(svc, "token=forged", "action=save&timezone=Mars%2FBase&quiet_start=21:00")

    assert answer["statusCode"] == 400 and "This link is not valid" in answer["body"]
    assert memory.writes == 0
