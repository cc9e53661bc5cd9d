"""`mailwright templates import-ses`: an SES stored template into templates/ as a Handlebars template.

moto has no sesv2 GetEmailTemplate, so SES answers through botocore's Stubber:
the request the importer makes is checked against the SES API model too.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from mailwright.templates import Renderer, load_template_dir
from mailwright_tools import ses_import
from mailwright_tools.cli import app
from mailwright_tools.fakes import TEMPLATES_DIR
from mailwright_tools.ses_import import TemplateImportError, import_ses_template, template_id_for

SES_HTML = (
    "<h1>Hi {{name}}</h1>\n<ul>{{#each items}}<li>{{title}}: {{price}}</li>{{/each}}</ul>\n"
    '{{#if coupon}}<p>Use {{coupon}}</p>{{/if}}<a href="{{trackingUrl}}">Track</a>'
)
SES_TEXT = "Hi {{name}}\n{{#each items}}\n- {{title}}: {{price}}\n{{/each}}\nTrack: {{trackingUrl}}\n"


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A templates directory holding the shipped layouts (imported templates do not use them)."""
    root = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR / "_layouts", root / "_layouts")
    return root


@pytest.fixture
def ses() -> Iterator[tuple[Any, Stubber]]:
    """An SES v2 client whose answers the test queues."""
    client = boto3.client("sesv2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def answer(stubber: Stubber, name: str, **content: str) -> None:
    """Queue SES's GetEmailTemplate answer for `name`."""
    stubber.add_response(
        "get_email_template",
        {"TemplateName": name, "TemplateContent": content},
        expected_params={"TemplateName": name},
    )


def test_an_ses_template_comes_over_unchanged_as_handlebars(ses: tuple[Any, Stubber], templates: Path) -> None:
    # Given an SES stored template with a loop, a condition and a link
    client, stubber = ses
    answer(stubber, "OrderShipped", Subject="Your order {{orderId}} shipped", Html=SES_HTML, Text=SES_TEXT)

    # When it is imported
    result = import_ses_template(client, "OrderShipped", templates_dir=templates)

    # Then its parts are written as they were, with a template.json naming the engine and the variables
    path = templates / "order_shipped"
    assert result.path == path
    assert (path / "en" / "body.html").read_text() == SES_HTML
    assert (path / "en" / "body.txt").read_text() == SES_TEXT
    assert (path / "en" / "subject.txt").read_text() == "Your order {{orderId}} shipped"
    meta = json.loads((path / "template.json").read_text())
    assert meta["engine"] == "handlebars"
    assert meta["category"] == "transactional"
    assert meta["required_variables"] == ["coupon", "items", "name", "orderId", "trackingUrl"]
    assert meta["sample_data"]["items"] == []
    assert meta["sample_data"]["trackingUrl"].startswith("https://")
    # And it renders like any other template
    bundle = load_template_dir(path)
    data = {"name": "Jo", "orderId": "A1", "items": [{"title": "Mug", "price": "$5"}], "trackingUrl": "https://t"}
    rendered = Renderer().render(bundle, locale="en", data={**data, "coupon": ""}, provided={})
    assert rendered.subject == "Your order A1 shipped"
    assert "<li>Mug: $5</li>" in rendered.html
    assert "- Mug: $5" in rendered.text


def test_ses_unsubscribe_placeholder_becomes_mailwrights(ses: tuple[Any, Stubber], templates: Path) -> None:
    client, stubber = ses
    html = '<p>{{name}}</p><a href="{{amazonSESUnsubscribeUrl}}">Unsubscribe</a>'
    answer(stubber, "promo", Subject="News", Html=html, Text="{{name}} {{{amazonSESUnsubscribeUrl}}}")

    result = import_ses_template(client, "promo", templates_dir=templates, category="marketing")

    assert (templates / "promo" / "en" / "body.html").read_text() == html.replace(
        "amazonSESUnsubscribeUrl", "unsubscribe_url"
    )
    assert (templates / "promo" / "en" / "body.txt").read_text() == "{{name}} {{unsubscribe_url}}"
    assert result.variables == ["name"]  # unsubscribe_url is provided by mailwright
    assert any("amazonSESUnsubscribeUrl" in note for note in result.notes)


def test_a_missing_part_is_made_from_the_other(ses: tuple[Any, Stubber], templates: Path) -> None:
    client, stubber = ses
    answer(stubber, "text-only", Subject="Hi", Text="Hello {{name}} & <friends>\n")
    answer(stubber, "html-only", Subject="Hi", Html='<p>Hello {{name}}</p><p><a href="{{link}}">Go</a></p>')

    import_ses_template(client, "text-only", templates_dir=templates)
    import_ses_template(client, "html-only", templates_dir=templates)

    page = (templates / "text-only" / "en" / "body.html").read_text()
    assert "Hello {{name}} &amp; &lt;friends&gt;" in page
    assert (templates / "html-only" / "en" / "body.txt").read_text() == "Hello {{name}}\n\nGo ({{link}})\n"


def test_an_unknown_template_is_said_plainly(ses: tuple[Any, Stubber], templates: Path) -> None:
    client, stubber = ses
    stubber.add_client_error("get_email_template", "NotFoundException", "Template nope does not exist.")
    with pytest.raises(TemplateImportError, match="SES has no stored template named 'nope'") as caught:
        import_ses_template(client, "nope", templates_dir=templates)
    assert not caught.value.usage
    assert not (templates / "nope").exists()


def test_an_existing_template_is_kept_unless_forced(ses: tuple[Any, Stubber], templates: Path) -> None:
    client, stubber = ses
    (templates / "welcome").mkdir()
    with pytest.raises(TemplateImportError, match="already exists") as caught:
        import_ses_template(client, "Welcome", templates_dir=templates)
    assert caught.value.usage

    answer(stubber, "Welcome", Subject="Hi {{name}}", Html="<p>{{name}}</p>", Text="{{name}}")
    import_ses_template(client, "Welcome", templates_dir=templates, force=True)
    assert (templates / "welcome" / "en" / "subject.txt").read_text() == "Hi {{name}}"


def test_a_template_using_what_mailwright_cannot_render_is_refused(ses: tuple[Any, Stubber], templates: Path) -> None:
    client, stubber = ses
    answer(stubber, "custom", Subject="Hi", Html="{{#myHelper x}}y{{/myHelper}}", Text="Hi")
    with pytest.raises(TemplateImportError, match="unknown helper 'myHelper'"):
        import_ses_template(client, "custom", templates_dir=templates)
    assert not (templates / "custom").exists()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("OrderShipped", "order_shipped"), ("welcome-v2", "welcome-v2"), ("My Template!", "my_template")],
)
def test_template_ids_come_from_ses_names(name: str, expected: str) -> None:
    assert template_id_for(name) == expected


def test_the_cli_imports_and_lists_what_is_left_to_fix(
    ses: tuple[Any, Stubber], templates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SES holding a marketing template without the postal address
    client, stubber = ses
    answer(stubber, "Promo", Subject="Hi {{name}}", Html="<p>{{name}}</p>", Text="{{name}}")
    monkeypatch.setattr(ses_import, "sesv2_client", lambda region=None: client)

    # When the CLI imports it as marketing mail
    result = CliRunner().invoke(
        app,
        ["templates", "import-ses", "Promo", "--category", "marketing", "--templates-dir", str(templates), "--json"],
        catch_exceptions=False,
    )

    # Then it is written, and the CAN-SPAM findings are listed for the author
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["template_id"] == "promo"
    assert report["ok"] is False
    assert (
        "promo/en/body.html: marketing mail needs the postal address ({{ postal_address }}) in body.html (CAN-SPAM)"
        in (report["problems"])
    )


def test_the_cli_refuses_an_unknown_category(templates: Path) -> None:
    result = CliRunner().invoke(
        app, ["templates", "import-ses", "X", "--category", "spam", "--templates-dir", str(templates)]
    )
    assert result.exit_code == 2
    assert "--category must be one of security, transactional, product, marketing" in result.stderr
