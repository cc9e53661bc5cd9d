"""Email address normalisation and masking.

Addresses are stored and logged only as a keyed hash (lookup key, see
`mailwright.address_keys`) or a masked form (for people):
`jane@example.com` -> `j***@example.com`.
"""

from __future__ import annotations

import re

# Deliberately pragmatic: RFC 5321 sizes, a dot-atom local part and a
# hostname domain with a letter TLD (IDN domains arrive as punycode `xn--`).
_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class InvalidAddressError(ValueError):
    """The value is not a deliverable-looking email address."""


def normalize_address(address: str) -> str:
    """Trim and lower-case an address and check its syntax; raise InvalidAddressError if it is not one."""
    if not isinstance(address, str):
        raise InvalidAddressError("an email address must be a string")
    value = address.strip().lower()
    if any(ch in value for ch in "\r\n\t\x00 "):
        raise InvalidAddressError("an email address may not contain spaces or line breaks")
    if len(value) > 254 or value.count("@") != 1:
        raise InvalidAddressError("not an email address")
    local, domain = value.split("@")
    if not local or len(local) > 64 or not _LOCAL.match(local):
        raise InvalidAddressError("the part before @ is not valid")
    if domain.endswith("."):
        domain = domain[:-1]
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise InvalidAddressError("the domain is not valid")
    tld = labels[-1]
    if tld.isdigit() or (len(tld) < 2):
        raise InvalidAddressError("the domain has no valid top-level domain")
    return f"{local}@{domain}"


def mask_address(address: str) -> str:
    """A form of the address safe to show and log: first character of the local part, then ***."""
    value = address.strip().lower()
    local, sep, domain = value.partition("@")
    if not sep:
        return "***"
    # A one- or two-letter local part would be given away by its first letter.
    shown = local[:1] if len(local) > 2 else ""
    return f"{shown}***@{domain}"


# Anything shaped like an address inside free text (SMTP diagnostics, notes), angle brackets or not.
_ADDRESS_IN_TEXT = re.compile(r"[^\s<>()\[\]\"',;:@]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+", re.IGNORECASE)


def scrub_addresses(text: str) -> str:
    """`text` with every address in it masked, so it may be stored or logged."""
    return _ADDRESS_IN_TEXT.sub(lambda match: mask_address(match.group(0)), text)
