"""Feedback function: consumes the SES feedback queue and answers with a partial batch response."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SQSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailwright.feedback import EVENT_TYPES, FeedbackReport, FeedbackService
from mailwright.sending import QueueRecord
from mailwright.settings import FeedbackSettings
from mailwright.wiring import build_feedback_service

logger = Logger(service="mailwright")
metrics = Metrics(namespace="Mailwright", service="mailwright")


@cache
def service() -> FeedbackService:
    """The container's feedback service, built (and its settings checked) on the first invocation."""
    return build_feedback_service(FeedbackSettings.from_env())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=SQSEvent)
def handler(event: SQSEvent, context: LambdaContext) -> dict[str, Any]:
    """Apply one batch of SES events from the feedback queue."""
    return handle_batch(service(), event, context)


def handle_batch(svc: FeedbackService, event: SQSEvent, context: LambdaContext) -> dict[str, Any]:
    """Run a batch through `svc` and answer with the partial batch response (the local stack calls this too)."""
    records = [
        QueueRecord(
            message_id=r.message_id,
            receipt_handle=r.receipt_handle,
            body=r.body,
            receive_count=int(r.attributes.approximate_receive_count or 1),
        )
        for r in event.records
    ]
    report = svc.process(records)
    publish_metrics(report)
    return report.partial_batch_response()


def publish_metrics(report: FeedbackReport) -> None:
    """EMF metrics for a batch: events by type, suppressions, and what was ignored, failed or deferred."""
    for event_type in EVENT_TYPES:  # unknown types are only counted in FeedbackIgnored: no metric per junk name
        if report.by_type[event_type]:
            name = "Feedback" + event_type.replace(" ", "")  # e.g. FeedbackBounce, FeedbackRenderingFailure
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=report.by_type[event_type])
    for name, value in (
        ("FeedbackProcessed", report.processed),
        ("FeedbackSuppressed", report.suppressed),
        ("FeedbackSoftBounces", report.soft_bounces),
        ("FeedbackIgnored", report.ignored),
        ("FeedbackErrors", report.errors),
        ("FeedbackDeferred", report.deferred),
        ("FeedbackUnmatched", report.unmatched),
        ("FeedbackRetried", len(report.failed)),
    ):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
