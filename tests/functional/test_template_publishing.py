"""Publishing template versions (moto S3): studio versions are never undone by an upload; pull takes them in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner, Result

from mailwright.adapters.template_store import S3TemplateStore
from mailwright.constants import PUBLISHED_FILE, Outputs
from mailwright.templates import TemplateBundle, load_template_tree
from mailwright.templates.publishing import (
    KEPT,
    SOURCE_DEPLOY,
    SOURCE_STUDIO,
    UNCHANGED,
    UPLOADED,
    Publication,
    StoredVersion,
    acknowledged_versions,
    content_digest,
    deploy_decision,
    publish,
)
from mailwright_tools.cli import app
from mailwright_tools.provision import StackResources

SHIPPED = Path(__file__).resolve().parents[2] / "templates"
STACK = "Mailwright"


def version(source: str, body: bytes = b"x", version_id: str = "v1") -> StoredVersion:
    return StoredVersion("t", version_id, Publication(source=source, sha256=content_digest(body)))


@pytest.mark.parametrize(
    ("current", "body", "acknowledged", "decision"),
    [
        (None, b"new", None, UPLOADED),
        (version(SOURCE_DEPLOY, b"same"), b"same", None, UNCHANGED),
        (version(SOURCE_STUDIO, b"same"), b"same", None, UNCHANGED),
        (version(SOURCE_DEPLOY, b"old"), b"new", None, UPLOADED),
        (version(SOURCE_STUDIO, b"studio"), b"repo", None, KEPT),
        (version(SOURCE_STUDIO, b"studio"), b"repo", "older-version", KEPT),
        (version(SOURCE_STUDIO, b"studio"), b"repo", "v1", UPLOADED),
    ],
    ids=["new", "same", "same-as-studio", "changed", "studio", "studio-pulled-earlier", "studio-pulled"],
)
def test_the_deploy_decision(
    current: StoredVersion | None, body: bytes, acknowledged: str | None, decision: str
) -> None:
    assert deploy_decision(current, content_digest(body), acknowledged) == decision


def test_metadata_survives_non_ascii_notes_and_authors() -> None:
    publication = Publication(source=SOURCE_STUDIO, sha256="ab", note="Sujet plus court — été", author="Zoë <z@x>")

    metadata = publication.to_metadata()

    assert all(value.isascii() for value in metadata.values())
    assert Publication.from_metadata({k.title(): v for k, v in metadata.items()}) == publication


def test_a_publish_needs_a_note() -> None:
    with pytest.raises(ValueError, match="change note"):
        publish(S3TemplateStore(None, "b"), "t", b"{}", note="  ", author="a")


@pytest.fixture
def bucket(stack: StackResources) -> str:
    """The moto stack's templates bucket, emptied, behind a CloudFormation stack the CLI can resolve."""
    s3 = boto3.client("s3")
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=stack.templates_bucket):
        for entry in page.get("Versions", []):
            s3.delete_object(Bucket=stack.templates_bucket, Key=entry["Key"], VersionId=entry["VersionId"])
    outputs = {
        Outputs.MESSAGES_TABLE: stack.messages_table,
        Outputs.queue_url("standard"): stack.queues["standard"],
        Outputs.TEMPLATES_BUCKET: stack.templates_bucket,
    }
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "stack-marker"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    return stack.templates_bucket


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, ["--stack-name", STACK, "templates", *args])


def repo_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "templates"
    shutil.copytree(SHIPPED, copy)
    return copy


def test_upload_writes_only_changes_and_never_over_a_studio_version(bucket: str, tmp_path: Path) -> None:
    templates = repo_copy(tmp_path)
    store = S3TemplateStore(boto3.client("s3"), bucket)

    first = cli("upload", "--templates-dir", str(templates), "--json")
    again = cli("upload", "--templates-dir", str(templates), "--json")

    assert first.exit_code == 0, first.output
    assert set(json.loads(first.stdout)["uploaded"]) == {"activity_digest", "newsletter", "order_confirmation",
                                                          "password_reset", "welcome_email"}  # fmt: skip
    assert json.loads(again.stdout)["uploaded"] == {} and len(json.loads(again.stdout)["unchanged"]) == 5

    # Given an editor publishes a new subject for welcome_email from the studio
    bundle = TemplateBundle.model_validate_json(store.read("welcome_email"))
    edited = bundle.model_copy(
        update={"locales": {**bundle.locales, "en": bundle.locales["en"].model_copy(update={"subject": "Hello!"})}}
    )
    studio_version = publish(store, "welcome_email", edited.to_json().encode(), note="Shorter subject", author="Zoë")
    # And the repository changes welcome_email too (a developer's edit, not the studio's)
    (templates / "welcome_email" / "fr" / "subject.txt").write_text("Bienvenue !", encoding="utf-8")

    # When the repository is uploaded again
    kept = cli("upload", "--templates-dir", str(templates), "--json")

    # Then the studio's version stays the latest
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.stdout)["kept"]["welcome_email"]["version"] == studio_version
    latest = store.latest("welcome_email")
    assert latest is not None and latest.version_id == studio_version and latest.publication.note == "Shorter subject"

    # When the studio's versions are pulled into the repository
    pulled = cli("pull", "--templates-dir", str(templates), "--json")

    # Then the template directory holds the published parts and published.json names the version
    assert pulled.exit_code == 0, pulled.output
    assert [p["template"] for p in json.loads(pulled.stdout)["pulled"]] == ["welcome_email"]
    assert (templates / "welcome_email" / "en" / "subject.txt").read_text(encoding="utf-8") == "Hello!"
    record = json.loads((templates / "welcome_email" / PUBLISHED_FILE).read_text(encoding="utf-8"))
    assert (record["version"], record["note"], record["author"]) == (studio_version, "Shorter subject", "Zoë")
    assert acknowledged_versions(templates) == {"welcome_email": studio_version}
    # And the pulled directory bundles to exactly what was published: the next upload changes nothing
    after = cli("upload", "--templates-dir", str(templates), "--json")
    assert json.loads(after.stdout)["uploaded"] == {}
    assert load_template_tree(templates)["welcome_email"].to_json() == edited.to_json()


def test_a_pulled_version_may_be_replaced_and_force_replaces_one_not_pulled(bucket: str, tmp_path: Path) -> None:
    templates = repo_copy(tmp_path)
    store = S3TemplateStore(boto3.client("s3"), bucket)
    cli("upload", "--templates-dir", str(templates))
    studio = publish(store, "newsletter", store.read("newsletter").replace(b"Hi", b"Hey"), note="n", author="a")
    (templates / "newsletter" / PUBLISHED_FILE).write_text(json.dumps({"version": studio}), encoding="utf-8")
    publish(store, "welcome_email", store.read("welcome_email").replace(b"Hi", b"Hey"), note="n", author="a")

    result = json.loads(cli("upload", "--templates-dir", str(templates), "--force", "welcome_email", "--json").stdout)

    assert set(result["uploaded"]) == {"newsletter", "welcome_email"} and result["kept"] == {}
    listed = json.loads(cli("versions", "welcome_email", "--json").stdout)["versions"]
    assert [v["source"] for v in listed] == ["upload", "studio", "upload"] and listed[0]["latest"] is True


def test_a_draft_renders_by_its_version_and_never_goes_live(bucket: str, tmp_path: Path) -> None:
    from mailwright.adapters.s3 import S3TemplateSource
    from mailwright.errors import TemplateNotFoundError

    cli("upload", "--templates-dir", str(repo_copy(tmp_path)))
    store = S3TemplateStore(boto3.client("s3"), bucket)
    live = store.read("welcome_email")
    draft = store.put_draft("welcome_email", live.replace(b"Welcome aboard", b"Draft subject"))
    source = S3TemplateSource(boto3.client("s3"), bucket)

    drafted = source.get("welcome_email", draft)

    assert draft.startswith("draft:") and drafted.version == draft
    assert drafted.locales["en"].subject.startswith("Draft subject")
    assert source.get("welcome_email").locales["en"].subject.startswith("Welcome aboard")
    assert store.read("welcome_email") == live and store.template_ids().count("welcome_email") == 1
    with pytest.raises(TemplateNotFoundError):
        source.get("welcome_email", "draft:no-such-version")
