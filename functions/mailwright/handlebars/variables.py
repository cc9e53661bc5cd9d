"""The variables a parsed template reads, for `templates validate`."""

from __future__ import annotations

from collections.abc import Iterator

from mailwright.handlebars.nodes import HELPERS, Block, Call, Expr, Node, Output, PartialCall, Path


def _paths(expr: Expr) -> Iterator[Path]:
    if isinstance(expr, Path):
        yield expr
    elif isinstance(expr, Call):
        if not expr.params and not expr.hash and expr.head.text not in HELPERS:
            yield expr.head
        for param in expr.params:
            yield from _paths(param)
        for _, value in expr.hash:
            yield from _paths(value)


def _note(path: Path, depth: int, line: int, root: dict[str, int], nested: set[str]) -> None:
    if path.data or not path.parts:
        return
    if path.root or (not path.explicit and path.depth >= depth):
        root.setdefault(path.parts[0], line)
    else:
        nested.add(path.parts[0])


def collect(
    nodes: list[Node],
    depth: int,
    root: dict[str, int],
    nested: set[str],
    partials: dict[str, list[Node]],
    seen: set[str],
) -> None:
    for node in nodes:
        if isinstance(node, Output):
            for path in _paths(node.expr):
                _note(path, depth, node.line, root, nested)
        elif isinstance(node, Block):
            for path in _paths(node.expr) if node.expr.params else [node.expr.head]:
                _note(path, depth, node.line, root, nested)
            helper = node.expr.head.text
            changes = helper in ("each", "with") or (helper not in HELPERS and not node.inverted)
            collect(node.body, depth + 1 if changes else depth, root, nested, partials, seen)
            collect(node.inverse or [], depth, root, nested, partials, seen)
        elif isinstance(node, PartialCall) and node.name not in seen:
            collect(partials.get(node.name, []), depth, root, nested, partials, seen | {node.name})
