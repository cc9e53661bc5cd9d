"""AWS Lambda adapter: LaneSwitch, one event source mapping turned on and off."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import as_transient


class EventSourceMappingSwitch:
    """Enables and disables one event source mapping, found by its UUID."""

    def __init__(self, client: Any, uuid: str) -> None:
        self._client = client
        self.uuid = uuid

    def state(self) -> str:
        """The mapping's state (Enabled, Disabled, Enabling, Disabling, Updating...)."""
        try:
            return str(self._client.get_event_source_mapping(UUID=self.uuid)["State"])
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "get_event_source_mapping") from exc

    def set_enabled(self, enabled: bool) -> str:
        """Enable or disable the mapping; a mapping in the middle of another change is retried (TransientError)."""
        try:
            response = self._client.update_event_source_mapping(UUID=self.uuid, Enabled=enabled)
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "update_event_source_mapping") from exc
        return str(response.get("State", ""))
