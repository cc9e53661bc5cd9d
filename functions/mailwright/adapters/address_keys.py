"""Where the address keyring comes from: Secrets Manager for the keys, the suppression table for the marker.

The marker (`meta#address-hashes` in the suppression table) records the
oldest key version items may still be stored under. No marker means 0: legacy
unkeyed hashes may exist, so lookups try them too, until `mailwright migrate
address-hashes` has re-keyed every stored item and moved the marker up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import as_transient
from mailwright.address_keys import LEGACY_VERSION, AddressHasher, AddressKeyring, KeyringError
from mailwright.constants import ADDRESS_KEY_MARKER, Keys
from mailwright.errors import TransientError

logger = logging.getLogger(__name__)

MARKER_KEY = ADDRESS_KEY_MARKER
# Workers pick up a rotated key or a finished migration within this many seconds.
DEFAULT_REFRESH_SECONDS = 300


class DynamoAddressKeyMarker:
    """Reads and moves the marker item: from which key version on stored items may be found."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def readable_from(self) -> int:
        """The oldest key version items may be stored under (0 without a marker)."""
        try:
            response = self._client.get_item(
                TableName=self._table, Key={Keys.SUPPRESSION_PK: {"S": MARKER_KEY}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        item = response.get("Item") or {}
        return int(item.get("readable_from", {}).get("N", LEGACY_VERSION))

    def set_readable_from(self, version: int, *, at: float, actor: str) -> None:
        """Record that every stored item now uses key version `version` or newer."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    Keys.SUPPRESSION_PK: {"S": MARKER_KEY},
                    "readable_from": {"N": str(version)},
                    "updated_at": {"N": f"{at:.3f}"},
                    "actor": {"S": actor},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None


class SecretAddressKeys:
    """AddressKeySource over the keyring secret and the marker, each re-read every `refresh_seconds`.

    A failed first read raises TransientError (the batch is retried); a failed
    refresh keeps the hasher already known.
    """

    def __init__(
        self,
        secrets_client: Any,
        secret_arn: str,
        marker: DynamoAddressKeyMarker,
        *,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secrets = secrets_client
        self._secret_arn = secret_arn
        self._marker = marker
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._hasher: AddressHasher | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def hasher(self) -> AddressHasher:
        """The current hasher, read on first use and refreshed when due."""
        with self._lock:
            if self._hasher is None or self._clock() - self._loaded_at >= self._refresh_seconds:
                self._refresh()
            assert self._hasher is not None
            return self._hasher

    def _refresh(self) -> None:
        failure: TransientError
        try:
            text = self._secrets.get_secret_value(SecretId=self._secret_arn)["SecretString"]
            hasher = AddressHasher(AddressKeyring.from_json(text), readable_from=self._marker.readable_from())
        except KeyringError as exc:
            failure = TransientError("address_keyring_invalid", str(exc))
        except TransientError as exc:
            failure = exc
        except (ClientError, BotoCoreError) as exc:
            failure = as_transient(exc, "secretsmanager")
        else:
            self._hasher, self._loaded_at = hasher, self._clock()
            return
        if self._hasher is None:
            raise failure
        logger.warning(
            "could not refresh the address keyring; using the one read before", extra={"error": str(failure)}
        )
        self._loaded_at = self._clock()
