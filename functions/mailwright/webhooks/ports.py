"""Ports of the webhook sender, and the values that cross them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mailwright.webhooks.signing import Signer
from mailwright.webhooks.transport import Answer, Target

STATE_ACTIVE = "active"
STATE_SUSPENDED = "suspended"
# Where archived deliveries live in the archive bucket: deliveries/<endpoint>/<webhook-id>.json
ARCHIVE_PREFIX = "deliveries/"


def archive_key(endpoint: str, webhook_id: str) -> str:
    """The archive's object key of one delivery (one per event and endpoint: archiving again overwrites)."""
    return f"{ARCHIVE_PREFIX}{endpoint}/{webhook_id}.json"


@dataclass(frozen=True)
class EndpointState:
    """What the state table knows of an endpoint: suspended or not, and since when it fails."""

    name: str
    state: str = STATE_ACTIVE
    suspended_at: float | None = None
    suspended_reason: str = ""
    # The first failed attempt since the last success (None: the last attempt succeeded).
    failing_since: float | None = None
    failures: int = 0
    last_error: str = ""
    last_failure_at: float | None = None
    last_success_at: float | None = None

    @property
    def suspended(self) -> bool:
        """Whether deliveries are archived instead of attempted."""
        return self.state == STATE_SUSPENDED

    @property
    def failing(self) -> bool:
        """Whether an attempt failed since the last success."""
        return self.failing_since is not None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return dict(self.__dict__)


class EndpointStates(Protocol):
    """The webhook state table: one item per endpoint."""

    def get(self, name: str) -> EndpointState: ...

    def record_failure(self, name: str, *, at: float, error: str) -> EndpointState:
        """Count a failed attempt; the state afterwards (`failing_since` is set by the first failure)."""
        ...

    def record_success(self, name: str, *, at: float) -> None:
        """Clear the failure count after a delivery got through."""
        ...

    def suspend(self, name: str, *, at: float, reason: str) -> None: ...

    def resume(self, name: str, *, at: float, actor: str) -> None: ...

    def record_test(self, name: str, *, webhook_id: str, at: float, result: str) -> None:
        """Keep the result of a `mailwright webhooks test` delivery, for the CLI to read."""
        ...


class DeliveryArchive(Protocol):
    """Where deliveries that will not be attempted again are kept, replayable (S3, encrypted, private)."""

    def put(self, endpoint: str, webhook_id: str, record: Mapping[str, Any]) -> None: ...


class SigningKeys(Protocol):
    """Each endpoint's signer, from its secret (read by the sender only)."""

    def signer(self, secret_arn: str) -> Signer: ...


class Transport(Protocol):
    """Checks a URL (server-side request forgery) and posts to it."""

    def resolve(self, url: str) -> Target: ...

    def post(
        self, target: Target, headers: Mapping[str, str], body: bytes, *, connect_timeout: float, read_timeout: float
    ) -> Answer: ...
