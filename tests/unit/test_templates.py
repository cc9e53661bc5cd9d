"""Templates: the on-disk format, bundles and the sandboxed renderer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from jinja2.sandbox import SandboxedEnvironment

from mailwright.errors import HeaderInjectionError, TemplateFormatError, TemplateRenderError
from mailwright.templates import (
    LocaleParts,
    Renderer,
    TemplateBundle,
    TemplateMetadata,
    bundle_directory,
    load_template_dir,
    load_template_tree,
)
from mailwright_tools.fakes import TEMPLATES_DIR

PROVIDED = {
    "recipient_email": "jane@example.com",
    "postal_address": "Example Co., 1 Example Street",
    "unsubscribe_url": "https://example.com/unsubscribe?token=t",
    "preferences_url": "https://example.com/unsubscribe?token=t&view=preferences",
}
SHIPPED = load_template_tree(TEMPLATES_DIR)
SHIPPED_LOCALES = [(tid, locale) for tid, bundle in SHIPPED.items() for locale in bundle.locales]


def make_bundle(
    subject: str = "Hello {{ name }}",
    html: str = "<p>{{ name }}</p>",
    text: str = "{{ name }}",
    *,
    required: tuple[str, ...] = (),
    locales: tuple[str, ...] = ("en",),
    version: str | None = "v1",
    template_id: str = "custom",
) -> TemplateBundle:
    """A one-off bundle whose locales all share the given parts (each subject tagged with its locale)."""
    return TemplateBundle(
        template_id=template_id,
        metadata=TemplateMetadata(category="transactional", required_variables=required),
        locales={loc: LocaleParts(subject=subject.replace("{{locale}}", loc), html=html, text=text) for loc in locales},
        version=version,
    )


def render(bundle: TemplateBundle, data: dict[str, Any], locale: str | None = None) -> Any:
    """Render with a fresh renderer and the provided variables."""
    return Renderer().render(bundle, locale=locale, data=data, provided=PROVIDED)


def write_template(root: Path, template_id: str, parts: dict[str, str] | None = None, **metadata: Any) -> Path:
    """Write a template directory with one `en` locale."""
    path = root / template_id
    (path / "en").mkdir(parents=True)
    (path / "template.json").write_text(json.dumps({"category": "transactional", **metadata}), encoding="utf-8")
    files = {"subject.txt": "Hi {{ name }}", "body.html": "<p>{{ name }}</p>", "body.txt": "{{ name }}"}
    for name, content in {**files, **(parts or {})}.items():
        (path / "en" / name).write_text(content, encoding="utf-8")
    return path


# -- shipped templates ----------------------------------------------------


def test_the_seed_templates_and_lane_examples_ship() -> None:
    assert {"welcome_email", "order_confirmation", "password_reset", "newsletter"} <= set(SHIPPED)
    assert SHIPPED["password_reset"].metadata.priority == "critical"
    assert SHIPPED["newsletter"].metadata.priority == "bulk"
    assert not SHIPPED["newsletter"].metadata.essential


@pytest.mark.parametrize(("template_id", "locale"), SHIPPED_LOCALES)
def test_every_shipped_template_renders_its_sample_data(template_id: str, locale: str) -> None:
    bundle = SHIPPED[template_id]

    rendered = render(bundle, dict(bundle.metadata.sample_data), locale)

    assert rendered.locale == locale
    assert rendered.subject.strip()
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    assert rendered.html.strip() and rendered.text.strip()
    assert PROVIDED["recipient_email"] in rendered.text


@pytest.mark.parametrize("template_id", sorted(SHIPPED))
def test_shipped_sample_data_covers_the_required_variables(template_id: str) -> None:
    metadata = SHIPPED[template_id].metadata
    assert set(metadata.required_variables) <= set(metadata.sample_data)


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_a_newsletter_without_articles_still_renders(locale: str) -> None:
    data = {"user_name": "Jo", "headline": "News", "articles": []}
    rendered = render(SHIPPED["newsletter"], data, locale)
    assert "Jo" in rendered.html.split('class="mw-preheader"', 1)[1].split("</div>", 1)[0]


def test_newsletter_carries_unsubscribe_links_and_postal_address() -> None:
    bundle = SHIPPED["newsletter"]
    rendered = render(bundle, dict(bundle.metadata.sample_data))
    for part in (rendered.html, rendered.text):
        assert PROVIDED["unsubscribe_url"] in part
        assert PROVIDED["postal_address"] in part
    # The preferences URL holds an `&`, which HTML escapes.
    assert PROVIDED["preferences_url"].replace("&", "&amp;") in rendered.html
    assert PROVIDED["preferences_url"] in rendered.text


# -- escaping and the sandbox -------------------------------------------


def test_html_is_autoescaped_but_text_is_not() -> None:
    rendered = render(
        SHIPPED["welcome_email"], {"user_name": "<script>alert(1)</script>", "login_link": "https://x.example"}
    )
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "<script>alert(1)</script>" in rendered.text


def test_data_is_never_executed_as_template_code() -> None:
    data = {"user_name": "{{ 7*7 }}{% for x in range(3) %}x{% endfor %}", "login_link": "{{ login_link }}"}
    rendered = render(SHIPPED["welcome_email"], data)
    assert "{{ 7*7 }}" in rendered.subject
    assert "49" not in rendered.subject and "xxx" not in rendered.text
    assert "{{ login_link }}" in rendered.text


def test_missing_required_variable_is_named() -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render(SHIPPED["welcome_email"], {"user_name": "John"})
    assert caught.value.code == "missing_variable"
    assert "login_link" in caught.value.message


def test_undeclared_variable_absent_from_data_is_a_missing_variable() -> None:
    # Given a template that uses `name` without listing it as required
    bundle = make_bundle(required=())

    with pytest.raises(TemplateRenderError) as caught:
        render(bundle, {})

    assert caught.value.code == "missing_variable"
    assert "'name' is undefined" in caught.value.message
    assert "custom/en/subject.txt" in caught.value.message


def test_undefined_attribute_of_data_is_a_missing_variable() -> None:
    bundle = make_bundle(subject="Hi", text="{{ user.first_name }}")
    with pytest.raises(TemplateRenderError) as caught:
        render(bundle, {"user": {}, "name": "x"})
    assert caught.value.code == "missing_variable"


@pytest.mark.parametrize(
    ("subject", "data"),
    [
        ("{{ x.__class__.__mro__ }}", {"x": "s"}),
        ("{{ x.__class__ }}", {"x": 1}),
        ("{{ '{0.__class__}'.format(x) }}", {"x": "s"}),
        ("{{ x.__init__.__globals__ }}", {"x": "s"}),
    ],
)
def test_sandbox_blocks_unsafe_attributes(subject: str, data: dict[str, Any]) -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render(make_bundle(subject=subject), data)
    assert caught.value.code == "sandbox_violation"


def test_sandbox_blocks_calling_unsafe_methods() -> None:
    class Account:
        def delete(self) -> str:
            return "deleted"

        delete.alters_data = True  # type: ignore[attr-defined]

    with pytest.raises(TemplateRenderError) as caught:
        render(make_bundle(subject="{{ account.delete() }}"), {"account": Account()})
    assert caught.value.code == "sandbox_violation"


def test_a_filter_failing_on_the_data_is_a_render_error() -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render(make_bundle(subject="{{ range(10**9) | list | length }}"), {})
    assert caught.value.code == "render_error"


# -- headers ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["John\r\nBcc: victim@example.com", "John\nBcc: x", "John\rX"])
def test_line_break_in_subject_is_header_injection(name: str) -> None:
    with pytest.raises(HeaderInjectionError) as caught:
        render(SHIPPED["welcome_email"], {"user_name": name, "login_link": "https://x.example"})
    assert caught.value.code == "header_injection"


def test_line_breaks_around_the_subject_are_trimmed_not_rejected() -> None:
    rendered = render(make_bundle(subject="\n  Hello {{ name }}  \n"), {"name": "Jo"})
    assert rendered.subject == "Hello Jo"


def test_empty_subject_is_a_render_error() -> None:
    with pytest.raises(TemplateRenderError, match="empty subject"):
        render(make_bundle(subject="{{ name }}"), {"name": "   "})


# -- locales ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "resolved"),
    [
        ("fr-CA", "fr"),
        ("fr", "fr"),
        ("FR", "fr"),
        ("fr-ca-x", "fr"),
        ("de", "en"),
        ("de-DE", "en"),
        (None, "en"),
        ("", "en"),
    ],
)
def test_locale_falls_back_to_language_then_default(requested: str | None, resolved: str) -> None:
    bundle = make_bundle(subject="[{{locale}}] {{ name }}", locales=("en", "fr"))
    assert bundle.resolve_locale(requested) == resolved
    rendered = render(bundle, {"name": "x"}, requested)
    assert rendered.locale == resolved
    assert rendered.subject.startswith(f"[{resolved}]")


def test_region_specific_locale_is_preferred_when_present() -> None:
    bundle = make_bundle(subject="[{{locale}}]", locales=("en", "fr", "fr-CA"))
    assert bundle.resolve_locale("fr-ca") == "fr-CA"
    assert bundle.resolve_locale("fr-BE") == "fr"


def test_shipped_french_falls_back_from_canadian_french() -> None:
    bundle = SHIPPED["welcome_email"]
    rendered = render(bundle, dict(bundle.metadata.sample_data), "fr-CA")
    assert rendered.locale == "fr"
    assert rendered.subject.startswith("Bienvenue")


# -- the directory format -----------------------------------------------------


def test_load_template_dir_reads_metadata_and_locales(tmp_path: Path) -> None:
    path = write_template(tmp_path, "hello", required_variables=["name"], sample_data={"name": "Jo"})
    bundle = load_template_dir(path)
    assert bundle.template_id == "hello"
    assert bundle.metadata.required_variables == ("name",)
    assert bundle.locales["en"].subject == "Hi {{ name }}"
    assert bundle.version is None


def test_missing_metadata_file_is_named(tmp_path: Path) -> None:
    path = write_template(tmp_path, "hello")
    (path / "template.json").unlink()
    with pytest.raises(TemplateFormatError, match=r"hello/template\.json: missing"):
        load_template_dir(path)


@pytest.mark.parametrize("filename", ["subject.txt", "body.html", "body.txt"])
def test_missing_part_file_is_named(tmp_path: Path, filename: str) -> None:
    path = write_template(tmp_path, "hello")
    (path / "en" / filename).unlink()
    with pytest.raises(TemplateFormatError, match=rf"hello/en/{filename.replace('.', '[.]')}: missing"):
        load_template_dir(path)


def test_bad_metadata_is_named(tmp_path: Path) -> None:
    path = write_template(tmp_path, "hello", category="spam")
    with pytest.raises(TemplateFormatError, match=r"template\.json"):
        load_template_dir(path)


def test_default_locale_needs_a_directory(tmp_path: Path) -> None:
    path = write_template(tmp_path, "hello", default_locale="fr")
    with pytest.raises(TemplateFormatError, match="default_locale 'fr'"):
        load_template_dir(path)


@pytest.mark.parametrize(
    ("filename", "content", "line"),
    [
        ("subject.txt", "Hi {{ name ", 1),
        ("body.html", "<p>\n{{ name }}\n{% if %}\n</p>", 3),
        ("body.txt", "line 1\nline 2\n{% for x in %}{% endfor %}", 3),
    ],
)
def test_syntax_error_names_template_locale_file_and_line(
    tmp_path: Path, filename: str, content: str, line: int
) -> None:
    # Given a template with a syntax error in one part
    path = write_template(tmp_path, "broken", {filename: content})

    # When it is read (bundling parses every part), or a stored bundle holding it is compiled
    with pytest.raises(TemplateFormatError) as loading:
        load_template_dir(path)
    part = {"subject.txt": "subject", "body.html": "html", "body.txt": "text"}[filename]
    stored = make_bundle(**{part: content}, template_id="broken")
    with pytest.raises(TemplateFormatError) as compiling:
        Renderer().compile_part(stored, "en", part)

    # Then both name the template, locale, file and line
    assert str(loading.value).startswith(f"broken/en/{filename}:{line}:")
    assert str(compiling.value).startswith(f"broken/en/{filename}:{line}:")


def test_syntax_error_at_send_time_is_a_render_error() -> None:
    bundle = make_bundle(text="{% if %}", template_id="broken")
    with pytest.raises(TemplateRenderError) as caught:
        Renderer().render(bundle, locale=None, data={"name": "x"}, provided={})
    assert caught.value.code == "render_error"
    assert "broken/en/body.txt:1" in caught.value.message


def test_hidden_and_underscore_directories_are_skipped(tmp_path: Path) -> None:
    write_template(tmp_path, "hello")
    (tmp_path / ".git").mkdir()
    (tmp_path / "_drafts").mkdir()
    (tmp_path / "README.md").write_text("templates", encoding="utf-8")
    assert list(load_template_tree(tmp_path)) == ["hello"]


def test_bundle_directory_writes_one_json_per_template_that_round_trips(tmp_path: Path) -> None:
    source = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, source)

    written = bundle_directory(source, tmp_path / "build")

    assert sorted(p.name for p in written) == sorted(f"{tid}.json" for tid in SHIPPED)
    assert sorted(p.name for p in (tmp_path / "build").iterdir()) == sorted(p.name for p in written)
    for file in written:
        bundle = TemplateBundle.model_validate_json(file.read_text(encoding="utf-8"))
        assert bundle == SHIPPED[file.stem]
        assert "version" not in json.loads(file.read_text(encoding="utf-8"))


def test_bundle_file_leaves_out_the_version() -> None:
    bundle = make_bundle(version="abc")
    assert "abc" not in bundle.to_json()
    assert TemplateBundle.model_validate_json(bundle.to_json()) == bundle.model_copy(update={"version": None})


# -- the compiled-template cache ------------------------------------------------


def test_cache_is_keyed_by_version() -> None:
    renderer = Renderer()
    v1 = make_bundle(subject="Old {{ name }}", version="v1")
    v2 = make_bundle(subject="New {{ name }}", version="v2")

    assert renderer.render(v1, locale=None, data={"name": "x"}, provided={}).subject == "Old x"
    assert renderer.render(v2, locale=None, data={"name": "x"}, provided={}).subject == "New x"
    assert renderer.render(v1, locale=None, data={"name": "x"}, provided={}).subject == "Old x"


def test_cache_reuses_compiled_templates_and_stays_bounded() -> None:
    renderer = Renderer(cache_size=2)
    bundles = [make_bundle(version=f"v{i}") for i in range(3)]
    first = renderer.compile_part(bundles[0], "en", "subject")
    assert renderer.compile_part(bundles[0], "en", "subject") is first
    renderer.compile_part(bundles[1], "en", "subject")
    renderer.compile_part(bundles[2], "en", "subject")
    # The oldest entry was evicted, so compiling it again makes a new object.
    assert renderer.compile_part(bundles[0], "en", "subject") is not first


def test_an_unstored_bundle_edited_in_memory_renders_afresh() -> None:
    # Given one renderer, and a bundle not yet stored (no version), as an editor holds it
    renderer = Renderer()
    draft = make_bundle(subject="Draft {{ name }}", version=None)
    assert renderer.render(draft, locale=None, data={"name": "x"}, provided={}).subject == "Draft x"

    # When the subject is edited in memory and rendered again
    edited = draft.model_copy(
        update={"locales": {"en": draft.locales["en"].model_copy(update={"subject": "Edit {{ name }}"})}}
    )

    # Then the edit shows: the cache key of an unstored bundle is its content
    assert renderer.render(edited, locale=None, data={"name": "x"}, provided={}).subject == "Edit x"


# -- layouts and partials ---------------------------------------------------------


def write_shared(root: Path, files: dict[str, str]) -> None:
    """Write layouts and partials under `root` (paths relative to it)."""
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content, encoding="utf-8")


LAYOUT = "<main>{% block content %}{% endblock %}</main><footer>{{ postal_address }}</footer>"


def test_every_shipped_template_uses_the_one_layout() -> None:
    for template_id, bundle in SHIPPED.items():
        assert {"_layouts/base.html", "_layouts/base.txt", "_layouts/brand.jinja"} <= set(bundle.shared), template_id
        for locale, parts in bundle.locales.items():
            assert parts.html.startswith('{% extends "_layouts/base.html" %}'), (template_id, locale)
            assert parts.text.startswith('{% extends "_layouts/base.txt" %}'), (template_id, locale)
            # No template repeats the page around its content.
            assert "<html" not in parts.html and "<body" not in parts.html


def test_a_bundle_carries_only_the_shared_files_it_uses(tmp_path: Path) -> None:
    # Given two layouts, a partial one of them includes, and a partial nobody uses
    write_shared(
        tmp_path,
        {
            "_layouts/a.html": '{% include "_partials/used.html" %}' + LAYOUT,
            "_layouts/b.html": LAYOUT,
            "_partials/used.html": "<hr>",
            "_partials/unused.html": "<br>",
        },
    )
    path = write_template(
        tmp_path, "hello", {"body.html": '{% extends "_layouts/a.html" %}{% block content %}{{ name }}{% endblock %}'}
    )

    bundle = load_template_dir(path)

    assert sorted(bundle.shared) == ["_layouts/a.html", "_partials/used.html"]


def test_a_stored_bundle_renders_without_the_directory_and_keeps_its_layout(tmp_path: Path) -> None:
    # Given version 1 bundled with the old layout, then the layout changes and version 2 is bundled
    write_shared(tmp_path, {"_layouts/base.html": "OLD " + LAYOUT})
    path = write_template(
        tmp_path,
        "hello",
        {"body.html": '{% extends "_layouts/base.html" %}{% block content %}{{ name }}{% endblock %}'},
    )
    v1 = TemplateBundle.model_validate_json(load_template_dir(path).to_json()).model_copy(update={"version": "v1"})
    write_shared(tmp_path, {"_layouts/base.html": "NEW " + LAYOUT})
    v2 = TemplateBundle.model_validate_json(load_template_dir(path).to_json()).model_copy(update={"version": "v2"})
    shutil.rmtree(tmp_path)

    # When both are rendered by one renderer
    renderer = Renderer()
    old = renderer.render(v1, locale=None, data={"name": "Jo"}, provided=PROVIDED)
    new = renderer.render(v2, locale=None, data={"name": "Jo"}, provided=PROVIDED)

    # Then each keeps the layout it was bundled with
    assert old.html.startswith("OLD <main>Jo</main>")
    assert new.html.startswith("NEW <main>Jo</main>")


@pytest.mark.parametrize(
    ("html", "message"),
    [
        ('<p>\n{% include "_partials/nope.html" %}', r"hello/en/body\.html:2: '_partials/nope\.html' is not a layout"),
        ('{% extends "../secrets.html" %}', r"hello/en/body\.html:1: '\.\./secrets\.html' is not a layout"),
        ("{% include name %}", r"hello/en/body\.html:1: the template name must be a quoted string"),
        ('{% extends "hello/en/body.txt" %}', r"'hello/en/body\.txt' is not a layout or partial"),
    ],
)
def test_a_reference_outside_the_shared_files_is_named(tmp_path: Path, html: str, message: str) -> None:
    path = write_template(tmp_path, "hello", {"body.html": html})
    with pytest.raises(TemplateFormatError, match=message):
        load_template_dir(path)


def test_the_loader_serves_nothing_beyond_the_bundle() -> None:
    # Given a stored bundle (not from a directory, so nothing checked it) that includes a file it lacks
    bundle = make_bundle(html='{% include "/etc/passwd" %}')

    # When it renders, Then the include fails as a render error: the loader has no file system
    with pytest.raises(TemplateRenderError, match="/etc/passwd"):
        render(bundle, {"name": "x"})


def test_a_syntax_error_in_a_layout_is_named_with_its_line(tmp_path: Path) -> None:
    write_shared(tmp_path, {"_layouts/base.html": "<main>\n\n{% block content %}{% endblock %\n</main>"})
    path = write_template(tmp_path, "hello", {"body.html": '{% extends "_layouts/base.html" %}'})
    with pytest.raises(TemplateFormatError, match=r"^_layouts/base\.html:3: "):
        load_template_dir(path)


def test_a_missing_variable_in_a_layout_names_the_layout_line(tmp_path: Path) -> None:
    write_shared(
        tmp_path, {"_layouts/base.html": "<main>\n{% block content %}{% endblock %}\n{{ brand_colour }}</main>"}
    )
    bundle = load_template_dir(
        write_template(
            tmp_path, "hello", {"body.html": '{% extends "_layouts/base.html" %}{% block content %}x{% endblock %}'}
        )
    )
    with pytest.raises(TemplateRenderError) as caught:
        render(bundle, {"name": "x"})
    assert caught.value.code == "missing_variable"
    assert caught.value.message.startswith("_layouts/base.html:3: 'brand_colour' is undefined")


def test_partials_are_escaped_by_their_own_kind(tmp_path: Path) -> None:
    write_shared(tmp_path, {"_partials/name.html": "<b>{{ name }}</b>", "_partials/name.txt": "*{{ name }}*"})
    bundle = load_template_dir(
        write_template(
            tmp_path,
            "hello",
            {"body.html": '{% include "_partials/name.html" %}', "body.txt": '{% include "_partials/name.txt" %}'},
        )
    )
    rendered = render(bundle, {"name": "<Jo & Al>"})
    assert rendered.html == "<b>&lt;Jo &amp; Al&gt;</b>"
    assert rendered.text == "*<Jo & Al>*"


@pytest.mark.parametrize(("template_id", "locale"), SHIPPED_LOCALES)
def test_the_layout_gives_what_email_clients_need(template_id: str, locale: str) -> None:
    bundle = SHIPPED[template_id]
    provided = (
        PROVIDED if not bundle.metadata.essential else {k: PROVIDED[k] for k in ("recipient_email", "postal_address")}
    )
    rendered = Renderer().render(bundle, locale=locale, data=dict(bundle.metadata.sample_data), provided=provided)
    page = rendered.html

    assert f'<html lang="{locale}"' in page
    assert '<meta name="color-scheme" content="light dark">' in page
    assert '<meta name="supported-color-schemes" content="light dark">' in page
    assert "@media only screen and (max-width:620px)" in page
    assert "@media (prefers-color-scheme:dark)" in page
    # Outlook desktop ignores max-width: it gets a fixed 600 px table in a conditional comment.
    assert '<!--[if mso]><table role="presentation" align="center" width="600"' in page
    assert "max-width:600px" in page
    # A hidden preheader, filled by the template.
    preheader = page.split('<div class="mw-preheader"', 1)[1].split("</div>", 1)[0]
    assert "display:none" in preheader and "mso-hide:all" in preheader
    assert len(preheader.split(">", 1)[1].strip()) > 20
    # Every table is a layout table to screen readers.
    assert page.count("<table") == page.count('<table role="presentation"')
    assert 'role="article"' in page
    # Unsubscribe links only where mailwright provides them; the postal address always.
    assert (PROVIDED["unsubscribe_url"] in page) is (not bundle.metadata.essential)
    assert PROVIDED["postal_address"] in page and PROVIDED["postal_address"] in rendered.text


def test_a_layout_is_compiled_once_for_every_bundle_that_carries_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a renderer and the four shipped bundles, which all carry the same layout
    compiled: list[str | None] = []
    original = SandboxedEnvironment.compile

    def counting(self: SandboxedEnvironment, source: Any, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        compiled.append(name)
        return original(self, source, name, *args, **kwargs)

    monkeypatch.setattr(SandboxedEnvironment, "compile", counting)
    renderer = Renderer()

    # When each is rendered (each bundle has its own sandboxed loader)
    for bundle in SHIPPED.values():
        stored = bundle.model_copy(update={"version": "v1"})
        provided = PROVIDED if not bundle.metadata.essential else {"recipient_email": "j@x", "postal_address": "a"}
        renderer.render(stored, locale="en", data=dict(bundle.metadata.sample_data), provided=provided)

    # Then the layout was compiled once, its compiled code reused by the others
    assert compiled.count("_layouts/base.html") == 1
    assert compiled.count("welcome_email/en/body.html") == 1
