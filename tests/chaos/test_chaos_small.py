"""A small fault-injection run (`bench.chaos`) with the same invariants as `make chaos`."""

from __future__ import annotations

from typing import Any

import pytest

from bench.chaos import ChaosSettings, run

# 150 requests: the run's length is set by the crashed batches' visibility timeout, not by the traffic, and
# fewer requests leave the other test worker more CPU; every fault kind is still injected several times
# (`test_faults_were_injected` holds each to a floor).
SMALL = ChaosSettings(
    requests=150,
    seed=3,
    ses_throttle_rate=0.20,
    ses_5xx_every=120,
    ses_5xx_burst=8,
    # Throttling episodes often and long enough that a run of well under a minute meets several.
    ddb_throttle_every_seconds=8.0,
    ddb_throttle_seconds=1.0,
    crash_rate=0.0,
    crash_at=(10, 30, 60),  # early, so the crashed batches come back while the rest is processed
    duplicate_rate=0.05,
    poison_rate=0.05,
    # Timeouts with room for a machine busy with other tests (`make test` runs a worker per core): a batch
    # that overruns on a starved CPU is retried, and too many retries would outlast the drain.
    timeout_seconds=10,
    visibility_seconds=30,
    max_backoff_seconds=10,
    drain_timeout=240.0,
)


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    """One run shared by the tests below (it takes most of a minute)."""
    return run(SMALL, progress=lambda _: None)


# Each fault kind at least this many times (a run injects several times more of most).
FEW = 3


def test_faults_were_injected(result: dict[str, Any]) -> None:
    faults = result["faults"]
    assert faults.get("ses_throttled", 0) >= FEW
    assert faults.get("ses_5xx", 0) >= FEW
    assert faults.get("dynamodb_throttled_attempts", 0) >= FEW
    assert faults.get("crash_after_accept", 0) == len(SMALL.crash_at)
    assert result["duplicate_deliveries_published"] >= FEW
    assert result["poison"] >= FEW


def test_every_request_is_accounted_for(result: dict[str, Any]) -> None:
    assert result["drained"], "the queues did not drain in time"
    assert result["lost"] == 0, result["lost_ids"]


def test_nothing_is_sent_to_suppressed_or_opted_out_recipients(result: dict[str, Any]) -> None:
    assert result["sent_to_suppressed"] == 0
    assert result["sent_to_opted_out"] == 0


def test_duplicates_come_only_from_accepted_but_unrecorded_sends(result: dict[str, Any]) -> None:
    assert result["unexplained_duplicates"] == 0
    assert result["duplicate_sends"] == result["crash_window_duplicates"]


def test_every_poison_message_has_a_recorded_reason(result: dict[str, Any]) -> None:
    assert result["poison_without_reason"] == 0
