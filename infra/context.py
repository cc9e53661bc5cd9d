"""The `mailwright` settings as the CDK app receives them, and the guard against deploying placeholders.

The CDK CLI hands every `-c key=value` to the app as a string, and a
`-c mailwright=...` replaces cdk.json's whole `mailwright` object. So the app
starts from cdk.json's values and deep-merges on top of them, in this order:

1. the `mailwright` context value: an object, or a JSON string of one
   (`-c mailwright='{"sender": "no-reply@mail.acme.io", "domain": "mail.acme.io"}'`);
2. dotted keys, shallowest first (`-c mailwright.lanes.bulk.reserved_concurrency=null`):
   a value that parses as JSON is that JSON (a number, a boolean, null, an
   object), anything else stays a string.

Objects merge key by key at every depth; anything else (a string, a number, a
list) replaces what was there. A string that starts like a JSON object or list
(`"lanes": "{...}"`), at any depth, is parsed as one.

cdk.json ships placeholders (`no-reply@example.com`, a made-up postal address)
so that the tests, the demo and `make synth` work out of the box. The app
refuses them (`check_deployable`) unless the top-level context flag
`mailwright_allow_placeholders=true` says that this synth is not a deploy.
The local stack parses the same settings without this guard.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from infra.config import CONTEXT_KEY, ConfigError, MailwrightConfig, parse_config

# The top-level context flag that lets a synth use cdk.json's placeholders (tests, `make synth`).
ALLOW_PLACEHOLDERS_KEY = "mailwright_allow_placeholders"
# Domains reserved for documentation (RFC 2606, RFC 6761): SES can never verify or deliver to them.
PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org")
PLACEHOLDER_TLDS = ("example", "invalid", "localhost", "test")
# cdk.json's postal address, and the words that give such a made-up one away.
PLACEHOLDER_POSTAL_ADDRESS = re.compile(r"\bexample (co\b|street\b)", re.IGNORECASE)


def settings_from_context(defaults: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """The `mailwright` settings: `defaults` (cdk.json's) with the context's value and dotted keys merged on top."""
    merged = _object(defaults, f"cdk.json's {CONTEXT_KEY}")
    value = context.get(CONTEXT_KEY)
    if value is not None:
        merged = deep_merge(merged, _object(value, CONTEXT_KEY))
    prefix = CONTEXT_KEY + "."
    # Shallowest first, so `mailwright.lanes.bulk.x` refines a `mailwright.lanes` given beside it.
    for key in sorted((k for k in context if k.startswith(prefix)), key=lambda k: (k.count("."), k)):
        path = key.removeprefix(prefix).split(".")
        if "" in path:
            raise ConfigError(f"context key {key!r} has an empty part")
        merged = _merge_at(merged, path, _dotted_value(key, context[key]), key=key)
    return merged


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` over `base`: objects merge key by key at every depth; any other value replaces."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def placeholders_allowed(context: Mapping[str, Any]) -> bool:
    """Whether the context sets `mailwright_allow_placeholders` (true, or the CLI's string "true")."""
    value = context.get(ALLOW_PLACEHOLDERS_KEY)
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() == "false"):
        return False
    if value is True or (isinstance(value, str) and value.strip().lower() == "true"):
        return True
    raise ConfigError(f"context value {ALLOW_PLACEHOLDERS_KEY} must be true or false, got {value!r}")


def check_deployable(config: MailwrightConfig) -> None:
    """Refuse settings that are still cdk.json's placeholders, naming every key to set."""
    problems = []
    if _is_placeholder_domain(config.sender.rpartition("@")[2]):
        problems.append(f"{CONTEXT_KEY}.sender ({config.sender}): an address at a domain you send from")
    if config.domain and _is_placeholder_domain(config.domain):
        problems.append(f"{CONTEXT_KEY}.domain ({config.domain}): your sending domain, or empty")
    if not config.postal_address or PLACEHOLDER_POSTAL_ADDRESS.search(config.postal_address):
        problems.append(
            f"{CONTEXT_KEY}.postal_address ({config.postal_address!r}): your postal address, "
            "which marketing mail must carry (CAN-SPAM)"
        )
    if config.alarms.email and _is_placeholder_domain(config.alarms.email.rpartition("@")[2]):
        problems.append(f"{CONTEXT_KEY}.alarm_email ({config.alarms.email}): an address you read, or empty")
    if problems:
        raise ConfigError(
            "refusing to deploy cdk.json's placeholder settings; set "
            + "; ".join(problems)
            + f". Set them in cdk.json or with -c (e.g. -c {CONTEXT_KEY}.sender=no-reply@mail.yourcompany.com). "
            f"A synth that will not be deployed may pass -c {ALLOW_PLACEHOLDERS_KEY}=true."
        )


def deployment_config(defaults: Mapping[str, Any], context: Mapping[str, Any]) -> MailwrightConfig:
    """The settings the CDK app deploys: merged, parsed, and free of placeholders unless the context allows them."""
    config = parse_config(settings_from_context(defaults, context))
    if not placeholders_allowed(context):
        check_deployable(config)
    return config


def _is_placeholder_domain(domain: str) -> bool:
    domain = domain.strip().lower().rstrip(".")
    return (
        any(domain == d or domain.endswith("." + d) for d in PLACEHOLDER_DOMAINS)
        or domain.rpartition(".")[2] in PLACEHOLDER_TLDS
    )


def _object(value: Any, where: str) -> dict[str, Any]:
    """A context value that must be an object, given as one or as a JSON string."""
    if isinstance(value, str):
        value = _json(value, where)
    if not isinstance(value, Mapping):
        raise ConfigError(f"context value {where} must be an object (or a JSON string of one), got {value!r}")
    parsed = _parse_nested(value, where)
    assert isinstance(parsed, dict)
    return parsed


def _parse_nested(value: Any, where: str) -> Any:
    """`value` with every string that starts like a JSON object or list parsed, at any depth."""
    if isinstance(value, str) and _looks_like_json(value):
        return _parse_nested(_json(value, where), where)
    if isinstance(value, Mapping):
        return {str(k): _parse_nested(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_parse_nested(item, f"{where}[{i}]") for i, item in enumerate(value)]
    return value


def _dotted_value(key: str, value: Any) -> Any:
    """A dotted key's value: JSON when it parses as JSON, else the string as given."""
    if not isinstance(value, str) or _looks_like_json(value):
        return _parse_nested(value, key)
    try:
        return json.loads(value, parse_constant=_refuse_constant)
    except ValueError:
        return value


def _merge_at(settings: dict[str, Any], path: list[str], value: Any, *, key: str) -> dict[str, Any]:
    """`settings` with `value` merged in at `path`, creating the objects on the way."""
    head, rest = path[0], path[1:]
    if not rest:
        return deep_merge(settings, {head: value})
    inner = settings.get(head)
    if inner is None:
        inner = {}
    if not isinstance(inner, Mapping):
        raise ConfigError(f"context key {key!r}: {head!r} is {inner!r}, not an object")
    return {**settings, head: _merge_at(dict(inner), rest, value, key=key)}


def _looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise ConfigError(f"context value {where} is not valid JSON: {exc}") from None


def _refuse_constant(name: str) -> float:
    # NaN and Infinity are not JSON, and would slip past every range check.
    raise ValueError(f"{name} is not a JSON number")
