"""What a parsed Handlebars template is made of: expressions, nodes, and the helpers the engine knows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# SendGrid's comparisons work as blocks (`{{#equals a b}}`) and as values (`{{#if (equals a b)}}`).
_COMPARISONS = frozenset({"equals", "notEquals", "greaterThan", "lessThan", "and", "or"})
BLOCK_HELPERS = frozenset({"if", "unless", "each", "with"}) | _COMPARISONS
VALUE_HELPERS = frozenset({"length", "insert", "formatDate", "lookup"}) | _COMPARISONS
HELPERS = BLOCK_HELPERS | VALUE_HELPERS
# Helpers whose arguments are conditions: a missing value is false there, not an error.
_CONDITIONS = frozenset({"if", "unless", "equals", "notEquals", "greaterThan", "lessThan", "and", "or"})


# -- expressions -------------------------------------------------------------------------


@dataclass(frozen=True)
class Path:
    """A lookup: `depth` levels up (`../`), from the data variables (`@`), the root, or the current context."""

    parts: tuple[str, ...]
    depth: int = 0
    data: bool = False
    root: bool = False
    # `this`, `./x`: the current context only, never the enclosing ones.
    explicit: bool = False
    text: str = ""


@dataclass(frozen=True)
class Literal:
    """A string, number, boolean or null written in the template."""

    value: Any


@dataclass(frozen=True)
class Call:
    """A helper (or a plain path when `params` is empty and it names no helper)."""

    head: Path
    params: tuple[Expr, ...] = ()
    hash: tuple[tuple[str, Expr], ...] = ()


Expr = Path | Literal | Call


# -- nodes -------------------------------------------------------------------------------


@dataclass
class Text:
    """Literal text."""

    value: str


@dataclass
class Output:
    """`{{expr}}` or `{{{expr}}}`."""

    expr: Call
    raw: bool
    line: int


@dataclass
class Block:
    """`{{#helper ...}}body{{else}}inverse{{/helper}}`, or an inverted section `{{^x}}`."""

    expr: Call
    line: int
    body: list[Node] = field(default_factory=list)
    inverse: list[Node] | None = None
    inverted: bool = False


@dataclass
class PartialCall:
    """`{{> name [context]}}`."""

    name: str
    context: Expr | None
    line: int
    indent: str = ""


Node = Text | Output | Block | PartialCall
