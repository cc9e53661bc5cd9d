"""Property: whatever else a batch holds, good requests are sent and every record is accounted for."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailwright.templates import Renderer
from mailwright_tools.fakes import FakeTemplateSource, build_fake_service, queue_record

TEMPLATES = FakeTemplateSource.from_directory()
RENDERER = Renderer()
VALID = {
    "recipient_email": "valid@example.com",
    "template_id": "welcome_email",
    "template_data": {"user_name": "Val", "login_link": "https://your-app.com/login"},
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# Bodies that look more or less like requests, so records get past parsing and into later stages.
request_like = st.fixed_dictionaries(
    {
        "recipient_email": st.one_of(
            st.emails(), st.text(max_size=30), st.sampled_from(["x@example.com", "X@EXAMPLE.COM"])
        ),
        "template_id": st.sampled_from(["welcome_email", "newsletter", "password_reset", "order_confirmation", "nope"]),
        "template_data": st.dictionaries(
            st.sampled_from(
                ["user_name", "login_link", "headline", "articles", "order_id", "total_amount", "reset_link"]
            ),
            st.one_of(
                st.text(max_size=30), st.integers(), st.lists(st.dictionaries(st.text(max_size=5), st.text(max_size=5)))
            ),
        ),
    },
    optional={
        "user_id": st.text(max_size=12),
        "locale": st.sampled_from(["fr", "fr_CA", "de", "xx-YY", "!"]),
        "priority": st.sampled_from(["critical", "bulk", "urgent"]),
        "idempotency_key": st.sampled_from(["k1", "k2"]),
        "metadata": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
        "extra_field": json_values,
    },
)
bodies = st.one_of(
    st.text(max_size=60),
    json_values.map(json.dumps),
    request_like.map(json.dumps),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(others=st.lists(bodies, max_size=8), position=st.integers(min_value=0, max_value=8))
def test_valid_request_is_sent_whatever_its_batch_mates(others: list[str], position: int) -> None:
    # Given one valid request somewhere among arbitrary bodies
    texts = list(others)
    texts.insert(min(position, len(texts)), json.dumps(VALID))
    records = [queue_record(text, message_id=f"m{i}") for i, text in enumerate(texts)]
    service, world = build_fake_service(templates=TEMPLATES, renderer=RENDERER)
    try:
        # When the batch is processed
        report = service.process(records)
    finally:
        world.close()

    # Then the valid request is sent exactly once
    assert len(world.sender.sent_to("valid@example.com")) == 1
    # And every record ends with exactly one outcome, one retry, or as a counted duplicate
    assert len(report.failed) == len(set(report.failed))
    assert set(report.retry_reasons) == set(report.failed) <= {r.message_id for r in records}
    assert len(report.outcomes) + len(report.failed) + report.duplicates == len(records)
    # And every outcome is in the message log
    logged = world.message_log.statuses({o.request_id for o in report.outcomes})
    assert logged == {o.request_id: o.status for o in report.outcomes}
    # And nothing that becomes a header holds a line break
    for email in world.sender.sent:
        values: list[Any] = [email.subject, email.from_address, email.to_address]
        values += [value for _, value in email.headers] + [value for _, value in email.tags]
        assert not any("\r" in v or "\n" in v for v in values), email
