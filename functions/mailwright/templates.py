"""Email templates: the on-disk format, the deployable bundle and the sandboxed renderer.

Authors write a directory per template, beside shared layouts and partials::

    templates/<template_id>/template.json        metadata (category, engine, variables, sample data)
    templates/<template_id>/<locale>/subject.txt
    templates/<template_id>/<locale>/body.html   autoescaped
    templates/<template_id>/<locale>/body.txt
    templates/_layouts/<name>                    `{% extends "_layouts/base.html" %}`
    templates/_partials/<name>                   `{% include "_partials/button.html" %}`

At deploy time each template directory becomes one JSON bundle,
`<template_id>.json`, carrying the layouts and partials it uses, so one S3
object (and one S3 version id) is one self-contained version of a template:
an old version keeps the layout it was published with::

    python -m mailwright.templates bundle templates/ build/templates/

Templates use Jinja2 (default) or, with `"engine": "handlebars"`, the
Handlebars/Mustache subset of `mailwright.handlebars`, imported only when a
bundle asks for it.

An editor builds a bundle from sources held in memory with `assemble_bundle`
and renders it with the same `Renderer`: a bundle without a version is cached
by a digest of its content, so every edit renders afresh. The renderer reads
parts only through `TemplateBundle.source`, the one place a later part kind
(a variant's subject or body) plugs in.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mailwright.constants import CATEGORIES, ESSENTIAL_CATEGORIES
from mailwright.errors import HeaderInjectionError, TemplateFormatError, TemplateRenderError

if TYPE_CHECKING:
    from mailwright.handlebars import HandlebarsTemplate

PART_FILES: dict[str, str] = {"subject": "subject.txt", "html": "body.html", "text": "body.txt"}
PARTS: tuple[str, ...] = tuple(PART_FILES)
METADATA_FILE = "template.json"
# Directories of templates/ holding what templates share; bundles carry the files they use.
SHARED_DIRS: tuple[str, ...] = ("_layouts", "_partials")
# Variables the renderer provides; templates may use them without listing them.
PROVIDED_VARIABLES = frozenset({"recipient_email", "postal_address", "unsubscribe_url", "preferences_url", "locale"})
LINK_VARIABLES = frozenset({"unsubscribe_url", "preferences_url"})
ENGINES: tuple[str, ...] = ("jinja2", "handlebars")

Category = Literal["security", "transactional", "product", "marketing"]
assert set(CATEGORIES) == {"security", "transactional", "product", "marketing"}


class TemplateMetadata(BaseModel):
    """What `template.json` says about a template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    category: Category
    priority: Literal["critical", "standard", "bulk"] = "standard"
    engine: Literal["jinja2", "handlebars"] = "jinja2"
    from_name: str | None = Field(default=None, max_length=128)
    default_locale: str = "en"
    # A request without one of these is rejected (missing_variable).
    required_variables: tuple[str, ...] = ()
    # Variables the template uses only when present (`{% if coupon is defined %}`, `{{#if coupon}}`).
    optional_variables: tuple[str, ...] = ()
    sample_data: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _variables_are_declared_once(self) -> TemplateMetadata:
        both = sorted(set(self.required_variables) & set(self.optional_variables))
        if both:
            raise ValueError(f"{', '.join(both)} declared both required and optional")
        provided = sorted((set(self.required_variables) | set(self.optional_variables)) & PROVIDED_VARIABLES)
        if provided:
            raise ValueError(f"{', '.join(provided)} provided by mailwright, not declared by templates")
        return self

    @property
    def essential(self) -> bool:
        """Essential mail (security, transactional) ignores opt-outs and has no unsubscribe link."""
        return self.category in ESSENTIAL_CATEGORIES

    @property
    def declared_variables(self) -> frozenset[str]:
        """Required and optional variables."""
        return frozenset(self.required_variables) | frozenset(self.optional_variables)


class LocaleParts(BaseModel):
    """Sources of one locale (Jinja2 or Handlebars, as the metadata says)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str
    html: str
    text: str


class TemplateBundle(BaseModel):
    """One version of one template: metadata, the parts of every locale, and the shared files they use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template_id: str
    metadata: TemplateMetadata
    locales: dict[str, LocaleParts]
    # Layouts and partials by their path under templates/ (`_layouts/base.html`): only those the parts use.
    shared: dict[str, str] = Field(default_factory=dict)
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

    def source(self, locale: str, part: str) -> str:
        """The source of one part of one locale (the one place the renderer reads parts from)."""
        return str(getattr(self.locales[locale], part))

    def part_name(self, locale: str, part: str) -> str:
        """The name a part goes by in errors and in the loader: `<template_id>/<locale>/<file>`."""
        return f"{self.template_id}/{locale}/{PART_FILES[part]}"

    def cache_key(self) -> str:
        """The stored version, or a digest of the content for a bundle not (yet) stored, e.g. one being edited."""
        if self.version is not None:
            return self.version
        return "sha256:" + hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    def to_json(self) -> str:
        """The bundle file's content."""
        return self.model_dump_json(indent=None)


# -- reading and bundling -------------------------------------------------------------


def read_shared(root: Path) -> dict[str, str]:
    """Every layout and partial under `root` (a templates directory), by path relative to it."""
    shared: dict[str, str] = {}
    for directory in SHARED_DIRS:
        base = root / directory
        if not base.is_dir():
            continue
        for file in sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith(".")):
            shared[file.relative_to(root).as_posix()] = file.read_text(encoding="utf-8")
    return shared


def parse_jinja(name: str, source: str) -> nodes.Template:
    """The syntax tree of a Jinja source; TemplateFormatError naming file and line on a syntax error."""
    try:
        return _PARSER.parse(source, name=name)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateFormatError(f"{name}:{exc.lineno}: {exc.message}") from None


def jinja_references(name: str, source: str) -> Iterator[tuple[str, int]]:
    """The templates a Jinja source extends, includes or imports, with the line of each; names must be literal."""
    tree = parse_jinja(name, source)
    for node in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        assert isinstance(node, (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport))
        target = node.template
        names = target.items if isinstance(target, (nodes.List, nodes.Tuple)) else [target]
        for item in names:
            if not isinstance(item, nodes.Const) or not isinstance(item.value, str):
                raise TemplateFormatError(
                    f"{name}:{node.lineno}: the template name must be a quoted string (a bundle carries only "
                    "the layouts and partials it names)"
                )
            yield item.value, node.lineno


def _shared_closure(bundle_parts: Mapping[str, str], shared: Mapping[str, str]) -> dict[str, str]:
    """The shared files the parts use, directly or through other shared files."""
    used: dict[str, str] = {}
    pending = list(bundle_parts.items())
    while pending:
        name, source = pending.pop()
        for target, line in jinja_references(name, source):
            if target in used:
                continue
            if target not in shared:
                where = ", ".join(SHARED_DIRS)
                raise TemplateFormatError(f"{name}:{line}: {target!r} is not a layout or partial (under {where})")
            used[target] = shared[target]
            pending.append((target, shared[target]))
    return dict(sorted(used.items()))


def assemble_bundle(
    template_id: str, metadata: TemplateMetadata, locales: Mapping[str, LocaleParts], shared: Mapping[str, str]
) -> TemplateBundle:
    """A self-contained bundle from sources held in memory (a directory, an editor); TemplateFormatError if not."""
    if metadata.default_locale not in locales:
        raise TemplateFormatError(f"{template_id}: default_locale {metadata.default_locale!r} has no directory")
    used: dict[str, str] = {}
    if metadata.engine == "jinja2":
        named = {
            f"{template_id}/{locale}/{filename}": getattr(parts, part)
            for locale, parts in locales.items()
            for part, filename in PART_FILES.items()
        }
        used = _shared_closure(named, shared)
    else:
        from mailwright.handlebars import HandlebarsError, compile_template

        for locale, parts in locales.items():
            for part, filename in PART_FILES.items():
                try:
                    compile_template(getattr(parts, part), name=f"{template_id}/{locale}/{filename}")
                except HandlebarsError as exc:
                    raise TemplateFormatError(str(exc)) from None
    return TemplateBundle(template_id=template_id, metadata=metadata, locales=dict(locales), shared=used)


def load_template_dir(path: Path, *, shared: Mapping[str, str] | None = None) -> TemplateBundle:
    """Read one template directory into a bundle; raise TemplateFormatError naming the file at fault.

    `shared` holds the layouts and partials (default: those of the directory's parent).
    """
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
    return assemble_bundle(path.name, metadata, locales, read_shared(path.parent) if shared is None else shared)


def template_dirs(root: Path) -> list[Path]:
    """The template directories under `root` (hidden and `_` directories are not templates)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def load_template_tree(root: Path) -> dict[str, TemplateBundle]:
    """Every template directory under `root`, by template id."""
    shared = read_shared(root)
    return {path.name: load_template_dir(path, shared=shared) for path in template_dirs(root)}


def bundle_directory(source: Path, output: Path) -> list[Path]:
    """Write `<template_id>.json` into `output` for every template under `source`; return the files."""
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for template_id, bundle in load_template_tree(source).items():
        target = output / f"{template_id}.json"
        target.write_text(bundle.to_json(), encoding="utf-8")
        written.append(target)
    return written


# -- rendering --------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedEmail:
    """The three rendered parts of one email."""

    subject: str
    html: str
    text: str
    locale: str


class _BundleLoader(jinja2.BaseLoader):
    """Serves a bundle's own parts and shared files, and nothing else: no file system, no other template."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        self._sources = dict(sources)

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        """The source; its name doubles as the file name, so tracebacks point at the template's own lines."""
        if template not in self._sources:
            raise jinja2.TemplateNotFound(template)
        return self._sources[template], template, lambda: True

    def list_templates(self) -> list[str]:
        """The names served."""
        return sorted(self._sources)


def _autoescape(name: str | None) -> bool:
    # HTML parts and HTML layouts/partials escape; the subject and text parts are plain text.
    return bool(name) and str(name).endswith((".html", ".htm"))


class _CompiledCode(jinja2.BytecodeCache):
    """Compiled code of templates by name and source checksum, in memory, shared by a renderer's environments.

    Every bundle of a deploy carries the same layout; without this each bundle
    (and each new version of one) would compile it again on a cold worker.
    """

    def __init__(self, size: int) -> None:
        self._code: dict[str, bytes] = {}
        self._size = size
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        """Fill the bucket when this name and source were compiled before (the bucket checks the checksum)."""
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        """Keep a freshly compiled template's code."""
        with self._lock:
            if len(self._code) >= self._size:
                self._code.pop(next(iter(self._code)))
            self._code[bucket.key] = bucket.bytecode_to_string()


def _jinja_environment(bundle: TemplateBundle, code: jinja2.BytecodeCache | None = None) -> SandboxedEnvironment:
    sources = {
        bundle.part_name(locale, part): bundle.source(locale, part) for locale in bundle.locales for part in PARTS
    }
    sources.update(bundle.shared)
    return SandboxedEnvironment(
        loader=_BundleLoader(sources),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        # Templates never change within a bundle version, so the environment never re-checks them.
        auto_reload=False,
        bytecode_cache=code,
    )


def _template_line(exc: BaseException, names: frozenset[str]) -> tuple[str | None, int | None]:
    """The deepest template file and line an exception passed through (Jinja maps frames to template lines)."""
    found: tuple[str | None, int | None] = (None, None)
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename in names:
            found = (frame.f_code.co_filename, lineno)
    return found


def _where(file: str, line: int | None) -> str:
    return f"{file}:{line}" if line else file


class CompiledPart:
    """One compiled part of one locale: call `render(context)`; errors name file and line."""

    def __init__(self, name: str, render: Callable[[dict[str, Any]], str]) -> None:
        self.name = name
        self._render = render

    def render(self, context: dict[str, Any]) -> str:
        """The rendered text; TemplateRenderError (missing_variable, sandbox_violation, render_error)."""
        return self._render(context)


def _jinja_part(env: SandboxedEnvironment, name: str, shared: frozenset[str]) -> CompiledPart:
    try:
        template = env.get_template(name)
        # Extends and includes load at render time; load them now, so a syntax error in a layout is a
        # format error of this part (found when validating) rather than a surprise at send time.
        for other in sorted(shared):
            env.get_template(other)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateFormatError(f"{exc.name or name}:{exc.lineno}: {exc.message}") from None
    names = frozenset({name}) | shared

    def render(context: dict[str, Any]) -> str:
        try:
            return template.render(context)
        except jinja2.UndefinedError as exc:
            file, line = _template_line(exc, names)
            where = _where(file or name, line)
            raise TemplateRenderError(f"{where}: {exc.message}", code="missing_variable") from None
        except SecurityError as exc:
            file, line = _template_line(exc, names)
            where = _where(file or name, line)
            raise TemplateRenderError(f"{where}: blocked by the sandbox ({exc})", code="sandbox_violation") from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateRenderError(f"{exc.name or name}:{exc.lineno}: {exc.message}") from None
        except Exception as exc:  # a filter or test failing on the data (e.g. int("abc")) is the data's fault
            file, line = _template_line(exc, names)
            where = _where(file or name, line)
            raise TemplateRenderError(f"{where}: {type(exc).__name__}: {exc}") from None

    return CompiledPart(name, render)


def _handlebars_part(source: str, name: str, *, escape: bool) -> CompiledPart:
    from mailwright.handlebars import HandlebarsError, HandlebarsMissingError, compile_template

    try:
        template: HandlebarsTemplate = compile_template(source, name=name)
    except HandlebarsError as exc:
        raise TemplateFormatError(str(exc)) from None

    def render(context: dict[str, Any]) -> str:
        try:
            return template.render(context, escape=escape)
        except HandlebarsMissingError as exc:
            raise TemplateRenderError(str(exc), code="missing_variable") from None
        except HandlebarsError as exc:
            raise TemplateRenderError(str(exc)) from None

    return CompiledPart(name, render)


class Renderer:
    """Renders bundles in a sandbox with strict variables; compiled parts are cached per bundle version.

    Data is only ever passed as variables, never compiled, so a request cannot
    inject template code; HTML parts are autoescaped. The cache is keyed by
    the bundle's version (or a digest of its content), so an edited bundle
    held in memory renders afresh.
    """

    def __init__(self, *, cache_size: int = 256) -> None:
        self._cache: dict[tuple[str, str, str, str], CompiledPart] = {}
        self._environments: dict[tuple[str, str], SandboxedEnvironment] = {}
        self._code = _CompiledCode(cache_size)
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def compile_part(self, bundle: TemplateBundle, locale: str, part: str) -> CompiledPart:
        """One compiled part; raise TemplateFormatError on a syntax error (file and line named)."""
        version = bundle.cache_key()
        key = (bundle.template_id, version, locale, part)
        compiled = self._cache.get(key)
        if compiled is not None:
            return compiled
        name = bundle.part_name(locale, part)
        if bundle.metadata.engine == "handlebars":
            compiled = _handlebars_part(bundle.source(locale, part), name, escape=part == "html")
        else:
            compiled = _jinja_part(self._environment(bundle, version), name, frozenset(bundle.shared))
        with self._lock:
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = compiled
        return compiled

    def _environment(self, bundle: TemplateBundle, version: str) -> SandboxedEnvironment:
        key = (bundle.template_id, version)
        env = self._environments.get(key)
        if env is None:
            env = _jinja_environment(bundle, self._code)
            with self._lock:
                if len(self._environments) >= self._cache_size:
                    self._environments.pop(next(iter(self._environments)))
                self._environments[key] = env
        return env

    @staticmethod
    def context(locale: str, data: Mapping[str, Any], provided: Mapping[str, str]) -> dict[str, Any]:
        """What a template sees: the request's data, what mailwright provides, and the locale rendered."""
        return {**data, **provided, "locale": locale}

    def render_part(self, bundle: TemplateBundle, locale: str, part: str, context: dict[str, Any]) -> str:
        """One part rendered; TemplateRenderError with file and line (a syntax error too, at send time)."""
        try:
            compiled = self.compile_part(bundle, locale, part)
        except TemplateFormatError as exc:
            raise TemplateRenderError(str(exc)) from None
        return compiled.render(context)

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
        context = self.context(resolved, data, provided)
        rendered = {part: self.render_part(bundle, resolved, part, context) for part in PARTS}
        subject = check_subject(rendered["subject"], bundle.template_id)
        return RenderedEmail(subject=subject, html=rendered["html"], text=rendered["text"], locale=resolved)


def check_subject(rendered: str, template_id: str) -> str:
    """The subject trimmed; HeaderInjectionError on a line break inside it, TemplateRenderError when empty."""
    subject = rendered.strip()
    if "\r" in subject or "\n" in subject:
        raise HeaderInjectionError("subject")
    if not subject:
        raise TemplateRenderError(f"template {template_id!r} rendered an empty subject")
    return subject


# Parses sources for their references at bundle time; nothing it parses is rendered.
_PARSER = jinja2.Environment(autoescape=True)


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
