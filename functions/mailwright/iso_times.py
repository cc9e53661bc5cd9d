"""ISO 8601 date-times as the contracts take them: text with a date and a time, never a bare number.

Pydantic reads a number, or a string of digits, as epoch seconds; the request and the status API
document ISO 8601 text (`2026-12-24T09:00:00+01:00`), so anything else is refused before pydantic parses it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

_DATE_TIME = re.compile(r"^\s*\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def date_time_text(value: Any) -> Any:
    """`value` as a datetime (given one, or ISO 8601 date-time text), or None; else a ValueError."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE_TIME.match(value):
        try:
            # Parsed here: after this validator a strict model takes only a datetime.
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError("expected ISO 8601 text with a UTC offset, e.g. 2026-12-24T09:00:00+01:00")
