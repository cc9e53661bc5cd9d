"""Amazon CloudWatch adapter: AlarmStates."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import as_transient


class CloudWatchAlarmStates:
    """Reads metric alarms' states with DescribeAlarms."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def states(self, names: Collection[str]) -> dict[str, str]:
        """The state of each named metric alarm that exists (at most 100 names)."""
        if not names:
            return {}
        try:
            response = self._client.describe_alarms(AlarmNames=sorted(names), AlarmTypes=["MetricAlarm"])
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "describe_alarms") from exc
        return {alarm["AlarmName"]: alarm["StateValue"] for alarm in response.get("MetricAlarms", [])}
