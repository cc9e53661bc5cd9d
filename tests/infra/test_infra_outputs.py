"""Stack outputs: the CLI finds a deployed stack's resources by these exact keys."""

from __future__ import annotations

import pytest

from mailwright.constants import LANES, Outputs
from tests.infra.synth import Synthesized

# Each module shares the session's synthesized stack (see conftest.py).
pytestmark = pytest.mark.slow


def test_outputs_are_exactly_the_documented_keys(synthesized: Synthesized) -> None:
    expected = {
        Outputs.EVENT_BUS_NAME,
        Outputs.TEMPLATES_BUCKET,
        Outputs.PREFERENCES_TABLE,
        Outputs.SUPPRESSION_TABLE,
        Outputs.IDEMPOTENCY_TABLE,
        Outputs.MESSAGES_TABLE,
        Outputs.CONFIGURATION_SET,
        Outputs.INGEST_DLQ_URL,
        Outputs.UNSUBSCRIBE_URL,
        Outputs.ADDRESS_KEY_SECRET_ARN,
        Outputs.FEEDBACK_QUEUE_URL,
        Outputs.FEEDBACK_DLQ_URL,
        Outputs.FEEDBACK_TOPIC_ARN,
        Outputs.FEEDBACK_WORKER_NAME,
        Outputs.ALARM_TOPIC_ARN,
        Outputs.DASHBOARD_NAME,
        Outputs.REPUTATION_ALARMS,
        Outputs.BREAKER_DLQ_URL,
        Outputs.API_URL,
        Outputs.API_ID,
        Outputs.PRODUCER_API_URL,
        Outputs.PRODUCER_API_ID,
        Outputs.PRODUCER_PLANS,
        Outputs.PRODUCERS_TABLE,
        Outputs.KEY_RETIREMENT_ROLE_ARN,
        Outputs.EVENTS_DLQ_URL,
        Outputs.WEBHOOK_STATE_TABLE,
        Outputs.WEBHOOK_ARCHIVE_BUCKET,
        Outputs.SCHEDULE_GROUP,
        Outputs.SCHEDULE_DLQ_URL,
        *(Outputs.parked_dlq_url(lane) for lane in LANES),
        *(Outputs.queue_url(lane) for lane in LANES),
        *(Outputs.dlq_url(lane) for lane in LANES),
        *(Outputs.worker_name(lane) for lane in LANES),
    }

    assert set(synthesized.json["Outputs"]) == expected


def test_outputs_are_not_exported(synthesized: Synthesized) -> None:
    # Exports would pin the resources against replacement; the CLI reads outputs instead.
    assert all("Export" not in output for output in synthesized.json["Outputs"].values())


def test_worker_name_outputs_point_at_the_workers(synthesized: Synthesized) -> None:
    for lane, (function_id, _) in synthesized.workers().items():
        assert synthesized.output_ref(Outputs.worker_name(lane)) == function_id
