"""The `mailwright` command line (typer + rich): `mailwright --help` lists the commands."""

from __future__ import annotations

from mailwright_tools.cli import (  # noqa: F401 - they register their commands
    lanes,
    local,
    local_ses,
    migrate,
    operations,
    preferences,
    producers,
    providers,
    schedules,
    studio,
    templates,
    webhooks,
)
from mailwright_tools.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the `mailwright` console script."""
    # The project (cdk.json, templates/) is found per command: see mailwright_tools.project.
    app()
