"""Template checks and previews for the CLI: every template renders with its sample data in every locale,
and passes the stricter checks a sender needs.

Rendering goes through the runtime's own `Renderer` (the same sandbox,
autoescaping, strict variables and layouts as the workers), so what passes
here renders in Lambda. Beyond rendering, a template fails when it

- uses a variable `template.json` does not declare (required or optional), since a request
  without it would be rejected; a declared variable no locale uses is a warning;
- is product or marketing mail without the unsubscribe link and the postal address in both
  its HTML and its text (CAN-SPAM);
- renders a subject longer than SUBJECT_MAX_CHARS with its sample data;
- links anywhere but https (href and src in HTML, URLs in text), sample data included;
- has an image without alt text.

Problems name the file and line at fault where the source shows it. The
checks work on a bundle in memory (`check_bundle`), so an editor can run them
on unsaved edits.
"""

from __future__ import annotations

import html
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta, nodes

from mailwright.errors import TemplateFormatError, TemplateRenderError
from mailwright.handlebars import HandlebarsError, compile_template
from mailwright.templates import (
    METADATA_FILE,
    PART_FILES,
    PARTS,
    PROVIDED_VARIABLES,
    Renderer,
    TemplateBundle,
    jinja_references,
    load_template_dir,
    parse_jinja,
    read_shared,
    template_dirs,
)
from mailwright.tokens import TokenSigner

SAMPLE_RECIPIENT = "jane.doe@example.com"
SAMPLE_USER = "user-1234"
PREVIEW_SIGNING_KEY = b"mailwright-preview-key-not-a-secret"
# Inbox lists cut subjects at about 60-80 characters on desktop and 30-40 on phones, so words past 78 are
# rarely read; 78 is also RFC 5322's recommended line length, which keeps `Subject:` on one folded line.
SUBJECT_MAX_CHARS = 78
# Link schemes a rendered email may use besides https.
SAFE_SCHEMES = ("https://", "mailto:", "tel:", "cid:", "#")
_WHERE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+|None): (?P<message>.*)$", re.DOTALL)
_TEXT_URL = re.compile(r"\bhttp://[^\s<>\"')]+", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    """What is wrong, and where."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


@dataclass
class LocaleCheck:
    """One template in one locale: problems fail it, warnings do not."""

    template: str
    locale: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether it passed every check."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "template": self.template,
            "locale": self.locale,
            "ok": self.ok,
            "problems": [asdict(problem) for problem in self.problems],
            "warnings": [asdict(warning) for warning in self.warnings],
        }


def provided_variables(bundle: TemplateBundle, *, recipient: str, postal_address: str, base_url: str) -> dict[str, str]:
    """What the worker provides besides the request's data (links only in non-essential mail)."""
    provided = {"recipient_email": recipient, "postal_address": postal_address}
    if not bundle.metadata.essential:
        provided.update(TokenSigner(PREVIEW_SIGNING_KEY).links(base_url, SAMPLE_USER, bundle.metadata.category))
    return provided


def problem_from(error: Exception, default_file: str) -> Problem:
    """A Problem from a `file:line: message` error of the renderer or the loader."""
    text = error.message if isinstance(error, TemplateRenderError) else str(error)
    match = _WHERE.match(text)
    if match is None:
        return Problem(default_file, None, text)
    line = match["line"]
    return Problem(match["file"], int(line) if line.isdigit() else None, match["message"])


def _message_kind(problem: Problem, error: Exception) -> Problem:
    if isinstance(error, TemplateRenderError) and error.code == "missing_variable":
        return Problem(problem.file, problem.line, f"missing variable: {problem.message}")
    prefix = "blocked by the sandbox ("
    if (
        isinstance(error, TemplateRenderError)
        and error.code == "sandbox_violation"
        and problem.message.startswith(prefix)
    ):
        return Problem(problem.file, problem.line, f"blocked by the sandbox: {problem.message[len(prefix) : -1]}")
    return problem


def render_parts(
    renderer: Renderer, bundle: TemplateBundle, locale: str, data: dict[str, Any], provided: dict[str, str]
) -> tuple[dict[str, str], list[Problem]]:
    """Render subject, HTML and text of one locale; the parts that rendered, and every problem with file and line.

    Each part renders on its own, so a problem in one part does not hide a problem in another.
    """
    rendered: dict[str, str] = {}
    problems: list[Problem] = []
    context = Renderer.context(locale, data, provided)
    for part in PARTS:
        where = bundle.part_name(locale, part)
        try:
            rendered[part] = renderer.render_part(bundle, locale, part, context)
        except TemplateRenderError as exc:
            problems.append(_message_kind(problem_from(exc, where), exc))
    if "subject" in rendered:
        subject = rendered["subject"].strip()
        where = bundle.part_name(locale, "subject")
        if "\n" in subject or "\r" in subject:
            problems.append(Problem(where, None, "the subject renders with a line break"))
        elif not subject:
            problems.append(Problem(where, None, "the subject renders empty"))
    return rendered, problems


# -- variables ----------------------------------------------------------------------------


def _top_level_names(tree: nodes.Template) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (nodes.Assign, nodes.AssignBlock)):
            names.update(name.name for name in node.target.find_all(nodes.Name))
            if isinstance(node.target, nodes.Name):
                names.add(node.target.name)
        elif isinstance(node, nodes.Import):
            names.add(node.target)
        elif isinstance(node, nodes.FromImport):
            names.update(item[1] if isinstance(item, tuple) else item for item in node.names)
        elif isinstance(node, nodes.Macro):
            names.add(node.name)
    return names


def _jinja_variables(name: str, source: str, shared: Mapping[str, str]) -> dict[str, tuple[str, int]]:
    """Variables a Jinja part reads from the context, with the first file and line of each, layouts included."""
    found: dict[str, tuple[str, int]] = {}
    pending, seen = [(name, source)], set()
    while pending:
        current, text = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        tree = parse_jinja(current, text)
        # Blocks see what the template sets and imports at its top level; Jinja's analysis takes each
        # block on its own, so take those names out by hand.
        try:
            undeclared = meta.find_undeclared_variables(tree) - _top_level_names(tree)
        except jinja2.TemplateSyntaxError as exc:  # e.g. an unknown filter, found by Jinja's code generator
            raise TemplateFormatError(f"{current}:{exc.lineno}: {exc.message}") from None
        for node in tree.find_all(nodes.Name):
            if node.ctx == "load" and node.name in undeclared and node.name not in found:
                found[node.name] = (current, node.lineno)
        pending.extend((target, shared[target]) for target, _ in jinja_references(current, text) if target in shared)
    return found


def _handlebars_variables(name: str, source: str, declared: frozenset[str]) -> dict[str, tuple[str, int]]:
    root, nested = compile_template(source, name=name).variables()
    found = {variable: (name, line) for variable, line in root.items()}
    # A name read inside #each/#with may be a field of the item; it counts as used only when declared.
    found.update({variable: (name, 0) for variable in nested & declared if variable not in found})
    return found


def used_variables(bundle: TemplateBundle, locale: str) -> dict[str, tuple[str, int]]:
    """Every variable one locale reads (its parts and the layouts and partials they use), with file and line."""
    used: dict[str, tuple[str, int]] = {}
    declared = bundle.metadata.declared_variables
    for part in PARTS:
        name, source = bundle.part_name(locale, part), bundle.source(locale, part)
        if bundle.metadata.engine == "handlebars":
            found = _handlebars_variables(name, source, declared)
        else:
            found = _jinja_variables(name, source, bundle.shared)
        for variable, where in found.items():
            used.setdefault(variable, where)
    return used


def _variable_checks(bundle: TemplateBundle, locale: str, check: LocaleCheck) -> None:
    try:
        used = used_variables(bundle, locale)
    except (TemplateFormatError, HandlebarsError):  # a syntax error: rendering reported it with its line
        return
    declared = bundle.metadata.declared_variables
    for variable, (file, line) in sorted(used.items(), key=lambda item: (item[1][0], item[1][1])):
        if variable not in declared and variable not in PROVIDED_VARIABLES:
            check.problems.append(
                Problem(
                    file,
                    line or None,
                    f"uses {variable!r}, which {METADATA_FILE} does not declare (required_variables, or "
                    "optional_variables when a request may leave it out)",
                )
            )
    meta_file = f"{bundle.template_id}/{METADATA_FILE}"
    for variable in sorted(declared - set(used)):
        check.warnings.append(Problem(meta_file, None, f"declares {variable!r}, which {locale} never uses"))


# -- rendered output ------------------------------------------------------------------------------


class _HtmlScan(HTMLParser):
    """The link targets and images of rendered HTML, with the rendered line of each."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str, int]] = []
        self.images_without_alt: list[tuple[str, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        line = self.getpos()[0]
        for attribute in ("href", "src"):
            if attribute in values:
                self.links.append((attribute, (values[attribute] or "").strip(), line))
        if tag == "img" and values.get("alt") is None:
            self.images_without_alt.append((values.get("src") or "", line))


def _sample_paths(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _sample_paths(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _sample_paths(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def _source_line(bundle: TemplateBundle, locale: str, part: str, needle: str) -> tuple[str, int | None]:
    """Where a literal first appears: the part itself, else a layout or partial; else the part, lineless."""
    name = bundle.part_name(locale, part)
    sources = {name: bundle.source(locale, part), **bundle.shared}
    for file, source in sources.items():
        index = source.find(needle)
        if index >= 0:
            return file, source.count("\n", 0, index) + 1
    return name, None


def _insecure_link(bundle: TemplateBundle, locale: str, part: str, url: str, sample: dict[str, Any]) -> Problem:
    file, line = _source_line(bundle, locale, part, url)
    if line is None:
        origin = next((path for path, value in _sample_paths(sample) if url in value), None)
        if origin is not None:
            return Problem(
                f"{bundle.template_id}/{METADATA_FILE}",
                None,
                f"sample_data {origin} renders the link {url!r} into {PART_FILES[part]}: links must be https",
            )
    return Problem(file, line, f"links to {url!r}: links must be https")


def _output_checks(
    bundle: TemplateBundle, locale: str, rendered: dict[str, str], provided: dict[str, str], check: LocaleCheck
) -> None:
    sample = dict(bundle.metadata.sample_data)
    if "subject" in rendered:
        subject = rendered["subject"].strip()
        if len(subject) > SUBJECT_MAX_CHARS:
            check.problems.append(
                Problem(
                    bundle.part_name(locale, "subject"),
                    None,
                    f"the subject renders {len(subject)} characters with the sample data (at most "
                    f"{SUBJECT_MAX_CHARS}: inboxes cut longer subjects)",
                )
            )
    if "html" in rendered:
        scan = _HtmlScan()
        scan.feed(rendered["html"])
        for attribute, url, _ in scan.links:
            if not url:
                file, line = bundle.part_name(locale, "html"), None
                check.problems.append(Problem(file, line, f"an empty {attribute}"))
            elif not url.lower().startswith(SAFE_SCHEMES):
                check.problems.append(_insecure_link(bundle, locale, "html", url, sample))
        for src, _ in scan.images_without_alt:
            file, line = _source_line(bundle, locale, "html", "<img")
            check.problems.append(Problem(file, line, f'the image {src!r} has no alt text (alt="" if decorative)'))
    if "text" in rendered:
        for url in dict.fromkeys(_TEXT_URL.findall(rendered["text"])):
            check.problems.append(_insecure_link(bundle, locale, "text", url, sample))
    if not bundle.metadata.essential:
        _compliance_checks(bundle, locale, rendered, provided, check)


def _compliance_checks(
    bundle: TemplateBundle, locale: str, rendered: dict[str, str], provided: dict[str, str], check: LocaleCheck
) -> None:
    """CAN-SPAM: product and marketing mail carries a working opt-out and the sender's postal address."""
    category = bundle.metadata.category
    for part in ("html", "text"):
        if part not in rendered:
            continue
        body = html.unescape(rendered[part]) if part == "html" else rendered[part]
        for variable, what in (("unsubscribe_url", "an unsubscribe link"), ("postal_address", "the postal address")):
            if provided[variable] not in body:
                check.problems.append(
                    Problem(
                        bundle.part_name(locale, part),
                        None,
                        f"{category} mail needs {what} ({{{{ {variable} }}}}) in {PART_FILES[part]} (CAN-SPAM)",
                    )
                )


# -- entry points -----------------------------------------------------------------------------------


def check_bundle(
    bundle: TemplateBundle, *, postal_address: str, base_url: str, renderer: Renderer | None = None
) -> list[LocaleCheck]:
    """Check one bundle (from a directory or an editor) in every locale."""
    renderer = renderer or Renderer()
    metadata = bundle.metadata
    missing = sorted(set(metadata.required_variables) - set(metadata.sample_data))
    provided = provided_variables(bundle, recipient=SAMPLE_RECIPIENT, postal_address=postal_address, base_url=base_url)
    checks = []
    for locale in sorted(bundle.locales):
        check = LocaleCheck(bundle.template_id, locale)
        if missing:
            check.problems.append(
                Problem(
                    f"{bundle.template_id}/{METADATA_FILE}",
                    None,
                    f"sample_data lacks required variables {', '.join(missing)}",
                )
            )
        rendered, problems = render_parts(renderer, bundle, locale, dict(metadata.sample_data), provided)
        check.problems.extend(problems)
        _variable_checks(bundle, locale, check)
        _output_checks(bundle, locale, rendered, provided, check)
        checks.append(check)
    return checks


def check_template(
    path: Path, *, postal_address: str, base_url: str, shared: Mapping[str, str] | None = None
) -> list[LocaleCheck]:
    """Check one template directory in every locale."""
    template_id = path.name
    try:
        bundle = load_template_dir(path, shared=shared)
    except TemplateFormatError as exc:
        return [LocaleCheck(template_id, "*", [problem_from(exc, f"{template_id}/{METADATA_FILE}")])]
    return check_bundle(bundle, postal_address=postal_address, base_url=base_url)


def check_tree(root: Path, *, postal_address: str, base_url: str) -> list[LocaleCheck]:
    """Check every template under `root`."""
    shared = read_shared(root)
    checks: list[LocaleCheck] = []
    for path in template_dirs(root):
        checks.extend(check_template(path, postal_address=postal_address, base_url=base_url, shared=shared))
    return checks


# What the deploy-time bundler checks with: the structure counts here, the real values come from the stack.
BUNDLER_POSTAL_ADDRESS = "Example Co., 1 Example Street, Springfield, USA"
BUNDLER_BASE_URL = "https://example.com/unsubscribe"


def main(argv: list[str] | None = None) -> int:
    """`python -m mailwright_tools.template_checks DIR`: exit 1 and list the problems when a template fails."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m mailwright_tools.template_checks TEMPLATES_DIR\n")
        return 2
    checks = check_tree(Path(args[0]), postal_address=BUNDLER_POSTAL_ADDRESS, base_url=BUNDLER_BASE_URL)
    failed = [problem for check in checks for problem in check.problems]
    for problem in failed:
        sys.stderr.write(f"{problem}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
