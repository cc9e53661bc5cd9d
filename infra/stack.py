"""The mailwright stack: builds each concern's construct, then wires and grants."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.address_key import AddressKeySecret
from infra.alarms import Alarms, MonitoredQueues
from infra.api import HttpsApi
from infra.breaker import ReputationBreaker
from infra.bundling import templates_source, worker_code
from infra.config import (
    FeedbackResources,
    MailwrightConfig,
    ProviderWebhookResources,
    WorkerResources,
    api_environment,
    bridge_environment,
    failover_lanes,
    lane_provider,
    provider_webhook_environment,
    submission_environment,
    unsubscribe_environment,
)
from infra.dashboard import OperationsDashboard
from infra.email import EmailSending
from infra.feedback import Feedback
from infra.functions import trace_functions
from infra.ingest import Ingest
from infra.ingest_bridge import IngestBridge
from infra.lanes import LaneQueues
from infra.nag import XRAY_REASON, acknowledge
from infra.outcome_events import OutcomeEvents
from infra.producer_api import ProducerApi, ProducersTable, RateLimitWaf
from infra.providers import (
    ProviderSecrets,
    ProviderWebhook,
    other_region_send_resources,
    region_feedback_topics,
    subscribe_region_feedback,
)
from infra.schedules import ScheduledSends
from infra.storage import Storage
from infra.templates_bucket import TemplatesBucket
from infra.unsubscribe import UnsubscribeEndpoint, UnsubscribeSecret
from infra.webhooks import Webhooks
from infra.workers import SendWorkers
from mailwright.constants import (
    ADDRESS_KEY_MARKER,
    BREAKER_LANE,
    LANES,
    METRICS_NAMESPACE,
    RECIPIENT_INDEX,
    SERVICE_NAME,
    SES_MESSAGE_ID_INDEX,
    VARIANTS_KEY_PREFIX,
    Env,
    Outputs,
)


class MailwrightStack(Stack):
    """Everything one mailwright deployment needs, in one environment-agnostic stack."""

    def __init__(self, scope: Construct, construct_id: str, *, config: MailwrightConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        # Before any function is added: every python_function under this stack reads it (infra.functions).
        trace_functions(self, enabled=config.tracing)

        self.lanes = LaneQueues(self, "Lanes", lanes=config.lanes)
        self.storage = Storage(self, "Storage", message_log_backups=config.message_log_backups)
        self.templates = TemplatesBucket(self, "Templates", source=templates_source())
        self.email = EmailSending(
            self,
            "Email",
            domain=config.domain,
            sender=config.sender,
            mail_from_domain=config.mail_from_domain,
            sandbox_recipients=config.sandbox_recipients,
        )
        self.unsubscribe = UnsubscribeSecret(self, "Unsubscribe")
        self.address_key = AddressKeySecret(self, "AddressKey")
        # One asset for every function: bundled once, uploaded once.
        code = worker_code()
        # The repository's bundles go live only where they changed, never over a studio version.
        self.templates.publish_with(code)
        self.unsubscribe_endpoint = UnsubscribeEndpoint(
            self,
            "UnsubscribeEndpoint",
            code=code,
            environment=unsubscribe_environment(
                preferences_table=self.storage.preferences.table_name,
                unsubscribe_secret_arn=self.unsubscribe.secret.secret_arn,
                address_key_secret_arn=self.address_key.secret.secret_arn,
                suppression_table=self.storage.suppression.table_name,
            ),
            reserved_concurrency=config.unsubscribe.reserved_concurrency,
        )
        self.ingest = Ingest(self, "Ingest", bus_name=config.stack_name, queues=self.lanes.queues)
        # Secondary providers' secrets (created by the user; none without `providers` in context).
        self.provider_secrets = ProviderSecrets(self, "ProviderSecrets", providers=config.providers)
        self.workers = SendWorkers(
            self,
            "Workers",
            config=config,
            code=code,
            queues=self.lanes.queues,
            resources=WorkerResources(
                templates_bucket=self.templates.bucket.bucket_name,
                preferences_table=self.storage.preferences.table_name,
                suppression_table=self.storage.suppression.table_name,
                idempotency_table=self.storage.idempotency.table_name,
                messages_table=self.storage.messages.table_name,
                configuration_set=self.email.configuration_set.configuration_set_name,
                unsubscribe_secret_arn=self.unsubscribe.secret.secret_arn,
                address_key_secret_arn=self.address_key.secret.secret_arn,
                unsubscribe_base_url=self.unsubscribe_endpoint.url.url,
                provider_secrets=self.provider_secrets.arns(),
            ),
        )

        self.feedback = Feedback(
            self,
            "Feedback",
            config=config,
            code=code,
            configuration_set=self.email.configuration_set,
            resources=FeedbackResources(
                suppression_table=self.storage.suppression.table_name,
                messages_table=self.storage.messages.table_name,
                address_key_secret_arn=self.address_key.secret.secret_arn,
                idempotency_table=self.storage.idempotency.table_name,
            ),
        )

        self.producers = ProducersTable(self, "Producers")
        self.api = HttpsApi(
            self,
            "Api",
            config=config.api,
            stack_name=config.stack_name,
            code=code,
            environment={
                **api_environment(
                    messages_table=self.storage.messages.table_name,
                    address_key_secret_arn=self.address_key.secret.secret_arn,
                    suppression_table=self.storage.suppression.table_name,
                ),
                **submission_environment(
                    lane_queue_urls={lane: queue.queue_url for lane, queue in self.lanes.queues.items()},
                    templates_bucket=self.templates.bucket.bucket_name,
                    producers_table=self.producers.table.table_name,
                    template_cache_seconds=config.template_cache_seconds,
                ),
            },
        )
        # The same function behind API keys and usage plans, for producers without AWS credentials.
        self.producer_api = ProducerApi(
            self, "ProducerApi", config=config.api, stack_name=config.stack_name, function=self.api.function
        )
        if config.api.waf is not None:
            self.waf = RateLimitWaf(
                self,
                "Waf",
                config=config.api.waf,
                stack_name=config.stack_name,
                stages=[self.api.stage, self.producer_api.stage],
            )
        # Kafka and RabbitMQ, when configured: a bridge function their event source mappings feed.
        self.bridge = self._add_bridge(code) if config.ingest.enabled else None
        # Telling producers: outcome events from the message log's stream, EmailFailed from the DLQs, webhooks.
        self.outcome_events = OutcomeEvents(
            self,
            "OutcomeEvents",
            config=config,
            code=code,
            bus=self.ingest.bus,
            messages=self.storage.messages,
            lane_dead_letter_queues=self.lanes.dead_letter_queues,
            parked_queues=self.lanes.parked_queues,
            ingest_dead_letter_queue=self.ingest.dead_letter_queue,
        )
        self.webhooks = Webhooks(self, "Webhooks", config=config, code=code, bus=self.ingest.bus)

        self.schedules = self._add_schedules()
        self._grant_workers()
        self._grant_unsubscribe_endpoint()
        self._grant_feedback()
        self._grant_api()
        self.provider_webhook = self._add_provider_webhook(code)
        self._grant_failover()
        subscribe_region_feedback(region_feedback_topics(self, config.providers), self.feedback.queue)
        self._add_operations(code)
        self._add_outputs()

    def _add_schedules(self) -> ScheduledSends:
        # Scheduled sends more than 15 minutes ahead: EventBridge Scheduler one-time schedules (infra/schedules.py).
        schedules = ScheduledSends(self, "Schedules", stack_name=self.config.stack_name, queues=self.lanes.queues)
        for lane, worker in self.workers.functions.items():
            for key, value in schedules.environment(lane).items():
                worker.add_environment(key, value)
            schedules.grant_scheduling(worker)
        # The API's cancel (POST /v1/messages/{request_id}/cancel): one transaction that takes the request's
        # dedupe claim (PutItem) and marks its message-log item cancelled (UpdateItem), then deletes the
        # request's schedule (best effort).
        api = self.api.function
        api.add_environment(Env.IDEMPOTENCY_TABLE, self.storage.idempotency.table_name)
        api.add_environment(Env.SCHEDULE_GROUP, schedules.group_name)
        # On the tables only (Table.grant would add their indexes).
        api.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[self.storage.messages.table_arn])
        )
        api.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:PutItem"], resources=[self.storage.idempotency.table_arn])
        )
        schedules.grant_cancel(api)
        return schedules

    def _grant_workers(self) -> None:
        # Queue consumption (receive, delete, ChangeMessageVisibility) comes
        # with each worker's SQS event source, on its own queue only.
        send_email = iam.PolicyStatement(
            actions=["ses:SendEmail"],
            resources=self.email.send_email_resources(),
        )
        messages = self.storage.messages.node.default_child
        assert isinstance(messages, dynamodb.CfnTable)
        # Pacing reads the account's send rate and daily quota. GetAccount has no resource type: "*" is
        # its only resource; a Sid of its own keeps it out of the X-Ray statement (also on "*").
        read_quota = iam.PolicyStatement(sid="ReadSesSendingQuota", actions=["ses:GetAccount"], resources=["*"])
        for lane, worker in self.workers.functions.items():
            # Pacing hands mail back to the worker's own queue as new, delayed messages (deferrals).
            self.lanes.queues[lane].grant_send_messages(worker)
            worker.add_to_role_policy(read_quota)
            acknowledge(
                worker.role or worker,
                "AwsSolutions-IAM5[Resource::*]",
                f"{XRAY_REASON} And ses:GetAccount (the account's send rate and daily quota, read-only): SES "
                "gives it no resource type, so '*' is the only resource it accepts.",
            )
            self.storage.preferences.grant_read_data(worker)
            self.storage.suppression.grant_read_data(worker)
            self.storage.idempotency.grant_read_write_data(worker)
            self.storage.messages.grant_read_write_data(worker)
            self.templates.grant_read_templates(worker)
            self.unsubscribe.secret.grant_read(worker)
            self.address_key.secret.grant_read(worker)
            worker.add_to_role_policy(send_email)
            acknowledge(
                worker.role or worker,
                f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(messages)}.Arn>/index/*]",
                f"The message log's indexes, of this stack's table only: {SES_MESSAGE_ID_INDEX} and {RECIPIENT_INDEX}.",
            )

    def _add_bridge(self, code: lambda_.Code) -> IngestBridge:
        bridge = IngestBridge(
            self,
            "IngestBridge",
            ingest=self.config.ingest,
            code=code,
            environment=bridge_environment(
                config=self.config,
                queue_urls={lane: queue.queue_url for lane, queue in self.lanes.queues.items()},
                templates_bucket=self.templates.bucket.bucket_name,
                messages_table=self.storage.messages.table_name,
            ),
        )
        function = bridge.function
        for queue in self.lanes.queues.values():
            queue.grant_send_messages(function)
        # Template priorities route requests that name no priority, as the producer SDK does.
        self.templates.grant_read_templates(function)
        # Rejected records only: new items written whole (BatchWriteItem of puts); nothing read or updated.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:BatchWriteItem", "dynamodb:PutItem"], resources=[self.storage.messages.table_arn]
            )
        )
        return bridge

    def _grant_unsubscribe_endpoint(self) -> None:
        function = self.unsubscribe_endpoint.function
        self.unsubscribe.secret.grant_read(function)
        self.address_key.secret.grant_read(function)
        # Read and update one user's items (its key in each readable address-key version); no Scan or
        # Query: a public endpoint never lists users. No Put or Delete: it never removes consent.
        self.storage.preferences.grant(function, "dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem")
        # The address-key marker only (which key versions are still stored): nothing else of that table.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem"],
                resources=[self.storage.suppression.table_arn],
                conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [ADDRESS_KEY_MARKER]}},
            )
        )

    def _grant_feedback(self) -> None:
        # Queue consumption comes with the function's SQS event source.
        function = self.feedback.function
        self.address_key.secret.grant_read(function)
        # Suppressions, their audit trail and soft-bounce counts: conditional writes and
        # transactions (TransactWriteItems needs the item actions it carries). No Scan, no Delete.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                resources=[self.storage.suppression.table_arn],
            )
        )
        # The message log: append to a request's history, store events, find requests by SES id.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                resources=[self.storage.messages.table_arn],
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"],
                resources=[f"{self.storage.messages.table_arn}/index/{SES_MESSAGE_ID_INDEX}"],
            )
        )
        # A/B variants' counters and states: complaints count against a variant and may switch it off.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[self.storage.idempotency.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{VARIANTS_KEY_PREFIX}*"]}},
            )
        )
        if self.config.mirror_ses_suppression_list:
            # The account-level suppression list has no resource type: "*" is the only resource
            # PutSuppressedDestination accepts. Granted only when mirroring is switched on.
            # A Sid of its own keeps it out of the X-Ray statement, which also has "*" as its resource.
            function.add_to_role_policy(
                iam.PolicyStatement(
                    sid="MirrorSuppressionsToSes", actions=["ses:PutSuppressedDestination"], resources=["*"]
                )
            )
            acknowledge(
                function.role or function,
                "AwsSolutions-IAM5[Resource::*]",
                f"{XRAY_REASON} With mirror_ses_suppression_list, ses:PutSuppressedDestination too: SES's "
                "account-level suppression list has no resource type, so '*' is the only resource it accepts.",
            )

    def _grant_api(self) -> None:
        # Submissions: send to the lane queues (SendMessage covers SendMessageBatch), read template bundles
        # for their priority, and find an API key's producer (one item at a time: no Scan, no write).
        function = self.api.function
        for queue in self.lanes.queues.values():
            queue.grant_send_messages(function)
        self.templates.grant_read_templates(function)
        self.producers.table.grant(function, "dynamodb:GetItem")
        # Lookups read only: a request's item (Query on its partition), a page's items (BatchGetItem) and
        # the recipient index; not the SES message id index, no write, no Scan.
        self.address_key.secret.grant_read(function)
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:BatchGetItem", "dynamodb:Query"],
                resources=[self.storage.messages.table_arn],
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"],
                resources=[f"{self.storage.messages.table_arn}/index/{RECIPIENT_INDEX}"],
            )
        )
        # Users' preferences (GET|PATCH /v1/users/{user_id}/preferences): their items and the audit trail
        # beside them (`audit#<user_id>`, appended in the same transaction), on the table only: no index, no
        # Scan, no delete.
        function.add_environment(Env.PREFERENCES_TABLE, self.storage.preferences.table_name)
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[self.storage.preferences.table_arn],
            )
        )
        # The address-key marker only (which key versions are still stored): nothing else of that table.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem"],
                resources=[self.storage.suppression.table_arn],
                conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [ADDRESS_KEY_MARKER]}},
            )
        )

    def _grant_failover(self) -> None:
        # Each lane that fails over reads its provider's secret (that one only), or sends through SES in
        # the provider's region (its identity and configuration set there only).
        for lane in LANES:
            provider = lane_provider(self.config, lane)
            if provider is None or lane not in failover_lanes(self.config, provider.name):
                continue
            worker = self.workers.functions[lane]
            secret = self.provider_secrets.secrets.get(provider.name)
            if secret is not None:
                secret.grant_read(worker)
            if provider.region:
                worker.add_to_role_policy(
                    iam.PolicyStatement(
                        actions=["ses:SendEmail"],
                        resources=other_region_send_resources(self, provider, identity=self.email.identity_name),
                    )
                )

    def _add_provider_webhook(self, code: lambda_.Code) -> ProviderWebhook | None:
        """The provider webhook, when a provider posts webhooks (SendGrid, Mailgun); its grants."""
        if not self.provider_secrets.webhook_secrets:
            return None
        webhook = ProviderWebhook(
            self,
            "ProviderWebhook",
            code=code,
            environment=provider_webhook_environment(
                config=self.config,
                resources=ProviderWebhookResources(
                    feedback=FeedbackResources(
                        suppression_table=self.storage.suppression.table_name,
                        messages_table=self.storage.messages.table_name,
                        address_key_secret_arn=self.address_key.secret.secret_arn,
                    ),
                    idempotency_table=self.storage.idempotency.table_name,
                    preferences_table=self.storage.preferences.table_name,
                    webhook_secrets=self.provider_secrets.webhook_arns(),
                ),
            ),
            reserved_concurrency=self.config.provider_webhook.reserved_concurrency,
        )
        function = webhook.function
        # The verification keys only: with a webhook_secret, not the providers' sending credentials.
        for secret in self.provider_secrets.webhook_secrets.values():
            secret.grant_read(function)
        self.address_key.secret.grant_read(function)
        # Suppressions (with their audit trail and soft-bounce counts) and the message log, as the feedback
        # function writes them (TransactWriteItems needs the item actions it carries). No Scan, no Delete.
        for table in (self.storage.suppression, self.storage.messages):
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                    resources=[table.table_arn],
                )
            )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"],
                resources=[f"{self.storage.messages.table_arn}/index/{SES_MESSAGE_ID_INDEX}"],
            )
        )
        # Provider unsubscribes add an opt-out: one item updated, nothing read, listed or deleted.
        self.storage.preferences.grant(function, "dynamodb:UpdateItem")
        # The replay guard's items (`webhook#...`) of the idempotency table, and no others: not the claims.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:DeleteItem"],
                resources=[self.storage.idempotency.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["webhook#*"]}},
            )
        )
        return webhook

    def _add_operations(self, code: lambda_.Code) -> None:
        # Alarms on every queue and function, the bulk lane's reputation breaker, and the dashboard.
        queues = {**self.lanes.queues, "feedback": self.feedback.queue}
        # A lane's dead letters wait in its parked queue (the dead-letter function drains its DLQ into it).
        dead_letter_queues = {
            **self.outcome_events.parked_queues,
            "feedback": self.feedback.dead_letter_queue,
            "ingest": self.ingest.dead_letter_queue,
            # What EventBridge Scheduler could not put on a lane queue at a request's send_at.
            "schedules": self.schedules.dead_letter_queue,
        }
        self.alarms = Alarms(self, "Alarms", config=self.config, watched=MonitoredQueues(queues, dead_letter_queues))
        self.breaker = ReputationBreaker(
            self,
            "Breaker",
            config=self.config,
            code=code,
            mapping_id=self.workers.event_sources[BREAKER_LANE].event_source_mapping_id,
            alarms=self.alarms.reputation_alarms,
        )
        self.alarms.watch_functions(
            {
                **{f"{lane}-worker": function for lane, function in self.workers.functions.items()},
                "feedback": self.feedback.function,
            }
        )
        self.alarms.watch_outcome_events(
            publisher=self.outcome_events.publisher,
            publisher_dead_letter_queue=self.outcome_events.publisher_dead_letter_queue,
            dead_letters=self.outcome_events.dead_letters,
            drained_dead_letter_queues=self.lanes.dead_letter_queues,
        )
        if self.webhooks.function is not None:
            self.alarms.watch_webhooks(
                function=self.webhooks.function,
                dead_letter_queues={name: e.dead_letter_queue for name, e in self.webhooks.endpoints.items()},
                namespace=METRICS_NAMESPACE,
                service=SERVICE_NAME,
            )
        self.alarms.watch_unsubscribe_endpoint(
            self.unsubscribe_endpoint.function, reserved_concurrency=self.config.unsubscribe.reserved_concurrency
        )
        self.alarms.watch_api(self.api.stage, self.api.function)
        self.alarms.watch_producer_api(self.producer_api.stage)
        # Secondary providers: SES's breaker open too long on a lane, and the provider webhook.
        self.alarms.watch_provider_breakers(self.config)
        if self.provider_webhook is not None:
            self.alarms.watch_provider_webhook(
                self.provider_webhook.function,
                reserved_concurrency=self.config.provider_webhook.reserved_concurrency,
            )
        # A/B variants switched off automatically.
        self.alarms.watch_variants()
        # The breaker follows the reputation alarms, so the alarms on it come after it.
        self.alarms.watch_breaker(self.breaker.function, dead_letter_queue=self.breaker.dead_letter_queue)
        dead_letter_queues["breaker"] = self.breaker.dead_letter_queue
        if self.bridge is not None:
            self.alarms.watch_bridge(self.bridge.function, kafka_failures=self.bridge.failure_queue)
            if self.bridge.failure_queue is not None:
                dead_letter_queues["kafka"] = self.bridge.failure_queue
        self.dashboard = OperationsDashboard(
            self,
            "Dashboard",
            config=self.config,
            queues=queues,
            dead_letter_queues=dead_letter_queues,
            alarms=list(self.alarms.alarms.values()),
        )
        if self.config.providers:
            self.dashboard.add_provider_widgets(self.config)

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
            Outputs.UNSUBSCRIBE_URL: self.unsubscribe_endpoint.url.url,
            Outputs.ADDRESS_KEY_SECRET_ARN: self.address_key.secret.secret_arn,
            Outputs.FEEDBACK_QUEUE_URL: self.feedback.queue.queue_url,
            Outputs.FEEDBACK_DLQ_URL: self.feedback.dead_letter_queue.queue_url,
            Outputs.FEEDBACK_TOPIC_ARN: self.feedback.topic.topic_arn,
            Outputs.FEEDBACK_WORKER_NAME: self.feedback.function.function_name,
            Outputs.ALARM_TOPIC_ARN: self.alarms.topic.topic_arn,
            Outputs.DASHBOARD_NAME: self.dashboard.dashboard.dashboard_name,
            Outputs.REPUTATION_ALARMS: ",".join(alarm.alarm_name for alarm in self.alarms.reputation_alarms),
            Outputs.BREAKER_DLQ_URL: self.breaker.dead_letter_queue.queue_url,
            Outputs.API_URL: self.api.url,
            Outputs.API_ID: self.api.api.rest_api_id,
            Outputs.PRODUCER_API_URL: self.producer_api.url,
            Outputs.PRODUCER_API_ID: self.producer_api.api.rest_api_id,
            Outputs.PRODUCER_PLANS: self.to_json_string(
                {name: plan.usage_plan_id for name, plan in self.producer_api.plans.items()}
            ),
            Outputs.PRODUCERS_TABLE: self.producers.table.table_name,
            Outputs.KEY_RETIREMENT_ROLE_ARN: self.producer_api.retirement_role.role_arn,
            **self.email.dns_records(),
        }
        values.update(self._provider_outputs())
        if self.bridge is not None:
            values[Outputs.BRIDGE_FUNCTION_NAME] = self.bridge.function.function_name
            if self.bridge.failure_queue is not None:
                values[Outputs.KAFKA_FAILURE_QUEUE_URL] = self.bridge.failure_queue.queue_url
        values[Outputs.EVENTS_DLQ_URL] = self.outcome_events.publisher_dead_letter_queue.queue_url
        values[Outputs.WEBHOOK_STATE_TABLE] = self.webhooks.state_table.table_name
        values[Outputs.WEBHOOK_ARCHIVE_BUCKET] = self.webhooks.archive_bucket.bucket_name
        values[Outputs.SCHEDULE_GROUP] = self.schedules.group_name
        values[Outputs.SCHEDULE_DLQ_URL] = self.schedules.dead_letter_queue.queue_url
        for name, endpoint in self.webhooks.endpoints.items():
            values[Outputs.webhook_endpoint(name)] = self.to_json_string(
                {
                    "name": name,
                    "url": endpoint.endpoint.url,
                    "detail_types": list(endpoint.endpoint.detail_types),
                    "queue_url": endpoint.queue.queue_url,
                    "dlq_url": endpoint.dead_letter_queue.queue_url,
                    "secret_arn": endpoint.secret.secret_arn,
                }
            )
        for lane, queue in self.lanes.queues.items():
            values[Outputs.parked_dlq_url(lane)] = self.outcome_events.parked_queues[lane].queue_url
            values[Outputs.queue_url(lane)] = queue.queue_url
            values[Outputs.dlq_url(lane)] = self.lanes.dead_letter_queues[lane].queue_url
            values[Outputs.worker_name(lane)] = self.workers.functions[lane].function_name
        for key, value in values.items():
            CfnOutput(self, key, value=value, export_name=None)

    def _provider_outputs(self) -> dict[str, str]:
        """The secondaries and each lane's failover, for `mailwright providers` (none without providers)."""
        if not self.config.providers:
            return {}
        values = {
            Outputs.PROVIDERS: json.dumps(
                [{"name": provider.name, "kind": provider.kind} for provider in self.config.providers],
                separators=(",", ":"),
            ),
            Outputs.FAILOVER: json.dumps(
                {
                    lane: {"enabled": self.config.failover[lane].enabled, "provider": provider.name}
                    for lane in LANES
                    if (provider := lane_provider(self.config, lane)) is not None
                },
                separators=(",", ":"),
            ),
        }
        if self.provider_webhook is not None:
            values[Outputs.PROVIDER_WEBHOOK_URL] = self.provider_webhook.url.url
        return values
