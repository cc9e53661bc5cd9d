"""The `mailwright` command line (typer + rich): `mailwright --help` lists the commands."""

from __future__ import annotations

import sys
from pathlib import Path

from mailwright_tools.cli import lanes, local, migrate, operations, templates  # noqa: F401 - they register their commands
from mailwright_tools.cli.app import app

__all__ = ["app", "main"]

REPO_INFRA = Path(__file__).resolve().parents[2] / "infra"


def main() -> None:
    """Entry point of the `mailwright` console script."""
    # The CLI works from a checkout: it reads cdk.json, templates/ and infra.config (the
    # settings the CDK app reads), which are not installed packages.
    if REPO_INFRA.is_dir() and str(REPO_INFRA.parent) not in sys.path:
        sys.path.append(str(REPO_INFRA.parent))
    app()
