"""Check requests before anything is published: the request schema, and the templates when they are at hand.

The send worker rejects a request for an unknown template or one missing a
required variable, but only after it was published, so a typo shows up
later in `mailwright status`. `mailwright send` runs the same checks first
against the project's `templates/` and publishes nothing when one fails:

    problems = check_requests(requests, templates_dir=Path("templates"))
    # [(0, "unknown template 'order_confirmaton' (did you mean order_confirmation?)")]

The templates read are those of this checkout: a deployed stack whose
bucket holds other versions is checked against these (`send
--no-template-check` skips the template part).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mailwright.request import EmailRequest, describe_validation_error
from mailwright.templates import METADATA_FILE, TemplateMetadata

Problem = tuple[int, str]


@dataclass(frozen=True)
class KnownTemplates:
    """What the templates directory says about each template id (None: its template.json is unreadable)."""

    root: Path
    metadata: dict[str, TemplateMetadata | None]

    @classmethod
    def read(cls, root: Path) -> KnownTemplates | None:
        """The templates under `root`, or None when there is no readable templates directory."""
        try:
            directories = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
        except OSError:
            return None
        metadata: dict[str, TemplateMetadata | None] = {}
        for directory in directories:
            try:
                metadata[directory.name] = TemplateMetadata.model_validate_json(
                    (directory / METADATA_FILE).read_bytes()
                )
            except (OSError, ValidationError):
                metadata[directory.name] = None  # `templates validate` reports it; here it is only not checked
        return cls(root=root, metadata=metadata)

    def problem(self, request: EmailRequest) -> str | None:
        """Why the worker would reject this request for its template, or None."""
        template_id = request.template_id
        if template_id not in self.metadata:
            close = difflib.get_close_matches(template_id, list(self.metadata), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(self.metadata) or 'none'}"
            return f"unknown template {template_id!r}{hint}"
        metadata = self.metadata[template_id]
        if metadata is None:
            return None
        if request.digest_key is not None:
            # The worker's rule for a digest item (mailwright.digests): the template's item variables.
            if metadata.digest is None:
                return f"template {template_id} is not a digest template (no `digest` in template.json)"
            missing = [name for name in metadata.digest.item_variables if name not in request.template_data]
            if missing:
                return f"a digest item of {template_id} needs template_data: {', '.join(missing)}"
            return None
        # The worker's own rule (Renderer.render): each required variable is a key of template_data.
        missing = [name for name in metadata.required_variables if name not in request.template_data]
        if missing:
            return f"template {template_id} needs template_data: {', '.join(missing)}"
        return None


def check_requests(requests: Sequence[Mapping[str, Any]], *, templates: KnownTemplates | None) -> list[Problem]:
    """Every problem of every request, as (index, reason): the schema first, then the template when known."""
    problems: list[Problem] = []
    for index, raw in enumerate(requests):
        try:
            request = EmailRequest.model_validate(dict(raw))
        except ValidationError as exc:
            problems.append((index, describe_validation_error(exc)))
            continue
        except (TypeError, ValueError) as exc:
            problems.append((index, f"not a request object ({exc})"))
            continue
        problem = templates.problem(request) if templates is not None else None
        if problem:
            problems.append((index, problem))
    return problems
