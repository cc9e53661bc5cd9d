"""Adapters of the dead-letter function: the failure in the message log (DynamoDB) and the parked queues (SQS)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import as_transient, error_code
from mailwright.constants import (
    MESSAGE_LOG_REQUEST_SK,
    STATUS_FAILED,
    STATUS_REJECTED,
    Keys,
)
from mailwright.dead_letters import REASON_CODE, DeadLetter, Failure

# Statuses a failure may replace: none yet, a rejection (whose re-evaluation failed), or an earlier failure.
REPLACEABLE_STATUSES = (STATUS_REJECTED, STATUS_FAILED)


class DynamoFailureLog:
    """FailureLog over the messages table: one conditional UpdateItem on the request item per dead letter.

    The item is created when the request never got one (its lane, template,
    masked recipient and metadata from the message body); the history entry is
    appended and the failure's key added to `event_keys` only if the key is not
    there yet. `status` becomes `failed` unless the item holds a final outcome
    (then only the history entry is added: a second UpdateItem).
    """

    def __init__(self, client: Any, table: str, *, ttl_days: int) -> None:
        self._client = client
        self._table = table
        self._ttl_seconds = ttl_days * 86400

    def record_failure(self, failure: Failure) -> bool:
        """Append the failure once per key; False when this key was recorded before."""
        recorded = self._update(failure, set_status=True)
        if recorded is None:  # the item holds a final outcome: keep it, add the entry only
            recorded = self._update(failure, set_status=False)
        return bool(recorded)

    def _update(self, failure: Failure, *, set_status: bool) -> bool | None:
        entry: dict[str, Any] = {
            "status": {"S": STATUS_FAILED},
            "at": {"N": f"{failure.at:.3f}"},
            "reason_code": {"S": REASON_CODE},
            "reason": {"S": failure.reason},
            "dead_letter": {"S": failure.key},
        }
        names = {"#h": "history", "#keys": "event_keys", "#lane": "lane", "#ttl": Keys.TTL}
        values: dict[str, Any] = {
            ":empty": {"L": []},
            ":entry": {"L": [{"M": entry}]},
            ":key_list": {"L": [{"S": failure.key}]},
            ":key": {"S": failure.key},
            ":lane": {"S": failure.lane},
            ":ttl": {"N": str(int(failure.at + self._ttl_seconds))},
        }
        assignments = [
            "#h = list_append(if_not_exists(#h, :empty), :entry)",
            "#keys = list_append(if_not_exists(#keys, :empty), :key_list)",
            "#lane = if_not_exists(#lane, :lane)",
            "#ttl = if_not_exists(#ttl, :ttl)",
        ]
        optional = {
            "template_id": {"S": failure.template_id} if failure.template_id else None,
            "recipient_masked": {"S": failure.recipient_masked} if failure.recipient_masked else None,
            "metadata": {"M": {k: {"S": v} for k, v in failure.metadata.items()}} if failure.metadata else None,
        }
        for index, (name, value) in enumerate(optional.items()):
            if value is not None:
                names[f"#o{index}"] = name
                values[f":o{index}"] = value
                assignments.append(f"#o{index} = if_not_exists(#o{index}, :o{index})")
        condition = "(attribute_not_exists(#keys) OR NOT contains(#keys, :key))"
        if set_status:
            names.update({"#s": "status", "#rc": "reason_code", "#r": "reason", "#done": "completed_at"})
            values.update(
                {
                    ":failed": {"S": STATUS_FAILED},
                    ":rc": {"S": REASON_CODE},
                    ":r": {"S": failure.reason},
                    ":done": {"N": f"{failure.at:.3f}"},
                    **{f":keep{i}": {"S": status} for i, status in enumerate(REPLACEABLE_STATUSES)},
                }
            )
            assignments += ["#s = :failed", "#rc = :rc", "#r = :r", "#done = :done"]
            keep = ", ".join(f":keep{i}" for i in range(len(REPLACEABLE_STATUSES)))
            condition += f" AND (attribute_not_exists(#s) OR #s IN ({keep}))"
        try:
            self._client.update_item(
                TableName=self._table,
                Key={Keys.MESSAGES_PK: {"S": failure.request_id}, Keys.MESSAGES_SK: {"S": MESSAGE_LOG_REQUEST_SK}},
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise as_transient(exc, "dynamodb") from None
            old: Any = exc.response.get("Item") or {}
            keys = [value.get("S") for value in old.get("event_keys", {}).get("L", [])]
            if failure.key in keys:
                return False
            return None if set_status else False
        except BotoCoreError as exc:
            raise as_transient(exc, "dynamodb") from None
        return True


class SqsParkingLot:
    """ParkingLot over SQS: SendMessage with the message's body and attributes."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def park(self, queue_url: str, letter: DeadLetter, body: str) -> None:
        """Send the message to the parked queue; raise TransientError when SQS refuses."""
        params: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": body}
        attributes = _message_attributes(letter.message_attributes)
        if attributes:
            params["MessageAttributes"] = attributes
        try:
            self._client.send_message(**params)
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "sqs") from None


def _message_attributes(raw: dict[str, Any]) -> dict[str, Any]:
    """Message attributes as SendMessage takes them, from the Lambda event's spelling (stringValue...)."""
    attributes = {}
    for name, value in raw.items():
        if not isinstance(value, dict):
            continue
        data_type = value.get("dataType") or value.get("DataType")
        if not data_type:
            continue
        converted: dict[str, Any] = {"DataType": data_type}
        if value.get("stringValue") is not None or value.get("StringValue") is not None:
            converted["StringValue"] = value.get("stringValue", value.get("StringValue"))
        elif value.get("binaryValue") is not None:
            # The Lambda event carries binary values base64-encoded; SendMessage takes the bytes.
            try:
                converted["BinaryValue"] = base64.b64decode(value["binaryValue"])
            except (binascii.Error, TypeError):
                continue
        elif value.get("BinaryValue") is not None:
            converted["BinaryValue"] = value["BinaryValue"]
        else:
            continue
        attributes[name] = converted
    return attributes
