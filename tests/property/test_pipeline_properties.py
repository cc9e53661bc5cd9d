"""Properties of the send pipeline and the renderer, over arbitrary data (hypothesis).

`tests/unit/test_sending_properties.py` already checks that one valid request
is sent whatever arbitrary bodies share its batch. These add:

* data is a record's own business: whatever JSON a request's `template_data`
  holds, that record ends sent or rejected (never retried, which would loop
  it to the DLQ without a reason) and its batch mates are sent;
* no header of any email ever holds CR or LF, whatever the data;
* data is never executed as template code: it appears verbatim in the text part;
* HTML output escapes data: it appears HTML-escaped in the HTML part.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from mailwright.constants import TERMINAL_STATUSES
from mailwright.errors import HeaderInjectionError
from mailwright.templates import Renderer
from mailwright_tools.fakes import FakeTemplateSource, build_fake_service, queue_record

TEMPLATES = FakeTemplateSource.from_directory()
RENDERER = Renderer()
SAMPLES = {tid: dict(TEMPLATES.get(tid).metadata.sample_data) for tid in TEMPLATES.template_ids}
PROVIDED = {
    "recipient_email": "jane@example.com",
    "postal_address": "Example Co., 1 Example Street",
    "unsubscribe_url": "https://example.com/unsubscribe?token=t",
    "preferences_url": "https://example.com/unsubscribe?token=t&view=preferences",
}
# Where each template shows `user_name` (or `order_id`) in its subject, HTML and text parts.
SUBJECT_VARIABLE = {"welcome_email": "user_name", "order_confirmation": "order_id"}
PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that looks like markup, template code, header injection and odd Unicode.
nasty_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "{{ 7*7 }}",
            "{% for x in range(3) %}x{% endfor %}",
            "{{ ''.__class__.__mro__ }}",
            "<script>alert(1)</script>",
            "\"'><img src=x onerror=alert(1)>",
            "a\r\nBcc: victim@example.com",
            "\nSubject: injected",
            "&amp; &lt; &#x27;",
            "\u2028\u2029\x85",
            "{#",
            "}}",
        ]
    ),
    st.builds(lambda a, b: a + b, st.text(max_size=10), st.sampled_from(["{{", "\r", "\n", "<", "&", "%}"])),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | nasty_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=15,
)


def _data_for(template_id: str, draw_values: dict[str, Any]) -> dict[str, Any]:
    """The template's sample data with some values replaced by arbitrary JSON."""
    return {**SAMPLES[template_id], **draw_values}


template_ids = st.sampled_from(sorted(SAMPLES))


@st.composite
def arbitrary_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed request for a shipped template whose data values are arbitrary JSON."""
    template_id = draw(template_ids)
    keys = sorted(SAMPLES[template_id])
    replaced = draw(st.dictionaries(st.sampled_from(keys), json_values, max_size=len(keys)))
    extra = draw(st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=3))
    return {
        "recipient_email": f"r{draw(st.integers(0, 10_000))}@example.com",
        "template_id": template_id,
        "template_data": {**_data_for(template_id, replaced), **extra},
    }


@PROFILE
@given(requests=st.lists(arbitrary_requests(), min_size=1, max_size=6), position=st.integers(0, 6))
def test_arbitrary_data_ends_its_own_record_sent_or_rejected_and_never_fails_the_batch(
    requests: list[dict[str, Any]], position: int
) -> None:
    # Given requests whose template data is arbitrary JSON, and one plain valid request among them
    valid = {
        "recipient_email": "valid@example.com",
        "template_id": "order_confirmation",
        "template_data": SAMPLES["order_confirmation"],
    }
    bodies = [json.dumps(r) for r in requests]
    bodies.insert(min(position, len(bodies)), json.dumps(valid))
    records = [queue_record(b, message_id=f"m{i}") for i, b in enumerate(bodies)]
    service, world = build_fake_service(templates=TEMPLATES, renderer=RENDERER)
    try:
        # When the batch is processed (no dependency fails)
        report = service.process(records)
    finally:
        world.close()

    # Then nothing is retried: the data decides, once and for all
    assert report.failed == [], report.retry_reasons
    assert all(o.status in TERMINAL_STATUSES for o in report.outcomes)
    # And a rejection names its reason
    assert all(o.reason_code and o.reason for o in report.outcomes if o.status == "rejected")
    # And the valid request is sent exactly once
    assert len(world.sender.sent_to("valid@example.com")) == 1


@PROFILE
@given(
    request=arbitrary_requests(),
    user_id=st.one_of(st.none(), nasty_text),
    locale=st.sampled_from([None, "fr", "fr-CA"]),
)
def test_no_header_ever_carries_cr_or_lf(request: dict[str, Any], user_id: str | None, locale: str | None) -> None:
    # Given a request with arbitrary data, user id and locale, for a template of any category
    body = dict(request)
    if user_id is not None:
        body["user_id"] = user_id
    if locale is not None:
        body["locale"] = locale
    service, world = build_fake_service(templates=TEMPLATES, renderer=RENDERER)
    try:
        service.process([queue_record(json.dumps(body))])
    finally:
        world.close()

    # Then every email handed to SES has clean headers
    for email in world.sender.attempts:
        values = [email.subject, email.from_address, email.to_address]
        values += [name for name, _ in email.headers] + [value for _, value in email.headers]
        values += [name for name, _ in email.tags] + [value for _, value in email.tags]
        assert not any("\r" in v or "\n" in v for v in values), email


def _render_marked(template_id: str, value: str, locale: str) -> tuple[str, Any]:
    """Render with `value` between markers in the variable the subject and body show; None if the subject
    header would hold a line break (HeaderInjectionError), the one way data may stop a render.
    """
    marked = f"Q7X{value}X7Q"
    data = {**SAMPLES[template_id], SUBJECT_VARIABLE[template_id]: marked}
    try:
        return marked, RENDERER.render(TEMPLATES.get(template_id), locale=locale, data=data, provided=PROVIDED)
    except HeaderInjectionError:
        return marked, None


variables = {
    "template_id": st.sampled_from(sorted(SUBJECT_VARIABLE)),
    "value": nasty_text,
    "locale": st.sampled_from(["en", "fr"]),
}


@PROFILE
@given(**variables)
def test_data_is_never_executed_as_template_code(template_id: str, value: str, locale: str) -> None:
    # Given arbitrary text, template syntax included, as the variable the subject and body show
    marked, rendered = _render_marked(template_id, value, locale)

    # Then only a line break for the subject header stops the render
    if rendered is None:
        assert "\r" in value or "\n" in value
        return
    # And the text part and the subject hold the value verbatim: inserted, never evaluated
    assert marked in rendered.text
    assert marked in rendered.subject


@PROFILE
@given(**variables)
def test_html_output_escapes_data(template_id: str, value: str, locale: str) -> None:
    # Given arbitrary text in a variable the HTML part shows
    marked, rendered = _render_marked(template_id, value, locale)
    if rendered is None:
        return

    # Then the HTML part holds the value escaped
    assert str(escape(marked)) in rendered.html
    # And never raw where escaping changes it
    if str(escape(marked)) != marked:
        assert marked not in rendered.html
