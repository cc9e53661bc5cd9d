"""The recursive renderer: data is looked up in dicts and lists only, helpers are the ones named in nodes.py."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailwright.handlebars.dates import format_date
from mailwright.handlebars.errors import HandlebarsError, HandlebarsMissingError
from mailwright.handlebars.nodes import (
    HELPERS,
    Block,
    Expr,
    Literal,
    Node,
    Output,
    PartialCall,
    Path,
    Text,
)

# Helpers whose arguments are conditions: a missing value is false there, not an error.
_CONDITIONS = frozenset({"if", "unless", "equals", "notEquals", "greaterThan", "lessThan", "and", "or"})
_MAX_PARTIAL_DEPTH = 16
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;", "=": "&#x3D;"}
_ESCAPE_RE = re.compile("[&<>\"'`=]")


@dataclass
class Frame:
    value: Any
    data: dict[str, Any]


_MISSING = object()


def _to_text(value: Any) -> str:
    """Like JavaScript's String(value), which is what Handlebars prints."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return ",".join(_to_text(item) for item in value)
    if isinstance(value, Mapping):
        return "[object Object]"
    return str(value)


def _truthy(value: Any) -> bool:
    """Handlebars' falsy values: missing, null, false, 0, "", and an empty list (an empty object is true)."""
    if value is _MISSING or value is None or value is False or value == "":
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return False
    return not (isinstance(value, (list, tuple)) and not value)


def _escape(text: str) -> str:
    return _ESCAPE_RE.sub(lambda match: _ESCAPES[match.group(0)], text)


def _step(value: Any, part: str) -> Any:
    """One segment of a path: a key of an object or an index of a list, nothing else."""
    if isinstance(value, Mapping):
        return value.get(part, _MISSING)
    if isinstance(value, (list, tuple)):
        if part == "length":
            return len(value)
        if part.isdigit() and int(part) < len(value):
            return value[int(part)]
    return _MISSING


class Renderer:
    """Renders nodes into a list of strings, escaping output when asked (the HTML part)."""

    def __init__(self, name: str, partials: dict[str, list[Node]], *, escape: bool) -> None:
        self.name = name
        self.partials = partials
        self.escape = escape

    def missing(self, what: str, line: int) -> HandlebarsMissingError:
        return HandlebarsMissingError(self.name, line, f"{what!r} is undefined")

    def lookup(self, path: Path, frames: list[Frame], line: int, *, lenient: bool) -> Any:
        if path.data:
            value = frames[-1 - min(path.depth, len(frames) - 1)].data.get(path.parts[0], _MISSING)
            for part in path.parts[1:]:
                value = _step(value, part)
        elif path.root:
            value = frames[0].value
            for part in path.parts:
                value = _step(value, part)
        else:
            if path.depth >= len(frames):
                raise HandlebarsError(self.name, line, f"{path.text!r} reaches above the root")
            start = len(frames) - 1 - path.depth
            if not path.parts:
                return frames[start].value
            candidates = [frames[start]] if path.explicit else list(reversed(frames[: start + 1]))
            value = _MISSING
            for frame in candidates:
                value = _step(frame.value, path.parts[0])
                if value is not _MISSING:
                    break
            for part in path.parts[1:]:
                if value is _MISSING:
                    break
                value = _step(value, part)
        if value is _MISSING and not lenient:
            raise self.missing(path.text, line)
        return value

    def evaluate(self, expr: Expr, frames: list[Frame], line: int, *, lenient: bool = False) -> Any:
        if isinstance(expr, Literal):
            return expr.value
        if isinstance(expr, Path):
            return self.lookup(expr, frames, line, lenient=lenient)
        helper = expr.head.text
        if not expr.head.text and expr.params:
            return self.evaluate(expr.params[0], frames, line)
        if not expr.params and not expr.hash:
            return self.lookup(expr.head, frames, line, lenient=lenient)
        lenient_args = helper in _CONDITIONS or helper == "insert"
        args = [self.evaluate(param, frames, line, lenient=lenient_args) for param in expr.params]
        return self.helper(helper, args, line)

    def helper(self, helper: str, args: list[Any], line: int) -> Any:
        args = [None if arg is _MISSING else arg for arg in args]

        def need(count: int) -> None:
            if len(args) != count:
                raise HandlebarsError(self.name, line, f"{helper} takes {count} argument(s), got {len(args)}")

        if helper in ("if", "unless"):
            need(1)
            return _truthy(args[0]) if helper == "if" else not _truthy(args[0])
        if helper in ("equals", "notEquals"):
            need(2)
            same = args[0] == args[1] or (args[0] is not None and _to_text(args[0]) == _to_text(args[1]))
            return same if helper == "equals" else not same
        if helper in ("greaterThan", "lessThan"):
            need(2)
            left, right = _number(args[0]), _number(args[1])
            if left is None or right is None:
                return False
            return left > right if helper == "greaterThan" else left < right
        if helper == "and":
            return bool(args) and all(_truthy(arg) for arg in args)
        if helper == "or":
            return any(_truthy(arg) for arg in args)
        if helper == "length":
            need(1)
            return len(args[0]) if isinstance(args[0], (list, tuple, str, Mapping)) else 0
        if helper == "insert":
            if not args:
                raise HandlebarsError(self.name, line, 'insert takes a value and optionally "default=..."')
            default = next((str(a)[8:] for a in args[1:] if isinstance(a, str) and a.startswith("default=")), "")
            return args[0] if _truthy(args[0]) else default
        if helper == "lookup":
            need(2)
            return _step(args[0], _to_text(args[1])) if args[0] is not None else None
        if helper == "formatDate":
            if len(args) not in (2, 3):
                raise HandlebarsError(self.name, line, "formatDate takes a date, a format and optionally an offset")
            return format_date(args[0], str(args[1]), None if len(args) < 3 else str(args[2]), self.name, line)
        raise HandlebarsError(self.name, line, f"{helper!r} cannot be used here")  # pragma: no cover

    def nodes(self, nodes: list[Node], frames: list[Frame], out: list[str], depth: int) -> None:
        for node in nodes:
            if isinstance(node, Text):
                out.append(node.value)
            elif isinstance(node, Output):
                text = _to_text(self.evaluate(node.expr, frames, node.line))
                out.append(_escape(text) if self.escape and not node.raw else text)
            elif isinstance(node, Block):
                self.block(node, frames, out, depth)
            else:
                self.partial(node, frames, out, depth)

    def block(self, node: Block, frames: list[Frame], out: list[str], depth: int) -> None:
        call, helper = node.expr, node.expr.head.text
        inverse = node.inverse or []
        if node.inverted:
            value = self.lookup(call.head, frames, node.line, lenient=True)
            self.nodes(node.body if not _truthy(value) else [], frames, out, depth)
            return
        if helper == "each":
            self.each(node, self.evaluate(call.params[0], frames, node.line), frames, out, depth)
        elif helper == "with":
            value = self.evaluate(call.params[0], frames, node.line)
            if _truthy(value):
                self.nodes(node.body, [*frames, Frame(value, dict(frames[-1].data))], out, depth)
            else:
                self.nodes(inverse, frames, out, depth)
        elif helper in HELPERS:
            chosen = self.evaluate(call, frames, node.line)
            self.nodes(node.body if _truthy(chosen) else inverse, frames, out, depth)
        else:  # a Mustache section: a list iterates, an object becomes the context, true renders once
            value = self.lookup(call.head, frames, node.line, lenient=True)
            if isinstance(value, (list, tuple)) and value:
                self.each(node, value, frames, out, depth)
            elif isinstance(value, Mapping):
                self.nodes(node.body, [*frames, Frame(value, dict(frames[-1].data))], out, depth)
            elif _truthy(value):
                self.nodes(node.body, frames, out, depth)
            else:
                self.nodes(inverse, frames, out, depth)

    def each(self, node: Block, value: Any, frames: list[Frame], out: list[str], depth: int) -> None:
        if isinstance(value, Mapping):
            items: list[tuple[Any, Any]] = list(value.items())
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif not _truthy(value):
            items = []
        else:
            raise HandlebarsError(self.name, node.line, f"#each needs a list or an object, not {type(value).__name__}")
        if not items:
            self.nodes(node.inverse or [], frames, out, depth)
            return
        for position, (key, item) in enumerate(items):
            data = {
                **frames[-1].data,
                "index": position,
                "key": key,
                "first": position == 0,
                "last": position == len(items) - 1,
            }
            self.nodes(node.body, [*frames, Frame(item, data)], out, depth)

    def partial(self, node: PartialCall, frames: list[Frame], out: list[str], depth: int) -> None:
        if depth >= _MAX_PARTIAL_DEPTH:
            raise HandlebarsError(self.name, node.line, f"partials nest deeper than {_MAX_PARTIAL_DEPTH}")
        body = self.partials[node.name]
        if node.context is not None:
            frames = [*frames, Frame(self.evaluate(node.context, frames, node.line), dict(frames[-1].data))]
        if not node.indent:
            self.nodes(body, frames, out, depth + 1)
            return
        rendered: list[str] = []
        self.nodes(body, frames, rendered, depth + 1)
        lines = "".join(rendered).splitlines(keepends=True)
        out.append("".join(node.indent + line for line in lines))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None
