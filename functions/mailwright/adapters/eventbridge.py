"""Amazon EventBridge and DynamoDB Streams adapters for the events publisher: the EventBus port and stream records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import error_code
from mailwright.outcome_events import PublishedEvent
from mailwright.publishing import ChangeRecord

_deserializer = TypeDeserializer()


class EventBridgeBus:
    """EventBus over PutEvents on one bus: a call per ten events, each entry's error code returned."""

    def __init__(self, client: Any, bus_name: str) -> None:
        self._client = client
        self._bus_name = bus_name

    def put(self, events: Sequence[PublishedEvent]) -> list[str | None]:
        """Put the events; None for each accepted entry, else its ErrorCode (every entry's, when the call failed)."""
        if not events:
            return []
        try:
            response = self._client.put_events(Entries=[event.entry(self._bus_name) for event in events])
        except ClientError as exc:
            return [error_code(exc) or "ClientError"] * len(events)
        except BotoCoreError as exc:
            return [type(exc).__name__] * len(events)
        entries = response.get("Entries", [])
        codes: list[str | None] = [entry.get("ErrorCode") or None for entry in entries]
        # PutEvents answers one entry per event, in order; anything else counts as refused.
        return codes if len(codes) == len(events) else ["MissingEntry"] * len(events)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    return value


def plain_image(image: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A stream image (DynamoDB JSON) as plain values: numbers as int or float, sets as sorted lists."""
    if image is None:
        return None
    return {str(key): _plain(_deserializer.deserialize(value)) for key, value in image.items()}


def change_records(event: Mapping[str, Any]) -> list[ChangeRecord]:
    """The records of a DynamoDB stream event (NEW_AND_OLD_IMAGES), as the publisher takes them."""
    records = []
    for record in event.get("Records", []):
        stream = record.get("dynamodb", {})
        records.append(
            ChangeRecord(
                sequence_number=str(stream.get("SequenceNumber", "")),
                old=plain_image(stream.get("OldImage")),
                new=plain_image(stream.get("NewImage")),
            )
        )
    return records
