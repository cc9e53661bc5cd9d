"""A Handlebars template end to end: uploaded to the bucket like any template, sent by the worker (moto)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3

from mailwright_tools.provision import StackResources, upload_templates
from tests.functional.test_send_worker import Make, request_id

SHIPPED = Path(__file__).resolve().parents[2] / "templates"
HTML = (
    "<p>Hi {{name}}</p>\n{{#each items}}<li>{{@index}}. {{title}}</li>{{/each}}\n{{#if coupon}}<b>{{coupon}}</b>{{/if}}"
)


def publish_handlebars_template(stack: StackResources, tmp_path: Path) -> None:
    """Upload a Handlebars `shipped_order` template (as `templates upload` or the deploy would)."""
    shutil.copytree(SHIPPED / "_layouts", tmp_path / "_layouts")
    path = tmp_path / "shipped_order"
    (path / "en").mkdir(parents=True)
    meta = {
        "category": "transactional",
        "engine": "handlebars",
        "required_variables": ["name", "items"],
        "optional_variables": ["coupon"],
        "sample_data": {"name": "Jo", "items": [{"title": "Mug"}]},
    }
    (path / "template.json").write_text(json.dumps(meta), encoding="utf-8")
    (path / "en" / "subject.txt").write_text("{{name}}, {{length items}} items shipped", encoding="utf-8")
    (path / "en" / "body.html").write_text(HTML, encoding="utf-8")
    (path / "en" / "body.txt").write_text("Hi {{name}} & co\n{{#each items}}- {{title}}\n{{/each}}", encoding="utf-8")
    upload_templates(boto3.client("s3"), stack.templates_bucket, tmp_path)


def request(**data: Any) -> dict[str, Any]:
    """A request for the Handlebars template."""
    return {"recipient_email": "jane@example.com", "template_id": "shipped_order", "template_data": data}


def test_a_handlebars_template_is_sent_escaped_and_strict(worker: Make, stack: StackResources, tmp_path: Path) -> None:
    # Given a Handlebars template in the bucket
    publish_handlebars_template(stack, tmp_path)
    good = request(name="<Jo>", items=[{"title": "Mug"}, {"title": "Tea & cake"}])
    missing = request(name="Al", items=[{"name": "no title"}])

    # When a good request and one whose item lacks a field go through the worker
    w = worker("standard")
    w.publish(good, missing)
    assert w.run_batch()["batchItemFailures"] == []

    # Then the good one is rendered (HTML escaped, text not) and sent
    (call,) = w.ses_calls
    assert call.subject == "<Jo>, 2 items shipped"
    assert "<p>Hi &lt;Jo&gt;</p>" in call.html
    assert "<li>1. Tea &amp; cake</li>" in call.html
    assert "<b>" not in call.html  # the optional coupon was absent: false, not an error
    # And the other is rejected for the missing variable, naming file and line, never retried
    entry = w.logged(request_id(missing))
    assert entry is not None
    assert entry["status"] == "rejected"
    assert entry["reason_code"] == "missing_variable"
    assert "shipped_order/en/body.html:2: 'title' is undefined" in entry["reason"]
