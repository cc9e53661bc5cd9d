"""Adapters of the webhook sender: endpoint state (DynamoDB), the archive (S3), signing keys (Secrets Manager)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import as_transient
from mailwright.webhooks.ports import STATE_ACTIVE, STATE_SUSPENDED, EndpointState, archive_key
from mailwright.webhooks.signing import Signer, secrets_from_document

# The state table's key: one item per endpoint, named by the endpoint.
STATE_PK = "endpoint"
# How long a container trusts signing keys it read: a rotation reaches every sender within this.
KEY_CACHE_SECONDS = 300.0
_LAST_ERROR_LIMIT = 300


def _number(item: Mapping[str, Any], name: str) -> float | None:
    value = item.get(name, {}).get("N")
    return float(Decimal(value)) if value is not None else None


def _state(name: str, item: Mapping[str, Any] | None) -> EndpointState:
    if not item:
        return EndpointState(name=name)
    failures = _number(item, "failures")
    return EndpointState(
        name=name,
        state=item.get("state", {}).get("S", STATE_ACTIVE),
        suspended_at=_number(item, "suspended_at"),
        suspended_reason=item.get("suspended_reason", {}).get("S", ""),
        failing_since=_number(item, "failing_since"),
        failures=int(failures or 0),
        last_error=item.get("last_error", {}).get("S", ""),
        last_failure_at=_number(item, "last_failure_at"),
        last_success_at=_number(item, "last_success_at"),
    )


class DynamoEndpointStates:
    """EndpointStates over the webhook state table (`endpoint` partition key, one item per endpoint)."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def _key(self, name: str) -> dict[str, Any]:
        return {STATE_PK: {"S": name}}

    def get(self, name: str) -> EndpointState:
        """The endpoint's state (active with no failures when it has no item yet)."""
        try:
            response = self._client.get_item(TableName=self._table, Key=self._key(name), ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        return _state(name, response.get("Item"))

    def _update(self, name: str, expression: str, values: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=self._key(name),
                UpdateExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "dynamodb") from None
        attributes: dict[str, Any] = response.get("Attributes", {})
        return attributes

    def record_failure(self, name: str, *, at: float, error: str) -> EndpointState:
        """One UpdateItem: count the failure, keep the error, and start `failing_since` if it is not set."""
        item = self._update(
            name,
            "SET #since = if_not_exists(#since, :at), #err = :err, #last = :at, "
            "#state = if_not_exists(#state, :active) ADD #failures :one",
            {
                ":at": {"N": f"{at:.3f}"},
                ":err": {"S": error[:_LAST_ERROR_LIMIT] or "failed"},
                ":active": {"S": STATE_ACTIVE},
                ":one": {"N": "1"},
            },
            {
                "#since": "failing_since",
                "#err": "last_error",
                "#last": "last_failure_at",
                "#state": "state",
                "#failures": "failures",
            },
        )
        return _state(name, item)

    def record_success(self, name: str, *, at: float) -> None:
        """Clear the failure count (written only when the endpoint was failing: a success costs no write)."""
        self._update(
            name,
            "SET #ok = :at, #failures = :zero REMOVE #since",
            {":at": {"N": f"{at:.3f}"}, ":zero": {"N": "0"}},
            {"#ok": "last_success_at", "#failures": "failures", "#since": "failing_since"},
        )

    def suspend(self, name: str, *, at: float, reason: str) -> None:
        """Mark the endpoint suspended: its deliveries are archived until it is resumed."""
        self._update(
            name,
            "SET #state = :suspended, #at = :at, #why = :why",
            {":suspended": {"S": STATE_SUSPENDED}, ":at": {"N": f"{at:.3f}"}, ":why": {"S": reason[:500]}},
            {"#state": "state", "#at": "suspended_at", "#why": "suspended_reason"},
        )

    def resume(self, name: str, *, at: float, actor: str) -> None:
        """Mark the endpoint active again, its failure count cleared."""
        self._update(
            name,
            "SET #state = :active, #resumed = :at, #by = :actor, #failures = :zero REMOVE #since, #suspended_at, #why",
            {":active": {"S": STATE_ACTIVE}, ":at": {"N": f"{at:.3f}"}, ":actor": {"S": actor}, ":zero": {"N": "0"}},
            {
                "#state": "state",
                "#resumed": "resumed_at",
                "#by": "resumed_by",
                "#failures": "failures",
                "#since": "failing_since",
                "#suspended_at": "suspended_at",
                "#why": "suspended_reason",
            },
        )

    def record_test(self, name: str, *, webhook_id: str, at: float, result: str) -> None:
        """Keep the last test delivery's result under `last_test`."""
        self._update(
            name,
            "SET #test = :test",
            {
                ":test": {
                    "M": {
                        "webhook_id": {"S": webhook_id},
                        "at": {"N": f"{at:.3f}"},
                        "result": {"S": result[:_LAST_ERROR_LIMIT]},
                    }
                }
            },
            {"#test": "last_test"},
        )


class S3DeliveryArchive:
    """DeliveryArchive in the archive bucket: one JSON object per delivery (the bucket encrypts and expires them)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put(self, endpoint: str, webhook_id: str, record: Mapping[str, Any]) -> None:
        """Store the record; raise TransientError when S3 refuses (the delivery is then retried, not lost)."""
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=archive_key(endpoint, webhook_id),
                Body=json.dumps(record, sort_keys=True).encode("utf-8"),
                ContentType="application/json",
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "s3") from None


class SecretSigningKeys:
    """SigningKeys from Secrets Manager: each endpoint's secret read on first use and kept for a few minutes."""

    def __init__(
        self, client: Any, *, cache_seconds: float = KEY_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._signers: dict[str, tuple[float, Signer]] = {}
        self._lock = threading.Lock()

    def signer(self, secret_arn: str) -> Signer:
        """The endpoint's signer (two keys during a rotation); TransientError when the secret cannot be read."""
        now = self._clock()
        cached = self._signers.get(secret_arn)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        with self._lock:
            try:
                document = self._client.get_secret_value(SecretId=secret_arn)["SecretString"]
            except (ClientError, BotoCoreError) as exc:
                raise as_transient(exc, "secretsmanager") from None
            signer = Signer.from_secrets(secrets_from_document(document))
            self._signers[secret_arn] = (now, signer)
            return signer
