"""A small SES-outage run (`bench.outage`) with the same invariants as `make chaos`.

225 requests over 30 s across the lanes; SES degrades (a few answers lost
after SES accepted the email), then fails every call for 10 s; traffic goes on
for a while after it returns, so every lane's breaker probes and closes. An
SMTP relay on loopback is the secondary. The breaker is quicker than the default (3
failures, 3 s cooldown) so the run takes well under a minute.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.outage import OutageSettings, run

SMALL = OutageSettings(
    requests=225,
    seed=5,
    publish_seconds=30.0,
    outage_at=10.0,
    outage_seconds=10.0,
    lost_answers=2,
    degrade_seconds=10.0,  # room for the lost answers on a machine busy with other tests
    failure_threshold=3,
    cooldown_seconds=3,
    max_backoff_seconds=10,
    drain_timeout=240.0,
)


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    """One run shared by the tests below."""
    return run(SMALL, progress=lambda _: None)


def test_every_request_is_sent_and_none_is_lost(result: dict[str, Any]) -> None:
    assert result["drained"], "the queues did not drain in time"
    assert result["lost"] == 0, result["lost_ids"]
    assert result["in_dlq"] == 0
    assert result["outcomes"] == {"sent": result["published"]}


def test_critical_and_standard_mail_goes_through_the_relay_during_the_outage(result: dict[str, Any]) -> None:
    during = result["sent_by_relay_during_outage"]
    assert during["critical"] > 0 and during["standard"] > 0
    assert set(result["relay_logged_as"]) == {"relay"}  # the message log names the provider that sent
    for lane in ("critical", "standard"):
        assert result["latency_during_outage_s"][lane]["count"] > 0


def test_bulk_waits_for_ses_and_drains_after_it_returns(result: dict[str, Any]) -> None:
    assert result["bulk_sent_by_relay"] == 0
    assert result["bulk_published_during_outage"] > 0
    assert result["bulk_published_during_outage_sent_by_ses_after"] == result["bulk_published_during_outage"]


def test_no_request_is_sent_by_both_providers_and_lost_answers_stay_with_ses(result: dict[str, Any]) -> None:
    assert result["lost_answers_injected"] > 0
    assert result["sent_by_both"] == 0
    assert result["sent_by_both_outside_crash_window"] == 0
    # The only duplicates: SES sending again what it had accepted when the answer was lost.
    assert result["duplicate_sends"] == result["crash_window_duplicates"]


def test_every_lanes_breaker_opened_and_closed_again(result: dict[str, Any]) -> None:
    for lane, times in result["breakers"].items():
        assert times["first_failure_to_open_s"] is not None, lane
        assert times["return_to_closed_s"] is not None, lane
    assert result["invariants_hold"]
