"""Bulk sends from a CSV file: one request per row, all checked before any is published, each row its own key.

    plan = read_csv(Path("signups.csv"), template="welcome_email", mapping=parse_mapping(["email=recipient_email"]),
                    templates=KnownTemplates.read(Path("templates")))
    if plan.problems: ...               # [(line, reason), ...]: nothing may be published
    report = publish_rows(plan.rows, publisher)

Columns map to request fields by name: `recipient_email`, `user_id` and
`locale`; every other column is a template variable (a dotted name such as
`order.id` nests: `{"order": {"id": ...}}`). `--map COLUMN=FIELD` renames a
column (to a field, a variable, or `-` to leave it out).

Each row's `idempotency_key` is derived from the batch id and the row's own
content. Publishing the same file again (after an interruption, say) gives
every row the same key, so the worker sends none of them twice within the
dedupe window (`idempotency_ttl_hours`); a row whose content changed gets a
new key and is sent, and only it.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mailwright.request import EmailRequest, describe_validation_error
from mailwright.sdk import PartialBatchError, Publisher
from mailwright_tools.request_checks import KnownTemplates

REQUEST_FIELDS = ("recipient_email", "user_id", "locale")
# `--map COLUMN=-` leaves a column out of the requests.
IGNORED = "-"
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
MAX_BATCH_ID = 100
# Rows published per SDK call (the SDK sends ten per SendMessageBatch), and calls in flight.
PUBLISH_CHUNK = 500
PUBLISH_THREADS = 4

Progress = Callable[[int], None]


class BulkInputError(ValueError):
    """The CSV file or the options describing it cannot be used at all (not a problem of one row)."""


@dataclass(frozen=True)
class CsvRow:
    """A row turned into a request: the line it starts on, and the request with its idempotency key."""

    line: int
    request: dict[str, Any]
    request_id: str
    model: EmailRequest


@dataclass
class CsvPlan:
    """What a CSV file holds: the rows to publish, every problem found, and rows that repeat an earlier one."""

    batch_id: str
    columns: dict[str, str]
    rows: list[CsvRow] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    # (line, line of the earlier identical row): published once.
    repeats: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class PublishReport:
    """What publishing the rows did."""

    published: dict[str, int] = field(default_factory=dict)
    # (line, why) of rows not accepted after the SDK's retry; publishing again retries them safely.
    failed: list[tuple[int, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows accepted by the lane queues (or the bus)."""
        return sum(self.published.values())


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """`COLUMN=FIELD` pairs as {column: field}; BulkInputError names a malformed one."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.partition("=")
        column, target = column.strip(), target.strip()
        if not sep or not column or not target:
            raise BulkInputError(f"--map {pair!r}: expected COLUMN=FIELD (FIELD: a request field, a variable or -)")
        target = target.removeprefix("template_data.")
        if target not in (*REQUEST_FIELDS, IGNORED) and not _VARIABLE.match(target):
            raise BulkInputError(f"--map {pair!r}: {target!r} is not a request field or a template variable name")
        mapping[column] = target
    return mapping


def default_batch_id(template: str, path: Path) -> str:
    """The batch id when none is given: the template and the file's name, e.g. `welcome_email-signups.csv`."""
    return f"{template}-{path.name}"[:MAX_BATCH_ID]


def row_key(batch_id: str, request: EmailRequest) -> str:
    """A row's idempotency key: the batch id and the request's content (everything that shapes the email)."""
    batch = hashlib.sha256(batch_id.encode("utf-8")).hexdigest()[:12]
    return f"csv-{batch}-{request.content_hash}"


def read_csv(
    path: Path,
    *,
    template: str,
    mapping: Mapping[str, str] | None = None,
    batch_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
    templates: KnownTemplates | None = None,
) -> CsvPlan:
    """Read and check every row; `extra` (priority, metadata) applies to all. BulkInputError if none can be read."""
    batch_id = batch_id if batch_id is not None else default_batch_id(template, path)
    if not 0 < len(batch_id) <= MAX_BATCH_ID:
        raise BulkInputError(f"--batch-id must be 1 to {MAX_BATCH_ID} characters")
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise BulkInputError(f"{path}: {exc.strerror or exc}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise BulkInputError(f"{path}: line 1: {exc}") from None
        if not header or not any(name.strip() for name in header):
            raise BulkInputError(f"{path}: no header row (the first line names the columns)")
        columns = _columns([name.strip() for name in header], dict(mapping or {}))
        plan = CsvPlan(batch_id=batch_id, columns=columns)
        first_line: dict[str, int] = {}
        line = reader.line_num + 1
        while True:
            try:
                cells = next(reader, None)
            except (csv.Error, UnicodeDecodeError) as exc:
                raise BulkInputError(f"{path}: line {line}: {exc}") from None
            if cells is None:
                break
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue  # a blank line
            if len(cells) != len(header):
                plan.problems.append((start, f"{len(cells)} fields, the header has {len(header)}"))
                continue
            row = _row(start, dict(zip(header, cells, strict=True)), columns, template, extra or {}, batch_id)
            if isinstance(row, str):
                plan.problems.append((start, row))
                continue
            problem = templates.problem(row.model) if templates else None
            if problem:
                plan.problems.append((start, problem))
            elif row.request_id in first_line:
                plan.repeats.append((start, first_line[row.request_id]))
            else:
                first_line[row.request_id] = start
                plan.rows.append(row)
    if not plan.rows and not plan.problems:
        raise BulkInputError(f"{path}: no rows under the header")
    return plan


def _columns(header: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """Column -> target (a request field or a template variable path); ignored columns left out."""
    if len(set(header)) != len(header):
        repeated = sorted({name for name in header if header.count(name) > 1})
        raise BulkInputError(f"the header names a column twice: {', '.join(repeated)}")
    unknown = sorted(set(mapping) - set(header))
    if unknown:
        raise BulkInputError(f"--map names columns the file does not have: {', '.join(unknown)}")
    columns: dict[str, str] = {}
    for name in header:
        target = mapping.get(name, name)
        if target == IGNORED:
            continue
        if target not in REQUEST_FIELDS and not _VARIABLE.match(target):
            raise BulkInputError(
                f"column {name!r} is not a template variable name (letters, digits, _ and dots): "
                f"rename it with --map {name}=NAME, or leave it out with --map {name}=-"
            )
        columns[name] = target
    targets = list(columns.values())
    doubled = sorted({t for t in targets if targets.count(t) > 1})
    if doubled:
        raise BulkInputError(f"two columns map to the same field: {', '.join(doubled)}")
    nested = sorted({t for t in targets for other in targets if other.startswith(t + ".")})
    if nested:
        raise BulkInputError(f"{', '.join(nested)} is both a value and holds nested columns ({nested[0]}.…)")
    if "recipient_email" not in targets:
        raise BulkInputError(
            f"no column maps to recipient_email (columns: {', '.join(header)}); use --map COLUMN=recipient_email"
        )
    return columns


def _row(
    line: int,
    cells: dict[str, str],
    columns: Mapping[str, str],
    template: str,
    extra: Mapping[str, Any],
    batch_id: str,
) -> CsvRow | str:
    """The request of one row, or why there is none."""
    request: dict[str, Any] = {"template_id": template, **extra}
    data: dict[str, Any] = {}
    for column, target in columns.items():
        value = cells[column]
        if target in REQUEST_FIELDS:
            if value.strip():  # an empty user_id or locale means "none"
                request[target] = value
            continue
        *parents, leaf = target.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    request["template_data"] = data
    try:
        model = EmailRequest.model_validate(request)
    except ValidationError as exc:
        return describe_validation_error(exc)
    keyed = {**request, "idempotency_key": row_key(batch_id, model)}
    model = model.model_copy(update={"idempotency_key": keyed["idempotency_key"]})
    return CsvRow(line=line, request=keyed, request_id=model.request_id, model=model)


def publish_rows(
    rows: Sequence[CsvRow],
    publisher: Publisher,
    *,
    progress: Progress | None = None,
    chunk: int = PUBLISH_CHUNK,
    threads: int = PUBLISH_THREADS,
) -> PublishReport:
    """Publish the rows through the SDK, `chunk` rows per call, `threads` calls at once; report by lane."""
    report = PublishReport()
    chunks = [list(rows[start : start + chunk]) for start in range(0, len(rows), chunk)]

    def publish(part: list[CsvRow]) -> tuple[list[CsvRow], list[tuple[int, str]]]:
        try:
            publisher.send_batch([row.model for row in part])
        except PartialBatchError as exc:
            refused = {entry.index: f"{entry.code}: {entry.message}" for entry in exc.failed}
            return [r for i, r in enumerate(part) if i not in refused], [(part[i].line, w) for i, w in refused.items()]
        except Exception as exc:  # the whole call failed (no credentials, no endpoint...): these rows are not sent
            return [], [(row.line, f"{type(exc).__name__}: {exc}") for row in part]
        return part, []

    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="csv-publish") as pool:
        for accepted, failed in pool.map(publish, chunks):
            for row in accepted:
                lane = publisher.lane_of(row.model)
                report.published[lane] = report.published.get(lane, 0) + 1
            report.failed.extend(failed)
            if progress is not None:
                progress(len(accepted) + len(failed))
    report.failed.sort()
    return report
