"""Bring an SES stored template into `templates/` as a Handlebars template.

SES stores a template as Subject, Html and Text with Handlebars placeholders
(sesv2 GetEmailTemplate). mailwright renders the same syntax, so the parts are
written unchanged, except that SES's list-management placeholder
`{{amazonSESUnsubscribeUrl}}` becomes mailwright's `{{unsubscribe_url}}`. A
missing Html or Text part is derived from the other one. `template.json` gets
the category (which decides consent and unsubscribe handling), the variables
the parts read, and sample data to render them with; `templates validate`
then says what is left to do (a marketing template needs the postal address,
sample data needs real-looking values...).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from mailwright.handlebars import HandlebarsError, compile_template
from mailwright.handlebars.nodes import Block, Node
from mailwright.templates import METADATA_FILE, PART_FILES, PROVIDED_VARIABLES, TemplateMetadata

TEMPLATE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SES_UNSUBSCRIBE = re.compile(r"\{\{\{?\s*amazonSESUnsubscribeUrl\s*\}?\}\}")
_HANDLEBARS_TAG = re.compile(r"(\{\{.*?\}\}\}?)", re.DOTALL)
_LINK_NAME = re.compile(r"(url|link|href)$", re.IGNORECASE)


class TemplateImportError(Exception):
    """The template cannot be imported as asked; `usage` when the request itself was wrong (an id, a clash)."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class SesTemplate:
    """An SES stored template's parts (Html or Text may be absent in SES)."""

    name: str
    subject: str
    html: str | None
    text: str | None


@dataclass
class ImportResult:
    """What was written, and what the import had to decide for the author."""

    template_id: str
    path: Path
    variables: list[str]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "template_id": self.template_id,
            "path": str(self.path),
            "variables": self.variables,
            "notes": self.notes,
        }


def sesv2_client(region: str | None = None) -> Any:
    """An SES v2 client from the usual AWS settings (profile, region, AWS_ENDPOINT_URL)."""
    import boto3

    return boto3.session.Session(region_name=region).client("sesv2")


def fetch_ses_template(client: Any, name: str) -> SesTemplate:
    """Read a stored template with sesv2 GetEmailTemplate; TemplateImportError when SES has none by that name."""
    from botocore.exceptions import ClientError

    try:
        response = client.get_email_template(TemplateName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NotFoundException", "TemplateDoesNotExist"):
            raise TemplateImportError(f"SES has no stored template named {name!r} in this account and region") from None
        raise
    content = response.get("TemplateContent") or {}
    subject = content.get("Subject") or ""
    if not subject.strip():
        raise TemplateImportError(f"SES template {name!r} has no subject")
    if not content.get("Html") and not content.get("Text"):
        raise TemplateImportError(f"SES template {name!r} has neither an Html nor a Text part")
    return SesTemplate(name=name, subject=subject, html=content.get("Html"), text=content.get("Text"))


def template_id_for(name: str) -> str:
    """A mailwright template id from an SES template name: `OrderShipped-v2` becomes `order_shipped-v2`."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return re.sub(r"[^a-z0-9_-]+", "_", snake).strip("_-")


def _html_from_text(text: str) -> str:
    """A plain HTML page for a text-only template: literal text escaped, placeholders kept."""
    pieces = [
        piece if _HANDLEBARS_TAG.fullmatch(piece) else html.escape(piece, quote=False)
        for piece in _HANDLEBARS_TAG.split(text)
    ]
    body = "".join(pieces)
    return (
        '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>\n'
        '<body><div style="font-family:Arial,Helvetica,sans-serif;white-space:pre-wrap;">'
        f"{body}</div></body>\n</html>\n"
    )


class _TextOf(HTMLParser):
    """The readable text of an HTML part, links written out after their text."""

    _BLOCKS = frozenset({"p", "div", "br", "tr", "h1", "h2", "h3", "h4", "li", "table", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._href: list[str | None] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "head", "title"):
            self._skip += 1
        if tag in self._BLOCKS:
            self.out.append("\n")
        if tag == "a":
            self._href.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head", "title"):
            self._skip = max(0, self._skip - 1)
        if tag == "a" and self._href:
            href = self._href.pop()
            if href:
                self.out.append(f" ({href})")
        if tag in self._BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(re.sub(r"\s+", " ", data))


def _text_from_html(source: str) -> str:
    parser = _TextOf()
    parser.feed(source)
    lines = [line.strip() for line in "".join(parser.out).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def _targets(nodes: list[Node], helper: str) -> set[str]:
    """Root names used as the argument of `#each` or `#with` at the top level."""
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, Block):
            call = node.expr
            if call.head.text == helper and call.params:
                param = call.params[0]
                parts = getattr(param, "parts", ())
                if parts and not getattr(param, "data", False):
                    found.add(parts[0])
            found |= _targets(node.inverse or [], helper)
            if call.head.text not in ("each", "with"):
                found |= _targets(node.body, helper)
    return found


def _sample_value(name: str, lists: set[str], objects: set[str]) -> Any:
    if name in lists:
        return []
    if name in objects:
        return {}
    if _LINK_NAME.search(name):
        return f"https://example.com/{name}"
    return f"sample {name}"


def import_ses_template(
    client: Any,
    name: str,
    *,
    templates_dir: Path,
    template_id: str | None = None,
    category: str = "transactional",
    locale: str = "en",
    force: bool = False,
) -> ImportResult:
    """Write `templates_dir/<template_id>/` from the SES template `name`; TemplateImportError saying why it cannot."""
    template_id = template_id or template_id_for(name)
    if not TEMPLATE_ID.match(template_id):
        raise TemplateImportError(
            f"{template_id!r} is not a template id (lowercase letters, digits, _ and -): pass --template-id", usage=True
        )
    target = templates_dir / template_id
    if target.exists() and not force:
        raise TemplateImportError(f"{target} already exists (pass --force to replace it)", usage=True)
    ses = fetch_ses_template(client, name)
    notes: list[str] = []
    parts = {"subject": ses.subject, "html": ses.html, "text": ses.text}
    for part, source in parts.items():
        if source and _SES_UNSUBSCRIBE.search(source):
            parts[part] = _SES_UNSUBSCRIBE.sub("{{unsubscribe_url}}", source)
            notes.append(f"{PART_FILES[part]}: SES's {{{{amazonSESUnsubscribeUrl}}}} became {{{{unsubscribe_url}}}}")
    if not parts["html"]:
        parts["html"] = _html_from_text(parts["text"] or "")
        notes.append("body.html: SES had no Html part; made from the Text part, review it")
    if not parts["text"]:
        parts["text"] = _text_from_html(parts["html"] or "")
        notes.append("body.txt: SES had no Text part; made from the Html part, review it")
    used: dict[str, int] = {}
    lists: set[str] = set()
    objects: set[str] = set()
    for part, source in parts.items():
        try:
            template = compile_template(source or "", name=f"{template_id}/{locale}/{PART_FILES[part]}")
        except HandlebarsError as exc:
            raise TemplateImportError(f"SES template {name!r} uses what mailwright does not render: {exc}") from None
        root, _ = template.variables()
        for variable, line in root.items():
            used.setdefault(variable, line)
        lists |= _targets(template.nodes, "each")
        objects |= _targets(template.nodes, "with")
    variables = sorted(set(used) - PROVIDED_VARIABLES)
    metadata = TemplateMetadata.model_validate(
        {
            "description": f"Imported from the SES stored template {name}.",
            "category": category,
            "engine": "handlebars",
            "default_locale": locale,
            "required_variables": variables,
            "sample_data": {variable: _sample_value(variable, lists, objects) for variable in variables},
        }
    )
    if variables:
        notes.append(
            f"{METADATA_FILE}: sample_data holds placeholders for {', '.join(variables)}; give them real-looking values"
        )
    (target / locale).mkdir(parents=True, exist_ok=True)
    document = metadata.model_dump(mode="json", exclude_defaults=False, exclude={"optional_variables", "from_name"})
    (target / METADATA_FILE).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for part, filename in PART_FILES.items():
        (target / locale / filename).write_text(parts[part] or "", encoding="utf-8")
    return ImportResult(template_id=template_id, path=target, variables=variables, notes=notes)
