"""Dead-letter function: each DLQ's requests recorded as failed (EmailFailed), then parked for redrive."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes import SQSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailwright.dead_letters import DeadLetter, DeadLetterReport, DeadLetterService
from mailwright.event_settings import DeadLetterSettings
from mailwright.event_wiring import build_dead_letter_service
from mailwright.observability import MetricGroups, service_logger, service_metrics, service_tracer

logger = service_logger()
metrics = service_metrics()
tracer = service_tracer()


@cache
def service() -> DeadLetterService:
    """The container's dead-letter service, built (and its settings checked) on the first invocation."""
    return build_dead_letter_service(DeadLetterSettings.from_env())


@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=SQSEvent)
def handler(event: SQSEvent, context: LambdaContext) -> dict[str, Any]:
    """Record and park one batch from a dead-letter queue."""
    return handle_batch(service(), event)


def dead_letters(event: SQSEvent) -> list[DeadLetter]:
    """The records of an SQS event, as the dead-letter service takes them (with their queue's ARN)."""
    return [
        DeadLetter(
            message_id=r.message_id,
            body=r.body,
            source_arn=r.event_source_arn,
            message_attributes=dict(r.raw_event.get("messageAttributes") or {}),
        )
        for r in event.records
    ]


def handle_batch(svc: DeadLetterService, event: SQSEvent) -> dict[str, Any]:
    """Run a batch through `svc` and answer with the partial batch response (the local stack calls this too)."""
    report = svc.process(dead_letters(event))
    publish_metrics(report)
    return report.partial_batch_response()


def publish_metrics(report: DeadLetterReport) -> None:
    """EMF: RequestsDeadLettered per lane (first arrivals only), and the messages left in their DLQ."""
    groups = MetricGroups()
    groups.count("RequestsDeadLettered", report.recorded)
    groups.count("DeadLettersNotHandled", len(report.failed))
    for lane, count in report.by_lane.items():
        groups.count("DeadLettersParked", count, lane=lane)
    groups.publish(metrics)
