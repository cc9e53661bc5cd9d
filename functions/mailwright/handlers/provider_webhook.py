"""Provider webhook (Lambda function URL): signed SendGrid and Mailgun events, one path per provider."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailwright.observability import MetricGroups, feedback_metrics, service_logger, service_metrics, service_tracer
from mailwright.provider_feedback import (
    FORBIDDEN,
    UNAUTHORIZED,
    ProviderFeedbackService,
    WebhookOutcome,
    WebhookRequest,
)
from mailwright.settings import ProviderWebhookSettings
from mailwright.web import response
from mailwright.wiring import build_provider_feedback_service

logger = service_logger()
metrics = service_metrics()
tracer = service_tracer()

JSON = "application/json"


@cache
def service() -> ProviderFeedbackService:
    """The container's webhook service, built (and its settings checked) on the first request."""
    return build_provider_feedback_service(ProviderWebhookSettings.from_env())


# The request body holds recipients' addresses: never recorded in a trace.
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.LAMBDA_FUNCTION_URL, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one provider webhook request."""
    return handle(service(), event)


def handle(svc: ProviderFeedbackService, event: Mapping[str, Any]) -> dict[str, Any]:
    """Verify and apply one request with `svc`; publish what it applied as metrics (the tests call this too)."""
    outcome = svc.handle(WebhookRequest.from_event(event))
    publish_metrics(outcome)
    answer = outcome.as_body()
    # `message` is a reserved name of log records: logged as `answer`.
    fields = {**{k: v for k, v in answer.items() if k != "message"}, "answer": answer["message"]}
    logger.info("provider webhook answered", extra={**fields, "provider": outcome.provider})
    return response(outcome.status, json.dumps(answer), JSON)


def publish_metrics(outcome: WebhookOutcome) -> None:
    """EMF metrics: the feedback metrics of what was applied, and WebhookRequests, WebhookRefused, WebhookDuplicates."""
    groups = feedback_metrics(outcome.report) if outcome.report is not None else MetricGroups()
    groups.count("WebhookRequests")
    # Refused requests are a security signal: someone posts unsigned or forged feedback.
    groups.count("WebhookRefused", 1 if outcome.status in (UNAUTHORIZED, FORBIDDEN) else 0)
    groups.count("WebhookDuplicates", outcome.duplicates)
    groups.publish(metrics)
