"""Time zones and quiet hours: when a recipient does not want non-urgent mail, in their own clock.

A user's preferences may hold an IANA time zone (`Europe/Paris`) and a quiet
window (`21:00-08:00`, which wraps midnight). `in_quiet_hours` says whether an
instant falls inside the window and, if so, when it ends: the instant the
recipient's wall clock next reads the window's end, which is what a
daylight-saving change moves. The worker defers mail to that instant (with
jitter); this module only answers the question.

Example::

    >>> from datetime import datetime, UTC
    >>> from mailwright.ports import Preferences
    >>> prefs = Preferences("u1", timezone="Europe/Paris", quiet_hours=QuietHours.parse("21:00-08:00"))
    >>> in_quiet_hours(prefs, None, datetime(2026, 3, 28, 22, 0, tzinfo=UTC))
    datetime.datetime(2026, 3, 29, 6, 0, tzinfo=datetime.timezone.utc)

Zone data comes from the system's tz database or, where the system has none,
from the pinned `tzdata` package (the asset does not rely on the minimal
Amazon Linux 2023 image having one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

if TYPE_CHECKING:
    from mailwright.ports import Preferences

_WINDOW = re.compile(r"^(?P<sh>[01][0-9]|2[0-3]):(?P<sm>[0-5][0-9])-(?P<eh>[01][0-9]|2[0-3]):(?P<em>[0-5][0-9])$")
# The longest IANA name is 32 characters (America/Argentina/ComodRivadavia); a longer one is not a zone.
MAX_TIMEZONE_LENGTH = 64


class InvalidTimezoneError(ValueError):
    """Not an IANA time zone name this runtime knows."""


class InvalidQuietHoursError(ValueError):
    """Quiet hours that are not `HH:MM-HH:MM` (24-hour clock, start and end different)."""


@cache
def known_timezones() -> frozenset[str]:
    """Every IANA zone name available (the system's database, else the tzdata package); read once."""
    # Some systems list their own links among the zones: the machine's zone is not the recipient's.
    return frozenset(available_timezones()) - {"localtime", "posixrules"}


def valid_timezone(name: str) -> str:
    """`name` if it is an IANA time zone (e.g. Europe/Paris, UTC); raise InvalidTimezoneError otherwise."""
    name = name.strip()
    # Only names from the database: ZoneInfo alone would also open paths such as `localtime`.
    if not name or len(name) > MAX_TIMEZONE_LENGTH or name not in known_timezones():
        raise InvalidTimezoneError(f"{name!r} is not an IANA time zone such as Europe/Paris or America/New_York")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidTimezoneError(f"the time zone {name!r} cannot be loaded") from None
    return name


@dataclass(frozen=True)
class QuietHours:
    """A daily window of wall-clock time, `start` included and `end` excluded; wraps midnight when start > end."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """Read `HH:MM-HH:MM` (e.g. 21:00-08:00); raise InvalidQuietHoursError when it is not one."""
        match = _WINDOW.match(text.strip().replace(" ", ""))
        if not match:
            raise InvalidQuietHoursError(f"{text!r}: quiet hours look like 21:00-08:00 (24-hour clock, HH:MM-HH:MM)")
        start = time(int(match["sh"]), int(match["sm"]))
        end = time(int(match["eh"]), int(match["em"]))
        if start == end:
            raise InvalidQuietHoursError(f"{text!r}: quiet hours must start and end at different times")
        return cls(start, end)

    @property
    def wraps(self) -> bool:
        """Whether the window runs over midnight (21:00-08:00)."""
        return self.start > self.end

    def contains(self, wall: time) -> bool:
        """Whether a wall-clock time falls inside the window."""
        if self.wraps:
            return wall >= self.start or wall < self.end
        return self.start <= wall < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def in_quiet_hours(preferences: Preferences, request_timezone: str | None, at: datetime) -> datetime | None:
    """When the quiet window around `at` ends (UTC), or None when `at` is outside it or no window applies.

    The time zone is the stored one, else the request's; without either, or
    without quiet hours, nothing is quiet. The end is the first instant after
    `at` at which the recipient's clock reads the window's end: an end that
    falls in a spring-forward gap comes at the gap's end; one that occurs
    twice in a fall-back night is the occurrence still ahead.
    """
    window = preferences.quiet_hours
    name = preferences.timezone or request_timezone
    if window is None or not name:
        return None
    if at.tzinfo is None:
        raise ValueError("`at` must be an aware datetime")
    zone = ZoneInfo(name)
    local = at.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if not window.contains(wall):
        return None
    end_day = local.date()
    if window.wraps and wall >= window.start:
        end_day += timedelta(days=1)
    return _first_after(end_day, window.end, zone, at)


def _first_after(day: date, wall: time, zone: ZoneInfo, at: datetime) -> datetime:
    """The first instant after `at` at which the clock in `zone` reads `wall` on `day`, or first passes it."""
    target = datetime.combine(day, wall)
    # Both readings of a time that occurs twice (fold 0 and 1); a time in a gap has no real reading.
    readings = sorted(
        {
            instant
            for fold in (0, 1)
            if _wall(instant := datetime.combine(day, wall, tzinfo=zone).replace(fold=fold).astimezone(UTC), zone)
            == target
        }
    )
    ahead = [instant for instant in readings if instant > at]
    if ahead:
        return ahead[0]
    if readings:  # cannot happen for an `at` inside the window; never answer with the past
        return max(readings[-1], at)
    # In a spring-forward gap the clock jumps over `wall`: the window ends when it jumps. Zones move
    # their clocks on whole minutes, within the two readings (fold 1 is before the jump, fold 0 after).
    instant = datetime.combine(day, wall, tzinfo=zone).replace(fold=1).astimezone(UTC)
    last = datetime.combine(day, wall, tzinfo=zone).replace(fold=0).astimezone(UTC)
    instant = instant.replace(second=0, microsecond=0)
    while instant < last and _wall(instant, zone) < target:
        instant += timedelta(minutes=1)
    return max(instant, at)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """What the clock in `zone` reads at `instant`, without the zone."""
    return instant.astimezone(zone).replace(tzinfo=None)
