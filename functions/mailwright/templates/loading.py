"""Template directories into self-contained bundles: the parts, and the layouts and partials they name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import jinja2
from jinja2 import nodes
from pydantic import ValidationError

from mailwright.errors import TemplateFormatError
from mailwright.templates.model import (
    METADATA_FILE,
    PART_FILES,
    SHARED_DIRS,
    LocaleParts,
    TemplateBundle,
    TemplateMetadata,
)

# Parses sources for their references at bundle time; nothing it parses is rendered.
_PARSER = jinja2.Environment(autoescape=True)


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
