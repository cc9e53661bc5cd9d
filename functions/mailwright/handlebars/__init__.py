"""A small, safe Handlebars (and Mustache) engine for email templates: tokenizer, parser, recursive renderer.

Why not a library: pybars3 compiles templates into Python source and runs it
(and rests on the unmaintained PyMeta), chevron is Mustache only. This module
never evaluates anything: a template is parsed into nodes, data is looked up
in dicts and lists only (never an attribute of a Python object), and the only
functions a template can call are the helpers named in HELPERS.

The subset: `{{path}}` (escaped in HTML), `{{{path}}}` and `{{&path}}` (raw),
paths `a.b`, `a/b`, `a.[0]`, `this`, `../a`, `@root.a`, `@index`, `@key`,
`@first`, `@last`; blocks `#if`/`else`/`else if`, `#unless`, `#each` (lists and
objects, with `{{else}}` when empty), `#with`, Mustache sections `{{#x}}` and
`{{^x}}`; inline partials `{{#*inline "n"}}` and `{{> n}}`; comments; `~`
whitespace control and standalone lines; and SendGrid's helpers `equals`,
`notEquals`, `greaterThan`, `lessThan`, `and`, `or`, `length`, `insert`,
`formatDate`, plus Handlebars' `lookup`. Anything else is a HandlebarsError
naming the file, the line and the helper.

Strict variables: a missing value rejects the request (HandlebarsMissingError),
except as a condition (`#if`, `#unless`, a section, `and`/`or`/comparisons),
where missing counts as false. A name that is not in the current context is
looked up in the enclosing ones, as Mustache and SES do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mailwright.handlebars.dates import format_date
from mailwright.handlebars.errors import HandlebarsError, HandlebarsMissingError
from mailwright.handlebars.nodes import BLOCK_HELPERS, HELPERS, VALUE_HELPERS, Node
from mailwright.handlebars.parser import parse
from mailwright.handlebars.render import Frame, Renderer
from mailwright.handlebars.variables import collect

__all__ = [
    "BLOCK_HELPERS",
    "HELPERS",
    "VALUE_HELPERS",
    "HandlebarsError",
    "HandlebarsMissingError",
    "HandlebarsTemplate",
    "compile_template",
    "format_date",
]


class HandlebarsTemplate:
    """A parsed template: `render(context, escape=...)`; `variables()` for checks."""

    def __init__(self, name: str, nodes: list[Node], partials: dict[str, list[Node]]) -> None:
        self.name = name
        self.nodes = nodes
        self.partials = partials

    def render(self, context: Mapping[str, Any], *, escape: bool) -> str:
        """The rendered text; HandlebarsMissingError for a missing variable, HandlebarsError otherwise."""
        out: list[str] = []
        Renderer(self.name, self.partials, escape=escape).nodes(self.nodes, [Frame(context, {})], out, 0)
        return "".join(out)

    def variables(self) -> tuple[dict[str, int], set[str]]:
        """Names read from the root context (first line of each), and names read inside nested contexts."""
        root: dict[str, int] = {}
        nested: set[str] = set()
        collect(self.nodes, 0, root, nested, self.partials, set())
        return root, nested


def compile_template(source: str, *, name: str) -> HandlebarsTemplate:
    """Parse a Handlebars source; HandlebarsError naming `name` and the line on any syntax error."""
    nodes, partials = parse(source, name=name)
    return HandlebarsTemplate(name, nodes, partials)
