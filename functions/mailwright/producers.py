"""Producers of the HTTPS API: who an API key belongs to.

API Gateway checks an API key (and its usage plan's rate, burst and quota)
before the function runs, and passes the key's id in the request context
(`identity.apiKeyId`). The function maps that id to a producer through a
`ProducerDirectory`: one DynamoDB item per key, written by `mailwright
producers add|rotate` before the key is attached to its usage plan, so a
key API Gateway admits always has its producer. The key's value is never
stored: API Gateway holds it, the CLI shows it once.

A rotated key keeps working until `retires_at`, when an EventBridge
Scheduler one-time schedule deletes it (and the next `producers` command,
if the schedule could not); the directory also stops naming its producer
then, so a key outliving its time by a few seconds is refused either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ProducerKey:
    """One API key of a producer: its id (never its value), when it was made, and when a rotation retires it."""

    api_key_id: str
    producer: str
    created_at: float = 0.0
    retires_at: float | None = None

    def active(self, now: float) -> bool:
        """Whether the key still names its producer at `now`."""
        return self.retires_at is None or now < self.retires_at


class ProducerDirectory(Protocol):
    """Finds the producer an API key id belongs to."""

    def key(self, api_key_id: str) -> ProducerKey | None:
        """The key's record, or None when no producer owns it."""
        ...


class NoProducers:
    """A directory that knows no key: every API key is refused (a deployment without producers)."""

    def key(self, api_key_id: str) -> ProducerKey | None:
        """None: no key names a producer."""
        return None
