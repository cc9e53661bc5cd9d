"""Producer SDK: a small client for the status API (what happened to request X, what did we send to Jane).

    from mailwright.sdk import StatusClient

    client = StatusClient(API_URL)              # the stack's ApiUrl output; signed with boto3's credentials
    status = client.get(request_id)             # MessageStatus: status, reason, delivery, history...
    for found in client.search("jane@example.com", since="2026-11-01T00:00:00Z"):
        print(found.request_id, found.status, found.delivery)

Deployed, every call is signed with SigV4 (service `execute-api`) using the
credentials boto3 finds, as IAM authorization requires; the region comes
from the URL (`<id>.execute-api.<region>.amazonaws.com`) or the session.
The local stack's API (`status_api_url` in `.mailwright/local.json`) takes
unsigned requests on loopback: a loopback URL is not signed unless
`sign=True`. Throttling (429) and unavailability (502, 503, 504) are retried
with backoff; every other error raises StatusApiError, `MessageNotFoundError`
for an unknown request id. It needs boto3 (botocore signs) and pydantic only.
"""

from __future__ import annotations

import json
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from pydantic import BaseModel, ValidationError

from mailwright.errors import MailwrightError
from mailwright.status_models import DEFAULT_PAGE_SIZE, MessageStatus, MessageSummary, SearchPage

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SERVICE = "execute-api"
_REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
RETRY_STATUSES = frozenset({429, 502, 503, 504})
DEFAULT_ATTEMPTS = 3
_Model = TypeVar("_Model", bound=BaseModel)


class StatusApiError(MailwrightError):
    """The status API answered with an error (or could not be reached: `status` 0)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}" if status else f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class MessageNotFoundError(StatusApiError):
    """No request with this id is in the message log (not processed yet, never published, or expired)."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A signed request is for one host: never replay its Authorization header elsewhere.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class StatusClient:
    """Calls the status API at `base_url` (the part before /v1), signing with SigV4 unless it is loopback."""

    def __init__(
        self,
        base_url: str,
        *,
        session: boto3.session.Session | None = None,
        region: str | None = None,
        sign: bool | None = None,
        timeout: float = 10.0,
        max_attempts: int = DEFAULT_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        loopback = parts.hostname in LOOPBACK_HOSTS
        if parts.scheme == "http" and not loopback:
            raise ValueError("the status API is reached over HTTPS (plain HTTP only on loopback, the local stack)")
        self.base_url = base_url.rstrip("/")
        self.sign = not loopback if sign is None else sign
        self._session = session
        found = _REGION_IN_HOST.search(parts.hostname)
        self._region = region or (found.group(1) if found else None)
        self._timeout = timeout
        self._attempts = max(1, max_attempts)
        self._sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirects)

    def get(self, request_id: str) -> MessageStatus:
        """The status and history of one request; MessageNotFoundError when the message log has none."""
        body = self._call("GET", f"/v1/messages/{quote(request_id, safe='')}")
        return _parse(MessageStatus, body)

    def search_page(
        self,
        recipient: str,
        *,
        since: datetime | str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        next: str | None = None,
    ) -> SearchPage:
        """One page of the requests sent to `recipient`, newest first; pass its `next` to get the following one."""
        query: dict[str, Any] = {"recipient": recipient, "limit": limit}
        if since is not None:
            query["since"] = _iso(since)
        if next is not None:
            query["next"] = next
        return _parse(SearchPage, self._call("POST", "/v1/messages/search", query))

    def search(
        self, recipient: str, *, since: datetime | str | None = None, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[MessageSummary]:
        """Every request sent to `recipient` (completed at or after `since`), newest first, page after page."""
        cursor: str | None = None
        while True:
            page = self.search_page(recipient, since=since, limit=page_size, next=cursor)
            yield from page.items
            if page.next is None:
                return
            cursor = page.next

    # -- transport --------------------------------------------------------

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> bytes:
        url = self.base_url + path
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        for attempt in range(1, self._attempts + 1):
            request = urllib.request.Request(url, data=data, method=method, headers=self._headers(method, url, data))  # noqa: S310 - http(s) checked in __init__
            try:
                with self._opener.open(request, timeout=self._timeout) as response:
                    body: bytes = response.read()
                    return body
            except urllib.error.HTTPError as exc:
                status, answer, retry_after = exc.code, exc.read(), exc.headers.get("Retry-After")
                if status not in RETRY_STATUSES or attempt == self._attempts:
                    raise _error(status, answer) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == self._attempts:
                    reason = getattr(exc, "reason", exc)
                    raise StatusApiError(0, "unreachable", f"{self.base_url}: {reason}") from None
                retry_after = None
            self._sleep(_backoff(attempt, retry_after))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _headers(self, method: str, url: str, data: bytes | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if not self.sign:
            return headers
        session = self._session or boto3.session.Session()
        self._session = session
        credentials = session.get_credentials()
        if credentials is None:
            raise StatusApiError(0, "no_credentials", "no AWS credentials to sign the request with (SigV4)")
        region = self._region or session.region_name
        if not region:
            raise StatusApiError(0, "no_region", "no AWS region to sign for: pass region= or set AWS_REGION")
        signed = AWSRequest(method=method, url=url, data=data, headers=headers)
        # Signed afresh for every attempt: a signature carries its time.
        SigV4Auth(credentials.get_frozen_credentials(), SERVICE, region).add_auth(signed)
        return {name: str(value) for name, value in signed.headers.items()}


def _parse(model: type[_Model], body: bytes) -> _Model:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise StatusApiError(200, "unexpected_answer", f"the answer is not a {model.__name__}: {exc}") from None


def _error(status: int, body: bytes) -> StatusApiError:
    code, message = f"http_{status}", body.decode("utf-8", "replace")[:200]
    try:
        error = json.loads(body)["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        pass
    kind = MessageNotFoundError if status == 404 and code == "not_found" else StatusApiError
    return kind(status, code, message)


def _iso(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("since needs a time zone (e.g. datetime.now(UTC)): a naive time is ambiguous")
    return value.isoformat()


def _backoff(attempt: int, retry_after: str | None) -> float:
    """Seconds before the next attempt: the server's Retry-After when it gives one, else jittered exponential."""
    if retry_after and retry_after.isdigit():
        return min(float(retry_after), 30.0)
    return float(random.uniform(0, min(4.0, 0.25 * 2**attempt)))
