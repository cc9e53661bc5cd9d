"""Template checks and previews for the CLI: every template renders with its sample data in every locale.

Rendering goes through the runtime's own `Renderer` (the same sandbox,
autoescaping and strict undefined as the workers), so what passes here
renders in Lambda; problems are reported with the file and line at fault.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError

from mailwright.errors import TemplateFormatError
from mailwright.templates import METADATA_FILE, PART_FILES, LocaleParts, Renderer, TemplateBundle, load_template_dir
from mailwright.tokens import TokenSigner

SAMPLE_RECIPIENT = "jane.doe@example.com"
SAMPLE_USER = "user-1234"
PREVIEW_SIGNING_KEY = b"mailwright-preview-key-not-a-secret"
_WHERE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+|None): (?P<message>.*)$", re.DOTALL)


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
    """One template in one locale."""

    template: str
    locale: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether it rendered cleanly."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "template": self.template,
            "locale": self.locale,
            "ok": self.ok,
            "problems": [asdict(problem) for problem in self.problems],
        }


def provided_variables(bundle: TemplateBundle, *, recipient: str, postal_address: str, base_url: str) -> dict[str, str]:
    """What the worker provides besides the request's data (links only in non-essential mail)."""
    provided = {"recipient_email": recipient, "postal_address": postal_address}
    if not bundle.metadata.essential:
        provided.update(TokenSigner(PREVIEW_SIGNING_KEY).links(base_url, SAMPLE_USER, bundle.metadata.category))
    return provided


def _template_line(exc: BaseException) -> int | None:
    """The template line a render error was raised at (jinja rewrites tracebacks to template lines)."""
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == "<template>":
            line = lineno
    return line


def render_parts(
    renderer: Renderer, bundle: TemplateBundle, locale: str, data: dict[str, Any], provided: dict[str, str]
) -> tuple[dict[str, str], list[Problem]]:
    """Render subject, HTML and text of one locale; the parts that rendered, and every problem with file and line.

    Each part is compiled on its own (beside placeholder siblings), so a syntax
    error in one part does not hide a problem in another.
    """
    rendered: dict[str, str] = {}
    problems: list[Problem] = []
    context = {**data, **provided}
    sources = bundle.locales[locale]
    for part, filename in PART_FILES.items():
        where = f"{bundle.template_id}/{locale}/{filename}"
        alone = LocaleParts(**{name: getattr(sources, name) if name == part else "-" for name in PART_FILES})
        # A version of its own keeps the renderer's cache from mixing the per-part bundles.
        single = bundle.model_copy(update={"locales": {locale: alone}, "version": f"{bundle.version}#{part}"})
        try:
            template: jinja2.Template = getattr(renderer.compile(single, locale), part)
        except TemplateFormatError as exc:
            match = _WHERE.match(str(exc))
            line = match["line"] if match else ""
            message = match["message"] if match else str(exc)
            problems.append(Problem(where, int(line) if line.isdigit() else None, message))
            continue
        try:
            rendered[part] = template.render(context)
        except jinja2.UndefinedError as exc:
            problems.append(Problem(where, _template_line(exc), f"missing variable: {exc.message}"))
        except SecurityError as exc:
            problems.append(Problem(where, _template_line(exc), f"blocked by the sandbox: {exc}"))
        except Exception as exc:  # a filter failing on the data, e.g. int("abc")
            problems.append(Problem(where, _template_line(exc), f"{type(exc).__name__}: {exc}"))
    if "subject" in rendered:
        subject = rendered["subject"].strip()
        where = f"{bundle.template_id}/{locale}/{PART_FILES['subject']}"
        if "\n" in subject or "\r" in subject:
            problems.append(Problem(where, None, "the subject renders with a line break"))
        elif not subject:
            problems.append(Problem(where, None, "the subject renders empty"))
    return rendered, problems


def check_template(path: Path, *, postal_address: str, base_url: str) -> list[LocaleCheck]:
    """Check one template directory in every locale."""
    template_id = path.name
    try:
        bundle = load_template_dir(path)
    except TemplateFormatError as exc:
        return [LocaleCheck(template_id, "*", [Problem(f"{template_id}/{METADATA_FILE}", None, str(exc))])]
    metadata = bundle.metadata
    missing = sorted(set(metadata.required_variables) - set(metadata.sample_data))
    renderer = Renderer()
    provided = provided_variables(bundle, recipient=SAMPLE_RECIPIENT, postal_address=postal_address, base_url=base_url)
    checks = []
    for locale in sorted(bundle.locales):
        check = LocaleCheck(template_id, locale)
        if missing:
            check.problems.append(
                Problem(
                    f"{template_id}/{METADATA_FILE}", None, f"sample_data lacks required variables {', '.join(missing)}"
                )
            )
        _, problems = render_parts(renderer, bundle, locale, dict(metadata.sample_data), provided)
        check.problems.extend(problems)
        checks.append(check)
    return checks


def check_tree(root: Path, *, postal_address: str, base_url: str) -> list[LocaleCheck]:
    """Check every template under `root`."""
    checks: list[LocaleCheck] = []
    for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        checks.extend(check_template(path, postal_address=postal_address, base_url=base_url))
    return checks
