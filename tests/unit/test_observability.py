"""Logs with addresses masked on every handler's logger; metrics grouped into valid EMF documents."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.metrics import MetricUnit

from mailwright.handlers import breaker, feedback, send_worker, unsubscribe
from mailwright.observability import AddressMaskingFormatter, MetricGroups, batch_metrics, flush_document
from mailwright.ports import Outcome
from mailwright.sending import BatchReport

HANDLER_MODULES = [send_worker, feedback, unsubscribe, breaker]
PLAIN_ADDRESS = re.compile(r"[a-z0-9.+-]*[a-z0-9+-]@[a-z0-9-]+\.[a-z]+", re.IGNORECASE)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the handlers' shared Powertools logger writes, captured from its own handler."""
    handler = send_worker.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


@pytest.mark.parametrize("module", HANDLER_MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_handler_logs_json_through_the_masking_formatter(module: ModuleType) -> None:
    assert module.logger.service == "mailwright"
    assert isinstance(module.logger.registered_formatter, AddressMaskingFormatter)


def test_a_log_line_with_an_address_comes_out_masked(log_lines: io.StringIO) -> None:
    # Given addresses in the message, in extra fields (nested too), in a domain logger and in an exception
    send_worker.logger.info(
        "sent to jane.doe@example.com", recipient="bob@example.org", extra_data={"to": ["ann@example.net"]}
    )
    logging.getLogger("mailwright.sending").warning(
        "could not send", extra={"error": "550 5.1.1 <joe@example.com>: user unknown"}
    )
    try:
        raise ValueError("bad address x-ray@example.com")
    except ValueError:
        send_worker.logger.exception("failed")

    # When the lines are written, Then none holds an address in clear, and each is still JSON
    output = log_lines.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    assert len(lines) == 3
    assert PLAIN_ADDRESS.findall(output) == []
    assert lines[0]["message"] == "sent to j***@example.com"
    assert lines[0]["recipient"] == "b***@example.org"
    assert lines[0]["extra_data"] == {"to": ["a***@example.net"]}
    assert lines[1]["error"] == "550 5.1.1 <j***@example.com>: user unknown"
    assert "x***@example.com" in lines[2]["exception"]
    assert lines[2]["level"] == "ERROR" and lines[2]["service"] == "mailwright"


class Sink:
    """Records what MetricGroups.publish writes, document by document."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = [{"dimensions": {}, "metrics": []}]

    def add_dimension(self, name: str, value: str) -> None:
        self.documents[-1]["dimensions"][name] = value

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.documents[-1]["metrics"].append((name, unit, value))

    def flush(self) -> None:
        self.documents.append({"dimensions": {}, "metrics": []})


def test_groups_become_documents_and_the_last_is_left_for_the_end_of_the_invocation() -> None:
    groups = MetricGroups()
    groups.count("Sent", lane="bulk", category="marketing")
    groups.count("Sent", 2, lane="bulk", category="marketing")
    groups.count("Sent", lane="bulk", category="product")
    groups.add("SendLatency", 12.5, MetricUnit.Milliseconds, lane="bulk", category="marketing")
    groups.count("Retried", 0, lane="bulk")  # nothing to count: no document
    sink = Sink()

    groups.publish(sink)

    assert sink.documents == [
        {
            "dimensions": {"lane": "bulk", "category": "marketing"},
            "metrics": [("Sent", "Count", 3), ("SendLatency", "Milliseconds", 12.5)],
        },
        {"dimensions": {"lane": "bulk", "category": "product"}, "metrics": [("Sent", "Count", 1)]},
    ]


def test_powertools_metrics_are_flushed_with_flush_metrics() -> None:
    calls: list[str] = []

    class PowertoolsLike:
        def flush_metrics(self) -> None:
            calls.append("flush_metrics")

    flush_document(PowertoolsLike())

    assert calls == ["flush_metrics"]


def _outcome(status: str, category: str | None, reason_code: str | None = None) -> Outcome:
    return Outcome(request_id="r", status=status, lane="standard", category=category, reason_code=reason_code)


@pytest.mark.parametrize(
    ("reason_code", "render_failed"),
    [
        ("missing_variable", True),
        ("render_error", True),
        ("sandbox_violation", True),
        ("header_injection", True),
        ("invalid_request", False),
        ("ses_rejected", False),
    ],
)
def test_render_failures_are_rejections_with_a_template_reason(reason_code: str, render_failed: bool) -> None:
    report = BatchReport(outcomes=[_outcome("rejected", "marketing", reason_code)])

    (group,) = batch_metrics(report, lane="standard", now=0.0).groups()

    assert group[0] == {"lane": "standard", "category": "marketing"}
    names = {metric.name for metric in group[1]}
    assert names == ({"Rejected", "RenderFailed"} if render_failed else {"Rejected"})


def test_batch_metrics_name_every_outcome_and_fall_back_to_unknown() -> None:
    report = BatchReport(
        failed=["m1", "m2"],
        outcomes=[
            _outcome("sent", "security"),
            _outcome("suppressed", "marketing"),
            _outcome("opted_out", "marketing"),
            _outcome("rate_limited", "marketing"),
            _outcome("rejected", None, "invalid_json"),
        ],
        retry_reasons={"m1": "throttled", "m2": "throttled"},
        retry_categories={"m1": "security"},
        duplicates=1,
    )

    groups = {
        tuple(d.items()): {m.name: m.value for m in v}
        for d, v in batch_metrics(report, lane="critical", now=0).groups()
    }

    assert groups == {
        (("lane", "critical"), ("category", "security")): {"Sent": 1, "Throttled": 1},
        (("lane", "critical"), ("category", "marketing")): {"Suppressed": 1, "OptedOut": 1, "RateLimited": 1},
        (("lane", "critical"), ("category", "unknown")): {"Rejected": 1, "Throttled": 1},
        (("lane", "critical"),): {"Retried": 2, "Duplicates": 1},
    }
