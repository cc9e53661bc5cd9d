"""The mailwright stack: builds each concern's construct, then wires and grants."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.bundling import templates_source, worker_code
from infra.config import MailwrightConfig, WorkerResources
from infra.email import EmailSending
from infra.ingest import Ingest
from infra.lanes import LaneQueues
from infra.storage import Storage
from infra.templates_bucket import TemplatesBucket
from infra.unsubscribe import UnsubscribeSecret
from infra.workers import SendWorkers
from mailwright.constants import Outputs


class MailwrightStack(Stack):
    """Everything one mailwright deployment needs, in one environment-agnostic stack."""

    def __init__(self, scope: Construct, construct_id: str, *, config: MailwrightConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config

        self.lanes = LaneQueues(self, "Lanes", lanes=config.lanes)
        self.storage = Storage(self, "Storage")
        self.templates = TemplatesBucket(self, "Templates", source=templates_source())
        self.email = EmailSending(self, "Email", domain=config.domain, sender=config.sender)
        self.unsubscribe = UnsubscribeSecret(self, "Unsubscribe")
        self.ingest = Ingest(self, "Ingest", bus_name=config.stack_name, queues=self.lanes.queues)
        self.workers = SendWorkers(
            self,
            "Workers",
            config=config,
            # One asset for all lanes: bundled once, uploaded once.
            code=worker_code(),
            queues=self.lanes.queues,
            resources=WorkerResources(
                templates_bucket=self.templates.bucket.bucket_name,
                preferences_table=self.storage.preferences.table_name,
                suppression_table=self.storage.suppression.table_name,
                idempotency_table=self.storage.idempotency.table_name,
                messages_table=self.storage.messages.table_name,
                configuration_set=self.email.configuration_set.configuration_set_name,
                unsubscribe_secret_arn=self.unsubscribe.secret.secret_arn,
            ),
        )

        self._grant_workers()
        self._add_outputs()

    def _grant_workers(self) -> None:
        # Queue consumption (receive, delete, ChangeMessageVisibility) comes
        # with each worker's SQS event source, on its own queue only.
        send_email = iam.PolicyStatement(
            actions=["ses:SendEmail"],
            resources=[self.email.identity_arn, self.email.configuration_set_arn],
        )
        for worker in self.workers.functions.values():
            self.storage.preferences.grant_read_data(worker)
            self.storage.suppression.grant_read_data(worker)
            self.storage.idempotency.grant_read_write_data(worker)
            self.storage.messages.grant_read_write_data(worker)
            self.templates.bucket.grant_read(worker, f"{self.templates.key_prefix}*")
            self.unsubscribe.secret.grant_read(worker)
            worker.add_to_role_policy(send_email)

    def _add_outputs(self) -> None:
        # Defined directly on the stack, where a logical id gets no hash, so the
        # output keys the CLI looks up are exactly the Outputs names.
        values: dict[str, str] = {
            Outputs.EVENT_BUS_NAME: self.ingest.bus.event_bus_name,
            Outputs.TEMPLATES_BUCKET: self.templates.bucket.bucket_name,
            Outputs.PREFERENCES_TABLE: self.storage.preferences.table_name,
            Outputs.SUPPRESSION_TABLE: self.storage.suppression.table_name,
            Outputs.IDEMPOTENCY_TABLE: self.storage.idempotency.table_name,
            Outputs.MESSAGES_TABLE: self.storage.messages.table_name,
            Outputs.CONFIGURATION_SET: self.email.configuration_set.configuration_set_name,
            Outputs.INGEST_DLQ_URL: self.ingest.dead_letter_queue.queue_url,
        }
        for lane, queue in self.lanes.queues.items():
            values[Outputs.queue_url(lane)] = queue.queue_url
            values[Outputs.dlq_url(lane)] = self.lanes.dead_letter_queues[lane].queue_url
            values[Outputs.worker_name(lane)] = self.workers.functions[lane].function_name
        for key, value in values.items():
            CfnOutput(self, key, value=value, export_name=None)
