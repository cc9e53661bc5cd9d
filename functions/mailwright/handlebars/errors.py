"""Errors of the Handlebars engine."""

from __future__ import annotations


class HandlebarsError(Exception):
    """A template that does not parse, or fails to render; the message starts with `file:line:`."""

    def __init__(self, name: str, line: int | None, message: str) -> None:
        super().__init__(f"{name}:{line}: {message}" if line else f"{name}: {message}")
        self.name = name
        self.line = line
        self.message = message


class HandlebarsMissingError(HandlebarsError):
    """A variable the template needs is not in the data."""
