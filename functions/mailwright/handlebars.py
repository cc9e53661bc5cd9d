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

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

# SendGrid's comparisons work as blocks (`{{#equals a b}}`) and as values (`{{#if (equals a b)}}`).
_COMPARISONS = frozenset({"equals", "notEquals", "greaterThan", "lessThan", "and", "or"})
BLOCK_HELPERS = frozenset({"if", "unless", "each", "with"}) | _COMPARISONS
VALUE_HELPERS = frozenset({"length", "insert", "formatDate", "lookup"}) | _COMPARISONS
HELPERS = BLOCK_HELPERS | VALUE_HELPERS
# Helpers whose arguments are conditions: a missing value is false there, not an error.
_CONDITIONS = frozenset({"if", "unless", "equals", "notEquals", "greaterThan", "lessThan", "and", "or"})
_MAX_PARTIAL_DEPTH = 16
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;", "=": "&#x3D;"}
_ESCAPE_RE = re.compile("[&<>\"'`=]")


class HandlebarsError(Exception):
    """A template that does not parse, or fails to render; the message starts with `file:line:`."""

    def __init__(self, name: str, line: int | None, message: str) -> None:
        super().__init__(f"{name}:{line}: {message}" if line else f"{name}: {message}")
        self.name = name
        self.line = line
        self.message = message


class HandlebarsMissingError(HandlebarsError):
    """A variable the template needs is not in the data."""


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


# -- tokenizer ---------------------------------------------------------------------------


@dataclass
class _Tag:
    kind: str  # "{{", "{{{", "&", "#", "^", "/", "else", ">", "!", "inline"
    content: str
    line: int
    strip_before: bool
    strip_after: bool
    # The whitespace before a standalone partial tag, which indents every line of the partial.
    indent: str = ""


_STANDALONE = frozenset({"#", "^", "/", "else", "!", "inline", ">"})
_WS = " \t"


def _tokenize(source: str, name: str) -> list[str | _Tag]:
    tokens: list[str | _Tag] = []
    pos = 0
    text: list[str] = []
    while True:
        start = source.find("{{", pos)
        if start < 0:
            text.append(source[pos:])
            break
        if start > 0 and source[start - 1] == "\\":  # \{{ is a literal {{
            text.append(source[pos : start - 1] + "{{")
            pos = start + 2
            continue
        text.append(source[pos:start])
        line = source.count("\n", 0, start) + 1
        tag, pos = _read_tag(source, start, name, line)
        tokens.append("".join(text))
        text = []
        tokens.append(tag)
    tokens.append("".join(text))
    _apply_whitespace_control(tokens)
    return tokens


def _read_tag(source: str, start: int, name: str, line: int) -> tuple[_Tag, int]:
    if source.startswith("{{{{", start):
        raise HandlebarsError(name, line, "raw blocks {{{{ }}}} are not supported")
    triple = source.startswith("{{{", start)
    body_start = start + (3 if triple else 2)
    strip_before = source.startswith("~", body_start)
    if strip_before:
        body_start += 1
    if not triple and source.startswith("!--", body_start):
        end = source.find("--}}", body_start)
        close_len = 4
        if end < 0:
            raise HandlebarsError(name, line, "comment {{!-- is never closed with --}}")
        strip_after = source[end - 1] == "~" if end > body_start + 3 else False
        return _Tag("!", "", line, strip_before, strip_after), end + close_len
    closer = "}}}" if triple else "}}"
    end = _find_close(source, body_start, closer)
    if end < 0:
        raise HandlebarsError(name, line, f"tag is never closed with {closer}")
    content = source[body_start:end]
    strip_after = content.endswith("~")
    if strip_after:
        content = content[:-1]
    content = content.strip()
    kind = "{{{" if triple else "{{"
    if not triple and content[:1] in ("&", "#", "^", "/", ">", "!"):
        kind = content[0]
        content = content[1:].strip()
        if kind == "#" and content.startswith("*"):
            kind, content = "inline", content[1:].strip()
        elif kind == "#" and content.startswith(">"):
            raise HandlebarsError(name, line, "partial blocks {{#> }} are not supported")
        elif kind == "^" and not content:
            kind = "else"
    elif not triple and (content == "else" or content.startswith("else ")):
        kind, content = "else", content[4:].strip()
    return _Tag(kind, content, line, strip_before, strip_after), end + len(closer)


def _find_close(source: str, pos: int, closer: str) -> int:
    """The index of `closer`, skipping quoted strings inside the tag."""
    quote = ""
    while pos < len(source):
        char = source[pos]
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif source.startswith(closer, pos):
            return pos
        pos += 1
    return -1


def _apply_whitespace_control(tokens: list[str | _Tag]) -> None:
    """`~` strips whitespace beside a tag; a block tag alone on its line takes its line with it.

    Tokens alternate text, tag, text, ..., text. Standalone lines are found on
    the texts as written, then cut, so two block tags on consecutive lines both count.
    """
    for index in range(1, len(tokens), 2):
        tag = tokens[index]
        assert isinstance(tag, _Tag)
        if tag.strip_before:
            tokens[index - 1] = str(tokens[index - 1]).rstrip()
        if tag.strip_after:
            tokens[index + 1] = str(tokens[index + 1]).lstrip()
    standalone: set[int] = set()
    last = len(tokens) - 1
    for index in range(1, len(tokens), 2):
        tag = tokens[index]
        assert isinstance(tag, _Tag)
        if tag.kind not in _STANDALONE or tag.strip_before or tag.strip_after:
            continue
        before, after = str(tokens[index - 1]), str(tokens[index + 1])
        line_start = before.rfind("\n")
        head = before[line_start + 1 :]
        newline = after.find("\n")
        tail = after[:newline] if newline >= 0 else after
        at_start = line_start >= 0 or index == 1
        at_end = newline >= 0 or index + 1 == last
        if at_start and at_end and not head.strip(_WS) and not tail.strip(_WS + "\r"):
            standalone.add(index)
            if tag.kind == ">":
                tag.indent = head
    for index in range(0, len(tokens), 2):
        text = str(tokens[index])
        begin, end = 0, len(text)
        if index - 1 in standalone:
            newline = text.find("\n")
            begin = newline + 1 if newline >= 0 else len(text)
        if index + 1 in standalone:
            newline = text.rfind("\n")
            end = newline + 1 if newline >= 0 else 0
        tokens[index] = text[begin:end] if end > begin else ""


# -- expression parser ---------------------------------------------------------------------

_EXPR_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<open>\() | (?P<close>\))
      | (?P<hashkey>[A-Za-z_][\w-]*)=
      | (?P<word>(?:[^\s()="'\[]+|\[[^\]]*\])+)
    )""",
    re.VERBOSE,
)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?$")
_SEGMENT = re.compile(r"\[([^\]]*)\]|([^./\[\]]+)")


def _parse_path(text: str, name: str, line: int) -> Path:
    original = text
    depth = 0
    while text.startswith("../"):
        depth += 1
        text = text[3:]
    data = text.startswith("@")
    if data:
        text = text[1:]
    explicit = False
    if text in ("this", "."):
        return Path((), depth, data, False, True, original)
    if text.startswith(("this.", "this/", "./")):
        explicit = True
        text = text[5:] if text.startswith("this") else text[2:]
    parts = tuple(m.group(1) if m.group(1) is not None else m.group(2) for m in _SEGMENT.finditer(text))
    if not parts:
        raise HandlebarsError(name, line, f"cannot read the path {original!r}")
    root = data and parts[0] == "root"
    if root:
        return Path(parts[1:], 0, False, True, True, original)
    return Path(parts, depth, data, False, explicit, original)


class _ExprParser:
    def __init__(self, text: str, name: str, line: int) -> None:
        self.items: list[tuple[str, str]] = []
        self.name, self.line = name, line
        pos = 0
        text = text.strip()
        while pos < len(text):
            match = _EXPR_TOKEN.match(text, pos)
            if not match or match.end() == pos:
                raise HandlebarsError(name, line, f"cannot read {text[pos:]!r}")
            kind = match.lastgroup or ""
            self.items.append((kind, match.group(kind)))
            pos = match.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.pos = 0

    def call(self, *, until_close: bool = False) -> Call:
        if self.pos >= len(self.items):
            raise HandlebarsError(self.name, self.line, "empty expression")
        head = self.value()
        params: list[Expr] = []
        hashes: list[tuple[str, Expr]] = []
        while self.pos < len(self.items):
            kind, text = self.items[self.pos]
            if kind == "close":
                if until_close:
                    break
                raise HandlebarsError(self.name, self.line, "unbalanced )")
            if kind == "hashkey":
                self.pos += 1
                hashes.append((text, self.value()))
            else:
                params.append(self.value())
        if isinstance(head, Call):
            if params or hashes:
                raise HandlebarsError(self.name, self.line, "a sub-expression cannot be called")
            return head
        if not isinstance(head, Path):
            if params or hashes:
                raise HandlebarsError(self.name, self.line, f"{head.value!r} is not a helper")
            return Call(Path(("",), text=""), (head,))  # a bare literal: `{{"text"}}`
        return Call(head, tuple(params), tuple(hashes))

    def value(self) -> Expr:
        if self.pos >= len(self.items):
            raise HandlebarsError(self.name, self.line, "expression ends too early")
        kind, text = self.items[self.pos]
        self.pos += 1
        if kind == "open":
            call = self.call(until_close=True)
            if self.pos >= len(self.items) or self.items[self.pos][0] != "close":
                raise HandlebarsError(self.name, self.line, "sub-expression ( is never closed")
            self.pos += 1
            return call
        if kind == "string":
            return Literal(re.sub(r"\\(.)", r"\1", text[1:-1]))
        if kind == "word":
            if _NUMBER.match(text):
                return Literal(float(text) if "." in text else int(text))
            if text in ("true", "false"):
                return Literal(text == "true")
            if text in ("null", "undefined"):
                return Literal(None)
            return _parse_path(text, self.name, self.line)
        raise HandlebarsError(self.name, self.line, f"unexpected {text!r}")


def _parse_call(text: str, name: str, line: int) -> Call:
    parser = _ExprParser(text, name, line)
    call = parser.call()
    if not call.head.text and call.params and isinstance(call.params[0], Literal):
        return call
    helper = call.head.text
    if (call.params or call.hash) and helper not in HELPERS:
        known = ", ".join(sorted(HELPERS))
        raise HandlebarsError(name, line, f"unknown helper {helper!r} (supported: {known})")
    return call


def _check_output(call: Call, name: str, line: int) -> Call:
    helper = call.head.text
    if call.params and helper in BLOCK_HELPERS - VALUE_HELPERS:
        raise HandlebarsError(name, line, f"{helper} is a block helper: write {{{{#{helper} ...}}}}...{{{{/{helper}}}}}")
    return call


def _check_block(call: Call, name: str, line: int) -> Call:
    helper = call.head.text
    if call.params and helper not in BLOCK_HELPERS:
        raise HandlebarsError(name, line, f"{helper} is not a block helper: write {{{{{helper} ...}}}}")
    if helper in ("if", "unless", "with", "each") and len(call.params) != 1:
        raise HandlebarsError(name, line, f"#{helper} takes one argument")
    return call


# -- parser -----------------------------------------------------------------------------------


@dataclass
class _Open:
    block: Block
    name: str
    # Where an `{{else}}` currently sends nodes; else-if chains nest a block inside the inverse.
    target: list[Node]
    closes: list[Block] = field(default_factory=list)


class HandlebarsTemplate:
    """A parsed template: `render(context, escape=...)`; `variables()` for checks."""

    def __init__(self, name: str, nodes: list[Node], partials: dict[str, list[Node]]) -> None:
        self.name = name
        self.nodes = nodes
        self.partials = partials

    def render(self, context: Mapping[str, Any], *, escape: bool) -> str:
        """The rendered text; HandlebarsMissingError for a missing variable, HandlebarsError otherwise."""
        out: list[str] = []
        _Renderer(self, escape).nodes(self.nodes, [_Frame(context, {})], out, 0)
        return "".join(out)

    def variables(self) -> tuple[dict[str, int], set[str]]:
        """Names read from the root context (first line of each), and names read inside nested contexts."""
        root: dict[str, int] = {}
        nested: set[str] = set()
        _collect(self.nodes, 0, root, nested, self.partials, set())
        return root, nested


def compile_template(source: str, *, name: str) -> HandlebarsTemplate:
    """Parse a Handlebars source; HandlebarsError naming `name` and the line on any syntax error."""
    tokens = _tokenize(source, name)
    top: list[Node] = []
    stack: list[_Open] = []
    partials: dict[str, list[Node]] = {}
    used_partials: list[tuple[str, int]] = []

    def current() -> list[Node]:
        return stack[-1].target if stack else top

    for token in tokens:
        if isinstance(token, str):
            if token:
                current().append(Text(token))
            continue
        line = token.line
        if token.kind == "!":
            continue
        if token.kind in ("{{", "{{{", "&"):
            call = _check_output(_parse_call(token.content, name, line), name, line)
            current().append(Output(call, token.kind != "{{", line))
        elif token.kind in ("#", "^"):
            if " as |" in token.content:
                raise HandlebarsError(name, line, "block parameters (as |x|) are not supported")
            call = _check_block(_parse_call(token.content, name, line), name, line)
            helper = call.head.text
            if token.kind == "^" and call.params:
                raise HandlebarsError(name, line, "an inverted section {{^x}} takes a name only")
            block = Block(call, line, inverted=token.kind == "^")
            current().append(block)
            stack.append(_Open(block, helper, block.body))
        elif token.kind == "else":
            if not stack:
                raise HandlebarsError(name, line, "{{else}} outside a block")
            opened = stack[-1]
            holder = opened.closes[-1] if opened.closes else opened.block
            if holder.inverse is not None or opened.name == "inline":
                raise HandlebarsError(name, line, f"an {{{{else}}}} too many in #{opened.name}")
            holder.inverse = []
            if token.content:  # {{else if x}}: a block nested in the inverse, closed by the same {{/if}}
                call = _check_block(_parse_call(token.content, name, line), name, line)
                chained = Block(call, line)
                holder.inverse.append(chained)
                opened.closes.append(chained)
                opened.target = chained.body
            else:
                opened.target = holder.inverse
        elif token.kind == "/":
            if not stack:
                raise HandlebarsError(name, line, f"{{{{/{token.content}}}}} closes nothing")
            opened = stack.pop()
            if token.content != opened.name:
                raise HandlebarsError(
                    name, line, f"{{{{/{token.content}}}}} closes #{opened.name} opened at line {opened.block.line}"
                )
        elif token.kind == "inline":
            match = re.fullmatch(r"inline\s+(\"[^\"]+\"|'[^']+')", token.content)
            if not match:
                raise HandlebarsError(name, line, 'an inline partial is written {{#*inline "name"}}')
            partial_name = match.group(1)[1:-1]
            body: list[Node] = []
            partials[partial_name] = body
            placeholder = Block(Call(Path(("inline",), text="inline")), line)
            placeholder.body = body
            stack.append(_Open(placeholder, "inline", body))
        elif token.kind == ">":
            words = token.content.split(None, 1)
            if not words:
                raise HandlebarsError(name, line, "{{>}} names no partial")
            context = _ExprParser(words[1], name, line).value() if len(words) > 1 else None
            partial_name = words[0].strip("\"'")
            used_partials.append((partial_name, line))
            current().append(PartialCall(partial_name, context, line, token.indent))
    if stack:
        opened = stack[-1]
        raise HandlebarsError(name, opened.block.line, f"#{opened.name} is never closed with {{{{/{opened.name}}}}}")
    for partial_name, line in used_partials:
        if partial_name not in partials:
            raise HandlebarsError(
                name, line, f"no partial {partial_name!r}: only inline partials ({{{{#*inline}}}}) are supported"
            )
    return HandlebarsTemplate(name, top, partials)


# -- variables, for the checks ------------------------------------------------------------------


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


def _collect(
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
            _collect(node.body, depth + 1 if changes else depth, root, nested, partials, seen)
            _collect(node.inverse or [], depth, root, nested, partials, seen)
        elif isinstance(node, PartialCall) and node.name not in seen:
            _collect(partials.get(node.name, []), depth, root, nested, partials, seen | {node.name})


# -- renderer -----------------------------------------------------------------------------------


@dataclass
class _Frame:
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


class _Renderer:
    def __init__(self, template: HandlebarsTemplate, escape: bool) -> None:
        self.template = template
        self.escape = escape
        self.name = template.name

    def missing(self, what: str, line: int) -> HandlebarsMissingError:
        return HandlebarsMissingError(self.name, line, f"{what!r} is undefined")

    def lookup(self, path: Path, frames: list[_Frame], line: int, *, lenient: bool) -> Any:
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

    def evaluate(self, expr: Expr, frames: list[_Frame], line: int, *, lenient: bool = False) -> Any:
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
                raise HandlebarsError(self.name, line, "insert takes a value and optionally \"default=...\"")
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

    def nodes(self, nodes: list[Node], frames: list[_Frame], out: list[str], depth: int) -> None:
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

    def block(self, node: Block, frames: list[_Frame], out: list[str], depth: int) -> None:
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
                self.nodes(node.body, [*frames, _Frame(value, dict(frames[-1].data))], out, depth)
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
                self.nodes(node.body, [*frames, _Frame(value, dict(frames[-1].data))], out, depth)
            elif _truthy(value):
                self.nodes(node.body, frames, out, depth)
            else:
                self.nodes(inverse, frames, out, depth)

    def each(self, node: Block, value: Any, frames: list[_Frame], out: list[str], depth: int) -> None:
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
            self.nodes(node.body, [*frames, _Frame(item, data)], out, depth)

    def partial(self, node: PartialCall, frames: list[_Frame], out: list[str], depth: int) -> None:
        if depth >= _MAX_PARTIAL_DEPTH:
            raise HandlebarsError(self.name, node.line, f"partials nest deeper than {_MAX_PARTIAL_DEPTH}")
        body = self.template.partials[node.name]
        if node.context is not None:
            frames = [*frames, _Frame(self.evaluate(node.context, frames, node.line), dict(frames[-1].data))]
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


# -- formatDate (SendGrid's tokens) ---------------------------------------------------------------

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DATE_TOKEN = re.compile(r"\[[^\]]*\]|YYYY|YY|MMMM|MMM|MM|M|DD|D|dddd|ddd|HH|H|hh|h|mm|m|ss|s|A|a|ZZ|Z")
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def _offset(text: str, name: str, line: int) -> timezone:
    match = _OFFSET.match(text.strip())
    if not match:
        raise HandlebarsError(name, line, f"formatDate: timezone offset {text!r} is not like -0800")
    minutes = int(match.group(2)) * 60 + int(match.group(3))
    return timezone(timedelta(minutes=-minutes if match.group(1) == "-" else minutes))


def format_date(value: Any, pattern: str, offset: str | None, name: str = "", line: int | None = None) -> str:
    """SendGrid's `formatDate`: an ISO 8601 timestamp in a moment.js-style pattern, UTC unless an offset is given."""
    if not isinstance(value, str):
        raise HandlebarsError(name, line, f"formatDate: {value!r} is not an ISO 8601 timestamp")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HandlebarsError(name, line, f"formatDate: {value!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(_offset(offset, name, line) if offset else UTC)

    def token(match: re.Match[str]) -> str:
        text = match.group(0)
        hour12 = moment.hour % 12 or 12
        utc = moment.utcoffset() or timedelta()
        sign = "-" if utc < timedelta() else "+"
        minutes = abs(int(utc.total_seconds())) // 60
        values = {
            "YYYY": f"{moment.year:04d}",
            "YY": f"{moment.year % 100:02d}",
            "MMMM": _MONTHS[moment.month - 1],
            "MMM": _MONTHS[moment.month - 1][:3],
            "MM": f"{moment.month:02d}",
            "M": str(moment.month),
            "DD": f"{moment.day:02d}",
            "D": str(moment.day),
            "dddd": _DAYS[moment.weekday()],
            "ddd": _DAYS[moment.weekday()][:3],
            "HH": f"{moment.hour:02d}",
            "H": str(moment.hour),
            "hh": f"{hour12:02d}",
            "h": str(hour12),
            "mm": f"{moment.minute:02d}",
            "m": str(moment.minute),
            "ss": f"{moment.second:02d}",
            "s": str(moment.second),
            "A": "AM" if moment.hour < 12 else "PM",
            "a": "am" if moment.hour < 12 else "pm",
            "ZZ": f"{sign}{minutes // 60:02d}{minutes % 60:02d}",
            "Z": f"{sign}{minutes // 60:02d}:{minutes % 60:02d}",
        }
        return text[1:-1] if text.startswith("[") else values[text]

    return _DATE_TOKEN.sub(token, pattern)
