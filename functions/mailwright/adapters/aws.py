"""Shared boto3 plumbing: client configuration and error classification."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mailwright.errors import ThrottledError, TransientError

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "LimitExceededException",
    }
)


def client_config(*, max_attempts: int, pool: int = 32, read_timeout: float = 10.0) -> Config:
    """botocore's standard retry mode, with a connection pool sized for concurrent sends."""
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        max_pool_connections=pool,
        connect_timeout=3,
        read_timeout=read_timeout,
        tcp_keepalive=True,
    )


def error_code(exc: ClientError) -> str:
    """The service's error code of a ClientError."""
    error: Any = exc.response.get("Error", {})
    return str(error.get("Code", ""))


def as_transient(exc: Exception, what: str) -> TransientError:
    """Wrap a boto error in the TransientError the domain understands."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in THROTTLING_CODES:
            return ThrottledError("throttled", f"{what}: {code}")
        return TransientError(f"{what}_failed", f"{what}: {code}: {exc}")
    if isinstance(exc, BotoCoreError):
        return TransientError(f"{what}_unreachable", f"{what}: {exc}")
    return TransientError(f"{what}_failed", f"{what}: {exc}")


class AwsSession(Protocol):
    """What the wiring asks of a session: a boto3 Session (tests, the local stack) or a `BotocoreSession`."""

    # `Any`: boto3-stubs' Session.client is overloaded on the service's literal name.
    def client(self, service_name: Any, *, region_name: str | None = None, config: Config | None = None) -> Any:
        """A low-level client of `service_name`."""
        ...


class BotocoreSession:
    """boto3's `Session.client` on botocore alone, for the Lambda functions.

    The functions use low-level clients only, which botocore builds; importing boto3 also imports
    s3transfer, concurrent.futures' process pool and multiprocessing, a tenth of a send worker's cold start.
    Credentials, region, retries and AWS_ENDPOINT_URL are botocore's either way.
    """

    def __init__(self) -> None:
        import botocore.session  # the session module loads most of botocore: when a session is made

        self._session = botocore.session.get_session()

    def client(self, service_name: str, *, region_name: str | None = None, config: Config | None = None) -> Any:
        """A low-level client; the clients of one session share its loader, so each data file is read once."""
        return self._session.create_client(service_name, region_name=region_name, config=config)


class LazyClient:
    """A client built on its first use, for one a batch may never call (the queue's, for retries and deferrals).

    Building a client loads its service model and endpoint rules (tens of milliseconds of a cold start).
    """

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build: Callable[[], Any] | None = build
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            with self._lock:
                if self._build is not None:
                    self._client = self._build()
                    self._build = None
        return getattr(self._client, name)
