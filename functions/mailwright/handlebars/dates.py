"""SendGrid's `formatDate` helper: moment.js-style tokens over an ISO 8601 timestamp."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from mailwright.handlebars.errors import HandlebarsError

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DATE_TOKEN = re.compile(r"\[[^\]]*\]|YYYY|YY|MMMM|MMM|MM|M|DD|D|dddd|ddd|HH|H|hh|h|mm|m|ss|s|A|a|ZZ|Z")
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def _offset(text: str, name: str, line: int | None) -> timezone:
    match = _OFFSET.match(text.strip())
    if not match:
        raise HandlebarsError(name, line, f"formatDate: timezone offset {text!r} is not like -0800")
    minutes = int(match.group(2)) * 60 + int(match.group(3))
    return timezone(timedelta(minutes=-minutes if match.group(1) == "-" else minutes))


def format_date(value: Any, pattern: str, offset: str | None, name: str = "", line: int | None = None) -> str:
    """SendGrid's `formatDate`: an ISO 8601 timestamp in a moment.js-style pattern, UTC unless an offset is given."""
    if not isinstance(value, str):
        raise HandlebarsError(name, line, f"formatDate: {value!r} is not an ISO 8601 timestamp")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HandlebarsError(name, line, f"formatDate: {value!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(_offset(offset, name, line) if offset else UTC)

    def token(match: re.Match[str]) -> str:
        text = match.group(0)
        hour12 = moment.hour % 12 or 12
        utc = moment.utcoffset() or timedelta()
        sign = "-" if utc < timedelta() else "+"
        minutes = abs(int(utc.total_seconds())) // 60
        values = {
            "YYYY": f"{moment.year:04d}",
            "YY": f"{moment.year % 100:02d}",
            "MMMM": _MONTHS[moment.month - 1],
            "MMM": _MONTHS[moment.month - 1][:3],
            "MM": f"{moment.month:02d}",
            "M": str(moment.month),
            "DD": f"{moment.day:02d}",
            "D": str(moment.day),
            "dddd": _DAYS[moment.weekday()],
            "ddd": _DAYS[moment.weekday()][:3],
            "HH": f"{moment.hour:02d}",
            "H": str(moment.hour),
            "hh": f"{hour12:02d}",
            "h": str(hour12),
            "mm": f"{moment.minute:02d}",
            "m": str(moment.minute),
            "ss": f"{moment.second:02d}",
            "s": str(moment.second),
            "A": "AM" if moment.hour < 12 else "PM",
            "a": "am" if moment.hour < 12 else "pm",
            "ZZ": f"{sign}{minutes // 60:02d}{minutes % 60:02d}",
            "Z": f"{sign}{minutes // 60:02d}:{minutes % 60:02d}",
        }
        return text[1:-1] if text.startswith("[") else values[text]

    return _DATE_TOKEN.sub(token, pattern)
