"""Logs, metrics and traces for the Lambda handlers: Powertools, set up the same way in every function.

* Logs are JSON (Powertools Logger) and pass through `AddressMaskingFormatter`,
  which masks anything shaped like an email address in the message, in every
  extra field and in exception text: the domain already logs recipients
  masked, this is the net under it.
* Metrics are EMF (namespace `Mailwright`). Outcome metrics carry the
  dimensions `lane` and `category` (and `service`, which Powertools adds).
  One EMF document holds one value per metric name and one set of dimension
  values, so `MetricGroups` collects a batch's metrics per dimension set and
  writes each set as its own document.
* Traces go to X-Ray (Powertools Tracer) when the deployment turns tracing
  on (the `tracing` setting). Off, the functions are deployed with
  POWERTOOLS_TRACE_DISABLED=true and get `UntracedHandlers` instead of a
  Tracer: Powertools' Tracer imports the X-Ray SDK even when disabled, tens
  of milliseconds of a send worker's cold start. The tracer also switches itself off
  outside Lambda, so local runs never wait for an X-Ray daemon.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from aws_lambda_powertools.shared.functions import strtobool

from mailwright.addresses import scrub_addresses
from mailwright.constants import (
    METRIC_FAILED_OVER,
    METRIC_PROVIDER_BREAKER_OPEN,
    METRIC_PROVIDER_BREAKER_OPENED,
    METRIC_VARIANT_DISABLED,
    METRICS_NAMESPACE,
    PROVIDER_SES,
    QUOTA_USED_METRIC,
    RENDER_REASON_CODES,
    SERVICE_NAME,
    STATUS_DIGESTED,
    STATUS_OPTED_OUT,
    STATUS_RATE_LIMITED,
    STATUS_REJECTED,
    STATUS_SENT,
    STATUS_SUPPRESSED,
    TRACE_DISABLED_ENV,
    UNKNOWN,
    VARIANT_METRICS,
)
from mailwright.ports import BreakerChange
from mailwright.quiet_deferral import REASON_QUIET_HOURS

if TYPE_CHECKING:  # the send worker never loads the feedback module (cold start)
    from mailwright.feedback import FeedbackReport
    from mailwright.sending import BatchReport
    from mailwright.variants import VariantSwitch

# One metric per terminal state of a request.
METRIC_BY_STATUS: dict[str, str] = {
    STATUS_SENT: "Sent",
    STATUS_SUPPRESSED: "Suppressed",
    STATUS_OPTED_OUT: "OptedOut",
    STATUS_RATE_LIMITED: "RateLimited",
    STATUS_REJECTED: "Rejected",
    STATUS_DIGESTED: "Digested",
}

_PLAIN = (bool, int, float, type(None))


# -- logs ---------------------------------------------------------------------


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_addresses(value)
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, Mapping):
        return {_masked(key) if isinstance(key, str) else key: _masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_masked(item) for item in value]
    # Anything else is written with str() (the formatter's json_default): mask that text.
    return scrub_addresses(str(value))


class AddressMaskingFormatter(LambdaPowertoolsFormatter):
    """The Powertools JSON formatter, with every address-shaped string in the log line masked (`j***@example.com`)."""

    def serialize(self, log: LogRecord) -> str:
        """Mask the message, extra fields, appended keys and exception text, then write JSON."""
        masked: LogRecord = _masked(log)
        return super().serialize(masked)


def service_logger() -> Logger:
    """The `mailwright` Powertools logger, JSON with addresses masked (shared by every handler in a container)."""
    logger = Logger(service=SERVICE_NAME, logger_formatter=AddressMaskingFormatter())
    # The first Logger of a service configures it and later ones reuse that setup: make sure it masks.
    if not isinstance(logger.registered_formatter, AddressMaskingFormatter):
        logger.registered_handler.setFormatter(AddressMaskingFormatter())
    return logger


def service_metrics() -> Metrics:
    """Powertools metrics in the `Mailwright` namespace."""
    return Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


# The libraries the X-Ray SDK instruments: the AWS SDK is the only one mailwright's functions call through
# (webhooks and relays use the standard library, which the SDK does not patch by default). Patching all
# it supports would import a patch module for each (SQLAlchemy, psycopg, httpx, sqlite3...) at every cold start.
TRACED_MODULES = ("botocore",)


class UntracedHandlers:
    """Stands in for the tracer when tracing is off: its handler decorator hands the handler back unchanged.

    Powertools' Tracer imports the X-Ray SDK (and patches botocore) even when disabled; this loads nothing.
    """

    def capture_lambda_handler(
        self,
        lambda_handler: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Callable[..., Any]:
        """The handler itself, used bare (`@tracer.capture_lambda_handler`) or called (`(capture_response=False)`)."""
        if lambda_handler is None:
            return _unchanged
        return lambda_handler


def _unchanged(handler: Callable[..., Any]) -> Callable[..., Any]:
    return handler


def tracing_disabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether POWERTOOLS_TRACE_DISABLED turns tracing off (read as Powertools reads it)."""
    return strtobool(environ.get(TRACE_DISABLED_ENV, "false"))


def service_tracer() -> Tracer | UntracedHandlers:
    """The Powertools tracer (off outside Lambda), tracing AWS calls; with tracing disabled, `UntracedHandlers`."""
    if tracing_disabled():
        return UntracedHandlers()
    return Tracer(service=SERVICE_NAME, patch_modules=TRACED_MODULES)


# -- metrics ------------------------------------------------------------------


class MetricsSink(Protocol):
    """What `MetricGroups.publish` writes to: Powertools `Metrics`, or the local stack's stand-in for it."""

    def add_dimension(self, name: str, value: str) -> None: ...

    def add_metric(self, name: str, unit: Any, value: float) -> None: ...


def flush_document(sink: Any) -> None:
    """End the EMF document `sink` is filling: write it now and start an empty one."""
    # Powertools' Metrics calls it flush_metrics; the local stack's per-container stand-in, flush.
    flush = getattr(sink, "flush_metrics", None) or sink.flush
    flush()


@dataclass(frozen=True)
class MetricValue:
    """One value of one metric."""

    name: str
    unit: str
    value: float


class MetricGroups:
    """Metrics of one invocation, grouped by dimension values; each group becomes one EMF document.

    Counts are summed within a group (one value per name); other values, such as
    latencies, are kept one by one.
    """

    def __init__(self) -> None:
        self._groups: dict[tuple[tuple[str, str], ...], list[MetricValue]] = {}

    def _group(self, dimensions: Mapping[str, str]) -> list[MetricValue]:
        return self._groups.setdefault(tuple(dimensions.items()), [])

    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        """Add `value` to the count `name` under these dimension values."""
        if value <= 0:
            return
        group = self._group(dimensions)
        for index, existing in enumerate(group):
            if existing.name == name:
                group[index] = MetricValue(name, existing.unit, existing.value + value)
                return
        group.append(MetricValue(name, MetricUnit.Count.value, value))

    def add(self, name: str, value: float, unit: MetricUnit, **dimensions: str) -> None:
        """Record one value of `name` (e.g. a latency) under these dimension values."""
        self._group(dimensions).append(MetricValue(name, unit.value, value))

    def groups(self) -> list[tuple[dict[str, str], list[MetricValue]]]:
        """Each group's dimension values and metric values, in the order they were first used."""
        return [(dict(key), list(values)) for key, values in self._groups.items() if values]

    def publish(self, sink: MetricsSink) -> None:
        """Write each group to `sink` as its own EMF document.

        Every group but the last is flushed here. The last stays in `sink` for the
        end of the invocation (`@metrics.log_metrics` in Lambda, the local stack's
        flush locally), so an invocation never ends with an empty metric set.
        """
        groups = self.groups()
        for index, (dimensions, values) in enumerate(groups):
            if index:
                flush_document(sink)
            for name, value in dimensions.items():
                sink.add_dimension(name=name, value=value)
            for metric in values:
                sink.add_metric(name=metric.name, unit=metric.unit, value=metric.value)


def batch_metrics(report: BatchReport, *, lane: str, now: float) -> MetricGroups:
    """The send worker's metrics for one batch.

    Per lane and category: Sent, Suppressed, OptedOut, RateLimited, Rejected,
    RenderFailed, Throttled and SendLatency (ms from the producer's publish to
    the send, across deferrals). Per lane: Retried, Deferred, Duplicates and
    LeaseTakeovers, ScheduledHeld. Per lane and secondary provider: FailedOver (the emails it
    sent while SES's breaker was open). Per template and A/B variant:
    VariantSent and VariantRenderFailed, and VariantDisabled (see
    `count_variant_switches`). Without dimensions: QuotaUsedPercent, when SES's
    quota is known.
    """
    metrics = MetricGroups()
    for outcome in report.outcomes:
        category = outcome.category or UNKNOWN
        metrics.count(METRIC_BY_STATUS[outcome.status], lane=lane, category=category)
        if outcome.status == STATUS_REJECTED and outcome.reason_code in RENDER_REASON_CODES:
            metrics.count("RenderFailed", lane=lane, category=category)
        if outcome.status == STATUS_SENT and outcome.received_at:
            latency = max(0.0, (now - outcome.received_at) * 1000)
            metrics.add("SendLatency", latency, MetricUnit.Milliseconds, lane=lane, category=category)
        if outcome.status == STATUS_SENT and outcome.provider != PROVIDER_SES:
            metrics.count(METRIC_FAILED_OVER, lane=lane, provider=outcome.provider)
    throttled = [m for m, reason in report.retry_reasons.items() if reason == "throttled"]
    throttled += [m for m, reason in report.deferred.items() if reason == "throttled"]
    for message_id in throttled:
        metrics.count("Throttled", lane=lane, category=report.retry_categories.get(message_id, UNKNOWN))
    metrics.count("Retried", len(report.failed), lane=lane)
    # Handed back to the queue by pacing (not failures): a backlog waiting for the account's rate or quota.
    metrics.count("Deferred", len(report.deferred), lane=lane)
    # Of those, the mail waiting for its recipient's quiet hours to end (each hop, or a night's one schedule).
    quiet = [m for m, reason in report.deferred.items() if reason == REASON_QUIET_HOURS]
    for message_id in quiet:
        metrics.count("QuietHoursDeferred", lane=lane, category=report.retry_categories.get(message_id, UNKNOWN))
    if report.quota_used is not None:
        # The share of SES's daily quota used (percent), as SES last reported it: the quota alarms watch it.
        metrics.add(QUOTA_USED_METRIC, round(100 * report.quota_used, 2), MetricUnit.Percent)
    metrics.count("Duplicates", report.duplicates, lane=lane)
    metrics.count("LeaseTakeovers", report.lease_takeovers, lane=lane)
    # Acked without an outcome by scheduling: held by an EventBridge schedule until send_at, or found cancelled.
    metrics.count("ScheduledHeld", report.held, lane=lane)
    for outcome in report.outcomes:
        if not outcome.variant or not outcome.template_id:
            continue
        if outcome.status == STATUS_SENT:
            metrics.count(VARIANT_METRICS["sent"], template=outcome.template_id, variant=outcome.variant)
        elif outcome.status == STATUS_REJECTED and outcome.reason_code in RENDER_REASON_CODES:
            metrics.count(VARIANT_METRICS["render_failed"], template=outcome.template_id, variant=outcome.variant)
    count_variant_switches(metrics, report.variant_switches)
    return metrics


def count_variant_switches(metrics: MetricGroups, switches: list[VariantSwitch]) -> None:
    """VariantDisabled per template and variant, and once more without them: the alarm's metric."""
    for switch in switches:
        if switch.enabled:
            continue
        metrics.count(METRIC_VARIANT_DISABLED, template=switch.template_id, variant=switch.variant)
        metrics.count(METRIC_VARIANT_DISABLED)


def feedback_metrics(report: FeedbackReport) -> MetricGroups:
    """The feedback function's metrics for one batch.

    Per lane and category (from the message's tags): Bounces (hard-bounced
    recipients) and Complaints. Without dimensions: events by type
    (FeedbackBounce, FeedbackRenderingFailure, ...) and what was suppressed,
    ignored, failed or deferred. Per template and A/B variant: the requests
    first delivered, opened, clicked, bounced or complained about
    (VariantDelivered, ...), and VariantDisabled.
    """
    from mailwright.feedback import NORMALISED_TYPES

    metrics = MetricGroups()
    for name, counter in (("Bounces", report.bounces), ("Complaints", report.complaints)):
        for (lane, category), value in counter.items():
            metrics.count(name, value, lane=lane or UNKNOWN, category=category or UNKNOWN)
    for event_type in NORMALISED_TYPES:  # unknown types are only counted in FeedbackIgnored: no metric per junk name
        metrics.count("Feedback" + event_type.replace(" ", ""), report.by_type[event_type])
    for name, value in (
        ("FeedbackProcessed", report.processed),
        ("FeedbackSuppressed", report.suppressed),
        ("FeedbackSoftBounces", report.soft_bounces),
        ("FeedbackUnsubscribed", report.unsubscribed),
        ("FeedbackIgnored", report.ignored),
        ("FeedbackErrors", report.errors),
        ("FeedbackDeferred", report.deferred),
        ("FeedbackUnmatched", report.unmatched),
        ("FeedbackRetried", len(report.failed)),
    ):
        metrics.count(name, value)
    for (template, variant, status), value in report.variant_events.items():
        metrics.count(VARIANT_METRICS[status], value, template=template, variant=variant)
    count_variant_switches(metrics, report.variant_switches)
    return metrics


# -- failover -------------------------------------------------------------------


class ProviderMetrics:
    """ProviderEvents as EMF metrics (one document each: they come from the send threads) and log lines.

    ProviderBreakerOpened, ProviderBreakerHalfOpen and ProviderBreakerClosed
    count breaker changes; MaybeSent and ProviderPaused what the failover
    sender counts; ProviderBreakerOpen is the state a worker read (1 open or
    half-open, 0 closed); each per lane and provider.
    """

    def __init__(
        self, logger: Logger | logging.Logger | None = None, *, sink: Callable[[str], None] | None = None
    ) -> None:
        self._logger = logger or logging.getLogger("mailwright.failover")
        # Where each EMF document goes: stdout in Lambda (CloudWatch collects it); a file on the local stack.
        self._sink = sink or _print_line

    def breaker_changed(self, change: BreakerChange) -> None:
        """Log the change and count it."""
        self._logger.warning(
            "provider breaker changed",
            extra={
                "lane": change.lane,
                "provider": change.provider,
                "before": change.before,
                "after": change.after,
                "reason": change.reason,
                "actor": change.actor,
            },
        )
        name = {"open": METRIC_PROVIDER_BREAKER_OPENED, "half_open": "ProviderBreakerHalfOpen"}.get(
            change.after, "ProviderBreakerClosed"
        )
        self.count(name, lane=change.lane, provider=change.provider)

    def state(self, *, lane: str, provider: str, is_open: bool) -> None:
        """Write one EMF document with the breaker's state: 1 open (or half-open), 0 closed."""
        self._write(METRIC_PROVIDER_BREAKER_OPEN, 1 if is_open else 0, lane=lane, provider=provider)

    def count(self, name: str, *, lane: str, provider: str) -> None:
        """Write one EMF document counting `name` once for the lane and provider."""
        self._write(name, 1, lane=lane, provider=provider)

    def _write(self, name: str, value: float, *, lane: str, provider: str) -> None:
        # A document of its own, not the invocation's metric set: the send threads call this concurrently.
        document = AmazonCloudWatchEMFProvider(
            namespace=METRICS_NAMESPACE,
            service=SERVICE_NAME,
            metric_set={},
            dimension_set={},
            metadata_set={},
            default_dimensions={},
        )
        document.add_dimension(name="lane", value=lane)
        document.add_dimension(name="provider", value=provider)
        document.add_metric(name=name, unit=MetricUnit.Count, value=value)
        self._sink(json.dumps(document.serialize_metric_set(), separators=(",", ":")))


def _print_line(line: str) -> None:
    # EMF reaches CloudWatch through stdout.
    print(line, flush=True)
