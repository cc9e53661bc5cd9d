"""Bulk opt-outs from a CSV file (`mailwright preferences import FILE`): every row checked before any is applied.

The file has a header row with `user_id` and `opt_out`; `opt_out` holds one or
more optional categories separated by `;` (or spaces), or `all` for an
unsubscribe from all optional mail::

    user_id,opt_out
    user-1,marketing
    user-2,marketing;product
    user-3,all

Applying is idempotent: a row whose opt-outs are already in place writes
nothing, so a file can be imported again after an interruption.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mailwright.preference_changes import (
    SOURCE_IMPORT,
    PreferenceAdmin,
    PreferenceChange,
    PreferenceError,
    check_user_id,
)

COLUMNS = ("user_id", "opt_out")
ALL = "all"
_SEPARATORS = re.compile(r"[;\s]+")


class ImportFileError(ValueError):
    """The file as a whole cannot be read as an opt-out import (missing, not CSV, wrong header)."""


@dataclass(frozen=True)
class ImportRow:
    """One valid row: the user and the change it asks for, with its line in the file."""

    line: int
    user_id: str
    change: PreferenceChange


@dataclass(frozen=True)
class RowError:
    """Why the row at `line` cannot be imported."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportReport:
    """What an import did: rows changed, rows already in place, rows skipped as invalid."""

    changed: int = 0
    unchanged: int = 0
    skipped: list[RowError] = field(default_factory=list)


def read_opt_outs(path: Path) -> tuple[list[ImportRow], list[RowError]]:
    """The file's valid rows and its invalid ones; raise ImportFileError when it is not such a file at all."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"{path}: cannot be read as UTF-8 text ({exc})") from None
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise ImportFileError(f"{path}: empty; the first row names the columns {', '.join(COLUMNS)}") from None
    except csv.Error as exc:
        raise ImportFileError(f"{path}: not CSV ({exc})") from None
    if sorted(header) != sorted(COLUMNS):
        raise ImportFileError(f"{path}: the first row must name the columns {', '.join(COLUMNS)} (got {header})")
    rows: list[ImportRow] = []
    errors: list[RowError] = []
    try:
        for values in reader:
            line = reader.line_num
            if not any(value.strip() for value in values):
                continue  # a blank line
            if len(values) != len(header):
                errors.append(RowError(line, f"{len(values)} fields, expected {len(header)}"))
                continue
            cells = dict(zip(header, (value.strip() for value in values), strict=True))
            try:
                rows.append(ImportRow(line, check_user_id(cells["user_id"]), _change(cells["opt_out"])))
            except PreferenceError as exc:
                errors.append(RowError(line, str(exc)))
    except csv.Error as exc:
        errors.append(RowError(reader.line_num, f"not CSV ({exc})"))
    return rows, errors


def _change(cell: str) -> PreferenceChange:
    words = [word for word in _SEPARATORS.split(cell.lower()) if word]
    if not words:
        raise PreferenceError(f"no categories in opt_out (give optional categories separated by ';', or {ALL!r})")
    if ALL in words:
        if len(words) > 1:
            raise PreferenceError(f"{ALL!r} unsubscribes from every optional category: give it alone")
        return PreferenceChange(unsubscribe_all=True)
    return PreferenceChange(opt_out=frozenset(words)).validated()


def apply_opt_outs(
    admin: PreferenceAdmin,
    rows: Sequence[ImportRow],
    *,
    actor: str,
    note: str,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Apply the rows in order, each audited with its line; rows already in place write nothing."""
    report = ImportReport()
    for index, row in enumerate(rows, start=1):
        where = f"line {row.line}"
        result = admin.change(
            row.user_id, row.change, actor=actor, source=SOURCE_IMPORT, note=f"{note}; {where}" if note else where
        )
        if result.changed:
            report.changed += 1
        else:
            report.unchanged += 1
        if progress is not None:
            progress(index)
    return report
