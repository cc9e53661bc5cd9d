"""Feedback function: consumes the SES feedback queue and answers with a partial batch response."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes import SQSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailwright.feedback import FeedbackReport, FeedbackService
from mailwright.handlers.sqs import queue_records
from mailwright.observability import feedback_metrics, service_logger, service_metrics, service_tracer
from mailwright.settings import FeedbackSettings
from mailwright.wiring import build_feedback_service

logger = service_logger()
metrics = service_metrics()
tracer = service_tracer()


@cache
def service() -> FeedbackService:
    """The container's feedback service, built (and its settings checked) on the first invocation."""
    return build_feedback_service(FeedbackSettings.from_env())


@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=SQSEvent)
def handler(event: SQSEvent, context: LambdaContext) -> dict[str, Any]:
    """Apply one batch of SES events from the feedback queue."""
    return handle_batch(service(), event, context)


def handle_batch(svc: FeedbackService, event: SQSEvent, context: LambdaContext) -> dict[str, Any]:
    """Run a batch through `svc` and answer with the partial batch response (the local stack calls this too)."""
    records = queue_records(event)
    report = svc.process(records)
    publish_metrics(report)
    return report.partial_batch_response()


def publish_metrics(report: FeedbackReport) -> None:
    """EMF metrics for a batch: Bounces and Complaints per (lane, category), events by type, and what failed."""
    feedback_metrics(report).publish(metrics)
