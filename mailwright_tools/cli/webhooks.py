"""`mailwright webhooks list|test|resume|replay|rotate`: the webhook endpoints of the deployed or the local stack."""

from __future__ import annotations

import getpass
import socket
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailwright_tools.cli.app import JsonOption, app
from mailwright_tools.cli.output import EXIT_FAILED, EXIT_USAGE, console, emit_json, fail, resolve

if TYPE_CHECKING:
    from mailwright_tools.webhooks import WebhookAdmin

webhooks_app = typer.Typer(
    help="Webhook endpoints: their state, a signed test delivery, resuming a suspended one, replaying what was kept, "
    "rotating a secret.",
    no_args_is_help=True,
)
app.add_typer(webhooks_app, name="webhooks")

NameArgument = Annotated[str, typer.Argument(help="The endpoint's name (`mailwright webhooks list`).")]


def _admin(ctx: typer.Context) -> WebhookAdmin:
    from mailwright_tools.webhooks import WebhookAdmin

    target = resolve(ctx)
    if not target.webhook_state_table:
        fail(f"the {target.describe()} has no webhooks (a stack deployed before they existed?)")
    return WebhookAdmin(target)


def _errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def _usage_error(exc: Exception) -> None:
    from mailwright_tools.webhooks import WebhookAdminError

    if isinstance(exc, WebhookAdminError):
        fail(str(exc), EXIT_USAGE if str(exc).startswith("no webhook endpoint") else EXIT_FAILED)


@webhooks_app.command("list")
def webhooks_list(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Each endpoint: its URL, whether it is active, failing or suspended (and why), and what waits for it."""
    admin = _admin(ctx)
    try:
        views = admin.endpoints()
    except _errors() as exc:
        fail(f"could not read the webhooks: {exc}")
    if json_output:
        emit_json({"endpoints": [view.to_json() for view in views]})
        return
    from rich.table import Table

    out = console()
    if not views:
        out.print(f"The {admin.target.describe()} has no webhook endpoints.")
        return
    table = Table(show_edge=False)
    for column in ("endpoint", "url", "state", "queued", "DLQ", "archived", "last error"):
        table.add_column(column)
    for view in views:
        state = view.state
        if state.suspended:
            shown = f"[bold red]suspended[/] since {_time(state.suspended_at)}: {state.suspended_reason}"
        elif state.failing:
            shown = f"[yellow]failing[/] since {_time(state.failing_since)} ({state.failures} failed attempts)"
        else:
            shown = "[green]active[/]"
        table.add_row(
            view.name, view.url, shown, str(view.queued), str(view.dead_letters), str(view.archived), state.last_error
        )
    out.print(table)


@webhooks_app.command("test")
def webhooks_test(
    ctx: typer.Context,
    name: NameArgument,
    wait: Annotated[float, typer.Option("--wait", min=0, help="Seconds to wait for the result.")] = 30.0,
    json_output: JsonOption = False,
) -> None:
    """Send the endpoint a signed test delivery (type WebhookTest) through its queue and report the answer.

    Exits 1 when the endpoint did not accept it (or no result came within --wait).
    """
    admin = _admin(ctx)
    try:
        webhook_id = admin.send_test(name)
        deadline = time.monotonic() + wait
        result = admin.test_result(name, webhook_id)
        while result is None and time.monotonic() < deadline:
            time.sleep(0.5)
            result = admin.test_result(name, webhook_id)
    except _errors() as exc:
        fail(f"could not test the endpoint: {exc}")
    except Exception as exc:
        _usage_error(exc)
        raise
    delivered = result == "delivered"
    outcome: dict[str, Any] = {"endpoint": name, "webhook_id": webhook_id, "result": result or "pending"}
    if json_output:
        emit_json({**outcome, "delivered": delivered})
    elif result is None:
        console().print(f"{name}: test {webhook_id} queued; no result within {wait:g} s (is the sender running?)")
    else:
        console().print(f"{name}: test {webhook_id} {'delivered' if delivered else 'not delivered: ' + result}")
    if not delivered:
        raise typer.Exit(EXIT_FAILED)


@webhooks_app.command("resume")
def webhooks_resume(ctx: typer.Context, name: NameArgument, json_output: JsonOption = False) -> None:
    """Mark a suspended endpoint active again (then `mailwright webhooks replay NAME` sends what was kept)."""
    admin = _admin(ctx)
    try:
        state = admin.resume(name, actor=f"{getpass.getuser()}@{socket.gethostname()}")
    except _errors() as exc:
        fail(f"could not resume the endpoint: {exc}")
    except Exception as exc:
        _usage_error(exc)
        raise
    if json_output:
        emit_json({"endpoint": name, "state": state.to_json()})
    else:
        console().print(f"{name}: active; `mailwright webhooks replay {name}` sends its archived deliveries")


@webhooks_app.command("replay")
def webhooks_replay(ctx: typer.Context, name: NameArgument, json_output: JsonOption = False) -> None:
    """Send the endpoint's archived deliveries and its DLQ's messages back to its queue (same webhook-ids)."""
    admin = _admin(ctx)
    try:
        result = admin.replay(name)
    except _errors() as exc:
        fail(f"could not replay: {exc}")
    except Exception as exc:
        _usage_error(exc)
        raise
    if json_output:
        emit_json({"endpoint": name, **result.__dict__})
    else:
        console().print(
            f"{name}: {result.archived} archived and {result.dead_letters} dead-lettered deliveries queued again"
            + (f", {result.failed} failed" if result.failed else "")
        )
    if result.failed:
        raise typer.Exit(EXIT_FAILED)


@webhooks_app.command("rotate")
def webhooks_rotate(
    ctx: typer.Context,
    name: NameArgument,
    finish: Annotated[bool, typer.Option("--finish", help="Drop the previous secret (end the overlap).")] = False,
    json_output: JsonOption = False,
) -> None:
    """Rotate the endpoint's signing secret: a new one signs beside the current one until `--finish`.

    Give the receiver the new secret (printed here) between the two steps; senders pick up a change within
    five minutes.
    """
    admin = _admin(ctx)
    try:
        secrets = admin.rotate(name, finish=finish)
    except _errors() as exc:
        fail(f"could not rotate the secret: {exc}")
    except Exception as exc:
        _usage_error(exc)
        raise
    if json_output:
        emit_json({"endpoint": name, "secret": secrets[0], "signing_with": len(secrets)})
    elif finish:
        console().print(f"{name}: the previous secret is dropped; deliveries are signed with {secrets[0]} only")
    else:
        console().print(
            f"{name}: new secret {secrets[0]}; deliveries carry both signatures until "
            f"`mailwright webhooks rotate {name} --finish`"
        )


def _time(epoch: float | None) -> str:
    from mailwright.outcome_events import iso_time

    return iso_time(epoch)[:19] + "Z" if epoch else "?"
