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

import json
import sys
from pathlib import Path

from mailwright.errors import TemplateFormatError
from mailwright.templates.loading import (
    assemble_bundle,
    bundle_directory,
    jinja_references,
    load_template_dir,
    load_template_tree,
    parse_jinja,
    read_shared,
    template_dirs,
)
from mailwright.templates.model import (
    ENGINES,
    LINK_VARIABLES,
    METADATA_FILE,
    PART_FILES,
    PARTS,
    PROVIDED_VARIABLES,
    SHARED_DIRS,
    Category,
    LocaleParts,
    TemplateBundle,
    TemplateMetadata,
)
from mailwright.templates.rendering import CompiledPart, RenderedEmail, Renderer, check_subject

__all__ = [
    "ENGINES",
    "LINK_VARIABLES",
    "METADATA_FILE",
    "PARTS",
    "PART_FILES",
    "PROVIDED_VARIABLES",
    "SHARED_DIRS",
    "Category",
    "CompiledPart",
    "LocaleParts",
    "RenderedEmail",
    "Renderer",
    "TemplateBundle",
    "TemplateMetadata",
    "assemble_bundle",
    "bundle_directory",
    "check_subject",
    "jinja_references",
    "load_template_dir",
    "load_template_tree",
    "main",
    "parse_jinja",
    "read_shared",
    "template_dirs",
]


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
