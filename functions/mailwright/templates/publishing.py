"""Published template versions: who made each S3 version, and the rule that keeps a deploy from undoing a studio.

Every bundle written to the templates bucket says where it came from, in S3
object metadata (`x-amz-meta-mailwright-*`):

| key                         | what                                                           |
|-----------------------------|----------------------------------------------------------------|
| `mailwright-source`         | `deploy` (cdk deploy), `upload` (`templates upload`), `studio` |
| `mailwright-sha256`         | SHA-256 of the bundle's content                                |
| `mailwright-note`           | the change note (studio), percent-encoded                      |
| `mailwright-author`         | who published it (studio), percent-encoded                     |
| `mailwright-restored-from`  | the version a restore copied                                   |

**Source of truth.** `templates/` in the repository is where templates are
written and reviewed; the templates bucket is what is live. A studio
publishes into the bucket directly, so the bucket can be ahead of the
repository. The deploy (and `templates upload`) therefore writes a template's
bundle only when it changed, and never over a studio's version the
repository has not taken in (`deploy_decision`):

| latest version in the bucket                     | the repository's bundle | done        |
|--------------------------------------------------|-------------------------|-------------|
| none                                             | any                     | uploaded    |
| same content (sha256)                            | same                    | unchanged   |
| from a deploy or an upload (or with no metadata) | different               | uploaded    |
| from the studio, and `published.json` names it   | different               | uploaded    |
| from the studio, not taken in                    | different               | kept        |

Nothing is ever deleted (no prune): a template removed from the repository
stays in the bucket until someone deletes it. `mailwright templates pull`
writes the studio's versions into `templates/` with a `published.json`
naming the version, its note and its author; once committed, the next deploy
may replace that version with the repository's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote

from mailwright.constants import PUBLISHED_FILE

SOURCE_DEPLOY = "deploy"
SOURCE_UPLOAD = "upload"
SOURCE_STUDIO = "studio"
# Versions written from the repository's templates/: a later deploy may replace them.
REPOSITORY_SOURCES = frozenset({SOURCE_DEPLOY, SOURCE_UPLOAD})

META_SOURCE = "mailwright-source"
META_SHA256 = "mailwright-sha256"
META_NOTE = "mailwright-note"
META_AUTHOR = "mailwright-author"
META_RESTORED_FROM = "mailwright-restored-from"
# S3 allows 2 KB of user metadata per object: notes and names are kept short.
NOTE_MAX_CHARS = 200
AUTHOR_MAX_CHARS = 100

UPLOADED = "uploaded"
UNCHANGED = "unchanged"
KEPT = "kept"


def content_digest(body: bytes) -> str:
    """The SHA-256 of a bundle's content, as its metadata records it."""
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Publication:
    """What a stored version says about itself."""

    source: str
    sha256: str = ""
    note: str = ""
    author: str = ""
    restored_from: str = ""

    def to_metadata(self) -> dict[str, str]:
        """S3 user metadata (ASCII: the note and author are percent-encoded)."""
        metadata = {META_SOURCE: self.source, META_SHA256: self.sha256}
        if self.note:
            metadata[META_NOTE] = quote(self.note[:NOTE_MAX_CHARS], safe=" ,.:;!?()'-_/")
        if self.author:
            metadata[META_AUTHOR] = quote(self.author[:AUTHOR_MAX_CHARS], safe=" @.:_/-")
        if self.restored_from:
            metadata[META_RESTORED_FROM] = self.restored_from
        return metadata

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> Publication:
        """Read S3 user metadata; a version without any (the deploy before this one) counts as a deploy."""
        lowered = {key.lower(): value for key, value in metadata.items()}
        return cls(
            source=lowered.get(META_SOURCE, SOURCE_DEPLOY),
            sha256=lowered.get(META_SHA256, ""),
            note=unquote(lowered.get(META_NOTE, "")),
            author=unquote(lowered.get(META_AUTHOR, "")),
            restored_from=lowered.get(META_RESTORED_FROM, ""),
        )


@dataclass(frozen=True)
class StoredVersion:
    """One S3 version of a template's bundle."""

    template_id: str
    version_id: str
    publication: Publication
    last_modified: float = 0.0
    latest: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (the CLI and the studio show it)."""
        return {
            "template": self.template_id,
            "version": self.version_id,
            "source": self.publication.source,
            "sha256": self.publication.sha256,
            "note": self.publication.note,
            "author": self.publication.author,
            "restored_from": self.publication.restored_from,
            "last_modified": self.last_modified,
            "latest": self.latest,
        }


class TemplateStore(Protocol):
    """The templates bucket as publishing sees it: versions with their metadata."""

    def latest(self, template_id: str) -> StoredVersion | None:
        """The current version of a template's bundle, or None when there is none."""
        ...

    def put(self, template_id: str, body: bytes, publication: Publication) -> str:
        """Write a new version (the latest from now on); its version id."""
        ...

    def read(self, template_id: str, version_id: str | None = None) -> bytes:
        """A version's content (the latest without `version_id`)."""
        ...

    def versions(self, template_id: str, *, limit: int) -> list[StoredVersion]:
        """Up to `limit` versions, newest first."""
        ...

    def template_ids(self) -> list[str]:
        """The templates that have a bundle."""
        ...

    def put_draft(self, template_id: str, body: bytes) -> str:
        """Store an unpublished edit for a test email; the `template_version` that names it."""
        ...


def deploy_decision(current: StoredVersion | None, digest: str, acknowledged: str | None) -> str:
    """What the deploy does with a template whose repository bundle has `digest` (see the module's table)."""
    if current is None:
        return UPLOADED
    if current.publication.sha256 == digest:
        return UNCHANGED
    if current.publication.source in REPOSITORY_SOURCES:
        return UPLOADED
    if acknowledged is not None and acknowledged == current.version_id:
        return UPLOADED
    return KEPT


@dataclass
class SyncResult:
    """What a deploy (or `templates upload`) did, template by template."""

    uploaded: dict[str, str] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    # Templates whose studio version was left in place, with that version's id.
    kept: dict[str, StoredVersion] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "uploaded": dict(self.uploaded),
            "unchanged": list(self.unchanged),
            "kept": {template: version.to_json() for template, version in self.kept.items()},
        }


def sync_bundles(
    store: TemplateStore,
    bundles: Mapping[str, bytes],
    *,
    acknowledged: Mapping[str, str],
    source: str = SOURCE_DEPLOY,
    force: Sequence[str] = (),
) -> SyncResult:
    """Write the repository's bundles that changed, never over a studio version not taken in (unless forced)."""
    result = SyncResult()
    for template_id, body in sorted(bundles.items()):
        digest = content_digest(body)
        current = store.latest(template_id)
        decision = deploy_decision(current, digest, acknowledged.get(template_id))
        if decision == KEPT and template_id in force:
            decision = UPLOADED
        if decision == UNCHANGED:
            result.unchanged.append(template_id)
        elif decision == KEPT:
            assert current is not None
            result.kept[template_id] = current
        else:
            result.uploaded[template_id] = store.put(template_id, body, Publication(source=source, sha256=digest))
    return result


def publish(
    store: TemplateStore, template_id: str, body: bytes, *, note: str, author: str, restored_from: str = ""
) -> str:
    """Publish a studio edit (or a restore) as the template's latest version; its version id."""
    if not note.strip():
        raise ValueError("a change note is required: say what changed and why")
    publication = Publication(
        source=SOURCE_STUDIO,
        sha256=content_digest(body),
        note=note.strip(),
        author=author.strip(),
        restored_from=restored_from,
    )
    return store.put(template_id, body, publication)


def acknowledged_versions(templates_dir: Path) -> dict[str, str]:
    """The published versions the repository has taken in: `published.json` beside each template directory."""
    found: dict[str, str] = {}
    for marker in sorted(templates_dir.glob(f"*/{PUBLISHED_FILE}")):
        try:
            version = json.loads(marker.read_text(encoding="utf-8")).get("version")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(version, str) and version:
            found[marker.parent.name] = version
    return found


def published_record(version: StoredVersion) -> dict[str, Any]:
    """What `templates pull` writes to `published.json`: the version taken in, its note, author and digest."""
    return {
        "version": version.version_id,
        "source": version.publication.source,
        "note": version.publication.note,
        "author": version.publication.author,
        "sha256": version.publication.sha256,
        "published_at": version.last_modified,
        "restored_from": version.publication.restored_from or None,
    }
