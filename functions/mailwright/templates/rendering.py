"""The sandboxed renderer: a Jinja2 environment per bundle over a loader of that bundle alone, or the
Handlebars engine (imported only when a bundle asks for it); strict variables, file and line in every error."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from mailwright.errors import HeaderInjectionError, TemplateFormatError, TemplateRenderError
from mailwright.templates.model import PARTS, TemplateBundle

if TYPE_CHECKING:
    from mailwright.handlebars import HandlebarsTemplate


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
