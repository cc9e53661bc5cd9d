"""Shared boto3 plumbing: client configuration and error classification."""

from __future__ import annotations

from typing import Any

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
