"""How commands speak: rich text for people, one JSON object for scripts, one-line errors, meaningful exit codes."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from mailwright_tools.project import Project
    from mailwright_tools.target import Target

EXIT_FAILED = 1  # the command ran and the answer is "no" (invalid templates, unaccounted requests, not found...)
EXIT_USAGE = 2  # bad input (typer uses 2 for bad options too)
EXIT_NO_TARGET = 3  # no stack to talk to


def console() -> Console:
    """A console on stdout (created per call, so test runners that swap stdout are honoured)."""
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, soft_wrap=True)


def err_console() -> Console:
    """A console on stderr."""
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def emit_json(data: Any) -> None:
    """Print one JSON object on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print `error: message` on stderr and exit with `code`."""
    from rich.markup import escape

    err_console().print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def resolve(ctx: typer.Context) -> Target:
    """The stack this command works on, or exit 3 saying why there is none."""
    from mailwright_tools.cli.app import cli_context
    from mailwright_tools.project import ProjectNotFoundError
    from mailwright_tools.target import TargetError, resolve_target

    options = cli_context(ctx)
    try:
        return resolve_target(
            options.state, stack_name=options.stack_name, region=options.region, project_dir=options.project_dir
        )
    except TargetError as exc:
        fail(str(exc), EXIT_NO_TARGET)
    except ProjectNotFoundError as exc:
        # No local stack runs and no --stack-name: the stack name comes from the project's cdk.json.
        fail(f"{exc}, or pass --stack-name NAME", EXIT_USAGE)


def project(ctx: typer.Context) -> Project:
    """The mailwright project this command works on, or exit 2 saying how to name it."""
    from mailwright_tools.cli.app import cli_context
    from mailwright_tools.project import ProjectNotFoundError, find_project

    try:
        return find_project(cli_context(ctx).project_dir)
    except ProjectNotFoundError as exc:
        fail(str(exc), EXIT_USAGE)


def optional_project(ctx: typer.Context) -> Project | None:
    """The project when one is named or found, else None (for commands that only use it when at hand).

    A directory named by --project-dir or $MAILWRIGHT_PROJECT_DIR that is no project still exits 2.
    """
    from mailwright_tools.cli.app import cli_context
    from mailwright_tools.project import PROJECT_DIR_ENV, ProjectNotFoundError, find_project

    named = cli_context(ctx).project_dir
    try:
        return find_project(named)
    except ProjectNotFoundError as exc:
        if named is not None or os.environ.get(PROJECT_DIR_ENV):
            fail(str(exc), EXIT_USAGE)
        return None
