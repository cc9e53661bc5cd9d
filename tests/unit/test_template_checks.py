"""The stricter template checks behind `templates validate` and the deploy-time bundler."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mailwright_tools.fakes import TEMPLATES_DIR
from mailwright_tools.template_checks import SUBJECT_MAX_CHARS, LocaleCheck, check_tree, main

POSTAL = "Example Co., 1 Example Street, Springfield, USA"
BASE_URL = "https://example.com/unsubscribe"
LAYOUT_HTML = (
    "<html><body>{% block content %}{% endblock %}"
    '{% if unsubscribe_url is defined %}<a href="{{ unsubscribe_url }}">Unsubscribe</a>{% endif %}'
    "<p>{{ postal_address }}</p></body></html>"
)
LAYOUT_TEXT = (
    "{% block content %}{% endblock %}\n{% if unsubscribe_url is defined %}{{ unsubscribe_url }}{% endif %}\n"
    "{{ postal_address }}"
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A templates directory with a minimal layout that carries the links and the address."""
    for name, content in {"_layouts/base.html": LAYOUT_HTML, "_layouts/base.txt": LAYOUT_TEXT}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    return tmp_path


def template(
    root: Path,
    template_id: str = "promo",
    *,
    subject: str = "Hello {{ name }}",
    html: str = '{% extends "_layouts/base.html" %}{% block content %}<p>{{ name }}</p>{% endblock %}',
    text: str = '{% extends "_layouts/base.txt" %}{% block content %}{{ name }}{% endblock %}',
    **metadata: Any,
) -> Path:
    """Write a one-locale template; metadata defaults to marketing mail needing `name`."""
    path = root / template_id
    (path / "en").mkdir(parents=True)
    meta = {"category": "marketing", "required_variables": ["name"], "sample_data": {"name": "Jo"}, **metadata}
    (path / "template.json").write_text(json.dumps(meta))
    for filename, content in {"subject.txt": subject, "body.html": html, "body.txt": text}.items():
        (path / "en" / filename).write_text(content)
    return path


def checks(root: Path) -> list[LocaleCheck]:
    """Check the directory."""
    return check_tree(root, postal_address=POSTAL, base_url=BASE_URL)


def problems(root: Path) -> list[str]:
    """Every problem, as `file:line: message`."""
    return [str(problem) for check in checks(root) for problem in check.problems]


def warnings(root: Path) -> list[str]:
    """Every warning."""
    return [str(warning) for check in checks(root) for warning in check.warnings]


def test_the_shipped_templates_pass_every_check() -> None:
    results = check_tree(TEMPLATES_DIR, postal_address=POSTAL, base_url=BASE_URL)
    assert {check.template for check in results} == {
        "activity_digest",
        "newsletter",
        "order_confirmation",
        "password_reset",
        "welcome_email",
    }
    assert [str(p) for check in results for p in check.problems] == []
    assert [str(w) for check in results for w in check.warnings] == []


def test_a_clean_template_passes(root: Path) -> None:
    template(root)
    assert problems(root) == []
    assert warnings(root) == []


# -- variables --------------------------------------------------------------------------------


def test_a_variable_used_but_not_declared_fails_with_file_and_line(root: Path) -> None:
    # The case: `pay_link` used, not declared, so a real request without it would be rejected.
    template(
        root,
        html='{% extends "_layouts/base.html" %}{% block content %}\n<p>{{ name }}</p>\n'
        '<a href="{{ pay_link }}">Pay</a>{% endblock %}',
        sample_data={"name": "Jo", "pay_link": "https://pay.example.com"},
    )
    assert problems(root) == [
        "promo/en/body.html:3: uses 'pay_link', which template.json does not declare (required_variables, or "
        "optional_variables when a request may leave it out)"
    ]


def test_an_optional_variable_may_be_used_when_declared(root: Path) -> None:
    template(
        root,
        text='{% extends "_layouts/base.txt" %}{% block content %}{{ name }}'
        "{% if coupon is defined %} {{ coupon }}{% endif %}{% endblock %}",
        optional_variables=["coupon"],
    )
    assert problems(root) == []


def test_a_declared_variable_never_used_is_a_warning(root: Path) -> None:
    template(root, required_variables=["name", "order_id"], sample_data={"name": "Jo", "order_id": "1"})
    assert problems(root) == []
    assert warnings(root) == ["promo/template.json: declares 'order_id', which en never uses"]


def test_provided_variables_and_loop_variables_need_no_declaration(root: Path) -> None:
    template(
        root,
        text='{% extends "_layouts/base.txt" %}{% block content %}{{ name }} {{ recipient_email }} {{ locale }}'
        "{% for item in items %}{{ item.title }}{{ loop.index }}{% endfor %}{% endblock %}",
        required_variables=["name", "items"],
        sample_data={"name": "Jo", "items": [{"title": "a"}]},
    )
    assert problems(root) == []


def test_handlebars_variables_are_checked_too(root: Path) -> None:
    template(
        root,
        engine="handlebars",
        subject="Hello {{name}}",
        html='<p>{{name}}</p>\n<p>{{#each items}}{{title}}{{/each}} {{total}}</p><a href="{{unsubscribe_url}}">u</a>'
        "{{postal_address}}",
        text="{{name}} {{unsubscribe_url}} {{postal_address}}",
        required_variables=["name", "items"],
        sample_data={"name": "Jo", "items": [{"title": "a"}], "total": "1"},
    )
    assert problems(root) == [
        "promo/en/body.html:2: uses 'total', which template.json does not declare (required_variables, or "
        "optional_variables when a request may leave it out)"
    ]


# -- CAN-SPAM ----------------------------------------------------------------------------------


@pytest.mark.parametrize("category", ["marketing", "product"])
def test_bulk_mail_without_unsubscribe_link_or_postal_address_fails(root: Path, category: str) -> None:
    # The case: a marketing template with neither passed as ok.
    template(root, category=category, html="<p>{{ name }}</p>", text="{{ name }}")
    found = problems(root)
    for part in ("body.html", "body.txt"):
        needs = f"promo/en/{part}: {category} mail needs"
        assert f"{needs} an unsubscribe link ({{{{ unsubscribe_url }}}}) in {part} (CAN-SPAM)" in found
        assert f"{needs} the postal address ({{{{ postal_address }}}}) in {part} (CAN-SPAM)" in found


def test_transactional_mail_needs_no_unsubscribe_link(root: Path) -> None:
    template(root, category="transactional", html="<p>{{ name }}</p>", text="{{ name }}")
    assert problems(root) == []


# -- subject, links, images ----------------------------------------------------------------------


def test_a_long_subject_fails_and_says_why(root: Path) -> None:
    template(root, subject="{{ name }}: " + "x" * SUBJECT_MAX_CHARS)
    (found,) = problems(root)
    assert found.startswith(f"promo/en/subject.txt: the subject renders {SUBJECT_MAX_CHARS + 4} characters")
    assert "inboxes cut longer subjects" in found


def test_a_plain_http_link_in_the_source_is_named_with_its_line(root: Path) -> None:
    template(
        root,
        html='{% extends "_layouts/base.html" %}{% block content %}\n<p>{{ name }}</p>\n'
        '<a href="http://example.com/offer">Offer</a>{% endblock %}',
    )
    assert problems(root) == ["promo/en/body.html:3: links to 'http://example.com/offer': links must be https"]


def test_sample_data_that_renders_an_http_link_is_named(root: Path) -> None:
    template(
        root,
        html='{% extends "_layouts/base.html" %}{% block content %}{% for a in articles %}'
        '<a href="{{ a.url }}">{{ a.title }}</a>{% endfor %}{{ name }}{% endblock %}',
        text='{% extends "_layouts/base.txt" %}{% block content %}{{ name }}{% endblock %}',
        required_variables=["name", "articles"],
        sample_data={
            "name": "Jo",
            "articles": [{"title": "ok", "url": "https://a"}, {"title": "no", "url": "http://b"}],
        },
    )
    assert problems(root) == [
        "promo/template.json: sample_data articles[1].url renders the link 'http://b' into body.html: "
        "links must be https"
    ]


def test_an_http_url_in_the_text_part_fails(root: Path) -> None:
    template(
        root, text='{% extends "_layouts/base.txt" %}{% block content %}{{ name }}\nhttp://example.com{% endblock %}'
    )
    assert problems(root) == ["promo/en/body.txt:2: links to 'http://example.com': links must be https"]


def test_mailto_and_anchors_are_fine_relative_links_are_not(root: Path) -> None:
    template(
        root,
        html='{% extends "_layouts/base.html" %}{% block content %}{{ name }}<a href="mailto:help@example.com">m</a>'
        '<a href="#top">t</a><a href="/account">a</a>{% endblock %}',
    )
    assert problems(root) == ["promo/en/body.html:1: links to '/account': links must be https"]


def test_an_image_without_alt_text_fails(root: Path) -> None:
    template(
        root,
        html='{% extends "_layouts/base.html" %}{% block content %}{{ name }}\n<img src="https://example.com/logo.png">'
        '<img src="https://example.com/spacer.gif" alt="">{% endblock %}',
    )
    assert problems(root) == [
        "promo/en/body.html:2: the image 'https://example.com/logo.png' has no alt text (alt=\"\" if decorative)"
    ]


# -- the bundler's entry point ----------------------------------------------------------------------


def test_the_deploy_check_exits_1_and_lists_the_problems(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template(root, html="<p>{{ name }}</p>")
    assert main([str(root)]) == 1
    assert "marketing mail needs an unsubscribe link" in capsys.readouterr().err


def test_the_deploy_check_passes_the_shipped_templates(tmp_path: Path) -> None:
    shutil.copytree(TEMPLATES_DIR, tmp_path / "templates")
    assert main([str(tmp_path / "templates")]) == 0
