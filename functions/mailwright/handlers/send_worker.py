"""Send worker: consumes one lane queue and answers with a partial batch response."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mailwright.handlers.sqs import queue_records
from mailwright.observability import batch_metrics, service_logger, service_metrics, service_tracer
from mailwright.sending import BatchReport, SendService
from mailwright.settings import WorkerSettings
from mailwright.wiring import build_send_service

if TYPE_CHECKING:  # the handler reads the raw event: Powertools' event classes load all together (cold start)
    from aws_lambda_powertools.utilities.data_classes import SQSEvent

logger = service_logger()
metrics = service_metrics()
tracer = service_tracer()


@cache
def service() -> SendService:
    """The container's send service, built (and its settings checked) once: at Lambda's Init, else on first use."""
    return build_send_service(WorkerSettings.from_env())


def initialise() -> None:
    """Build the service in Lambda's Init phase, once per container, so no invocation pays for it.

    A failure (a setting the service rejects) is logged and not cached: the first invocation builds it
    again and fails with the same error, as before, instead of the container failing to start.
    """
    try:
        service()
    except Exception:
        logger.exception("the send service could not be built at init; the first invocation tries again")


# Only the Lambda runtime sets its API's address: tests and the local stack import this module without building.
if os.environ.get("AWS_LAMBDA_RUNTIME_API"):
    initialise()


@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process one batch of email requests from a lane queue."""
    return handle_batch(service(), event, context)


def handle_batch(svc: SendService, event: SQSEvent | Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run a batch through `svc` and answer with the partial batch response (the local stack calls this too)."""
    records = queue_records(event)
    report = svc.process(records, remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000)
    publish_metrics(report, lane=svc.policy.lane)
    return report.partial_batch_response()


def publish_metrics(report: BatchReport, *, lane: str) -> None:
    """EMF metrics for a batch, one document per (lane, category); rejected requests are logged with their reason."""
    for outcome in report.outcomes:
        if outcome.status == "rejected":
            logger.warning("request rejected", request_id=outcome.request_id, reason=outcome.reason)
    batch_metrics(report, lane=lane, now=time.time()).publish(metrics)
