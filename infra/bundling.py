"""Build the Lambda code and template assets on this machine, without Docker.

CDK bundling normally runs in a container; `cdk synth` here must work on a
laptop or CI runner without one, so both assets implement `ILocalBundling`
and never fall back to the (unused) image.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3_deployment as s3deploy

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
TEMPLATES_DIR = REPO_ROOT / "templates"
DEPS_CACHE_DIR = REPO_ROOT / ".cache" / "lambda-deps"

# The Lambda platform the workers run on: arm64 (Graviton), CPython 3.12.
LAMBDA_PLATFORM = "manylinux2014_aarch64"
LAMBDA_PYTHON_VERSION = "3.12"

# The Python runtime ships these; a bundled copy would only shadow it and
# could pair a newer botocore with the runtime's older s3transfer.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
# ...and the SDK's own dependencies (the X-Ray SDK pulls botocore, hence them, into the install): the runtime's
# botocore is tested with the runtime's copies, and 1.2 MB less to ship. (path in the install, its dist-info)
RUNTIME_SDK_DEPENDENCIES = (
    ("jmespath", "jmespath"),
    ("dateutil", "python_dateutil"),
    ("urllib3", "urllib3"),
    ("six.py", "six"),
)
# Typing stubs: read by type checkers, never by the runtime.
STUB_SUFFIX = ".pyi"
# Bump when what goes into a cached install changes, to start a fresh cache.
DEPS_CACHE_FORMAT = "2"

# Where the asset's code sits on Lambda: the compiled modules name their sources there.
LAMBDA_TASK_ROOT = "/var/task"
# The CPython 3.12 that compiles the asset's bytecode (else python3.12 on the PATH, or pyenv's).
LAMBDA_PYTHON_ENV = "MAILWRIGHT_LAMBDA_PYTHON"

# Docker is never started: the local bundlers below always succeed or raise.
_NO_DOCKER = DockerImage.from_registry("unused")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


class BundlingError(RuntimeError):
    """An asset could not be built; synth stops instead of shipping a broken asset."""


def deps_cache_key(requirements: Path) -> str:
    """The cache directory name of one requirements file installed for the Lambda platform."""
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(f"\0{LAMBDA_PLATFORM}\0cp{LAMBDA_PYTHON_VERSION}\0{DEPS_CACHE_FORMAT}".encode())
    return digest.hexdigest()


def _prune_for_lambda(target: Path) -> None:
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    # Console scripts point at this machine's interpreter; Lambda never runs them.
    shutil.rmtree(target / "bin", ignore_errors=True)
    for name in RUNTIME_PROVIDED:
        shutil.rmtree(target / name, ignore_errors=True)
        for dist_info in target.glob(f"{name}-*.dist-info"):
            shutil.rmtree(dist_info, ignore_errors=True)
    for path, distribution in RUNTIME_SDK_DEPENDENCIES:
        if (target / path).is_file():
            (target / path).unlink()
        shutil.rmtree(target / path, ignore_errors=True)
        for dist_info in target.glob(f"{distribution}-*.dist-info"):
            shutil.rmtree(dist_info, ignore_errors=True)
    for stub in target.rglob(f"*{STUB_SUFFIX}"):
        stub.unlink()


def install_dependencies(requirements: Path, cache_root: Path = DEPS_CACHE_DIR) -> Path:
    """Install the Lambda's requirements for arm64/CPython 3.12 once and return the cached directory."""
    cached = cache_root / deps_cache_key(requirements)
    if cached.is_dir():
        return cached
    cache_root.mkdir(parents=True, exist_ok=True)
    # Install into a private directory and rename it into place, so parallel
    # synths (pytest-xdist, two terminals) never see a half-filled cache.
    staging = Path(tempfile.mkdtemp(prefix=f"{cached.name}.", suffix=".tmp", dir=cache_root))
    try:
        command = [
            sys.executable, "-m", "pip", "install",
            "--target", str(staging),
            "--platform", LAMBDA_PLATFORM,
            "--only-binary=:all:",
            "--python-version", LAMBDA_PYTHON_VERSION,
            "--implementation", "cp",
            "--disable-pip-version-check",
            "--no-compile",
            "--quiet",
            "-r", str(requirements),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise BundlingError(f"pip could not install {requirements} for {LAMBDA_PLATFORM}:\n{result.stderr}")
        _prune_for_lambda(staging)
        try:
            staging.rename(cached)
        except OSError:
            if not cached.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cached


def lambda_python() -> str | None:
    """A CPython of the Lambda runtime's version (3.12) on this machine, to compile the asset with, or None."""
    wanted = tuple(int(part) for part in LAMBDA_PYTHON_VERSION.split("."))
    if os.environ.get(LAMBDA_PYTHON_ENV):
        return os.environ[LAMBDA_PYTHON_ENV]
    if sys.version_info[:2] == wanted:
        return sys.executable
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [str(p) for p in sorted(pyenv.glob(f"{LAMBDA_PYTHON_VERSION}.*/bin/python"), reverse=True)]
    candidates += [found for found in [shutil.which(f"python{LAMBDA_PYTHON_VERSION}")] if found]
    for candidate in candidates:
        # A pyenv shim or a broken link is on the PATH without being an interpreter of that version.
        probe = [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
        try:
            answer = subprocess.run(probe, capture_output=True, text=True, check=False, timeout=30)  # noqa: S603
        except OSError:
            continue
        if answer.returncode == 0 and answer.stdout.strip() == LAMBDA_PYTHON_VERSION:
            return candidate
    return None


def compile_bytecode(target: Path, python: str | None = None) -> bool:
    """Compile every module under `target` for the Lambda runtime's CPython; False when none is at hand.

    Lambda's `/var/task` is read-only and the bundle ships no bytecode otherwise, so every cold start
    would compile every module it imports. The caches are unchecked-hash `.pyc` files (PEP 552): the
    runtime loads them without looking at the sources, and the same sources always compile to the same
    bytes, whatever the machine or the clock; the modules name their sources under /var/task.
    """
    python = python or lambda_python()
    if python is None:
        return False
    command = [
        python, "-m", "compileall", "-q", "-j", "0",
        "--invalidation-mode", "unchecked-hash",
        "-s", str(target), "-p", LAMBDA_TASK_ROOT,
        str(target),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    # A dependency may carry a file no 3.12 compiles (an old test, a template): it stays source-only.
    # The package itself must compile.
    if not list((target / "mailwright").rglob("*.cpython-312.pyc")):
        raise BundlingError(f"{python} did not compile the mailwright package:\n{result.stderr or result.stdout}")
    return True


@jsii.implements(ILocalBundling)
class WorkerCodeBundler:
    """Copies the `mailwright` package and its arm64 dependencies into the asset, compiled for CPython 3.12."""

    def __init__(
        self,
        *,
        functions_dir: Path = FUNCTIONS_DIR,
        cache_root: Path = DEPS_CACHE_DIR,
        python: str | None = None,
    ) -> None:
        self._functions_dir = functions_dir
        self._cache_root = cache_root
        self._python = python

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        """Fill `output_dir` with the package and its dependencies; always handles the bundling."""
        out = Path(output_dir)
        deps = install_dependencies(self._functions_dir / "requirements.txt", self._cache_root)
        shutil.copytree(deps, out, dirs_exist_ok=True, ignore=_IGNORED)
        shutil.copytree(self._functions_dir / "mailwright", out / "mailwright", dirs_exist_ok=True, ignore=_IGNORED)
        if not compile_bytecode(out, self._python):
            # Said at synth: the deploy still works, only its cold starts are slower.
            print(
                f"mailwright: no CPython {LAMBDA_PYTHON_VERSION} found (set {LAMBDA_PYTHON_ENV}): the workers' asset "
                "ships without bytecode, so each cold start compiles it (about twice as slow)",
                file=sys.stderr,
            )
        return True


@jsii.implements(ILocalBundling)
class TemplatesBundler:
    """Runs `templates validate`'s checks, then the runtime's own bundler, so synth fails on a template the
    worker would reject or that breaks a rule (undeclared variables, CAN-SPAM, https links...)."""

    def __init__(self, *, templates_dir: Path = TEMPLATES_DIR, functions_dir: Path = FUNCTIONS_DIR) -> None:
        self._templates_dir = templates_dir
        self._functions_dir = functions_dir

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        """Write one `<template_id>.json` per template directory into `output_dir`."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(self._functions_dir), str(REPO_ROOT), env.get("PYTHONPATH")])
        )
        source = str(self._templates_dir)
        steps = (
            ("did not pass the checks", ["-m", "mailwright_tools.template_checks", source]),
            ("did not bundle", ["-m", "mailwright.templates", "bundle", source, output_dir]),
        )
        for failure, command in steps:
            result = subprocess.run(  # noqa: S603
                [sys.executable, *command], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                detail = (result.stderr or result.stdout).strip()
                raise BundlingError(f"templates in {self._templates_dir} {failure}:\n{detail}")
        return True


def worker_code() -> lambda_.Code:
    """The send worker's code asset: `functions/mailwright` plus its dependencies for arm64 Lambda."""
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        # Bytecode caches differ per machine and would change the asset hash.
        exclude=["**/__pycache__", "**/*.pyc"],
        bundling=BundlingOptions(image=_NO_DOCKER, local=WorkerCodeBundler()),
    )


def templates_source() -> s3deploy.ISource:
    """The template bundles, one JSON file per template, as a BucketDeployment source."""
    return s3deploy.Source.asset(
        str(TEMPLATES_DIR),
        # The bundles depend on the bundler's code too, so hash what it wrote.
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(image=_NO_DOCKER, local=TemplatesBundler()),
    )
