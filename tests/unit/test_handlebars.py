"""Handlebars and Mustache templates: the engine's subset, strict variables, escaping, and the renderer around it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailwright.errors import HeaderInjectionError, TemplateFormatError, TemplateRenderError
from mailwright.handlebars import HandlebarsError, HandlebarsMissingError, compile_template, format_date
from mailwright.templates import LocaleParts, Renderer, TemplateBundle, TemplateMetadata, load_template_dir

PROVIDED = {
    "recipient_email": "jane@example.com",
    "postal_address": "Example Co., 1 Example Street",
    "unsubscribe_url": "https://example.com/unsubscribe?token=t",
    "preferences_url": "https://example.com/unsubscribe?token=t&view=preferences",
}


def hbs(source: str, data: dict[str, Any], *, escape: bool = True) -> str:
    """Render a Handlebars source."""
    return compile_template(source, name="t/en/body.html").render(data, escape=escape)


def bundle(
    subject: str = "Hi {{name}}",
    html: str = "<p>{{name}}</p>",
    text: str = "{{name}}",
    *,
    required: tuple[str, ...] = ("name",),
    optional: tuple[str, ...] = (),
    locales: tuple[str, ...] = ("en",),
) -> TemplateBundle:
    """A Handlebars bundle whose locales share the parts (`{{locale}}` in the subject becomes the locale)."""
    metadata = TemplateMetadata(
        category="transactional", engine="handlebars", required_variables=required, optional_variables=optional
    )
    parts = {loc: LocaleParts(subject=subject.replace("[loc]", loc), html=html, text=text) for loc in locales}
    return TemplateBundle(template_id="imported", metadata=metadata, locales=parts, version="v1")


def render(b: TemplateBundle, data: dict[str, Any], locale: str | None = None) -> Any:
    """Render through the runtime renderer."""
    return Renderer().render(b, locale=locale, data=data, provided=PROVIDED)


# -- the subset ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        ("{{a.b.c}}", {"a": {"b": {"c": "deep"}}}, "deep"),
        ("{{a/b}}", {"a": {"b": "slash"}}, "slash"),
        ("{{items.[1]}} {{items.0}}", {"items": ["x", "y"]}, "y x"),
        ("{{#if on}}yes{{else}}no{{/if}}", {"on": True}, "yes"),
        ("{{#if on}}yes{{else}}no{{/if}}", {"on": 0}, "no"),
        ("{{#if on}}yes{{else}}no{{/if}}", {"on": []}, "no"),
        ("{{#if on}}yes{{else}}no{{/if}}", {"on": {}}, "yes"),
        ("{{#if a}}A{{else if b}}B{{else}}C{{/if}}", {"a": False, "b": 1}, "B"),
        ("{{#unless off}}shown{{/unless}}", {"off": False}, "shown"),
        ("{{#each xs}}{{@index}}:{{this}}{{#unless @last}},{{/unless}}{{/each}}", {"xs": ["a", "b"]}, "0:a,1:b"),
        ("{{#each o}}{{@key}}={{this}};{{/each}}", {"o": {"k": 1, "l": 2}}, "k=1;l=2;"),
        ("{{#each xs}}x{{else}}empty{{/each}}", {"xs": []}, "empty"),
        ("{{#each xs}}{{name}} of {{../shop}} {{/each}}", {"xs": [{"name": "a"}], "shop": "S"}, "a of S "),
        ("{{#each xs}}{{shop}}{{/each}}", {"xs": [{}], "shop": "walks up"}, "walks up"),
        ("{{#with user}}{{first}} {{last}}{{/with}}", {"user": {"first": "Jo", "last": "Li"}}, "Jo Li"),
        ("{{#section}}[{{v}}]{{/section}}", {"section": [{"v": 1}, {"v": 2}]}, "[1][2]"),
        ("{{^empty}}none{{/empty}}", {"empty": []}, "none"),
        ("{{@root.top}}{{#with a}}{{@root.top}}{{/with}}", {"top": "T", "a": {"x": 1}}, "TT"),
        ("{{n}} {{f}} {{b}} {{z}}", {"n": 3, "f": 2.0, "b": True, "z": None}, "3 2 true "),
        ("{{! a comment }}{{!-- a }} comment --}}x", {}, "x"),
        ("a  {{~v~}}  b", {"v": "-"}, "a-b"),
        ("\\{{literal}}", {}, "{{literal}}"),
        ('{{#*inline "row"}}<{{.}}>{{/inline}}{{#each xs}}{{> row}}{{/each}}', {"xs": [1, 2]}, "<1><2>"),
    ],
)
def test_the_supported_subset(source: str, data: dict[str, Any], expected: str) -> None:
    assert hbs(source, data) == expected


def test_block_tags_alone_on_their_lines_leave_no_blank_lines() -> None:
    source = "Items:\n{{#each xs}}\n- {{this}}\n{{/each}}\nEnd\n"
    assert hbs(source, {"xs": ["a", "b"]}, escape=False) == "Items:\n- a\n- b\nEnd\n"


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        ('{{#equals code "WIN"}}won{{else}}lost{{/equals}}', {"code": "WIN"}, "won"),
        ("{{#notEquals a b}}differ{{/notEquals}}", {"a": 1, "b": 2}, "differ"),
        ("{{#greaterThan n 10}}big{{else}}small{{/greaterThan}}", {"n": "12"}, "big"),
        ("{{#lessThan n 10}}small{{/lessThan}}", {"n": 3}, "small"),
        ("{{#and a b}}both{{else}}not both{{/and}}", {"a": 1, "b": 0}, "not both"),
        ("{{#or a b}}one{{/or}}", {"a": 0, "b": "x"}, "one"),
        ("{{#if (equals a 1)}}one{{/if}}", {"a": 1}, "one"),
        ("{{length xs}}", {"xs": [1, 2, 3]}, "3"),
        ('{{insert name "default=Customer"}}', {}, "Customer"),
        ('{{insert name "default=Customer"}}', {"name": "Jo"}, "Jo"),
        ("{{lookup prices plan}}", {"prices": {"pro": "$9"}, "plan": "pro"}, "$9"),
        (
            '{{formatDate when "dddd, MMMM D, YYYY h:mm A"}}',
            {"when": "2024-03-05T18:30:00Z"},
            "Tuesday, March 5, 2024 6:30 PM",
        ),
        (
            '{{formatDate when "YYYY-MM-DD HH:mm ZZ" "-0800"}}',
            {"when": "2024-03-05T06:30:00Z"},
            "2024-03-04 22:30 -0800",
        ),
    ],
)
def test_sendgrid_helpers(source: str, data: dict[str, Any], expected: str) -> None:
    assert hbs(source, data) == expected


def test_format_date_rejects_what_is_not_a_timestamp() -> None:
    with pytest.raises(HandlebarsError, match="not an ISO 8601 timestamp"):
        format_date("yesterday", "YYYY", None)


# -- escaping ------------------------------------------------------------------------


def test_double_braces_escape_in_html_triple_braces_do_not() -> None:
    data = {"v": "<a href='x'>&\"=`</a>"}
    assert hbs("{{v}}", data) == "&lt;a href&#x3D;&#x27;x&#x27;&gt;&amp;&quot;&#x3D;&#x60;&lt;/a&gt;"
    assert hbs("{{{v}}}", data) == data["v"]
    assert hbs("{{&v}}", data) == data["v"]


def test_subject_and_text_are_plain_text_never_escaped() -> None:
    rendered = render(bundle(subject="Tom & {{name}}", text="{{name}} <ok>"), {"name": "Jerry & Co"})
    assert rendered.subject == "Tom & Jerry & Co"
    assert rendered.text == "Jerry & Co <ok>"
    assert rendered.html == "<p>Jerry &amp; Co</p>"


def test_data_is_never_evaluated_as_a_template() -> None:
    rendered = render(bundle(), {"name": "{{#each x}}{{constructor}}{{/each}} {{{raw}}}"})
    assert "{{#each x}}" in rendered.text
    assert "{{#each x}}{{constructor}}{{/each}} {{{raw}}}" in rendered.subject


def test_lookups_never_reach_python_attributes() -> None:
    class Secret:
        password = "hunter2"

    with pytest.raises(HandlebarsMissingError):
        hbs("{{obj.password}}", {"obj": Secret()})
    with pytest.raises(HandlebarsMissingError):
        hbs("{{name.__class__}}", {"name": "x"})


# -- strict variables -----------------------------------------------------------------


def test_a_missing_variable_rejects_the_request_naming_file_and_line() -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render(bundle(html="<p>\n{{name}}\n{{order.total}}</p>", required=("name",)), {"name": "Jo", "order": {}})
    assert caught.value.code == "missing_variable"
    assert caught.value.message == "imported/en/body.html:3: 'order.total' is undefined"


def test_a_required_variable_absent_from_the_data_is_named_before_rendering() -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render(bundle(), {})
    assert caught.value.code == "missing_variable"
    assert "needs name" in caught.value.message


def test_a_missing_value_is_false_in_a_condition_but_not_elsewhere() -> None:
    source = "{{#if coupon}}Use {{coupon}}{{else}}No coupon{{/if}}"
    assert render(bundle(text=source, optional=("coupon",)), {"name": "Jo"}).text == "No coupon"
    with pytest.raises(TemplateRenderError, match="'items' is undefined"):
        render(bundle(text="{{#each items}}x{{/each}}"), {"name": "Jo"})


def test_a_line_break_in_the_subject_is_header_injection() -> None:
    with pytest.raises(HeaderInjectionError):
        render(bundle(), {"name": "Jo\r\nBcc: victim@example.com"})


def test_locale_falls_back_like_jinja_templates() -> None:
    b = bundle(subject="[[loc]] {{name}}", locales=("en", "fr"))
    assert render(b, {"name": "x"}, "fr-CA").subject == "[fr] x"
    assert render(b, {"name": "x"}, "de").subject == "[en] x"


# -- syntax errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("a\n{{#if x}}b", "t/en/body.html:2: #if is never closed with {{/if}}"),
        ("{{#if x}}\n{{/each}}", "t/en/body.html:2: {{/each}} closes #if opened at line 1"),
        ("{{shout name}}", "t/en/body.html:1: unknown helper 'shout'"),
        ("{{#each}}{{/each}}", "#each takes one argument"),
        ("{{if x}}", "if is a block helper"),
        ("{{> footer}}", "no partial 'footer'"),
        ("{{#each xs as |x|}}{{/each}}", "block parameters"),
        ("{{name", "never closed"),
        ("{{else}}", "{{else}} outside a block"),
    ],
)
def test_syntax_errors_name_file_line_and_helper(source: str, message: str) -> None:
    with pytest.raises(HandlebarsError) as caught:
        compile_template(source, name="t/en/body.html")
    assert message in str(caught.value)


def test_a_syntax_error_is_found_when_the_template_is_read(tmp_path: Path) -> None:
    path = tmp_path / "imported"
    (path / "en").mkdir(parents=True)
    (path / "template.json").write_text(json.dumps({"category": "transactional", "engine": "handlebars"}))
    (path / "en" / "subject.txt").write_text("Hi")
    (path / "en" / "body.html").write_text("<p>\n{{#formatDate d}}x{{/formatDate}}</p>")
    (path / "en" / "body.txt").write_text("Hi")
    with pytest.raises(TemplateFormatError, match=r"imported/en/body\.html:2: formatDate is not a block helper"):
        load_template_dir(path)


# -- variables, for the checks ----------------------------------------------------------


def test_variables_are_collected_with_their_first_line() -> None:
    template = compile_template(
        '{{a}}\n{{#each items}}{{b}} {{../c}}{{/each}}\n{{@root.d}} {{#if e}}{{f.g}}{{/if}} {{formatDate h "YYYY"}}',
        name="t",
    )
    root, nested = template.variables()
    assert root == {"a": 1, "items": 2, "c": 2, "d": 3, "e": 3, "f": 3, "h": 3}
    assert nested == {"b"}


# -- cold start ----------------------------------------------------------------------------


def test_the_worker_does_not_import_the_handlebars_engine_until_a_bundle_needs_it() -> None:
    code = (
        "import sys, mailwright.handlers.send_worker, mailwright.templates as t;"
        "print('mailwright.handlebars' in sys.modules)"
    )
    result = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env={"PYTHONPATH": "functions"}
    )
    assert result.stdout.strip() == "False", result.stderr
