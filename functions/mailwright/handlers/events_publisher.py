"""Events publisher: the message log's DynamoDB stream in, outcome events on the bus out."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mailwright.adapters.eventbridge import change_records
from mailwright.event_settings import PublisherSettings
from mailwright.event_wiring import build_event_publisher
from mailwright.observability import MetricGroups, service_logger, service_metrics, service_tracer
from mailwright.publishing import EventPublisher, PublishReport

logger = service_logger()
metrics = service_metrics()
tracer = service_tracer()


@cache
def service() -> EventPublisher:
    """The container's publisher, built (and its settings checked) on the first invocation."""
    return build_event_publisher(PublisherSettings.from_env())


@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Publish the events one batch of message-log changes announces."""
    return handle_batch(service(), event)


def handle_batch(svc: EventPublisher, event: dict[str, Any]) -> dict[str, Any]:
    """Run a stream batch through `svc`; the partial batch response names failed records (the local stack too)."""
    report = svc.process(change_records(event))
    publish_metrics(report)
    return report.partial_batch_response()


def publish_metrics(report: PublishReport) -> None:
    """EMF: OutcomeEventsPublished per detail-type, and the refused entries and failed records."""
    groups = MetricGroups()
    for detail_type, count in report.published.items():
        groups.count("OutcomeEventsPublished", count, detail_type=detail_type)
    groups.count("OutcomeEventsRefused", report.refused_entries)
    groups.count("OutcomeEventRecordsFailed", len(report.failed))
    groups.count("MessageLogChanges", report.records)
    if report.failed:
        logger.warning("records left for the event source to retry", failed=len(report.failed))
    groups.publish(metrics)
