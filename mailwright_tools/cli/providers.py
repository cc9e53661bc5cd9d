"""`mailwright providers status|failover|restore`: each lane's provider breakers, on the deployed or the local stack."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from mailwright_tools.cli.app import JsonOption, app
from mailwright_tools.cli.operations import ActorOption, NoteOption, _actor
from mailwright_tools.cli.output import EXIT_FAILED, EXIT_USAGE, console, emit_json, fail, resolve

if TYPE_CHECKING:
    from mailwright_tools.providers import LaneStatus, ProviderControl

providers_app = typer.Typer(
    help="Secondary providers: each lane's breakers (SES and its secondary), and a manual switch "
    "between them. Works on the local stack too.",
    no_args_is_help=True,
)
app.add_typer(providers_app, name="providers")

LaneArgument = Annotated[str, typer.Argument(help="critical, standard or bulk.")]


def _control(ctx: typer.Context) -> tuple[ProviderControl, str]:
    from mailwright_tools.providers import ProviderControl, ProvidersError

    target = resolve(ctx)
    try:
        return ProviderControl.for_target(target), target.describe()
    except ProvidersError as exc:
        fail(str(exc))


def _errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    from mailwright.errors import TransientError

    return (TransientError, ClientError, BotoCoreError)


def _when(epoch: float | None, *, date: bool = True) -> str:
    if not epoch:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")


def _breaker_text(status: LaneStatus, secondary: bool) -> str:
    """The state in a few words; why it opened is in the history below the table."""
    from rich.markup import escape

    view = status.secondary if secondary else status.ses
    if view.state == "closed":
        return "[green]closed[/]"
    colour = "yellow" if view.state == "half_open" else "bold red"
    since = f" since {_when(view.opened_at, date=False)}"
    detail = f"by hand ({escape(view.actor)})" if view.by_hand else f"probe {_when(view.probe_at, date=False)}"
    return f"[{colour}]{view.state}[/]{since}, {detail}"


def _print(statuses: list[LaneStatus], providers: dict[str, str], where: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    names = ", ".join(f"{name} ({kind})" for name, kind in providers.items())
    out.print(f"Secondary providers ({where}): {escape(names)}")
    table = Table("lane", "fails over to", "sending through", "SES breaker", "secondary's breaker", title=None)
    for status in statuses:
        failover = status.provider if status.enabled else "no: waits for SES"
        through = status.sending_through or "[bold red]nobody: mail waits[/]"
        table.add_row(status.lane, escape(failover), through, _breaker_text(status, False), _breaker_text(status, True))
    out.print(table)
    changes = sorted((c for s in statuses for c in s.history), key=lambda c: c.at)
    if changes:
        out.print("recent changes (UTC):")
        for change in changes:
            who = f" by {change.actor}" if change.actor else ""
            out.print(
                f"  {_when(change.at)} {change.lane} {change.provider}: {change.before} -> {change.after}"
                f"{escape(who)}: {escape(change.reason)}"
            )


@providers_app.command("status")
def status(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Show each lane's breakers (SES and its secondary), where its mail goes now, and recent changes."""
    control, where = _control(ctx)
    try:
        statuses = control.status()
    except _errors() as exc:
        fail(f"could not read the provider breakers: {exc}")
    if json_output:
        emit_json(
            {
                "target": where,
                "providers": [{"name": name, "kind": kind} for name, kind in control.providers.items()],
                "lanes": [s.as_dict() for s in statuses],
            }
        )
    else:
        _print(statuses, control.providers, where)


def _switched(status: LaneStatus, where: str, *, json_output: bool, done: str) -> None:
    if json_output:
        emit_json({"target": where, **status.as_dict()})
        return
    out = console()
    through = status.sending_through
    out.print(f"{status.lane} lane {done} ({where}): " + (f"mail goes through {through}" if through else "mail waits"))
    if not through:
        if not status.enabled:
            out.print(
                f"[bold yellow]note:[/] the {status.lane} lane does not fail over (`failover` in context): "
                "its mail waits in the queue until `mailwright providers restore`"
            )
        else:
            out.print(f"[bold yellow]warning:[/] {status.provider}'s breaker is open too: the lane's mail waits")


@providers_app.command("failover")
def failover(
    ctx: typer.Context,
    lane: LaneArgument,
    note: NoteOption = "",
    actor: ActorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Move LANE's mail off SES by hand (audited): SES's breaker opens and stays open until `restore`."""
    from mailwright_tools.providers import ProvidersError, UnknownLaneError

    control, where = _control(ctx)
    try:
        result = control.failover(lane, actor=_actor(actor), note=note)
    except UnknownLaneError as exc:
        fail(str(exc), EXIT_USAGE)
    except ProvidersError as exc:
        fail(str(exc), EXIT_FAILED)
    except _errors() as exc:
        fail(f"could not switch the breaker: {exc}")
    _switched(result, where, json_output=json_output, done="failed over by hand")


@providers_app.command("restore")
def restore(
    ctx: typer.Context,
    lane: LaneArgument,
    provider: Annotated[
        str, typer.Option("--provider", help="Whose breaker to close: ses (default) or the lane's secondary.")
    ] = "ses",
    note: NoteOption = "",
    actor: ActorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Close LANE's SES breaker by hand (audited): SES takes the lane's mail again at once."""
    from mailwright_tools.providers import ProvidersError, UnknownLaneError

    control, where = _control(ctx)
    try:
        result = control.restore(lane, actor=_actor(actor), note=note, provider=provider)
    except UnknownLaneError as exc:
        fail(str(exc), EXIT_USAGE)
    except ProvidersError as exc:
        fail(str(exc), EXIT_USAGE)
    except _errors() as exc:
        fail(f"could not switch the breaker: {exc}")
    _switched(result, where, json_output=json_output, done=f"{provider}'s breaker restored")
