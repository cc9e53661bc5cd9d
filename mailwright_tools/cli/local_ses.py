"""`mailwright local ses down|up|status`: an SES outage on the running local stack, and its end."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from mailwright_tools.cli.app import JsonOption, cli_context, local_app
from mailwright_tools.cli.output import EXIT_FAILED, EXIT_NO_TARGET, EXIT_USAGE, console, emit_json, fail

ses_app = typer.Typer(
    help="Make the local stack's SES fail as an outage would (5xx or refused connections), and bring it back: "
    "the provider breakers, failover and restore then run as deployed.",
    no_args_is_help=True,
)
local_app.add_typer(ses_app, name="ses")

ModeOption = Annotated[
    str,
    typer.Option("--mode", help="5xx: SES answers 503 Service Unavailable; connection: connections are refused."),
]


def _switch(ctx: typer.Context, change: dict[str, str] | None) -> dict[str, Any]:
    from mailwright_tools.local.ses_outage import SesSwitchError, remote
    from mailwright_tools.state import live_local_stack

    running = live_local_stack(cli_context(ctx).state)
    if running is None:
        fail("no local stack is running (start one with `mailwright local up`)", EXIT_NO_TARGET)
    url = str(running.get("ses_control_url") or "")
    if not url:
        fail("this local stack has no SES switch: restart it with this version of mailwright", EXIT_NO_TARGET)
    try:
        return remote(url, change)
    except SesSwitchError as exc:
        fail(str(exc), EXIT_FAILED)


def _show(state: dict[str, Any], json_output: bool) -> None:
    if json_output:
        emit_json(state)
    else:
        _print(state)


def _print(state: dict[str, Any]) -> None:
    since = datetime.fromtimestamp(float(state["since"]), UTC).strftime("%H:%M:%S UTC")
    ago = time.time() - float(state["since"])
    out = console()
    if state["state"] == "down":
        out.print(
            f"local SES is [bold red]down[/] ({state['mode']}) since {since} ({ago:.0f} s), "
            f"{state['failed_attempts']} attempts failed"
        )
        out.print("Watch the breakers with `mailwright providers status`; `mailwright local ses up` ends the outage.")
    else:
        out.print(f"local SES is [green]up[/] since {since}")


@ses_app.command("down")
def down(ctx: typer.Context, mode: ModeOption = "5xx", json_output: JsonOption = False) -> None:
    """Make every SES call of the local stack fail until `mailwright local ses up`."""
    if mode not in ("5xx", "connection"):
        fail(f"--mode must be 5xx or connection, got {mode!r}", EXIT_USAGE)
    state = _switch(ctx, {"state": "down", "mode": mode})
    _show(state, json_output)


@ses_app.command("up")
def up(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Let the local stack's SES calls through again (the breakers close on their next probe)."""
    state = _switch(ctx, {"state": "up"})
    _show(state, json_output)


@ses_app.command("status")
def status(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Whether the local stack's SES answers."""
    state = _switch(ctx, None)
    _show(state, json_output)
