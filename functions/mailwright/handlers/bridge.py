"""Ingest bridge: a batch of Kafka records or RabbitMQ messages (from an event source mapping) into the lanes."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailwright.errors import IngestDeliveryError, IngestEventError
from mailwright.ingest_bridge import BridgeReport, BridgeService, ingest_records
from mailwright.observability import service_logger, service_metrics, service_tracer
from mailwright.settings import BridgeSettings
from mailwright.wiring import build_bridge

logger = service_logger()
metrics = service_metrics()
tracer = service_tracer()


@cache
def service() -> BridgeService:
    """The container's bridge, built (and its settings checked) on the first invocation."""
    return build_bridge(BridgeSettings.from_env())


@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Forward one batch; a bridge failure raises, so the event source mapping retries the batch."""
    return handle_event(service(), event)


def handle_event(svc: BridgeService, event: dict[str, Any]) -> dict[str, Any]:
    """Forward the event's records through `svc` and publish what happened (the local stack calls this too)."""
    try:
        source, records = ingest_records(event)
    except IngestEventError:  # the mappings deliver only these two shapes: a retry cannot help
        logger.exception("not a Kafka or RabbitMQ event; nothing forwarded")
        metrics.add_metric(name="IngestInvalidEvents", unit=MetricUnit.Count, value=1)
        return {"source": None, "records": 0, "forwarded": {}, "rejected": 0}
    try:
        report = svc.forward(source, records)
    except IngestDeliveryError:  # the mapping retries the batch (Kafka: bounded, then the failure queue)
        logger.exception("batch not forwarded; it will be retried", source=source, records=len(records))
        metrics.add_dimension(name="source", value=source)
        metrics.add_metric(name="IngestBatchFailures", unit=MetricUnit.Count, value=1)
        raise
    publish(report)
    return report.summary()


def publish(report: BridgeReport) -> None:
    """Log each rejected record with its reason (never its content) and count the batch by source."""
    for rejection in report.rejected:
        logger.warning(
            "ingest record rejected",
            request_id=rejection.request_id,
            reason_code=rejection.reason_code,
            reason=rejection.reason,
            source=report.source,
            position=rejection.position,
            correlation_id=rejection.correlation_id,
        )
    metrics.add_dimension(name="source", value=report.source)
    metrics.add_metric(name="IngestRecords", unit=MetricUnit.Count, value=report.records)
    metrics.add_metric(name="IngestForwarded", unit=MetricUnit.Count, value=sum(report.forwarded.values()))
    metrics.add_metric(name="IngestRejected", unit=MetricUnit.Count, value=len(report.rejected))
