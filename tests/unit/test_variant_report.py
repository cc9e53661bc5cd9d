"""`templates report`: the significance tests, the counts read from the message log, `--since`."""

from __future__ import annotations

import math
from typing import Any

import pytest

from mailwright_tools.variant_report import (
    FISHER,
    Z_TEST,
    VariantTally,
    build_report,
    compare,
    fisher_exact_p,
    metric_period,
    normal_two_sided_p,
    parse_since,
    tally_message_log,
    two_proportion_z,
)


def test_the_normal_tail_matches_the_textbook_values() -> None:
    assert normal_two_sided_p(1.959964) == pytest.approx(0.05, abs=1e-6)
    assert normal_two_sided_p(-2.575829) == pytest.approx(0.01, abs=1e-6)
    assert normal_two_sided_p(0.0) == 1.0


def test_the_z_test_of_two_proportions() -> None:
    # 20% of 1000 against 25% of 1000: pooled 22.5%, z = 0.05 / sqrt(.225 * .775 * 2/1000) = 2.6774
    z, p = two_proportion_z(200, 1000, 250, 1000)

    assert z == pytest.approx(2.6774, abs=1e-4)
    assert p == pytest.approx(0.00742, abs=1e-4)
    assert two_proportion_z(250, 1000, 200, 1000)[0] == pytest.approx(-z)  # the sign says which is higher
    assert two_proportion_z(0, 100, 0, 100) == (0.0, 1.0)  # no events: nothing to test
    assert two_proportion_z(5, 0, 5, 10) == (0.0, 1.0)


def test_fishers_exact_test_of_the_tea_tasting_table() -> None:
    # Fisher's lady tasting tea, [[3, 1], [1, 3]]: two-sided p = 34/70
    assert fisher_exact_p(3, 4, 1, 4) == pytest.approx(34 / 70)
    # [[1, 9], [11, 3]] of 10 and 14: the classic example, two-sided p = 0.002759
    assert fisher_exact_p(1, 10, 11, 14) == pytest.approx(0.0027594, abs=1e-6)
    assert fisher_exact_p(0, 10, 0, 10) == pytest.approx(1.0)


def test_small_expected_counts_use_fishers_test_and_large_ones_the_z_test() -> None:
    small = compare("complained", 0, 400, 4, 400)  # expected 2 complaints per variant
    large = compare("opened", 200, 1000, 250, 1000)

    assert small.test == FISHER and not small.significant
    assert small.p_value == pytest.approx(fisher_exact_p(0, 400, 4, 400))
    assert large.test == Z_TEST and large.significant
    assert large.difference == pytest.approx(0.05) and large.rate == 0.25 and large.control_rate == 0.2


def item(variant: str, status: str = "sent", *events: str, reason_code: str | None = None) -> dict[str, Any]:
    history: list[dict[str, Any]] = [{"status": status, "at": 1.0}]
    history += [{"event": "X", "status": event, "at": 2.0} for event in events]
    return {"variant": variant, "status": status, "reason_code": reason_code, "history": history}


def test_the_message_log_counts_each_request_once_per_status() -> None:
    items = [
        item("control", "sent", "delivered", "opened", "opened", "clicked"),
        item("control", "sent", "delivered"),
        item("short", "sent", "bounced"),
        item("short", "sent", "delivered", "complained"),
        item("short", "rejected", reason_code="missing_variable"),
        item("short", "rejected", reason_code="unknown_template"),  # not the variant's fault
        {"status": "sent", "history": []},  # no variant
    ]

    tallies = tally_message_log(items)

    assert tallies["control"].counts == {
        "sent": 2, "delivered": 2, "opened": 1, "clicked": 1, "bounced": 0, "complained": 0, "render_failed": 0,
    }  # fmt: skip
    assert tallies["short"].counts == {
        "sent": 2, "delivered": 1, "opened": 0, "clicked": 0, "bounced": 1, "complained": 1, "render_failed": 1,
    }  # fmt: skip
    assert set(tallies) == {"control", "short"}


def test_the_report_puts_the_control_first_and_compares_the_others_with_it() -> None:
    control, short = VariantTally("control"), VariantTally("short")
    control.counts.update(sent=1000, opened=200)
    short.counts.update(sent=1000, opened=250)

    report = build_report(
        "promo", {"short": short, "control": control}, declared=("control", "short", "long"), since=0.0,
        until=10.0, source="message log", off={"long": "complaint_rate"},
    )  # fmt: skip
    data = report.to_json()

    assert [v["variant"] for v in data["variants"]] == ["control", "short", "long"]
    assert data["control"] == "control" and data["variants"][0]["comparisons"] == {}
    opened = data["variants"][1]["comparisons"]["opened"]
    assert opened["significant"] is True and opened["test"] == Z_TEST
    assert opened["difference"] == pytest.approx(0.05)
    assert data["variants"][2]["sent"] == 0 and data["variants"][2]["off"] == "complaint_rate"


def test_since_takes_durations_and_zoned_times() -> None:
    assert parse_since("7d", now=1_000_000.0) == 1_000_000.0 - 7 * 86400
    assert parse_since("30m", now=1000.0) == -800.0
    assert parse_since("2026-01-01T00:00:00Z", now=0) == 1_767_225_600.0
    with pytest.raises(ValueError, match="time zone"):
        parse_since("2026-01-01T00:00:00", now=0)
    with pytest.raises(ValueError, match="duration"):
        parse_since("last week", now=0)


def test_the_metric_period_covers_the_window_in_whole_minutes() -> None:
    assert metric_period(0, 30) == 60
    assert metric_period(0, 7 * 86400 + 1) == math.ceil((7 * 86400 + 1) / 60) * 60
