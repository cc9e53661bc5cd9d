"""`mailwright migrate`: one-off changes to a stack's stored data after an upgrade or a key rotation."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from mailwright_tools.cli.app import JsonOption, app
from mailwright_tools.cli.output import EXIT_FAILED, console, emit_json, fail, resolve

migrate_app = typer.Typer(help="Change a stack's stored data after an upgrade or a key rotation.", no_args_is_help=True)
app.add_typer(migrate_app, name="migrate")


@migrate_app.command("address-hashes")
def address_hashes(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would move; change nothing.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Run even though the keyring changed less than a few minutes ago.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Re-key every stored address hash to the keyring's current version, then stop reading older ones.

    Run once after upgrading from a release without keyed address hashes, and after adding a key
    version to the address keyring. Idempotent: a second run moves nothing.
    """
    import getpass
    import socket

    from botocore.exceptions import BotoCoreError, ClientError

    from mailwright.errors import TransientError
    from mailwright_tools.migrate import AddressHashMigration, MigrationError

    target = resolve(ctx)
    try:
        migration = AddressHashMigration(
            target, actor=f"cli:{getpass.getuser()}@{socket.gethostname()}", dry_run=dry_run, force=force
        )
        migration.check_settled(time.time())
        report = migration.run()
    except MigrationError as exc:
        fail(str(exc), EXIT_FAILED)
    except (TransientError, ClientError, BotoCoreError) as exc:
        fail(f"{target.describe()}: {exc}", EXIT_FAILED)
    if json_output:
        emit_json(report.to_json())
        return
    out = console()
    verb = "would move" if dry_run else "moved"
    out.print(f"Address hashes of {target.describe()}: key version {report.current_version} is current")
    kinds = sorted(set(report.moved) | set(report.merged) | set(report.already_current))
    for kind in kinds:
        out.print(
            f"  {kind}: {verb} {report.moved[kind]}, merged {report.merged[kind]}, "
            f"already current {report.already_current[kind]}"
        )
    if not kinds:
        out.print("  nothing stored yet")
    if dry_run:
        out.print("Dry run: nothing changed.")
    else:
        out.print(
            f"Lookups read key versions {report.readable_from_after} and newer from now on "
            f"(was {report.readable_from_before}); functions notice within five minutes."
        )
