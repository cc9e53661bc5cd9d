"""Webhook endpoints as operators see them: list, test, resume, replay, rotate (`mailwright webhooks ...`).

Works on the deployed stack (its outputs name each endpoint's queue, DLQ and
secret, the state table and the archive) and on the local stack alike.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from mailwright.adapters.webhooks import DynamoEndpointStates
from mailwright.constants import OUTCOME_EVENT_SOURCE
from mailwright.outcome_events import iso_time
from mailwright.webhooks.ports import ARCHIVE_PREFIX, EndpointState
from mailwright.webhooks.service import WEBHOOK_TEST_TYPE
from mailwright.webhooks.signing import new_secret, secret_document, secrets_from_document
from mailwright_tools.dlq import redrive
from mailwright_tools.queues import queue_depth
from mailwright_tools.target import Target


class WebhookAdminError(Exception):
    """An endpoint the stack does not have, or one in a state the command cannot act on."""


@dataclass(frozen=True)
class EndpointView:
    """One endpoint: where, what, its state, and what waits for it."""

    name: str
    url: str
    detail_types: list[str]
    state: EndpointState
    queued: int
    dead_letters: int
    archived: int
    last_test: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (times as ISO 8601 too)."""
        state = self.state.to_json()
        for key in ("suspended_at", "failing_since", "last_failure_at", "last_success_at"):
            if state.get(key):
                state[key + "_iso"] = iso_time(float(state[key]))
        return {
            "name": self.name,
            "url": self.url,
            "detail_types": self.detail_types,
            "state": state,
            "queued": self.queued,
            "dead_letters": self.dead_letters,
            "archived": self.archived,
            "last_test": self.last_test,
        }


@dataclass
class ReplayResult:
    """What a replay sent back to the endpoint's queue."""

    archived: int = 0
    dead_letters: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class WebhookAdmin:
    """The webhook commands' operations on one stack."""

    def __init__(self, target: Target, session: Any | None = None) -> None:
        self.target = target
        self._session = session or target.session()
        self._sqs = self._session.client("sqs")
        self._dynamodb = self._session.client("dynamodb")
        self._s3 = self._session.client("s3")
        self.states = DynamoEndpointStates(self._dynamodb, target.webhook_state_table)

    def endpoint(self, name: str) -> dict[str, Any]:
        """The endpoint's description; WebhookAdminError naming the known ones."""
        endpoint = self.target.webhooks.get(name)
        if endpoint is None:
            known = ", ".join(sorted(self.target.webhooks)) or "none (`webhooks` in cdk.json; local up --webhook)"
            raise WebhookAdminError(f"no webhook endpoint {name!r}; endpoints: {known}")
        return endpoint

    def endpoints(self) -> list[EndpointView]:
        """Every endpoint with its state and what waits in its queue, DLQ and archive."""
        return [self.view(name) for name in sorted(self.target.webhooks)]

    def view(self, name: str) -> EndpointView:
        """One endpoint's view."""
        endpoint = self.endpoint(name)
        item = self._dynamodb.get_item(
            TableName=self.target.webhook_state_table, Key={"endpoint": {"S": name}}, ConsistentRead=True
        ).get("Item", {})
        test = item.get("last_test", {}).get("M")
        return EndpointView(
            name=name,
            url=str(endpoint.get("url", "")),
            detail_types=list(endpoint.get("detail_types", [])),
            state=self.states.get(name),
            queued=queue_depth(self._sqs, endpoint["queue_url"]),
            dead_letters=queue_depth(self._sqs, endpoint["dlq_url"]),
            archived=len(self._archived_keys(name)),
            last_test={k: next(iter(v.values())) for k, v in test.items()} if test else None,
        )

    def _archived_keys(self, name: str) -> list[str]:
        keys: list[str] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.target.webhook_archive_bucket, Prefix=f"{ARCHIVE_PREFIX}{name}/"):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def send_test(self, name: str) -> str:
        """Queue a signed test delivery (detail-type WebhookTest) for the endpoint; its webhook-id."""
        endpoint = self.endpoint(name)
        webhook_id = uuid.uuid4().hex
        now = time.time()
        event = {
            "version": "0",
            "id": webhook_id,
            "detail-type": WEBHOOK_TEST_TYPE,
            "source": OUTCOME_EVENT_SOURCE,
            "time": iso_time(now),
            "detail": {"event_id": webhook_id, "test": True, "occurred_at": iso_time(now), "endpoint": name},
        }
        self._sqs.send_message(QueueUrl=endpoint["queue_url"], MessageBody=json.dumps(event))
        return webhook_id

    def test_result(self, name: str, webhook_id: str) -> str | None:
        """The recorded result of that test delivery (`delivered`, or why not), None while it is pending."""
        test = self.view(name).last_test
        if test and test.get("webhook_id") == webhook_id:
            return str(test.get("result"))
        return None

    def resume(self, name: str, *, actor: str) -> EndpointState:
        """Mark the endpoint active again; its state afterwards."""
        self.endpoint(name)
        self.states.resume(name, at=time.time(), actor=actor)
        return self.states.get(name)

    def replay(self, name: str) -> ReplayResult:
        """Send every archived delivery and everything in the DLQ back to the endpoint's queue (active only)."""
        endpoint = self.endpoint(name)
        state = self.states.get(name)
        if state.suspended:
            raise WebhookAdminError(
                f"endpoint {name} is suspended ({state.suspended_reason}); `mailwright webhooks resume {name}` first"
            )
        result = ReplayResult()
        for key in self._archived_keys(name):
            try:
                stored = self._s3.get_object(Bucket=self.target.webhook_archive_bucket, Key=key)
                record = json.loads(stored["Body"].read())
                self._sqs.send_message(QueueUrl=endpoint["queue_url"], MessageBody=record["body"])
            except Exception as exc:  # one bad object stays archived; the others go on
                result.failed += 1
                result.errors.append(f"{key}: {type(exc).__name__}: {exc}")
                continue
            # Deleted only once queued again: a crash in between replays it twice (same webhook-id), never loses it.
            self._s3.delete_object(Bucket=self.target.webhook_archive_bucket, Key=key)
            result.archived += 1
        moved = redrive(self._sqs, endpoint["dlq_url"], endpoint["queue_url"], use_move_task=not self.target.local)
        result.dead_letters = moved.moved
        result.failed += moved.failed
        result.errors += moved.errors
        return result

    def rotate(self, name: str, *, finish: bool) -> list[str]:
        """Start a rotation (a new secret signs beside the current one) or finish it (the old one is dropped).

        Returns the secrets valid afterwards, the current one first.
        """
        endpoint = self.endpoint(name)
        client = self._session.client("secretsmanager")
        current = secrets_from_document(client.get_secret_value(SecretId=endpoint["secret_arn"])["SecretString"])
        if finish:
            if len(current) == 1:
                raise WebhookAdminError(f"endpoint {name} has one secret: no rotation to finish")
            document = secret_document(current[0])
        else:
            if len(current) > 1:
                raise WebhookAdminError(
                    f"endpoint {name} is already rotating; `mailwright webhooks rotate {name} --finish` first"
                )
            document = secret_document(new_secret(), current[0])
        client.put_secret_value(SecretId=endpoint["secret_arn"], SecretString=document)
        return secrets_from_document(document)
