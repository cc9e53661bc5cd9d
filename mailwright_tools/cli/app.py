"""The `mailwright` command: the Typer apps and the options every command shares.

Modules under `mailwright_tools.cli` add their commands to these apps. They
import only typer at module level; boto3, moto, rich and the runtime are
imported inside the commands, so `mailwright --help` starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from mailwright_tools.cli.errors import GuardedGroup
from mailwright_tools.project import PROJECT_DIR_ENV
from mailwright_tools.state import STATE_DIR_ENV, StateDir

app = typer.Typer(
    name="mailwright",
    cls=GuardedGroup,  # an error no command handled becomes one line and an exit code
    help="Operate mailwright: the local stack, templates, suppressions, dead-letter queues and requests.\n\n"
    "Commands target the local stack when one is running (see `mailwright local up`), "
    "else the deployed stack found through its CloudFormation outputs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
local_app = typer.Typer(
    help="Run mailwright on this machine: moto on loopback, the functions in-process.", no_args_is_help=True
)
templates_app = typer.Typer(help="Check, preview and upload email templates.", no_args_is_help=True)
suppression_app = typer.Typer(help="The suppression list: addresses that must not be mailed.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead-letter queues: list what waits there, and redrive it.", no_args_is_help=True)
feedback_app = typer.Typer(help="SES feedback events.", no_args_is_help=True)
app.add_typer(local_app, name="local")
app.add_typer(templates_app, name="templates")
app.add_typer(suppression_app, name="suppression")
app.add_typer(dlq_app, name="dlq")
app.add_typer(feedback_app, name="feedback")

# The one option spelled the same on every reporting command.
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]


@dataclass(frozen=True)
class CliContext:
    """What the global options say."""

    state: StateDir
    stack_name: str | None
    region: str | None
    # None: $MAILWRIGHT_PROJECT_DIR, the working directory or the source checkout (mailwright_tools.project).
    project_dir: Path | None = None


def package_version() -> str:
    """The installed mailwright distribution's version (the runtime package's when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mailwright")
    except PackageNotFoundError:
        from mailwright import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mailwright {package_version()}")
        raise typer.Exit


@app.callback()
def _global_options(
    ctx: typer.Context,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", envvar=STATE_DIR_ENV, help="Where local state lives (default: ./.mailwright)."),
    ] = None,
    stack_name: Annotated[
        str | None,
        typer.Option(
            "--stack-name", help="Target this deployed stack (default: cdk.json's, when no local stack runs)."
        ),
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="AWS region of the deployed stack.")] = None,
    project_dir: Annotated[
        Path | None,
        typer.Option(
            "--project-dir",
            help=f"The mailwright project (cdk.json, templates/); default: ${PROJECT_DIR_ENV}, "
            "else the working directory if it is one, else the checkout the CLI runs from.",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    ctx.obj = CliContext(
        state=StateDir.resolve(state_dir), stack_name=stack_name, region=region, project_dir=project_dir
    )


def cli_context(ctx: typer.Context) -> CliContext:
    """The global options of this invocation."""
    found = ctx.find_object(CliContext)
    return found if found is not None else CliContext(StateDir.resolve(), None, None)
