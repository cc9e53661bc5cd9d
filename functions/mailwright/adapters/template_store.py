"""The templates bucket as publishing sees it (mailwright.templates.publishing): S3 object versions with metadata."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from mailwright.adapters.aws import error_code
from mailwright.constants import DRAFT_VERSION_PREFIX, DRAFTS_PREFIX, TEMPLATES_PREFIX, TEMPLATES_STAGING_PREFIX
from mailwright.templates.publishing import Publication, StoredVersion

_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}


def bundle_key(template_id: str) -> str:
    """The key of a template's bundle."""
    return f"{TEMPLATES_PREFIX}{template_id}.json"


class S3TemplateStore:
    """TemplateStore over a versioned S3 bucket (boto3 client)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    def latest(self, template_id: str) -> StoredVersion | None:
        """HEAD of the bundle: its version id and metadata, or None when there is none."""
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=bundle_key(template_id))
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                return None
            raise
        return StoredVersion(
            template_id=template_id,
            version_id=str(head.get("VersionId") or ""),
            publication=Publication.from_metadata(head.get("Metadata") or {}),
            last_modified=head["LastModified"].timestamp() if head.get("LastModified") else 0.0,
            latest=True,
        )

    def put(self, template_id: str, body: bytes, publication: Publication) -> str:
        """PUT a new version with its publication as user metadata; its version id."""
        response = self._client.put_object(
            Bucket=self.bucket,
            Key=bundle_key(template_id),
            Body=body,
            ContentType="application/json",
            Metadata=publication.to_metadata(),
        )
        return str(response.get("VersionId") or "")

    def read(self, template_id: str, version_id: str | None = None) -> bytes:
        """GET a version's content (the latest without `version_id`); KeyError when there is none."""
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Key": bundle_key(template_id)}
        if version_id:
            arguments["VersionId"] = version_id
        try:
            body: bytes = self._client.get_object(**arguments)["Body"].read()
        except ClientError as exc:
            if error_code(exc) in _MISSING or error_code(exc) == "InvalidArgument":
                raise KeyError(f"{template_id} has no version {version_id or '(latest)'}") from None
            raise
        return body

    def versions(self, template_id: str, *, limit: int) -> list[StoredVersion]:
        """Up to `limit` versions, newest first, each with its metadata (one HEAD per version)."""
        key = bundle_key(template_id)
        found: list[dict[str, Any]] = []
        paginator = self._client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=key):
            found += [v for v in page.get("Versions", []) if v["Key"] == key]
        found.sort(key=lambda v: v["LastModified"], reverse=True)
        versions = []
        for entry in found[:limit]:
            head = self._client.head_object(Bucket=self.bucket, Key=key, VersionId=entry["VersionId"])
            versions.append(
                StoredVersion(
                    template_id=template_id,
                    version_id=str(entry["VersionId"]),
                    publication=Publication.from_metadata(head.get("Metadata") or {}),
                    last_modified=entry["LastModified"].timestamp(),
                    latest=bool(entry.get("IsLatest")),
                )
            )
        return versions

    def template_ids(self) -> list[str]:
        """The templates with a bundle (not drafts nor anything else under a `_` prefix)."""
        ids = []
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=TEMPLATES_PREFIX, Delimiter="/"):
            for item in page.get("Contents", []):
                name = item["Key"][len(TEMPLATES_PREFIX) :]
                if name.endswith(".json") and not name.startswith("_"):
                    ids.append(name[: -len(".json")])
        return sorted(ids)

    def staged(self, prefix: str = TEMPLATES_STAGING_PREFIX) -> dict[str, bytes]:
        """The bundles the deploy staged under `prefix`, by template id."""
        bundles: dict[str, bytes] = {}
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix) :]
                if name.endswith(".json") and "/" not in name:
                    body: bytes = self._client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                    bundles[name[: -len(".json")]] = body
        return bundles

    def put_draft(self, template_id: str, body: bytes) -> str:
        """Store an unpublished edit for a test email; the `template_version` that names it (`draft:<id>`)."""
        response = self._client.put_object(
            Bucket=self.bucket, Key=f"{DRAFTS_PREFIX}{template_id}.json", Body=body, ContentType="application/json"
        )
        return DRAFT_VERSION_PREFIX + str(response.get("VersionId") or "")
