"""The worker's code asset, as bundled into the cloud assembly: built for arm64 CPython 3.12."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailwright.constants import SEND_WORKER_HANDLER
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
    assert not list(worker_asset.rglob("__pycache__"))


def test_asset_ships_native_code_for_arm64_cpython_312(worker_asset: Path) -> None:
    extensions = [p.name for p in worker_asset.rglob("*.so")]

    assert any(name.startswith("_pydantic_core.cpython-312-aarch64-linux-gnu") for name in extensions), extensions
    assert not [name for name in extensions if "x86_64" in name or "cpython-311" in name]


def test_asset_leaves_the_aws_sdk_to_the_runtime(worker_asset: Path) -> None:
    assert not (worker_asset / "boto3").exists()
    assert not (worker_asset / "botocore").exists()
