"""What a template is: `template.json`'s metadata, the parts of each locale, and the bundle that carries them."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer, model_validator

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
# A variant's name: it goes into the SES `variant` tag (letters, digits, _ and -) and into file names.
VARIANT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
# A variant's own part sits beside the part it replaces, its name before the extension: `subject.short.txt`.
VARIANT_FILE = re.compile(r"^(?P<stem>subject|body)\.(?P<variant>[a-z0-9][a-z0-9_-]{0,31})\.(?P<ext>txt|html)$")
MAX_VARIANTS = 8

Category = Literal["security", "transactional", "product", "marketing"]
assert set(CATEGORIES) == {"security", "transactional", "product", "marketing"}


def variant_file(part: str, variant: str) -> str:
    """The file of a variant's own part: `subject.txt` of variant `short` is `subject.short.txt`."""
    stem, ext = PART_FILES[part].rsplit(".", 1)
    return f"{stem}.{variant}.{ext}"


def part_of_variant_file(filename: str) -> tuple[str, str] | None:
    """(part, variant) of a variant's file name (`body.short.html` -> html, short), else None."""
    match = VARIANT_FILE.match(filename)
    if match is None:
        return None
    base = f"{match['stem']}.{match['ext']}"
    part = next((name for name, file in PART_FILES.items() if file == base), None)
    return (part, match["variant"]) if part is not None else None


def _without_empty_variants(data: Any) -> Any:
    # Bundles of templates without variants stay byte for byte what they were before variants
    # existed, so workers of an earlier release read them and their digests do not change.
    if isinstance(data, dict) and not data.get("variants"):
        data.pop("variants", None)
    # Likewise templates that are not digests.
    if isinstance(data, dict) and data.get("digest") is None:
        data.pop("digest", None)
    return data


class VariantSpec(BaseModel):
    """One A/B variant of a template: its name, its share of recipients, and what it tries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=VARIANT_NAME_PATTERN)
    # Relative share of recipients (0: none are assigned it, e.g. while it is being retired).
    weight: int = Field(default=1, ge=0, le=10000)
    description: str = Field(default="", max_length=200)


# A digest's bounds: one window's items stay well under DynamoDB's 400 KB (see mailwright.digests).
MAX_DIGEST_ITEMS = 50
MAX_DIGEST_WINDOW_SECONDS = 86400


class DigestSpec(BaseModel):
    """A digest template's window: requests with one user and digest_key within it become one email."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_seconds: int = Field(ge=1, le=MAX_DIGEST_WINDOW_SECONDS)
    max_items: int = Field(ge=1, le=MAX_DIGEST_ITEMS)
    # Variables every folded request's template_data must hold (each becomes one of `items`).
    item_variables: tuple[str, ...] = ()


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
    # A/B variants: each recipient gets one, by a keyed hash of who they are (mailwright.variants).
    variants: tuple[VariantSpec, ...] = ()
    # A digest template (issue 17): requests naming a digest_key are folded into one email with `items`.
    digest: DigestSpec | None = None

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_empty_variants(handler(self))

    @model_validator(mode="after")
    def _variants_are_valid(self) -> TemplateMetadata:
        if not self.variants:
            return self
        names = [variant.name for variant in self.variants]
        if len(names) < 2:
            raise ValueError("variants: declare at least two (the first is the one the others are compared with)")
        if len(names) > MAX_VARIANTS:
            raise ValueError(f"variants: at most {MAX_VARIANTS}")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"variants: {', '.join(repeated)} declared more than once")
        if not any(variant.weight for variant in self.variants):
            raise ValueError("variants: at least one needs a weight above 0")
        return self

    @property
    def variant_names(self) -> tuple[str, ...]:
        """The declared variants' names, in order (the first is the control)."""
        return tuple(variant.name for variant in self.variants)

    @model_validator(mode="after")
    def _variables_are_declared_once(self) -> TemplateMetadata:
        both = sorted(set(self.required_variables) & set(self.optional_variables))
        if both:
            raise ValueError(f"{', '.join(both)} declared both required and optional")
        provided = sorted((set(self.required_variables) | set(self.optional_variables)) & PROVIDED_VARIABLES)
        if provided:
            raise ValueError(f"{', '.join(provided)} provided by mailwright, not declared by templates")
        return self

    @model_validator(mode="after")
    def _digest_lists_items(self) -> TemplateMetadata:
        if self.digest is not None and "items" not in self.required_variables:
            raise ValueError("digest: a digest template lists `items` among its required_variables")
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
    # A/B variants' own parts, by variant and part (`{"short": {"subject": "..."}}`); a part a variant
    # does not replace is the locale's own.
    variants: dict[str, dict[str, str]] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_empty_variants(handler(self))

    @model_validator(mode="after")
    def _variant_parts_are_parts(self) -> LocaleParts:
        for variant, own in self.variants.items():
            if not re.match(VARIANT_NAME_PATTERN, variant):
                raise ValueError(f"{variant!r} is not a variant name (letters, digits, _ and -, lower case)")
            unknown = sorted(set(own) - set(PART_FILES))
            if unknown:
                raise ValueError(f"variant {variant}: {', '.join(unknown)} are not parts (subject, html, text)")
        return self


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

    @model_validator(mode="after")
    def _variant_parts_are_declared(self) -> TemplateBundle:
        declared = set(self.metadata.variant_names)
        for locale, parts in self.locales.items():
            unknown = sorted(set(parts.variants) - declared)
            if unknown:
                raise ValueError(f"{locale}: parts of variants {', '.join(unknown)}, not declared in template.json")
        return self

    def overrides(self, locale: str, part: str, variant: str | None) -> bool:
        """Whether `variant` has its own `part` in `locale` (else it uses the locale's own)."""
        return variant is not None and part in self.locales[locale].variants.get(variant, {})

    def source(self, locale: str, part: str, variant: str | None = None) -> str:
        """The source of one part of one locale, a variant's own where it has one.

        The one place the renderer reads parts from.
        """
        if self.overrides(locale, part, variant):
            assert variant is not None
            return self.locales[locale].variants[variant][part]
        return str(getattr(self.locales[locale], part))

    def part_name(self, locale: str, part: str, variant: str | None = None) -> str:
        """The name a part goes by in errors and in the loader: `<template_id>/<locale>/<file>`.

        A variant's own part is named by its file (`subject.short.txt`); a part it does not replace
        has the locale's own name, so both share one compiled template.
        """
        if self.overrides(locale, part, variant):
            assert variant is not None
            return f"{self.template_id}/{locale}/{variant_file(part, variant)}"
        return f"{self.template_id}/{locale}/{PART_FILES[part]}"

    def variants_of(self, locale: str) -> tuple[str, ...]:
        """The variants with at least one part of their own in `locale`."""
        return tuple(name for name in self.metadata.variant_names if self.locales[locale].variants.get(name))

    def cache_key(self) -> str:
        """The stored version, or a digest of the content for a bundle not (yet) stored, e.g. one being edited."""
        if self.version is not None:
            return self.version
        return "sha256:" + hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    def to_json(self) -> str:
        """The bundle file's content."""
        return self.model_dump_json(indent=None)
