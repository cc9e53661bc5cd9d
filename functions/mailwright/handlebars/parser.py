"""Handlebars source to nodes: a tokenizer (whitespace control, standalone lines) and a recursive parser.

Nothing here evaluates anything: expressions become `Path`, `Literal` and
`Call` values, and an unknown helper is a syntax error naming file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailwright.handlebars.errors import HandlebarsError
from mailwright.handlebars.nodes import (
    BLOCK_HELPERS,
    HELPERS,
    VALUE_HELPERS,
    Block,
    Call,
    Expr,
    Literal,
    Node,
    Output,
    PartialCall,
    Path,
    Text,
)

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
        raise HandlebarsError(
            name, line, f"{helper} is a block helper: write {{{{#{helper} ...}}}}...{{{{/{helper}}}}}"
        )
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


def parse(source: str, *, name: str) -> tuple[list[Node], dict[str, list[Node]]]:
    """The nodes of a Handlebars source and its inline partials; HandlebarsError naming `name` and the line."""
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
    return top, partials
