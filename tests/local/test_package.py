"""The package as a user installs it: the wheel, in venvs of its own, away from the checkout.

A producer service installs the SDK alone (`pip install mailwright`: boto3 and pydantic); the CLI
comes with the `cli` extra and works from any directory when told where the project is.
The venvs are cached under .cache/tests/, keyed by the declared dependencies and the pins; the
wheel is rebuilt whenever the packaged sources change and reinstalled into them each session.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailwright.request import EmailRequest
from tests.build_cache import REPO, cached_dir, digest, interpreter_tag, locked, pins, pip, run, tree_files

pytestmark = pytest.mark.slow

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = PYPROJECT["project"]["version"]
# What the wheel is built from (pyproject.toml's package-dir), and the README it embeds.
PACKAGED = ["pyproject.toml", "README.md", "functions/mailwright", "mailwright_tools", "infra"]
# Packages a producer must not have to install to publish requests.
NOT_FOR_PRODUCERS = ["jinja2", "aws-lambda-powertools", "typer", "rich", "moto", "aws-cdk-lib"]

REQUEST = {
    "recipient_email": "Jane@Example.com",
    "template_id": "order_confirmation",
    "template_data": {"order_id": "XYZ789", "total_amount": "$49.99"},
}


@pytest.fixture(scope="module")
def wheel() -> Path:
    """The wheel `pip wheel` builds from a copy of the packaged sources (a copy: no build/ left in the checkout)."""
    sources = tree_files(REPO, PACKAGED)

    def build(target: Path) -> None:
        source = target / "src"
        for file in sources:
            (source / file.relative_to(REPO)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, source / file.relative_to(REPO))
        pip("wheel", "--no-deps", "--wheel-dir", str(target / "dist"), str(source))
        shutil.rmtree(source)

    key = digest(*(str(file.relative_to(REPO)) for file in sources), *sources)
    (built,) = (cached_dir(f"wheel-{key}", build) / "dist").glob("mailwright-*.whl")
    return built


def _venv(name: str, wheel: Path, requirement: str) -> Iterator[Path]:
    """A venv with `requirement` (the wheel, maybe with extras) installed under the repository's pins.

    Built once per set of declared dependencies and pins; the current wheel is reinstalled (no
    dependencies, no index) each session, so the venv always runs this checkout's code.
    """
    project = PYPROJECT["project"]
    constraints = "".join(f"{n}=={v}\n" for n, v in sorted(pins(REPO / "requirements-local.txt").items()))
    declared = json.dumps([project["dependencies"], project.get("optional-dependencies", {})], sort_keys=True)
    key = digest(interpreter_tag(), "without-pip, no-compile", requirement, declared, constraints)

    def build(target: Path) -> None:
        # No pip of its own (ensurepip is most of a venv's creation time): this interpreter's pip installs
        # into it (`pip --python`), resolving and installing exactly as the venv's own pip would. No bytecode
        # compiled ahead (CPU spent on thousands of moto and botocore modules never imported here): the
        # tests compile what they import.
        run([sys.executable, "-m", "venv", "--without-pip", str(target)])
        (target / "constraints.txt").write_text(constraints, encoding="utf-8")
        spec = requirement.replace("WHEEL", str(wheel))
        venv_pip("install", "--no-compile", "--constraint", str(target / "constraints.txt"), spec, venv=target)

    venv = cached_dir(f"venv-{name}-{key}", build)
    with locked(f"venv-{name}-{key}"):
        venv_pip("install", "--no-index", "--no-deps", "--no-compile", "--force-reinstall", str(wheel), venv=venv)
        yield venv


def venv_pip(*args: str, venv: Path) -> str:
    """This interpreter's pip, acting on `venv` (which has no pip of its own)."""
    return pip("--python", str(venv / "bin" / "python"), *args)


@pytest.fixture(scope="module")
def sdk_venv(wheel: Path) -> Iterator[Path]:
    """`pip install mailwright`: the SDK and what the package declares, nothing else."""
    yield from _venv("sdk", wheel, "WHEEL")


@pytest.fixture(scope="module")
def cli_venv(wheel: Path) -> Iterator[Path]:
    """`pip install 'mailwright[cli]'`."""
    yield from _venv("cli", wheel, "WHEEL[cli]")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without what would point the installed package back at the checkout."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "MAILWRIGHT_PROJECT_DIR", "MAILWRIGHT_STATE_DIR", "VIRTUAL_ENV")
    }
    return {**env, **extra}


def installed(venv: Path) -> set[str]:
    """The distributions installed in a venv, by normalised name."""
    python = str(venv / "bin" / "python")
    listing = run(
        [sys.executable, "-m", "pip", "--python", python, "list", "--format=json", "--disable-pip-version-check"]
    )
    return {item["name"].lower().replace("_", "-") for item in json.loads(listing)}


# -- the producer SDK ------------------------------------------------------------

SDK_PROBE = """
import json, sys
import boto3
from botocore.stub import Stubber
from mailwright.sdk import InvalidRequestError, Publisher, send

request = json.loads(sys.argv[1])
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/mailwright-standard"
sqs = boto3.client("sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
published = []
with Stubber(sqs) as stub:
    stub.add_response("send_message_batch", {"Successful": [{"Id": "0", "MessageId": "m-1",
                      "MD5OfMessageBody": "0" * 32}], "Failed": []})
    request_id = send(request, queue_url=queue_url, sqs_client=sqs)
    stub.assert_no_pending_responses()
try:
    Publisher(queue_url=queue_url, sqs_client=sqs).send_batch([request, {**request, "template_dat": {}}])
    refused = None
except InvalidRequestError as exc:
    refused = str(exc)
heavy = sorted(name for name in ("jinja2", "aws_lambda_powertools", "typer", "rich", "moto") if name in sys.modules)
print(json.dumps({"request_id": request_id, "refused": refused, "heavy": heavy}))
"""


def test_the_sdk_installs_with_boto3_and_pydantic_alone(sdk_venv: Path) -> None:
    # Given `pip install mailwright` into a fresh venv
    names = installed(sdk_venv)

    # Then it brought boto3 and pydantic and none of the worker's, the CLI's or the CDK's dependencies
    assert {"mailwright", "boto3", "pydantic"} <= names
    assert not names & set(NOT_FOR_PRODUCERS)


def test_the_sdk_validates_and_publishes_from_its_own_venv(sdk_venv: Path, tmp_path: Path) -> None:
    # When a producer publishes a request, and then a batch with an invalid one, from another directory
    output = run(
        [str(sdk_venv / "bin" / "python"), "-c", SDK_PROBE, json.dumps(REQUEST)], cwd=tmp_path, env=clean_env()
    )
    result: dict[str, Any] = json.loads(output)

    # Then the request went out under the id the worker will log
    assert result["request_id"] == EmailRequest.model_validate(REQUEST).request_id
    # And the invalid request was refused by index and field, before anything was published
    assert result["refused"] is not None
    assert "request 1: template_dat" in result["refused"]
    # And importing the SDK loaded none of the heavy packages
    assert result["heavy"] == []


# -- the CLI (mailwright[cli]) ----------------------------------------------------


def mailwright(venv: Path, *args: str, cwd: Path, **env: str) -> tuple[int, str, str]:
    """Run the venv's `mailwright` console script; (exit code, stdout, stderr)."""
    import subprocess

    result = subprocess.run(  # noqa: S603 - the script pip installed
        [str(venv / "bin" / "mailwright"), *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    return result.returncode, result.stdout, result.stderr


def test_the_cli_reports_its_version_and_help(cli_venv: Path, tmp_path: Path) -> None:
    code, out, _ = mailwright(cli_venv, "--version", cwd=tmp_path)
    assert (code, out.strip()) == (0, f"mailwright {VERSION}")

    code, out, _ = mailwright(cli_venv, "-h", cwd=tmp_path)
    assert code == 0
    assert "Usage: mailwright" in out
    assert "--project-dir" in out

    code, out, _ = mailwright(cli_venv, "templates", "-h", cwd=tmp_path)
    assert code == 0
    assert "validate" in out


def test_the_cli_validates_the_templates_of_a_project_it_is_told_about(cli_venv: Path, tmp_path: Path) -> None:
    # Given a directory that is not a project, and the project named by option or environment
    for args, env in (
        (["--project-dir", str(REPO)], {}),
        ([], {"MAILWRIGHT_PROJECT_DIR": str(REPO)}),
    ):
        # When the installed CLI validates the templates from there
        code, out, err = mailwright(cli_venv, *args, "templates", "validate", "--json", cwd=tmp_path, **env)

        # Then it checked every shipped template
        assert code == 0, err
        report = json.loads(out)
        assert report["ok"] is True
        shipped = {p.name for p in (REPO / "templates").iterdir() if (p / "template.json").is_file()}
        assert {t["template"] for t in report["templates"]} == shipped


def test_the_cli_says_how_to_name_the_project_when_it_finds_none(cli_venv: Path, tmp_path: Path) -> None:
    # Given the installed CLI, run where there is no project and none named
    for command in (["templates", "validate"], ["local", "up"], ["templates", "preview", "newsletter"]):
        code, out, err = mailwright(cli_venv, *command, cwd=tmp_path)

        # Then it exits 2 with one line saying what to pass
        assert code == 2, (command, out, err)
        assert len(err.strip().splitlines()) == 1, err
        assert "--project-dir" in err
        assert "MAILWRIGHT_PROJECT_DIR" in err
    assert not (tmp_path / ".mailwright" / "local.json").exists()


def test_the_cli_runs_the_local_stack_demo_from_the_wheel(cli_venv: Path, tmp_path: Path) -> None:
    # Given only the wheel with its cli extra (moto, Powertools, Jinja2 as the extra declares them)
    # When it runs a small demo on the project's templates, from another directory
    code, out, err = mailwright(
        cli_venv,
        "--project-dir", str(REPO), "--state-dir", str(tmp_path / "state"),
        "local", "demo", "--count", "12", "--ses-rate", "100", "--json",
        cwd=tmp_path,
    )  # fmt: skip

    # Then every request is accounted for, and emails reached the outbox
    assert code == 0, err
    report = json.loads(out)
    assert report["published"] == 12
    assert report["unaccounted"] == 0
    assert report["outcomes"]["sent"] > 0
    assert list((tmp_path / "state" / "outbox").glob("*.eml"))
