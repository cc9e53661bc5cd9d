"""HTTP plumbing of the provider APIs (SendGrid, Mailgun): one urllib3 pool per provider, answers mapped to errors.

| answer                                   | error                                                         |
|------------------------------------------|---------------------------------------------------------------|
| 2xx                                      | none                                                          |
| 401, 403 (a key refused), 404 (no such   | ProviderOutageError, at once: a retry of each email will not   |
| domain or path)                          | heal them, the breaker must                                    |
| 429                                      | ThrottledError                                                |
| 408, 5xx                                 | ProviderOutageError (504: the provider may have taken it)     |
| any other 4xx (400, 413...)              | RejectedError: this message, as written, is refused for good  |
| no connection (refused, DNS, TLS)        | ProviderOutageError                                           |
| timeout or reset after the request went  | ProviderOutageError, `maybe_sent`                             |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from mailwright.errors import ProviderOutageError, RejectedError, ThrottledError, TransientError

T = TypeVar("T")

CONNECT_TIMEOUT_SECONDS = 3.0
# What of an error answer is kept in the error message (it may echo the request: never the whole body).
ERROR_TEXT_LIMIT = 300
# Answers that refuse the key or the account rather than the message.
UNAUTHORIZED = frozenset({401, 403})
NOT_FOUND = 404
_NEVER_SENT = (ConnectTimeoutError, NewConnectionError, NameResolutionError, SSLError)


class ProviderApi:
    """POSTs to one provider's API over a shared connection pool (thread-safe), with no retries of its own."""

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        timeout_seconds: float,
        pool_size: int = 16,
        ca_certs: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        # Retries belong to the queue (with backoff) and to the breaker, not to one call.
        self._pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=pool_size,
            retries=False,
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=timeout_seconds),
            ca_certs=ca_certs,
        )

    def post(self, path: str, *, body: bytes, headers: Mapping[str, str]) -> urllib3.BaseHTTPResponse:
        """POST `body` to `path`; the 2xx response, or the error its status (or the failure) maps to."""
        name = self.name
        try:
            response = self._pool.request("POST", self.base_url + path, body=body, headers=dict(headers))
        except _NEVER_SENT as exc:
            raise ProviderOutageError(f"{name}_unreachable", f"{name}: cannot connect: {type(exc).__name__}") from None
        except (ReadTimeoutError, ProtocolError, HTTPError) as exc:
            # The request went out; the provider may have accepted it before the answer was lost.
            lost = f"{name}: no answer: {type(exc).__name__}"
            raise ProviderOutageError(f"{name}_unreachable", lost, maybe_sent=True) from None
        raise_for_status(name, response.status, response.data)
        return response


def raise_for_status(name: str, status: int, body: bytes = b"") -> None:
    """Raise the error an HTTP status of a provider's send API maps to (see the module docstring)."""
    if 200 <= status < 300:
        return
    text = f"{name}: HTTP {status}: {body[:ERROR_TEXT_LIMIT].decode('utf-8', 'replace')}"
    if status in UNAUTHORIZED:
        raise ProviderOutageError(f"{name}_unauthorized", text, at_once=True)
    if status == NOT_FOUND:
        raise ProviderOutageError(f"{name}_not_found", text, at_once=True)
    if status == 429:
        raise ThrottledError("throttled", text)
    if status == 408 or status >= 500:
        raise ProviderOutageError(f"{name}_failed", text, maybe_sent=status == 504)
    raise RejectedError(f"{name}_rejected", text)


def read_secret(name: str, read: Callable[[], T]) -> T:
    """The provider's secret through `read` (cached after the first success); TransientError if it cannot be read."""
    try:
        return read()
    except Exception as exc:
        why = f"{name}: secret unavailable: {type(exc).__name__}"
        raise TransientError(f"{name}_secret_unavailable", why) from None
