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
