"""`mailwright lanes status|pause|resume`: the lanes' event source mappings, on the deployed or the local stack."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mailwright_tools.cli.app import JsonOption, app, cli_context
from mailwright_tools.cli.output import EXIT_FAILED, EXIT_NO_TARGET, EXIT_USAGE, console, emit_json, fail, project

if TYPE_CHECKING:
    from mailwright_tools.lanes import LaneControl, LaneState

lanes_app = typer.Typer(
    help="See which lanes consume their queue, pause and resume them "
    "(the reputation breaker pauses bulk by itself). Works on the local stack too.",
    no_args_is_help=True,
)
app.add_typer(lanes_app, name="lanes")

LaneArgument = Annotated[str, typer.Argument(help="critical, standard or bulk.")]
NO_LOCAL_STACK = "No local stack is running either (start one with `mailwright local up`)."


def _control(ctx: typer.Context) -> tuple[LaneControl, str]:
    """The lanes of the running local stack, else of the deployed stack the global options name; and its name."""
    import boto3

    from mailwright_tools.lanes import LaneControl, LanesError
    from mailwright_tools.state import live_local_stack
    from mailwright_tools.target import default_stack_name, local_target

    options = cli_context(ctx)
    running = live_local_stack(options.state) if options.stack_name is None else None
    try:
        if running is not None:
            target = local_target(running)
            return LaneControl.for_target(target), target.describe()
        stack_name = options.stack_name or default_stack_name(project(ctx))
        session = boto3.session.Session(region_name=options.region)
        return LaneControl.for_stack(stack_name, session=session), f"stack {stack_name}"
    except LanesError as exc:
        hint = "" if running or options.stack_name else f" {NO_LOCAL_STACK}"
        fail(f"{exc}.{hint}", EXIT_NO_TARGET)


def _print(lanes: list[LaneState], alarms: dict[str, str], where: str) -> None:
    from rich.table import Table

    table = Table("lane", "state", "worker", "batch size", "max concurrency", title=f"Lanes ({where})")
    table.title_justify = "left"
    for lane in lanes:
        state = f"[bold red]{lane.state}[/] (paused)" if lane.paused else f"[green]{lane.state}[/]"
        table.add_row(lane.lane, state, lane.function_name, str(lane.batch_size), str(lane.maximum_concurrency))
    out = console()
    out.print(table)
    for name, state in alarms.items():
        out.print(f"reputation alarm {name}: {'[bold red]ALARM[/]' if state == 'ALARM' else state}")


@lanes_app.command("status")
def status(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Show whether each lane consumes its queue, and the reputation alarms that pause bulk."""
    from mailwright_tools.lanes import LanesError

    control, where = _control(ctx)
    try:
        lanes = control.status()
    except LanesError as exc:
        fail(str(exc))
    alarms = control.alarm_states()
    if json_output:
        emit_json({"target": where, "lanes": [lane.as_dict() for lane in lanes], "reputation_alarms": alarms})
    else:
        _print(lanes, alarms, where)


def _switch(ctx: typer.Context, lane: str, *, enabled: bool, json_output: bool) -> None:
    from mailwright_tools.lanes import LanesError, UnknownLaneError

    control, where = _control(ctx)
    try:
        state = control.set_enabled(lane, enabled)
    except UnknownLaneError as exc:
        fail(str(exc), EXIT_USAGE)
    except LanesError as exc:
        fail(str(exc), EXIT_FAILED)
    firing = [name for name, value in control.alarm_states().items() if value == "ALARM"] if enabled else []
    if json_output:
        emit_json({"target": where, "lane": state.as_dict(), "reputation_alarms_in_alarm": firing})
        return
    out = console()
    out.print(f"{lane} lane {'resumed' if enabled else 'paused'} (mapping {state.mapping_id}: {state.state}; {where})")
    if firing:
        # The breaker acts on state changes: an alarm already in ALARM will not pause the lane again.
        out.print(
            f"[bold yellow]warning:[/] {', '.join(firing)} still in ALARM; the breaker pauses again only "
            "when an alarm next changes to ALARM"
        )


@lanes_app.command("pause")
def pause(ctx: typer.Context, lane: LaneArgument, json_output: JsonOption = False) -> None:
    """Stop a lane consuming its queue; requests wait there (up to the queue's 4-day retention)."""
    _switch(ctx, lane, enabled=False, json_output=json_output)


@lanes_app.command("resume")
def resume(ctx: typer.Context, lane: LaneArgument, json_output: JsonOption = False) -> None:
    """Let a paused lane consume its queue again (after the breaker paused bulk, once the cause is fixed)."""
    _switch(ctx, lane, enabled=True, json_output=json_output)
