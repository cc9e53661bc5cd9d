"""Time zones and quiet hours: validation, and when a window ends, across daylight-saving changes."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime, time

import pytest

from mailwright.ports import Preferences
from mailwright.quiet_hours import (
    InvalidQuietHoursError,
    InvalidTimezoneError,
    QuietHours,
    in_quiet_hours,
    valid_timezone,
)
from mailwright.request import EmailRequest


def prefs(quiet: str | None, timezone: str | None = None) -> Preferences:
    return Preferences("u1", timezone=timezone, quiet_hours=QuietHours.parse(quiet) if quiet else None)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end", "wraps"),
    [
        ("21:00-08:00", time(21), time(8), True),
        ("09:30-17:45", time(9, 30), time(17, 45), False),
        (" 00:00 - 06:00 ", time(0), time(6), False),
        ("23:59-00:00", time(23, 59), time(0), True),
    ],
)
def test_quiet_hours_parse(text: str, start: time, end: time, wraps: bool) -> None:
    window = QuietHours.parse(text)

    assert (window.start, window.end, window.wraps) == (start, end, wraps)
    assert str(window) == f"{start:%H:%M}-{end:%H:%M}"


@pytest.mark.parametrize("text", ["", "21:00", "21-08", "9:00-17:00", "24:00-08:00", "21:60-08:00", "08:00-08:00"])
def test_quiet_hours_that_are_not_a_window_are_refused(text: str) -> None:
    with pytest.raises(InvalidQuietHoursError, match="quiet hours"):
        QuietHours.parse(text)


@pytest.mark.parametrize("name", ["Europe/Paris", "America/New_York", "UTC", "Asia/Kolkata", "America/Argentina/Salta"])
def test_iana_time_zones_are_valid(name: str) -> None:
    assert valid_timezone(name) == name


@pytest.mark.parametrize(
    "name", ["", "Mars/Olympus_Mons", "europe/paris", "localtime", "/etc/localtime", "../../etc/passwd", "+01:00"]
)
def test_other_time_zone_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidTimezoneError, match="IANA time zone"):
        valid_timezone(name)


def test_the_request_takes_an_iana_time_zone_and_refuses_others() -> None:
    base = {"recipient_email": "jane@example.com", "template_id": "newsletter"}

    assert EmailRequest.model_validate({**base, "timezone": "Europe/Paris"}).timezone == "Europe/Paris"
    with pytest.raises(ValueError, match="not an IANA time zone"):
        EmailRequest.model_validate({**base, "timezone": "Paris"})
    # And a request without one keeps its id (the field is optional and left out when unset)
    assert "timezone" not in EmailRequest.model_validate(base).model_dump(exclude_none=True)


@pytest.fixture
def no_system_zones() -> Iterator[None]:
    """zoneinfo as on Lambda's images: no system tz database, only the tzdata package."""
    zoneinfo.reset_tzpath(to=[])
    zoneinfo.ZoneInfo.clear_cache()
    try:
        yield
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()


@pytest.mark.usefixtures("no_system_zones")
def test_zones_load_from_the_pinned_tzdata_package_without_a_system_database() -> None:
    # The asset ships tzdata (functions/requirements.txt) because Lambda's images have no /usr/share/zoneinfo.
    assert "Europe/Paris" in zoneinfo.available_timezones()
    at = utc(2026, 7, 1, 22, 0)
    assert in_quiet_hours(prefs("21:00-08:00", "Europe/Paris"), None, at) == utc(2026, 7, 2, 6, 0)


# -- which time zone ---------------------------------------------------------------


def test_without_a_time_zone_or_quiet_hours_nothing_is_quiet() -> None:
    at = utc(2026, 7, 1, 23, 0)

    assert in_quiet_hours(prefs("21:00-08:00"), None, at) is None
    assert in_quiet_hours(prefs(None, "Europe/Paris"), "Europe/Paris", at) is None


def test_the_request_time_zone_serves_when_none_is_stored() -> None:
    # 23:00 UTC is 01:00 in Paris (quiet) and 19:00 in New York (not)
    at = utc(2026, 7, 1, 23, 0)

    assert in_quiet_hours(prefs("21:00-08:00"), "Europe/Paris", at) == utc(2026, 7, 2, 6, 0)
    assert in_quiet_hours(prefs("21:00-08:00"), "America/New_York", at) is None


def test_the_stored_time_zone_wins_over_the_request() -> None:
    at = utc(2026, 7, 1, 23, 0)

    assert in_quiet_hours(prefs("21:00-08:00", "America/New_York"), "Europe/Paris", at) is None


def test_an_instant_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        in_quiet_hours(prefs("21:00-08:00", "UTC"), None, datetime(2026, 7, 1, 23, 0))


# -- the window and its end ---------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "resume"),
    [
        (utc(2026, 7, 1, 19, 0), utc(2026, 7, 2, 6, 0)),  # 21:00 local: the window starts (included)
        (utc(2026, 7, 1, 22, 30), utc(2026, 7, 2, 6, 0)),  # before midnight: ends tomorrow
        (utc(2026, 7, 2, 3, 0), utc(2026, 7, 2, 6, 0)),  # after midnight: ends today
        (utc(2026, 7, 2, 6, 0), None),  # 08:00 local: the window has ended (excluded)
        (utc(2026, 7, 2, 12, 0), None),  # midday
    ],
)
def test_a_window_over_midnight_in_paris_summer(at: datetime, resume: datetime | None) -> None:
    assert in_quiet_hours(prefs("21:00-08:00", "Europe/Paris"), None, at) == resume


def test_a_window_within_one_day() -> None:
    window = prefs("12:00-14:00", "Europe/Paris")  # CEST, UTC+2

    assert in_quiet_hours(window, None, utc(2026, 7, 1, 10, 30)) == utc(2026, 7, 1, 12, 0)
    assert in_quiet_hours(window, None, utc(2026, 7, 1, 9, 59)) is None
    assert in_quiet_hours(window, None, utc(2026, 7, 1, 12, 0)) is None


def test_paris_spring_forward_the_night_is_an_hour_shorter() -> None:
    # 29 March 2026: 02:00 CET becomes 03:00 CEST. 23:00 CET on the 28th is 22:00 UTC;
    # 08:00 CEST on the 29th is 06:00 UTC (7 hours later, not 8).
    assert in_quiet_hours(prefs("21:00-08:00", "Europe/Paris"), None, utc(2026, 3, 28, 22, 0)) == utc(2026, 3, 29, 6)


def test_paris_fall_back_the_night_is_an_hour_longer() -> None:
    # 25 October 2026: 03:00 CEST becomes 02:00 CET. 08:00 CET is 07:00 UTC.
    assert in_quiet_hours(prefs("21:00-08:00", "Europe/Paris"), None, utc(2026, 10, 24, 20, 0)) == utc(2026, 10, 25, 7)


def test_an_end_inside_the_spring_forward_gap_comes_when_the_clock_jumps() -> None:
    # 02:30 does not exist in Paris on 29 March 2026: the clock passes it at the jump, 01:00 UTC.
    assert in_quiet_hours(prefs("23:00-02:30", "Europe/Paris"), None, utc(2026, 3, 28, 23, 0)) == utc(2026, 3, 29, 1)


def test_new_york_spring_forward() -> None:
    # 8 March 2026: 02:00 EST becomes 03:00 EDT. Midnight EST is 05:00 UTC; 08:00 EDT is 12:00 UTC.
    window = prefs("21:00-08:00", "America/New_York")

    assert in_quiet_hours(window, None, utc(2026, 3, 8, 5, 0)) == utc(2026, 3, 8, 12, 0)
    assert in_quiet_hours(window, None, utc(2026, 3, 8, 12, 0)) is None


def test_new_york_fall_back_an_end_that_occurs_twice_is_the_one_still_ahead() -> None:
    # 1 November 2026: 02:00 EDT becomes 01:00 EST, so 01:45 happens at 05:45 UTC and again at 06:45 UTC.
    window = prefs("21:00-01:45", "America/New_York")

    # During the first 01:00-02:00 (EDT) the window ends at the first 01:45
    assert in_quiet_hours(window, None, utc(2026, 11, 1, 5, 0)) == utc(2026, 11, 1, 5, 45)
    # Between the two, 01:50 EDT: the window has ended...
    assert in_quiet_hours(window, None, utc(2026, 11, 1, 5, 50)) is None
    # ...and the repeated hour reads 01:10 EST again: quiet until the second 01:45, never a time in the past
    assert in_quiet_hours(window, None, utc(2026, 11, 1, 6, 10)) == utc(2026, 11, 1, 6, 45)
