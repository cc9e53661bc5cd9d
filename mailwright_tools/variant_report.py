"""`mailwright templates report`: each A/B variant's counts, and whether the differences are significant.

**Counts.** Per variant: requests sent, requests first delivered, opened,
clicked, bounced and complained about (each request once per status, as the
feedback function counts them), and requests whose parts failed to render.

**Where they come from.**

* A deployed stack: the CloudWatch metrics the send workers and the feedback
  function already publish per `template` and `variant` (VariantSent,
  VariantDelivered, ... in embedded metric format). One GetMetricData call
  answers for any volume, at $0.01 per 1,000 metrics read; a scan of the
  message log would read (and pay for) every item of the table on each
  report, and a query by template would need a further index that every
  request write pays for. Metrics are kept 15 months at hour resolution
  (63 days at 5 minutes), and a variant that sent nothing for two weeks is no
  longer listed.
* The local stack: a scan of the message log filtered by template (the local
  stack publishes no CloudWatch metrics, and its table is small).

**Significance.** Each variant's rate (per email sent) is compared with the
first variant's (the template's first declared, the control) by a two-sided
two-proportion z-test with a pooled proportion, at alpha = 0.05; when a
cell's expected count is under 5 (the normal approximation is then poor)
Fisher's exact test is used instead. Five rates are compared at once, so one
"significant" result in twenty comparisons is expected by chance alone.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailwright.constants import (
    MESSAGE_LOG_REQUEST_SK,
    METRICS_NAMESPACE,
    RENDER_REASON_CODES,
    STATUS_REJECTED,
    STATUS_SENT,
    VARIANT_METRICS,
    Keys,
)

# The statuses counted per request (the first event of each), in the order the report shows them.
OUTCOMES: tuple[str, ...] = ("delivered", "opened", "clicked", "bounced", "complained")
COUNTS: tuple[str, ...] = ("sent", *OUTCOMES, "render_failed")
ALPHA = 0.05
# Below this expected count in any cell of the 2x2 table, Fisher's exact test replaces the z-test.
MIN_EXPECTED = 5.0
Z_TEST = "z-test"
FISHER = "fisher"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(value: str, *, now: float) -> float:
    """`--since`: a duration back from now (30m, 12h, 7d, 2w) or an ISO 8601 time with its offset; epoch seconds."""
    match = _DURATION.match(value)
    if match:
        return now - float(match.group(1)) * _SECONDS[match.group(2)]
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since must be a duration (30m, 12h, 7d, 2w) or an ISO time, not {value!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"--since {value!r} names no time zone: add Z or an offset such as +02:00")
    return moment.timestamp()


# -- statistics ----------------------------------------------------------------------------------------


def normal_two_sided_p(z: float) -> float:
    """The two-sided p-value of a standard normal statistic: P(|Z| >= |z|) = 1 - erf(|z| / sqrt 2)."""
    return 1.0 - math.erf(abs(z) / math.sqrt(2.0))


def two_proportion_z(successes_a: int, n_a: int, successes_b: int, n_b: int) -> tuple[float, float]:
    """The pooled two-proportion z statistic of b against a, and its two-sided p-value (1.0 when undefined)."""
    if not n_a or not n_b:
        return 0.0, 1.0
    pooled = (successes_a + successes_b) / (n_a + n_b)
    variance = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if variance <= 0:
        return 0.0, 1.0  # both rates 0 or both 1: no difference to test
    z = (successes_b / n_b - successes_a / n_a) / math.sqrt(variance)
    return z, normal_two_sided_p(z)


def _log_hypergeometric(k: int, row_a: int, row_b: int, column: int) -> float:
    """log P(X = k) for the first cell of a 2x2 table with these margins."""

    def log_comb(n: int, r: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(r + 1) - math.lgamma(n - r + 1)

    return log_comb(row_a, k) + log_comb(row_b, column - k) - log_comb(row_a + row_b, column)


def fisher_exact_p(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float:
    """Fisher's exact test, two-sided: the probability of tables at most as likely as the observed one."""
    column = successes_a + successes_b
    low, high = max(0, column - n_b), min(column, n_a)
    observed = _log_hypergeometric(successes_a, n_a, n_b, column)
    total = 0.0
    for k in range(low, high + 1):
        log_p = _log_hypergeometric(k, n_a, n_b, column)
        # The relative tolerance keeps tables exactly as likely as the observed one despite rounding.
        if log_p <= observed + 1e-7:
            total += math.exp(log_p)
    return min(total, 1.0)


@dataclass(frozen=True)
class Comparison:
    """One rate of a variant against the control's."""

    status: str
    rate: float
    control_rate: float
    p_value: float
    test: str

    @property
    def difference(self) -> float:
        """The variant's rate minus the control's (as a fraction: 0.01 is one percentage point)."""
        return self.rate - self.control_rate

    @property
    def significant(self) -> bool:
        """Whether the difference is significant at ALPHA."""
        return self.p_value < ALPHA


def compare(status: str, successes_a: int, n_a: int, successes_b: int, n_b: int) -> Comparison:
    """Compare b's rate with a's: the z-test, or Fisher's exact test when an expected count is under 5."""
    rate_a = successes_a / n_a if n_a else 0.0
    rate_b = successes_b / n_b if n_b else 0.0
    total = n_a + n_b
    pooled = (successes_a + successes_b) / total if total else 0.0
    expected = [n * p for n in (n_a, n_b) for p in (pooled, 1 - pooled)]
    if total and min(expected) < MIN_EXPECTED:
        return Comparison(status, rate_b, rate_a, fisher_exact_p(successes_a, n_a, successes_b, n_b), FISHER)
    _, p_value = two_proportion_z(successes_a, n_a, successes_b, n_b)
    return Comparison(status, rate_b, rate_a, p_value, Z_TEST)


# -- the report ----------------------------------------------------------------------------------------


@dataclass
class VariantTally:
    """What one variant counted."""

    variant: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))

    def rate(self, status: str) -> float:
        """`status` per email sent."""
        sent = self.counts["sent"]
        return self.counts[status] / sent if sent else 0.0


@dataclass
class VariantReport:
    """Every variant of one template, the control first, with each one's comparisons against the control."""

    template_id: str
    since: float
    until: float
    source: str
    tallies: list[VariantTally]
    off: dict[str, str] = field(default_factory=dict)

    def comparisons(self, tally: VariantTally) -> list[Comparison]:
        """`tally`'s rates against the control's (none for the control itself)."""
        if not self.tallies or tally is self.tallies[0]:
            return []
        control = self.tallies[0]
        return [
            compare(status, control.counts[status], control.counts["sent"], tally.counts[status], tally.counts["sent"])
            for status in OUTCOMES
        ]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (`--json`)."""
        return {
            "template": self.template_id,
            "since": self.since,
            "until": self.until,
            "source": self.source,
            "alpha": ALPHA,
            "control": self.tallies[0].variant if self.tallies else None,
            "variants": [
                {
                    "variant": tally.variant,
                    "off": self.off.get(tally.variant),
                    **tally.counts,
                    "comparisons": {
                        c.status: {
                            "rate": c.rate,
                            "control_rate": c.control_rate,
                            "difference": c.difference,
                            "p_value": c.p_value,
                            "test": c.test,
                            "significant": c.significant,
                        }
                        for c in self.comparisons(tally)
                    },
                }
                for tally in self.tallies
            ],
        }


def order_tallies(counted: Mapping[str, VariantTally], declared: Sequence[str]) -> list[VariantTally]:
    """The declared variants in their order (zero counts where nothing was counted), then any others by name."""
    names = [*declared, *sorted(set(counted) - set(declared))]
    return [counted.get(name) or VariantTally(name) for name in names]


# -- sources -------------------------------------------------------------------------------------------


def tally_message_log(items: Iterable[Mapping[str, Any]]) -> dict[str, VariantTally]:
    """Count request items (plain values) of one template by variant: their status and first events."""
    tallies: dict[str, VariantTally] = {}
    for item in items:
        variant = item.get("variant")
        if not variant:
            continue
        tally = tallies.setdefault(str(variant), VariantTally(str(variant)))
        status = item.get("status")
        if status == STATUS_SENT:
            tally.counts["sent"] += 1
        elif status == STATUS_REJECTED and item.get("reason_code") in RENDER_REASON_CODES:
            tally.counts["render_failed"] += 1
        # Feedback entries carry `event`; the workers' own entries (sent, rejected) do not.
        seen = {entry.get("status") for entry in item.get("history") or () if entry.get("event")}
        for outcome in OUTCOMES:
            if outcome in seen:
                tally.counts[outcome] += 1
    return tallies


def scan_message_log(client: Any, table: str, template_id: str, *, since: float) -> list[dict[str, Any]]:
    """The request items of `template_id` completed since `since` that have a variant (a filtered scan)."""
    from mailwright.adapters.dynamodb import _plain

    items: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "#sk = :request AND template_id = :template AND attribute_exists(variant) "
        "AND completed_at >= :since",
        "ProjectionExpression": "variant, #status, reason_code, history",
        "ExpressionAttributeNames": {"#sk": Keys.MESSAGES_SK, "#status": "status"},
        "ExpressionAttributeValues": {
            ":request": {"S": MESSAGE_LOG_REQUEST_SK},
            ":template": {"S": template_id},
            ":since": {"N": f"{since:.3f}"},
        },
    }
    while True:
        page = client.scan(**arguments)
        items += [_plain(item) for item in page.get("Items", [])]
        if "LastEvaluatedKey" not in page:
            return items
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def metric_period(since: float, until: float) -> int:
    """One period covering the whole window, in whole minutes as GetMetricData requires."""
    return max(60, math.ceil((until - since) / 60) * 60)


def tally_metrics(client: Any, template_id: str, *, since: float, until: float) -> dict[str, VariantTally]:
    """Sum the per-variant metrics of `template_id` over the window (CloudWatch ListMetrics + GetMetricData)."""
    by_name = {metric: key for key, metric in VARIANT_METRICS.items()}
    found: list[tuple[str, str, list[dict[str, str]]]] = []
    listed: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    paginator = client.get_paginator("list_metrics")
    wanted = [{"Name": "template", "Value": template_id}]
    for page in paginator.paginate(Namespace=METRICS_NAMESPACE, Dimensions=wanted):
        for metric in page.get("Metrics", []):
            dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            # Each metric once, whatever the listing repeats (one query per metric and dimension set).
            key = (metric["MetricName"], tuple(sorted(dimensions.items())))
            if metric["MetricName"] in by_name and "variant" in dimensions and key not in listed:
                listed.add(key)
                found.append((metric["MetricName"], dimensions["variant"], metric["Dimensions"]))
    tallies: dict[str, VariantTally] = {}
    # Whole minutes, the end rounded up: CloudWatch stores counts by the minute, so the current
    # minute's (just published) are in the window too.
    since, until = math.floor(since / 60) * 60, math.ceil(until / 60) * 60 + 60
    period = metric_period(since, until)
    # GetMetricData takes at most 500 queries per call.
    for start in range(0, len(found), 500):
        chunk = found[start : start + 500]
        queries = [
            {
                "Id": f"m{index}",
                "MetricStat": {
                    "Metric": {"Namespace": METRICS_NAMESPACE, "MetricName": name, "Dimensions": dimensions},
                    "Period": period,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
            for index, (name, _, dimensions) in enumerate(chunk)
        ]
        arguments: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": datetime.fromtimestamp(since).astimezone(),
            "EndTime": datetime.fromtimestamp(until).astimezone(),
        }
        while True:
            response = client.get_metric_data(**arguments)
            for result in response.get("MetricDataResults", []):
                name, variant, _ = chunk[int(result["Id"][1:])]
                tally = tallies.setdefault(variant, VariantTally(variant))
                tally.counts[by_name[name]] += int(sum(result.get("Values", [])))
            token = response.get("NextToken")
            if not token:
                break
            arguments["NextToken"] = token
    return tallies


def build_report(
    template_id: str,
    tallies: Mapping[str, VariantTally],
    *,
    declared: Sequence[str],
    since: float,
    until: float | None = None,
    source: str,
    off: Mapping[str, str] | None = None,
) -> VariantReport:
    """The report of one template's variants, the control (first declared) first."""
    return VariantReport(
        template_id=template_id,
        since=since,
        until=time.time() if until is None else until,
        source=source,
        tallies=order_tallies(tallies, declared),
        off=dict(off or {}),
    )
