"""Webhook sender: each endpoint's queue in, signed POSTs out; failed deliveries are backed off on the queue."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SQSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailwright.event_settings import WebhookSettings
from mailwright.event_wiring import build_webhook_service
from mailwright.observability import MetricGroups, service_logger, service_metrics, service_tracer
from mailwright.webhooks.service import Delivery, WebhookReport, WebhookService

logger = service_logger()
metrics = service_metrics()
tracer = service_tracer()


@cache
def service() -> WebhookService:
    """The container's webhook sender, built (and its settings checked) on the first invocation."""
    return build_webhook_service(WebhookSettings.from_env())


# Bodies are outcome events: never recorded in a trace.
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=SQSEvent)
def handler(event: SQSEvent, context: LambdaContext) -> dict[str, Any]:
    """Attempt one batch of deliveries from an endpoint's queue."""
    return handle_batch(service(), event)


def deliveries(event: SQSEvent) -> list[Delivery]:
    """The records of an SQS event, as the webhook sender takes them."""
    found = []
    for r in event.records:
        sent = r.attributes.get("SentTimestamp")
        found.append(
            Delivery(
                message_id=r.message_id,
                receipt_handle=r.receipt_handle,
                body=r.body,
                source_arn=r.event_source_arn,
                receive_count=int(r.attributes.get("ApproximateReceiveCount") or 1),
                first_sent_at=int(sent) / 1000 if sent else None,
            )
        )
    return found


def handle_batch(svc: WebhookService, event: SQSEvent) -> dict[str, Any]:
    """Run a batch through `svc` and answer with the partial batch response (the local stack calls this too)."""
    report = svc.process(deliveries(event))
    publish_metrics(report)
    return report.partial_batch_response()


def publish_metrics(report: WebhookReport) -> None:
    """EMF per endpoint: delivered, failed attempts, retried, archived, and WebhookSuspended (1 or 0, the alarm's)."""
    groups = MetricGroups()
    for name, count in report.delivered.items():
        groups.count("WebhooksDelivered", count, endpoint=name)
    for name, count in report.failed_attempts.items():
        groups.count("WebhookAttemptsFailed", count, endpoint=name)
    for name, count in report.retried.items():
        groups.count("WebhooksRetried", count, endpoint=name)
    for (name, _reason), count in report.archived.items():
        groups.count("WebhooksArchived", count, endpoint=name)
    for name, suspended in report.suspended.items():
        groups.add("WebhookSuspended", 1.0 if suspended else 0.0, MetricUnit.Count, endpoint=name)
    groups.publish(metrics)
