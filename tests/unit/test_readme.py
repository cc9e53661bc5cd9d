"""The README's table of contents lists every section, in order, with links that resolve."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def _headings(text: str) -> list[tuple[int, str]]:
    found, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith(("## ", "### ")) and line != "## Contents":
            level, title = line.split(" ", 1)
            found.append((len(level), title.strip()))
    return found


def test_contents_list_every_section_in_order() -> None:
    text = README.read_text(encoding="utf-8")
    contents = text.split("## Contents\n", 1)[1].split("\n## ", 1)[0]
    listed = [
        (2 if not match["indent"] else 3, match["title"], match["anchor"])
        for match in re.finditer(r"^(?P<indent> *)- \[(?P<title>[^\]]+)\]\(#(?P<anchor>[^)]+)\)$", contents, re.M)
    ]
    assert [(level, title) for level, title, _ in listed] == _headings(text)
    assert all(anchor == _anchor(title) for _, title, anchor in listed)
