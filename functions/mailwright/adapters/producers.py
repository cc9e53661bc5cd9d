"""DynamoDB adapter: ProducerDirectory over the producers table, cached per container."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import as_transient
from mailwright.constants import Keys
from mailwright.producers import ProducerKey

# A key's producer never changes; its retirement is set once, by a rotation: a minute's cache is safe,
# since API Gateway itself refuses a deleted key. A key found in no item is asked again sooner.
DEFAULT_CACHE_SECONDS = 60.0
DEFAULT_MISS_SECONDS = 5.0


class DynamoProducerDirectory:
    """Reads `api_key_id` items (`producer`, `created_at`, `retires_at`) of the producers table."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        miss_seconds: float = DEFAULT_MISS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._table = table
        self._cache_seconds = cache_seconds
        self._miss_seconds = miss_seconds
        self._clock = clock
        self._cache: dict[str, tuple[ProducerKey | None, float]] = {}
        self._lock = threading.Lock()

    def key(self, api_key_id: str) -> ProducerKey | None:
        """The key's record (cached), or None when the table has none; TransientError when it cannot be read."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(api_key_id)
        if cached is not None and now < cached[1]:
            return cached[0]
        try:
            response = self._client.get_item(
                TableName=self._table,
                Key={Keys.PRODUCERS_PK: {"S": api_key_id}},
                ProjectionExpression="#p, created_at, retires_at",
                ExpressionAttributeNames={"#p": "producer"},
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        found = _key(api_key_id, response.get("Item"))
        with self._lock:
            self._cache[api_key_id] = (found, now + (self._cache_seconds if found else self._miss_seconds))
        return found


def _key(api_key_id: str, item: dict[str, Any] | None) -> ProducerKey | None:
    if not item or "S" not in item.get("producer", {}):
        return None
    retires = item.get("retires_at", {}).get("N")
    return ProducerKey(
        api_key_id=api_key_id,
        producer=item["producer"]["S"],
        created_at=float(item.get("created_at", {}).get("N", 0)),
        retires_at=float(retires) if retires is not None else None,
    )
