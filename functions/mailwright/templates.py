"""Email templates: the on-disk format, the deployable bundle and the sandboxed renderer.

Authors write a directory per template::

    templates/<template_id>/template.json        metadata (category, priority, variables, sample data)
    templates/<template_id>/<locale>/subject.txt
    templates/<template_id>/<locale>/body.html   autoescaped
    templates/<template_id>/<locale>/body.txt

At deploy time each directory becomes one JSON bundle, `<template_id>.json`,
so one S3 object (and one S3 version id) is one version of a template::

    python -m mailwright.templates bundle templates/ build/templates/
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mailwright.constants import CATEGORIES, ESSENTIAL_CATEGORIES
from mailwright.errors import HeaderInjectionError, TemplateFormatError, TemplateRenderError

PART_FILES: dict[str, str] = {"subject": "subject.txt", "html": "body.html", "text": "body.txt"}
METADATA_FILE = "template.json"
# Variables the renderer provides; templates may use them without listing them.
PROVIDED_VARIABLES = frozenset({"recipient_email", "postal_address", "unsubscribe_url", "preferences_url"})
LINK_VARIABLES = frozenset({"unsubscribe_url", "preferences_url"})

Category = Literal["security", "transactional", "product", "marketing"]
assert set(CATEGORIES) == {"security", "transactional", "product", "marketing"}


class TemplateMetadata(BaseModel):
    """What `template.json` says about a template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    category: Category
    priority: Literal["critical", "standard", "bulk"] = "standard"
    from_name: str | None = Field(default=None, max_length=128)
    default_locale: str = "en"
    required_variables: tuple[str, ...] = ()
    sample_data: dict[str, Any] = Field(default_factory=dict)

    @property
    def essential(self) -> bool:
        """Essential mail (security, transactional) ignores opt-outs and has no unsubscribe link."""
        return self.category in ESSENTIAL_CATEGORIES


class LocaleParts(BaseModel):
    """Jinja sources of one locale."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str
    html: str
    text: str


class TemplateBundle(BaseModel):
    """One version of one template: metadata and the parts of every locale."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template_id: str
    metadata: TemplateMetadata
    locales: dict[str, LocaleParts]
    # Which stored version this is (S3 version id or ETag); not part of the bundle file.
    version: str | None = Field(default=None, exclude=True)

    def resolve_locale(self, requested: str | None) -> str:
        """Best locale for a request: `fr-CA` falls back to `fr`, then to the template's default."""
        if requested:
            parts = requested.split("-")
            for size in range(len(parts), 0, -1):
                candidate = "-".join(parts[:size])
                for locale in self.locales:
                    if locale.lower() == candidate.lower():
                        return locale
        return self.metadata.default_locale

    def to_json(self) -> str:
        """The bundle file's content."""
        return self.model_dump_json(indent=None)


def load_template_dir(path: Path) -> TemplateBundle:
    """Read one template directory into a bundle; raise TemplateFormatError naming the file at fault."""
    meta_file = path / METADATA_FILE
    try:
        metadata = TemplateMetadata.model_validate_json(meta_file.read_bytes())
    except FileNotFoundError:
        raise TemplateFormatError(f"{meta_file}: missing") from None
    except ValidationError as exc:
        raise TemplateFormatError(f"{meta_file}: {exc}") from None
    locales: dict[str, LocaleParts] = {}
    for locale_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        parts: dict[str, str] = {}
        for part, filename in PART_FILES.items():
            file = locale_dir / filename
            if not file.is_file():
                raise TemplateFormatError(f"{file}: missing")
            parts[part] = file.read_text(encoding="utf-8")
        locales[locale_dir.name] = LocaleParts(**parts)
    if metadata.default_locale not in locales:
        raise TemplateFormatError(f"{path}: default_locale {metadata.default_locale!r} has no directory")
    return TemplateBundle(template_id=path.name, metadata=metadata, locales=locales)


def load_template_tree(root: Path) -> dict[str, TemplateBundle]:
    """Every template directory under `root`, by template id."""
    bundles = {}
    for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        bundles[path.name] = load_template_dir(path)
    return bundles


def bundle_directory(source: Path, output: Path) -> list[Path]:
    """Write `<template_id>.json` into `output` for every template under `source`; return the files."""
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for template_id, bundle in load_template_tree(source).items():
        target = output / f"{template_id}.json"
        target.write_text(bundle.to_json(), encoding="utf-8")
        written.append(target)
    return written


@dataclass(frozen=True)
class RenderedEmail:
    """The three rendered parts of one email."""

    subject: str
    html: str
    text: str
    locale: str


class _CompiledLocale:
    def __init__(self, subject: jinja2.Template, html: jinja2.Template, text: jinja2.Template) -> None:
        self.subject = subject
        self.html = html
        self.text = text


class Renderer:
    """Renders bundles in a Jinja sandbox with strict variables; compiled templates are cached.

    Data is only ever passed as variables, never compiled, so a request cannot
    inject template code; HTML parts are autoescaped.
    """

    def __init__(self, *, cache_size: int = 256) -> None:
        common: dict[str, Any] = {"undefined": jinja2.StrictUndefined, "keep_trailing_newline": False}
        self._html_env = SandboxedEnvironment(autoescape=True, **common)
        self._text_env = SandboxedEnvironment(autoescape=False, **common)
        self._cache: dict[tuple[str, str | None, str], _CompiledLocale] = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def compile(self, bundle: TemplateBundle, locale: str) -> _CompiledLocale:
        """Compiled parts of one locale; raise TemplateFormatError on a syntax error (file and line named)."""
        key = (bundle.template_id, bundle.version, locale)
        compiled = self._cache.get(key)
        if compiled is not None:
            return compiled
        parts = bundle.locales[locale]
        compiled_parts: dict[str, jinja2.Template] = {}
        for part, filename in PART_FILES.items():
            env = self._html_env if part == "html" else self._text_env
            try:
                compiled_parts[part] = env.from_string(getattr(parts, part))
            except jinja2.TemplateSyntaxError as exc:
                where = f"{bundle.template_id}/{locale}/{filename}:{exc.lineno}"
                raise TemplateFormatError(f"{where}: {exc.message}") from None
        compiled = _CompiledLocale(**compiled_parts)
        with self._lock:
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = compiled
        return compiled

    def render(
        self,
        bundle: TemplateBundle,
        *,
        locale: str | None,
        data: dict[str, Any],
        provided: dict[str, str],
    ) -> RenderedEmail:
        """Render subject, HTML and text; raise TemplateRenderError with a readable reason."""
        missing = [name for name in bundle.metadata.required_variables if name not in data]
        if missing:
            raise TemplateRenderError(
                f"template {bundle.template_id!r} needs {', '.join(sorted(missing))}", code="missing_variable"
            )
        resolved = bundle.resolve_locale(locale)
        try:
            compiled = self.compile(bundle, resolved)
        except TemplateFormatError as exc:
            raise TemplateRenderError(str(exc)) from None
        context = {**data, **provided}
        rendered = {}
        for part in ("subject", "html", "text"):
            try:
                rendered[part] = getattr(compiled, part).render(context)
            except jinja2.UndefinedError as exc:
                where = f"{bundle.template_id}/{resolved}/{PART_FILES[part]}"
                raise TemplateRenderError(f"{where}: {exc.message}", code="missing_variable") from None
            except SecurityError as exc:
                where = f"{bundle.template_id}/{resolved}/{PART_FILES[part]}"
                raise TemplateRenderError(
                    f"{where}: blocked by the sandbox ({exc})", code="sandbox_violation"
                ) from None
            except Exception as exc:  # a filter or test failing on the data (e.g. int("abc")) is the data's fault
                where = f"{bundle.template_id}/{resolved}/{PART_FILES[part]}"
                raise TemplateRenderError(f"{where}: {type(exc).__name__}: {exc}") from None
        subject = rendered["subject"].strip()
        if "\r" in subject or "\n" in subject:
            raise HeaderInjectionError("subject")
        if not subject:
            raise TemplateRenderError(f"template {bundle.template_id!r} rendered an empty subject")
        return RenderedEmail(subject=subject, html=rendered["html"], text=rendered["text"], locale=resolved)


def main(argv: list[str] | None = None) -> int:
    """`python -m mailwright.templates bundle SRC OUT`: write one JSON bundle per template."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "bundle":
        sys.stderr.write("usage: python -m mailwright.templates bundle SOURCE_DIR OUTPUT_DIR\n")
        return 2
    try:
        written = bundle_directory(Path(args[1]), Path(args[2]))
    except TemplateFormatError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(json.dumps({"bundled": [p.name for p in written]}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
