"""The Scheduler port over Amazon EventBridge Scheduler: one-time schedules that put a request on its lane queue.

Each schedule is `at(<UTC time>)`, named after the request id (a retry gets
ConflictException and creates nothing), deleted by EventBridge once it has run
(`ActionAfterCompletion: DELETE`), encrypted with the stack's customer managed
key (it holds the request, recipient address included), and its target is the
lane queue with the request's body as it was published, a retry policy and a
dead-letter queue for what EventBridge could not deliver.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import as_transient, error_code

# EventBridge retries a failed delivery to SQS for up to this long, this many times, then dead-letters it.
RETRY_MAX_AGE_SECONDS = 86400
RETRY_MAX_ATTEMPTS = 185


def at_expression(epoch: float) -> str:
    """EventBridge Scheduler's one-time expression for a time: `at(2026-12-24T08:00:00)` (UTC, whole seconds)."""
    moment = datetime.fromtimestamp(int(epoch + 0.999), UTC)  # never earlier than asked
    return f"at({moment.strftime('%Y-%m-%dT%H:%M:%S')})"


@dataclass(frozen=True)
class ScheduleTarget:
    """Where a lane's schedules go and how: the group, the role, the lane queue, its DLQ and the schedules' key."""

    group: str
    role_arn: str
    queue_arn: str
    dead_letter_arn: str
    kms_key_arn: str


class EventBridgeScheduler:
    """Scheduler over the `scheduler` client, in one schedule group; `target` is needed only to create.

    The client is made on first use: most batches schedule nothing, so a worker's cold start does not pay for it.
    """

    def __init__(self, client: Callable[[], Any], *, group: str, target: ScheduleTarget | None = None) -> None:
        self._factory = client
        self._made: Any = None
        self._lock = threading.Lock()
        self._group = group
        self._target = target

    @property
    def _client(self) -> Any:
        with self._lock:
            if self._made is None:
                self._made = self._factory()
            return self._made

    def create(self, name: str, *, at: float, body: str) -> bool:
        """Create the schedule; False when it exists already."""
        if self._target is None:
            raise ValueError("this scheduler has no target: it can move and delete schedules only")
        target = self._target
        try:
            self._client.create_schedule(
                Name=name,
                GroupName=self._group,
                ScheduleExpression=at_expression(at),
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                KmsKeyArn=target.kms_key_arn,
                State="ENABLED",
                Target={
                    "Arn": target.queue_arn,
                    "RoleArn": target.role_arn,
                    "Input": body,
                    "RetryPolicy": {
                        "MaximumEventAgeInSeconds": RETRY_MAX_AGE_SECONDS,
                        "MaximumRetryAttempts": RETRY_MAX_ATTEMPTS,
                    },
                    "DeadLetterConfig": {"Arn": target.dead_letter_arn},
                },
            )
        except ClientError as exc:
            if error_code(exc) == "ConflictException":
                return False
            raise as_transient(exc, "scheduler") from None
        except BotoCoreError as exc:
            raise as_transient(exc, "scheduler") from None
        return True

    def update(self, name: str, *, at: float) -> bool:
        """Move the schedule to `at`, keeping its target; False when there is none."""
        try:
            current = self._client.get_schedule(Name=name, GroupName=self._group)
            request = {
                "Name": name,
                "GroupName": self._group,
                "ScheduleExpression": at_expression(at),
                "ScheduleExpressionTimezone": "UTC",
                "FlexibleTimeWindow": current.get("FlexibleTimeWindow") or {"Mode": "OFF"},
                "Target": current["Target"],
                "ActionAfterCompletion": current.get("ActionAfterCompletion") or "DELETE",
                "State": "ENABLED",
            }
            if current.get("KmsKeyArn"):
                request["KmsKeyArn"] = current["KmsKeyArn"]
            self._client.update_schedule(**request)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise as_transient(exc, "scheduler") from None
        except BotoCoreError as exc:
            raise as_transient(exc, "scheduler") from None
        return True

    def delete(self, name: str) -> bool:
        """Delete the schedule; False when there is none."""
        try:
            self._client.delete_schedule(Name=name, GroupName=self._group)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise as_transient(exc, "scheduler") from None
        except BotoCoreError as exc:
            raise as_transient(exc, "scheduler") from None
        return True
