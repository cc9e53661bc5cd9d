"""Local bundling: template bundles, loud failures and the dependency cache."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import DockerImage

from infra import bundling
from infra.bundling import BundlingError, TemplatesBundler, install_dependencies
from tests.infra.synth import REPO_ROOT, Synthesized


@pytest.mark.slow
def test_templates_asset_has_one_json_bundle_per_template(synthesized: Synthesized) -> None:
    (deployment,) = synthesized.resources("Custom::CDKBucketDeployment").values()
    (object_key,) = deployment["Properties"]["SourceObjectKeys"]
    asset = synthesized.outdir / f"asset.{object_key.removesuffix('.zip')}"
    # Layouts and partials (`_layouts/`, `_partials/`) travel inside each template's bundle.
    template_ids = sorted(p.name for p in (REPO_ROOT / "templates").iterdir() if p.is_dir() and p.name[0] != "_")

    assert sorted(p.stem for p in asset.glob("*.json")) == template_ids
    for bundle in asset.glob("*.json"):
        assert json.loads(bundle.read_text(encoding="utf-8"))


def test_a_broken_template_stops_the_synth(tmp_path: Path) -> None:
    # Given a template directory without its metadata
    (tmp_path / "src" / "broken").mkdir(parents=True)
    bundler = TemplatesBundler(templates_dir=tmp_path / "src")

    # When it is bundled, Then the error names the template
    with pytest.raises(BundlingError, match="broken"):
        bundler.try_bundle(str(tmp_path / "out"), image=DockerImage.from_registry("unused"))


def test_a_template_failing_the_checks_stops_the_synth(tmp_path: Path) -> None:
    # Given a marketing template without an unsubscribe link or postal address
    path = tmp_path / "src" / "promo" / "en"
    path.mkdir(parents=True)
    meta = {"category": "marketing", "required_variables": ["name"], "sample_data": {"name": "Jo"}}
    (path.parent / "template.json").write_text(json.dumps(meta), encoding="utf-8")
    for name in ("subject.txt", "body.html", "body.txt"):
        (path / name).write_text("Hi {{ name }}", encoding="utf-8")
    bundler = TemplatesBundler(templates_dir=tmp_path / "src")

    # When it is bundled, Then the synth stops with the check's finding
    with pytest.raises(BundlingError, match=r"did not pass the checks:\n.*promo/en/body\.html: marketing mail needs"):
        bundler.try_bundle(str(tmp_path / "out"), image=DockerImage.from_registry("unused"))
    assert not (tmp_path / "out" / "promo.json").exists()


def test_dependencies_come_from_the_cache_once_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("jinja2==3.1.6\n", encoding="utf-8")
    cached = tmp_path / "cache" / bundling.deps_cache_key(requirements)
    (cached / "jinja2").mkdir(parents=True)

    def no_pip(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        raise AssertionError("pip ran although the cache holds this requirements file")

    monkeypatch.setattr(subprocess, "run", no_pip)

    assert install_dependencies(requirements, tmp_path / "cache") == cached


def test_cache_key_changes_with_the_requirements(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("jinja2==3.1.6\n", encoding="utf-8")
    before = bundling.deps_cache_key(requirements)
    requirements.write_text("jinja2==3.1.5\n", encoding="utf-8")

    assert bundling.deps_cache_key(requirements) != before


# -- bytecode for the Lambda runtime -----------------------------------------------


def _package(root: Path) -> Path:
    (root / "mailwright").mkdir(parents=True)
    (root / "mailwright" / "__init__.py").write_text('"""x"""\n', encoding="utf-8")
    (root / "mailwright" / "thing.py").write_text("VALUE = 41 + 1\n", encoding="utf-8")
    return root


@pytest.mark.skipif(bundling.lambda_python() is None, reason="no CPython 3.12 on this machine")
def test_the_asset_is_compiled_for_cpython_312_the_same_way_everywhere(tmp_path: Path) -> None:
    # Given the same sources in two places, compiled at different times
    first, second = _package(tmp_path / "a"), _package(tmp_path / "b")
    assert bundling.compile_bytecode(first) and bundling.compile_bytecode(second)

    # Then each module has unchecked-hash bytecode (PEP 552 flags 0b01: no source check on a read-only /var/task)
    pyc = first / "mailwright" / "__pycache__" / "thing.cpython-312.pyc"
    assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01
    # And the bytes do not depend on where or when they were built (the asset is reproducible)
    assert pyc.read_bytes() == (second / "mailwright" / "__pycache__" / "thing.cpython-312.pyc").read_bytes()
    # And the module names its source where Lambda has it
    python = bundling.lambda_python()
    assert python is not None
    where = subprocess.run(  # noqa: S603
        [python, "-c", f"import marshal; print(marshal.loads(open({str(pyc)!r}, 'rb').read()[16:]).co_filename)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where == "/var/task/mailwright/thing.py"


def test_without_cpython_312_the_asset_ships_sources_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundling, "lambda_python", lambda: None)
    root = _package(tmp_path)
    assert bundling.compile_bytecode(root) is False
    assert not list(root.rglob("*.pyc"))


def test_an_interpreter_that_cannot_compile_the_package_stops_the_synth(tmp_path: Path) -> None:
    root = _package(tmp_path)
    with pytest.raises(BundlingError, match="did not compile the mailwright package"):
        bundling.compile_bytecode(root, python="/bin/false")
