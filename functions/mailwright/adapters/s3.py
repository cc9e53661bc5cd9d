"""Amazon S3 adapter: TemplateSource, with an in-memory cache keyed by template and version."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from mailwright.adapters.aws import as_transient, error_code
from mailwright.constants import DRAFT_VERSION_PREFIX, DRAFTS_PREFIX, TEMPLATES_PREFIX
from mailwright.errors import TemplateNotFoundError, TransientError
from mailwright.templates import TemplateBundle

NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound", "InvalidArgument"})


class S3TemplateSource:
    """Reads `<prefix><template_id>.json` bundles.

    A pinned version (S3 version id) never changes, so it is cached for good.
    The latest version is re-checked after `cache_seconds` with a conditional
    GET, which costs no transfer when the ETag still matches.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        prefix: str = TEMPLATES_PREFIX,
        cache_seconds: float = 60,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[tuple[str, str | None], tuple[TemplateBundle, str, float]] = {}
        self._lock = threading.Lock()

    def get(self, template_id: str, version: str | None = None) -> TemplateBundle:
        """The bundle of `template_id` (at `version` if given)."""
        key = (template_id, version)
        cached = self._cache.get(key)
        now = self._clock()
        if cached is not None and (version is not None or now - cached[2] < self._cache_seconds):
            return cached[0]
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": f"{self._prefix}{template_id}.json"}
        if version is not None and version.startswith(DRAFT_VERSION_PREFIX):
            # A studio's test email: an unpublished edit, kept apart from the live versions.
            params["Key"] = f"{DRAFTS_PREFIX}{template_id}.json"
            params["VersionId"] = version[len(DRAFT_VERSION_PREFIX) :]
        elif version is not None:
            params["VersionId"] = version
        elif cached is not None:
            params["IfNoneMatch"] = cached[1]
        try:
            response = self._client.get_object(**params)
        except ClientError as exc:
            code = error_code(exc)
            if code in ("304", "NotModified") and cached is not None:
                with self._lock:
                    self._cache[key] = (cached[0], cached[1], now)
                return cached[0]
            if code in NOT_FOUND_CODES:
                raise TemplateNotFoundError(template_id, version) from None
            raise as_transient(exc, "s3") from None
        except BotoCoreError as exc:
            raise as_transient(exc, "s3") from None
        body = response["Body"].read()
        try:
            bundle = TemplateBundle.model_validate_json(body)
        except ValidationError as exc:
            # Bundles are validated at deploy; a bad one is a deployment fault, kept for redrive.
            raise TransientError("template_invalid", f"{template_id}: stored bundle is invalid: {exc}") from None
        etag = str(response.get("ETag", ""))
        found = response.get("VersionId") or etag.strip('"') or None
        bundle = bundle.model_copy(update={"version": version if version is not None else found})
        with self._lock:
            self._cache[key] = (bundle, etag, now)
        return bundle
