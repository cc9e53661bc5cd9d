"""An SQS client for the submission tests: SendMessageBatch that keeps what it took and refuses on demand."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import EndpointConnectionError

from mailwright.sdk import Publisher
from mailwright.submission import SubmissionService, TemplateLanes
from mailwright_tools.fakes import FakeTemplateSource

QUEUES = {lane: f"https://sqs.test/{lane}" for lane in ("critical", "standard", "bulk")}

# (call number from 1, entry) -> refuse it?
RefuseRule = Callable[[int, dict[str, Any]], bool]


class FakeSqs:
    """SendMessageBatch per queue URL: entries `refuse` picks are refused (InternalError); `down` fails every call."""

    def __init__(self, refuse: RefuseRule | None = None) -> None:
        self.calls: list[tuple[str, list[dict[str, Any]]]] = []
        self.queued: dict[str, list[dict[str, Any]]] = {}
        self.refuse: RefuseRule = refuse or (lambda call, entry: False)
        self.down = False

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append((QueueUrl, Entries))
        if self.down:
            raise EndpointConnectionError(endpoint_url=QueueUrl)
        call = len(self.calls)
        failed = [entry for entry in Entries if self.refuse(call, entry)]
        for entry in Entries:
            if entry not in failed:
                self.queued.setdefault(QueueUrl.rsplit("/", 1)[-1], []).append(json.loads(entry["MessageBody"]))
        return {
            "Successful": [{"Id": e["Id"]} for e in Entries if e not in failed],
            "Failed": [
                {"Id": e["Id"], "Code": "InternalError", "Message": "try again", "SenderFault": False} for e in failed
            ],
        }

    def lane(self, lane: str) -> list[dict[str, Any]]:
        """The requests queued on a lane, in order."""
        return self.queued.get(lane, [])


def submission_service(sqs: FakeSqs, templates: FakeTemplateSource | None = None) -> SubmissionService:
    """A SubmissionService over `sqs` and the shipped templates, retrying as deployed but without pauses."""
    lanes = TemplateLanes(templates or FakeTemplateSource.from_directory())
    publisher = Publisher(queue_urls=QUEUES, sqs_client=sqs, priority_of=lanes, attempts=3)
    return SubmissionService(publisher)
