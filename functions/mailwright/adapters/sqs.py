"""Amazon SQS adapter: RetryScheduler."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)


class SqsRetryScheduler:
    """Backs failed records off by raising their visibility timeout, ten per call."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def delay(self, receipts: Sequence[tuple[str, int]]) -> None:
        """Make each message visible again after its delay."""
        for start in range(0, len(receipts), 10):
            chunk = receipts[start : start + 10]
            response = self._client.change_message_visibility_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                    for i, (handle, seconds) in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                logger.warning("could not delay a retry", extra={"code": failure.get("Code")})
