"""`mailwright send --csv FILE --template T`: a bulk send, checked in full, then published with a progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from mailwright_tools.cli.output import EXIT_FAILED, EXIT_USAGE, console, emit_json, err_console, fail, resolve
from mailwright_tools.cli.output import optional_project as find_project

# At most this many problems are printed (all of them are in --json).
SHOWN_PROBLEMS = 50


def send_csv(
    ctx: typer.Context,
    *,
    path: Path,
    template: str | None,
    mapping: list[str],
    batch_id: str | None,
    extra: dict[str, Any],
    via: str,
    check_templates: bool,
    json_output: bool,
) -> None:
    """Check every row of `path`, then publish them all through the SDK, or nothing when any row is bad."""
    from mailwright.sdk import Publisher, template_priorities
    from mailwright_tools.bulk import BulkInputError, parse_mapping, read_csv
    from mailwright_tools.request_checks import KnownTemplates

    if not template:
        fail("--csv needs --template (every row is sent with that template)", EXIT_USAGE)
    found = find_project(ctx)
    templates = KnownTemplates.read(found.templates) if check_templates and found is not None else None
    try:
        plan = read_csv(
            path, template=template, mapping=parse_mapping(mapping), batch_id=batch_id, extra=extra, templates=templates
        )
    except BulkInputError as exc:
        fail(f"--csv {path}: {exc}", EXIT_USAGE)
    if plan.problems:
        _print_problems(path, plan.problems, json_output)
        raise typer.Exit(EXIT_USAGE)
    target = resolve(ctx)
    priorities = template_priorities(found.templates) if found is not None else {}
    if via == "bus":
        if not target.event_bus:
            fail(f"the {target.describe()} has no event bus")
        publisher = Publisher(event_bus=target.event_bus, template_priorities=priorities, session=target.session())
    else:
        publisher = Publisher(queue_urls=target.queues, template_priorities=priorities, session=target.session())
    report = _publish(plan.rows, publisher, show=not json_output)
    summary = {
        "file": str(path),
        "batch_id": plan.batch_id,
        "rows": len(plan.rows) + len(plan.repeats),
        "published": report.total,
        "lanes": report.published,
        "repeats": [{"line": line, "same_as_line": first} for line, first in plan.repeats],
        "failed": [{"line": line, "error": why} for line, why in report.failed],
        "via": via,
        "target": target.describe(),
    }
    if json_output:
        emit_json(summary)
    else:
        _print_summary(summary)
    if report.failed:
        raise typer.Exit(EXIT_FAILED)


def _publish(rows: list[Any], publisher: Any, *, show: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mailwright_tools.bulk import publish_rows

    progress = Progress(
        TextColumn("publishing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err_console(),
        disable=not show,
    )
    with progress:
        task = progress.add_task("publishing", total=len(rows), rate="")

        def advance(done: int) -> None:
            progress.advance(task, done)
            speed = progress.tasks[0].speed
            progress.update(task, rate=f"{speed:,.0f} rows/s" if speed else "")

        return publish_rows(rows, publisher, progress=advance)


def _print_problems(path: Path, problems: list[tuple[int, str]], json_output: bool) -> None:
    if json_output:
        emit_json({"file": str(path), "published": 0, "problems": [{"line": n, "error": e} for n, e in problems]})
        return
    out = err_console()
    out.print(f"--csv {path}: {len(problems)} bad row(s); nothing was published:", highlight=False, markup=False)
    for line, why in problems[:SHOWN_PROBLEMS]:
        out.print(f"  line {line}: {why}", highlight=False, markup=False)
    if len(problems) > SHOWN_PROBLEMS:
        out.print(f"  … and {len(problems) - SHOWN_PROBLEMS} more (--json lists them all)", highlight=False)


def _print_summary(summary: dict[str, Any]) -> None:
    out = console()
    lanes = ", ".join(f"{count} {lane}" for lane, count in sorted(summary["lanes"].items())) or "none"
    out.print(
        f"published {summary['published']} of {summary['rows']} rows from {summary['file']} "
        f"(batch {summary['batch_id']}; lanes: {lanes}; via {summary['via']} to the {summary['target']})",
        highlight=False,
    )
    if summary["repeats"]:
        lines = ", ".join(f"{r['line']} (= {r['same_as_line']})" for r in summary["repeats"][:10])
        out.print(f"{len(summary['repeats'])} row(s) repeat an earlier row and were published once: lines {lines}")
    if summary["failed"]:
        for failure in summary["failed"][:SHOWN_PROBLEMS]:
            out.print(f"[red]not accepted[/]: line {failure['line']}: {failure['error']}", highlight=False)
        out.print(
            "Run the same command again to retry them: every row keeps its idempotency key, so rows already "
            "published are not sent twice."
        )
    else:
        out.print(
            "[dim]Running it again sends nothing twice (each row's idempotency key comes from the batch id and "
            "its content); after fixing a row, only that row is sent.[/]"
        )
