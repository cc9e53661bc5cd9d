"""What a template is: `template.json`'s metadata, the parts of each locale, and the bundle that carries them."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mailwright.constants import CATEGORIES, ESSENTIAL_CATEGORIES

PART_FILES: dict[str, str] = {"subject": "subject.txt", "html": "body.html", "text": "body.txt"}
PARTS: tuple[str, ...] = tuple(PART_FILES)
METADATA_FILE = "template.json"
# Directories of templates/ holding what templates share; bundles carry the files they use.
SHARED_DIRS: tuple[str, ...] = ("_layouts", "_partials")
# Variables the renderer provides; templates may use them without listing them.
PROVIDED_VARIABLES = frozenset({"recipient_email", "postal_address", "unsubscribe_url", "preferences_url", "locale"})
LINK_VARIABLES = frozenset({"unsubscribe_url", "preferences_url"})
ENGINES: tuple[str, ...] = ("jinja2", "handlebars")

Category = Literal["security", "transactional", "product", "marketing"]
assert set(CATEGORIES) == {"security", "transactional", "product", "marketing"}


class TemplateMetadata(BaseModel):
    """What `template.json` says about a template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    category: Category
    priority: Literal["critical", "standard", "bulk"] = "standard"
    engine: Literal["jinja2", "handlebars"] = "jinja2"
    from_name: str | None = Field(default=None, max_length=128)
    default_locale: str = "en"
    # A request without one of these is rejected (missing_variable).
    required_variables: tuple[str, ...] = ()
    # Variables the template uses only when present (`{% if coupon is defined %}`, `{{#if coupon}}`).
    optional_variables: tuple[str, ...] = ()
    sample_data: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _variables_are_declared_once(self) -> TemplateMetadata:
        both = sorted(set(self.required_variables) & set(self.optional_variables))
        if both:
            raise ValueError(f"{', '.join(both)} declared both required and optional")
        provided = sorted((set(self.required_variables) | set(self.optional_variables)) & PROVIDED_VARIABLES)
        if provided:
            raise ValueError(f"{', '.join(provided)} provided by mailwright, not declared by templates")
        return self

    @property
    def essential(self) -> bool:
        """Essential mail (security, transactional) ignores opt-outs and has no unsubscribe link."""
        return self.category in ESSENTIAL_CATEGORIES

    @property
    def declared_variables(self) -> frozenset[str]:
        """Required and optional variables."""
        return frozenset(self.required_variables) | frozenset(self.optional_variables)


class LocaleParts(BaseModel):
    """Sources of one locale (Jinja2 or Handlebars, as the metadata says)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str
    html: str
    text: str


class TemplateBundle(BaseModel):
    """One version of one template: metadata, the parts of every locale, and the shared files they use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template_id: str
    metadata: TemplateMetadata
    locales: dict[str, LocaleParts]
    # Layouts and partials by their path under templates/ (`_layouts/base.html`): only those the parts use.
    shared: dict[str, str] = Field(default_factory=dict)
    # Which stored version this is (S3 version id or ETag); not part of the bundle file.
    version: str | None = Field(default=None, exclude=True)

    def resolve_locale(self, requested: str | None) -> str:
        """Best locale for a request: `fr-CA` falls back to `fr`, then to the template's default."""
        if requested:
            parts = requested.split("-")
            for size in range(len(parts), 0, -1):
                candidate = "-".join(parts[:size])
                for locale in self.locales:
                    if locale.lower() == candidate.lower():
                        return locale
        return self.metadata.default_locale

    def source(self, locale: str, part: str) -> str:
        """The source of one part of one locale (the one place the renderer reads parts from)."""
        return str(getattr(self.locales[locale], part))

    def part_name(self, locale: str, part: str) -> str:
        """The name a part goes by in errors and in the loader: `<template_id>/<locale>/<file>`."""
        return f"{self.template_id}/{locale}/{PART_FILES[part]}"

    def cache_key(self) -> str:
        """The stored version, or a digest of the content for a bundle not (yet) stored, e.g. one being edited."""
        if self.version is not None:
            return self.version
        return "sha256:" + hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    def to_json(self) -> str:
        """The bundle file's content."""
        return self.model_dump_json(indent=None)
