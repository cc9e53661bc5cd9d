"""Where the mailwright project is: the directory holding `cdk.json` (the settings) and `templates/`.

The CLI can be installed as a package (`pip install 'mailwright[cli]'`), so it
cannot assume it runs from the repository. Every command that needs the
project (templates, the local stack, the stack name in cdk.json) finds it
here, in this order:

1. `--project-dir DIR` (the CLI's global option), else `$MAILWRIGHT_PROJECT_DIR`;
2. the working directory, when it holds `cdk.json` and `templates/`;
3. the source checkout these tools run from (an editable install or a clone).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.config import MailwrightConfig

PROJECT_DIR_ENV = "MAILWRIGHT_PROJECT_DIR"
# The directory above `mailwright_tools/`: the repository in a clone or an editable install,
# site-packages in a regular install (which holds no cdk.json, so it is never taken for a project).
SOURCE_CHECKOUT = Path(__file__).resolve().parents[1]
NOT_FOUND = (
    f"no mailwright project found (a directory with cdk.json and templates/): "
    f"pass --project-dir DIR or set {PROJECT_DIR_ENV}"
)


class ProjectNotFoundError(Exception):
    """No directory could be taken for the mailwright project."""


@dataclass(frozen=True)
class Project:
    """A mailwright project directory and the files the tools read from it."""

    root: Path

    @property
    def cdk_json(self) -> Path:
        """The CDK app's settings file; its `context.mailwright` is the deployment's configuration."""
        return self.root / "cdk.json"

    @property
    def templates(self) -> Path:
        """The email templates, one directory per template."""
        return self.root / "templates"

    def context(self) -> dict[str, Any]:
        """cdk.json's `context.mailwright` object, raw; empty when the file or the key is missing or malformed."""
        try:
            context = json.loads(self.cdk_json.read_text(encoding="utf-8"))["context"]["mailwright"]
        except (OSError, ValueError, KeyError, TypeError):
            return {}
        return context if isinstance(context, dict) else {}

    def config(self) -> MailwrightConfig:
        """The deployment settings parsed as the CDK app parses them (`infra.config.ConfigError` when invalid)."""
        from infra.config import load_config

        return load_config(self.cdk_json)

    def stack_name(self) -> str:
        """The stack name cdk.json gives (`mailwright.stack_name`), else Mailwright."""
        return str(self.context().get("stack_name") or "Mailwright")


def is_project(path: Path) -> bool:
    """Whether `path` looks like a mailwright project: it holds cdk.json and a templates/ directory."""
    return (path / "cdk.json").is_file() and (path / "templates").is_dir()


def find_project(
    explicit: Path | str | None = None, *, environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Project:
    """The project `explicit` or $MAILWRIGHT_PROJECT_DIR names, else the working directory, else the source checkout.

    Raises ProjectNotFoundError when a named directory is no project, or when none was named and none is found.
    """
    env = os.environ if environ is None else environ
    named = explicit or env.get(PROJECT_DIR_ENV)
    if named:
        root = Path(named).expanduser().resolve()
        if not is_project(root):
            raise ProjectNotFoundError(
                f"{root} is not a mailwright project (it needs cdk.json and templates/); "
                f"check --project-dir or {PROJECT_DIR_ENV}"
            )
        return Project(root)
    for candidate in ((cwd or Path.cwd()).resolve(), SOURCE_CHECKOUT):
        if is_project(candidate):
            return Project(candidate)
    raise ProjectNotFoundError(NOT_FOUND)


def source_project() -> Project:
    """The checkout these tools run from, for tests and benchmarks that always run in one."""
    return Project(SOURCE_CHECKOUT)
