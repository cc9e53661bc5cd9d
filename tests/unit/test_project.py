"""Where the tools find the project (cdk.json, templates/): --project-dir, $MAILWRIGHT_PROJECT_DIR, cwd, checkout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailwright_tools import project as project_module
from mailwright_tools.cli import app
from mailwright_tools.cli.app import package_version
from mailwright_tools.project import PROJECT_DIR_ENV, SOURCE_CHECKOUT, Project, ProjectNotFoundError, find_project
from mailwright_tools.state import StateDir
from mailwright_tools.target import resolve_target
from tests.unit.conftest import REPO


def make_project(root: Path, *, stack_name: str | None = None) -> Path:
    """A minimal project: cdk.json (with a stack name, maybe) and one template, with its layouts, from the checkout."""
    root.mkdir(parents=True, exist_ok=True)
    context = json.loads((REPO / "cdk.json").read_text(encoding="utf-8"))
    if stack_name is not None:
        context["context"]["mailwright"]["stack_name"] = stack_name
    else:
        context["context"]["mailwright"].pop("stack_name", None)
    (root / "cdk.json").write_text(json.dumps(context), encoding="utf-8")
    for name in ("welcome_email", "_layouts", "_partials"):  # the template, and the layout it extends
        shutil.copytree(REPO / "templates" / name, root / "templates" / name)
    return root


@pytest.fixture
def no_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """As in a regular install: the directory above mailwright_tools/ is no project; the cwd is an empty one."""
    monkeypatch.setattr(project_module, "SOURCE_CHECKOUT", tmp_path / "site-packages")
    monkeypatch.delenv(PROJECT_DIR_ENV, raising=False)
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    monkeypatch.chdir(empty)
    return empty


def test_the_named_directory_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    named = make_project(tmp_path / "named")
    from_env = make_project(tmp_path / "from-env")
    monkeypatch.setenv(PROJECT_DIR_ENV, str(from_env))
    monkeypatch.chdir(REPO)

    assert find_project(named) == Project(named)
    assert find_project() == Project(from_env)


def test_the_working_directory_comes_before_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROJECT_DIR_ENV, raising=False)
    here = make_project(tmp_path / "here")
    monkeypatch.chdir(here)

    assert find_project().root == here


def test_the_source_checkout_is_the_last_resort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROJECT_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)

    found = find_project()

    assert found.root == SOURCE_CHECKOUT == REPO
    assert found.templates == REPO / "templates"


@pytest.mark.usefixtures("no_checkout")
def test_no_project_anywhere_says_how_to_name_one() -> None:
    with pytest.raises(ProjectNotFoundError, match=f"pass --project-dir DIR or set {PROJECT_DIR_ENV}"):
        find_project()


@pytest.mark.parametrize("missing", ["cdk.json", "templates"])
def test_a_named_directory_that_is_no_project_is_refused(tmp_path: Path, missing: str) -> None:
    root = make_project(tmp_path / "half")
    target = root / missing
    shutil.rmtree(target) if target.is_dir() else target.unlink()

    # Not silently replaced by the working directory or the checkout
    with pytest.raises(ProjectNotFoundError, match="is not a mailwright project"):
        find_project(root)


def test_the_stack_name_comes_from_the_projects_cdk_json(tmp_path: Path) -> None:
    assert Project(make_project(tmp_path / "named", stack_name="MailOps")).stack_name() == "MailOps"
    assert Project(make_project(tmp_path / "default")).stack_name() == "Mailwright"
    assert Project(tmp_path / "nothing").context() == {}


def test_without_a_local_stack_or_a_stack_name_the_target_needs_the_project(no_checkout: Path) -> None:
    with pytest.raises(ProjectNotFoundError):
        resolve_target(StateDir(no_checkout / ".mailwright"), region="us-east-1")


# -- through the CLI -------------------------------------------------------------


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_version_and_short_help() -> None:
    code, out, _ = invoke("--version")
    assert (code, out) == (0, f"mailwright {package_version()}\n")
    assert package_version() == "0.1.0"

    for args in (["-h"], ["local", "-h"], ["templates", "validate", "-h"]):
        code, out, _ = invoke(*args)
        assert code == 0
        assert out.startswith("Usage: ")


@pytest.mark.usefixtures("no_checkout")
@pytest.mark.parametrize(
    "command",
    [
        ["templates", "validate"],
        ["templates", "preview", "welcome_email"],
        ["templates", "upload"],
        ["local", "up"],
        ["local", "demo", "--count", "1"],
        ["status", "0123456789ab"],
        ["lanes", "status"],
    ],
)
def test_commands_that_need_the_project_exit_2_when_there_is_none(command: list[str]) -> None:
    code, out, err = invoke(*command)

    assert code == 2, (out, err)
    (line,) = err.strip().splitlines()
    assert "--project-dir" in line
    assert PROJECT_DIR_ENV in line


def test_commands_find_the_project_they_are_told_about(no_checkout: Path, tmp_path: Path) -> None:
    named = make_project(tmp_path / "named")

    code, out, err = invoke("--project-dir", str(named), "templates", "validate", "--json")

    assert code == 0, err
    assert {t["template"] for t in json.loads(out)["templates"]} == {"welcome_email"}


def test_a_templates_dir_alone_needs_no_project(no_checkout: Path) -> None:
    code, out, err = invoke("templates", "validate", "--templates-dir", str(REPO / "templates"), "--json")

    assert code == 0, err
    assert json.loads(out)["ok"] is True


def test_a_named_directory_that_is_no_project_fails_even_where_the_project_is_optional(no_checkout: Path) -> None:
    code, _, err = invoke("--project-dir", str(no_checkout), "templates", "validate", "--templates-dir", "x")

    assert code == 2
    assert "is not a mailwright project" in err
