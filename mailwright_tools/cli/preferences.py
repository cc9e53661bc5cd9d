"""`mailwright preferences get|set|import`: a user's consent, locale, time zone and quiet hours, audited."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailwright_tools.cli.app import JsonOption, app
from mailwright_tools.cli.operations import ActorOption, _actor
from mailwright_tools.cli.output import EXIT_USAGE, console, emit_json, fail, resolve

if TYPE_CHECKING:
    from mailwright.ports import PreferenceAudit
    from mailwright.preference_changes import PreferenceAdmin, PreferenceState

preferences_app = typer.Typer(
    help="Users' preferences: opt-outs, locale, time zone and quiet hours (changes are audited).",
    no_args_is_help=True,
)
app.add_typer(preferences_app, name="preferences")

UserIdArgument = Annotated[str, typer.Argument(help="The user id (as producers send it in `user_id`).")]


def _aws_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    from mailwright.errors import TransientError

    return (ClientError, BotoCoreError, TransientError)


def _admin(ctx: typer.Context) -> PreferenceAdmin:
    from mailwright.preference_client import build_preference_admin

    target = resolve(ctx)
    return build_preference_admin(
        preferences_table=target.tables["preferences"],
        # Without the keyring (a stack deployed before it existed) a producer's own user ids still work.
        address_key_secret=target.address_key_secret or None,
        suppression_table=target.tables.get("suppression"),
        session=target.session(),
    )


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch is not None else None


def state_json(state: PreferenceState, history: list[PreferenceAudit] | None = None) -> dict[str, Any]:
    """A user's preferences as `--json` prints them."""
    from mailwright.constants import CATEGORIES

    preferences = state.preferences
    data: dict[str, Any] = {
        "user_id": preferences.user_id,
        "stored": state.stored,
        "unsubscribed_all": preferences.unsubscribed_all,
        "opted_out": sorted(preferences.opted_out),
        # The choices the user made themselves: lifting them needs --override-user-choice and a --note.
        "user_opted_out": sorted(state.own_opt_outs),
        "user_unsubscribed_all": state.unsubscribed_by_user,
        "locale": preferences.locale,
        "timezone": preferences.timezone,
        "quiet_hours": str(preferences.quiet_hours) if preferences.quiet_hours else None,
        "receives": {category: preferences.allows(category) for category in CATEGORIES},
        "updated_at": _iso(state.updated_at),
        "source": state.source or None,
    }
    if history is not None:
        data["history"] = [_audit_json(record) for record in history]
    return data


def _audit_json(record: PreferenceAudit) -> dict[str, Any]:
    return {
        "at": _iso(record.at),
        "actor": record.actor,
        "source": record.source,
        "changes": list(record.changes),
        "note": record.note,
        "overrode_user_choice": record.overrode_user_choice,
    }


@preferences_app.command("get")
def preferences_get(ctx: typer.Context, user_id: UserIdArgument, json_output: JsonOption = False) -> None:
    """USER_ID's preferences, who made each choice, and the audited changes."""
    from mailwright.preference_changes import PreferenceError, check_user_id

    try:
        check_user_id(user_id)
    except PreferenceError as exc:
        fail(str(exc), EXIT_USAGE)
    admin = _admin(ctx)
    try:
        state = admin.get(user_id)
        history = admin.history(user_id)
    except PreferenceError as exc:
        fail(str(exc), EXIT_USAGE)
    except _aws_errors() as exc:
        fail(f"could not read the preferences: {exc}")
    data = state_json(state, history)
    if json_output:
        emit_json(data)
        return
    _print_state(data)


def _print_state(data: dict[str, Any]) -> None:
    from rich.markup import escape

    out = console()
    out.print(f"[bold]{escape(data['user_id'])}[/]" + ("" if data["stored"] else " [dim](nothing stored)[/]"))
    for category, receives in data["receives"].items():
        by = " (their own choice)" if category in data["user_opted_out"] else ""
        out.print(f"  {category}: " + ("[green]receives[/]" if receives else f"[red]opted out[/]{by}"))
    if data["unsubscribed_all"]:
        by = "they unsubscribed themselves" if data["user_unsubscribed_all"] else "by the producer"
        out.print(f"  [red]unsubscribed from all optional mail[/] ({by})")
    for name in ("locale", "timezone", "quiet_hours"):
        out.print(f"  {name}: {escape(str(data[name] or '-'))}")
    for record in data.get("history", []):
        override = " [yellow](overrode the user's choice)[/]" if record["overrode_user_choice"] else ""
        out.print(
            f"  [dim]{record['at']}[/] {escape(', '.join(record['changes']))} by {escape(record['actor'])} "
            f"via {record['source']}{override}: {escape(record['note'])}"
        )


@preferences_app.command("set")
def preferences_set(
    ctx: typer.Context,
    user_id: UserIdArgument,
    locale: Annotated[str | None, typer.Option("--locale", help="e.g. fr-CA; none clears it.")] = None,
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="IANA time zone, e.g. Europe/Paris; none clears it.")
    ] = None,
    quiet_hours: Annotated[
        str | None,
        typer.Option("--quiet-hours", help="HH:MM-HH:MM in the user's time zone, e.g. 21:00-08:00; none clears it."),
    ] = None,
    opt_out: Annotated[list[str] | None, typer.Option("--opt-out", help="Stop CATEGORY; repeatable.")] = None,
    opt_in: Annotated[list[str] | None, typer.Option("--opt-in", help="Send CATEGORY again; repeatable.")] = None,
    unsubscribe_all: Annotated[bool, typer.Option("--unsubscribe-all", help="Stop every optional category.")] = False,
    resubscribe: Annotated[bool, typer.Option("--resubscribe", help="Lift an unsubscribe from all.")] = False,
    override_user_choice: Annotated[
        bool,
        typer.Option(
            "--override-user-choice",
            help="Allow lifting an opt-out or unsubscribe the user made themselves (needs --note; audited as such).",
        ),
    ] = False,
    note: Annotated[str, typer.Option("--note", help="Why (kept in the audit trail).")] = "",
    actor: ActorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Change USER_ID's preferences (audited). A choice the user made themselves needs --override-user-choice."""
    from mailwright.preference_changes import (
        SOURCE_CLI,
        PreferenceChange,
        PreferenceError,
        UserChoiceError,
        check_user_id,
    )

    change = PreferenceChange(
        locale=locale,
        timezone=timezone,
        quiet_hours=quiet_hours,
        opt_out=frozenset(c.strip().lower() for c in opt_out or ()),
        opt_in=frozenset(c.strip().lower() for c in opt_in or ()),
        unsubscribe_all=unsubscribe_all,
        resubscribe=resubscribe,
    )
    # Bad input is exit 2 whether or not a stack runs: check it before looking for one.
    if change.empty:
        fail(
            "nothing to change: give --locale, --timezone, --quiet-hours, --opt-out, --opt-in, "
            "--unsubscribe-all or --resubscribe",
            EXIT_USAGE,
        )
    try:
        check_user_id(user_id)
        change.validated()
    except PreferenceError as exc:
        fail(str(exc), EXIT_USAGE)
    admin = _admin(ctx)
    try:
        result = admin.change(
            user_id,
            change,
            actor=_actor(actor),
            source=SOURCE_CLI,
            note=note,
            override_user_choice=override_user_choice,
        )
    except UserChoiceError as exc:
        fail(f"{exc}; nothing was changed", EXIT_USAGE)
    except PreferenceError as exc:
        fail(str(exc), EXIT_USAGE)
    except _aws_errors() as exc:
        fail(f"could not write the preferences: {exc}")
    if json_output:
        emit_json(
            {
                "changed": result.changed,
                "changes": list(result.changes),
                "overrode_user_choice": result.overrode_user_choice,
                **state_json(result.state),
            }
        )
        return
    if not result.changed:
        console().print(f"{user_id}: already so, nothing changed")
        return
    override = " (overrode the user's own choice)" if result.overrode_user_choice else ""
    console().print(f"{user_id}: {', '.join(result.changes)}{override}")


@preferences_app.command("import")
def preferences_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV: user_id and opt_out (categories separated by ;, or all).")],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Apply the valid rows even when some are invalid.")
    ] = False,
    note: Annotated[str, typer.Option("--note", help="Why (kept in each row's audit record).")] = "",
    actor: ActorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Opt users out in bulk from a CSV file: every row is checked first; none applied if any is invalid."""
    from mailwright_tools.preference_import import ImportFileError, apply_opt_outs, read_opt_outs

    try:
        rows, errors = read_opt_outs(file)
    except ImportFileError as exc:
        fail(str(exc), EXIT_USAGE)
    if errors and not skip_invalid:
        shown = "; ".join(str(error) for error in errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        fail(f"{len(errors)} invalid row(s), nothing was applied (--skip-invalid applies the others): {shown}{more}",
             EXIT_USAGE)  # fmt: skip
    from mailwright.preference_changes import PreferenceError

    admin = _admin(ctx)
    try:
        report = apply_opt_outs(admin, rows, actor=_actor(actor), note=note or f"import {file.name}")
    except PreferenceError as exc:
        fail(f"{exc} (rows before it were applied)", EXIT_USAGE)
    except _aws_errors() as exc:
        fail(f"could not write the preferences (rows before the failure were applied; importing again is safe): {exc}")
    report.skipped = errors
    if json_output:
        emit_json(
            {
                "rows": len(rows) + len(errors),
                "changed": report.changed,
                "unchanged": report.unchanged,
                "skipped": [{"line": error.line, "error": error.message} for error in errors],
            }
        )
        return
    out = console()
    out.print(f"{report.changed} changed, {report.unchanged} already so, {len(errors)} skipped as invalid")
    from rich.markup import escape

    for error in errors:
        out.print(f"  [yellow]skipped[/] {escape(str(error))}")
