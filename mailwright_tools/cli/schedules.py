"""`mailwright cancel`, `reschedule` and `scheduled list`: scheduled sends (see mailwright.scheduling).

Exit codes: 0 done (cancel: cancelled; reschedule: moved), 1 the request is no
longer scheduled (already sent, or cancelled, or otherwise final: nothing was
changed, the answer says its state), 2 bad input, 3 no stack.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailwright_tools.cli.app import JsonOption, app
from mailwright_tools.cli.output import EXIT_FAILED, EXIT_USAGE, console, emit_json, fail, resolve

if TYPE_CHECKING:
    from mailwright.ports import CancelResult, ScheduledRequest
    from mailwright.scheduling import ScheduleDesk

scheduled_app = typer.Typer(help="Scheduled sends: list the requests waiting for their send_at.", no_args_is_help=True)
app.add_typer(scheduled_app, name="scheduled")

ProducerOption = Annotated[
    str | None,
    typer.Option("--producer", help="The producer the requests name (default: requests naming none)."),
]


def _desk(ctx: typer.Context) -> ScheduleDesk:
    from mailwright.wiring import build_schedule_desk

    target = resolve(ctx)
    return build_schedule_desk(
        messages_table=target.tables["messages"],
        idempotency_table=target.tables["idempotency"],
        schedule_group=target.schedule_group or None,
        session=target.session(),
    )


def _aws_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    from mailwright.errors import TransientError

    return (ClientError, BotoCoreError, TransientError)


def _until(send_at: float | None) -> str:
    if send_at is None:
        return ""
    from mailwright.scheduling import iso

    seconds = send_at - time.time()
    return f"{iso(send_at)} ({describe_wait(seconds)})"


def describe_wait(seconds: float) -> str:
    """How long until a send_at, e.g. `in 2 h 5 min`, or `due now` once it has passed."""
    if seconds <= 1:
        return "due now"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    shown = " ".join(p for p in parts if p) or f"{secs} s"
    return f"in {shown}"


def _result_json(result: CancelResult) -> dict[str, Any]:
    return {"request_id": result.request_id, "status": result.status, "changed": result.changed}


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    request_id: Annotated[str | None, typer.Argument(help="The request id to cancel.")] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", help="Instead of one id: every request published with this cancel_key before now."),
    ] = None,
    producer: ProducerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Cancel a scheduled request (or one not processed yet) before it is sent.

    Only a `scheduled` request, or one not seen yet, can be cancelled; a sent
    (or otherwise final) one is left as it is, and the command says its state
    and exits 1. With --key KEY, every request published with that cancel_key
    before now is cancelled: those scheduled now, and those still queued when
    they arrive (for a year and a day).
    """
    from mailwright.constants import CANCEL_KEY_PATTERN, REQUEST_ID_PATTERN

    if (request_id is None) == (key is None):
        fail("give a request id or --key KEY", EXIT_USAGE)
    desk = _desk(ctx)
    if key is not None:
        if not re.match(CANCEL_KEY_PATTERN, key):
            fail("--key: letters, digits, _ . : - (at most 128)", EXIT_USAGE)
        try:
            done = desk.cancel_key(key, producer=producer)
        except _aws_errors() as exc:
            fail(f"could not cancel: {exc}")
        if json_output:
            emit_json({"cancel_key": key, "results": [_result_json(r) for r in done.results]})
            return
        out = console()
        cancelled = [r for r in done.results if r.changed]
        out.print(f"cancel_key {key}: {len(cancelled)} scheduled request(s) cancelled; requests with it still in a")
        out.print("queue are cancelled when they arrive.")
        for result in done.results:
            out.print(f"  {result.request_id}: {result.status}")
        return
    assert request_id is not None
    wanted = request_id.strip()
    if not re.match(REQUEST_ID_PATTERN, wanted):
        fail("a request id is 32 hex characters (from `mailwright send` or the SDK)", EXIT_USAGE)
    try:
        result = desk.cancel(wanted)
    except _aws_errors() as exc:
        fail(f"could not cancel: {exc}")
    if json_output:
        emit_json(_result_json(result))
    elif result.changed:
        console().print(f"[bold]{wanted}[/]: [green]cancelled[/]")
    else:
        said = "already sent" if result.status == "sent" else f"not cancelled: it is {result.status}"
        console().print(f"[bold]{wanted}[/]: [yellow]{said}[/] (nothing changed)")
    if not result.changed:
        raise typer.Exit(EXIT_FAILED)


@app.command("reschedule")
def reschedule(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="The scheduled request's id.")],
    send_at: Annotated[
        str, typer.Option("--send-at", help="The new time, ISO 8601 with an offset, e.g. 2026-12-24T09:00:00+01:00.")
    ],
    json_output: JsonOption = False,
) -> None:
    """Move a scheduled request's send_at; a request no longer scheduled is left as it is (exit 1)."""
    from mailwright.scheduling import InvalidSendAtError, parse_send_at

    try:
        at = parse_send_at(send_at)
    except InvalidSendAtError as exc:
        fail(str(exc), EXIT_USAGE)
    desk = _desk(ctx)
    try:
        result = desk.reschedule(request_id.strip(), at)
    except InvalidSendAtError as exc:
        fail(str(exc), EXIT_USAGE)
    except _aws_errors() as exc:
        fail(f"could not reschedule: {exc}")
    if json_output:
        emit_json({**_result_json(result), "send_at": at if result.changed else None})
    elif result.changed:
        console().print(f"[bold]{result.request_id}[/]: scheduled for {_until(at)}")
    else:
        console().print(f"[bold]{result.request_id}[/]: [yellow]not rescheduled: it is {result.status}[/]")
    if not result.changed:
        raise typer.Exit(EXIT_FAILED)


def _scheduled_json(item: ScheduledRequest) -> dict[str, Any]:
    return {
        "request_id": item.request_id,
        "send_at": item.send_at,
        "lane": item.lane,
        "template_id": item.template_id,
        "user_id": item.user_id,
        "recipient": item.recipient_masked,
        "cancel_key": item.cancel_key,
        "producer": item.producer,
    }


@scheduled_app.command("list")
def scheduled_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Only this user id's requests.")] = None,
    producer: ProducerOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many.")] = 100,
    json_output: JsonOption = False,
) -> None:
    """The requests waiting for their send_at, soonest first (from the message log's schedule index)."""
    desk = _desk(ctx)
    try:
        found = desk.scheduled(producer=producer, user_id=user, limit=limit)
    except _aws_errors() as exc:
        fail(f"could not read the message log: {exc}")
    if json_output:
        emit_json({"scheduled": [_scheduled_json(item) for item in found]})
        return
    from rich.table import Table

    out = console()
    if not found:
        out.print("no scheduled requests")
        return
    table = Table(title="Scheduled requests (UTC)", title_justify="left")
    for column in ("request id", "send at", "template", "to", "user", "cancel key"):
        table.add_column(column)
    for item in found:
        table.add_row(
            item.request_id,
            _until(item.send_at),
            item.template_id or "",
            item.recipient_masked or "",
            item.user_id or "",
            item.cancel_key or "",
        )
    out.print(table)
