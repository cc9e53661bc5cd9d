"""Run the send worker's Lambda handler in-process against moto, with real SQS semantics."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from infra.config import MailwrightConfig
from mailwright.adapters.address_keys import DynamoAddressKeyMarker, SecretAddressKeys
from mailwright.adapters.dynamodb import DynamoMessageLog
from mailwright.address_keys import AddressHasher
from mailwright.constants import Env
from mailwright.handlers import send_worker
from mailwright.settings import WorkerSettings
from mailwright.wiring import build_send_service
from mailwright_tools.events import FakeLambdaContext, sqs_event
from mailwright_tools.fakes import FakeAccountReader
from mailwright_tools.provision import StackResources

REPO = Path(__file__).resolve().parents[2]


Fault = Callable[[str, dict[str, Any]], Any]


def address_hasher(secret_id: str, suppression_table: str) -> AddressHasher:
    """The hasher the functions use: the keyring in (moto's) Secrets Manager, the marker in the suppression table."""
    marker = DynamoAddressKeyMarker(boto3.client("dynamodb"), suppression_table)
    return SecretAddressKeys(boto3.client("secretsmanager"), secret_id, marker).hasher()


def service_error(code: str, status: int = 400, message: str = "injected by the test") -> Any:
    """What a before-call hook returns to make botocore raise this service error."""
    response = AWSResponse("https://aws.invalid", status, {}, None)
    return response, {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}


@dataclass
class SesCall:
    """The parameters of one SESv2 SendEmail call, as the worker made it."""

    params: dict[str, Any]

    @property
    def to(self) -> list[str]:
        return list(self.params["Destination"]["ToAddresses"])

    @property
    def subject(self) -> str:
        return str(self.params["Content"]["Simple"]["Subject"]["Data"])

    @property
    def html(self) -> str:
        return str(self.params["Content"]["Simple"]["Body"]["Html"]["Data"])

    @property
    def text(self) -> str:
        return str(self.params["Content"]["Simple"]["Body"]["Text"]["Data"])

    @property
    def headers(self) -> dict[str, str]:
        return {h["Name"]: h["Value"] for h in self.params["Content"]["Simple"].get("Headers", [])}

    @property
    def tags(self) -> dict[str, str]:
        return {t["Name"]: t["Value"] for t in self.params.get("EmailTags", [])}


@dataclass
class WorkerHarness:
    """One lane's worker wired to moto, with every SES call it makes captured."""

    config: MailwrightConfig
    resources: StackResources
    lane: str
    monkeypatch: pytest.MonkeyPatch
    ses_calls: list[SesCall] = field(default_factory=list)
    api_calls: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        env = self.resources.worker_environment(self.config, self.lane)
        # Tests measure outcomes, not pacing: a high ceiling, and an account that allows it (moto has no
        # GetAccount); every take still goes through the shared bucket in DynamoDB.
        env[Env.SEND_RATE_PER_WORKER] = "1000"
        env[Env.SES_MAX_SEND_RATE] = "1000"
        for key, value in env.items():
            self.monkeypatch.setenv(key, value)
        self.session = boto3.session.Session()
        self.session.events.register("provide-client-params.sesv2.SendEmail", self._capture)
        # Clients copy their session's hooks when created, so one dispatcher is registered
        # now and tests add faults to it later.
        self.session.events.register("before-call", self._before_call)
        self.service = build_send_service(
            WorkerSettings.from_env(), session=self.session, account_reader=FakeAccountReader(1000.0)
        )
        # The handler builds its service from the environment on first use; hand it ours,
        # whose session captures SES calls (moto keeps neither headers nor tags).
        self.monkeypatch.setattr(send_worker, "service", lambda: self.service)
        self.sqs = boto3.client("sqs")
        self.dynamodb = boto3.client("dynamodb")
        self.queue_url = self.resources.queues[self.lane]
        self.log = DynamoMessageLog(self.dynamodb, self.resources.messages_table, ttl_days=1)
        self.failed_receipts: list[str] = []

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        operation = f"{model.service_model.service_name}.{model.name}"
        self.api_calls.append(operation)
        for fault in list(self.faults):
            answer = fault(operation, params)
            if answer is not None:
                return answer
        return None

    def _capture(self, params: dict[str, Any], **_: Any) -> None:
        self.ses_calls.append(SesCall(params=json.loads(json.dumps(params))))

    def publish(self, *requests: dict[str, Any] | str) -> None:
        """Put requests on the lane queue, as a producer would."""
        for request in requests:
            body = request if isinstance(request, str) else json.dumps(request)
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)

    def run_batch(self, max_messages: int = 10) -> dict[str, Any]:
        """Receive one batch like the event source mapping does and invoke the handler; returns its response."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return {"batchItemFailures": [], "received": 0}
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        response: dict[str, Any] = send_worker.handler(sqs_event(messages, queue_arn=arn), FakeLambdaContext())
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        self.failed_receipts = [m["ReceiptHandle"] for m in messages if m["MessageId"] in failed]
        # What the event source mapping does with a partial batch response: delete the rest.
        done = [m for m in messages if m["MessageId"] not in failed]
        for message in done:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return {**response, "received": len(messages)}

    def logged(self, request_id: str) -> dict[str, Any] | None:
        """The message-log entry of a request."""
        return self.log.get(request_id)

    def all_logged(self) -> list[dict[str, Any]]:
        """Every request item in the message log, as plain values."""
        items = self.dynamodb.scan(TableName=self.resources.messages_table)["Items"]
        return [{k: next(iter(v.values())) for k, v in item.items()} for item in items if item["sk"]["S"] == "request"]

    def end_backoff(self) -> None:
        """Skip the backoff of the last batch's failed records: make them visible now."""
        for handle in self.failed_receipts:
            self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
