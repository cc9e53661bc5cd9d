"""The workers' asset ships what the provider webhook verifies SendGrid's signatures with, built for arm64."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.synth import Synthesized

pytestmark = pytest.mark.slow

# ELF header: e_machine (offset 18, little-endian) is 183 for AArch64.
ELF_MAGIC, AARCH64 = b"\x7fELF", 183


@pytest.fixture(scope="module")
def worker_asset(synthesized: Synthesized) -> Path:
    (_, worker), *_ = synthesized.workers().values()
    return synthesized.outdir / f"asset.{worker['Properties']['Code']['S3Key'].removesuffix('.zip')}"


def test_cryptography_ships_its_native_bindings_for_aarch64(worker_asset: Path) -> None:
    (binding,) = (worker_asset / "cryptography" / "hazmat" / "bindings").glob("_rust*.so")
    header = binding.read_bytes()[:20]

    assert header[:4] == ELF_MAGIC
    assert int.from_bytes(header[18:20], "little") == AARCH64
    assert (worker_asset / "mailwright" / "provider_feedback.py").is_file()
    assert (worker_asset / "mailwright" / "handlers" / "provider_webhook.py").is_file()
