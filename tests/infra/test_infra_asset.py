"""The worker's code asset, as bundled into the cloud assembly: built for arm64 CPython 3.12.

And self-contained: built the same way for this machine, every Lambda handler imports in a clean
interpreter that sees nothing but the asset and the AWS SDK (which the Lambda runtime provides).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import DockerImage

from infra import bundling
from mailwright import constants
from mailwright.constants import SEND_WORKER_HANDLER
from tests.build_cache import REPO, cached_dir, digest, interpreter_tag, pins, pip
from tests.infra.synth import REPO_ROOT, Synthesized

# Each module shares the session's synthesized stack (see conftest.py).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def worker_asset(synthesized: Synthesized) -> Path:
    """The staged directory of the workers' shared code asset."""
    (_, worker), *_ = synthesized.workers().values()
    asset_hash = worker["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    path = synthesized.outdir / f"asset.{asset_hash}"
    assert path.is_dir(), f"{path} was not staged"
    return path


def test_asset_holds_the_runtime_package(worker_asset: Path) -> None:
    handler_module = Path(*SEND_WORKER_HANDLER.split(".")[:-1]).with_suffix(".py")

    assert (worker_asset / "mailwright" / "constants.py").is_file()
    assert (worker_asset / "mailwright" / "handlers").is_dir()
    # The handler module is being written beside this stack; once it exists it must ship.
    if (REPO_ROOT / "functions" / handler_module).is_file():
        assert (worker_asset / handler_module).is_file()
    # Compiled for CPython 3.12 when this machine has one (synth says so when it has not), for no other
    compiled = {p.name for p in worker_asset.rglob("*.pyc")}
    assert all(name.endswith(".cpython-312.pyc") for name in compiled), compiled
    if bundling.lambda_python() is not None:
        modules = list((worker_asset / "mailwright").rglob("*.py"))
        assert {f"{m.stem}.cpython-312.pyc" for m in modules} <= compiled


def test_asset_ships_native_code_for_arm64_cpython_312(worker_asset: Path) -> None:
    extensions = [p.name for p in worker_asset.rglob("*.so")]

    assert any(name.startswith("_pydantic_core.cpython-312-aarch64-linux-gnu") for name in extensions), extensions
    assert not [name for name in extensions if "x86_64" in name or "cpython-311" in name]


def test_asset_leaves_the_aws_sdk_to_the_runtime(worker_asset: Path) -> None:
    assert not (worker_asset / "boto3").exists()
    assert not (worker_asset / "botocore").exists()
    # The SDK's own dependencies too (the X-Ray SDK pulls them in): the runtime's botocore brings its own.
    for sdk_dependency in ("s3transfer", "jmespath", "dateutil", "urllib3", "six.py"):
        assert not (worker_asset / sdk_dependency).exists(), sdk_dependency
    # Typing stubs serve type checkers only.
    assert not list(worker_asset.rglob("*.pyi"))


# -- the asset is self-contained ------------------------------------------------

# Every Lambda handler infra/ names by string: SEND_WORKER_HANDLER, FEEDBACK_HANDLER, ... and any added later.
HANDLER_CONSTANT = re.compile(r"^[A-Z][A-Z0-9_]*_HANDLER$")

# Runs with `python -I -S`: no site-packages, no PYTHON* variables, no working directory on the path.
PROBE = """
import importlib, json, sys, sysconfig
asset, aws_sdk, *handlers = sys.argv[1:]
sys.path[:0] = [asset, aws_sdk]
failures = {}
for spec in handlers:
    module_name, _, attribute = spec.rpartition(".")
    try:
        if not callable(getattr(importlib.import_module(module_name), attribute)):
            failures[spec] = "not callable"
    except Exception as exc:
        failures[spec] = f"{type(exc).__name__}: {exc}"
allowed = (asset, aws_sdk, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
strays = sorted(
    f"{name}: {module.__file__}" for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None) and not module.__file__.startswith(allowed)
)
print(json.dumps({"failures": failures, "strays": strays, "loaded": len(sys.modules)}))
"""


def handler_specs() -> dict[str, str]:
    """The `*_HANDLER` constants of mailwright.constants: name -> "module.function"."""
    return {
        name: value
        for name, value in vars(constants).items()
        if HANDLER_CONSTANT.match(name) and isinstance(value, str)
    }


def native_dependencies(requirements: Path, _cache_root: Path | None = None) -> Path:
    """`requirements` installed for this machine's interpreter and pruned as for Lambda; cached by the file's hash.

    Stands in for `bundling.install_dependencies`, which installs for arm64 CPython 3.12.
    """

    def build(target: Path) -> None:
        pip("install", "--target", str(target), "--no-compile", "-r", str(requirements))
        bundling._prune_for_lambda(target)

    return cached_dir(f"asset-deps-{interpreter_tag()}-{digest(requirements)}", build)


def aws_sdk_dir() -> Path:
    """The pinned boto3 and its dependencies alone, as the Lambda runtime provides them."""
    requirement = f"boto3=={pins(REPO / 'requirements-local.txt')['boto3']}"

    def build(target: Path) -> None:
        pip("install", "--target", str(target), "--no-compile", requirement)

    return cached_dir(f"aws-sdk-{interpreter_tag()}-{digest(requirement)}", build)


@pytest.fixture(scope="module")
def native_asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workers' code asset built by infra/bundling.py's bundler, with dependencies for this machine."""
    out = tmp_path_factory.mktemp("asset")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bundling, "install_dependencies", native_dependencies)
        assert bundling.WorkerCodeBundler().try_bundle(str(out), image=DockerImage.from_registry("unused"))
    return out


def test_the_handler_constants_are_found() -> None:
    # The import test below covers whatever this finds: a new *_HANDLER constant is imported too.
    assert {
        "SEND_WORKER_HANDLER",
        "FEEDBACK_HANDLER",
        "UNSUBSCRIBE_HANDLER",
        "BREAKER_HANDLER",
        "BRIDGE_HANDLER",
    } <= set(handler_specs())


def test_every_handler_imports_from_the_asset_and_the_aws_sdk_alone(native_asset: Path) -> None:
    # Given the asset as bundled (functions/requirements.txt + the package, boto3 pruned) and boto3 as Lambda has it
    aws_sdk = aws_sdk_dir()
    handlers = sorted(handler_specs().values())
    # And an environment like Lambda's, so Powertools' tracer is on and imports the X-Ray SDK as deployed
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LAMBDA_TASK_ROOT": str(native_asset),
        "AWS_LAMBDA_FUNCTION_NAME": "mailwright-asset-probe",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    # When a clean interpreter imports every handler
    result = subprocess.run(  # noqa: S603 - our own interpreter and probe
        [sys.executable, "-I", "-S", "-B", "-c", PROBE, str(native_asset), str(aws_sdk), *handlers],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    # Then each one imports, and nothing came from outside the asset, the AWS SDK and the standard library
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["failures"] == {}, "a handler needs something functions/requirements.txt does not ship"
    assert report["strays"] == []
    assert not (native_asset / "boto3").exists()


ZONE_PROBE = """
import sys, zoneinfo
from datetime import datetime, UTC
sys.path.insert(0, sys.argv[1])
zoneinfo.reset_tzpath(to=[])  # as on an image without /usr/share/zoneinfo
print(datetime(2026, 7, 1, tzinfo=UTC).astimezone(zoneinfo.ZoneInfo("Europe/Paris")).utcoffset().seconds)
"""


def test_the_asset_brings_its_own_time_zone_data(worker_asset: Path, native_asset: Path) -> None:
    # Quiet hours need IANA zones, and the asset does not rely on the Lambda image having them
    assert (worker_asset / "tzdata" / "zoneinfo" / "Europe" / "Paris").is_file()

    result = subprocess.run(  # noqa: S603 - our own interpreter and probe
        [sys.executable, "-I", "-S", "-B", "-c", ZONE_PROBE, str(native_asset)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "7200"
